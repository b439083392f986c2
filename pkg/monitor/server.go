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
	// Stats reads a running container's resource usage.
	Stats func(ctx context.Context, c runtime.Container) (Stats, error)
	// Logs returns the last n entries of c's log, oldest first. Optional.
	Logs func(ctx context.Context, c runtime.Container, n int) ([]logs.Entry, error)
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
	// lastRead is when every running container was last read (Unix ns),
	// by the sampler or a scrape: a scrape's readings go into the
	// history too, and the sampler skips a round that one just did, so
	// that Prometheus scraping every second does not double the work.
	lastRead atomic.Int64
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
	s := &Server{src: src, opts: opts, hist: NewHistory(sampleWindow(opts.Retention, opts.Interval)), now: time.Now}

	reg := prometheus.NewRegistry()
	reg.MustRegister(newCollector(s))
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError}))
	s.routes(mux)
	mux.Handle("/", dashboard.Handler())
	s.handler = mux
	return s, nil
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
		ReadHeaderTimeout: 10 * time.Second,
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

// RunSampler samples every Interval until ctx is done.
func (s *Server) RunSampler(ctx context.Context) {
	t := time.NewTicker(s.opts.Interval)
	defer t.Stop()
	for {
		if err := s.SampleOnce(ctx); err != nil && ctx.Err() == nil {
			slog.Debug("monitor sample", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// SampleOnce reads every running container once into the history and
// forgets containers that are gone. A container whose reading fails
// (it stopped meanwhile) is skipped. It does nothing when a scrape read
// them all less than half an interval ago.
func (s *Server) SampleOnce(ctx context.Context) error {
	if since := s.now().UnixNano() - s.lastRead.Load(); since >= 0 && time.Duration(since) < s.opts.Interval/2 {
		return nil
	}
	cs, err := s.src.List(ctx)
	if err != nil {
		return fmt.Errorf("list containers: %w", err)
	}
	s.record(cs, s.readAll(ctx, liveContainers(cs)))
	return nil
}

// record puts a round of readings of the listed containers cs into the
// history, and forgets the containers not in cs.
func (s *Server) record(cs []runtime.Container, rs []reading) {
	known := make(map[string]bool, len(cs))
	for _, c := range cs {
		known[c.Config.ID] = true
	}
	s.hist.Retain(func(id string) bool { return known[id] })
	for _, r := range rs {
		if r.err == nil {
			s.hist.Add(r.stats)
		}
	}
	s.lastRead.Store(s.now().UnixNano())
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

// readParallel bounds the concurrent stats reads.
const readParallel = 4

// readAll reads the stats of cs, a few at a time, in cs's order. The
// readings carry the container's ID, name and image whatever the source
// filled in.
func (s *Server) readAll(ctx context.Context, cs []runtime.Container) []reading {
	out := make([]reading, len(cs))
	sem := make(chan struct{}, readParallel)
	var wg sync.WaitGroup
	for i, c := range cs {
		out[i].c = c
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			st, err := s.src.Stats(ctx, c)
			if err != nil {
				out[i].err = fmt.Errorf("stats %s: %w", displayName(c), err)
				return
			}
			st.ID, st.Name, st.Image = c.Config.ID, displayName(c), c.Config.Image
			if st.Read.IsZero() {
				st.Read = s.now()
			}
			out[i].stats = st
		}()
	}
	wg.Wait()
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
