package loadtest

import (
	"context"
	"time"

	"github.com/berthsh/berth/pkg/monitor"
)

// Result is what a load test measured. It is also the JSON report;
// durations are in milliseconds or seconds as their names say.
type Result struct {
	URL string `json:"url"`
	// Target names what was loaded when it is not just the URL (set by
	// the caller, e.g. "container web, port 8000/tcp").
	Target      string  `json:"target,omitempty"`
	Method      string  `json:"method"`
	Mode        string  `json:"mode"` // "rate" (open loop) or "concurrency" (closed loop)
	Rate        float64 `json:"rate,omitempty"`
	Concurrency int     `json:"concurrency"`
	DurationS   float64 `json:"duration_s,omitempty"`
	MaxRequests int64   `json:"max_requests,omitempty"`
	WarmupS     float64 `json:"warmup_s,omitempty"`
	TimeoutS    float64 `json:"timeout_s"`
	// Engine is the code that sent the load ("epoll" or "goroutines",
	// see loadtest.Engine); Threads the epoll engine's OS threads.
	Engine  string `json:"engine"`
	Threads int    `json:"threads,omitempty"`

	// ElapsedS is from the start of measuring to the last completion.
	ElapsedS float64 `json:"elapsed_s"`
	// Requests counts the measured requests that completed (answered or
	// failed); Succeeded those answered 2xx, Failed the others.
	// Unfinished were cut off by the end of the run or an interrupt.
	Requests   uint64  `json:"requests"`
	Succeeded  uint64  `json:"succeeded"`
	Failed     uint64  `json:"failed"`
	Unfinished uint64  `json:"unfinished,omitempty"`
	RPS        float64 `json:"requests_per_s"`
	// Bytes are the response bodies' bytes.
	Bytes uint64 `json:"bytes"`

	Latency   Latency       `json:"latency_ms"`
	Histogram []HistBin     `json:"histogram"`
	Status    []StatusCount `json:"status_codes"`
	Errors    Errors        `json:"errors"`

	// Container is the resource use of the container behind the service
	// while measuring (when Options.Stats was given).
	Container *Resources `json:"container,omitempty"`
}

// Latency summarises the measured latencies, in milliseconds.
type Latency struct {
	Min  float64 `json:"min"`
	Mean float64 `json:"mean"`
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	Max  float64 `json:"max"`
}

// HistBin is one row of the latency histogram: Count latencies above
// the previous row's UpToMS and at most UpToMS.
type HistBin struct {
	UpToMS float64 `json:"le_ms"`
	Count  uint64  `json:"count"`
}

// StatusCount is how many responses had one status code (0: a code
// outside 0..599).
type StatusCount struct {
	Code  int    `json:"code"`
	Count uint64 `json:"count"`
}

// Errors counts failed requests by kind. Non2xx counts answers with a
// status outside 2xx; the others requests that got no (full) answer.
// Examples holds the first error message seen of each kind.
type Errors struct {
	Timeout  uint64            `json:"timeout"`
	Refused  uint64            `json:"connection_refused"`
	Reset    uint64            `json:"connection_reset"`
	Other    uint64            `json:"other"`
	Non2xx   uint64            `json:"non_2xx"`
	Examples map[string]string `json:"examples,omitempty"`
}

// Resources is a container's resource use during a test.
type Resources struct {
	// CPUPercentMean is the CPU use over the whole test, CPUPercentMax
	// the highest of the samples (100% is one core busy).
	CPUPercentMean float64 `json:"cpu_percent_mean"`
	CPUPercentMax  float64 `json:"cpu_percent_max"`
	// MemoryMax is the highest memory use (working set) seen.
	MemoryMax     uint64   `json:"memory_max_bytes"`
	MemoryLimit   uint64   `json:"memory_limit_bytes"`
	MemPercentMax float64  `json:"memory_percent_max"`
	Samples       []Sample `json:"samples"`
	// Error is why sampling stopped early, if it did.
	Error string `json:"error,omitempty"`
}

// Sample is one reading of the container's use.
type Sample struct {
	ElapsedS    float64 `json:"t_s"`
	CPUPercent  float64 `json:"cpu_percent"`
	MemoryUsage uint64  `json:"memory_bytes"`
	MemPercent  float64 `json:"memory_percent"`
}

// minSampleGap is the shortest time between two readings of a
// container's stats that gives a CPU figure.
const minSampleGap = 20 * time.Millisecond

// histogramRows is the number of rows in the latency histogram.
const histogramRows = 12

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// fill writes the counters into res; sinceStart is the time since
// measuring started.
func (r *run) fill(res *Result, sinceStart time.Duration) {
	o := r.o
	res.URL, res.Method, res.Concurrency = o.URL, o.Method, o.Concurrency
	res.Mode = "concurrency"
	if o.Rate > 0 {
		res.Mode, res.Rate = "rate", o.Rate
	}
	res.DurationS, res.MaxRequests = o.Duration.Seconds(), o.Requests
	res.WarmupS, res.TimeoutS = o.Warmup.Seconds(), o.Timeout.Seconds()
	res.Engine, res.Threads = string(r.engine), r.threads

	res.Requests = r.completed.Load()
	res.Failed = r.failed.Load()
	res.Succeeded = res.Requests - res.Failed
	res.Unfinished = r.unfinished.Load()
	res.Bytes = r.bytes.Load()
	elapsed := time.Duration(r.lastDone.Load())
	if res.Requests == 0 || elapsed <= 0 {
		elapsed = max(sinceStart, 0)
	}
	res.ElapsedS = elapsed.Seconds()
	if elapsed > 0 {
		res.RPS = float64(res.Requests) / elapsed.Seconds()
	}

	h := r.hist
	res.Latency = Latency{
		Min: ms(h.Min()), Mean: ms(h.Mean()), Max: ms(h.Max()),
		P50: ms(h.Quantile(0.5)), P90: ms(h.Quantile(0.9)), P99: ms(h.Quantile(0.99)),
	}
	res.Histogram = []HistBin{}
	for _, b := range h.Bins(histogramRows) {
		res.Histogram = append(res.Histogram, HistBin{UpToMS: ms(b.UpTo), Count: b.Count})
	}
	res.Status = []StatusCount{}
	for code := range r.status {
		if n := r.status[code].Load(); n > 0 {
			res.Status = append(res.Status, StatusCount{Code: code, Count: n})
		}
	}
	res.Errors = Errors{
		Timeout: r.errs[ErrTimeout].Load(),
		Refused: r.errs[ErrRefused].Load(),
		Reset:   r.errs[ErrReset].Load(),
		Other:   r.errs[ErrOther].Load(),
		Non2xx:  r.non2xx.Load(),
	}
	for k := range r.errSample {
		if p := r.errSample[k].Load(); p != nil {
			if res.Errors.Examples == nil {
				res.Errors.Examples = map[string]string{}
			}
			res.Errors.Examples[ErrorKind(k).String()] = *p
		}
	}
}

// sample reads the container's stats from the start of measuring until
// stop closes, and summarises them.
func (r *run) sample(ctx context.Context, stop <-chan struct{}) *Resources {
	res := &Resources{Samples: []Sample{}}
	if d := time.Until(r.measureStart); d > 0 {
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-stop:
			t.Stop()
			return nil
		}
	}
	first, err := r.o.Stats(ctx)
	if err != nil {
		res.Error = err.Error()
		return res
	}
	prev, prevAt := first, time.Now()
	take := func() bool {
		cur, err := r.o.Stats(ctx)
		if err != nil {
			if ctx.Err() == nil {
				res.Error = err.Error()
			}
			return false
		}
		prevAt = time.Now()
		s := Sample{
			ElapsedS:    prevAt.Sub(r.measureStart).Seconds(),
			CPUPercent:  monitor.CPUPercent(prev, cur),
			MemoryUsage: cur.MemoryUsage,
			MemPercent:  monitor.MemPercent(cur),
		}
		res.Samples = append(res.Samples, s)
		res.CPUPercentMax = max(res.CPUPercentMax, s.CPUPercent)
		res.MemoryMax = max(res.MemoryMax, s.MemoryUsage)
		res.MemPercentMax = max(res.MemPercentMax, s.MemPercent)
		res.MemoryLimit = cur.MemoryLimit
		prev = cur
		return true
	}
	t := time.NewTicker(r.o.SampleInterval)
	defer t.Stop()
loop:
	for {
		select {
		case <-stop:
			// A last reading covers the end of the run (and gives short
			// runs a figure at all; under minSampleGap it is mostly noise
			// of the host's 10 ms CPU accounting).
			if time.Since(prevAt) >= minSampleGap {
				take()
			}
			break loop
		case <-t.C:
			if !take() {
				break loop
			}
		}
	}
	res.CPUPercentMean = monitor.CPUPercent(first, prev)
	if len(res.Samples) == 0 {
		res.MemoryMax, res.MemoryLimit, res.MemPercentMax = first.MemoryUsage, first.MemoryLimit, monitor.MemPercent(first)
	}
	return res
}
