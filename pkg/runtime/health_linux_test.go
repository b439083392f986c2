package runtime

import (
	"context"
	"errors"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berthsh/berth/pkg/errdefs"
)

func TestMergeHealthConfig(t *testing.T) {
	img := &HealthConfig{Test: []string{"CMD", "check"}, Interval: time.Minute, Timeout: 3 * time.Second,
		StartPeriod: 10 * time.Second, StartInterval: time.Second, Retries: 5}
	for _, tc := range []struct {
		name          string
		img, override *HealthConfig
		want          *HealthConfig
	}{
		{"none", nil, nil, nil},
		{"image only", img, nil, img},
		{"override only", nil, &HealthConfig{Test: []string{"CMD-SHELL", "x"}, Retries: 1},
			&HealthConfig{Test: []string{"CMD-SHELL", "x"}, Retries: 1}},
		{"per field", img, &HealthConfig{Interval: time.Second, Retries: 2, OnFailure: "restart"},
			&HealthConfig{Test: []string{"CMD", "check"}, Interval: time.Second, Timeout: 3 * time.Second,
				StartPeriod: 10 * time.Second, StartInterval: time.Second, Retries: 2, OnFailure: "restart"}},
		{"test replaced", img, &HealthConfig{Test: []string{"CMD-SHELL", "true"}},
			&HealthConfig{Test: []string{"CMD-SHELL", "true"}, Interval: time.Minute, Timeout: 3 * time.Second,
				StartPeriod: 10 * time.Second, StartInterval: time.Second, Retries: 5}},
		{"disabled", img, &HealthConfig{Test: []string{"NONE"}},
			&HealthConfig{Test: []string{"NONE"}, Interval: time.Minute, Timeout: 3 * time.Second,
				StartPeriod: 10 * time.Second, StartInterval: time.Second, Retries: 5}},
	} {
		got := mergeHealthConfig(tc.img, tc.override)
		if (got == nil) != (tc.want == nil) || (got != nil && !equalHealthConfig(*got, *tc.want)) {
			t.Errorf("%s: got %+v, want %+v", tc.name, got, tc.want)
		}
		if got != nil && tc.img != nil && len(got.Test) > 0 {
			got.Test[0] = "changed"
			if tc.img.Test[0] == "changed" {
				t.Fatalf("%s: the merge shares the image's Test", tc.name)
			}
		}
	}
}

func equalHealthConfig(a, b HealthConfig) bool {
	return slices.Equal(a.Test, b.Test) && a.Interval == b.Interval && a.Timeout == b.Timeout &&
		a.StartPeriod == b.StartPeriod && a.StartInterval == b.StartInterval && a.Retries == b.Retries && a.OnFailure == b.OnFailure
}

func TestValidateHealthConfig(t *testing.T) {
	for _, tc := range []struct {
		hc *HealthConfig
		ok bool
	}{
		{nil, true},
		{&HealthConfig{Test: []string{"CMD-SHELL", "true"}, Interval: time.Millisecond, OnFailure: "kill"}, true},
		{&HealthConfig{Test: []string{"NONE"}}, true},
		{&HealthConfig{Retries: 2}, true},
		{&HealthConfig{Interval: -time.Second}, false},
		{&HealthConfig{Timeout: time.Microsecond}, false},
		{&HealthConfig{StartPeriod: -1}, false},
		{&HealthConfig{Retries: -1}, false},
		{&HealthConfig{OnFailure: "explode"}, false},
		{&HealthConfig{Test: []string{"CMD"}}, false},
		{&HealthConfig{Test: []string{"HTTP", "/"}}, false},
	} {
		err := validateHealthConfig(tc.hc)
		if (err == nil) != tc.ok || (err != nil && !errors.Is(err, errdefs.ErrInvalidArgument)) {
			t.Errorf("validate %+v = %v, want ok %v", tc.hc, err, tc.ok)
		}
	}
}

func TestHealthCommand(t *testing.T) {
	for _, tc := range []struct {
		test, shell, want []string
	}{
		{[]string{"CMD", "curl", "-f", "http://x/"}, nil, []string{"curl", "-f", "http://x/"}},
		{[]string{"CMD-SHELL", "test -e /ok"}, nil, []string{"/bin/sh", "-c", "test -e /ok"}},
		{[]string{"CMD-SHELL", "test -e /ok"}, []string{"/bin/bash", "-ec"}, []string{"/bin/bash", "-ec", "test -e /ok"}},
		{[]string{"NONE"}, nil, nil},
		{[]string{"CMD"}, nil, nil},
		{nil, nil, nil},
	} {
		got, ok := healthCommand(&HealthConfig{Test: tc.test}, tc.shell)
		if ok != (tc.want != nil) || !slices.Equal(got, tc.want) {
			t.Errorf("healthCommand(%q, %q) = %q %v, want %q", tc.test, tc.shell, got, ok, tc.want)
		}
	}
	if _, ok := healthCommand(nil, nil); ok {
		t.Error("no config gave a command")
	}
}

func TestHealthProbeDelay(t *testing.T) {
	hc := withHealthDefaults(HealthConfig{Interval: 10 * time.Second, StartPeriod: 30 * time.Second, StartInterval: 2 * time.Second})
	for _, tc := range []struct {
		elapsed time.Duration
		status  string
		want    time.Duration
	}{
		{0, healthStarting, 2 * time.Second},
		{29 * time.Second, healthStarting, time.Second},
		{5 * time.Second, healthHealthy, 10 * time.Second},
		{25 * time.Second, healthHealthy, 5 * time.Second},
		{30 * time.Second, healthStarting, 10 * time.Second},
		{time.Hour, healthUnhealthy, 10 * time.Second},
	} {
		if got := healthProbeDelay(hc, tc.elapsed, tc.status); got != tc.want {
			t.Errorf("delay at %v (%s) = %v, want %v", tc.elapsed, tc.status, got, tc.want)
		}
	}
	// No start period: the interval, from the start.
	def := withHealthDefaults(HealthConfig{})
	if got := healthProbeDelay(def, 0, healthStarting); got != 30*time.Second {
		t.Errorf("default first delay = %v, want 30s", got)
	}
	if def.Timeout != 30*time.Second || def.Retries != 3 || def.StartInterval != 5*time.Second || def.StartPeriod != 0 {
		t.Errorf("defaults = %+v", def)
	}
}

func TestApplyHealthProbe(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	type step struct {
		sec, code int
		status    string
		streak    int
	}
	for _, tc := range []struct {
		name  string
		hc    HealthConfig
		steps []step
	}{
		{"retries", HealthConfig{Retries: 3}, []step{
			{1, 1, healthStarting, 1}, {2, 1, healthStarting, 2}, {3, 1, healthUnhealthy, 3},
			{4, 1, healthUnhealthy, 4}, {5, 0, healthHealthy, 0}, {6, 2, healthHealthy, 1},
		}},
		{"start period", HealthConfig{Retries: 1, StartPeriod: 10 * time.Second}, []step{
			{1, 1, healthStarting, 0}, {9, 1, healthStarting, 0}, {10, 1, healthUnhealthy, 1},
		}},
		{"success ends the start period", HealthConfig{Retries: 2, StartPeriod: 10 * time.Second}, []step{
			{1, 1, healthStarting, 0}, {2, 0, healthHealthy, 0}, {3, 1, healthHealthy, 1}, {4, -1, healthUnhealthy, 2},
		}},
	} {
		h := Health{Status: healthStarting}
		hc := withHealthDefaults(tc.hc)
		for i, s := range tc.steps {
			applyHealthProbe(&h, hc, t0, HealthProbe{Start: at(s.sec), End: at(s.sec), ExitCode: s.code})
			if h.Status != s.status || h.FailingStreak != s.streak {
				t.Errorf("%s: step %d: %s streak %d, want %s streak %d", tc.name, i, h.Status, h.FailingStreak, s.status, s.streak)
			}
		}
		if want := min(len(tc.steps), healthLogMax); len(h.Log) != want {
			t.Errorf("%s: %d log entries, want %d", tc.name, len(h.Log), want)
		}
		if last := tc.steps[len(tc.steps)-1]; h.Log[len(h.Log)-1].ExitCode != last.code {
			t.Errorf("%s: last log entry %+v", tc.name, h.Log[len(h.Log)-1])
		}
	}
	// The log keeps the last five, oldest first.
	h := Health{Status: healthStarting}
	for i := range 8 {
		applyHealthProbe(&h, withHealthDefaults(HealthConfig{}), t0, HealthProbe{Start: at(i), ExitCode: i})
	}
	var codes []int
	for _, r := range h.Log {
		codes = append(codes, r.ExitCode)
	}
	if !slices.Equal(codes, []int{3, 4, 5, 6, 7}) {
		t.Errorf("log = %v, want the last five", codes)
	}
}

func TestLimitedBuffer(t *testing.T) {
	var b limitedBuffer
	if n, err := b.Write([]byte(strings.Repeat("a", 4000))); n != 4000 || err != nil {
		t.Fatalf("write = %d %v", n, err)
	}
	if got := b.String(); len(got) != 4000 || strings.HasSuffix(got, "...") {
		t.Errorf("under the cap: %d bytes", len(got))
	}
	if n, _ := b.Write([]byte(strings.Repeat("b", 200))); n != 200 {
		t.Errorf("write over the cap reported %d", n)
	}
	got := b.String()
	if want := strings.Repeat("a", 4000) + strings.Repeat("b", 96) + "..."; got != want {
		t.Errorf("over the cap: %d bytes, suffix %q", len(got), got[len(got)-10:])
	}
}

// fakeClock is a manual clock; each After is announced on reg.
type fakeClock struct {
	mu      sync.Mutex
	now     time.Time
	waiters []fakeWaiter
	reg     chan time.Duration
}

type fakeWaiter struct {
	at time.Time
	ch chan time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), reg: make(chan time.Duration, 100)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	ch := make(chan time.Time, 1)
	c.mu.Lock()
	c.waiters = append(c.waiters, fakeWaiter{c.now.Add(d), ch})
	c.mu.Unlock()
	c.reg <- d
	return ch
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	kept := c.waiters[:0]
	for _, w := range c.waiters {
		if !w.at.After(c.now) {
			w.ch <- c.now
		} else {
			kept = append(kept, w)
		}
	}
	c.waiters = kept
}

type commitRec struct {
	h   Health
	old string
}

// monitorHarness runs a healthMonitor on a fake clock.
type monitorHarness struct {
	t       *testing.T
	clock   *fakeClock
	commits chan commitRec
	cancel  context.CancelFunc
	done    chan struct{}
}

func startMonitor(t *testing.T, hc HealthConfig, paused func() bool, probe func(ctx context.Context, out io.Writer) (int, error)) *monitorHarness {
	t.Helper()
	clk := newFakeClock()
	h := &monitorHarness{t: t, clock: clk, commits: make(chan commitRec, 100), done: make(chan struct{})}
	m := &healthMonitor{hc: withHealthDefaults(hc), started: clk.Now(), health: Health{Status: healthStarting},
		clock: clk, probe: probe, paused: paused,
		commit: func(hh Health, old string) { h.commits <- commitRec{hh, old} }}
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	go func() {
		defer close(h.done)
		m.run(ctx)
	}()
	t.Cleanup(h.stop)
	return h
}

func (h *monitorHarness) stop() {
	h.cancel()
	<-h.done
}

// wait returns the next duration the monitor waits for.
func (h *monitorHarness) wait() time.Duration {
	h.t.Helper()
	select {
	case d := <-h.clock.reg:
		return d
	case <-time.After(10 * time.Second):
		h.t.Fatal("the monitor never waited")
	}
	return 0
}

func (h *monitorHarness) commit() commitRec {
	h.t.Helper()
	select {
	case c := <-h.commits:
		return c
	case <-time.After(10 * time.Second):
		h.t.Fatal("no health state committed")
	}
	return commitRec{}
}

func TestHealthMonitorSchedule(t *testing.T) {
	results := []int{1, 1, 0, 1, 1}
	var mu sync.Mutex
	calls := 0
	probe := func(ctx context.Context, out io.Writer) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		code := results[calls]
		calls++
		_, _ = io.WriteString(out, "probe output")
		return code, nil
	}
	h := startMonitor(t, HealthConfig{Interval: 10 * time.Second, Timeout: 5 * time.Second, StartPeriod: 30 * time.Second,
		StartInterval: 2 * time.Second, Retries: 2}, nil, probe)
	type want struct {
		delay  time.Duration
		status string
		streak int
	}
	var changes []string
	for i, w := range []want{
		{2 * time.Second, healthStarting, 0},   // t=2: failure in the start period
		{2 * time.Second, healthStarting, 0},   // t=4
		{2 * time.Second, healthHealthy, 0},    // t=6: success
		{10 * time.Second, healthHealthy, 1},   // t=16: counts now
		{10 * time.Second, healthUnhealthy, 2}, // t=26
	} {
		d := h.wait()
		if d != w.delay {
			t.Fatalf("probe %d: waited %v, want %v", i, d, w.delay)
		}
		h.clock.Advance(d)
		if to := h.wait(); to != 5*time.Second {
			t.Fatalf("probe %d: timeout %v, want 5s", i, to)
		}
		c := h.commit()
		if c.h.Status != w.status || c.h.FailingStreak != w.streak {
			t.Fatalf("probe %d: %s streak %d, want %s streak %d", i, c.h.Status, c.h.FailingStreak, w.status, w.streak)
		}
		last := c.h.Log[len(c.h.Log)-1]
		if last.Output != "probe output" || last.ExitCode != results[i] || !last.End.Equal(h.clock.Now()) {
			t.Errorf("probe %d: logged %+v", i, last)
		}
		if c.old != c.h.Status {
			changes = append(changes, c.h.Status)
		}
	}
	if !slices.Equal(changes, []string{healthHealthy, healthUnhealthy}) {
		t.Errorf("status changes %q", changes)
	}
	// The start period ends 4 s after the last probe: probe then.
	if d := h.wait(); d != 4*time.Second {
		t.Errorf("after the last probe: waited %v, want 4s", d)
	}
}

func TestHealthMonitorTimeout(t *testing.T) {
	killed := make(chan struct{})
	probe := func(ctx context.Context, out io.Writer) (int, error) {
		_, _ = io.WriteString(out, "partial")
		<-ctx.Done()
		close(killed)
		return -1, ctx.Err()
	}
	h := startMonitor(t, HealthConfig{Interval: time.Second, Timeout: 3 * time.Second, Retries: 1}, nil, probe)
	h.clock.Advance(h.wait())
	h.clock.Advance(h.wait())
	c := h.commit()
	select {
	case <-killed:
	default:
		t.Error("the timed out probe was not cancelled")
	}
	r := c.h.Log[0]
	if r.ExitCode != -1 || r.Output != "Health check exceeded timeout (3s): partial" || r.End.Sub(r.Start) != 3*time.Second {
		t.Errorf("timed out probe logged as %+v", r)
	}
	if c.h.Status != healthUnhealthy || c.h.FailingStreak != 1 {
		t.Errorf("after a timeout: %s streak %d", c.h.Status, c.h.FailingStreak)
	}
}

func TestHealthMonitorProbeErrorAndPause(t *testing.T) {
	var mu sync.Mutex
	paused := true
	probes := 0
	probe := func(ctx context.Context, out io.Writer) (int, error) {
		mu.Lock()
		probes++
		mu.Unlock()
		return 0, errors.New("exec failed: no such file")
	}
	isPaused := func() bool {
		mu.Lock()
		defer mu.Unlock()
		return paused
	}
	h := startMonitor(t, HealthConfig{Interval: time.Second, Retries: 3}, isPaused, probe)
	// Paused: the monitor waits again without probing.
	h.clock.Advance(h.wait())
	if d := h.wait(); d != time.Second {
		t.Fatalf("paused: waited %v", d)
	}
	mu.Lock()
	n := probes
	paused = false
	mu.Unlock()
	if n != 0 {
		t.Fatalf("probed %d times while paused", n)
	}
	select {
	case c := <-h.commits:
		t.Fatalf("committed %+v while paused", c)
	default:
	}
	h.clock.Advance(time.Second)
	h.wait() // the probe's timeout
	c := h.commit()
	if r := c.h.Log[0]; r.ExitCode != -1 || r.Output != "exec failed: no such file" || c.h.FailingStreak != 1 {
		t.Errorf("failed exec logged as %+v (streak %d)", r, c.h.FailingStreak)
	}
	// Stopped: nothing more is committed.
	h.stop()
	select {
	case c := <-h.commits:
		t.Errorf("committed %+v after the stop", c)
	default:
	}
}

func TestNewRunHealth(t *testing.T) {
	if newRunHealth(&Health{Status: healthHealthy}, false) != nil {
		t.Error("health state without a health check")
	}
	prev := &Health{Status: healthUnhealthy, FailingStreak: 4, Log: []HealthProbe{{ExitCode: 1}}}
	h := newRunHealth(prev, true)
	if h.Status != healthStarting || h.FailingStreak != 0 || len(h.Log) != 1 {
		t.Errorf("reset = %+v", h)
	}
	if h := newRunHealth(nil, true); h.Status != healthStarting || h.Log == nil {
		t.Errorf("first = %+v", h)
	}
}
