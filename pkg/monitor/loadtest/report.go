package loadtest

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
)

// histogramWidth is the widest bar of the text histogram.
const histogramWidth = 40

// WriteText writes res as the readable report of "berth loadtest".
func (res *Result) WriteText(w io.Writer) error {
	b := bufio.NewWriter(w)
	p := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }

	target := res.URL
	if res.Target != "" {
		target = fmt.Sprintf("%s (%s)", res.URL, res.Target)
	}
	p("Target:       %s %s\n", res.Method, target)
	if res.Mode == "rate" {
		p("Load:         %g requests/s (open loop, at most %d in flight)", res.Rate, res.Concurrency)
	} else {
		p("Load:         %d workers (closed loop", res.Concurrency)
		if res.Engine == string(EngineEpoll) {
			p(", epoll engine, %d thread", res.Threads)
			if res.Threads != 1 {
				p("s")
			}
		}
		p(")")
	}
	if res.DurationS > 0 {
		p(", %s", fmtSeconds(res.DurationS))
	}
	if res.MaxRequests > 0 {
		p(", at most %d requests", res.MaxRequests)
	}
	if res.WarmupS > 0 {
		p(", after %s warm-up", fmtSeconds(res.WarmupS))
	}
	p("\n\n")

	p("Requests:     %d in %s, %.1f requests/s\n", res.Requests, fmtSeconds(res.ElapsedS), res.RPS)
	p("Succeeded:    %d (2xx)   Failed: %d", res.Succeeded, res.Failed)
	if res.Unfinished > 0 {
		p("   Unfinished at the end: %d", res.Unfinished)
	}
	p("\n")
	rate := 0.0
	if res.ElapsedS > 0 {
		rate = float64(res.Bytes) / res.ElapsedS
	}
	p("Received:     %s of bodies (%s/s)\n\n", fmtBytes(float64(res.Bytes)), fmtBytes(rate))

	if res.Requests > 0 {
		l := res.Latency
		p("Latency:      mean %s   p50 %s   p90 %s   p99 %s   max %s   (min %s)\n",
			fmtMS(l.Mean), fmtMS(l.P50), fmtMS(l.P90), fmtMS(l.P99), fmtMS(l.Max), fmtMS(l.Min))
		if res.Mode == "rate" {
			p("              (from each request's scheduled send time)\n")
		}
		p("\n")
		writeHistogram(b, res.Histogram, res.Requests)
	}

	if len(res.Status) > 0 {
		p("Status codes:\n")
		for _, s := range res.Status {
			text := http.StatusText(s.Code)
			if s.Code == 0 {
				text = "outside 0-599"
			}
			p("  %3d %-22s %d\n", s.Code, text, s.Count)
		}
		p("\n")
	}

	e := res.Errors
	if e.Timeout+e.Refused+e.Reset+e.Other+e.Non2xx == 0 {
		p("Errors:       none\n")
	} else {
		p("Errors:\n")
		row := func(name string, n uint64, kind string) {
			if n == 0 {
				return
			}
			p("  %-20s %d", name, n)
			if ex := e.Examples[kind]; ex != "" {
				p("   (e.g. %s)", ex)
			}
			p("\n")
		}
		row("timeout", e.Timeout, ErrTimeout.String())
		row("connection refused", e.Refused, ErrRefused.String())
		row("connection reset", e.Reset, ErrReset.String())
		row("other", e.Other, ErrOther.String())
		row("non-2xx", e.Non2xx, "")
	}

	if c := res.Container; c != nil {
		p("\nContainer:\n")
		if len(c.Samples) > 0 {
			p("  CPU          mean %.1f%%   max %.1f%%   (100%% = one core)\n", c.CPUPercentMean, c.CPUPercentMax)
		} else {
			p("  CPU          not measured (the run was too short)\n")
		}
		if c.MemoryLimit > 0 {
			p("  Memory       max %s / %s (%.1f%%)\n", fmtBytes(float64(c.MemoryMax)), fmtBytes(float64(c.MemoryLimit)), c.MemPercentMax)
		}
		p("  Samples      %d\n", len(c.Samples))
		if c.Error != "" {
			p("  Sampling stopped: %s\n", c.Error)
		}
	}
	return b.Flush()
}

// writeHistogram draws bins as rows of '#'.
func writeHistogram(w io.Writer, bins []HistBin, total uint64) {
	if len(bins) == 0 {
		return
	}
	var most uint64
	for _, b := range bins {
		most = max(most, b.Count)
	}
	fmt.Fprintf(w, "Latency histogram:\n")
	for _, b := range bins {
		bar := 0
		if most > 0 {
			bar = int((b.Count*histogramWidth + most - 1) / most)
		}
		pct := float64(b.Count) / float64(total) * 100
		fmt.Fprintf(w, "  <= %9s  %5.1f%%  %-*s %d\n", fmtMS(b.UpToMS), pct, histogramWidth, strings.Repeat("#", bar), b.Count)
	}
	fmt.Fprintln(w)
}

// fmtMS formats milliseconds with three significant digits and a unit.
func fmtMS(v float64) string {
	switch {
	case v >= 100000:
		return fmt.Sprintf("%.0fs", v/1000)
	case v >= 1000:
		return fmt.Sprintf("%.3gs", v/1000)
	case v >= 1:
		return fmt.Sprintf("%.3gms", v)
	default:
		return fmt.Sprintf("%.3gµs", v*1000)
	}
}

func fmtSeconds(s float64) string { return fmtMS(s * 1000) }

// fmtBytes formats a byte count in binary units as docker stats does.
func fmtBytes(v float64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB"}
	i := 0
	for v >= 1024 && i < len(units)-1 {
		v /= 1024
		i++
	}
	if i == 0 {
		return fmt.Sprintf("%.0f%s", v, units[i])
	}
	return fmt.Sprintf("%.3g%s", v, units[i])
}

// StatusCount is the number of responses with the status code.
func (res *Result) StatusCount(code int) uint64 {
	i := sort.Search(len(res.Status), func(i int) bool { return res.Status[i].Code >= code })
	if i < len(res.Status) && res.Status[i].Code == code {
		return res.Status[i].Count
	}
	return 0
}
