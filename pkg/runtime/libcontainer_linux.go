package runtime

// Every call into runc's libcontainer is in this file, so that the churn
// of its API between minor versions stays in one place.

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/opencontainers/cgroups"
	// Device rules of the cgroup managers; without it starting fails with
	// "cgroup manager is not configured to set device rules".
	_ "github.com/opencontainers/cgroups/devices"
	"github.com/opencontainers/runc/libcontainer"
	"github.com/opencontainers/runc/libcontainer/configs"
	// The C constructor that does the namespace work of "init" before the
	// Go runtime starts. It does nothing in a process that is not a
	// libcontainer init.
	_ "github.com/opencontainers/runc/libcontainer/nsenter"
	"github.com/opencontainers/runc/libcontainer/specconv"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berthsh/berth/pkg/errdefs"
)

// InitIfRequested turns the process into a container's init when
// libcontainer started it as such ("/proc/self/exe init" with libcontainer's
// pipes in the environment), and then never returns. Otherwise it returns
// at once. Binaries that start containers call it first thing, from an
// init function or TestMain. The environment check keeps an ordinary
// "berth init" command line free for a CLI command.
func InitIfRequested() {
	if len(os.Args) > 1 && os.Args[1] == "init" && os.Getenv("_LIBCONTAINER_INITPIPE") != "" {
		libcontainer.Init()
	}
}

// Stdio is the standard input and output of a container's process. Nil
// members are connected to /dev/null. An *os.File is handed to the process
// directly; other readers and writers are copied through pipes.
type Stdio struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
}

// ExitStatus is how a container's main process ended.
type ExitStatus struct {
	// Code is the exit code, or 128 plus the signal number when the
	// process was killed by a signal (as docker reports it).
	Code int
	// Signal is the signal that killed the process, 0 if it exited.
	Signal syscall.Signal
	// OOMKilled is set when the kernel's OOM killer killed a process of the
	// container's cgroup while it ran.
	OOMKilled bool
}

// RuncContainer is a container known to libcontainer. The process that
// created and started it (its parent) can Wait for it; any process can
// Load it to Signal, Exec in or Destroy it.
type RuncContainer struct {
	id   string
	lc   *libcontainer.Container
	spec *specs.Process // nil for a loaded container

	mu   sync.Mutex
	init *Process // nil until started by this process
}

// Process is a process started in a container by this process: the
// container's init (Start) or an extra one (Exec).
type Process struct {
	lp       *libcontainer.Process
	oomPath  string // cgroup file counting OOM kills; init only
	oomStart int64
	done     chan struct{} // closed when the process was reaped
	status   ExitStatus
	waitErr  error
}

// DefaultCgroupsPath is the cgroup Create uses when the spec names none.
func DefaultCgroupsPath(id string) string { return "/berth/" + id }

// Create registers a container with state in stateRoot/<id> (stateRoot is
// typically ROOT/libcontainer) from spec, whose Root.Path must be the
// mounted root file system. Nothing runs until Start. The id may contain
// letters, digits, "_", "+", "-" and "."; an id already in use fails with
// errdefs.ErrAlreadyExists. A spec without Linux.CgroupsPath gets
// DefaultCgroupsPath(id).
func Create(ctx context.Context, stateRoot, id string, spec *specs.Spec) (*RuncContainer, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if spec == nil || spec.Process == nil || spec.Root == nil || spec.Linux == nil {
		return nil, fmt.Errorf("create container %s: spec needs root, process and linux sections: %w", id, errdefs.ErrInvalidArgument)
	}
	if !filepath.IsAbs(spec.Root.Path) || !filepath.IsAbs(stateRoot) {
		return nil, fmt.Errorf("create container %s: root file system %q and state root %q must be absolute: %w",
			id, spec.Root.Path, stateRoot, errdefs.ErrInvalidArgument)
	}
	s := *spec
	linux := *spec.Linux
	s.Linux = &linux
	if linux.CgroupsPath == "" {
		linux.CgroupsPath = DefaultCgroupsPath(id)
	}
	if r := linux.Resources; r != nil && r.Memory != nil && r.Memory.Swap != nil && !SwapLimitSupported() {
		// As docker does: without swap accounting the memory limit
		// alone applies (setting it would fail the start).
		res, mem := *r, *r.Memory
		mem.Swap = nil
		res.Memory = &mem
		linux.Resources = &res
	}
	cfg, err := specconv.CreateLibcontainerConfig(&specconv.CreateOpts{
		CgroupName: id,
		Spec:       &s,
	})
	if err != nil {
		return nil, fmt.Errorf("create container %s: %v: %w", id, err, errdefs.ErrInvalidArgument)
	}
	lc, err := libcontainer.Create(stateRoot, id, cfg)
	if err != nil {
		return nil, fmt.Errorf("create container %s: %w", id, classify(err))
	}
	return &RuncContainer{id: id, lc: lc, spec: s.Process}, nil
}

// Load returns a container created earlier, by this or another process,
// for Signal, Destroy and State. Only the process that started a
// container can Wait for it.
func Load(ctx context.Context, stateRoot, id string) (*RuncContainer, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	lc, err := libcontainer.Load(stateRoot, id)
	if err != nil {
		return nil, fmt.Errorf("load container %s: %w", id, classify(err))
	}
	return &RuncContainer{id: id, lc: lc}, nil
}

// classify maps libcontainer errors to errdefs sentinels.
func classify(err error) error {
	switch {
	case errors.Is(err, libcontainer.ErrExist):
		return fmt.Errorf("%w: %w", errdefs.ErrAlreadyExists, err)
	case errors.Is(err, libcontainer.ErrNotExist), errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("%w: %w", errdefs.ErrNotFound, err)
	case errors.Is(err, libcontainer.ErrInvalidID):
		return fmt.Errorf("%w: %w", errdefs.ErrInvalidArgument, err)
	case errors.Is(err, libcontainer.ErrRunning), errors.Is(err, libcontainer.ErrNotRunning),
		errors.Is(err, libcontainer.ErrPaused), errors.Is(err, libcontainer.ErrNotPaused):
		return fmt.Errorf("%w: %w", errdefs.ErrConflict, err)
	}
	return err
}

// classifyStart classifies a failure to start a process. Errors from the
// container's init arrive as text; the exec step's are recognised as
// docker does, so that the CLI can exit 127 for a command that does not
// exist (errdefs.ErrNotFound) and 126 for one that cannot be executed
// (errdefs.ErrPermission).
func classifyStart(err error) error {
	msg := err.Error()
	if i := strings.Index(msg, "exec: "); i >= 0 {
		execMsg := msg[i:]
		switch {
		case strings.Contains(execMsg, "executable file not found"),
			strings.Contains(execMsg, unix.ENOENT.Error()):
			return fmt.Errorf("%w: %w", errdefs.ErrNotFound, err)
		case strings.Contains(execMsg, unix.EACCES.Error()),
			strings.Contains(execMsg, unix.EISDIR.Error()),
			strings.Contains(execMsg, unix.ENOEXEC.Error()):
			return fmt.Errorf("%w: %w", errdefs.ErrPermission, err)
		}
	}
	return classify(err)
}

// ID is the container's id.
func (c *RuncContainer) ID() string { return c.id }

// Start runs the spec's process as the container's init with stdio, and
// returns once it runs (its command has been executed). The caller becomes
// its parent and must Wait for it. A spec with Process.Terminal needs
// StartTerminal instead.
func (c *RuncContainer) Start(ctx context.Context, stdio Stdio) error {
	if c.spec != nil && c.spec.Terminal {
		return fmt.Errorf("start container %s: the spec asks for a terminal: use StartTerminal: %w", c.id, errdefs.ErrInvalidArgument)
	}
	_, err := c.start(ctx, stdio)
	return err
}

// StartTerminal is Start for a spec with Process.Terminal: the process
// gets a new pseudo-terminal as its stdin, stdout and stderr (and
// controlling terminal), sized as Process.ConsoleSize says, and the
// caller gets the terminal's master side to copy to and from and to
// ResizeTerminal. The caller must close it.
func (c *RuncContainer) StartTerminal(ctx context.Context) (*os.File, error) {
	if c.spec == nil || !c.spec.Terminal {
		return nil, fmt.Errorf("start container %s: the spec has no terminal: use Start: %w", c.id, errdefs.ErrInvalidArgument)
	}
	return c.start(ctx, Stdio{})
}

func (c *RuncContainer) start(ctx context.Context, stdio Stdio) (*os.File, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.spec == nil {
		return nil, fmt.Errorf("start container %s: a loaded container cannot be started: %w", c.id, errdefs.ErrConflict)
	}
	if c.init != nil {
		return nil, fmt.Errorf("start container %s: already started: %w", c.id, errdefs.ErrConflict)
	}
	p := &Process{oomPath: oomCounterFile(c.lc)}
	// The OOM-kill counter of a cgroup left over by a crash is not ours:
	// count from its value now (a fresh cgroup is created by Run at 0).
	if n, err := readOOMKills(p.oomPath); err == nil {
		p.oomStart = n
	}
	console, err := c.run(ctx, p, c.spec, stdio, true)
	if err != nil {
		return nil, fmt.Errorf("start container %s: %w", c.id, err)
	}
	c.init = p
	return console, nil
}

// Exec runs another process in the running container (docker exec), as
// described by sp (see ExecProcess), with stdio. It works on loaded
// containers too; the caller becomes the process's parent and must Wait
// for it. A process with Terminal set needs ExecTerminal.
func (c *RuncContainer) Exec(ctx context.Context, sp *specs.Process, stdio Stdio) (*Process, error) {
	if sp == nil || sp.Terminal {
		return nil, fmt.Errorf("exec in container %s: need a process without a terminal (use ExecTerminal): %w", c.id, errdefs.ErrInvalidArgument)
	}
	p := &Process{}
	if _, err := c.run(ctx, p, sp, stdio, false); err != nil {
		return nil, fmt.Errorf("exec in container %s: %w", c.id, err)
	}
	return p, nil
}

// ExecTerminal is Exec for a process with Terminal set: it also returns
// the master side of the process's new terminal, which the caller must
// close.
func (c *RuncContainer) ExecTerminal(ctx context.Context, sp *specs.Process) (*Process, *os.File, error) {
	if sp == nil || !sp.Terminal {
		return nil, nil, fmt.Errorf("exec in container %s: need a process with a terminal (use Exec): %w", c.id, errdefs.ErrInvalidArgument)
	}
	p := &Process{}
	console, err := c.run(ctx, p, sp, Stdio{}, false)
	if err != nil {
		return nil, nil, fmt.Errorf("exec in container %s: %w", c.id, err)
	}
	return p, console, nil
}

// run starts sp in the container as p and, for a terminal, returns its
// master side.
func (c *RuncContainer) run(ctx context.Context, p *Process, sp *specs.Process, stdio Stdio, init bool) (*os.File, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	// The process joins the container's cgroup in a few milliseconds:
	// start the kernel's grace period for that now (WarmCgroupAttach).
	go WarmCgroupAttach()
	lp, err := newProcess(sp, stdio, init)
	if err != nil {
		return nil, err
	}
	var term *terminalSocket
	if sp.Terminal {
		if term, err = newTerminalSocket(lp); err != nil {
			return nil, err
		}
		defer term.close()
	}
	if err := c.lc.Run(lp); err != nil {
		return nil, classifyStart(err)
	}
	p.lp = lp
	p.done = make(chan struct{})
	go p.reap()
	if term == nil {
		return nil, nil
	}
	console, err := term.receive(ctx)
	if err != nil {
		// The process runs without anyone holding its terminal: kill it.
		_ = lp.Signal(unix.SIGKILL)
		return nil, fmt.Errorf("receive terminal: %w", err)
	}
	return console, nil
}

// terminalSocket receives the master side of the pseudo-terminal that
// libcontainer's init creates and sends over a socket pair.
type terminalSocket struct {
	parent, child *os.File
	result        chan terminalResult
	consumed      bool
}

type terminalResult struct {
	f   *os.File
	err error
}

func newTerminalSocket(p *libcontainer.Process) (*terminalSocket, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("terminal socket: %w", err)
	}
	t := &terminalSocket{
		parent: os.NewFile(uintptr(fds[1]), "console-parent"),
		child:  os.NewFile(uintptr(fds[0]), "console-child"),
		result: make(chan terminalResult, 1),
	}
	p.ConsoleSocket = t.child
	go func() {
		f, err := recvFile(t.parent)
		t.result <- terminalResult{f, err}
	}()
	return t, nil
}

// receive returns the terminal once the container runs (init sends it
// before executing the command).
func (t *terminalSocket) receive(ctx context.Context) (*os.File, error) {
	// Only init's copy of the child end must keep the socket open now, so
	// that the receiver sees end-of-file if init dies without sending.
	_ = t.child.Close()
	select {
	case r := <-t.result:
		t.consumed = true
		return r.f, r.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// close releases the socket. When the terminal was not handed out, it
// waits (briefly: init is dead or has sent by then) for the receiver and
// closes what it got.
func (t *terminalSocket) close() {
	_ = t.child.Close()
	if !t.consumed {
		select {
		case r := <-t.result:
			if r.f != nil {
				_ = r.f.Close()
			}
		case <-time.After(5 * time.Second):
		}
	}
	_ = t.parent.Close()
}

// recvFile receives one file descriptor sent with SCM_RIGHTS.
func recvFile(socket *os.File) (*os.File, error) {
	conn, err := socket.SyscallConn()
	if err != nil {
		return nil, err
	}
	name := make([]byte, 4096)
	oob := make([]byte, unix.CmsgSpace(4))
	var n, oobn int
	var rerr error
	err = conn.Read(func(fd uintptr) bool {
		n, oobn, _, _, rerr = unix.Recvmsg(int(fd), name, oob, unix.MSG_CMSG_CLOEXEC)
		return !errors.Is(rerr, unix.EAGAIN)
	})
	if err == nil {
		err = rerr
	}
	if err != nil {
		return nil, err
	}
	if n == 0 && oobn == 0 {
		return nil, io.ErrUnexpectedEOF
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil {
		return nil, err
	}
	var fds []int
	for _, m := range msgs {
		rights, err := unix.ParseUnixRights(&m)
		if err == nil {
			fds = append(fds, rights...)
		}
	}
	if len(fds) != 1 {
		for _, fd := range fds {
			_ = unix.Close(fd)
		}
		return nil, fmt.Errorf("expected one file descriptor, got %d", len(fds))
	}
	return os.NewFile(uintptr(fds[0]), string(name[:n])), nil
}

// ResizeTerminal sets the size of a container's terminal (the master side
// from StartTerminal or Exec), as a window size change on the client does.
func ResizeTerminal(console *os.File, width, height uint16) error {
	conn, err := console.SyscallConn()
	if err != nil {
		return err
	}
	var ierr error
	err = conn.Control(func(fd uintptr) {
		ierr = unix.IoctlSetWinsize(int(fd), unix.TIOCSWINSZ, &unix.Winsize{Col: width, Row: height})
	})
	if err == nil {
		err = ierr
	}
	if err != nil {
		return fmt.Errorf("resize terminal: %w", err)
	}
	return nil
}

// rlimitTypes maps OCI rlimit names to their numbers.
var rlimitTypes = map[string]int{
	"RLIMIT_AS":         unix.RLIMIT_AS,
	"RLIMIT_CORE":       unix.RLIMIT_CORE,
	"RLIMIT_CPU":        unix.RLIMIT_CPU,
	"RLIMIT_DATA":       unix.RLIMIT_DATA,
	"RLIMIT_FSIZE":      unix.RLIMIT_FSIZE,
	"RLIMIT_LOCKS":      unix.RLIMIT_LOCKS,
	"RLIMIT_MEMLOCK":    unix.RLIMIT_MEMLOCK,
	"RLIMIT_MSGQUEUE":   unix.RLIMIT_MSGQUEUE,
	"RLIMIT_NICE":       unix.RLIMIT_NICE,
	"RLIMIT_NOFILE":     unix.RLIMIT_NOFILE,
	"RLIMIT_NPROC":      unix.RLIMIT_NPROC,
	"RLIMIT_RSS":        unix.RLIMIT_RSS,
	"RLIMIT_RTPRIO":     unix.RLIMIT_RTPRIO,
	"RLIMIT_RTTIME":     unix.RLIMIT_RTTIME,
	"RLIMIT_SIGPENDING": unix.RLIMIT_SIGPENDING,
	"RLIMIT_STACK":      unix.RLIMIT_STACK,
}

// newProcess makes a libcontainer process from an OCI process. For the
// init process, capabilities, no_new_privs and the OOM score are already
// in the container config (specconv copies them); an exec'd process gets
// its own.
func newProcess(sp *specs.Process, stdio Stdio, init bool) (*libcontainer.Process, error) {
	if len(sp.Args) == 0 {
		return nil, fmt.Errorf("no command to run: %w", errdefs.ErrInvalidArgument)
	}
	p := &libcontainer.Process{
		Args: sp.Args,
		Env:  sp.Env,
		UID:  int(sp.User.UID),
		GID:  int(sp.User.GID),
		Cwd:  sp.Cwd,
		Init: init,
	}
	if !sp.Terminal {
		p.Stdin, p.Stdout, p.Stderr = stdio.Stdin, stdio.Stdout, stdio.Stderr
	}
	if sp.ConsoleSize != nil {
		p.ConsoleWidth = uint16(sp.ConsoleSize.Width)
		p.ConsoleHeight = uint16(sp.ConsoleSize.Height)
	}
	for _, g := range sp.User.AdditionalGids {
		p.AdditionalGroups = append(p.AdditionalGroups, int(g))
	}
	for _, rl := range sp.Rlimits {
		t, ok := rlimitTypes[rl.Type]
		if !ok {
			return nil, fmt.Errorf("unknown rlimit %q: %w", rl.Type, errdefs.ErrInvalidArgument)
		}
		p.Rlimits = append(p.Rlimits, configs.Rlimit{Type: t, Hard: rl.Hard, Soft: rl.Soft})
	}
	if !init {
		nnp := sp.NoNewPrivileges
		p.NoNewPrivileges = &nnp
		if c := sp.Capabilities; c != nil {
			p.Capabilities = &configs.Capabilities{
				Bounding:    c.Bounding,
				Effective:   c.Effective,
				Permitted:   c.Permitted,
				Inheritable: c.Inheritable,
				Ambient:     c.Ambient,
			}
		}
	}
	return p, nil
}

// reap waits for the process and records how it ended.
func (p *Process) reap() {
	ps, err := p.lp.Wait()
	var exitErr *exec.ExitError
	if err != nil && !errors.As(err, &exitErr) {
		p.waitErr = fmt.Errorf("wait: %w", err)
	}
	var st ExitStatus
	if ps != nil {
		if ws, ok := ps.Sys().(syscall.WaitStatus); ok {
			switch {
			case ws.Signaled():
				st.Signal = ws.Signal()
				st.Code = 128 + int(st.Signal)
			case ws.Exited():
				st.Code = ws.ExitStatus()
			}
		}
	}
	if n, err := readOOMKills(p.oomPath); err == nil && n > p.oomStart {
		st.OOMKilled = true
	}
	p.status = st
	close(p.done)
}

// Pid is the host PID of the process.
func (p *Process) Pid() int {
	pid, err := p.lp.Pid()
	if err != nil {
		return 0
	}
	return pid
}

// Signal sends sig to the process.
func (p *Process) Signal(sig syscall.Signal) error {
	select {
	case <-p.done:
		return fmt.Errorf("signal process: process already exited: %w", errdefs.ErrConflict)
	default:
	}
	if err := p.lp.Signal(sig); err != nil {
		return fmt.Errorf("signal process: %w", err)
	}
	return nil
}

// Wait waits until the process ends and returns how it ended. Cancelling
// ctx stops waiting, not the process; Wait can be called again.
func (p *Process) Wait(ctx context.Context) (ExitStatus, error) {
	select {
	case <-p.done:
		return p.status, p.waitErr
	case <-ctx.Done():
		return ExitStatus{}, ctx.Err()
	}
}

// Pid is the host PID of the container's main process, 0 when it has
// none.
func (c *RuncContainer) Pid() int {
	c.mu.Lock()
	init := c.init
	c.mu.Unlock()
	if init != nil {
		return init.Pid()
	}
	if st, err := c.lc.State(); err == nil {
		return st.InitProcessPid
	}
	return 0
}

// Wait waits until the main process ends (the container's other
// processes die with it, as it is PID 1 of its namespace) and returns how
// it ended. Only the process that called Start can wait. Cancelling ctx
// stops waiting, not the container.
func (c *RuncContainer) Wait(ctx context.Context) (ExitStatus, error) {
	c.mu.Lock()
	init := c.init
	c.mu.Unlock()
	if init == nil {
		return ExitStatus{}, fmt.Errorf("wait for container %s: not started by this process: %w", c.id, errdefs.ErrConflict)
	}
	st, err := init.Wait(ctx)
	if err != nil && ctx.Err() == nil {
		err = fmt.Errorf("container %s: %w", c.id, err)
	}
	return st, err
}

// Signal sends sig to the container's main process. A container that does
// not run fails with errdefs.ErrConflict.
func (c *RuncContainer) Signal(sig syscall.Signal) error {
	if err := c.lc.Signal(sig); err != nil {
		return fmt.Errorf("signal container %s: %w", c.id, classify(err))
	}
	return nil
}

// Pause freezes every process of the container (docker pause).
func (c *RuncContainer) Pause() error {
	if err := c.lc.Pause(); err != nil {
		return fmt.Errorf("pause container %s: %w", c.id, classify(err))
	}
	return nil
}

// Resume thaws a paused container (docker unpause).
func (c *RuncContainer) Resume() error {
	if err := c.lc.Resume(); err != nil {
		return fmt.Errorf("resume container %s: %w", c.id, classify(err))
	}
	return nil
}

// Processes lists the host PIDs of the container's processes.
func (c *RuncContainer) Processes() ([]int, error) {
	pids, err := c.lc.Processes()
	if err != nil {
		return nil, fmt.Errorf("processes of container %s: %w", c.id, classify(err))
	}
	return pids, nil
}

// State is the container's state as libcontainer sees it: "created",
// "running", "paused" or "stopped".
func (c *RuncContainer) State() (string, error) {
	st, err := c.lc.Status()
	if err != nil {
		return "", fmt.Errorf("state of container %s: %w", c.id, classify(err))
	}
	return st.String(), nil
}

// Destroy kills the container if it still runs, waits for it to stop
// (ctx bounds the wait) and removes its cgroups and state. Destroying a
// destroyed container is not an error. The root file system is left to
// the caller (UnmountRootfs).
func (c *RuncContainer) Destroy(ctx context.Context) error {
	st, err := c.lc.Status()
	if err != nil {
		return fmt.Errorf("destroy container %s: %w", c.id, classify(err))
	}
	if st == libcontainer.Paused {
		if err := c.lc.Resume(); err != nil && !errors.Is(err, libcontainer.ErrNotPaused) {
			return fmt.Errorf("destroy container %s: resume: %w", c.id, err)
		}
		st = libcontainer.Running
	}
	if st == libcontainer.Running || st == libcontainer.Created {
		if err := c.lc.Signal(unix.SIGKILL); err != nil && !errors.Is(err, libcontainer.ErrNotRunning) {
			return fmt.Errorf("destroy container %s: kill: %w", c.id, err)
		}
		if err := c.waitStopped(ctx); err != nil {
			return fmt.Errorf("destroy container %s: %w", c.id, err)
		}
	}
	if err := c.lc.Destroy(); err != nil {
		return fmt.Errorf("destroy container %s: %w", c.id, classify(err))
	}
	return nil
}

// waitStopped waits for a killed container: through the reaper when this
// process started it, else by polling its state (its parent reaps it).
func (c *RuncContainer) waitStopped(ctx context.Context) error {
	c.mu.Lock()
	init := c.init
	c.mu.Unlock()
	if init != nil {
		select {
		case <-init.done:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	for delay := time.Millisecond; ; delay = min(2*delay, 100*time.Millisecond) {
		st, err := c.lc.Status()
		if err != nil {
			return err
		}
		if st == libcontainer.Stopped {
			return nil
		}
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// SwapLimitSupported reports whether the kernel accounts swap in memory
// cgroups, so that a memory+swap limit can be set. Without it Create
// drops the swap part of a spec's memory limit, as docker does (which
// also warns "Your kernel does not support swap limit capabilities";
// the CLI can check this to warn the same way).
func SwapLimitSupported() bool {
	if !cgroups.IsCgroup2UnifiedMode() {
		_, err := os.Stat("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes")
		return err == nil
	}
	// cgroup v2: the root cgroup has no memory.swap.max, so look at the
	// cgroup this process is in.
	data, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return true
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "0::"); ok {
			if rest == "/" {
				return true // cannot tell from the root; assume so
			}
			_, err := os.Stat(filepath.Join("/sys/fs/cgroup", rest, "memory.swap.max"))
			return err == nil
		}
	}
	return true
}

// oomCounterFile is the cgroup file whose "oom_kill" line counts the
// container's OOM kills: memory.events on cgroup v2, memory.oom_control on
// v1 (Linux ≥4.13). Empty when unknown.
func oomCounterFile(lc *libcontainer.Container) string {
	st, err := lc.State()
	if err != nil {
		return ""
	}
	if p, ok := st.CgroupPaths["memory"]; ok && p != "" {
		return filepath.Join(p, "memory.oom_control")
	}
	if p, ok := st.CgroupPaths[""]; ok && p != "" {
		return filepath.Join(p, "memory.events")
	}
	return ""
}

// readOOMKills reads the "oom_kill N" line of file.
func readOOMKills(file string) (int64, error) {
	if file == "" {
		return 0, os.ErrNotExist
	}
	f, err := os.Open(file)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), " ")
		if ok && k == "oom_kill" {
			return strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		}
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, os.ErrNotExist
}
