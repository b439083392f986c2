package monitor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/berthsh/berth/pkg/errdefs"
	"github.com/berthsh/berth/pkg/monitor/dashboard"
	"github.com/berthsh/berth/pkg/runtime"
	"github.com/berthsh/berth/pkg/runtime/logs"
)

// DefaultListen is the address `berth monitor` serves on by default.
const DefaultListen = "127.0.0.1:9323"

// Source is where a Server reads containers from. The CLI wires it to a
// runtime.Manager and ReadStats (see NewManagerSource); tests use fakes.
type Source struct {
	// List returns every container, stopped ones included.
	List func(ctx context.Context) ([]runtime.Container, error)
	// Stats reads the resource usage of running containers cs: one
	// result per container, in cs's order. A container that stopped
	// meanwhile has an error wrapping errdefs.ErrNotFound. Errors name
	// the container.
	Stats func(ctx context.Context, cs []runtime.Container) []StatsResult
	// Logs returns the last n entries of c's log, oldest first. Optional.
	Logs func(ctx context.Context, c runtime.Container, n int) ([]logs.Entry, error)
}

// StatsResult is one container's reading, or why there is none.
type StatsResult struct {
	Stats Stats
	Err   error
}

// Options tune a Server.
type Options struct {
	// Interval is how often the sampler reads every running container
	// for the dashboard's history (default 1 s).
	Interval time.Duration
	// Retention is how much history is kept per container (default
	// 15 min); the buffer holds Retention/Interval samples.
	Retention time.Duration
}

// Server serves /metrics (Prometheus, cAdvisor's names), /api/ (JSON)
// and / (the dashboard) for the containers of one Source.
type Server struct {
	src     Source
	opts    Options
	hist    *History
	handler http.Handler
	// now is the clock, replaced by tests.
	now func() time.Time

	// roundLock (a one-slot semaphore) lets one round of readings run
	// at a time: the sampler's or a scrape's. last is the newest round,
	// lastEnd when it ended (Unix ns). A scrape that waited for a round
	// uses it, and the sampler skips its turn after a scrape's round, so
	// that Prometheus scraping every second (or several scrapers at
	// once) does not multiply the work.
	roundLock chan struct{}
	last      *round
	lastEnd   atomic.Int64
	// waiting counts callers waiting for roundLock (for tests).
	waiting atomic.Int32

	errMu sync.Mutex
	// readErrs is the last read error of each container that has one.
	readErrs map[string]string
}

// round is one reading of every running container.
type round struct {
	end time.Time
	cs  []runtime.Container // every container listed
	rs  []reading           // the running ones' readings
}

// NewServer returns a Server reading from src. List and Stats are
// required.
func NewServer(src Source, opts Options) (*Server, error) {
	if src.List == nil || src.Stats == nil {
		return nil, fmt.Errorf("monitor source needs List and Stats: %w", errdefs.ErrInvalidArgument)
	}
	if opts.Interval <= 0 {
		opts.Interval = time.Second
	}
	if opts.Retention <= 0 {
		opts.Retention = 15 * time.Minute
	}
	s := &Server{src: src, opts: opts, hist: NewHistory(sampleWindow(opts.Retention, opts.Interval)), now: time.Now,
		roundLock: make(chan struct{}, 1), readErrs: map[string]string{}}

	reg := prometheus.NewRegistry()
	reg.MustRegister(newCollector(s))
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorHandling:       promhttp.ContinueOnError,
		MaxRequestsInFlight: maxScrapesInFlight,
		Timeout:             scrapeTimeout,
	}))
	api := http.NewServeMux()
	s.routes(api)
	mux.Handle("/api/", limit(api, maxAPIInFlight))
	mux.Handle("/", dashboard.Handler())
	s.handler = mux
	return s, nil
}

// Bounds on the requests served at once: more get 503 Service
// Unavailable rather than queueing work.
const (
	maxScrapesInFlight = 4
	maxAPIInFlight     = 16
)

// HTTP server timeouts (variables for tests): a client gets
// readHeaderTimeout to send its request line and headers, readTimeout
// for the whole request, writeTimeout for the response (a scrape takes
// at most scrapeTimeout), and an idle keep-alive connection is closed
// after idleTimeout.
var (
	readHeaderTimeout = 10 * time.Second
	readTimeout       = 30 * time.Second
	writeTimeout      = scrapeTimeout + 20*time.Second
	idleTimeout       = 2 * time.Minute
)

// maxHeaderBytes bounds a request's headers (the API takes no body).
const maxHeaderBytes = 64 << 10

// limit serves at most n requests at once with h; more get 503.
func limit(h http.Handler, n int) http.Handler {
	sem := make(chan struct{}, n)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case sem <- struct{}{}:
			defer func() { <-sem }()
			h.ServeHTTP(w, r)
		default:
			w.Header().Set("Retry-After", "1")
			writeError(w, http.StatusServiceUnavailable, fmt.Errorf("too many requests at once (%d); retry", n))
		}
	})
}

// Handler is the server's HTTP handler.
func (s *Server) Handler() http.Handler { return s.handler }

// History is the in-memory resource history the sampler fills.
func (s *Server) History() *History { return s.hist }

// Listen opens a TCP listener on addr (HOST:PORT). A malformed address
// fails with errdefs.ErrInvalidArgument, a port already taken with
// errdefs.ErrConflict.
func Listen(ctx context.Context, addr string) (net.Listener, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("listen address %q: want HOST:PORT such as %s: %w", addr, DefaultListen, errdefs.ErrInvalidArgument)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return nil, fmt.Errorf("listen address %q: port %q must be a number from 0 to 65535: %w", addr, port, errdefs.ErrInvalidArgument)
	}
	if host != "" && host != "localhost" && net.ParseIP(host) == nil {
		return nil, fmt.Errorf("listen address %q: host %q must be an IP address or localhost: %w", addr, host, errdefs.ErrInvalidArgument)
	}
	var lc net.ListenConfig
	l, err := lc.Listen(ctx, "tcp", addr)
	switch {
	case errors.Is(err, syscall.EADDRINUSE):
		return nil, fmt.Errorf("listen on %s: the address is already in use by another program: %w", addr, errdefs.ErrConflict)
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		return nil, fmt.Errorf("listen on %s: no local interface has that address: %w", addr, errdefs.ErrInvalidArgument)
	case errors.Is(err, syscall.EACCES):
		return nil, fmt.Errorf("listen on %s: %w: %w", addr, err, errdefs.ErrPermission)
	case err != nil:
		return nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	return l, nil
}

// Serve runs the sampler and serves HTTP on l until ctx is done, then
// shuts down gracefully (in-flight requests get up to 5 s) and closes l.
func (s *Server) Serve(ctx context.Context, l net.Listener) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		s.RunSampler(ctx)
	}()
	hs := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(slog.Default().Handler(), slog.LevelDebug),
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(l) }()
	var err error
	select {
	case <-ctx.Done():
		sctx, scancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		err = hs.Shutdown(sctx)
		scancel()
		<-errc
	case err = <-errc:
	}
	cancel()
	wg.Wait()
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	if err != nil {
		return fmt.Errorf("serve monitor on %s: %w", l.Addr(), err)
	}
	return nil
}

// RunSampler samples until ctx is done: a round of readings one
// Interval after the last round (the sampler's or a scrape's).
func (s *Server) RunSampler(ctx context.Context) {
	for {
		if err := s.SampleOnce(ctx); err != nil && ctx.Err() == nil {
			slog.Debug("monitor sample", "err", err)
		}
		wait := s.opts.Interval
		if end := s.lastEnd.Load(); end != 0 {
			wait = time.Duration(end + int64(s.opts.Interval) - s.now().UnixNano())
		}
		t := time.NewTimer(max(wait, s.opts.Interval/10))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// SampleOnce reads every running container once into the history and
// forgets containers that are gone. A container whose reading fails is
// skipped (and its error kept for the API). It does nothing when a
// round (a scrape's) ended less than nine tenths of an interval ago.
func (s *Server) SampleOnce(ctx context.Context) error {
	_, err := s.round(ctx, s.now().Add(-s.opts.Interval*9/10))
	return err
}

// round returns a round of readings that ended after notBefore: the last
// one, or a new one. Rounds run one at a time; a caller waits for the
// one in progress (until ctx is done) and then usually needs no other.
func (s *Server) round(ctx context.Context, notBefore time.Time) (*round, error) {
	s.waiting.Add(1)
	select {
	case s.roundLock <- struct{}{}:
		s.waiting.Add(-1)
	case <-ctx.Done():
		s.waiting.Add(-1)
		return nil, ctx.Err()
	}
	defer func() { <-s.roundLock }()
	if s.last != nil && s.last.end.After(notBefore) {
		return s.last, nil
	}
	cs, err := s.src.List(ctx)
	if err != nil {
		return nil, fmt.Errorf("list containers: %w", err)
	}
	rs := s.readAll(ctx, liveContainers(cs))
	if err := ctx.Err(); err != nil {
		return nil, err // cut short: neither kept nor shown
	}
	s.record(cs, rs)
	r := &round{end: s.now(), cs: cs, rs: rs}
	s.last = r
	s.lastEnd.Store(r.end.UnixNano())
	return r, nil
}

// record puts a round of readings of the listed containers cs into the
// history, forgets the containers not in cs, and keeps (and logs, when
// it changes) each container's read error: one that stopped meanwhile
// has none.
func (s *Server) record(cs []runtime.Container, rs []reading) {
	known := make(map[string]bool, len(cs))
	for _, c := range cs {
		known[c.Config.ID] = true
	}
	s.hist.Retain(func(id string) bool { return known[id] })
	s.errMu.Lock()
	for id := range s.readErrs {
		if !known[id] {
			delete(s.readErrs, id)
		}
	}
	for _, r := range rs {
		id := r.c.Config.ID
		switch {
		case r.err == nil:
			s.hist.Add(r.stats)
			delete(s.readErrs, id)
		case errors.Is(r.err, errdefs.ErrNotFound):
			delete(s.readErrs, id)
		default:
			if msg := r.err.Error(); s.readErrs[id] != msg {
				slog.Warn("monitor: cannot read container", "name", displayName(r.c), "err", msg)
				s.readErrs[id] = msg
			}
		}
	}
	s.errMu.Unlock()
}

// readErr is container id's last read error, "" for none.
func (s *Server) readErr(id string) string {
	s.errMu.Lock()
	defer s.errMu.Unlock()
	return s.readErrs[id]
}

// liveContainers filters the containers whose processes run (paused ones too:
// their cgroup still exists).
func liveContainers(cs []runtime.Container) []runtime.Container {
	out := make([]runtime.Container, 0, len(cs))
	for _, c := range cs {
		if c.State.Running || c.State.Paused {
			out = append(out, c)
		}
	}
	return out
}

type reading struct {
	c     runtime.Container
	stats Stats
	err   error
}

// readParallel bounds the concurrent stats reads of NewManagerSource.
const readParallel = 4

// readAll reads the stats of cs in cs's order. The readings carry the
// container's ID, name and image whatever the source filled in. A
// source that returns the wrong number of results, or panics, fails the
// containers rather than the server.
func (s *Server) readAll(ctx context.Context, cs []runtime.Container) (out []reading) {
	out = make([]reading, len(cs))
	for i, c := range cs {
		out[i].c = c
	}
	if len(cs) == 0 {
		return out
	}
	var res []StatsResult
	func() {
		defer func() {
			if p := recover(); p != nil {
				res = nil
				slog.Error("monitor: reading stats panicked", "panic", p)
			}
		}()
		res = s.src.Stats(ctx, cs)
	}()
	if len(res) != len(cs) {
		for i := range out {
			out[i].err = fmt.Errorf("stats %s: the stats source returned %d results for %d containers", displayName(cs[i]), len(res), len(cs))
		}
		return out
	}
	for i, c := range cs {
		if res[i].Err != nil {
			out[i].err = res[i].Err
			continue
		}
		st := res[i].Stats
		st.ID, st.Name, st.Image = c.Config.ID, displayName(c), c.Config.Image
		if st.Read.IsZero() {
			st.Read = s.now()
		}
		out[i].stats = st
	}
	return out
}

// displayName is the container's name without docker's leading "/".
func displayName(c runtime.Container) string {
	n := c.Config.Name
	if len(n) > 0 && n[0] == '/' {
		n = n[1:]
	}
	return n
}

// cgroupID is the id label cAdvisor gives a container: its cgroup path.
func cgroupID(c runtime.Container) string {
	if p := c.Config.Create.CgroupsPath; p != "" {
		return p
	}
	return "/berth/" + c.Config.ID // runtime.DefaultCgroupsPath
}

// healthState is container_health_state's value: 1 healthy, 0
// unhealthy, -1 starting or no health check.
func healthState(c runtime.Container) float64 {
	if c.State.Health == nil {
		return -1
	}
	switch c.State.Health.Status {
	case "healthy":
		return 1
	case "unhealthy":
		return 0
	}
	return -1
}

// healthStatus is the container's health status, "none" without a check.
func healthStatus(c runtime.Container) string {
	if c.State.Health == nil || c.State.Health.Status == "" {
		return "none"
	}
	return c.State.Health.Status
}
