package runtime

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berthsh/berth/internal/flock"
	"github.com/berthsh/berth/pkg/errdefs"
	"github.com/berthsh/berth/pkg/runtime/logs"
	"github.com/berthsh/berth/pkg/store"
)

// SuperviseArg is the hidden first argument that turns the berth binary
// into a container's supervisor.
const SuperviseArg = "__supervise"

// Restart backoff, as docker's restart manager: the delay starts at
// 100 ms and doubles up to a minute, and is reset once the container ran
// for 10 s.
const (
	backoffStart = 100 * time.Millisecond
	backoffMax   = time.Minute
	backoffReset = 10 * time.Second
	// replayMax bounds the output kept for attach with Logs.
	replayMax = 1 << 20
	// exitRecordDir holds the exit codes of auto-removed containers.
	exitRecordDir = ".exits"
)

// SuperviseIfRequested runs the supervisor when the process was started
// as one ("berth __supervise --root ROOT --store DIR ID", by Start; with
// "-" for ID, by PrestartSupervisor: the ID comes later on fd 4), and
// then exits. Otherwise it returns at once. Binaries that start
// containers call it first thing, next to InitIfRequested.
func SuperviseIfRequested() {
	if len(os.Args) > 1 && os.Args[1] == SuperviseArg {
		os.Exit(superviseMain(os.Args[2:]))
	}
}

func superviseMain(args []string) int {
	fs := flag.NewFlagSet(SuperviseArg, flag.ContinueOnError)
	root := fs.String("root", "", "state root")
	storeDir := fs.String("store", "", "image store")
	if err := fs.Parse(args); err != nil || fs.NArg() != 1 || *root == "" || *storeDir == "" {
		fmt.Fprintln(os.Stderr, "usage: berth __supervise --root ROOT --store DIR ID")
		return 2
	}
	// The status pipe the starter reads; the container must not inherit it.
	unix.CloseOnExec(3)
	report := os.NewFile(3, "report")
	signal.Ignore(syscall.SIGHUP, syscall.SIGPIPE)
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		fmt.Fprintf(os.Stderr, "supervisor: set child subreaper: %v\n", err)
	}
	// The container's init joins its cgroup in a few milliseconds: start
	// the kernel's grace period for that now (see WarmCgroupAttach).
	go WarmCgroupAttach()
	ctx := context.Background()
	id := fs.Arg(0)
	var idc chan string
	if id == "-" {
		// Started ahead of its container: open the stores meanwhile.
		idc = make(chan string, 1)
		go func() {
			id, _ := awaitContainerID()
			idc <- id
		}()
	}
	m, err := openSupervisorManager(ctx, *root, *storeDir)
	if idc != nil {
		if id = <-idc; id == "" {
			return 0 // not needed after all
		}
		if rerr := redirectOutput(filepath.Join(*root, "containers", id, supervisorLog)); rerr != nil {
			fmt.Fprintf(os.Stderr, "supervisor: %v\n", rerr)
		}
	}
	var s *supervisor
	if err == nil {
		s, err = newSupervisor(m, id)
	}
	if err != nil {
		writeReport(report, err)
		fmt.Fprintf(os.Stderr, "supervisor: %v\n", err)
		return 1
	}
	return s.run(ctx, report)
}

// awaitContainerID reads the ID of the container to supervise from fd 4,
// for a supervisor started ahead of its container (PrestartSupervisor).
// ok is false when the starter closed the pipe without an ID: it did not
// need this supervisor after all (the create failed, or it exited).
func awaitContainerID() (id string, ok bool) {
	f := os.NewFile(4, "container-id")
	line, err := bufio.NewReader(f).ReadString('\n')
	f.Close()
	id = strings.TrimSuffix(line, "\n")
	if err != nil || len(id) != 64 || !isHexString(id) {
		return "", false
	}
	return id, true
}

// redirectOutput points this process's stdout and stderr at the file
// path (appending), as Start does for a supervisor it spawns itself.
func redirectOutput(path string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	for _, fd := range []int{1, 2} {
		if err := unix.Dup3(int(f.Fd()), fd, 0); err != nil {
			return err
		}
	}
	return nil
}

func writeReport(f *os.File, err error) {
	if f == nil {
		return
	}
	if err == nil {
		_, _ = f.Write([]byte("ok\n"))
	} else {
		data, _ := json.Marshal(errResponse(err))
		_, _ = f.Write(append(data, '\n'))
	}
	_ = f.Close()
}

// supervisor owns one container's processes for its whole run.
type supervisor struct {
	m     *Manager
	id    string
	dir   string
	cfg   ContainerConfig
	lock  *flock.Lock // supervisor.lock
	logw  *logs.Writer
	env   *Environment
	spec  *specs.Spec
	ln    net.Listener
	errf  *os.File // supervisor.log (stderr)
	start time.Time

	// parentLocked is set while the starting process holds the container
	// lock on the supervisor's behalf (until the start is reported).
	parentLocked bool

	mu            sync.Mutex
	c             *RuncContainer
	running       bool
	stopRequested bool
	stopCh        chan struct{} // closed on an explicit stop
	stopOnce      sync.Once
	console       *os.File // terminal master (Tty)
	stdin         *os.File // write end of the process's stdin (Interactive)
	clients       map[*attachClient]struct{}
	replay        []frameData
	replaySize    int
	lastExit      ExitStatus
	exitWaiters   []chan int // told of the next exit
	runExited     chan struct{}
	exits         int
	outputWG      *sync.WaitGroup
	// conns counts the socket requests being answered.
	conns atomic.Int32
	// restarting is set during the backoff before a restart; loopDone is
	// closed once the final state is written.
	restarting bool
	loopDone   chan struct{}
	// logsAttached is signalled when a client attaches with Logs (the
	// foreground run); logsAttachedRun is set when one did in this run.
	logsAttached    chan struct{}
	logsAttachedRun bool
	// health runs the health checks (health_linux.go).
	health supervisorHealth
}

type frameData struct {
	stream byte
	data   []byte
}

// openSupervisorManager opens the image store and the containers under
// root for a supervisor.
func openSupervisorManager(ctx context.Context, root, storeDir string) (*Manager, error) {
	st, err := store.Open(ctx, storeDir)
	if err != nil {
		return nil, fmt.Errorf("open image store: %w", err)
	}
	return NewManager(ctx, root, st)
}

func newSupervisor(m *Manager, id string) (*supervisor, error) {
	dir := filepath.Join(m.containersDir(), id)
	cfg, err := loadConfig(dir)
	if err != nil {
		return nil, err
	}
	l, ok, err := tryLock(filepath.Join(dir, supervisorLock))
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("container %s already has a supervisor: %w", shortContainerID(id), errdefs.ErrConflict)
	}
	return &supervisor{
		m: m, id: id, dir: dir, cfg: cfg, lock: l, parentLocked: true,
		clients: map[*attachClient]struct{}{}, stopCh: make(chan struct{}),
		loopDone: make(chan struct{}), logsAttached: make(chan struct{}, 1),
	}, nil
}

func (s *supervisor) logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s supervisor: %s\n", time.Now().UTC().Format(time.RFC3339Nano), fmt.Sprintf(format, args...))
}

// updateState changes state.json under the container lock.
func (s *supervisor) updateState(fn func(*State)) {
	if !s.parentLocked {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		l, err := lockExclusive(ctx, filepath.Join(s.dir, lockFile))
		cancel()
		if err != nil {
			s.logf("update state: %v", err)
		} else {
			defer l.Unlock()
		}
	}
	st, err := loadState(s.dir)
	if err != nil {
		s.logf("update state: %v", err)
	}
	fn(&st)
	if err := saveState(s.dir, st); err != nil {
		s.logf("update state: %v", err)
	}
}

// run is the supervisor's life; it returns the process's exit code.
func (s *supervisor) run(ctx context.Context, report *os.File) int {
	err := s.prepare(ctx)
	if err == nil {
		err = s.startProcess(ctx)
	}
	if err != nil {
		s.teardown(ctx)()
		s.logf("start: %v", err)
		writeReport(report, err)
		return 1
	}
	s.markRunning(true)
	s.m.emitCurrent(s.dir, s.cfg, "start", nil)
	s.parentLocked = false
	writeReport(report, nil)
	go trimMemory(ctx)
	s.startHealth()

	// Stopped itself (host shutdown), the supervisor stops its container
	// as "berth stop" would, but records no stop request: as in docker,
	// an unless-stopped container comes back at boot (StartAll).
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		for range sigs {
			sig, err := s.m.stopSignal(ctx, Container{Config: s.cfg}, "")
			if err != nil {
				sig = unix.SIGTERM
			}
			timeout := 10 * time.Second
			if s.cfg.StopTimeout != nil {
				timeout = time.Duration(*s.cfg.StopTimeout) * time.Second
			}
			go func() { _ = s.stopAs(sig, timeout, false) }()
		}
	}()
	go s.serve()

	delay := backoffStart
	for {
		st := s.waitExit(ctx)
		s.stopHealth()
		s.m.emitExit(s.dir, s.cfg, st.Code, st.OOMKilled)
		restart := s.takeHealthRestart() || s.shouldRestart(st)
		if !restart {
			s.recordExit(st, false)
			break
		}
		if time.Since(s.start) >= backoffReset {
			delay = backoffStart
		}
		s.mu.Lock()
		s.restarting = true
		s.mu.Unlock()
		s.recordExit(st, true)
		select {
		case <-time.After(delay):
		case <-s.stopCh:
		}
		s.mu.Lock()
		s.restarting = false
		s.mu.Unlock()
		delay = min(2*delay, backoffMax)
		if s.isStopRequested() {
			s.updateState(func(st *State) {
				st.Status, st.Running, st.Restarting = StatusExited, false, false
			})
			break
		}
		s.destroyContainer(ctx)
		if err := s.startProcess(ctx); err != nil {
			s.logf("restart: %v", err)
			code := startErrorCode(err)
			s.updateState(func(st *State) {
				st.Status, st.Running, st.Restarting = StatusExited, false, false
				st.ExitCode, st.Error = code, err.Error()
				st.FinishedAt = time.Now().UTC()
			})
			break
		}
		s.markRunning(false)
		s.m.emitCurrent(s.dir, s.cfg, "start", nil)
		s.startHealth()
	}
	close(s.loopDone)
	s.finish(ctx)
	return 0
}

func (s *supervisor) isStopRequested() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stopRequested
}

// prepare sets up the log, the environment and the socket.
func (s *supervisor) prepare(ctx context.Context) error {
	opts, err := logs.ParseOptions(s.cfg.LogOpts)
	if err != nil {
		return err
	}
	opts.OnError = func(err error) { s.logf("log: %v", err) }
	if s.logw, err = logs.NewWriter(filepath.Join(s.dir, LogFile), opts); err != nil {
		return err
	}
	s.env, err = PrepareEnvironment(ctx, s.m.envParams(s.dir, &s.cfg))
	if err != nil {
		return err
	}
	s.spec = s.env.Spec
	_ = os.Remove(filepath.Join(s.dir, supervisorSock))
	addr, d, err := socketAddr(s.dir, supervisorSock)
	if err != nil {
		return fmt.Errorf("supervisor socket: %w", err)
	}
	s.ln, err = net.Listen("unix", addr)
	if d != nil {
		d.Close()
	}
	if err != nil {
		return fmt.Errorf("supervisor socket: %w", err)
	}
	return nil
}

// startProcess creates the libcontainer container and starts its init
// with the output copied to the log.
func (s *supervisor) startProcess(ctx context.Context) (err error) {
	// A container of the same ID left behind by a crash.
	if old, lerr := Load(ctx, s.m.stateRoot, s.id); lerr == nil {
		_ = old.Destroy(ctx)
	}
	c, err := Create(ctx, s.m.stateRoot, s.id, s.spec)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = c.Destroy(context.WithoutCancel(ctx))
		}
	}()
	var outputs []outputSource
	var stdinW *os.File
	var console *os.File
	if s.spec.Process.Terminal {
		console, err = c.StartTerminal(ctx)
		if err != nil {
			return err
		}
		outputs = append(outputs, outputSource{console, streamStdout, "stdout"})
	} else {
		var stdio Stdio
		var closeAfter []*os.File
		if s.cfg.Interactive {
			r, w, err := os.Pipe()
			if err != nil {
				return err
			}
			stdio.Stdin, stdinW = r, w
			closeAfter = append(closeAfter, r)
		}
		or, ow, err := os.Pipe()
		if err != nil {
			return err
		}
		er, ew, err := os.Pipe()
		if err != nil {
			or.Close()
			ow.Close()
			return err
		}
		stdio.Stdout, stdio.Stderr = ow, ew
		closeAfter = append(closeAfter, ow, ew)
		err = c.Start(ctx, stdio)
		for _, f := range closeAfter {
			f.Close()
		}
		if err != nil {
			or.Close()
			er.Close()
			if stdinW != nil {
				stdinW.Close()
			}
			return err
		}
		outputs = append(outputs, outputSource{or, streamStdout, "stdout"}, outputSource{er, streamStderr, "stderr"})
	}
	s.mu.Lock()
	s.c = c
	s.running = true
	s.console = console
	s.stdin = stdinW
	s.replay, s.replaySize = nil, 0
	s.logsAttachedRun = false
	s.runExited = make(chan struct{})
	s.mu.Unlock()
	s.start = time.Now()
	var wg sync.WaitGroup
	for _, o := range outputs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.copyOutput(o)
		}()
	}
	s.outputWG = &wg
	return nil
}

type outputSource struct {
	f      *os.File
	stream byte
	name   string
}

func (s *supervisor) copyOutput(o outputSource) {
	defer o.f.Close()
	logStream := s.logw.Stream(o.name)
	buf := make([]byte, 32<<10)
	for {
		n, err := o.f.Read(buf)
		if n > 0 {
			p := append([]byte(nil), buf[:n]...)
			_, _ = logStream.Write(p)
			s.broadcast(o.stream, p)
		}
		if err != nil {
			return
		}
	}
}

// broadcast sends output to the attached clients and keeps it for replay.
func (s *supervisor) broadcast(stream byte, p []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.replay = append(s.replay, frameData{stream, p})
	s.replaySize += len(p)
	for s.replaySize > replayMax && len(s.replay) > 1 {
		s.replaySize -= len(s.replay[0].data)
		s.replay = s.replay[1:]
	}
	for c := range s.clients {
		if !c.wants(stream) {
			continue
		}
		select {
		case c.out <- frameData{stream, p}:
		default: // too slow: drop the client rather than block the container
			delete(s.clients, c)
			close(c.out)
		}
	}
}

func (s *supervisor) markRunning(first bool) {
	pid := 0
	s.mu.Lock()
	if s.c != nil {
		pid = s.c.Pid()
	}
	s.mu.Unlock()
	s.updateState(func(st *State) {
		st.Status = StatusRunning
		st.Running, st.Restarting, st.Paused = true, false, false
		st.Dead, st.OOMKilled = false, false
		st.Pid = pid
		st.SupervisorPid = os.Getpid()
		st.Error = ""
		st.StartedAt = s.start.UTC()
		st.Health = s.resetHealth(st.Health)
		if first {
			st.ExitCode = 0
			st.StopRequested = false
			st.FinishedAt = time.Time{}
			st.RestartCount = 0
			if s.env != nil {
				st.Ports = s.env.Ports
				st.Endpoints = s.env.Endpoints
			}
		} else {
			st.RestartCount++
		}
	})
}

// waitExit waits for the current process and its output.
func (s *supervisor) waitExit(ctx context.Context) ExitStatus {
	s.mu.Lock()
	c := s.c
	s.mu.Unlock()
	st, err := c.Wait(ctx)
	if err != nil {
		s.logf("wait: %v", err)
		if st.Code == 0 {
			st.Code = 255
		}
	}
	// The output ends when every process of the container is gone; a
	// terminal that a stray process keeps open must not hold us.
	done := make(chan struct{})
	go func() {
		s.outputWG.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		s.mu.Lock()
		if s.console != nil {
			_ = s.console.Close()
		}
		s.mu.Unlock()
		<-done
	}
	_ = s.logw.Flush()
	return st
}

func (s *supervisor) shouldRestart(st ExitStatus) bool {
	if s.isStopRequested() {
		return false
	}
	p := s.cfg.RestartPolicy
	switch p.Name {
	case RestartAlways, RestartUnlessStopped:
		return true
	case RestartOnFailure:
		if st.Code == 0 {
			return false
		}
		if p.MaximumRetryCount > 0 {
			cur, _ := loadState(s.dir)
			return cur.RestartCount < p.MaximumRetryCount
		}
		return true
	}
	return false
}

// recordExit writes how the process ended and tells waiters and
// attached clients.
func (s *supervisor) recordExit(st ExitStatus, restarting bool) {
	// The state file first: once s.running is false, an attach or a wait
	// answers at once, and its client must then find the container
	// stopped on disk (run followed by rm).
	s.updateState(func(state *State) {
		state.Running = restarting // docker: a restarting container counts as running
		state.Restarting = restarting
		state.Paused = false
		state.Pid = 0
		state.ExitCode = st.Code
		state.OOMKilled = st.OOMKilled
		state.FinishedAt = time.Now().UTC()
		if restarting {
			state.Status = StatusRestarting
		} else {
			state.Status = StatusExited
		}
	})
	s.mu.Lock()
	s.running = false
	s.lastExit = st
	s.exits++
	if s.stdin != nil {
		_ = s.stdin.Close()
		s.stdin = nil
	}
	if s.console != nil {
		_ = s.console.Close()
		s.console = nil
	}
	waiters := s.exitWaiters
	s.exitWaiters = nil
	clients := s.clients
	s.clients = map[*attachClient]struct{}{}
	ch := s.runExited
	s.mu.Unlock()
	for _, w := range waiters {
		w <- st.Code
	}
	for c := range clients {
		c.exit = st.Code
		close(c.out)
	}
	if ch != nil {
		close(ch)
	}
}

func (s *supervisor) destroyContainer(ctx context.Context) {
	s.mu.Lock()
	c := s.c
	s.c = nil
	s.mu.Unlock()
	if c != nil {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		if err := c.Destroy(dctx); err != nil {
			s.logf("destroy: %v", err)
		}
		cancel()
	}
}

// teardown undoes everything: container, environment, log. The veth
// pairs are deleted by the returned function (see
// Environment.TeardownKeepLinks).
func (s *supervisor) teardown(ctx context.Context) (deleteLinks func()) {
	deleteLinks = func() {}
	s.destroyContainer(ctx)
	if s.env != nil {
		del, err := s.env.TeardownKeepLinks(ctx)
		if err != nil {
			s.logf("%v", err)
		}
		deleteLinks = func() {
			if err := del(); err != nil {
				s.logf("%v", err)
			}
		}
	}
	if s.ln != nil {
		_ = s.ln.Close()
		_ = os.Remove(filepath.Join(s.dir, supervisorSock))
	}
	if s.logw != nil {
		_ = s.logw.Close()
	}
	return deleteLinks
}

// finish ends the supervisor after the container's final exit.
func (s *supervisor) finish(ctx context.Context) {
	// The environment is torn down: its ports and addresses are released,
	// and docker shows none for a stopped container.
	s.updateState(func(st *State) { st.SupervisorPid, st.Ports, st.Endpoints = 0, nil, nil })
	if s.cfg.AutoRemove {
		// The exit code stays readable for Wait after the removal.
		code := s.lastExit.Code
		if err := s.m.writeExitRecord(s.id, s.cfg.Name, code); err != nil {
			s.logf("%v", err)
		}
		// A foreground run attaches right after its start: when the
		// container exited before that, let it collect the output
		// before everything goes.
		s.mu.Lock()
		attached := s.logsAttachedRun
		s.mu.Unlock()
		if !attached {
			select {
			case <-s.logsAttached:
			case <-time.After(2 * time.Second):
			}
		}
		// Let the requests in flight (a wait, an attach draining the
		// last output) finish answering before the socket goes.
		for end := time.Now().Add(time.Second); s.conns.Load() > 0 && time.Now().Before(end); {
			time.Sleep(5 * time.Millisecond)
		}
	}
	deleteLinks := s.teardown(ctx)
	if !s.cfg.AutoRemove {
		// The container may start again at once, with pairs of the
		// same names: they go before the supervisor lock does.
		deleteLinks()
		s.lock.Unlock()
		return
	}
	trash, err := s.m.removeStoppedKeepTrash(ctx, s.id, true, s.lock)
	if err != nil {
		s.logf("auto remove: %v", err)
	}
	// Whoever waits for the removal (a foreground run --rm) goes on now:
	// the container is gone for good, and deleting its files and veth
	// pairs does not keep it waiting.
	s.lock.Unlock()
	deleteLinks()
	if trash != "" {
		if err := os.RemoveAll(trash); err != nil {
			s.logf("auto remove: %v", err)
		}
	}
	s.m.pruneExitRecords()
}

// stop asks the container to stop: sig, then SIGKILL after timeout (<0:
// never), and waits until it exited.
func (s *supervisor) stop(sig syscall.Signal, timeout time.Duration) error {
	return s.stopAs(sig, timeout, true)
}

// stopAs is stop; byUser records the stop request in the state, which
// keeps an unless-stopped container stopped at the next boot.
func (s *supervisor) stopAs(sig syscall.Signal, timeout time.Duration, byUser bool) error {
	s.mu.Lock()
	s.stopRequested = true
	s.stopOnce.Do(func() { close(s.stopCh) })
	running, c, exited, restarting := s.running, s.c, s.runExited, s.restarting
	s.mu.Unlock()
	if byUser {
		s.updateState(func(st *State) { st.StopRequested = true })
	}
	if !running || c == nil {
		if restarting {
			// The restart is cancelled; wait for the final state.
			select {
			case <-s.loopDone:
			case <-time.After(30 * time.Second):
			}
		}
		return nil
	}
	if err := s.signal(c, sig); err != nil && !errors.Is(err, errdefs.ErrConflict) {
		return err
	}
	var timer <-chan time.Time
	if timeout >= 0 {
		timer = time.After(timeout)
	}
	select {
	case <-exited:
		return nil
	case <-timer:
	}
	if err := s.signal(c, unix.SIGKILL); err != nil && !errors.Is(err, errdefs.ErrConflict) {
		return err
	}
	select {
	case <-exited:
		return nil
	case <-time.After(30 * time.Second):
		return fmt.Errorf("container %s did not stop after SIGKILL: %w", shortContainerID(s.id), errdefs.ErrUnavailable)
	}
}

// signal sends sig, thawing a paused container so that it can act on it.
func (s *supervisor) signal(c *RuncContainer, sig syscall.Signal) error {
	err := c.Signal(sig)
	if st, serr := c.State(); serr == nil && st == "paused" {
		if rerr := c.Resume(); rerr == nil {
			s.updateState(func(st *State) {
				st.Paused = false
				if st.Status == StatusPaused {
					st.Status = StatusRunning
				}
			})
		}
	}
	return err
}

// serve answers the socket until it is closed.
func (s *supervisor) serve() {
	for {
		conn, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.conns.Add(1)
		go func() {
			defer s.conns.Add(-1)
			s.handle(conn)
		}()
	}
}

func (s *supervisor) handle(conn net.Conn) {
	defer conn.Close()
	br := bufio.NewReader(conn)
	line, err := br.ReadBytes('\n')
	if err != nil {
		return
	}
	var req request
	if err := json.Unmarshal(line, &req); err != nil {
		writeResponse(conn, errResponse(fmt.Errorf("bad request: %v: %w", err, errdefs.ErrInvalidArgument)))
		return
	}
	switch req.Op {
	case opWait:
		s.handleWait(conn, req)
	case opStop:
		timeout := time.Duration(req.TimeoutMS) * time.Millisecond
		if req.TimeoutMS < 0 {
			timeout = -1
		}
		if err := s.stop(syscall.Signal(req.Signal), timeout); err != nil {
			writeResponse(conn, errResponse(err))
			return
		}
		writeResponse(conn, response{OK: true})
	case opKill:
		writeResponse(conn, s.handleKill(req))
	case opResize:
		s.mu.Lock()
		console := s.console
		s.mu.Unlock()
		if console == nil {
			writeResponse(conn, errResponse(fmt.Errorf("container has no terminal: %w", errdefs.ErrConflict)))
			return
		}
		if err := ResizeTerminal(console, req.Width, req.Height); err != nil {
			writeResponse(conn, errResponse(err))
			return
		}
		writeResponse(conn, response{OK: true})
	case opAttach:
		s.handleAttach(conn, br, req)
	case opExec:
		s.handleExec(conn, br, req)
	default:
		writeResponse(conn, errResponse(fmt.Errorf("unknown operation %q: %w", req.Op, errdefs.ErrInvalidArgument)))
	}
}

func writeResponse(w io.Writer, r response) {
	data, _ := json.Marshal(r)
	_, _ = w.Write(append(data, '\n'))
}

func (s *supervisor) handleWait(conn net.Conn, req request) {
	s.mu.Lock()
	if req.Condition != WaitNextExit && !s.running {
		code := s.lastExit.Code
		s.mu.Unlock()
		writeResponse(conn, response{OK: true, ExitCode: code})
		return
	}
	ch := make(chan int, 1)
	s.exitWaiters = append(s.exitWaiters, ch)
	s.mu.Unlock()
	// End the wait when the client goes away.
	gone := make(chan struct{})
	go func() {
		_, _ = io.Copy(io.Discard, conn)
		close(gone)
	}()
	select {
	case code := <-ch:
		writeResponse(conn, response{OK: true, ExitCode: code})
	case <-gone:
	}
}

func (s *supervisor) handleKill(req request) response {
	sig := syscall.Signal(req.Signal)
	if sig == 0 {
		sig = unix.SIGKILL
	}
	s.mu.Lock()
	running, c := s.running, s.c
	s.mu.Unlock()
	if !running || c == nil {
		return errResponse(fmt.Errorf("container %s is not running: %w", shortContainerID(s.id), errdefs.ErrConflict))
	}
	s.mu.Lock()
	s.stopRequested = true
	s.stopOnce.Do(func() { close(s.stopCh) })
	s.mu.Unlock()
	s.updateState(func(st *State) { st.StopRequested = true })
	if err := s.signal(c, sig); err != nil {
		return errResponse(err)
	}
	return response{OK: true}
}

// attachClient is one attached connection.
type attachClient struct {
	stdout, stderr bool
	out            chan frameData
	exit           int
}

func (c *attachClient) wants(stream byte) bool {
	return (stream == streamStdout && c.stdout) || (stream == streamStderr && c.stderr)
}

func (s *supervisor) handleAttach(conn net.Conn, br *bufio.Reader, req request) {
	client := &attachClient{stdout: req.Stdout, stderr: req.Stderr, out: make(chan frameData, 1024)}
	fw := &frameWriter{w: conn}
	s.mu.Lock()
	if req.Logs {
		s.logsAttachedRun = true
		select {
		case s.logsAttached <- struct{}{}:
		default:
		}
	}
	if !s.running {
		if req.Logs && s.exits > 0 {
			// It already exited: what it printed, and how it ended.
			replay := append([]frameData(nil), s.replay...)
			code := s.lastExit.Code
			s.mu.Unlock()
			writeResponse(conn, response{OK: true, Tty: s.spec.Process.Terminal})
			for _, f := range replay {
				if client.wants(f.stream) {
					_ = fw.frame(f.stream, f.data)
				}
			}
			_ = fw.frame(streamExit, exitPayload(code))
			return
		}
		s.mu.Unlock()
		writeResponse(conn, errResponse(fmt.Errorf("container %s is not running: %w", shortContainerID(s.id), errdefs.ErrConflict)))
		return
	}
	tty := s.console != nil
	var replay []frameData
	if req.Logs {
		replay = append(replay, s.replay...)
	}
	s.clients[client] = struct{}{}
	s.mu.Unlock()
	writeResponse(conn, response{OK: true, Tty: tty})
	for _, f := range replay {
		if client.wants(f.stream) {
			_ = fw.frame(f.stream, f.data)
		}
	}
	// Client to container: stdin, its end, resizes.
	go func() {
		for {
			stream, p, err := readFrame(br)
			if err != nil {
				s.mu.Lock()
				if _, ok := s.clients[client]; ok {
					delete(s.clients, client)
					close(client.out)
				}
				s.mu.Unlock()
				return
			}
			s.mu.Lock()
			console, stdin := s.console, s.stdin
			s.mu.Unlock()
			switch stream {
			case streamStdin:
				if !req.Stdin {
					continue
				}
				switch {
				case console != nil:
					_, _ = console.Write(p)
				case stdin != nil:
					_, _ = stdin.Write(p)
				}
			case streamClose:
				if req.Stdin && console == nil && stdin != nil {
					s.mu.Lock()
					if s.stdin == stdin {
						s.stdin = nil
					}
					s.mu.Unlock()
					_ = stdin.Close()
				}
			case streamResize:
				if console != nil && len(p) == 4 {
					_ = ResizeTerminal(console, binary.BigEndian.Uint16(p), binary.BigEndian.Uint16(p[2:]))
				}
			}
		}
	}()
	for f := range client.out {
		if err := fw.frame(f.stream, f.data); err != nil {
			// Drain until the channel is closed by the reader side.
			for range client.out {
			}
			return
		}
	}
	s.mu.Lock()
	exited := !s.running
	code := client.exit
	s.mu.Unlock()
	if exited {
		_ = fw.frame(streamExit, exitPayload(code))
	}
}

func (s *supervisor) handleExec(conn net.Conn, br *bufio.Reader, req request) {
	ctx := context.Background()
	s.mu.Lock()
	running, c := s.running, s.c
	s.mu.Unlock()
	if !running || c == nil {
		writeResponse(conn, errResponse(fmt.Errorf("container %s is not running: %w", shortContainerID(s.id), errdefs.ErrConflict)))
		return
	}
	if req.Exec == nil {
		writeResponse(conn, errResponse(fmt.Errorf("exec: no process: %w", errdefs.ErrInvalidArgument)))
		return
	}
	sp, err := ExecProcess(s.spec, *req.Exec)
	if err != nil {
		writeResponse(conn, errResponse(err))
		return
	}
	if req.Detach {
		writeResponse(conn, s.execDetached(ctx, c, sp))
		return
	}
	fw := &frameWriter{w: conn}
	var p *Process
	var console, stdinW *os.File
	var outputs []outputSource
	if sp.Terminal {
		p, console, err = c.ExecTerminal(ctx, sp)
		if err != nil {
			writeResponse(conn, errResponse(err))
			return
		}
		outputs = append(outputs, outputSource{console, streamStdout, "stdout"})
	} else {
		var stdio Stdio
		var closeAfter, closeOnErr []*os.File
		if req.Stdin {
			r, w, err := os.Pipe()
			if err != nil {
				writeResponse(conn, errResponse(err))
				return
			}
			stdio.Stdin, stdinW = r, w
			closeAfter = append(closeAfter, r)
			closeOnErr = append(closeOnErr, w)
		}
		or, ow, err := os.Pipe()
		if err != nil {
			writeResponse(conn, errResponse(err))
			return
		}
		er, ew, err := os.Pipe()
		if err != nil {
			writeResponse(conn, errResponse(err))
			return
		}
		stdio.Stdout, stdio.Stderr = ow, ew
		closeAfter = append(closeAfter, ow, ew)
		closeOnErr = append(closeOnErr, or, er)
		p, err = c.Exec(ctx, sp, stdio)
		for _, f := range closeAfter {
			f.Close()
		}
		if err != nil {
			for _, f := range closeOnErr {
				f.Close()
			}
			writeResponse(conn, errResponse(err))
			return
		}
		outputs = append(outputs, outputSource{or, streamStdout, "stdout"}, outputSource{er, streamStderr, "stderr"})
	}
	writeResponse(conn, response{OK: true, Tty: sp.Terminal})
	var wg sync.WaitGroup
	for _, o := range outputs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if o.stream != streamStdout || !sp.Terminal {
				defer o.f.Close()
			}
			_, _ = io.Copy(streamWriter{fw, o.stream}, o.f)
		}()
	}
	go func() {
		for {
			stream, data, err := readFrame(br)
			if err != nil {
				if stdinW != nil {
					_ = stdinW.Close()
				}
				return
			}
			switch stream {
			case streamStdin:
				switch {
				case console != nil:
					_, _ = console.Write(data)
				case stdinW != nil:
					_, _ = stdinW.Write(data)
				}
			case streamClose:
				if stdinW != nil {
					_ = stdinW.Close()
				}
			case streamResize:
				if console != nil && len(data) == 4 {
					_ = ResizeTerminal(console, binary.BigEndian.Uint16(data), binary.BigEndian.Uint16(data[2:]))
				}
			}
		}
	}()
	st, err := p.Wait(ctx)
	if err != nil {
		s.logf("exec: %v", err)
	}
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
	}
	if console != nil {
		_ = console.Close()
	}
	_ = fw.frame(streamExit, exitPayload(st.Code))
}

// startErrorCode is the exit code docker records for a failed start.
func startErrorCode(err error) int {
	switch {
	case errors.Is(err, errdefs.ErrNotFound):
		return 127
	case errors.Is(err, errdefs.ErrPermission):
		return 126
	}
	return 128
}
