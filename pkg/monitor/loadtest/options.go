package loadtest

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/berthsh/berth/pkg/errdefs"
	"github.com/berthsh/berth/pkg/monitor"
)

// Defaults for the zero values of Options.
const (
	DefaultConcurrency    = 10
	DefaultMaxInFlight    = 1000
	DefaultTimeout        = 10 * time.Second
	DefaultSampleInterval = 500 * time.Millisecond
	DefaultProgressEvery  = time.Second
)

// Options describe one load test.
type Options struct {
	// URL is the http:// or https:// address to load.
	URL    string
	Method string // GET when empty
	Header http.Header
	Body   []byte

	// Rate, when above zero, sends that many requests per second on a
	// fixed schedule (open loop); Concurrency then caps the requests in
	// flight (DefaultMaxInFlight when zero). Without a rate, Concurrency
	// workers send requests back to back (closed loop;
	// DefaultConcurrency when zero).
	Rate        float64
	Concurrency int

	// Duration is how long to measure; Requests, when above zero, stops
	// after that many measured requests. At least one of them is needed;
	// with both, whichever comes first ends the run.
	Duration time.Duration
	Requests int64
	// Warmup is load sent before measuring, whose results are dropped.
	Warmup time.Duration
	// Timeout bounds each request, including reading its body
	// (DefaultTimeout when zero).
	Timeout time.Duration

	// Stats, when set, reads the resource use of the container behind
	// the service; it is called every SampleInterval while measuring.
	Stats          func(ctx context.Context) (monitor.Stats, error)
	SampleInterval time.Duration

	// Progress, when set, is called about every ProgressEvery from a
	// goroutine of Run's while the test runs.
	Progress      func(Progress)
	ProgressEvery time.Duration

	// Engine picks the code that sends the load (EngineAuto when empty:
	// see Engine). Threads is the number of OS threads of the epoll
	// engine (runtime.GOMAXPROCS(0)-1, at least 1, when zero; never more
	// than Concurrency).
	Engine  Engine
	Threads int
}

// Engine names the code that sends the load.
//
// EngineEpoll runs a few OS threads, each with its own epoll instance
// and its share of the connections, and sends a connection's next
// request as soon as its answer is complete, as wrk does: per request it
// costs a write, a read and a share of an epoll_wait. It is Linux-only
// and does closed-loop (fixed concurrency) load on http:// targets.
//
// EngineGoroutines runs a goroutine per connection on Go's net package.
// It does everything: fixed rate (open loop), https:// targets, and
// every OS; per request it costs a read more than the epoll engine (the
// one that finds no answer yet and parks the goroutine) and two
// goroutine switches.
//
// EngineAuto (the zero value) picks EngineEpoll where it can run (Linux,
// no Rate, an http:// URL whose host resolves) and EngineGoroutines
// otherwise.
type Engine string

// The engines.
const (
	EngineAuto       Engine = ""
	EngineEpoll      Engine = "epoll"
	EngineGoroutines Engine = "goroutines"
)

// Progress is a snapshot of a running test.
type Progress struct {
	Elapsed   time.Duration // since measuring started (negative in warm-up)
	Completed uint64        // measured requests finished
	Errors    uint64        // of them, failed or non-2xx
	RPS       float64       // completions per second since the last call
}

func invalid(format string, args ...any) error {
	return fmt.Errorf(format+": %w", append(args, errdefs.ErrInvalidArgument)...)
}

// Validate checks o and fills in defaults. Errors wrap
// errdefs.ErrInvalidArgument.
func (o *Options) Validate() error {
	u, err := url.Parse(o.URL)
	if err != nil {
		return invalid("bad URL %q: %v", o.URL, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return invalid("bad URL %q: the scheme must be http or https", o.URL)
	}
	if u.Host == "" || u.Hostname() == "" {
		return invalid("bad URL %q: no host", o.URL)
	}
	if o.Method == "" {
		o.Method = http.MethodGet
	}
	if !validMethod(o.Method) {
		return invalid("bad method %q", o.Method)
	}
	if o.Rate < 0 {
		return invalid("the rate must be above zero, not %g", o.Rate)
	}
	if o.Concurrency < 0 {
		return invalid("the concurrency must be at least 1, not %d", o.Concurrency)
	}
	if o.Concurrency == 0 {
		o.Concurrency = DefaultConcurrency
		if o.Rate > 0 {
			o.Concurrency = DefaultMaxInFlight
		}
	}
	if o.Duration < 0 {
		return invalid("the duration must not be negative, not %s", o.Duration)
	}
	if o.Requests < 0 {
		return invalid("the number of requests must not be negative, not %d", o.Requests)
	}
	if o.Duration == 0 && o.Requests == 0 {
		return invalid("give a duration or a number of requests")
	}
	if o.Warmup < 0 {
		return invalid("the warm-up must not be negative, not %s", o.Warmup)
	}
	if o.Timeout < 0 {
		return invalid("the timeout must be above zero, not %s", o.Timeout)
	}
	if o.Timeout == 0 {
		o.Timeout = DefaultTimeout
	}
	if o.SampleInterval <= 0 {
		o.SampleInterval = DefaultSampleInterval
	}
	if o.ProgressEvery <= 0 {
		o.ProgressEvery = DefaultProgressEvery
	}
	if o.Threads < 0 {
		return invalid("the number of threads must be at least 1, not %d", o.Threads)
	}
	switch o.Engine {
	case EngineAuto, EngineGoroutines:
	case EngineEpoll:
		switch {
		case !epollSupported:
			return invalid("the epoll engine runs on Linux only: use the goroutines engine")
		case o.Rate > 0:
			return invalid("the epoll engine does fixed-concurrency load only: use the goroutines engine for a fixed rate")
		case u.Scheme != "http":
			return invalid("the epoll engine loads http:// URLs only: use the goroutines engine for %s", u.Scheme)
		}
	default:
		return invalid("unknown engine %q: use %q, %q or leave it empty to pick one", o.Engine, EngineEpoll, EngineGoroutines)
	}
	return nil
}

// validMethod reports whether m is an HTTP token.
func validMethod(m string) bool {
	if m == "" {
		return false
	}
	for _, r := range m {
		if r <= ' ' || r >= 0x7f || (r < 'A' || r > 'Z') && (r < 'a' || r > 'z') && (r < '0' || r > '9') && !strings.ContainsRune("!#$%&'*+-.^_`|~", r) {
			return false
		}
	}
	return true
}
