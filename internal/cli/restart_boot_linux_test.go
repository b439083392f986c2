package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
)

// bootLoop prints "up" once per start and stops at once on SIGTERM.
var bootLoop = []string{"sh", "-c", `trap "exit 0" TERM; echo up; while :; do sleep 1; done`}

// supervisorState reads the pids of a container from its state.json.
func (e *ctrEnv) supervisorState(name string) (pid, supervisorPid int) {
	e.t.Helper()
	id := e.inspect("{{.Id}}", name)
	data, err := os.ReadFile(filepath.Join(e.root, "containers", id, "state.json"))
	if err != nil {
		e.t.Fatal(err)
	}
	var st struct{ Pid, SupervisorPid int }
	if err := json.Unmarshal(data, &st); err != nil {
		e.t.Fatal(err)
	}
	if st.Pid <= 0 || st.SupervisorPid <= 0 {
		e.t.Fatalf("%s: state.json has Pid %d, SupervisorPid %d; want both", name, st.Pid, st.SupervisorPid)
	}
	return st.Pid, st.SupervisorPid
}

// waitExited waits until ps lists the container as exited.
func (e *ctrEnv) waitExited(name string) {
	e.t.Helper()
	eventually(e.t, name+" exited", func() bool {
		out, _, _ := e.berth("", "ps", "-a", "--filter", "name=^"+name+"$", "--format", "{{.State}}")
		return strings.TrimSpace(out) == "exited"
	})
}

// sortedLines is out's non-empty lines, sorted.
func sortedLines(out string) []string {
	lines := strings.Fields(out)
	slices.Sort(lines)
	return lines
}

// TestStartAllAfterReboot simulates a reboot (each supervisor and its
// container killed outright, or a supervisor told to stop as at a clean
// shutdown) and checks that the boot command brings back the always and
// unless-stopped containers as docker's daemon would: user-stopped
// always containers too, user-stopped unless-stopped ones not, no and
// on-failure ones not.
func TestStartAllAfterReboot(t *testing.T) {
	e := newCtrEnv(t)
	run := func(name, policy string, extra ...string) {
		args := append([]string{"--name", name, "--restart", policy}, extra...)
		e.waitLog(e.runD(append(append(args, "mini:1"), bootLoop...)...), "up")
	}
	run("always-run", "always") // on the default bridge network
	run("always-stopped", "always", "--network", "none")
	run("us-run", "unless-stopped", "--network", "none")
	run("us-stopped", "unless-stopped", "--network", "none")
	run("us-term", "unless-stopped", "--network", "none")
	run("no-run", "no", "--network", "none")
	run("onfail-run", "on-failure", "--network", "none")
	e.must("create", "--name", "broken", "--restart", "always", "--network", "none", "mini:1", "/nonexistent")

	// Before the reboot the user stops two containers.
	e.must("stop", "-t", "5", "always-stopped", "us-stopped")
	// A clean shutdown: the supervisor is told to stop (SIGTERM).
	_, sup := e.supervisorState("us-term")
	if err := syscall.Kill(sup, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	e.waitExited("us-term")
	// A hard reboot for the rest: supervisor and container killed.
	for _, name := range []string{"always-run", "us-run", "no-run", "onfail-run"} {
		pid, sup := e.supervisorState(name)
		for _, p := range []int{sup, pid} {
			if err := syscall.Kill(p, syscall.SIGKILL); err != nil {
				t.Fatalf("kill %s pid %d: %v", name, p, err)
			}
		}
		e.waitExited(name)
		if got := e.inspect("{{.State.ExitCode}}", name); got != "255" {
			t.Errorf("%s after its supervisor died: exit code %s, want 255", name, got)
		}
	}
	all := []string{"always-run", "always-stopped", "us-run", "us-stopped", "us-term", "no-run", "onfail-run"}
	for _, name := range all {
		if got := e.inspect("{{.State.Running}}", name); got != "false" {
			t.Fatalf("%s runs after the simulated reboot", name)
		}
	}
	out := e.must("ps", "-a", "--filter", "restart-policy=unless-stopped", "--format", "{{.Names}}")
	if got, want := sortedLines(out), []string{"us-run", "us-stopped", "us-term"}; !slices.Equal(got, want) {
		t.Errorf("ps --filter restart-policy=unless-stopped: %q, want %q", got, want)
	}

	// The boot: what berth-restart.service runs.
	out, errOut, code := e.berth("", "start", "--all", "--filter", "restart-policy=always", "--filter", "restart-policy=unless-stopped")
	started := []string{"always-run", "always-stopped", "us-run", "us-term"}
	if got := sortedLines(out); !slices.Equal(got, started) {
		t.Errorf("start --all (boot) printed %q, want %q", got, started)
	}
	if code != 1 || !strings.Contains(errOut, "Error:") || !strings.Contains(errOut, "/nonexistent") {
		t.Errorf("start --all with a container that cannot start: exit %d, stderr %q; want 1 and an error naming /nonexistent", code, errOut)
	}
	for _, name := range all {
		want := slices.Contains(started, name)
		if got := e.inspect("{{.State.Running}}", name); got != map[bool]string{true: "true", false: "false"}[want] {
			t.Errorf("%s: running %s after the boot start, want %v", name, got, want)
		}
		if !want {
			continue
		}
		if _, errOut, code := e.berth("", "exec", name, "true"); code != 0 {
			t.Errorf("%s: exec true: exit %d: %s", name, code, errOut)
		}
		eventually(t, name+" printed up twice", func() bool {
			out, _, _ := e.berth("", "logs", name)
			return strings.Count(out, "up\n") == 2
		})
	}
	e.must("rm", "-f", "broken")

	// Without a filter every stopped container starts, except the
	// unless-stopped one the user stopped.
	out = e.must("start", "--all")
	if got, want := sortedLines(out), []string{"no-run", "onfail-run"}; !slices.Equal(got, want) {
		t.Errorf("start --all printed %q, want %q", got, want)
	}
	if got := e.inspect("{{.State.Running}}", "us-stopped"); got != "false" {
		t.Errorf("start --all started the unless-stopped container the user stopped")
	}
	if out := e.must("start", "--all"); out != "" {
		t.Errorf("start --all with everything running printed %q", out)
	}
	// Starting it by name still works, as docker.
	e.must("start", "us-stopped")
	if got := e.inspect("{{.State.Running}}", "us-stopped"); got != "true" {
		t.Errorf("start us-stopped: running %s", got)
	}
}

// TestStartAllBadInput checks the usage errors of start --all.
func TestStartAllBadInput(t *testing.T) {
	e := &ctrEnv{t: t, root: t.TempDir()}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"start", "--all", "web"}, "no container names"},
		{[]string{"start", "--all", "--filter", "bogus=x"}, `invalid filter "bogus"`},
		{[]string{"start", "--all", "--filter", "restart-policy=sometimes"}, "restart-policy=sometimes"},
		{[]string{"start", "--all", "--filter", "restart-policy"}, "expected name=value"},
		{[]string{"start", "--filter", "restart-policy=always", "web"}, "--filter needs --all"},
		{[]string{"start", "--all", "--attach"}, "attach"},
		{[]string{"ps", "--filter", "restart-policy=sometimes"}, "restart-policy=sometimes"},
	} {
		_, errOut, code := e.berth("", tc.args...)
		if code != 125 || !strings.Contains(errOut, tc.want) {
			t.Errorf("berth %q: exit %d, %q; want 125 mentioning %q", tc.args, code, errOut, tc.want)
		}
	}
}
