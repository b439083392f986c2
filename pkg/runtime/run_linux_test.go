package runtime

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	// Test binaries are re-executed as container init too.
	_ "github.com/opencontainers/runc/libcontainer/nsenter"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berthsh/berth/internal/testutil"
	"github.com/berthsh/berth/pkg/errdefs"
	"github.com/berthsh/berth/pkg/store"
	"github.com/berthsh/berth/pkg/store/archive"
)

func TestMain(m *testing.M) {
	// libcontainer starts containers by re-executing this test binary
	// with "init".
	InitIfRequested()
	// Start re-executes it as a container's supervisor.
	SuperviseIfRequested()
	os.Exit(m.Run())
}

// testEngine is a state root with the minimal base image imported.
type testEngine struct {
	root  string
	store *store.Store
	img   store.Image
	cache *LayerCache
	// lastSpec is the spec of the container being run.
	lastSpec *specs.Spec
}

func newTestEngine(t *testing.T) *testEngine {
	t.Helper()
	testutil.RequiresRoot(t)
	tarball := testutil.BaseTarball(t, testutil.BaseMinimal)
	ctx := t.Context()
	root := t.TempDir()
	s, err := store.Open(ctx, filepath.Join(root, "store"))
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(tarball)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := archive.Import(ctx, s, f, archive.ImportOptions{Changes: []string{`CMD ["/bin/sh"]`}})
	if err != nil {
		t.Fatalf("import base image: %v", err)
	}
	cache, err := OpenLayerCache(filepath.Join(root, "layers"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { checkNoMounts(t, root) })
	return &testEngine{root: root, store: s, img: img, cache: cache}
}

// checkNoMounts fails t if anything is still mounted below dir.
func checkNoMounts(t *testing.T, dir string) {
	t.Helper()
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 4 && (fields[4] == dir || strings.HasPrefix(fields[4], dir+"/")) {
			t.Errorf("still mounted: %s", fields[4])
		}
	}
}

// syncBuffer is a bytes.Buffer safe for the concurrent writes of stdout
// and stderr copies.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type runResult struct {
	id     string
	status ExitStatus
	stdout string
	stderr string
}

// run creates, starts, waits for and removes one container, checking that
// its cgroup and state are gone afterwards.
func (e *testEngine) run(t *testing.T, opts CreateOptions, during ...func(*testing.T, *RuncContainer, *syncBuffer, *os.File)) runResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	id := fmt.Sprintf("berth-test-%d-%d", os.Getpid(), time.Now().UnixNano())
	cdir := filepath.Join(e.root, "containers", id)
	if err := os.MkdirAll(cdir, 0o700); err != nil {
		t.Fatal(err)
	}
	lowers, err := PrepareRootfs(ctx, e.cache, e.store, e.img, cdir)
	if err != nil {
		t.Fatal(err)
	}
	rootfsPath, err := MountRootfs(ctx, cdir, lowers)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := UnmountRootfs(cdir); err != nil {
			t.Error(err)
		}
	}()
	for name, content := range map[string]string{
		"hosts":       "127.0.0.1\tlocalhost\n",
		"hostname":    "box\n",
		"resolv.conf": "nameserver 127.0.0.1\n",
	} {
		if err := os.WriteFile(filepath.Join(cdir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	opts.Hostname = "box"
	opts.HostsPath = filepath.Join(cdir, "hosts")
	opts.HostnamePath = filepath.Join(cdir, "hostname")
	opts.ResolvConfPath = filepath.Join(cdir, "resolv.conf")
	cf, _, err := e.store.ConfigFile(ctx, e.img)
	if err != nil {
		t.Fatal(err)
	}
	spec, err := CreateSpec(&cf.Config, rootfsPath, opts)
	if err != nil {
		t.Fatal(err)
	}
	e.lastSpec = spec
	stateRoot := filepath.Join(e.root, "libcontainer")
	c, err := Create(ctx, stateRoot, id, spec)
	if err != nil {
		t.Fatal(err)
	}
	var stdout, stderr syncBuffer
	destroyed := false
	defer func() {
		if !destroyed {
			if err := c.Destroy(ctx); err != nil {
				t.Error(err)
			}
		}
	}()
	var consoleDone chan struct{}
	var console *os.File
	if opts.Tty {
		console, err = c.StartTerminal(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer console.Close()
		consoleDone = make(chan struct{})
		go func() {
			defer close(consoleDone)
			// Ends with EIO once the container's side is closed.
			_, _ = io.Copy(&stdout, console)
		}()
	} else if err := c.Start(ctx, Stdio{Stdout: &stdout, Stderr: &stderr}); err != nil {
		t.Fatal(err)
	}
	if c.Pid() <= 0 {
		t.Errorf("pid = %d", c.Pid())
	}
	for _, fn := range during {
		fn(t, c, &stdout, console)
	}
	st, err := c.Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if consoleDone != nil {
		select {
		case <-consoleDone:
		case <-ctx.Done():
			t.Fatal("terminal output did not end")
		}
	}
	cgroupDir := filepath.Join("/sys/fs/cgroup/memory", DefaultCgroupsPath(id))
	if _, err := os.Stat("/sys/fs/cgroup/memory"); err != nil {
		cgroupDir = filepath.Join("/sys/fs/cgroup", DefaultCgroupsPath(id)) // cgroup v2
	}
	if _, err := os.Stat(filepath.Join(stateRoot, id)); err == nil {
		// Not destroyed by a "during" function yet.
		if s, err := c.State(); err != nil || s != "stopped" {
			t.Errorf("state after exit = %q, %v", s, err)
		}
		if _, err := os.Stat(cgroupDir); err != nil {
			t.Errorf("container cgroup %s missing while the container exists: %v", cgroupDir, err)
		}
	}
	if err := c.Destroy(ctx); err != nil {
		t.Fatal(err)
	}
	destroyed = true
	if err := c.Destroy(ctx); err != nil {
		t.Errorf("second destroy: %v", err)
	}
	if _, err := os.Stat(cgroupDir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("cgroup %s left after destroy: %v", cgroupDir, err)
	}
	if _, err := os.Stat(filepath.Join(stateRoot, id)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("state left after destroy: %v", err)
	}
	return runResult{id: id, status: st, stdout: stdout.String(), stderr: stderr.String()}
}

// runFails creates a container whose start must fail, returns the error
// and checks that Destroy cleans up.
func (e *testEngine) runFails(t *testing.T, opts CreateOptions) error {
	t.Helper()
	ctx := t.Context()
	id := fmt.Sprintf("berth-test-%d-%d", os.Getpid(), time.Now().UnixNano())
	cdir := filepath.Join(e.root, "containers", id)
	if err := os.MkdirAll(cdir, 0o700); err != nil {
		t.Fatal(err)
	}
	lowers, err := PrepareRootfs(ctx, e.cache, e.store, e.img, cdir)
	if err != nil {
		t.Fatal(err)
	}
	rootfsPath, err := MountRootfs(ctx, cdir, lowers)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := UnmountRootfs(cdir); err != nil {
			t.Error(err)
		}
	}()
	spec, err := CreateSpec(nil, rootfsPath, opts)
	if err != nil {
		t.Fatal(err)
	}
	stateRoot := filepath.Join(e.root, "libcontainer")
	c, err := Create(ctx, stateRoot, id, spec)
	if err != nil {
		t.Fatal(err)
	}
	startErr := c.Start(ctx, Stdio{})
	if startErr == nil {
		t.Error("start succeeded")
		_, _ = c.Wait(ctx)
	}
	if err := c.Destroy(ctx); err != nil {
		t.Error(err)
	}
	if _, err := os.Stat(filepath.Join("/sys/fs/cgroup/pids", DefaultCgroupsPath(id))); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("cgroup left after a failed start: %v", err)
	}
	if _, err := os.Stat(filepath.Join(stateRoot, id)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("state left after a failed start: %v", err)
	}
	return startErr
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("timed out waiting")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestRunContainer(t *testing.T) {
	e := newTestEngine(t)

	t.Run("hello", func(t *testing.T) {
		r := e.run(t, CreateOptions{
			Cmd:    []string{"/bin/sh", "-c", "echo hello; id -u; cat /proc/self/cgroup | head -1; cat /etc/hostname; hostname; cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max"},
			User:   "nobody",
			Memory: 64 << 20,
		})
		if r.status != (ExitStatus{}) {
			t.Errorf("status = %+v, want exit 0 (stderr %q)", r.status, r.stderr)
		}
		lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
		if len(lines) != 6 {
			t.Fatalf("stdout = %q (stderr %q), want 6 lines", r.stdout, r.stderr)
		}
		if lines[0] != "hello" {
			t.Errorf("line 1 = %q, want hello", lines[0])
		}
		if lines[1] != "65534" {
			t.Errorf("id -u = %q, want 65534 (nobody)", lines[1])
		}
		if !strings.Contains(lines[2], DefaultCgroupsPath(r.id)) {
			t.Errorf("/proc/self/cgroup line %q does not name the container's cgroup %s", lines[2], DefaultCgroupsPath(r.id))
		}
		if lines[3] != "box" || lines[4] != "box" {
			t.Errorf("hostname file %q, hostname %q, want box", lines[3], lines[4])
		}
		if lines[5] != fmt.Sprint(64<<20) {
			t.Errorf("memory limit seen inside = %q, want %d", lines[5], 64<<20)
		}
	})

	t.Run("memory and swap", func(t *testing.T) {
		if _, err := os.Stat("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes"); err != nil {
			t.Skip("needs cgroup v1 with swap accounting")
		}
		if !SwapLimitSupported() {
			t.Error("SwapLimitSupported = false with memory.memsw.limit_in_bytes present")
		}
		r := e.run(t, CreateOptions{
			Cmd:               []string{"/bin/sh", "-c", "cd /sys/fs/cgroup/memory; cat memory.limit_in_bytes memory.memsw.limit_in_bytes memory.soft_limit_in_bytes"},
			Memory:            64 << 20,
			MemoryReservation: 16 << 20,
		})
		want := fmt.Sprintf("%d\n%d\n%d\n", 64<<20, 128<<20, 16<<20)
		if r.stdout != want || r.status.Code != 0 {
			t.Errorf("limits = %q (status %+v, stderr %q), want %q", r.stdout, r.status, r.stderr, want)
		}
	})

	t.Run("cpu pids and ulimits", func(t *testing.T) {
		if _, err := os.Stat("/sys/fs/cgroup/cpu/cpu.cfs_quota_us"); err != nil {
			t.Skip("needs cgroup v1")
		}
		r := e.run(t, CreateOptions{
			Cmd: []string{"/bin/sh", "-c", "cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us /sys/fs/cgroup/cpu/cpu.cfs_period_us " +
				"/sys/fs/cgroup/cpu/cpu.shares /sys/fs/cgroup/pids/pids.max; ulimit -Sn; ulimit -Hn"},
			CPUs:      0.5,
			CPUShares: 512,
			PidsLimit: 50,
			Ulimits:   []Ulimit{{Name: "nofile", Soft: 1000, Hard: 2000}},
		})
		want := "50000\n100000\n512\n50\n1000\n2000\n"
		if r.stdout != want || r.status.Code != 0 {
			t.Errorf("output = %q (status %+v, stderr %q), want %q", r.stdout, r.status, r.stderr, want)
		}
	})

	t.Run("mounts", func(t *testing.T) {
		host := t.TempDir()
		if err := os.WriteFile(filepath.Join(host, "f"), []byte("from host\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		r := e.run(t, CreateOptions{
			Cmd: []string{"/bin/sh", "-c", "cat /data/f; touch /data/g 2>/dev/null && echo data-writable; " +
				"touch /scratch/x && echo scratch-writable; grep -E ' /(dev/shm|scratch) ' /proc/mounts | cut -d' ' -f2,3,4; cat /etc/resolv.conf"},
			Mounts: []Mount{
				{Type: MountTypeBind, Source: host, Target: "/data", ReadOnly: true},
				{Type: MountTypeTmpfs, Target: "/scratch", Options: []string{"size=1m"}},
			},
			ShmSize: 2 << 20,
		})
		want := "from host\nscratch-writable\n" +
			"/dev/shm tmpfs rw,nosuid,nodev,noexec,relatime,size=2048k\n" +
			"/scratch tmpfs rw,nosuid,nodev,noexec,relatime,size=1024k\n" +
			"nameserver 127.0.0.1\n"
		if r.stdout != want {
			t.Errorf("output = %q (stderr %q), want %q", r.stdout, r.stderr, want)
		}
	})

	t.Run("exit code", func(t *testing.T) {
		r := e.run(t, CreateOptions{Cmd: []string{"/bin/sh", "-c", "echo oops >&2; exit 3"}})
		if r.status != (ExitStatus{Code: 3}) {
			t.Errorf("status = %+v, want exit 3", r.status)
		}
		if r.stderr != "oops\n" {
			t.Errorf("stderr = %q", r.stderr)
		}
	})

	t.Run("killed from another process", func(t *testing.T) {
		r := e.run(t, CreateOptions{Cmd: []string{"/bin/sh", "-c", "echo started; exec sleep 60"}}, func(t *testing.T, c *RuncContainer, stdout *syncBuffer, _ *os.File) {
			waitFor(t, func() bool { return stdout.String() == "started\n" })
			// PID 1 ignores SIGTERM it has no handler for.
			if err := c.Signal(syscall.SIGTERM); err != nil {
				t.Error(err)
			}
			other, err := Load(t.Context(), filepath.Join(e.root, "libcontainer"), c.ID())
			if err != nil {
				t.Fatal(err)
			}
			if s, err := other.State(); err != nil || s != "running" {
				t.Errorf("loaded state = %q, %v", s, err)
			}
			if other.Pid() != c.Pid() {
				t.Errorf("loaded pid %d, started pid %d", other.Pid(), c.Pid())
			}
			if pids, err := other.Processes(); err != nil || len(pids) != 1 || pids[0] != c.Pid() {
				t.Errorf("processes = %v, %v, want [%d]", pids, err, c.Pid())
			}
			if err := other.Pause(); err != nil {
				t.Fatal(err)
			}
			if s, err := c.State(); err != nil || s != "paused" {
				t.Errorf("state after pause = %q, %v", s, err)
			}
			if err := other.Resume(); err != nil {
				t.Fatal(err)
			}
			if err := other.Resume(); !errors.Is(err, errdefs.ErrConflict) {
				t.Errorf("resume a running container: %v, want ErrConflict", err)
			}
			if err := other.Signal(syscall.SIGKILL); err != nil {
				t.Error(err)
			}
		})
		if r.status != (ExitStatus{Code: 137, Signal: syscall.SIGKILL}) {
			t.Errorf("status = %+v, want 137 (SIGKILL)", r.status)
		}
	})

	t.Run("destroy running", func(t *testing.T) {
		r := e.run(t, CreateOptions{Cmd: []string{"sleep", "60"}}, func(t *testing.T, c *RuncContainer, _ *syncBuffer, _ *os.File) {
			// Even a paused one.
			if err := c.Pause(); err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			if err := c.Destroy(t.Context()); err != nil {
				t.Fatal(err)
			}
			if d := time.Since(start); d > 10*time.Second {
				t.Errorf("destroy took %s", d)
			}
		})
		if r.status != (ExitStatus{Code: 137, Signal: syscall.SIGKILL}) {
			t.Errorf("status after destroy = %+v, want 137 (SIGKILL)", r.status)
		}
	})

	t.Run("terminal", func(t *testing.T) {
		r := e.run(t, CreateOptions{
			Cmd: []string{"/bin/sh", "-c", "tty; stty size; echo $TERM; test -t 0 && test -t 2 && echo all-tty"},
			Tty: true, ConsoleHeight: 33, ConsoleWidth: 101,
		})
		if r.status != (ExitStatus{}) {
			t.Errorf("status = %+v", r.status)
		}
		want := "/dev/pts/0\r\n33 101\r\nxterm\r\nall-tty\r\n"
		if r.stdout != want {
			t.Errorf("terminal output = %q, want %q", r.stdout, want)
		}
	})

	t.Run("terminal resize", func(t *testing.T) {
		// The size set from outside is what the process sees.
		r := e.run(t, CreateOptions{
			Cmd: []string{"/bin/sh", "-c", "read x; stty size"},
			Tty: true,
		}, func(t *testing.T, _ *RuncContainer, _ *syncBuffer, console *os.File) {
			if err := ResizeTerminal(console, 77, 22); err != nil {
				t.Error(err)
			}
			if _, err := console.Write([]byte("go\n")); err != nil {
				t.Error(err)
			}
		})
		if r.status != (ExitStatus{}) || !strings.HasSuffix(r.stdout, "22 77\r\n") {
			t.Errorf("status %+v, output %q, want the size 22 77", r.status, r.stdout)
		}
	})

	t.Run("exec", func(t *testing.T) {
		var spec *specs.Spec
		r := e.run(t, CreateOptions{Cmd: []string{"/bin/sh", "-c", "echo started; exec sleep 60"}, Env: []string{"FROM_RUN=1"}}, func(t *testing.T, c *RuncContainer, stdout *syncBuffer, _ *os.File) {
			waitFor(t, func() bool { return stdout.String() == "started\n" })
			spec = e.lastSpec
			ctx := t.Context()
			proc, err := ExecProcess(spec, ExecOptions{
				Cmd:        []string{"/bin/sh", "-c", "echo $$ $FROM_RUN $EXTRA; id -u; pwd; exit 5"},
				Env:        []string{"EXTRA=2"},
				User:       "nobody",
				WorkingDir: "/tmp",
			})
			if err != nil {
				t.Fatal(err)
			}
			// From another process's view of the container, as docker
			// exec would.
			other, err := Load(ctx, filepath.Join(e.root, "libcontainer"), c.ID())
			if err != nil {
				t.Fatal(err)
			}
			var out syncBuffer
			p, err := other.Exec(ctx, proc, Stdio{Stdout: &out})
			if err != nil {
				t.Fatal(err)
			}
			st, err := p.Wait(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if st != (ExitStatus{Code: 5}) {
				t.Errorf("exec status = %+v, want 5", st)
			}
			lines := strings.Split(strings.TrimSpace(out.String()), "\n")
			if len(lines) != 3 || strings.HasPrefix(lines[0], "1 ") || !strings.HasSuffix(lines[0], " 1 2") || lines[1] != "65534" || lines[2] != "/tmp" {
				t.Errorf("exec output = %q", out.String())
			}

			// With a terminal, killed by a signal.
			proc, err = ExecProcess(spec, ExecOptions{Cmd: []string{"/bin/sh", "-c", "tty; exec sleep 60"}, Tty: true})
			if err != nil {
				t.Fatal(err)
			}
			p, console, err := c.ExecTerminal(ctx, proc)
			if err != nil {
				t.Fatal(err)
			}
			defer console.Close()
			buf := make([]byte, 64)
			n, err := console.Read(buf)
			if err != nil || !strings.HasPrefix(string(buf[:n]), "/dev/pts/") {
				t.Errorf("exec terminal output %q, %v", buf[:n], err)
			}
			if err := p.Signal(syscall.SIGKILL); err != nil {
				t.Error(err)
			}
			if st, err := p.Wait(ctx); err != nil || st != (ExitStatus{Code: 137, Signal: syscall.SIGKILL}) {
				t.Errorf("exec status = %+v, %v, want SIGKILL", st, err)
			}
			if err := p.Signal(syscall.SIGKILL); !errors.Is(err, errdefs.ErrConflict) {
				t.Errorf("signal after exit: %v, want ErrConflict", err)
			}
			if s, err := c.State(); err != nil || s != "running" {
				t.Errorf("container state after exec = %q, %v", s, err)
			}
			if err := c.Signal(syscall.SIGKILL); err != nil {
				t.Error(err)
			}
		})
		if r.status.Signal != syscall.SIGKILL {
			t.Errorf("container status = %+v", r.status)
		}
	})

	t.Run("command not found", func(t *testing.T) {
		for _, tc := range []struct {
			cmd  []string
			want error
		}{
			{[]string{"/no/such/command"}, errdefs.ErrNotFound},
			{[]string{"no-such-command"}, errdefs.ErrNotFound},
			{[]string{"/etc/passwd"}, errdefs.ErrPermission},
			{[]string{"/etc"}, errdefs.ErrPermission},
		} {
			err := e.runFails(t, CreateOptions{Cmd: tc.cmd})
			if !errors.Is(err, tc.want) {
				t.Errorf("start %q: err = %v, want %v", tc.cmd, err, tc.want)
			}
			t.Logf("start %q: %v", tc.cmd, err)
		}
	})

	t.Run("isolation", func(t *testing.T) {
		r := e.run(t, CreateOptions{
			Cmd:      []string{"/bin/sh", "-c", "echo $$; ls /sys/class/net | tr '\\n' ' '; echo; grep CapEff /proc/self/status; touch /x && echo writable"},
			ReadOnly: true,
		})
		lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
		if len(lines) != 3 {
			t.Fatalf("stdout = %q (stderr %q)", r.stdout, r.stderr)
		}
		if lines[0] != "1" {
			t.Errorf("shell pid = %q, want 1 (own PID namespace)", lines[0])
		}
		if strings.TrimSpace(lines[1]) != "lo" {
			t.Errorf("network interfaces = %q, want only lo", lines[1])
		}
		// Docker's default set is 0x00000000a80425fb.
		if lines[2] != "CapEff:\t00000000a80425fb" {
			t.Errorf("capabilities %q, want docker's default set", lines[2])
		}
		if !strings.Contains(r.stderr, "Read-only file system") {
			t.Errorf("stderr = %q, want a read-only root", r.stderr)
		}
		if r.status.Code == 0 {
			t.Error("writing to a read-only root succeeded")
		}
	})

	t.Run("oom", func(t *testing.T) {
		// tail keeps its whole input when it has no newline: 100 MB in a
		// 32 MB cgroup.
		r := e.run(t, CreateOptions{
			Cmd:    []string{"/bin/sh", "-c", "head -c 100M /dev/zero | tail; echo survived"},
			Memory: 32 << 20,
		})
		if !r.status.OOMKilled {
			t.Errorf("status = %+v, want OOM killed (stdout %q stderr %q)", r.status, r.stdout, r.stderr)
		}
		if strings.Contains(r.stdout, "survived") && r.status.Code == 0 && !r.status.OOMKilled {
			t.Error("100 MB fit in a 32 MB limit")
		}
	})

	t.Run("oom kills init", func(t *testing.T) {
		r := e.run(t, CreateOptions{
			Cmd:    []string{"/bin/sh", "-c", "exec tail < /dev/zero"},
			Memory: 32 << 20,
		})
		if r.status != (ExitStatus{Code: 137, Signal: syscall.SIGKILL, OOMKilled: true}) {
			t.Errorf("status = %+v, want 137 (SIGKILL) and OOM killed (stderr %q)", r.status, r.stderr)
		}
	})
}

func TestCreateErrors(t *testing.T) {
	testutil.RequiresRoot(t)
	ctx := t.Context()
	root := t.TempDir()
	spec, err := CreateSpec(nil, root, CreateOptions{Cmd: []string{"/bin/true"}})
	if err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(root, "state")
	if _, err := Create(ctx, state, "bad/id", spec); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("bad id: err = %v, want ErrInvalidArgument", err)
	}
	if _, err := Create(ctx, "relative", "ok", spec); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("relative state root: err = %v, want ErrInvalidArgument", err)
	}
	tty := *spec
	proc := *spec.Process
	proc.Terminal = true
	tty.Process = &proc
	tc, err := Create(ctx, state, "tty", &tty)
	if err != nil {
		t.Fatal(err)
	}
	if err := tc.Start(ctx, Stdio{}); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("Start with a terminal spec: err = %v, want ErrInvalidArgument", err)
	}
	if err := tc.Destroy(ctx); err != nil {
		t.Fatal(err)
	}
	c, err := Create(ctx, state, "twice", spec)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Create(ctx, state, "twice", spec); !errors.Is(err, errdefs.ErrAlreadyExists) {
		t.Errorf("same id twice: err = %v, want ErrAlreadyExists", err)
	}
	if _, err := c.StartTerminal(ctx); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("StartTerminal without a terminal in the spec: err = %v, want ErrInvalidArgument", err)
	}
	if _, err := c.Wait(ctx); !errors.Is(err, errdefs.ErrConflict) {
		t.Errorf("wait before start: err = %v, want ErrConflict", err)
	}
	if err := c.Destroy(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(ctx, state, "twice"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("load destroyed: err = %v, want ErrNotFound", err)
	}
}
