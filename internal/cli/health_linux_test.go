package cli

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/berthsh/berth/pkg/events"
	"github.com/berthsh/berth/pkg/runtime"
)

func TestPsHealthFilter(t *testing.T) {
	healthy := fakeContainer("a1", "web", runtime.State{Status: "running", Running: true, Health: &runtime.Health{Status: "healthy"}})
	sick := fakeContainer("b2", "api", runtime.State{Status: "running", Running: true, StartedAt: psNow.Add(-time.Second), Health: &runtime.Health{Status: "unhealthy", FailingStreak: 3}})
	starting := fakeContainer("c3", "db", runtime.State{Status: "running", Running: true, Health: &runtime.Health{Status: "starting"}})
	plain := fakeContainer("d4", "job", runtime.State{Status: "running", Running: true})
	for _, tc := range []struct {
		filters []string
		want    []string
	}{
		{[]string{"health=healthy"}, []string{"web"}},
		{[]string{"health=unhealthy"}, []string{"api"}},
		{[]string{"health=starting"}, []string{"db"}},
		{[]string{"health=none"}, []string{"job"}},
		{[]string{"health=healthy", "health=none"}, []string{"web", "job"}},
	} {
		f, err := parsePsFilter(tc.filters)
		if err != nil {
			t.Fatalf("%q: %v", tc.filters, err)
		}
		var got []string
		for _, c := range []runtime.Container{healthy, sick, starting, plain} {
			if f.match(c) {
				got = append(got, containerName(c))
			}
		}
		if !slices.Equal(got, tc.want) || f.impliesAll() {
			t.Errorf("%q matched %q (all %v), want %q", tc.filters, got, f.impliesAll(), tc.want)
		}
	}
	if _, err := parsePsFilter([]string{"health=sick"}); err == nil {
		t.Error("health=sick accepted")
	}
	if got := containerStatus(sick.State, psNow); got != "Up 1 second (unhealthy)" {
		t.Errorf("status = %q", got)
	}
}

func TestInspectHealthShape(t *testing.T) {
	start := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	st := runtime.State{Status: "running", Running: true, Health: &runtime.Health{Status: "unhealthy", FailingStreak: 2,
		Log: []runtime.HealthProbe{{Start: start, End: start.Add(time.Second), ExitCode: 1, Output: "no\n"}}}}
	data, err := json.Marshal(newContainerInspect(fakeContainer("e5", "x", st), nil, "/log"))
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		State struct {
			Health map[string]any
		}
	}
	if err := json.Unmarshal(data, &got); err != nil {
		t.Fatal(err)
	}
	h := got.State.Health
	log, _ := h["Log"].([]any)
	if h["Status"] != "unhealthy" || h["FailingStreak"] != float64(2) || len(log) != 1 {
		t.Fatalf("State.Health = %v", h)
	}
	entry := log[0].(map[string]any)
	if entry["Start"] != "2026-01-02T03:04:05Z" || entry["End"] != "2026-01-02T03:04:06Z" || entry["ExitCode"] != float64(1) || entry["Output"] != "no\n" {
		t.Errorf("log entry = %v", entry)
	}
	// No health check: no Health; before the first probe: an empty log.
	for _, tc := range []struct {
		h    *runtime.Health
		want string
	}{{nil, `"Health"`}, {&runtime.Health{Status: "starting"}, `"Log":[]`}} {
		data, _ := json.Marshal(newContainerInspect(fakeContainer("e5", "x", runtime.State{Status: "running", Running: true, Health: tc.h}), nil, "/log"))
		if strings.Contains(string(data), tc.want) != (tc.h != nil) {
			t.Errorf("health %+v: inspect %s", tc.h, data)
		}
	}
}

// healthInspect is the part of inspect the health tests read.
type healthInspect struct {
	RestartCount int
	State        struct {
		Status    string
		Running   bool
		StartedAt string
		Health    *runtime.Health
	}
	Config struct {
		Healthcheck *struct {
			Test     []string
			Interval int64
			Retries  int
		}
	}
}

func (e *ctrEnv) inspectHealth(name string) healthInspect {
	e.t.Helper()
	var list []healthInspect
	if err := json.Unmarshal([]byte(e.must("container", "inspect", name)), &list); err != nil || len(list) != 1 {
		e.t.Fatalf("inspect %s: %v", name, err)
	}
	return list[0]
}

// waitHealth polls cond for up to a minute (health checks run in the
// containers' supervisors, slow on a loaded machine).
func waitHealth(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(time.Minute); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

func (e *ctrEnv) psNames(filter string) []string {
	e.t.Helper()
	return strings.Fields(e.must("ps", "-a", "--filter", filter, "--format", "{{.Names}}"))
}

func TestHealthCheckCLI(t *testing.T) {
	e := newCtrEnv(t)
	// An image with a HEALTHCHECK.
	dir := t.TempDir()
	dockerfile := "FROM mini:1\nHEALTHCHECK --interval=500ms --retries=2 CMD test -e /tmp/ok\n"
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(dockerfile), 0o644); err != nil {
		t.Fatal(err)
	}
	e.must("build", "-q", "-t", "mini:hc", dir)
	// The command makes the check pass, and ends at once on SIGTERM.
	cmd := []string{"sh", "-c", `trap "exit 0" TERM; touch /tmp/ok; while :; do sleep 0.1; done`}
	flags := []string{"--health-cmd", "test -e /tmp/ok", "--health-interval", "500ms", "--health-retries", "2"}
	run := func(args ...string) {
		t.Helper()
		e.must(append(append([]string{"run", "-d"}, args...), cmd...)...)
	}
	run("--name", "hnone", "--no-healthcheck", "mini:hc")
	run(append([]string{"--name", "hc"}, append(flags, "mini:1")...)...)
	run(append([]string{"--name", "hr", "--health-on-failure", "restart"}, append(flags, "mini:1")...)...)
	run(append([]string{"--name", "hs", "--restart", "always", "--health-on-failure", "stop"}, append(flags, "mini:1")...)...)
	run("--name", "himg", "mini:hc")
	// Overrides merge with the image's check field by field.
	e.must("create", "--name", "hmerge", "--health-retries", "7", "mini:hc", "true")
	if hc := e.inspectHealth("hmerge").Config.Healthcheck; hc == nil || !slices.Equal(hc.Test, []string{"CMD-SHELL", "test -e /tmp/ok"}) ||
		hc.Retries != 7 || hc.Interval != int64(500*time.Millisecond) {
		t.Errorf("merged Config.Healthcheck = %+v", hc)
	}

	all := []string{"hc", "hr", "hs", "himg"}
	waitHealth(t, "healthy containers", func() bool {
		got := e.psNames("health=healthy")
		return !slices.ContainsFunc(all, func(n string) bool { return !slices.Contains(got, n) })
	})
	if st := e.must("ps", "--filter", "name=^hc$", "--format", "{{.Status}}"); !strings.HasPrefix(st, "Up ") || !strings.HasSuffix(st, " (healthy)\n") {
		t.Errorf("ps STATUS of a healthy container = %q", st)
	}
	if got := e.psNames("health=none"); !slices.Contains(got, "hnone") || slices.Contains(got, "hc") {
		t.Errorf("health=none lists %q", got)
	}
	ins := e.inspectHealth("hc")
	h := ins.State.Health
	if h == nil || h.Status != "healthy" || h.FailingStreak != 0 || len(h.Log) == 0 || len(h.Log) > 5 {
		t.Fatalf("inspect State.Health = %+v", h)
	}
	if r := h.Log[len(h.Log)-1]; r.ExitCode != 0 || r.Start.IsZero() || r.End.Before(r.Start) {
		t.Errorf("last probe = %+v", r)
	}
	if hi := e.inspectHealth("himg").State.Health; hi == nil || hi.Status != "healthy" {
		t.Errorf("image HEALTHCHECK: State.Health = %+v", hi)
	}
	if hn := e.inspectHealth("hnone"); hn.State.Health != nil || hn.Config.Healthcheck == nil || hn.Config.Healthcheck.Test[0] != "NONE" {
		t.Errorf("--no-healthcheck: State.Health = %+v, Config.Healthcheck = %+v", hn.State.Health, hn.Config.Healthcheck)
	}
	startedHR := e.inspectHealth("hr").State.StartedAt
	e.must("rm", "-f", "himg", "hnone", "hmerge")

	for _, n := range []string{"hc", "hr", "hs"} {
		e.must("exec", n, "rm", "/tmp/ok")
	}
	// Unhealthy only after the configured number of failures.
	waitHealth(t, "hc unhealthy", func() bool {
		h := e.inspectHealth("hc").State.Health
		if h != nil && h.Status == "unhealthy" && h.FailingStreak < 2 {
			t.Fatalf("unhealthy after %d failures", h.FailingStreak)
		}
		return h != nil && h.Status == "unhealthy"
	})
	if h := e.inspectHealth("hc").State.Health; h.Log[len(h.Log)-1].ExitCode != 1 {
		t.Errorf("failing probe logged as %+v", h.Log[len(h.Log)-1])
	}
	if st := e.must("ps", "--filter", "name=^hc$", "--format", "{{.Status}}"); !strings.HasSuffix(st, " (unhealthy)\n") {
		t.Errorf("ps STATUS of an unhealthy container = %q", st)
	}
	if got := e.psNames("health=unhealthy"); !slices.Contains(got, "hc") {
		t.Errorf("health=unhealthy lists %q", got)
	}
	// --health-on-failure restart: restarted, healthy again.
	waitHealth(t, "hr restarted", func() bool {
		i := e.inspectHealth("hr")
		return i.RestartCount >= 1 && i.State.Running && i.State.StartedAt != startedHR
	})
	waitHealth(t, "hr healthy again", func() bool {
		h := e.inspectHealth("hr").State.Health
		return h != nil && h.Status == "healthy" && h.FailingStreak == 0
	})
	// --health-on-failure stop: stopped, despite --restart always.
	waitHealth(t, "hs stopped", func() bool { return e.inspectHealth("hs").State.Status == "exited" })
	if i := e.inspectHealth("hs"); i.RestartCount != 0 || i.State.Running {
		t.Errorf("hs after the stop: %+v", i)
	}
	// No action by default: hc still runs (hr and hs were acted on meanwhile).
	if i := e.inspectHealth("hc"); !i.State.Running || i.RestartCount != 0 {
		t.Errorf("hc: %+v", i)
	}

	// Each status change is an event.
	ids := map[string]string{}
	for _, n := range []string{"hc", "hr"} {
		ids[strings.TrimSpace(e.must("inspect", "-f", "{{.ID}}", n))] = n
	}
	seen := map[string]bool{}
	f, err := os.Open(filepath.Join(events.Dir(e.root), "events.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var ev events.Event
		if json.Unmarshal(sc.Bytes(), &ev) == nil && ids[ev.Actor.ID] != "" && strings.HasPrefix(ev.Action, "health_status: ") {
			seen[ids[ev.Actor.ID]+" "+ev.Action] = true
			if ev.Actor.Attributes["name"] != ids[ev.Actor.ID] {
				t.Errorf("event %+v: wrong name", ev)
			}
		}
	}
	for _, want := range []string{"hc health_status: healthy", "hc health_status: unhealthy", "hr health_status: unhealthy"} {
		if !seen[want] {
			t.Errorf("no event %q (saw %v)", want, seen)
		}
	}
}
