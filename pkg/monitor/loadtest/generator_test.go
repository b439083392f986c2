package loadtest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/berthsh/berth/pkg/errdefs"
	"github.com/berthsh/berth/pkg/monitor"
)

// sleepServer answers "ok" after sleeping d (or until the client gives
// up) and counts the requests it got.
func sleepServer(t *testing.T, d time.Duration, hits *atomic.Int64) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if hits != nil {
			hits.Add(1)
		}
		select {
		case <-time.After(d):
		case <-r.Context().Done():
			return
		}
		io.WriteString(w, "ok")
	}))
	t.Cleanup(srv.Close)
	return srv
}

func mustRun(t *testing.T, o Options) *Result {
	t.Helper()
	res, err := Run(context.Background(), o)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	return res
}

func TestClosedLoopFollowsServiceTime(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e Engine) {
		srv := sleepServer(t, 50*time.Millisecond, nil)
		res := mustRunOn(t, e, Options{URL: srv.URL, Concurrency: 4, Duration: 2 * time.Second})
		// 4 workers waiting 50 ms per request make 80 requests/s.
		if res.RPS < 50 || res.RPS > 90 {
			t.Errorf("throughput %.1f requests/s, want about 80", res.RPS)
		}
		if res.Latency.P50 < 50 || res.Latency.P50 > 70 {
			t.Errorf("p50 %.1f ms, want 50-70", res.Latency.P50)
		}
		if res.Latency.Min < 50 || res.Latency.Max < res.Latency.P99 || res.Latency.P99 < res.Latency.P50 {
			t.Errorf("latency summary inconsistent: %+v", res.Latency)
		}
		if res.Failed != 0 || res.StatusCount(200) != res.Requests || res.Bytes != 2*res.Requests {
			t.Errorf("failed %d, 200s %d of %d, bytes %d", res.Failed, res.StatusCount(200), res.Requests, res.Bytes)
		}
		if res.Mode != "concurrency" || res.Concurrency != 4 {
			t.Errorf("mode %q concurrency %d", res.Mode, res.Concurrency)
		}
	})
}

func TestFixedRateSendsOnSchedule(t *testing.T) {
	var hits atomic.Int64
	srv := sleepServer(t, 50*time.Millisecond, &hits)
	res := mustRun(t, Options{URL: srv.URL, Rate: 100, Duration: 2 * time.Second})
	// 100/s for 2 s is 200 requests, though each takes 50 ms: the open
	// loop does not wait for answers before sending the next.
	if res.Requests < 190 || res.Requests > 201 || hits.Load() != int64(res.Requests) {
		t.Errorf("%d requests measured, %d received; want about 200", res.Requests, hits.Load())
	}
	if res.Latency.P50 < 50 || res.Latency.P50 > 100 {
		t.Errorf("p50 %.1f ms, want a little over 50", res.Latency.P50)
	}
	if res.Mode != "rate" || res.Failed != 0 {
		t.Errorf("mode %q failed %d", res.Mode, res.Failed)
	}
}

// TestFixedRateCountsQueueing checks that latency is taken from the
// scheduled time: a server that can answer only 20 requests/s, asked
// for 40/s during 1 s, falls behind, and the late requests must show it.
func TestFixedRateCountsQueueing(t *testing.T) {
	var mu sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		time.Sleep(50 * time.Millisecond)
		mu.Unlock()
	}))
	t.Cleanup(srv.Close)
	res := mustRun(t, Options{URL: srv.URL, Rate: 40, Duration: time.Second})
	if res.Requests < 38 {
		t.Fatalf("only %d requests", res.Requests)
	}
	// The last of 40 requests is answered about 2 s after the start and
	// was due at about 1 s: its latency is near 1 s, not 50 ms.
	if res.Latency.P99 < 600 {
		t.Errorf("p99 %.1f ms: waiting for the server was not counted", res.Latency.P99)
	}
}

func TestRequestLimit(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e Engine) {
		var hits atomic.Int64
		srv := sleepServer(t, 0, &hits)
		res := mustRunOn(t, e, Options{URL: srv.URL, Concurrency: 3, Requests: 25})
		if res.Requests != 25 || hits.Load() != 25 {
			t.Errorf("%d requests measured, %d received; want 25", res.Requests, hits.Load())
		}
	})
}

func TestWarmupIsNotMeasured(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e Engine) {
		var hits atomic.Int64
		srv := sleepServer(t, 10*time.Millisecond, &hits)
		res := mustRunOn(t, e, Options{URL: srv.URL, Concurrency: 1, Warmup: 300 * time.Millisecond, Duration: 300 * time.Millisecond})
		// About 30 requests each in warm-up and measurement.
		if res.Requests == 0 || int64(res.Requests) > hits.Load()-10 {
			t.Errorf("%d requests measured of %d sent: the warm-up was counted", res.Requests, hits.Load())
		}
	})
}

func TestConnectionRefused(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e Engine) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		res := mustRunOn(t, e, Options{URL: "http://" + addr + "/", Concurrency: 2, Duration: 200 * time.Millisecond})
		if res.Requests == 0 || res.Errors.Refused != res.Requests || res.Succeeded != 0 || res.Failed != res.Requests {
			t.Errorf("requests %d refused %d succeeded %d failed %d", res.Requests, res.Errors.Refused, res.Succeeded, res.Failed)
		}
		if !strings.Contains(res.Errors.Examples["connection refused"], "refused") {
			t.Errorf("example %q", res.Errors.Examples)
		}
		var text bytes.Buffer
		if err := res.WriteText(&text); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(text.String(), "connection refused") || !strings.Contains(text.String(), "Succeeded:    0") {
			t.Errorf("report:\n%s", text.String())
		}
	})
}

func TestNon2xxAndTimeouts(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e Engine) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/slow" {
				select {
				case <-time.After(time.Second):
				case <-r.Context().Done():
				}
				return
			}
			w.WriteHeader(http.StatusServiceUnavailable)
		}))
		t.Cleanup(srv.Close)

		res := mustRunOn(t, e, Options{URL: srv.URL + "/busy", Concurrency: 2, Requests: 20})
		if res.Requests != 20 || res.Errors.Non2xx != 20 || res.StatusCount(503) != 20 || res.Failed != 20 {
			t.Errorf("requests %d non-2xx %d 503s %d failed %d", res.Requests, res.Errors.Non2xx, res.StatusCount(503), res.Failed)
		}

		res = mustRunOn(t, e, Options{URL: srv.URL + "/slow", Concurrency: 2, Requests: 4, Timeout: 100 * time.Millisecond})
		if res.Errors.Timeout != 4 || res.Failed != 4 {
			t.Errorf("timeouts %d failed %d, want 4", res.Errors.Timeout, res.Failed)
		}
		if res.Latency.P50 < 100 || res.Latency.P50 > 900 {
			t.Errorf("p50 of timed-out requests %.1f ms, want about 100", res.Latency.P50)
		}
	})
}

func TestMethodHeadersBody(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e Engine) {
		var mu sync.Mutex
		var got []string
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			b, _ := io.ReadAll(r.Body)
			mu.Lock()
			got = append(got, r.Method+" "+r.Host+" "+r.Header.Get("X-Test")+" "+string(b))
			mu.Unlock()
		}))
		t.Cleanup(srv.Close)
		h := http.Header{}
		h.Set("X-Test", "yes")
		h.Set("Host", "example.test")
		mustRunOn(t, e, Options{URL: srv.URL, Method: "POST", Header: h, Body: []byte("data"), Concurrency: 2, Requests: 6})
		// The epoll engine's raw system calls tell the race detector of
		// no ordering with the server: take the lock.
		mu.Lock()
		defer mu.Unlock()
		if len(got) != 6 {
			t.Fatalf("%d requests", len(got))
		}
		for _, g := range got {
			if g != "POST example.test yes data" {
				t.Errorf("request %q", g)
			}
		}
	})
}

func TestContainerSampling(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e Engine) {
		srv := sleepServer(t, time.Millisecond, nil)
		var calls atomic.Int64
		stats := func(ctx context.Context) (monitor.Stats, error) {
			n := uint64(calls.Add(1))
			// A quarter of one CPU, 10 MiB of a 100 MiB limit.
			return monitor.Stats{
				CPUUsage: n * 25e6, SystemUsage: n * 100e6, OnlineCPUs: 1,
				MemoryUsage: 10 << 20, MemoryLimit: 100 << 20,
			}, nil
		}
		res := mustRunOn(t, e, Options{URL: srv.URL, Concurrency: 1, Duration: 600 * time.Millisecond,
			Stats: stats, SampleInterval: 100 * time.Millisecond})
		c := res.Container
		if c == nil || len(c.Samples) < 3 || c.Error != "" {
			t.Fatalf("container resources %+v", c)
		}
		if c.CPUPercentMean < 24.9 || c.CPUPercentMean > 25.1 || c.CPUPercentMax < 24.9 {
			t.Errorf("CPU mean %.2f max %.2f, want 25", c.CPUPercentMean, c.CPUPercentMax)
		}
		if c.MemoryMax != 10<<20 || c.MemoryLimit != 100<<20 || c.MemPercentMax < 9.9 || c.MemPercentMax > 10.1 {
			t.Errorf("memory %d / %d (%.1f%%)", c.MemoryMax, c.MemoryLimit, c.MemPercentMax)
		}
		var text bytes.Buffer
		res.WriteText(&text)
		if !strings.Contains(text.String(), "CPU          mean 25.0%") {
			t.Errorf("report:\n%s", text.String())
		}

		failing := func(ctx context.Context) (monitor.Stats, error) { return monitor.Stats{}, errors.New("container gone") }
		res = mustRunOn(t, e, Options{URL: srv.URL, Concurrency: 1, Duration: 200 * time.Millisecond, Stats: failing})
		if res.Container == nil || res.Container.Error != "container gone" {
			t.Errorf("sampling error not reported: %+v", res.Container)
		}
	})
}

func TestProgressAndJSON(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e Engine) {
		srv := sleepServer(t, time.Millisecond, nil)
		var mu sync.Mutex
		var seen []Progress
		res := mustRunOn(t, e, Options{URL: srv.URL, Concurrency: 2, Duration: 500 * time.Millisecond,
			ProgressEvery: 100 * time.Millisecond, Progress: func(p Progress) {
				mu.Lock()
				seen = append(seen, p)
				mu.Unlock()
			}})
		mu.Lock()
		if len(seen) < 3 || seen[len(seen)-1].Completed == 0 {
			t.Errorf("progress calls: %+v", seen)
		}
		mu.Unlock()
		b, err := json.Marshal(res)
		if err != nil {
			t.Fatal(err)
		}
		var back Result
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatal(err)
		}
		if back.Requests != res.Requests || back.Latency != res.Latency || len(back.Histogram) == 0 {
			t.Errorf("JSON round trip lost data: %s", b)
		}
		for _, key := range []string{`"requests_per_s"`, `"p99"`, `"status_codes"`, `"connection_refused"`} {
			if !bytes.Contains(b, []byte(key)) {
				t.Errorf("JSON lacks %s", key)
			}
		}
	})
}

func TestInterrupt(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e Engine) {
		srv := sleepServer(t, 10*time.Millisecond, nil)
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		start := time.Now()
		res, err := Run(ctx, Options{Engine: e, URL: srv.URL, Concurrency: 2, Duration: time.Hour})
		if !errors.Is(err, context.DeadlineExceeded) || res == nil || res.Requests == 0 {
			t.Fatalf("Run = %v, %v", res, err)
		}
		if time.Since(start) > 10*time.Second {
			t.Errorf("took %v to stop", time.Since(start))
		}
	})
}

func TestBadOptions(t *testing.T) {
	tests := []struct {
		name string
		o    Options
		want string
	}{
		{"no scheme", Options{URL: "localhost:80", Duration: time.Second}, "scheme"},
		{"ftp", Options{URL: "ftp://x/", Duration: time.Second}, "scheme"},
		{"no host", Options{URL: "http:///x", Duration: time.Second}, "no host"},
		{"unparsable", Options{URL: "http://[::1", Duration: time.Second}, "bad URL"},
		{"negative duration", Options{URL: "http://x/", Duration: -time.Second}, "duration"},
		{"nothing to do", Options{URL: "http://x/"}, "duration or a number"},
		{"negative rate", Options{URL: "http://x/", Rate: -1, Duration: time.Second}, "rate"},
		{"negative concurrency", Options{URL: "http://x/", Concurrency: -2, Duration: time.Second}, "concurrency"},
		{"negative requests", Options{URL: "http://x/", Requests: -1}, "requests"},
		{"negative warmup", Options{URL: "http://x/", Duration: time.Second, Warmup: -1}, "warm-up"},
		{"negative timeout", Options{URL: "http://x/", Duration: time.Second, Timeout: -1}, "timeout"},
		{"bad method", Options{URL: "http://x/", Method: "GE T", Duration: time.Second}, "method"},
		{"negative threads", Options{URL: "http://x/", Duration: time.Second, Threads: -1}, "threads"},
		{"unknown engine", Options{URL: "http://x/", Duration: time.Second, Engine: "fibers"}, "unknown engine"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Run(context.Background(), tc.o)
			if !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Run = %v, want an invalid-argument error about %q", err, tc.want)
			}
		})
	}
}
