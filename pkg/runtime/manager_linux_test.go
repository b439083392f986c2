package runtime

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	goruntime "runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berthsh/berth/internal/testutil"
	"github.com/berthsh/berth/pkg/errdefs"
	"github.com/berthsh/berth/pkg/events"
	"github.com/berthsh/berth/pkg/reference"
	"github.com/berthsh/berth/pkg/runtime/logs"
	"github.com/berthsh/berth/pkg/store/archive"
)

// newTestManager is a Manager on a fresh root with the minimal base image
// imported as "base:latest". Every container left is removed (forcibly)
// when the test ends, and nothing may stay mounted.
func newTestManager(t *testing.T) *Manager {
	t.Helper()
	testutil.RequiresRoot(t)
	ctx := t.Context()
	root := t.TempDir()
	ref, err := reference.Parse("base:latest")
	if err != nil {
		t.Fatal(err)
	}
	s, _ := importMinimal(t, root, "store", archive.ImportOptions{Ref: &ref})
	m, err := NewManager(ctx, root, s)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		removeAll(t, m)
		// libcontainer's state directory of this root, empty by now.
		if err := os.Remove(m.stateRoot); err != nil && !os.IsNotExist(err) {
			t.Errorf("libcontainer state left: %v", err)
		}
	})
	return m
}

// removeAll removes every container (forcibly) and checks that nothing
// stays mounted.
func removeAll(t *testing.T, m *Manager) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	all, err := m.List(ctx, ListOptions{All: true})
	if err != nil {
		t.Error(err)
	}
	for _, c := range all {
		if err := m.Remove(ctx, c.Config.ID, RemoveOptions{Force: true, Volumes: true}); err != nil {
			t.Errorf("remove %s: %v", c.ShortID(), err)
		}
	}
	checkNoMounts(t, m.root)
}

// TestManager runs the lifecycle tests on one manager, so that the base
// image is imported and unpacked once; each part removes its containers.
func TestManager(t *testing.T) {
	m := newTestManager(t)
	for _, tc := range []struct {
		name string
		fn   func(*testing.T, *Manager)
	}{
		{"DetachedRun", testManagerDetachedRun},
		{"Stop", testManagerStop},
		{"RestartOnFailure", testManagerRestartOnFailure},
		{"SupervisorKilled", testManagerSupervisorKilled},
		{"AutoRemove", testManagerAutoRemove},
		{"StartError", testManagerStartError},
		{"Attach", testManagerAttach},
		{"Exec", testManagerExec},
		{"Names", testManagerNames},
		{"PortConflict", testManagerPortConflict},
		{"Restart", testManagerRestart},
		{"Pause", testManagerPause},
		{"ConcurrentStart", testManagerConcurrentStart},
		{"RemoveCrashLoop", testManagerRemoveCrashLoop},
		{"OOMKilled", testManagerOOMKilled},
		{"PrestartSupervisor", testManagerPrestartSupervisor},
		{"AutoRemoveFastPath", testManagerAutoRemoveFastPath},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Cleanup(func() { removeAll(t, m) })
			tc.fn(t, m)
		})
	}
}

func testConfig(cmd ...string) ContainerConfig {
	return ContainerConfig{Image: "base:latest", NetworkMode: "none", Create: CreateOptions{Cmd: cmd}}
}

func mustCreate(t *testing.T, m *Manager, cfg ContainerConfig) Container {
	t.Helper()
	c, err := m.Create(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func mustStart(t *testing.T, m *Manager, cfg ContainerConfig) Container {
	t.Helper()
	c := mustCreate(t, m, cfg)
	begin := time.Now()
	if err := m.Start(t.Context(), c.Config.ID); err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Logf("start took %v", time.Since(begin))
	return c
}

// readLog returns the container's log as "stream:line" entries.
func readLog(t *testing.T, m *Manager, c Container) []string {
	t.Helper()
	var out []string
	err := logs.Read(t.Context(), m.LogPath(c), logs.ReadOptions{Tail: -1}, func(e logs.Entry) error {
		out = append(out, e.Stream+":"+strings.TrimRight(string(e.Line), "\n"))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// waitForLog waits until the container logged line.
func waitForLog(t *testing.T, m *Manager, c Container, line string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !slices.Contains(readLog(t, m, c), line) {
		if time.Now().After(deadline) {
			t.Fatalf("%q not logged: %q", line, readLog(t, m, c))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitState polls the container until cond holds.
func waitState(t *testing.T, m *Manager, id string, timeout time.Duration, cond func(Container) bool) Container {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		c, err := m.Get(t.Context(), id)
		if err != nil {
			t.Fatal(err)
		}
		if cond(c) {
			return c
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out; state %+v", c.State)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func cgroupDirs(id string) []string {
	return []string{
		"/sys/fs/cgroup/memory/berth/" + id,
		"/sys/fs/cgroup/pids/berth/" + id,
		"/sys/fs/cgroup/berth/" + id,
	}
}

// checkNothingLeft asserts that no mount, cgroup or network namespace of
// the container remains.
func checkNothingLeft(t *testing.T, c Container) {
	t.Helper()
	checkNoMounts(t, c.Dir)
	for _, d := range cgroupDirs(c.Config.ID) {
		if _, err := os.Stat(d); err == nil {
			t.Errorf("cgroup %s is left", d)
		}
	}
	if _, err := os.Stat(ContainerNetNSPath(c.Config.ID)); err == nil {
		t.Errorf("network namespace %s is left", ContainerNetNSPath(c.Config.ID))
	}
}

func testManagerDetachedRun(t *testing.T, m *Manager) {
	ctx := t.Context()
	c := mustStart(t, m, testConfig("/bin/sh", "-c", "echo hello; echo oops >&2; sleep 1; exit 3"))
	// Start has returned; the container runs on under its supervisor.
	got, err := m.Get(ctx, c.Config.Name)
	if err != nil {
		t.Fatal(err)
	}
	if !got.State.Running || got.State.Status != StatusRunning || got.State.Pid == 0 || got.State.SupervisorPid == 0 {
		t.Fatalf("after start: %+v", got.State)
	}
	if got.State.SupervisorPid == os.Getpid() {
		t.Fatal("the supervisor is the calling process")
	}
	list, err := m.List(ctx, ListOptions{})
	if err != nil || len(list) != 1 || list[0].Config.ID != c.Config.ID {
		t.Fatalf("List = %v, %v", list, err)
	}
	code, err := m.Wait(ctx, c.Config.ID[:12], "")
	if err != nil {
		t.Fatal(err)
	}
	if code != 3 {
		t.Errorf("exit code %d, want 3", code)
	}
	got = waitState(t, m, c.Config.ID, 10*time.Second, func(c Container) bool { return c.State.SupervisorPid == 0 })
	if got.State.Running || got.State.Status != StatusExited || got.State.ExitCode != 3 || got.State.FinishedAt.IsZero() {
		t.Errorf("after exit: %+v", got.State)
	}
	lines := readLog(t, m, c)
	sort.Strings(lines) // stdout and stderr are separate pipes
	if strings.Join(lines, "|") != "stderr:oops|stdout:hello" {
		t.Errorf("log = %q", lines)
	}
	if list, _ := m.List(ctx, ListOptions{}); len(list) != 0 {
		t.Errorf("List without All shows %d stopped containers", len(list))
	}
	if err := m.waitSupervisorGone(ctx, c.Dir); err != nil {
		t.Fatal(err)
	}
	checkNothingLeft(t, got)

	// It can be started again, and removed.
	if err := m.Start(ctx, c.Config.ID); err != nil {
		t.Fatal(err)
	}
	if code, err := m.Wait(ctx, c.Config.ID, WaitNotRunning); err != nil || code != 3 {
		t.Errorf("second run: %d, %v", code, err)
	}
	if err := m.Remove(ctx, c.Config.Name, RemoveOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(c.Dir); !os.IsNotExist(err) {
		t.Errorf("container directory left: %v", err)
	}
	if _, err := m.Get(ctx, c.Config.ID); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("Get after remove: %v", err)
	}
}

func testManagerStop(t *testing.T, m *Manager) {
	ctx := t.Context()
	t.Run("ignores TERM", func(t *testing.T) {
		c := mustStart(t, m, testConfig("/bin/sh", "-c", "trap '' TERM; while true; do sleep 0.1; done"))
		timeout := 1500 * time.Millisecond
		begin := time.Now()
		if err := m.Stop(ctx, c.Config.ID, StopOptions{Timeout: &timeout}); err != nil {
			t.Fatal(err)
		}
		took := time.Since(begin)
		if took < timeout || took > timeout+5*time.Second {
			t.Errorf("stop took %v, want about %v", took, timeout)
		}
		got, err := m.Get(ctx, c.Config.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.State.Running || got.State.ExitCode != 137 || !got.State.StopRequested {
			t.Errorf("after stop: %+v", got.State)
		}
	})
	t.Run("handles TERM", func(t *testing.T) {
		c := mustStart(t, m, testConfig("/bin/sh", "-c", "trap 'exit 0' TERM; echo ready; while true; do sleep 0.1; done"))
		waitForLog(t, m, c, "stdout:ready")
		begin := time.Now()
		if err := m.Stop(ctx, c.Config.ID, StopOptions{}); err != nil {
			t.Fatal(err)
		}
		if took := time.Since(begin); took > 5*time.Second {
			t.Errorf("stop took %v: SIGTERM was not delivered", took)
		}
		got, err := m.Get(ctx, c.Config.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.State.Running || got.State.ExitCode != 0 {
			t.Errorf("after stop: %+v", got.State)
		}
		// Stopping a stopped container is fine; killing one is not.
		if err := m.Stop(ctx, c.Config.ID, StopOptions{}); err != nil {
			t.Error(err)
		}
		if err := m.Kill(ctx, c.Config.ID, "KILL"); !errors.Is(err, errdefs.ErrConflict) {
			t.Errorf("kill of a stopped container: %v", err)
		}
	})
	t.Run("always is not restarted after stop", func(t *testing.T) {
		cfg := testConfig("/bin/sh", "-c", "sleep 1000")
		cfg.RestartPolicy = RestartPolicy{Name: RestartAlways}
		c := mustStart(t, m, cfg)
		zero := time.Duration(0)
		if err := m.Stop(ctx, c.Config.ID, StopOptions{Timeout: &zero}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(500 * time.Millisecond)
		got, err := m.Get(ctx, c.Config.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.State.Running || got.State.Restarting || got.State.RestartCount != 0 || got.State.Status != StatusExited {
			t.Errorf("after stop: %+v", got.State)
		}
	})
}

func testManagerRestartOnFailure(t *testing.T, m *Manager) {
	cfg := testConfig("/bin/sh", "-c", "echo run; exit 1")
	cfg.RestartPolicy = RestartPolicy{Name: RestartOnFailure, MaximumRetryCount: 3}
	c := mustStart(t, m, cfg)
	got := waitState(t, m, c.Config.ID, 30*time.Second, func(c Container) bool {
		return c.State.Status == StatusExited && c.State.SupervisorPid == 0
	})
	if got.State.RestartCount != 3 || got.State.ExitCode != 1 || got.State.Restarting {
		t.Errorf("final state: %+v", got.State)
	}
	if lines := readLog(t, m, c); len(lines) != 4 {
		t.Errorf("log has %d runs, want 4: %q", len(lines), lines)
	}
}

func testManagerSupervisorKilled(t *testing.T, m *Manager) {
	ctx := t.Context()
	c := mustStart(t, m, testConfig("sleep", "1000"))
	got, err := m.Get(ctx, c.Config.ID)
	if err != nil {
		t.Fatal(err)
	}
	pid := got.State.Pid
	if err := syscall.Kill(got.State.SupervisorPid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	got = waitState(t, m, c.Config.ID, 10*time.Second, func(c Container) bool { return !c.State.Running })
	if got.State.Status != StatusExited || !strings.Contains(got.State.Error, "supervisor") || got.State.ExitCode != 255 {
		t.Errorf("after the supervisor died: %+v", got.State)
	}
	list, err := m.List(ctx, ListOptions{})
	if err != nil || len(list) != 0 {
		t.Errorf("List shows %d running, %v", len(list), err)
	}
	// One die event (exit code 255), however often it is reconciled.
	dies, err := events.Read(ctx, m.root, events.Filter{Args: map[string][]string{"container": {c.Config.ID}, "event": {"die"}}})
	if err != nil || len(dies) != 1 || dies[0].Actor.Attributes["exitCode"] != "255" {
		t.Errorf("die events after the supervisor died: %+v, %v; want one with exitCode 255", dies, err)
	}
	checkNothingLeft(t, got)
	if err := syscall.Kill(pid, 0); err == nil {
		if data, _ := os.ReadFile(filepath.Join("/proc", itoa(pid), "stat")); !strings.Contains(string(data), ") Z") {
			t.Errorf("the container's process %d still runs", pid)
		}
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

func testManagerAutoRemove(t *testing.T, m *Manager) {
	ctx := t.Context()
	cfg := testConfig("/bin/sh", "-c", "sleep 0.5; exit 7")
	cfg.AutoRemove = true
	c := mustStart(t, m, cfg)
	code, err := m.Wait(ctx, c.Config.ID, "")
	if err != nil {
		t.Fatal(err)
	}
	if code != 7 {
		t.Errorf("exit code %d, want 7", code)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Stat(c.Dir); os.IsNotExist(err) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the container directory was not removed")
		}
		time.Sleep(50 * time.Millisecond)
	}
	// The exit code stays readable after the removal.
	if code, err := m.Wait(ctx, c.Config.ID, ""); err != nil || code != 7 {
		t.Errorf("Wait after removal: %d, %v", code, err)
	}
	checkNothingLeft(t, c)

	// A foreground run that attaches after the container exited still
	// gets its output.
	cfg = testConfig("/bin/sh", "-c", "echo quick; exit 6")
	cfg.AutoRemove = true
	c = mustStart(t, m, cfg)
	time.Sleep(300 * time.Millisecond)
	var stdout syncBuffer
	if err := m.Attach(ctx, c.Config.ID, AttachStreams{Stdout: &stdout, Logs: true}); err != nil {
		t.Fatal(err)
	}
	if stdout.String() != "quick\n" {
		t.Errorf("attach after exit: %q", stdout.String())
	}
	if code, err := m.Wait(ctx, c.Config.ID, WaitRemoved); err != nil || code != 6 {
		t.Errorf("wait removed: %d, %v", code, err)
	}
	if _, err := os.Stat(c.Dir); !os.IsNotExist(err) {
		t.Errorf("after wait removed: %v", err)
	}

	// A container that exits at once is removed too, and a waiter still
	// learns its exit code.
	cfg = testConfig("/bin/sh", "-c", "exit 4")
	cfg.AutoRemove = true
	c = mustStart(t, m, cfg)
	if code, err := m.Wait(ctx, c.Config.ID, ""); err != nil || code != 4 {
		t.Errorf("quick exit: %d, %v", code, err)
	}
}

func testManagerStartError(t *testing.T, m *Manager) {
	ctx := t.Context()
	c := mustCreate(t, m, testConfig("/does/not/exist"))
	err := m.Start(ctx, c.Config.ID)
	if !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("start: %v, want ErrNotFound", err)
	}
	got, err := m.Get(ctx, c.Config.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.State.Running || got.State.ExitCode != 127 || got.State.Error == "" || got.State.Status != StatusCreated {
		t.Errorf("after failed start: %+v", got.State)
	}
	if err := m.waitSupervisorGone(ctx, c.Dir); err != nil {
		t.Fatal(err)
	}
	checkNothingLeft(t, got)
	if _, err := os.Stat(filepath.Join(m.stateRoot, c.Config.ID)); err == nil {
		t.Error("libcontainer state is left")
	}
}

func testManagerAttach(t *testing.T, m *Manager) {
	ctx := t.Context()
	t.Run("output", func(t *testing.T) {
		c := mustStart(t, m, testConfig("/bin/sh", "-c", "echo early; sleep 1; echo out; echo err >&2; exit 2"))
		var stdout, stderr syncBuffer
		if err := m.Attach(ctx, c.Config.ID, AttachStreams{Stdout: &stdout, Stderr: &stderr, Logs: true}); err != nil {
			t.Fatal(err)
		}
		if stdout.String() != "early\nout\n" || stderr.String() != "err\n" {
			t.Errorf("stdout %q, stderr %q", stdout.String(), stderr.String())
		}
		if code, err := m.Wait(ctx, c.Config.ID, ""); err != nil || code != 2 {
			t.Errorf("wait: %d, %v", code, err)
		}
	})
	t.Run("stdin", func(t *testing.T) {
		cfg := testConfig("cat")
		cfg.Interactive = true
		c := mustStart(t, m, cfg)
		var stdout syncBuffer
		if err := m.Attach(ctx, c.Config.ID, AttachStreams{Stdin: strings.NewReader("ping\n"), Stdout: &stdout, Logs: true}); err != nil {
			t.Fatal(err)
		}
		if stdout.String() != "ping\n" {
			t.Errorf("stdout %q", stdout.String())
		}
		if code, err := m.Wait(ctx, c.Config.ID, ""); err != nil || code != 0 {
			t.Errorf("wait: %d, %v", code, err)
		}
	})
	t.Run("tty", func(t *testing.T) {
		cfg := testConfig("/bin/sh", "-c", "stty size; exit 5")
		cfg.Create.Tty = true
		cfg.Create.ConsoleWidth, cfg.Create.ConsoleHeight = 100, 30
		c := mustStart(t, m, cfg)
		var stdout syncBuffer
		if err := m.Attach(ctx, c.Config.ID, AttachStreams{Stdout: &stdout, Tty: true, Logs: true}); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(stdout.String(), "30 100") {
			t.Errorf("stdout %q", stdout.String())
		}
		if code, err := m.Wait(ctx, c.Config.ID, ""); err != nil || code != 5 {
			t.Errorf("wait: %d, %v", code, err)
		}
	})
}

func testManagerExec(t *testing.T, m *Manager) {
	ctx := t.Context()
	c := mustStart(t, m, testConfig("sleep", "1000"))
	var stdout, stderr syncBuffer
	code, err := m.Exec(ctx, c.Config.ID, ExecOptions{Cmd: []string{"/bin/sh", "-c", "echo hi; echo there >&2; exit 5"}}, AttachStreams{Stdout: &stdout, Stderr: &stderr})
	if err != nil {
		t.Fatal(err)
	}
	if code != 5 || stdout.String() != "hi\n" || stderr.String() != "there\n" {
		t.Errorf("exec: code %d, stdout %q, stderr %q", code, stdout.String(), stderr.String())
	}
	stdout = syncBuffer{}
	code, err = m.Exec(ctx, c.Config.ID, ExecOptions{Cmd: []string{"cat"}}, AttachStreams{Stdin: strings.NewReader("piped"), Stdout: &stdout})
	if err != nil || code != 0 || stdout.String() != "piped" {
		t.Errorf("exec with stdin: %d, %q, %v", code, stdout.String(), err)
	}
	stdout = syncBuffer{}
	code, err = m.Exec(ctx, c.Config.ID, ExecOptions{Cmd: []string{"/bin/sh", "-c", "stty size; exit 3"}, ConsoleWidth: 90, ConsoleHeight: 20},
		AttachStreams{Stdout: &stdout, Tty: true})
	if err != nil || code != 3 || !strings.Contains(stdout.String(), "20 90") {
		t.Errorf("exec with a terminal: %d, %q, %v", code, stdout.String(), err)
	}
	if _, err := m.Exec(ctx, c.Config.ID, ExecOptions{Cmd: []string{"/no/such/command"}}, AttachStreams{}); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("exec of a missing command: %v", err)
	}
	if err := m.Kill(ctx, c.Config.ID, ""); err != nil {
		t.Fatal(err)
	}
	if code, err := m.Wait(ctx, c.Config.ID, ""); err != nil || code != 137 {
		t.Errorf("wait after kill: %d, %v", code, err)
	}
	if _, err := m.Exec(ctx, c.Config.ID, ExecOptions{Cmd: []string{"true"}}, AttachStreams{}); !errors.Is(err, errdefs.ErrConflict) {
		t.Errorf("exec in a stopped container: %v", err)
	}
}

func testManagerNames(t *testing.T, m *Manager) {
	ctx := t.Context()
	cfg := testConfig("true")
	cfg.Name = "web"
	a := mustCreate(t, m, cfg)
	if _, err := m.Create(ctx, cfg); !errors.Is(err, errdefs.ErrConflict) {
		t.Errorf("second create with the same name: %v", err)
	}
	b := mustCreate(t, m, testConfig("true"))
	if !containerNameRE.MatchString(b.Config.Name) || !strings.Contains(b.Config.Name, "_") {
		t.Errorf("generated name %q", b.Config.Name)
	}
	if err := m.Rename(ctx, b.Config.ID, "web"); !errors.Is(err, errdefs.ErrConflict) {
		t.Errorf("rename to a used name: %v", err)
	}
	if err := m.Rename(ctx, "web", "api"); err != nil {
		t.Fatal(err)
	}
	if got, err := m.Get(ctx, "api"); err != nil || got.Config.ID != a.Config.ID {
		t.Errorf("Get(api) = %v, %v", got.Config.ID, err)
	}
	if _, err := m.Get(ctx, "web"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("Get(web) after rename: %v", err)
	}
	cfg.Name = "bad name"
	if _, err := m.Create(ctx, cfg); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("invalid name: %v", err)
	}
	cfg = testConfig("true")
	cfg.Image = "no-such-image:1"
	if _, err := m.Create(ctx, cfg); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("missing image: %v", err)
	}
	users, err := m.ImageUsers(ctx)
	if err != nil || len(users[a.Config.ImageID]) != 2 {
		t.Errorf("ImageUsers = %v, %v", users, err)
	}
	pruned, err := m.Prune(ctx)
	if err != nil || len(pruned) != 2 {
		t.Errorf("Prune = %v, %v", pruned, err)
	}
}

func TestManagerParseSignal(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want syscall.Signal
		ok   bool
	}{
		{"SIGKILL", syscall.SIGKILL, true},
		{"KILL", syscall.SIGKILL, true},
		{"term", syscall.SIGTERM, true},
		{"9", syscall.SIGKILL, true},
		{"SIGNOPE", 0, false},
		{"0", 0, false},
	} {
		got, err := ParseSignal(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ParseSignal(%q) = %v, %v", tc.in, got, err)
		}
	}
}

func TestDetachKeys(t *testing.T) {
	keys, err := parseDetachKeys("")
	if err != nil || string(keys) != "\x10\x11" {
		t.Fatalf("default keys %q, %v", keys, err)
	}
	var out strings.Builder
	err = copyStdin(&out, strings.NewReader("ab\x10c\x10\x11ignored"), keys)
	if !errors.Is(err, errDetached) || out.String() != "ab\x10c" {
		t.Errorf("copyStdin: %q, %v", out.String(), err)
	}
	if _, err := parseDetachKeys("ctrl-"); err == nil {
		t.Error("bad keys accepted")
	}
}

func testManagerPortConflict(t *testing.T, m *Manager) {
	ctx := t.Context()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := uint16(l.Addr().(*net.TCPAddr).Port)
	cfg := testConfig("sleep", "1000")
	cfg.NetworkMode = "bridge"
	cfg.Ports = []PortSpec{{HostIP: "127.0.0.1", HostPort: port, ContainerPort: 80, Proto: "tcp"}}
	c := mustCreate(t, m, cfg)
	err = m.Start(ctx, c.Config.ID)
	if !errors.Is(err, errdefs.ErrConflict) {
		t.Fatalf("start with a used port: %v, want ErrConflict", err)
	}
	got, err := m.Get(ctx, c.Config.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.State.Running || got.State.Error == "" {
		t.Errorf("after failed start: %+v", got.State)
	}
	if err := m.waitSupervisorGone(ctx, c.Dir); err != nil {
		t.Fatal(err)
	}
	checkNothingLeft(t, got)
	if eps, err := m.Networks().Endpoints(ctx, "bridge"); err == nil && len(eps) != 0 {
		t.Errorf("endpoints left on bridge: %v", eps)
	}

	// Once the port is free the container starts, holding the port.
	l.Close()
	if err := m.Start(ctx, c.Config.ID); err != nil {
		t.Fatal(err)
	}
	got, err = m.Get(ctx, c.Config.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !got.State.Running || len(got.State.Ports) != 1 || got.State.Ports[0].HostPort != port || len(got.State.Endpoints) != 1 || got.State.Error != "" {
		t.Errorf("running with a published port: %+v", got.State)
	}
	if l2, err := net.Listen("tcp", l.Addr().String()); err == nil {
		l2.Close()
		t.Error("the published port is not reserved")
	}
	zero := time.Duration(0)
	if err := m.Stop(ctx, c.Config.ID, StopOptions{Timeout: &zero}); err != nil {
		t.Fatal(err)
	}
	if err := m.waitSupervisorGone(ctx, c.Dir); err != nil {
		t.Fatal(err)
	}
	checkNothingLeft(t, got)
}

func testManagerRestart(t *testing.T, m *Manager) {
	ctx := t.Context()
	cfg := testConfig("/bin/sh", "-c", "echo up; exec sleep 1000")
	cfg.RestartPolicy = RestartPolicy{Name: RestartUnlessStopped}
	c := mustStart(t, m, cfg)
	waitForLog(t, m, c, "stdout:up")
	before, err := m.Get(ctx, c.Config.ID)
	if err != nil {
		t.Fatal(err)
	}
	zero := time.Duration(0)
	if err := m.Restart(ctx, c.Config.ID, StopOptions{Timeout: &zero}); err != nil {
		t.Fatal(err)
	}
	after, err := m.Get(ctx, c.Config.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !after.State.Running || after.State.StopRequested || !after.State.StartedAt.After(before.State.StartedAt) ||
		after.State.SupervisorPid == before.State.SupervisorPid || after.State.Pid == before.State.Pid {
		t.Errorf("after restart: %+v (before %+v)", after.State, before.State)
	}
	// Both runs logged their line.
	waitState(t, m, c.Config.ID, 10*time.Second, func(Container) bool { return len(readLog(t, m, c)) == 2 })
	// Killing the container process makes the supervisor restart it.
	if err := syscall.Kill(after.State.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	got := waitState(t, m, c.Config.ID, 20*time.Second, func(c Container) bool {
		return c.State.Running && !c.State.Restarting && c.State.RestartCount == 1
	})
	if got.State.Pid == after.State.Pid || got.State.ExitCode != 137 {
		t.Errorf("after the process was killed: %+v", got.State)
	}
}

func testManagerPause(t *testing.T, m *Manager) {
	ctx := t.Context()
	c := mustStart(t, m, testConfig("sleep", "1000"))
	if err := m.Pause(ctx, c.Config.ID); err != nil {
		t.Fatal(err)
	}
	got, err := m.Get(ctx, c.Config.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !got.State.Paused || got.State.Status != StatusPaused || !got.State.Running {
		t.Errorf("after pause: %+v", got.State)
	}
	if err := m.Pause(ctx, c.Config.ID); !errors.Is(err, errdefs.ErrConflict) {
		t.Errorf("second pause: %v", err)
	}
	if err := m.Unpause(ctx, c.Config.ID); err != nil {
		t.Fatal(err)
	}
	if got, _ := m.Get(ctx, c.Config.ID); got.State.Paused || got.State.Status != StatusRunning {
		t.Errorf("after unpause: %+v", got.State)
	}
	// A paused container can be stopped.
	if err := m.Pause(ctx, c.Config.ID); err != nil {
		t.Fatal(err)
	}
	one := time.Second
	if err := m.Stop(ctx, c.Config.ID, StopOptions{Timeout: &one}); err != nil {
		t.Fatal(err)
	}
	if got, _ := m.Get(ctx, c.Config.ID); got.State.Running || got.State.Paused || got.State.Status != StatusExited {
		t.Errorf("after stop: %+v", got.State)
	}
}

func testManagerConcurrentStart(t *testing.T, m *Manager) {
	ctx := t.Context()
	c := mustCreate(t, m, testConfig("sleep", "1000"))
	errs := make(chan error, 3)
	for range 3 {
		go func() { errs <- m.Start(ctx, c.Config.ID) }()
	}
	for range 3 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	got, err := m.Get(ctx, c.Config.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !got.State.Running || got.State.RestartCount != 0 {
		t.Errorf("after concurrent starts: %+v", got.State)
	}
	// Only one supervisor: no other one's error was recorded and the
	// socket answers.
	if got.State.Error != "" {
		t.Errorf("error recorded: %s", got.State.Error)
	}
	if err := m.Remove(ctx, c.Config.ID, RemoveOptions{}); !errors.Is(err, errdefs.ErrConflict) {
		t.Errorf("remove of a running container without force: %v", err)
	}
}

func testManagerRemoveCrashLoop(t *testing.T, m *Manager) {
	ctx := t.Context()
	cfg := testConfig("/bin/sh", "-c", "exit 2")
	cfg.RestartPolicy = RestartPolicy{Name: RestartAlways}
	c := mustStart(t, m, cfg)
	waitState(t, m, c.Config.ID, 20*time.Second, func(c Container) bool { return c.State.RestartCount >= 2 })
	if err := m.Remove(ctx, c.Config.ID, RemoveOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(c.Dir); !os.IsNotExist(err) {
		t.Errorf("container directory left: %v", err)
	}
	checkNothingLeft(t, c)
}

func testManagerOOMKilled(t *testing.T, m *Manager) {
	ctx := t.Context()
	cfg := testConfig("/bin/sh", "-c", "a=$(head -c 200000000 /dev/zero | tr '\\0' x); echo survived")
	cfg.Create.Memory = 64 << 20
	cfg.Create.MemorySwap = 64 << 20
	c := mustStart(t, m, cfg)
	code, err := m.Wait(ctx, c.Config.ID, "")
	if err != nil {
		t.Fatal(err)
	}
	got, err := m.Get(ctx, c.Config.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !got.State.OOMKilled || code == 0 {
		t.Errorf("exit %d, state %+v", code, got.State)
	}
}

// pendingSupervisors lists the processes started by PrestartSupervisor
// for m's root that still wait for their container.
func pendingSupervisors(t *testing.T, m *Manager) []int {
	t.Helper()
	var pids []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		args := strings.Split(strings.TrimSuffix(string(b), "\x00"), "\x00")
		// Waiting, it still holds the pipe its container's ID comes on.
		link, _ := os.Readlink(filepath.Join("/proc", e.Name(), "fd", "4"))
		if len(args) == 7 && args[1] == SuperviseArg && args[3] == m.root && args[6] == "-" && strings.HasPrefix(link, "pipe:") {
			pids = append(pids, pid)
		}
	}
	return pids
}

// A supervisor started ahead of its container supervises the next
// container started, writing its own messages to that container's
// supervisor.log; one never used exits when the manager is closed.
func testManagerPrestartSupervisor(t *testing.T, m *Manager) {
	ctx := t.Context()
	if err := m.PrestartSupervisor(); err != nil {
		t.Fatal(err)
	}
	pids := pendingSupervisors(t, m)
	if len(pids) != 1 {
		t.Fatalf("%d waiting supervisors after PrestartSupervisor, want 1", len(pids))
	}
	c := mustStart(t, m, testConfig("/bin/sh", "-c", "echo from-prestarted; sleep 30"))
	waitForLog(t, m, c, "stdout:from-prestarted")
	got, err := m.Get(ctx, c.Config.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.State.SupervisorPid != pids[0] {
		t.Errorf("supervisor pid %d, want the prestarted %d", got.State.SupervisorPid, pids[0])
	}
	if _, err := os.Stat(filepath.Join(c.Dir, supervisorLog)); err != nil {
		t.Errorf("no supervisor.log: %v", err)
	}
	// The next start spawns its own.
	c2 := mustStart(t, m, testConfig("/bin/sh", "-c", "echo second"))
	waitForLog(t, m, c2, "stdout:second")

	if err := m.PrestartSupervisor(); err != nil {
		t.Fatal(err)
	}
	if n := len(pendingSupervisors(t, m)); n != 1 {
		t.Fatalf("%d waiting supervisors, want 1", n)
	}
	m.Close()
	for end := time.Now().Add(5 * time.Second); len(pendingSupervisors(t, m)) > 0; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatal("an unused prestarted supervisor did not exit after Close")
		}
	}
	var now time.Duration
	if err := m.Stop(ctx, c.Config.ID, StopOptions{Timeout: &now}); err != nil {
		t.Fatal(err)
	}
}

// An auto-removed container runs on a volatile overlay (its writes are
// never synced), and once a waiter for its removal returns its name is
// free and its directory gone, though the supervisor may still be
// deleting the renamed files.
func testManagerAutoRemoveFastPath(t *testing.T, m *Manager) {
	ctx := t.Context()
	cfg := testConfig("sleep", "60") // killed below
	cfg.AutoRemove = true
	cfg.Name = "fastpath"
	c := mustStart(t, m, cfg)
	// From this thread: a goroutine that entered a container's mount
	// namespace may have left the main thread of a process there (the
	// runtime parks a locked main thread instead of ending it), so
	// /proc/PID/mountinfo can show a container's mounts.
	goruntime.LockOSThread()
	mi, err := os.ReadFile("/proc/thread-self/mountinfo")
	goruntime.UnlockOSThread()
	if err != nil {
		t.Fatal(err)
	}
	var line string
	for _, l := range strings.Split(string(mi), "\n") {
		if f := strings.Fields(l); len(f) > 4 && f[4] == filepath.Join(c.Dir, RootfsDir) {
			line = l
		}
	}
	if !strings.Contains(line, "volatile") {
		var related []string
		for _, l := range strings.Split(string(mi), "\n") {
			if strings.Contains(l, c.Config.ID[:12]) {
				related = append(related, l)
			}
		}
		t.Errorf("the auto-removed container's root is not a volatile overlay: %q (mounts naming it: %q)", line, related)
	}
	if err := m.Kill(ctx, c.Config.ID, "KILL"); err != nil {
		t.Fatal(err)
	}
	if code, err := m.Wait(ctx, c.Config.ID, WaitRemoved); err != nil || code != 137 {
		t.Fatalf("wait removed: %d, %v", code, err)
	}
	if _, err := os.Stat(c.Dir); !os.IsNotExist(err) {
		t.Errorf("container directory still there after wait removed: %v", err)
	}
	// The name is free at once.
	c2 := mustCreate(t, m, ContainerConfig{Image: "base:latest", Name: "fastpath", NetworkMode: "none", Create: CreateOptions{Cmd: []string{"true"}}})
	if err := m.Remove(ctx, c2.Config.ID, RemoveOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	trash := filepath.Join(m.containersDir(), ".rm-"+c.Config.ID)
	for end := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if _, err := os.Stat(trash); os.IsNotExist(err) {
			break
		}
		if time.Now().After(end) {
			t.Fatalf("%s is still there", trash)
		}
	}
	checkNothingLeft(t, c)
}
