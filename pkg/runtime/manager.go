package runtime

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sys/unix"

	"github.com/berthsh/berth/internal/atomicfile"
	"github.com/berthsh/berth/internal/flock"
	"github.com/berthsh/berth/pkg/errdefs"
	"github.com/berthsh/berth/pkg/network"
	"github.com/berthsh/berth/pkg/runtime/logs"
	"github.com/berthsh/berth/pkg/runtime/volume"
	"github.com/berthsh/berth/pkg/store"
)

// LogFile is the name of a container's json-file log in its directory.
const LogFile = "container-json.log"

// Manager creates and runs containers kept under one root directory
// (ROOT/containers). It has no daemon: each running container has its
// own supervisor process, and every call reads the truth from disk.
type Manager struct {
	root      string
	store     *store.Store
	layers    *LayerCache
	volumes   *volume.Store
	networks  *network.Manager
	stateRoot string // libcontainer's state root

	mu      sync.Mutex
	pending *pendingSupervisor // started by PrestartSupervisor, not yet used
}

// pendingSupervisor is a supervisor process started ahead of its
// container: it waits for the container's ID on idW.
type pendingSupervisor struct {
	idW, report *os.File
}

// Container is a container as found on disk.
type Container struct {
	Config ContainerConfig
	State  State
	// Dir is the container's directory (ROOT/containers/<id>).
	Dir string
}

// ShortID is the first 12 characters of the ID, as docker shows it.
func (c Container) ShortID() string {
	if len(c.Config.ID) > 12 {
		return c.Config.ID[:12]
	}
	return c.Config.ID
}

// RemoveOptions control Remove.
type RemoveOptions struct {
	// Force kills a running container first.
	Force bool
	// Volumes also removes the container's anonymous volumes (rm -v).
	Volumes bool
}

// ListOptions select containers for List.
type ListOptions struct {
	// All lists stopped containers too.
	All bool
}

// StopOptions control Stop and Restart.
type StopOptions struct {
	// Timeout is how long to wait after the stop signal before SIGKILL;
	// nil means the container's StopTimeout, else 10 s.
	Timeout *time.Duration
	// Signal overrides the container's stop signal.
	Signal string
}

// AttachStreams connect a client to a container's (or exec's) stdio.
type AttachStreams struct {
	// Stdin, when set, is forwarded to the process (containers need
	// Interactive). Its end closes the process's stdin (docker's
	// StdinOnce) unless Tty.
	Stdin io.Reader
	// Stdout and Stderr receive the output; nil ones are not attached.
	// With Tty everything arrives on Stdout.
	Stdout, Stderr io.Writer
	// Tty says the process has a terminal (the streams are raw).
	Tty bool
	// Resize delivers terminal size changes.
	Resize <-chan TermSize
	// DetachKeys ends the attachment (not the container) when read from
	// Stdin; empty means docker's "ctrl-p,ctrl-q".
	DetachKeys string
	// Logs first replays the output the container printed since its
	// current start (docker attach --logs, limited to what the
	// supervisor keeps in memory). A foreground run sets it so that the
	// output printed between Start and Attach is not lost: it even works
	// when the container has exited already, as long as its supervisor
	// is still up (an auto-removed container's supervisor waits up to
	// 2 s for such an attach before removing it).
	Logs bool
}

// TermSize is a terminal's size in characters.
type TermSize struct{ Width, Height uint16 }

// WaitConditions accepted by Wait.
const (
	WaitNotRunning = "not-running"
	WaitNextExit   = "next-exit"
	WaitRemoved    = "removed"
)

// LogPath is the container's json-file log.
func (m *Manager) LogPath(c Container) string { return filepath.Join(c.Dir, LogFile) }

// Networks is the network manager containers attach through.
func (m *Manager) Networks() *network.Manager { return m.networks }

// Volumes is the volume store containers mount from.
func (m *Manager) Volumes() *volume.Store { return m.volumes }

// SupervisorExecutable is the binary re-executed as a container's
// supervisor; empty means this process's own executable. Tests of other
// packages may point it at a berth binary.
var SupervisorExecutable = ""

// NewManager opens the containers under root (the --root directory):
// ROOT/containers, ROOT/layers, ROOT/volumes and ROOT/networks, creating
// them if needed. s is the image store.
func NewManager(ctx context.Context, root string, s *store.Store) (*Manager, error) {
	if root == "" || s == nil {
		return nil, fmt.Errorf("open containers: need a root directory and an image store: %w", errdefs.ErrInvalidArgument)
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("open containers: %w", err)
	}
	if err := os.MkdirAll(filepath.Join(abs, "containers", exitRecordDir), 0o700); err != nil {
		return nil, fmt.Errorf("open containers: %w", classifyFS(err))
	}
	layers, err := OpenLayerCache(filepath.Join(abs, "layers"))
	if err != nil {
		return nil, fmt.Errorf("open containers: %w", err)
	}
	vols, err := volume.Open(ctx, filepath.Join(abs, "volumes"))
	if err != nil {
		return nil, fmt.Errorf("open containers: %w", err)
	}
	nets, err := network.New(filepath.Join(abs, "networks"))
	if err != nil {
		return nil, fmt.Errorf("open containers: %w", err)
	}
	sum := sha256.Sum256([]byte(abs))
	m := &Manager{
		root: abs, store: s, layers: layers, volumes: vols, networks: nets,
		stateRoot: filepath.Join("/run/berth/runc", hex.EncodeToString(sum[:8])),
	}
	m.cleanLeftovers()
	return m, nil
}

func (m *Manager) containersDir() string { return filepath.Join(m.root, "containers") }

func (m *Manager) envParams(dir string, cfg *ContainerConfig) EnvParams {
	return EnvParams{Root: m.root, Dir: dir, Store: m.store, Layers: m.layers, Volumes: m.volumes, Networks: m.networks, Config: cfg, Resolve: m.Get}
}

func noSuchContainer(idOrName string) error {
	return fmt.Errorf("No such container: %s: %w", idOrName, errdefs.ErrNotFound)
}

// ids lists the container IDs on disk.
func (m *Manager) ids() ([]string, error) {
	entries, err := os.ReadDir(m.containersDir())
	if err != nil {
		return nil, fmt.Errorf("list containers: %w", classifyFS(err))
	}
	var out []string
	for _, e := range entries {
		if e.IsDir() && len(e.Name()) == 64 && isHexString(e.Name()) {
			out = append(out, e.Name())
		}
	}
	return out, nil
}

func isHexString(s string) bool {
	for _, c := range s {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// load reads one container without reconciling.
func (m *Manager) load(id string) (Container, error) {
	dir := filepath.Join(m.containersDir(), id)
	cfg, err := loadConfig(dir)
	if err != nil {
		return Container{}, err
	}
	st, err := loadState(dir)
	if err != nil {
		return Container{}, err
	}
	return Container{Config: cfg, State: st, Dir: dir}, nil
}

// all reads every container without reconciling; ones vanishing meanwhile
// are skipped.
func (m *Manager) all() ([]Container, error) {
	ids, err := m.ids()
	if err != nil {
		return nil, err
	}
	var out []Container
	for _, id := range ids {
		c, err := m.load(id)
		if err != nil {
			if !errors.Is(err, errdefs.ErrNotFound) && !errors.Is(err, os.ErrNotExist) { // not just removed meanwhile
				slog.Warn("skipping a container that cannot be read", "id", id, "err", err)
			}
			continue
		}
		out = append(out, c)
	}
	return out, nil
}

// resolve finds a container by full ID, name or unique ID prefix, as
// docker does.
func (m *Manager) resolve(idOrName string) (Container, error) {
	key := strings.TrimPrefix(idOrName, "/")
	if key == "" {
		return Container{}, fmt.Errorf("no container name or ID given: %w", errdefs.ErrInvalidArgument)
	}
	if len(key) == 64 && isHexString(key) {
		if c, err := m.load(key); err == nil {
			return c, nil
		}
	}
	all, err := m.all()
	if err != nil {
		return Container{}, err
	}
	for _, c := range all {
		if c.Config.Name == key {
			return c, nil
		}
	}
	var found []Container
	for _, c := range all {
		if strings.HasPrefix(c.Config.ID, key) {
			found = append(found, c)
		}
	}
	switch len(found) {
	case 1:
		return found[0], nil
	case 0:
		return Container{}, noSuchContainer(idOrName)
	}
	return Container{}, fmt.Errorf("multiple containers match ID prefix %q: use more characters: %w", idOrName, errdefs.ErrInvalidArgument)
}

// Get finds a container by full ID, unique ID prefix or name, after
// reconciling stale state (a dead supervisor). A container that does not
// exist fails with errdefs.ErrNotFound ("No such container: X").
func (m *Manager) Get(ctx context.Context, idOrName string) (Container, error) {
	c, err := m.resolve(idOrName)
	if err != nil {
		return Container{}, err
	}
	if err := m.reconcile(ctx, &c); err != nil {
		return Container{}, err
	}
	return c, nil
}

// List returns the running containers (all with opts.All), newest first,
// reconciled.
func (m *Manager) List(ctx context.Context, opts ListOptions) ([]Container, error) {
	all, err := m.all()
	if err != nil {
		return nil, err
	}
	var out []Container
	for _, c := range all {
		if err := m.reconcile(ctx, &c); err != nil {
			if errors.Is(err, errdefs.ErrNotFound) {
				continue
			}
			return nil, err
		}
		if opts.All || c.State.Running || c.State.Paused || c.State.Restarting {
			out = append(out, c)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Config.Created.After(out[j].Config.Created) })
	return out, nil
}

// staleError is the Error of a container whose supervisor died.
const staleError = "the container's supervisor died (killed, or the host rebooted); its processes were stopped"

// reconcile makes c's state tell the truth when its supervisor is gone:
// the container is marked exited and whatever it left (mounts, network,
// cgroup) is cleaned up.
func (m *Manager) reconcile(ctx context.Context, c *Container) error {
	if !c.State.active() || supervisorAlive(c.Dir) {
		return nil
	}
	l, err := lockExclusive(ctx, filepath.Join(c.Dir, lockFile))
	if err != nil {
		if _, serr := os.Stat(c.Dir); serr != nil {
			return noSuchContainer(c.Config.ID)
		}
		return err
	}
	defer l.Unlock()
	st, err := loadState(c.Dir)
	if err != nil {
		return err
	}
	c.State = st
	if !st.active() {
		return nil
	}
	sl, ok, err := tryLock(filepath.Join(c.Dir, supervisorLock))
	if err != nil {
		return err
	}
	if !ok {
		return nil // a supervisor started meanwhile
	}
	defer sl.Unlock()
	m.cleanupStale(ctx, *c, st)
	if st.Running || st.Restarting || st.Paused {
		st.ExitCode = 255
	}
	st.Status = StatusExited
	st.Running, st.Restarting, st.Paused = false, false, false
	st.Pid, st.SupervisorPid = 0, 0
	st.Error = staleError
	st.FinishedAt = time.Now().UTC()
	st.Ports = nil
	if err := saveState(c.Dir, st); err != nil {
		return err
	}
	c.State = st
	// The supervisor that would have reported the end is gone: report
	// it here, once (the state is no longer active).
	m.emit(c.Config, "die", map[string]string{"exitCode": strconv.Itoa(st.ExitCode)})
	return nil
}

// cleanupStale removes what a dead supervisor left: the environment and
// the libcontainer container (killing its processes).
func (m *Manager) cleanupStale(ctx context.Context, c Container, st State) {
	cfg := c.Config
	if lc, err := Load(ctx, m.stateRoot, cfg.ID); err == nil {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		_ = lc.Destroy(dctx)
		cancel()
	}
	_ = TeardownStale(ctx, m.envParams(c.Dir, &cfg), st)
	_ = os.Remove(filepath.Join(c.Dir, supervisorSock))
}

// Create records a new container from cfg, filling ID, Created and Name
// (a docker-like random adjective_surname when empty). A name in use
// fails with errdefs.ErrConflict, a missing image or bind source with
// errdefs.ErrNotFound, bad settings with errdefs.ErrInvalidArgument.
// Nothing is left behind on error.
func (m *Manager) Create(ctx context.Context, cfg ContainerConfig) (Container, error) {
	if err := m.validate(ctx, &cfg); err != nil {
		return Container{}, fmt.Errorf("create container: %w", err)
	}
	nl, err := lockExclusive(ctx, filepath.Join(m.containersDir(), "names.lock"))
	if err != nil {
		return Container{}, fmt.Errorf("create container: %w", err)
	}
	defer nl.Unlock()
	all, err := m.all()
	if err != nil {
		return Container{}, fmt.Errorf("create container: %w", err)
	}
	used := map[string]string{}
	for _, c := range all {
		used[c.Config.Name] = c.Config.ID
	}
	if cfg.Name == "" {
		for i := 0; ; i++ {
			cfg.Name = generateName(i / 10)
			if _, ok := used[cfg.Name]; !ok {
				break
			}
		}
	} else if id, ok := used[cfg.Name]; ok {
		return Container{}, nameInUse(cfg.Name, id)
	}
	if cfg.ID, err = newID(); err != nil {
		return Container{}, err
	}
	cfg.Created = time.Now().UTC()
	dir := filepath.Join(m.containersDir(), cfg.ID)
	tmp := filepath.Join(m.containersDir(), ".tmp-"+cfg.ID)
	st := State{Status: StatusCreated}
	err = func() error {
		if err := os.Mkdir(tmp, 0o700); err != nil {
			return classifyFS(err)
		}
		if err := saveConfig(tmp, cfg); err != nil {
			return err
		}
		if err := saveState(tmp, st); err != nil {
			return err
		}
		// Its files' names, then its own, survive a crash from here on.
		if err := atomicfile.SyncDir(tmp); err != nil {
			return err
		}
		if err := os.Rename(tmp, dir); err != nil {
			return err
		}
		return atomicfile.SyncDir(m.containersDir())
	}()
	if err != nil {
		_ = os.RemoveAll(tmp)
		return Container{}, fmt.Errorf("create container: %w", err)
	}
	m.emit(cfg, "create", nil)
	return Container{Config: cfg, State: st, Dir: dir}, nil
}

func nameInUse(name, id string) error {
	return fmt.Errorf("the container name %q is already in use by container %q: remove (or rename) that container to be able to reuse that name: %w",
		"/"+name, id, errdefs.ErrConflict)
}

// validate checks cfg and resolves its image.
func (m *Manager) validate(ctx context.Context, cfg *ContainerConfig) error {
	if cfg.Name != "" {
		cfg.Name = strings.TrimPrefix(cfg.Name, "/")
		if err := validateName(cfg.Name); err != nil {
			return err
		}
	}
	ref := cfg.Image
	if cfg.ImageID.Hex != "" {
		ref = cfg.ImageID.String()
	}
	if ref == "" {
		return fmt.Errorf("no image given: %w", errdefs.ErrInvalidArgument)
	}
	img, err := m.store.Get(ctx, ref)
	if err != nil {
		return err
	}
	if cfg.ImageID.Hex == "" {
		if cfg.ImageID, err = m.store.ID(ctx, img); err != nil {
			return err
		}
	}
	if cfg.ImageDigest.Hex == "" {
		cfg.ImageDigest = img.Digest()
	}
	if cfg.Image == "" {
		cfg.Image = cfg.ImageID.String()
	}
	if cfg.Healthcheck, err = m.effectiveHealthcheck(ctx, img, cfg.Healthcheck); err != nil {
		return err
	}
	p := &cfg.RestartPolicy
	switch p.Name {
	case "":
		p.Name = RestartNo
	case RestartNo, RestartAlways, RestartUnlessStopped, RestartOnFailure:
	default:
		return fmt.Errorf("invalid restart policy %q: use no, always, on-failure[:max-retries] or unless-stopped: %w", p.Name, errdefs.ErrInvalidArgument)
	}
	if p.MaximumRetryCount < 0 {
		return fmt.Errorf("invalid restart policy: maximum retry count %d cannot be negative: %w", p.MaximumRetryCount, errdefs.ErrInvalidArgument)
	}
	if p.MaximumRetryCount > 0 && p.Name != RestartOnFailure {
		return fmt.Errorf("invalid restart policy: maximum retry count can only be used with on-failure: %w", errdefs.ErrInvalidArgument)
	}
	if cfg.AutoRemove && p.Name != RestartNo {
		return fmt.Errorf("conflicting options: cannot combine --restart=%s and --rm: %w", p.Name, errdefs.ErrInvalidArgument)
	}
	if _, err := logs.ParseOptions(cfg.LogOpts); err != nil {
		return err
	}
	if err := validateNetworkMode(cfg); err != nil {
		return err
	}
	if target, ok := strings.CutPrefix(cfg.NetworkMode, netModeContainerPrefix); ok {
		if _, err := m.resolve(target); err != nil {
			return fmt.Errorf("network mode %s: %w", cfg.NetworkMode, err)
		}
	}
	if cfg.StopSignal != "" {
		if _, err := ParseSignal(cfg.StopSignal); err != nil {
			return err
		}
	}
	for _, mnt := range cfg.Mounts {
		if mnt.Type != MountTypeBind {
			continue
		}
		if !filepath.IsAbs(mnt.Source) {
			return fmt.Errorf("invalid mount config for type \"bind\": source path %q must be absolute: %w", mnt.Source, errdefs.ErrInvalidArgument)
		}
		if _, err := os.Stat(mnt.Source); err != nil {
			return fmt.Errorf("invalid mount config for type \"bind\": bind source path does not exist: %s: %w", mnt.Source, errdefs.ErrNotFound)
		}
	}
	return nil
}

// ParseSignal reads a signal as docker does: "SIGKILL", "KILL", "kill"
// or "9".
func ParseSignal(s string) (syscall.Signal, error) {
	if n, err := strconv.Atoi(s); err == nil {
		if n <= 0 || n > 64 {
			return 0, fmt.Errorf("invalid signal %q: %w", s, errdefs.ErrInvalidArgument)
		}
		return syscall.Signal(n), nil
	}
	name := strings.ToUpper(s)
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	sig := unix.SignalNum(name)
	if sig == 0 {
		return 0, fmt.Errorf("invalid signal %q: %w", s, errdefs.ErrInvalidArgument)
	}
	return sig, nil
}

// Start spawns the container's supervisor and returns once the container
// runs, or with the start error (a missing command wraps
// errdefs.ErrNotFound, one that cannot be executed errdefs.ErrPermission,
// a port in use errdefs.ErrConflict); then nothing half set up remains.
// Starting a running container does nothing.
func (m *Manager) Start(ctx context.Context, idOrName string) error {
	c, err := m.Get(ctx, idOrName)
	if err != nil {
		return err
	}
	if !c.State.active() {
		// A supervisor still winding down (teardown) must be gone first.
		if err := m.waitSupervisorGone(ctx, c.Dir); err != nil {
			return err
		}
	}
	l, err := lockExclusive(ctx, filepath.Join(c.Dir, lockFile))
	if err != nil {
		return fmt.Errorf("start container %s: %w", c.ShortID(), err)
	}
	defer l.Unlock()
	st, err := loadState(c.Dir)
	if err != nil {
		return fmt.Errorf("start container %s: %w", c.ShortID(), err)
	}
	if st.active() && supervisorAlive(c.Dir) {
		if st.Paused {
			return fmt.Errorf("cannot start a paused container %s, try unpause instead: %w", c.ShortID(), errdefs.ErrConflict)
		}
		return nil
	}
	if st.Status == StatusRemoving {
		return fmt.Errorf("container %s is being removed: %w", c.ShortID(), errdefs.ErrConflict)
	}
	startErr := m.spawnSupervisor(ctx, c)
	if startErr == nil {
		return nil
	}
	// Record the failure, as docker does.
	if st2, err := loadState(c.Dir); err == nil {
		st = st2
	}
	if !st.StartedAt.IsZero() {
		st.Status = StatusExited
	}
	st.Running, st.Restarting, st.Paused = false, false, false
	st.Pid, st.SupervisorPid = 0, 0
	st.ExitCode = startErrorCode(startErr)
	st.Error = startErr.Error()
	_ = saveState(c.Dir, st)
	if strings.HasPrefix(startErr.Error(), "start container ") {
		return startErr // libcontainer's error names the container already
	}
	return fmt.Errorf("start container %s: %w", c.ShortID(), startErr)
}

// PrestartSupervisor starts the supervisor of the container the next
// Start will start, ahead of time: starting the berth binary takes a few
// milliseconds, which then pass while the caller resolves the image and
// creates the container (as "berth run" does). The supervisor waits for
// its container; Close (or the end of this process) lets it go unused.
func (m *Manager) PrestartSupervisor() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.pending != nil {
		return nil
	}
	idR, idW, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("start supervisor: %w", err)
	}
	defer idR.Close()
	devnull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		idW.Close()
		return fmt.Errorf("start supervisor: %w", err)
	}
	defer devnull.Close()
	// Its output goes to the container's supervisor.log once it knows
	// the container.
	report, err := m.startSupervisorProcess("-", devnull, idR)
	if err != nil {
		idW.Close()
		return err
	}
	m.pending = &pendingSupervisor{idW: idW, report: report}
	return nil
}

// Close lets a supervisor started by PrestartSupervisor and not used by
// Start go: it exits.
func (m *Manager) Close() {
	m.mu.Lock()
	p := m.pending
	m.pending = nil
	m.mu.Unlock()
	if p != nil {
		p.idW.Close()
		p.report.Close()
	}
}

// startSupervisorProcess starts "berth __supervise ... id", detached, with
// its output on out and idR (if any) as fd 4, and returns the read end
// of its report pipe (fd 3).
func (m *Manager) startSupervisorProcess(id string, out, idR *os.File) (*os.File, error) {
	exe := SupervisorExecutable
	if exe == "" {
		var err error
		if exe, err = os.Executable(); err != nil {
			return nil, fmt.Errorf("find the berth executable: %w", err)
		}
	}
	storeDir, err := filepath.Abs(m.store.Dir())
	if err != nil {
		return nil, err
	}
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	defer w.Close()
	cmd := exec.Command(exe, SuperviseArg, "--root", m.root, "--store", storeDir, id)
	cmd.Dir = "/"
	cmd.Stdout, cmd.Stderr = out, out
	cmd.ExtraFiles = []*os.File{w}
	if idR != nil {
		cmd.ExtraFiles = append(cmd.ExtraFiles, idR)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		r.Close()
		return nil, fmt.Errorf("spawn supervisor: %w", err)
	}
	// Reap it when it ends while this process still lives.
	go func() { _ = cmd.Wait() }()
	return r, nil
}

// spawnSupervisor runs the supervisor, detached (or hands the container to
// the one PrestartSupervisor started), and reads its report.
func (m *Manager) spawnSupervisor(ctx context.Context, c Container) error {
	m.mu.Lock()
	p := m.pending
	m.pending = nil
	m.mu.Unlock()
	var r *os.File
	if p != nil {
		_, err := p.idW.WriteString(c.Config.ID + "\n")
		p.idW.Close()
		if err != nil {
			p.report.Close()
			p = nil // it is gone: start another
		} else {
			r = p.report
		}
	}
	if p == nil {
		logf, err := os.OpenFile(filepath.Join(c.Dir, supervisorLog), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
		if err != nil {
			return err
		}
		r, err = m.startSupervisorProcess(c.Config.ID, logf, nil)
		logf.Close()
		if err != nil {
			return err
		}
	}
	defer r.Close()
	type result struct {
		line []byte
		err  error
	}
	ch := make(chan result, 1)
	go func() {
		line, err := bufio.NewReader(r).ReadBytes('\n')
		ch <- result{line, err}
	}()
	var res result
	select {
	case res = <-ch:
	case <-ctx.Done():
		return ctx.Err()
	}
	if res.err != nil {
		// It died before reporting: clean up after it.
		m.cleanupStale(ctx, c, State{})
		return fmt.Errorf("the supervisor exited without reporting (see %s): %w", filepath.Join(c.Dir, supervisorLog), errdefs.ErrUnavailable)
	}
	if strings.TrimSpace(string(res.line)) == "ok" {
		return nil
	}
	var resp response
	if err := json.Unmarshal(res.line, &resp); err != nil {
		return fmt.Errorf("bad report from the supervisor %q: %w", res.line, errdefs.ErrUnavailable)
	}
	return resp.err()
}

// stopSignal is the signal stop sends: opts', the container's, the
// image's STOPSIGNAL, else SIGTERM.
func (m *Manager) stopSignal(ctx context.Context, c Container, override string) (syscall.Signal, error) {
	name := override
	if name == "" {
		name = c.Config.StopSignal
	}
	if name == "" {
		if img, err := m.store.Get(ctx, c.Config.ImageID.String()); err == nil {
			if cf, _, err := m.store.ConfigFile(ctx, img); err == nil {
				name = cf.Config.StopSignal
			}
		}
	}
	if name == "" {
		return unix.SIGTERM, nil
	}
	return ParseSignal(name)
}

// Stop sends the stop signal (opts.Signal, else the container's, else the
// image's STOPSIGNAL, else SIGTERM), waits the timeout and then kills the
// container. Restart policies do not bring it back. Stopping a stopped
// container does nothing.
func (m *Manager) Stop(ctx context.Context, idOrName string, opts StopOptions) error {
	c, err := m.Get(ctx, idOrName)
	if err != nil {
		return err
	}
	if !c.State.active() {
		return nil
	}
	sig, err := m.stopSignal(ctx, c, opts.Signal)
	if err != nil {
		return err
	}
	timeout := 10 * time.Second
	switch {
	case opts.Timeout != nil:
		timeout = *opts.Timeout
	case c.Config.StopTimeout != nil:
		timeout = time.Duration(*c.Config.StopTimeout) * time.Second
	}
	ms := timeout.Milliseconds()
	if timeout < 0 {
		ms = -1
	}
	m.emit(c.Config, "kill", map[string]string{"signal": strconv.Itoa(int(sig))})
	_, err = callSupervisor(ctx, c.Dir, request{Op: opStop, Signal: int(sig), TimeoutMS: ms})
	if errors.Is(err, errNoSupervisor) {
		_, err = m.Get(ctx, c.Config.ID) // reconcile
		if errors.Is(err, errdefs.ErrNotFound) {
			return nil
		}
		return err
	}
	if err != nil {
		return fmt.Errorf("stop container %s: %w", c.ShortID(), err)
	}
	m.emit(c.Config, "stop", nil)
	return nil
}

// Kill sends signal ("SIGKILL", "KILL", "9"; empty means SIGKILL) to the
// container's main process. A container that does not run fails with
// errdefs.ErrConflict.
func (m *Manager) Kill(ctx context.Context, idOrName string, signal string) error {
	sig := unix.SIGKILL
	if signal != "" {
		var err error
		if sig, err = ParseSignal(signal); err != nil {
			return err
		}
	}
	c, err := m.Get(ctx, idOrName)
	if err != nil {
		return err
	}
	notRunning := fmt.Errorf("cannot kill container %s: container %s is not running: %w", idOrName, c.Config.ID, errdefs.ErrConflict)
	if !c.State.active() {
		return notRunning
	}
	// Before the signal, so that the kill comes before the die it causes.
	m.emit(c.Config, "kill", map[string]string{"signal": strconv.Itoa(int(sig))})
	_, err = callSupervisor(ctx, c.Dir, request{Op: opKill, Signal: int(sig)})
	if errors.Is(err, errNoSupervisor) {
		return notRunning
	}
	if err != nil {
		return fmt.Errorf("kill container %s: %w", c.ShortID(), err)
	}
	return nil
}

// Restart stops the container (if it runs) and starts it again.
func (m *Manager) Restart(ctx context.Context, idOrName string, opts StopOptions) error {
	if err := m.Stop(ctx, idOrName, opts); err != nil {
		return err
	}
	c, err := m.Get(ctx, idOrName)
	if err != nil {
		return err
	}
	// Wait for the supervisor to finish its teardown before starting a
	// new one.
	if err := m.waitSupervisorGone(ctx, c.Dir); err != nil {
		return err
	}
	if err := m.Start(ctx, c.Config.ID); err != nil {
		return err
	}
	m.emit(c.Config, "restart", nil)
	return nil
}

// waitSupervisorGone waits until no supervisor holds dir's lock.
func (m *Manager) waitSupervisorGone(ctx context.Context, dir string) error {
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	l, err := lockExclusive(wctx, filepath.Join(dir, supervisorLock))
	if err != nil {
		if _, serr := os.Stat(dir); serr != nil {
			return nil
		}
		return fmt.Errorf("wait for the supervisor to end: %w", err)
	}
	l.Unlock()
	return nil
}

// Remove deletes a stopped container (with Force, a running one is
// killed first; without, it fails with errdefs.ErrConflict).
func (m *Manager) Remove(ctx context.Context, idOrName string, opts RemoveOptions) error {
	c, err := m.Get(ctx, idOrName)
	if err != nil {
		return err
	}
	if c.State.active() {
		if !opts.Force {
			return fmt.Errorf("cannot remove container %s: container is running: stop the container before removing or force remove: %w", idOrName, errdefs.ErrConflict)
		}
		if _, err := callSupervisor(ctx, c.Dir, request{Op: opStop, Signal: int(unix.SIGKILL), TimeoutMS: 0}); err != nil && !errors.Is(err, errNoSupervisor) {
			return fmt.Errorf("remove container %s: %w", c.ShortID(), err)
		}
		if err := m.waitSupervisorGone(ctx, c.Dir); err != nil {
			return err
		}
		if c, err = m.Get(ctx, c.Config.ID); err != nil {
			if errors.Is(err, errdefs.ErrNotFound) {
				return nil // it was auto-removed
			}
			return err
		}
	}
	if err := m.removeStopped(ctx, c.Config.ID, opts.Volumes, nil); err != nil {
		if errors.Is(err, errdefs.ErrNotFound) && opts.Force {
			return nil
		}
		return err
	}
	return nil
}

// removeStopped removes a container that does not run. held is the
// supervisor lock when the supervisor itself removes its container.
func (m *Manager) removeStopped(ctx context.Context, id string, volumes bool, held *flock.Lock) error {
	trash, err := m.removeStoppedKeepTrash(ctx, id, volumes, held)
	if trash != "" {
		if rerr := os.RemoveAll(trash); rerr != nil && err == nil {
			err = fmt.Errorf("remove container %s: %w", id, rerr)
		}
	}
	return err
}

// removeStoppedKeepTrash is removeStopped except that the container's
// directory, already renamed out of the way (its name and ID are free,
// no listing shows it), is left for the caller to delete: its path is
// returned, also with an error. cleanLeftovers deletes what a killed
// caller leaves.
func (m *Manager) removeStoppedKeepTrash(ctx context.Context, id string, volumes bool, held *flock.Lock) (string, error) {
	dir := filepath.Join(m.containersDir(), id)
	if held == nil {
		// A supervisor still winding down (teardown) must be gone first.
		if err := m.waitSupervisorGone(ctx, dir); err != nil {
			return "", err
		}
	}
	l, err := lockExclusive(ctx, filepath.Join(dir, lockFile))
	if err != nil {
		if _, serr := os.Stat(dir); serr != nil {
			return "", noSuchContainer(id)
		}
		return "", err
	}
	defer l.Unlock()
	if held == nil {
		sl, ok, err := tryLock(filepath.Join(dir, supervisorLock))
		if err != nil {
			return "", err
		}
		if !ok {
			return "", fmt.Errorf("cannot remove container %s: it is running: %w", id, errdefs.ErrConflict)
		}
		defer sl.Unlock()
	}
	st, err := loadState(dir)
	if err != nil {
		return "", err
	}
	st.Status = StatusRemoving
	_ = saveState(dir, st)
	if lc, err := Load(ctx, m.stateRoot, id); err == nil {
		_ = lc.Destroy(ctx)
	}
	if err := UnmountRootfs(dir); err != nil {
		return "", fmt.Errorf("remove container %s: %w", id, err)
	}
	cfg, _ := loadConfig(dir) // for the destroy event's attributes
	cfg.ID = id
	trash := filepath.Join(m.containersDir(), ".rm-"+id)
	if err := os.Rename(dir, trash); err != nil {
		return "", fmt.Errorf("remove container %s: %w", id, classifyFS(err))
	}
	m.emit(cfg, "destroy", nil)
	if volumes {
		m.removeAnonymousVolumes(ctx, id)
	}
	return trash, nil
}

// removeAnonymousVolumes removes the anonymous volumes made for id.
func (m *Manager) removeAnonymousVolumes(ctx context.Context, id string) {
	vols, err := m.volumes.List(ctx, volume.ListOptions{})
	if err != nil {
		return
	}
	for _, v := range vols {
		if v.Labels[ContainerVolumeLabel] == id {
			_ = m.volumes.Remove(ctx, v.Name, volume.RemoveOptions{Force: true})
		}
	}
}

// exitRecord is what an auto-removed container leaves for Wait.
type exitRecord struct {
	ID       string    `json:"Id"`
	Name     string    `json:"Name"`
	ExitCode int       `json:"ExitCode"`
	Time     time.Time `json:"Time"`
}

// exitRecordTTL is how long an auto-removed container's exit code stays.
const exitRecordTTL = 10 * time.Minute

func (m *Manager) writeExitRecord(id, name string, code int) error {
	return saveJSON(filepath.Join(m.containersDir(), exitRecordDir, id), exitRecord{ID: id, Name: name, ExitCode: code, Time: time.Now().UTC()})
}

// findExitRecord finds the exit record of a removed container by ID,
// unique ID prefix or name. A full ID is one file read however many
// records there are (a script of many "run --rm" makes hundreds).
func (m *Manager) findExitRecord(idOrName string) (exitRecord, bool) {
	dir := filepath.Join(m.containersDir(), exitRecordDir)
	if len(idOrName) == 64 && isHexString(idOrName) {
		var r exitRecord
		if loadJSON(filepath.Join(dir, idOrName), &r) != nil || r.ID != idOrName {
			return exitRecord{}, false
		}
		return r, true
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return exitRecord{}, false
	}
	var best exitRecord
	found := false
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			continue
		}
		var r exitRecord
		if loadJSON(filepath.Join(dir, e.Name()), &r) != nil {
			continue
		}
		if r.ID == idOrName || r.Name == idOrName || (len(idOrName) >= 4 && strings.HasPrefix(r.ID, idOrName)) {
			if !found || r.Time.After(best.Time) {
				best, found = r, true
			}
		}
	}
	return best, found
}

// leftoverAge is how long cleanLeftovers leaves a half-created or
// half-removed container directory to the process working on it.
var leftoverAge = time.Minute

// cleanLeftovers deletes what killed processes left in ROOT/containers:
// containers half created (.tmp-*) or half removed (.rm-*), a minute
// after they were last changed.
func (m *Manager) cleanLeftovers() {
	entries, err := os.ReadDir(m.containersDir())
	if err != nil {
		return
	}
	for _, e := range entries {
		p := filepath.Join(m.containersDir(), e.Name())
		switch {
		case strings.HasPrefix(e.Name(), ".rm-"):
			// A supervisor deletes its auto-removed container's
			// directory after letting the foreground run go (renaming
			// it changed its ctime): leave that to it for a while.
			if info, err := e.Info(); err != nil || changedWithin(info, leftoverAge) {
				continue
			}
			if UnmountRootfs(p) == nil {
				_ = os.RemoveAll(p)
			}
		case strings.HasPrefix(e.Name(), ".tmp-"):
			if info, err := e.Info(); err == nil && time.Since(info.ModTime()) > leftoverAge {
				_ = os.RemoveAll(p)
			}
		}
	}
}

// pruneExitRecords deletes the exit records older than exitRecordTTL. The
// supervisor of an auto-removed container calls it after the removal,
// once nobody waits for it.
func (m *Manager) pruneExitRecords() {
	dir := filepath.Join(m.containersDir(), exitRecordDir)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		if info, err := e.Info(); err == nil && time.Since(info.ModTime()) > exitRecordTTL {
			_ = os.Remove(filepath.Join(dir, e.Name()))
		}
	}
}

// Wait blocks until condition holds and returns the container's exit
// code: WaitNotRunning (the default, for ""), WaitNextExit or
// WaitRemoved. The exit code of an auto-removed container stays
// readable by its ID for a while after it is gone.
func (m *Manager) Wait(ctx context.Context, idOrName string, condition string) (int, error) {
	switch condition {
	case "":
		condition = WaitNotRunning
	case WaitNotRunning, WaitNextExit, WaitRemoved:
	default:
		return 0, fmt.Errorf("invalid wait condition %q: use not-running, next-exit or removed: %w", condition, errdefs.ErrInvalidArgument)
	}
	c, err := m.Get(ctx, idOrName)
	if err != nil {
		if r, ok := m.findExitRecord(idOrName); ok && errors.Is(err, errdefs.ErrNotFound) {
			return r.ExitCode, nil
		}
		return 0, err
	}
	id := c.Config.ID
	if condition == WaitRemoved {
		code := c.State.ExitCode
		// The supervisor holds supervisor.lock until it has removed an
		// auto-removed container: waiting for the lock ends as soon as
		// it is done, without polling.
		if supervisorAlive(c.Dir) {
			if l, err := flock.Acquire(ctx, filepath.Join(c.Dir, supervisorLock), true); err == nil {
				l.Unlock()
			} else if ctx.Err() != nil {
				return 0, ctx.Err()
			}
		}
		for {
			if r, ok := m.findExitRecord(id); ok {
				code = r.ExitCode
			}
			c, err := m.Get(ctx, id)
			if errors.Is(err, errdefs.ErrNotFound) {
				return code, nil
			}
			if err != nil {
				return 0, err
			}
			code = c.State.ExitCode
			select {
			case <-ctx.Done():
				return 0, ctx.Err()
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	if condition == WaitNotRunning && !c.State.active() {
		return c.State.ExitCode, nil
	}
	for !c.State.active() { // next-exit of a stopped container: wait for a start
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if c, err = m.Get(ctx, id); err != nil {
			return 0, err
		}
	}
	resp, err := callSupervisor(ctx, c.Dir, request{Op: opWait, Condition: condition})
	if err == nil {
		return resp.ExitCode, nil
	}
	if !errors.Is(err, errNoSupervisor) {
		return 0, fmt.Errorf("wait for container %s: %w", c.ShortID(), err)
	}
	// The supervisor ended meanwhile: the state (or the exit record of an
	// auto-removed container) has the answer.
	c, gerr := m.Get(ctx, id)
	if gerr == nil {
		return c.State.ExitCode, nil
	}
	if r, ok := m.findExitRecord(id); ok {
		return r.ExitCode, nil
	}
	return 0, gerr
}

// Attach connects s to the running container's stdio and returns when
// the streams end (the container exited, or the client detached).
func (m *Manager) Attach(ctx context.Context, idOrName string, s AttachStreams) error {
	c, err := m.Get(ctx, idOrName)
	if err != nil {
		return err
	}
	if (!c.State.Running || c.State.Restarting) && !(s.Logs && supervisorAlive(c.Dir)) {
		return fmt.Errorf("cannot attach to container %s: it is not running: %w", c.ShortID(), errdefs.ErrConflict)
	}
	if !c.Config.Interactive {
		s.Stdin = nil // as docker: stdin is attached only with -i
	}
	req := request{Op: opAttach, Stdin: s.Stdin != nil, Stdout: s.Stdout != nil, Stderr: s.Stderr != nil, Logs: s.Logs}
	conn, br, err := dialSupervisor(ctx, c.Dir, req)
	if err != nil {
		if errors.Is(err, errNoSupervisor) {
			return fmt.Errorf("cannot attach to container %s: it is not running: %w", c.ShortID(), errdefs.ErrConflict)
		}
		return fmt.Errorf("attach to container %s: %w", c.ShortID(), err)
	}
	_, _, err = pumpStreams(ctx, conn, br, s)
	return err
}

// Exec runs a process in the running container with s as its stdio and
// returns its exit code. A missing command wraps errdefs.ErrNotFound.
func (m *Manager) Exec(ctx context.Context, idOrName string, opts ExecOptions, s AttachStreams) (int, error) {
	c, err := m.Get(ctx, idOrName)
	if err != nil {
		return 0, err
	}
	if !c.State.Running || c.State.Restarting {
		return 0, fmt.Errorf("container %s is not running: %w", c.ShortID(), errdefs.ErrConflict)
	}
	if c.State.Paused {
		return 0, fmt.Errorf("container %s is paused, unpause the container before exec: %w", c.ShortID(), errdefs.ErrConflict)
	}
	opts.Tty = opts.Tty || s.Tty
	req := request{Op: opExec, Exec: &opts, Stdin: s.Stdin != nil, Stdout: true, Stderr: true}
	conn, br, err := dialSupervisor(ctx, c.Dir, req)
	if err != nil {
		if errors.Is(err, errNoSupervisor) {
			return 0, fmt.Errorf("container %s is not running: %w", c.ShortID(), errdefs.ErrConflict)
		}
		return 0, fmt.Errorf("exec in container %s: %w", c.ShortID(), err)
	}
	code, gotExit, err := pumpStreams(ctx, conn, br, s)
	if err != nil {
		return 0, err
	}
	if !gotExit {
		return 0, fmt.Errorf("exec in container %s: the connection to the supervisor ended early: %w", c.ShortID(), errdefs.ErrUnavailable)
	}
	return code, nil
}

// Rename gives the container a new, unused name.
func (m *Manager) Rename(ctx context.Context, idOrName, newName string) error {
	newName = strings.TrimPrefix(newName, "/")
	if err := validateName(newName); err != nil {
		return err
	}
	nl, err := lockExclusive(ctx, filepath.Join(m.containersDir(), "names.lock"))
	if err != nil {
		return fmt.Errorf("rename container: %w", err)
	}
	defer nl.Unlock()
	c, err := m.resolve(idOrName)
	if err != nil {
		return err
	}
	if c.Config.Name == newName {
		return fmt.Errorf("renaming container %s: the new name is the same as the old one: %w", idOrName, errdefs.ErrInvalidArgument)
	}
	all, err := m.all()
	if err != nil {
		return err
	}
	for _, o := range all {
		if o.Config.Name == newName {
			return nameInUse(newName, o.Config.ID)
		}
	}
	l, err := lockExclusive(ctx, filepath.Join(c.Dir, lockFile))
	if err != nil {
		return fmt.Errorf("rename container: %w", err)
	}
	defer l.Unlock()
	cfg, err := loadConfig(c.Dir)
	if err != nil {
		return err
	}
	oldName := cfg.Name
	cfg.Name = newName
	if err := saveConfig(c.Dir, cfg); err != nil {
		return err
	}
	m.emit(cfg, "rename", map[string]string{"oldName": "/" + oldName})
	return nil
}

// Pause freezes the container's processes.
func (m *Manager) Pause(ctx context.Context, idOrName string) error {
	return m.setPaused(ctx, idOrName, true)
}

// Unpause thaws a paused container.
func (m *Manager) Unpause(ctx context.Context, idOrName string) error {
	return m.setPaused(ctx, idOrName, false)
}

func (m *Manager) setPaused(ctx context.Context, idOrName string, pause bool) error {
	c, err := m.Get(ctx, idOrName)
	if err != nil {
		return err
	}
	if !c.State.Running || c.State.Restarting {
		return fmt.Errorf("container %s is not running: %w", c.ShortID(), errdefs.ErrConflict)
	}
	if c.State.Paused == pause {
		if pause {
			return fmt.Errorf("container %s is already paused: %w", c.ShortID(), errdefs.ErrConflict)
		}
		return fmt.Errorf("container %s is not paused: %w", c.ShortID(), errdefs.ErrConflict)
	}
	l, err := lockExclusive(ctx, filepath.Join(c.Dir, lockFile))
	if err != nil {
		return err
	}
	defer l.Unlock()
	lc, err := Load(ctx, m.stateRoot, c.Config.ID)
	if err != nil {
		return err
	}
	if pause {
		err = lc.Pause()
	} else {
		err = lc.Resume()
	}
	if err != nil {
		return err
	}
	st, err := loadState(c.Dir)
	if err != nil {
		return err
	}
	st.Paused = pause
	if pause {
		st.Status = StatusPaused
	} else {
		st.Status = StatusRunning
	}
	if err := saveState(c.Dir, st); err != nil {
		return err
	}
	if pause {
		m.emit(c.Config, "pause", nil)
	} else {
		m.emit(c.Config, "unpause", nil)
	}
	return nil
}

// Prune removes every stopped container and returns their IDs.
func (m *Manager) Prune(ctx context.Context) ([]string, error) {
	all, err := m.List(ctx, ListOptions{All: true})
	if err != nil {
		return nil, err
	}
	var removed []string
	for _, c := range all {
		if c.State.active() {
			continue
		}
		if err := m.removeStopped(ctx, c.Config.ID, false, nil); err != nil {
			if errors.Is(err, errdefs.ErrConflict) || errors.Is(err, errdefs.ErrNotFound) {
				continue
			}
			return removed, err
		}
		removed = append(removed, c.Config.ID)
	}
	return removed, nil
}

// ImageUsers maps image IDs to the IDs of the containers created from
// them (for rmi and image prune).
func (m *Manager) ImageUsers(ctx context.Context) (map[v1.Hash][]string, error) {
	all, err := m.all()
	if err != nil {
		return nil, err
	}
	out := map[v1.Hash][]string{}
	for _, c := range all {
		out[c.Config.ImageID] = append(out[c.Config.ImageID], c.Config.ID)
	}
	return out, nil
}

// VolumeUsers maps volume names to the IDs of the containers using them
// (named volumes in their mounts, and the anonymous ones made for them).
func (m *Manager) VolumeUsers(ctx context.Context) (map[string][]string, error) {
	all, err := m.all()
	if err != nil {
		return nil, err
	}
	out := map[string][]string{}
	for _, c := range all {
		for _, mnt := range c.Config.Mounts {
			if mnt.Type != "volume" {
				continue
			}
			name := mnt.Source
			if name == "" {
				name = AnonymousVolumeName(c.Config.ID, mnt.Target)
			}
			if !slices.Contains(out[name], c.Config.ID) {
				out[name] = append(out[name], c.Config.ID)
			}
		}
	}
	// Anonymous volumes of the image's VOLUMEs carry the container's ID.
	ids := map[string]bool{}
	for _, c := range all {
		ids[c.Config.ID] = true
	}
	if vols, err := m.volumes.List(ctx, volume.ListOptions{}); err == nil {
		for _, v := range vols {
			id := v.Labels[ContainerVolumeLabel]
			if ids[id] && !slices.Contains(out[v.Name], id) {
				out[v.Name] = append(out[v.Name], id)
			}
		}
	}
	return out, nil
}

// Reset removes every container (running ones are killed), their
// anonymous volumes, and every network of this data directory with its
// bridge and firewall state: what must go before the directory itself can
// be deleted without leaving anything on the host.
func (m *Manager) Reset(ctx context.Context) error {
	all, err := m.List(ctx, ListOptions{All: true})
	if err != nil {
		return fmt.Errorf("reset: %w", err)
	}
	for _, c := range all {
		if err := m.Remove(ctx, c.Config.ID, RemoveOptions{Force: true, Volumes: true}); err != nil && !errors.Is(err, errdefs.ErrNotFound) {
			return fmt.Errorf("reset: %w", err)
		}
	}
	if err := m.Networks().RemoveAll(ctx); err != nil {
		return fmt.Errorf("reset: %w", err)
	}
	return nil
}
