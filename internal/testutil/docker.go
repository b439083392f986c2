package testutil

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Where the private Docker engine lives. The paths are fixed (not per test
// binary) so that test binaries running in parallel share one engine; see
// Docker.
const (
	// DockerTestSocket is the API socket of the private engine.
	DockerTestSocket = "/run/berth-test-docker.sock"
	// dockerRunDir holds the engine's pid file, exec root, log and locks.
	dockerRunDir = "/run/berth-test-docker"
)

const (
	// dockerStartTimeout bounds how long Docker waits for a started engine
	// to answer.
	dockerStartTimeout = 60 * time.Second
	// dockerStopTimeout bounds how long StopDocker waits for the engine to
	// exit after SIGTERM before it sends SIGKILL.
	dockerStopTimeout = 30 * time.Second
	// dockerProbeTimeout bounds one "docker version" probe.
	dockerProbeTimeout = 10 * time.Second
)

// dockerState is the process-wide state of the engine this test binary
// uses. All fields are guarded by mu.
var dockerState struct {
	mu sync.Mutex
	// host is the DOCKER_HOST in use, "" before the first successful Docker.
	host string
	// private is set when host is the private engine, which this process
	// holds a use lock on (useLock) and may have started itself (cmd).
	private bool
	useLock *os.File
	cmd     *exec.Cmd
	exited  chan struct{}
	// refs counts running tests that called Docker; held is set by
	// DockerMain. The private engine is released when both drop.
	refs int
	held bool
	// skip is the reason no engine can be had, once known.
	skip string
}

// Docker makes a Docker engine available to t and returns the environment
// (os.Environ() with DOCKER_HOST set) for running the docker CLI against
// it with exec.Cmd.Env.
//
// It uses, in order: the engine at $DOCKER_HOST, the one at
// /var/run/docker.sock, or, when running as root with dockerd installed
// (Debian package docker.io), a private engine it starts itself. The
// private engine keeps its images in <test cache>/docker (see BaseTarball),
// so pulled and loaded layers persist between runs, listens on
// DockerTestSocket, and is started with --bridge none --iptables=false
// --ip-forward=false so that it leaves the host's firewall and sysctls
// alone; containers should use --network none. Test binaries running at the
// same time share it, and the last one to finish stops it.
//
// The private engine is released when the last running test that called
// Docker ends, unless the test binary's TestMain uses DockerMain, which
// keeps it up until all tests have run. t is skipped when no engine can be
// had; Docker never installs anything.
func Docker(t testing.TB) []string {
	t.Helper()
	if _, err := exec.LookPath("docker"); err != nil {
		t.Skip("no Docker engine: docker CLI not found; apt-get install docker.io")
	}
	s := &dockerState
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.skip != "" {
		t.Skip(s.skip)
	}
	if s.host == "" {
		host, err := acquireDocker(t.Context(), t.Logf)
		var skip skipError
		switch {
		case errors.As(err, &skip):
			s.skip = string(skip)
			t.Skip(s.skip)
		case err != nil:
			t.Fatalf("start Docker engine: %v", err)
		}
		s.host = host
	}
	if s.private {
		s.refs++
		t.Cleanup(func() {
			s.mu.Lock()
			defer s.mu.Unlock()
			s.refs--
			if s.refs == 0 && !s.held {
				if err := releaseDockerLocked(); err != nil {
					t.Errorf("stop Docker engine: %v", err)
				}
			}
		})
	}
	return dockerEnv(s.host)
}

// DockerMain runs m's tests and then StopDocker, so that tests of a binary
// share one Docker engine instead of starting one per test. Use it as
//
//	func TestMain(m *testing.M) { os.Exit(testutil.DockerMain(m)) }
func DockerMain(m *testing.M) int {
	dockerState.mu.Lock()
	dockerState.held = true
	dockerState.mu.Unlock()
	code := m.Run()
	if err := StopDocker(); err != nil {
		fmt.Fprintf(os.Stderr, "testutil: stop Docker engine: %v\n", err)
		if code == 0 {
			code = 1
		}
	}
	return code
}

// StopDocker releases the private Docker engine started or joined by
// Docker, stopping it unless another test binary still uses it. It is for
// TestMain (after m.Run); it does nothing when no private engine is in use.
// A later Docker call starts or joins an engine again.
func StopDocker() error {
	dockerState.mu.Lock()
	defer dockerState.mu.Unlock()
	dockerState.held = false
	return releaseDockerLocked()
}

// skipError is an acquireDocker failure that means "no engine here" rather
// than "the engine is broken".
type skipError string

func (e skipError) Error() string { return string(e) }

// acquireDocker finds or starts an engine and returns its DOCKER_HOST. For
// the private engine it also sets the private fields of dockerState, whose
// mu the caller holds.
func acquireDocker(ctx context.Context, logf func(string, ...any)) (string, error) {
	if h := os.Getenv("DOCKER_HOST"); h != "" {
		err := probeDocker(ctx, h)
		if err == nil {
			return h, nil
		}
		logf("DOCKER_HOST=%s does not answer (%v); trying others", h, err)
	}
	const system = "unix:///var/run/docker.sock"
	if _, err := os.Stat("/var/run/docker.sock"); err == nil {
		if err := probeDocker(ctx, system); err == nil {
			return system, nil
		}
	}
	if os.Geteuid() != 0 {
		return "", skipError("no Docker engine: none answers at $DOCKER_HOST or /var/run/docker.sock, and starting one needs root")
	}
	dockerd, err := findDockerd()
	if err != nil {
		return "", skipError("no Docker engine: dockerd not found; apt-get install docker.io")
	}
	cache, err := baseCacheDir()
	if err != nil {
		return "", err
	}
	if err := startPrivateDocker(ctx, dockerd, filepath.Join(cache, "docker"), logf); err != nil {
		return "", err
	}
	return "unix://" + DockerTestSocket, nil
}

// findDockerd returns the path of dockerd, also looking in /usr/sbin, which
// is not on every PATH.
func findDockerd() (string, error) {
	if p, err := exec.LookPath("dockerd"); err == nil {
		return p, nil
	}
	for _, p := range []string{"/usr/sbin/dockerd", "/usr/bin/dockerd"} {
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", errors.New("dockerd not found")
}

// startPrivateDocker joins the private engine, starting it first if no
// other test binary runs it. Processes coordinate through two flocks in
// dockerRunDir: start.lock (exclusive) serialises starting, joining and
// stopping; each process using the engine holds use.lock shared, so the one
// that can take it exclusively knows it is the last user.
func startPrivateDocker(ctx context.Context, dockerd, dataRoot string, logf func(string, ...any)) error {
	s := &dockerState
	if err := os.MkdirAll(dockerRunDir, 0o700); err != nil {
		return err
	}
	return withFileLock(filepath.Join(dockerRunDir, "start.lock"), func() error {
		use, err := os.OpenFile(filepath.Join(dockerRunDir, "use.lock"), os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			return err
		}
		host := "unix://" + DockerTestSocket
		if probeDocker(ctx, host) != nil {
			cmd, exited, err := launchDockerd(ctx, dockerd, dataRoot, logf)
			if err != nil {
				use.Close()
				return err
			}
			s.cmd, s.exited = cmd, exited
		}
		if err := flock(use, unix.LOCK_SH); err != nil {
			use.Close()
			return err
		}
		s.useLock = use
		s.private = true
		return nil
	})
}

// launchDockerd starts dockerd with overlay2, or vfs if overlay2 does not
// work here, and waits until it answers.
func launchDockerd(ctx context.Context, dockerd, dataRoot string, logf func(string, ...any)) (*exec.Cmd, chan struct{}, error) {
	if err := os.MkdirAll(dataRoot, 0o711); err != nil {
		return nil, nil, err
	}
	var errs []error
	for _, driver := range []string{"overlay2", "vfs"} {
		start := time.Now()
		cmd, exited, err := launchDockerdWith(ctx, dockerd, dataRoot, driver)
		if err == nil {
			logf("started private dockerd (pid %d, %s, data root %s) in %s", cmd.Process.Pid, driver, dataRoot, time.Since(start).Round(time.Millisecond))
			return cmd, exited, nil
		}
		errs = append(errs, fmt.Errorf("storage driver %s: %w", driver, err))
	}
	return nil, nil, errors.Join(errs...)
}

func launchDockerdWith(ctx context.Context, dockerd, dataRoot, driver string) (*exec.Cmd, chan struct{}, error) {
	logPath := filepath.Join(dockerRunDir, "dockerd.log")
	logFile, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, nil, err
	}
	defer logFile.Close()
	// Not exec.CommandContext: the engine outlives the test that starts
	// it. Its output goes to a file, never to the test binary's stdout,
	// which go test waits on.
	cmd := exec.Command(dockerd,
		"--data-root", dataRoot,
		"--exec-root", filepath.Join(dockerRunDir, "exec"),
		"--pidfile", filepath.Join(dockerRunDir, "dockerd.pid"),
		"--host", "unix://"+DockerTestSocket,
		"--storage-driver", driver,
		"--bridge", "none",
		"--iptables=false",
		"--ip-masq=false",
		"--ip-forward=false",
		"--log-level", "warn",
	)
	cmd.Env = dockerdEnv()
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	if err := cmd.Start(); err != nil {
		return nil, nil, err
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	if err := waitForDocker(ctx, "unix://"+DockerTestSocket, exited); err != nil {
		_ = cmd.Process.Signal(unix.SIGTERM)
		select {
		case <-exited:
		case <-time.After(dockerStopTimeout):
			_ = cmd.Process.Kill()
			<-exited
		}
		log, _ := os.ReadFile(logPath)
		return nil, nil, fmt.Errorf("%w; dockerd log:\n%s", err, tail(string(log), 20))
	}
	return cmd, exited, nil
}

// waitForDocker polls host until it answers, the engine exits, or
// dockerStartTimeout passes.
func waitForDocker(ctx context.Context, host string, exited <-chan struct{}) error {
	ctx, cancel := context.WithTimeout(ctx, dockerStartTimeout)
	defer cancel()
	var lastErr error
	for {
		// Cheap check first: the socket appears shortly before the API
		// answers.
		if _, err := os.Stat(DockerTestSocket); err == nil {
			if lastErr = probeDocker(ctx, host); lastErr == nil {
				return nil
			}
		}
		select {
		case <-exited:
			return errors.New("dockerd exited during start-up")
		case <-ctx.Done():
			return fmt.Errorf("dockerd did not answer within %s: %v", dockerStartTimeout, lastErr)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// probeDocker runs "docker version" against host.
func probeDocker(ctx context.Context, host string) error {
	ctx, cancel := context.WithTimeout(ctx, dockerProbeTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "docker", "version", "--format", "{{.Server.Version}}")
	cmd.Env = dockerEnv(host)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("docker version: %w: %s", err, strings.TrimSpace(string(out)))
	}
	return nil
}

// releaseDockerLocked drops this process's use of the private engine and
// stops the engine if no other process uses it. dockerState.mu is held.
func releaseDockerLocked() error {
	s := &dockerState
	if !s.private {
		return nil
	}
	cmd, exited, use := s.cmd, s.exited, s.useLock
	s.host, s.private, s.cmd, s.exited, s.useLock = "", false, nil, nil, nil
	return withFileLock(filepath.Join(dockerRunDir, "start.lock"), func() error {
		defer use.Close()
		if err := unix.Flock(int(use.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
			if errors.Is(err, unix.EWOULDBLOCK) {
				return nil // another test binary still uses it
			}
			return fmt.Errorf("lock %s: %w", use.Name(), err)
		}
		return stopDockerd(cmd, exited)
	})
}

// stopDockerd stops the private engine: the child cmd when this process
// started it, else the process named in its pid file.
func stopDockerd(cmd *exec.Cmd, exited chan struct{}) error {
	if cmd != nil {
		_ = cmd.Process.Signal(unix.SIGTERM)
		select {
		case <-exited:
			return nil
		case <-time.After(dockerStopTimeout):
			_ = cmd.Process.Kill()
			<-exited
			return fmt.Errorf("dockerd (pid %d) ignored SIGTERM for %s; killed it", cmd.Process.Pid, dockerStopTimeout)
		}
	}
	b, err := os.ReadFile(filepath.Join(dockerRunDir, "dockerd.pid"))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 1 {
		return fmt.Errorf("bad dockerd pid file: %q", b)
	}
	if !isDockerd(pid) {
		return nil // already gone; the pid may have been reused
	}
	_ = unix.Kill(pid, unix.SIGTERM)
	deadline := time.Now().Add(dockerStopTimeout)
	for isDockerd(pid) {
		if time.Now().After(deadline) {
			_ = unix.Kill(pid, unix.SIGKILL)
			return fmt.Errorf("dockerd (pid %d) ignored SIGTERM for %s; killed it", pid, dockerStopTimeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return nil
}

// isDockerd reports whether pid is a live (not zombie) dockerd.
func isDockerd(pid int) bool {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	// "pid (comm) state ..."; comm may hold spaces and parentheses.
	s := string(stat)
	lp, rp := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if lp < 0 || rp < lp || len(s) < rp+3 {
		return false
	}
	return s[lp+1:rp] == "dockerd" && s[rp+2] != 'Z'
}

// dockerEnv is os.Environ() set up to reach host with the docker CLI.
func dockerEnv(host string) []string {
	env := make([]string, 0, len(os.Environ())+1)
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch k {
		case "DOCKER_HOST", "DOCKER_CONTEXT", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH":
			continue
		}
		env = append(env, kv)
	}
	return append(env, "DOCKER_HOST="+host)
}

// dockerdEnv is the environment for dockerd: no client variables, and a
// PATH on which it finds containerd, runc and docker-init.
func dockerdEnv() []string {
	var env []string
	path := ""
	for _, kv := range os.Environ() {
		k, v, _ := strings.Cut(kv, "=")
		switch {
		case strings.HasPrefix(k, "DOCKER_"):
			continue
		case k == "PATH":
			path = v
			continue
		}
		env = append(env, kv)
	}
	for _, d := range []string{"/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"} {
		if !strings.Contains(":"+path+":", ":"+d+":") {
			path += ":" + d
		}
	}
	return append(env, "PATH="+strings.TrimPrefix(path, ":"))
}

// flock takes how (LOCK_SH or LOCK_EX) on f, retrying on EINTR.
func flock(f *os.File, how int) error {
	for {
		err := unix.Flock(int(f.Fd()), how)
		if !errors.Is(err, syscall.EINTR) {
			if err != nil {
				return fmt.Errorf("lock %s: %w", f.Name(), err)
			}
			return nil
		}
	}
}
