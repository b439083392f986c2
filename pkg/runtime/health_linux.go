package runtime

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berthsh/berth/pkg/errdefs"
	"github.com/berthsh/berth/pkg/events"
	"github.com/berthsh/berth/pkg/store"
)

// Health check defaults and limits, as docker's.
const (
	defaultHealthInterval      = 30 * time.Second
	defaultHealthTimeout       = 30 * time.Second
	defaultHealthStartInterval = 5 * time.Second
	defaultHealthRetries       = 3
	// minHealthDuration is the shortest non-zero duration accepted.
	minHealthDuration = time.Millisecond
	// healthOutputMax bounds the output kept of one probe.
	healthOutputMax = 4096
	// healthLogMax is how many probe results are kept.
	healthLogMax = 5
)

// Health statuses (State.Health.Status).
const (
	healthStarting  = "starting"
	healthHealthy   = "healthy"
	healthUnhealthy = "unhealthy"
)

// --health-on-failure actions.
const (
	healthActionNone    = "none"
	healthActionRestart = "restart"
	healthActionStop    = "stop"
	healthActionKill    = "kill"
)

// mergeHealthConfig is the effective health check of a container whose
// image has img and that was created with override, merged field by
// field as docker does: a set field of override wins, an unset one (no
// test, zero duration or retries) takes the image's. A nil result means
// no health check configured at all.
func mergeHealthConfig(img, override *HealthConfig) *HealthConfig {
	if override == nil {
		if img == nil {
			return nil
		}
		c := *img
		c.Test = slices.Clone(img.Test)
		return &c
	}
	c := *override
	c.Test = slices.Clone(override.Test)
	if img == nil {
		return &c
	}
	if len(c.Test) == 0 {
		c.Test = slices.Clone(img.Test)
	}
	if c.Interval == 0 {
		c.Interval = img.Interval
	}
	if c.Timeout == 0 {
		c.Timeout = img.Timeout
	}
	if c.StartPeriod == 0 {
		c.StartPeriod = img.StartPeriod
	}
	if c.StartInterval == 0 {
		c.StartInterval = img.StartInterval
	}
	if c.Retries == 0 {
		c.Retries = img.Retries
	}
	return &c
}

// validateHealthConfig checks a health check as docker does at create,
// plus berth's --health-on-failure.
func validateHealthConfig(hc *HealthConfig) error {
	if hc == nil {
		return nil
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"interval", hc.Interval}, {"timeout", hc.Timeout}, {"start period", hc.StartPeriod}, {"start interval", hc.StartInterval}} {
		if d.v < 0 {
			return fmt.Errorf("health check %s %v cannot be negative: %w", d.name, d.v, errdefs.ErrInvalidArgument)
		}
		if d.v != 0 && d.v < minHealthDuration {
			return fmt.Errorf("health check %s %v cannot be less than %v: %w", d.name, d.v, minHealthDuration, errdefs.ErrInvalidArgument)
		}
	}
	if hc.Retries < 0 {
		return fmt.Errorf("health check retries %d cannot be negative: %w", hc.Retries, errdefs.ErrInvalidArgument)
	}
	switch hc.OnFailure {
	case "", healthActionNone, healthActionRestart, healthActionStop, healthActionKill:
	default:
		return fmt.Errorf("invalid health-on-failure action %q: want none, restart, stop or kill: %w", hc.OnFailure, errdefs.ErrInvalidArgument)
	}
	if len(hc.Test) > 0 {
		switch hc.Test[0] {
		case "NONE":
		case "CMD", "CMD-SHELL":
			if len(hc.Test) < 2 || hc.Test[1] == "" {
				return fmt.Errorf("health check %s has no command: %w", hc.Test[0], errdefs.ErrInvalidArgument)
			}
		default:
			return fmt.Errorf("unknown health check type %q: want CMD, CMD-SHELL or NONE: %w", hc.Test[0], errdefs.ErrInvalidArgument)
		}
	}
	return nil
}

// withHealthDefaults fills the zero fields of hc with docker's defaults
// (the start period's is 0).
func withHealthDefaults(hc HealthConfig) HealthConfig {
	if hc.Interval == 0 {
		hc.Interval = defaultHealthInterval
	}
	if hc.Timeout == 0 {
		hc.Timeout = defaultHealthTimeout
	}
	if hc.StartInterval == 0 {
		hc.StartInterval = defaultHealthStartInterval
	}
	if hc.Retries <= 0 {
		hc.Retries = defaultHealthRetries
	}
	return hc
}

// healthCommand is the command line a health check runs, shell being the
// image's SHELL (default /bin/sh -c) for CMD-SHELL; false when there is
// no check to run (none configured, NONE, or an unknown type).
func healthCommand(hc *HealthConfig, shell []string) ([]string, bool) {
	if hc == nil || len(hc.Test) < 2 {
		return nil, false
	}
	switch hc.Test[0] {
	case "CMD":
		return slices.Clone(hc.Test[1:]), true
	case "CMD-SHELL":
		if len(shell) == 0 {
			shell = []string{"/bin/sh", "-c"}
		}
		return append(slices.Clone(shell), hc.Test[1:]...), true
	}
	return nil, false
}

// newRunHealth is the health state at a (re)start: starting, no failing
// streak; the log of earlier runs is kept, as docker does. nil when the
// container has no health check.
func newRunHealth(prev *Health, enabled bool) *Health {
	if !enabled {
		return nil
	}
	h := &Health{Status: healthStarting, Log: []HealthProbe{}}
	if prev != nil {
		h.Log = slices.Clone(prev.Log)
	}
	return h
}

// healthProbeDelay is how long to wait before the next probe, elapsed
// after the container started, while the status is status: the start
// interval while starting within the start period, the interval
// otherwise, and never past the end of the start period (so that the
// first counting probe runs as soon as it ends).
func healthProbeDelay(hc HealthConfig, elapsed time.Duration, status string) time.Duration {
	if elapsed >= hc.StartPeriod {
		return hc.Interval
	}
	d := hc.Interval
	if status == healthStarting {
		d = hc.StartInterval
	}
	return min(d, hc.StartPeriod-elapsed)
}

// applyHealthProbe records probe r in h, for a container that started
// at started: a success makes it healthy (and ends the start period); a
// failure adds to the failing streak, except while starting within the
// start period, and makes it unhealthy at hc.Retries.
func applyHealthProbe(h *Health, hc HealthConfig, started time.Time, r HealthProbe) {
	h.Log = append(h.Log, r)
	if n := len(h.Log); n > healthLogMax {
		h.Log = slices.Clone(h.Log[n-healthLogMax:])
	}
	if r.ExitCode == 0 {
		h.FailingStreak = 0
		h.Status = healthHealthy
		return
	}
	if h.Status == healthStarting && r.Start.Sub(started) < hc.StartPeriod {
		return
	}
	h.FailingStreak++
	if h.FailingStreak >= hc.Retries {
		h.Status = healthUnhealthy
	}
}

// limitedBuffer keeps the first healthOutputMax bytes written to it.
type limitedBuffer struct {
	mu        sync.Mutex
	buf       bytes.Buffer
	truncated bool
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	keep := min(healthOutputMax-b.buf.Len(), len(p))
	if keep > 0 {
		b.buf.Write(p[:keep])
	}
	if keep < len(p) {
		b.truncated = true
	}
	return len(p), nil
}

// String is what was kept, with "..." when some was dropped.
func (b *limitedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.truncated {
		return b.buf.String() + "..."
	}
	return b.buf.String()
}

// healthClock is the time the health monitor runs on.
type healthClock interface {
	Now() time.Time
	After(d time.Duration) <-chan time.Time
}

type realClock struct{}

func (realClock) Now() time.Time                         { return time.Now() }
func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// healthMonitor runs the health checks of one run of a container.
type healthMonitor struct {
	// hc is the effective configuration with defaults applied.
	hc      HealthConfig
	started time.Time
	health  Health
	clock   healthClock
	// probe runs the check once, writing its output to out, and returns
	// its exit code; when ctx is cancelled it kills the check and
	// returns.
	probe func(ctx context.Context, out io.Writer) (int, error)
	// paused reports whether the container is paused (no probe then).
	paused func() bool
	// commit is told of each new health state and the status before it.
	commit func(h Health, oldStatus string)
}

// run probes until ctx is cancelled.
func (m *healthMonitor) run(ctx context.Context) {
	for {
		delay := healthProbeDelay(m.hc, m.clock.Now().Sub(m.started), m.health.Status)
		select {
		case <-ctx.Done():
			return
		case <-m.clock.After(delay):
		}
		if m.paused != nil && m.paused() {
			continue
		}
		r, ok := m.runProbe(ctx)
		if !ok {
			return
		}
		old := m.health.Status
		applyHealthProbe(&m.health, m.hc, m.started, r)
		h := m.health
		h.Log = slices.Clone(m.health.Log)
		m.commit(h, old)
	}
}

// runProbe runs one probe with the timeout; false when ctx was cancelled
// meanwhile (the result is dropped).
func (m *healthMonitor) runProbe(ctx context.Context) (HealthProbe, bool) {
	start := m.clock.Now()
	pctx, cancel := context.WithCancel(ctx)
	defer cancel()
	out := &limitedBuffer{}
	type result struct {
		code int
		err  error
	}
	done := make(chan result, 1)
	go func() {
		code, err := m.probe(pctx, out)
		done <- result{code, err}
	}()
	select {
	case res := <-done:
		if ctx.Err() != nil {
			return HealthProbe{}, false
		}
		r := HealthProbe{Start: start, End: m.clock.Now(), ExitCode: res.code, Output: out.String()}
		if res.err != nil {
			r.ExitCode, r.Output = -1, res.err.Error()
		}
		return r, true
	case <-m.clock.After(m.hc.Timeout):
		cancel()
		<-done
		if ctx.Err() != nil {
			return HealthProbe{}, false
		}
		msg := fmt.Sprintf("Health check exceeded timeout (%v)", m.hc.Timeout)
		if o := out.String(); o != "" {
			msg += ": " + o
		}
		return HealthProbe{Start: start, End: m.clock.Now(), ExitCode: -1, Output: msg}, true
	case <-ctx.Done():
		cancel()
		<-done
		return HealthProbe{}, false
	}
}

// supervisorHealth is the supervisor's health check state.
type supervisorHealth struct {
	once  sync.Once
	cfg   *HealthConfig // effective, before defaults; nil: none
	cmd   []string      // the probe's command line; nil: no checks
	err   error
	stop  func() // ends the current run's monitor and waits for it
	mu    sync.Mutex
	again bool // a restart was asked for by --health-on-failure restart
}

// imageHealth reads the image's HEALTHCHECK (with StartInterval, which
// ggcr's type lacks) and SHELL.
func (m *Manager) imageHealth(ctx context.Context, img store.Image) (*HealthConfig, []string, error) {
	cf, id, err := m.store.ConfigFile(ctx, img)
	if err != nil {
		return nil, nil, err
	}
	var hc *HealthConfig
	if h := cf.Config.Healthcheck; h != nil {
		hc = &HealthConfig{Test: h.Test, Interval: h.Interval, Timeout: h.Timeout, StartPeriod: h.StartPeriod, Retries: h.Retries}
		if raw, err := m.store.ReadBlob(ctx, id); err == nil {
			var extra struct {
				Config struct {
					Healthcheck *store.HealthConfig `json:"Healthcheck"`
				} `json:"config"`
			}
			if json.Unmarshal(raw, &extra) == nil && extra.Config.Healthcheck != nil {
				hc.StartInterval = extra.Config.Healthcheck.StartInterval
			}
		}
	}
	return hc, cf.Config.Shell, nil
}

// effectiveHealthcheck merges the image's health check with the
// container's override (see mergeHealthConfig) and checks the result.
func (m *Manager) effectiveHealthcheck(ctx context.Context, img store.Image, override *HealthConfig) (*HealthConfig, error) {
	if err := validateHealthConfig(override); err != nil {
		return nil, err
	}
	ihc, _, err := m.imageHealth(ctx, img)
	if err != nil {
		return nil, fmt.Errorf("health check: %w", err)
	}
	hc := mergeHealthConfig(ihc, override)
	if err := validateHealthConfig(hc); err != nil {
		return nil, err
	}
	return hc, nil
}

// healthSetup finds the container's effective health check once.
func (s *supervisor) healthSetup() (*HealthConfig, []string) {
	s.health.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		hc := s.cfg.Healthcheck
		var shell []string
		if img, err := s.m.store.Get(ctx, s.cfg.ImageID.String()); err == nil {
			ihc, sh, err := s.m.imageHealth(ctx, img)
			if err == nil {
				hc, shell = mergeHealthConfig(ihc, hc), sh
			} else {
				s.health.err = err
			}
		} else {
			s.health.err = err
		}
		if s.health.err != nil {
			s.logf("health check: image config: %v", s.health.err)
		}
		s.health.cfg = hc
		if cmd, ok := healthCommand(hc, shell); ok {
			s.health.cmd = cmd
		} else if hc != nil && len(hc.Test) > 0 && hc.Test[0] != "NONE" {
			s.logf("health check: unknown test %q: no checks run", hc.Test)
		}
	})
	return s.health.cfg, s.health.cmd
}

// resetHealth is the health state to record at a (re)start.
func (s *supervisor) resetHealth(prev *Health) *Health {
	_, cmd := s.healthSetup()
	return newRunHealth(prev, cmd != nil)
}

// startHealth starts the health checks of the run that just started.
func (s *supervisor) startHealth() {
	hc, cmd := s.healthSetup()
	if cmd == nil {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	h := Health{Status: healthStarting}
	if st, err := loadState(s.dir); err == nil && st.Health != nil {
		h = *st.Health
		h.Status, h.FailingStreak = healthStarting, 0
	}
	m := &healthMonitor{
		hc:      withHealthDefaults(*hc),
		started: s.start,
		health:  h,
		clock:   realClock{},
		probe:   s.execProbe(cmd),
		paused:  s.isPaused,
		commit:  s.commitHealth,
	}
	s.health.mu.Lock()
	s.health.stop = func() {
		cancel()
		<-done
	}
	s.health.mu.Unlock()
	go func() {
		defer close(done)
		m.run(ctx)
	}()
}

// stopHealth ends the health checks of the run that ended.
func (s *supervisor) stopHealth() {
	s.health.mu.Lock()
	stop := s.health.stop
	s.health.stop = nil
	s.health.mu.Unlock()
	if stop != nil {
		stop()
	}
}

// takeHealthRestart reports (once) whether --health-on-failure restart
// asked for the run that ended to be restarted; an explicit stop wins.
func (s *supervisor) takeHealthRestart() bool {
	s.health.mu.Lock()
	again := s.health.again
	s.health.again = false
	s.health.mu.Unlock()
	return again && !s.isStopRequested()
}

func (s *supervisor) isPaused() bool {
	s.mu.Lock()
	c := s.c
	s.mu.Unlock()
	if c == nil {
		return false
	}
	st, err := c.State()
	return err == nil && st == "paused"
}

// execProbe runs cmd in the container as the container's user, in its
// working directory and environment, its output (stdout and stderr) to
// out.
func (s *supervisor) execProbe(cmd []string) func(ctx context.Context, out io.Writer) (int, error) {
	return func(ctx context.Context, out io.Writer) (int, error) {
		s.mu.Lock()
		running, c := s.running, s.c
		s.mu.Unlock()
		if !running || c == nil {
			return -1, fmt.Errorf("container %s is not running: %w", shortContainerID(s.id), errdefs.ErrConflict)
		}
		sp, err := ExecProcess(s.spec, ExecOptions{Cmd: cmd})
		if err != nil {
			return -1, err
		}
		r, w, err := os.Pipe()
		if err != nil {
			return -1, err
		}
		p, err := c.Exec(ctx, sp, Stdio{Stdout: w, Stderr: w})
		w.Close()
		if err != nil {
			r.Close()
			return -1, err
		}
		copied := make(chan struct{})
		go func() {
			defer close(copied)
			_, _ = io.Copy(out, r)
		}()
		st, werr := p.Wait(ctx)
		if ctx.Err() != nil {
			_ = p.Signal(unix.SIGKILL)
			kctx, kcancel := context.WithTimeout(context.Background(), 10*time.Second)
			st, werr = p.Wait(kctx)
			kcancel()
		}
		// A process the check left behind may hold the pipe open.
		select {
		case <-copied:
		case <-time.After(time.Second):
		}
		r.Close()
		<-copied
		if ctx.Err() != nil {
			return -1, ctx.Err()
		}
		if werr != nil {
			return -1, werr
		}
		return st.Code, nil
	}
}

// commitHealth records a new health state, announces a status change
// and acts on a container turning unhealthy.
func (s *supervisor) commitHealth(h Health, old string) {
	s.updateState(func(st *State) {
		hh := h
		st.Health = &hh
	})
	if h.Status == old {
		return
	}
	_ = events.Emit(s.m.root, events.Event{
		Type:   events.TypeContainer,
		Action: "health_status: " + h.Status,
		Actor:  events.Actor{ID: s.id, Attributes: map[string]string{"name": s.cfg.Name, "image": s.cfg.Image}},
	})
	if h.Status != healthUnhealthy {
		return
	}
	hc, _ := s.healthSetup()
	action := ""
	if hc != nil {
		action = hc.OnFailure
	}
	switch action {
	case healthActionStop:
		s.logf("health check: unhealthy, stopping the container")
		sig, timeout := s.stopParams()
		go func() { _ = s.stop(sig, timeout) }()
	case healthActionKill:
		s.logf("health check: unhealthy, killing the container")
		go func() { _ = s.stop(unix.SIGKILL, -1) }()
	case healthActionRestart:
		s.logf("health check: unhealthy, restarting the container")
		s.health.mu.Lock()
		s.health.again = true
		s.health.mu.Unlock()
		go s.terminate()
	}
}

// stopParams are the signal and grace period of a stop: the container's
// or image's stop signal (SIGTERM by default) and stop timeout (10 s).
func (s *supervisor) stopParams() (syscall.Signal, time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sig, err := s.m.stopSignal(ctx, Container{Config: s.cfg}, "")
	if err != nil {
		sig = unix.SIGTERM
	}
	timeout := 10 * time.Second
	if s.cfg.StopTimeout != nil {
		timeout = time.Duration(*s.cfg.StopTimeout) * time.Second
	}
	return sig, timeout
}

// terminate ends the current run as stop does, but without marking the
// container stopped, so that the supervisor restarts it.
func (s *supervisor) terminate() {
	s.mu.Lock()
	running, c, exited := s.running, s.c, s.runExited
	s.mu.Unlock()
	if !running || c == nil {
		return
	}
	sig, timeout := s.stopParams()
	if err := s.signal(c, sig); err != nil && !errors.Is(err, errdefs.ErrConflict) {
		s.logf("health check: restart: %v", err)
	}
	select {
	case <-exited:
		return
	case <-time.After(timeout):
	}
	if err := s.signal(c, unix.SIGKILL); err != nil && !errors.Is(err, errdefs.ErrConflict) {
		s.logf("health check: restart: %v", err)
	}
}
