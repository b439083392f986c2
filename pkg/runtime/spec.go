package runtime

import (
	"cmp"
	"fmt"
	"math"
	"path"
	goruntime "runtime"
	"slices"
	"strconv"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/moby/sys/capability"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berthsh/berth/pkg/errdefs"
	"github.com/berthsh/berth/pkg/runtime/seccomp"
)

// DefaultPath is the PATH a container gets when neither the image nor the
// user sets one (Docker's default).
const DefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// DefaultShmSize is the size of /dev/shm when CreateOptions.ShmSize is 0.
const DefaultShmSize = 64 << 20

// InitPathInContainer is where the init binary is mounted with Init set.
const InitPathInContainer = "/sbin/docker-init"

// minMemory is Docker's smallest accepted memory limit.
const minMemory = 6 << 20

// cpuPeriod is the CFS period used to express CreateOptions.CPUs.
const cpuPeriod = 100000

// DefaultCapabilities is Docker's default capability set.
var DefaultCapabilities = []string{
	"CAP_CHOWN",
	"CAP_DAC_OVERRIDE",
	"CAP_FSETID",
	"CAP_FOWNER",
	"CAP_MKNOD",
	"CAP_NET_RAW",
	"CAP_SETGID",
	"CAP_SETUID",
	"CAP_SETFCAP",
	"CAP_SETPCAP",
	"CAP_NET_BIND_SERVICE",
	"CAP_SYS_CHROOT",
	"CAP_KILL",
	"CAP_AUDIT_WRITE",
}

// MaskedPaths are hidden from unprivileged containers (as Docker does).
var MaskedPaths = []string{
	"/proc/asound",
	"/proc/acpi",
	"/proc/interrupts",
	"/proc/kcore",
	"/proc/keys",
	"/proc/latency_stats",
	"/proc/timer_list",
	"/proc/timer_stats",
	"/proc/sched_debug",
	"/proc/scsi",
	"/sys/firmware",
	"/sys/devices/virtual/powercap",
}

// ReadonlyPaths are read-only in unprivileged containers (as Docker does).
var ReadonlyPaths = []string{
	"/proc/bus",
	"/proc/fs",
	"/proc/irq",
	"/proc/sys",
	"/proc/sysrq-trigger",
}

// Ulimit is one resource limit, named as docker's --ulimit does ("nofile",
// "nproc", ...). -1 means unlimited.
type Ulimit struct {
	Name       string
	Soft, Hard int64
}

// Mount types accepted in Mount.Type.
const (
	MountTypeBind  = "bind"
	MountTypeTmpfs = "tmpfs"
)

// Mount is a bind mount of a host path (volumes are resolved to their host
// directory by the caller) or a tmpfs.
type Mount struct {
	// Type is MountTypeBind or MountTypeTmpfs.
	Type string
	// Source is the absolute host path of a bind mount.
	Source string
	// Target is the absolute path in the container.
	Target string
	// ReadOnly makes the mount read-only.
	ReadOnly bool
	// Options are extra mount options: for tmpfs "size=64m", "mode=1777"
	// and the like; for bind mounts propagation ("rshared", ...) or
	// "norbind".
	Options []string
}

// CreateOptions are the per-container settings that, with the image
// config, make a container's OCI spec. The zero value runs the image's
// default command with Docker's default isolation.
type CreateOptions struct {
	// Cmd replaces the image's Cmd when not empty.
	Cmd []string
	// Entrypoint replaces the image's Entrypoint when EntrypointSet (an
	// empty one removes it). As with docker, setting the entrypoint also
	// drops the image's Cmd: only Cmd from these options is used.
	Entrypoint    []string
	EntrypointSet bool
	// Env entries ("KEY=value") are applied after the image's.
	Env []string
	// WorkingDir replaces the image's; it must be absolute.
	WorkingDir string
	// User is "user[:group]", names or numbers, resolved against the
	// container's /etc/passwd and /etc/group. Empty means the image's user,
	// else root.
	User string
	// GroupAdd are extra groups (names or numbers) for the process.
	GroupAdd []string
	// Hostname and Domainname of the container's UTS namespace.
	Hostname, Domainname string

	// ReadOnly mounts the root file system read-only.
	ReadOnly bool
	// Privileged gives all capabilities and device access, and removes
	// masked and read-only paths.
	Privileged bool
	// NoNewPrivileges sets no_new_privs on the process.
	NoNewPrivileges bool
	// Seccomp is the syscall filter: "" for Docker's default profile
	// (where this berth was built with seccomp support), "unconfined" for
	// none, else a Docker-format profile (JSON). Privileged containers
	// are unconfined.
	Seccomp string
	// Init runs InitPath (mounted at InitPathInContainer) as PID 1, with
	// the command as its arguments after "--".
	Init     bool
	InitPath string
	// CapAdd and CapDrop adjust the default capability set; names may
	// omit the "CAP_" prefix, any case; "ALL" means every capability.
	CapAdd, CapDrop []string

	// Memory is the memory limit in bytes (0: none).
	Memory int64
	// MemoryReservation is the soft limit in bytes (0: none).
	MemoryReservation int64
	// MemorySwap is memory plus swap in bytes: 0 means twice Memory (when
	// Memory is set), -1 unlimited.
	MemorySwap int64
	// CPUs is the number of CPUs the container may use (CFS quota).
	CPUs float64
	// CPUShares is the relative CPU weight (cgroup v1 shares).
	CPUShares int64
	// CpusetCpus and CpusetMems restrict CPUs and memory nodes ("0-2,4").
	CpusetCpus, CpusetMems string
	// PidsLimit limits the number of processes: 0 leaves it unset, a
	// negative value means unlimited.
	PidsLimit int64
	// OOMScoreAdj is the process's OOM score adjustment (-1000..1000).
	OOMScoreAdj int
	// ShmSize is the size of /dev/shm in bytes (0: DefaultShmSize).
	ShmSize int64
	// Ulimits set resource limits; the rest are inherited from the caller.
	Ulimits []Ulimit
	// Sysctls are namespaced kernel parameters to set.
	Sysctls map[string]string

	// Mounts are added after the default mounts; one with the same target
	// as a default mount (such as /dev/shm) replaces it.
	Mounts []Mount

	// Tty allocates a terminal for the process (and sets TERM=xterm);
	// ConsoleHeight and ConsoleWidth, when set, are its initial size.
	Tty                         bool
	ConsoleHeight, ConsoleWidth uint

	// HostNetwork shares the host's network namespace. Otherwise the
	// container joins NetNSPath, or gets a new namespace with only
	// loopback when it is empty.
	HostNetwork bool
	NetNSPath   string

	// HostsPath, ResolvConfPath and HostnamePath are files the caller
	// wrote (normally in the container directory); each one that is set
	// is bind-mounted on /etc/hosts, /etc/resolv.conf and /etc/hostname.
	HostsPath, ResolvConfPath, HostnamePath string

	// CgroupsPath is the container's cgroup, as in the OCI spec; empty
	// lets Create choose "/berth/<id>".
	CgroupsPath string
	// Annotations are copied into the spec.
	Annotations map[string]string
}

// CreateSpec builds the OCI runtime spec of a container running an image
// with config img (nil for none) from rootfsPath, Docker-style. The
// user and groups are looked up in rootfsPath's /etc/passwd and
// /etc/group, so rootfsPath must hold the container's file system (the
// mounted overlay). Invalid options fail with errdefs.ErrInvalidArgument.
func CreateSpec(img *v1.Config, rootfsPath string, opts CreateOptions) (*specs.Spec, error) {
	if img == nil {
		img = &v1.Config{}
	}
	if rootfsPath == "" || !path.IsAbs(rootfsPath) {
		return nil, invalidf("root file system path %q must be absolute", rootfsPath)
	}
	args, err := commandLine(img, opts)
	if err != nil {
		return nil, err
	}
	if opts.Init {
		if opts.InitPath == "" || !path.IsAbs(opts.InitPath) {
			return nil, invalidf("init needs the absolute host path of an init binary, got %q", opts.InitPath)
		}
		args = append([]string{InitPathInContainer, "--"}, args...)
	}
	cwd, err := workingDir(img, opts)
	if err != nil {
		return nil, err
	}
	userSpec := opts.User
	if userSpec == "" {
		userSpec = img.User
	}
	u, err := resolveUser(rootfsPath, userSpec, opts.GroupAdd)
	if err != nil {
		return nil, err
	}
	env, err := mergeEnv(img.Env, opts, u.home)
	if err != nil {
		return nil, err
	}
	caps, err := capabilities(opts)
	if err != nil {
		return nil, err
	}
	rlimits, err := rlimits(opts.Ulimits)
	if err != nil {
		return nil, err
	}
	mounts, err := mountList(opts)
	if err != nil {
		return nil, err
	}
	resources, err := resources(opts)
	if err != nil {
		return nil, err
	}
	if opts.OOMScoreAdj < -1000 || opts.OOMScoreAdj > 1000 {
		return nil, invalidf("OOM score adjustment %d is outside -1000..1000", opts.OOMScoreAdj)
	}
	filter, err := seccompFilter(opts, caps)
	if err != nil {
		return nil, err
	}

	s := &specs.Spec{
		Version: specs.Version,
		Root: &specs.Root{
			Path:     rootfsPath,
			Readonly: opts.ReadOnly,
		},
		Hostname:   opts.Hostname,
		Domainname: opts.Domainname,
		Process: &specs.Process{
			Terminal: opts.Tty,
			User: specs.User{
				UID:            uint32(u.uid),
				GID:            uint32(u.gid),
				AdditionalGids: u.sgids,
			},
			Args: args,
			Env:  env,
			Cwd:  cwd,
			Capabilities: &specs.LinuxCapabilities{
				Bounding:  caps,
				Effective: caps,
				Permitted: caps,
			},
			Rlimits:         rlimits,
			NoNewPrivileges: opts.NoNewPrivileges,
		},
		Mounts:      mounts,
		Annotations: maps(opts.Annotations),
		Linux: &specs.Linux{
			Sysctl:      maps(opts.Sysctls),
			Resources:   resources,
			CgroupsPath: opts.CgroupsPath,
			Namespaces:  namespaces(opts),
			Seccomp:     filter,
		},
	}
	if opts.Tty && opts.ConsoleHeight > 0 && opts.ConsoleWidth > 0 {
		s.Process.ConsoleSize = &specs.Box{Height: opts.ConsoleHeight, Width: opts.ConsoleWidth}
	}
	if opts.OOMScoreAdj != 0 {
		adj := opts.OOMScoreAdj
		s.Process.OOMScoreAdj = &adj
	}
	if !opts.Privileged {
		s.Linux.MaskedPaths = slices.Clone(MaskedPaths)
		s.Linux.ReadonlyPaths = slices.Clone(ReadonlyPaths)
	} else if s.Linux.Devices, err = hostDevices(); err != nil {
		return nil, err
	}
	return s, nil
}

func invalidf(format string, a ...any) error {
	return fmt.Errorf(format+": %w", append(a, errdefs.ErrInvalidArgument)...)
}

func maps(m map[string]string) map[string]string {
	if len(m) == 0 {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// commandLine combines entrypoint and command as docker does.
func commandLine(img *v1.Config, opts CreateOptions) ([]string, error) {
	entrypoint, cmd := img.Entrypoint, img.Cmd
	if opts.EntrypointSet {
		entrypoint, cmd = opts.Entrypoint, nil
	}
	if len(opts.Cmd) > 0 {
		cmd = opts.Cmd
	}
	args := append(slices.Clone(entrypoint), cmd...)
	if len(args) == 0 {
		return nil, invalidf("no command specified: the image has no CMD or ENTRYPOINT; give a command to run")
	}
	if args[0] == "" {
		return nil, invalidf("the command to run is an empty string")
	}
	return args, nil
}

func workingDir(img *v1.Config, opts CreateOptions) (string, error) {
	if opts.WorkingDir != "" {
		if !path.IsAbs(opts.WorkingDir) {
			return "", invalidf("working directory %q must be an absolute path", opts.WorkingDir)
		}
		return path.Clean(opts.WorkingDir), nil
	}
	if img.WorkingDir != "" {
		// Images built by old tools may record a relative directory; it
		// is relative to "/".
		return path.Join("/", img.WorkingDir), nil
	}
	return "/", nil
}

// mergeEnv builds the process environment as docker does: PATH (default),
// HOSTNAME and TERM first, then the image's variables, then the user's,
// a later value of a name replacing the earlier one in place; HOME from
// the user's passwd entry when nobody set it.
func mergeEnv(imageEnv []string, opts CreateOptions, home string) ([]string, error) {
	var env []string
	index := map[string]int{}
	set := func(kv string) {
		k, _, _ := strings.Cut(kv, "=")
		if i, ok := index[k]; ok {
			env[i] = kv
			return
		}
		index[k] = len(env)
		env = append(env, kv)
	}
	set("PATH=" + DefaultPath)
	if opts.Hostname != "" {
		set("HOSTNAME=" + opts.Hostname)
	}
	if opts.Tty {
		set("TERM=xterm")
	}
	for _, src := range []struct {
		what string
		list []string
	}{{"image", imageEnv}, {"option", opts.Env}} {
		for _, kv := range src.list {
			k, _, ok := strings.Cut(kv, "=")
			if !ok {
				if src.what == "image" {
					continue // docker ignores these in image configs too
				}
				return nil, invalidf("environment variable %q has no value: use NAME=value", kv)
			}
			if k == "" || strings.ContainsRune(k, 0) {
				return nil, invalidf("environment variable %q has an invalid name", kv)
			}
			set(kv)
		}
	}
	if _, ok := index["HOME"]; !ok && home != "" {
		set("HOME=" + home)
	}
	return env, nil
}

// normalizeCap turns "net_admin", "NET_ADMIN" or "cap_net_admin" into
// "CAP_NET_ADMIN" and checks that the capability exists.
func normalizeCap(name string) (string, error) {
	c := strings.ToUpper(strings.TrimSpace(name))
	if c == "ALL" {
		return c, nil
	}
	if !strings.HasPrefix(c, "CAP_") {
		c = "CAP_" + c
	}
	if !slices.Contains(knownCaps(), c) {
		return "", invalidf("unknown capability %q", name)
	}
	return c, nil
}

func knownCaps() []string {
	var out []string
	for _, c := range capability.ListKnown() {
		out = append(out, "CAP_"+strings.ToUpper(c.String()))
	}
	return out
}

// allCaps is every capability the running kernel supports (all known ones
// when that cannot be told) that berth itself may hand out: those in its
// own bounding set, so that --privileged works when berth runs in a
// restricted environment (a container without CAP_SYS_RESOURCE, say)
// instead of failing to apply capabilities it never had.
func allCaps() []string {
	list, err := capability.ListSupported()
	if err != nil {
		list = capability.ListKnown()
	}
	self, err := capability.NewPid2(0)
	if err == nil {
		err = self.Load()
	}
	var out []string
	for _, c := range list {
		if err == nil && !self.Get(capability.BOUNDING, c) {
			continue
		}
		out = append(out, "CAP_"+strings.ToUpper(c.String()))
	}
	return out
}

// capabilities applies CapAdd and CapDrop to the default set as docker
// does: adding ALL gives every capability except those dropped, dropping
// ALL keeps only those added, otherwise the dropped ones are removed from
// the default set and the added ones appended (adding wins).
func capabilities(opts CreateOptions) ([]string, error) {
	add, err := normalizeCaps(opts.CapAdd)
	if err != nil {
		return nil, err
	}
	drop, err := normalizeCaps(opts.CapDrop)
	if err != nil {
		return nil, err
	}
	var caps []string
	switch {
	case opts.Privileged:
		caps = allCaps()
	case slices.Contains(add, "ALL"):
		for _, c := range allCaps() {
			if !slices.Contains(drop, c) {
				caps = append(caps, c)
			}
		}
	case slices.Contains(drop, "ALL"):
		caps = add
	default:
		for _, c := range DefaultCapabilities {
			if !slices.Contains(drop, c) {
				caps = append(caps, c)
			}
		}
		caps = append(caps, add...)
	}
	caps = sortedUnique(caps)
	return caps, nil
}

func sortedUnique(list []string) []string {
	out := slices.Clone(list)
	if out == nil {
		out = []string{}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func normalizeCaps(names []string) ([]string, error) {
	var out []string
	for _, n := range names {
		c, err := normalizeCap(n)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}

var ulimitNames = map[string]bool{
	"as": true, "core": true, "cpu": true, "data": true, "fsize": true,
	"locks": true, "memlock": true, "msgqueue": true, "nice": true,
	"nofile": true, "nproc": true, "rss": true, "rtprio": true,
	"rttime": true, "sigpending": true, "stack": true,
}

func rlimits(list []Ulimit) ([]specs.POSIXRlimit, error) {
	var out []specs.POSIXRlimit
	seen := map[string]bool{}
	for _, u := range list {
		name := strings.ToLower(u.Name)
		if !ulimitNames[name] {
			return nil, invalidf("unknown ulimit %q", u.Name)
		}
		if seen[name] {
			return nil, invalidf("ulimit %q given twice", u.Name)
		}
		seen[name] = true
		soft, hard := rlimitValue(u.Soft), rlimitValue(u.Hard)
		if u.Soft < -1 || u.Hard < -1 || soft > hard {
			return nil, invalidf("ulimit %s: soft limit %d must be at most hard limit %d (-1 for unlimited)", name, u.Soft, u.Hard)
		}
		out = append(out, specs.POSIXRlimit{Type: "RLIMIT_" + strings.ToUpper(name), Soft: soft, Hard: hard})
	}
	return out, nil
}

func rlimitValue(v int64) uint64 {
	if v < 0 {
		return math.MaxUint64 // RLIM_INFINITY
	}
	return uint64(v)
}

// defaultMounts are Docker's: /proc, /dev and its pseudo-file systems,
// /sys and the cgroup tree (read-only unless privileged).
func defaultMounts(opts CreateOptions) []specs.Mount {
	shm := opts.ShmSize
	if shm == 0 {
		shm = DefaultShmSize
	}
	ro := []string{"ro"}
	if opts.Privileged {
		ro = nil
	}
	return []specs.Mount{
		{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
		{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}},
		{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: append([]string{"nosuid", "noexec", "nodev"}, ro...)},
		{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: append([]string{"nosuid", "noexec", "nodev"}, ro...)},
		{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777", "size=" + strconv.FormatInt(shm, 10)}},
	}
}

func mountList(opts CreateOptions) ([]specs.Mount, error) {
	if opts.ShmSize < 0 {
		return nil, invalidf("shm size %d must not be negative", opts.ShmSize)
	}
	var user []specs.Mount
	targets := map[string]bool{}
	for _, m := range opts.Mounts {
		if !path.IsAbs(m.Target) {
			return nil, invalidf("mount target %q must be an absolute path", m.Target)
		}
		target := path.Clean(m.Target)
		if target == "/" {
			return nil, invalidf("cannot mount over the container's root directory")
		}
		if targets[target] {
			return nil, invalidf("duplicate mount point %s", target)
		}
		targets[target] = true
		var sm specs.Mount
		switch m.Type {
		case MountTypeBind:
			if !path.IsAbs(m.Source) {
				return nil, invalidf("bind mount source %q must be an absolute host path", m.Source)
			}
			sm = specs.Mount{Destination: target, Type: "bind", Source: path.Clean(m.Source), Options: []string{"rbind"}}
			if slices.Contains(m.Options, "norbind") {
				sm.Options = []string{"bind"}
			}
			if !slices.ContainsFunc(m.Options, isPropagation) {
				sm.Options = append(sm.Options, "rprivate")
			}
		case MountTypeTmpfs:
			sm = specs.Mount{Destination: target, Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "nodev", "noexec"}}
		default:
			return nil, invalidf("mount on %s: unknown mount type %q (want %q or %q)", target, m.Type, MountTypeBind, MountTypeTmpfs)
		}
		for _, o := range m.Options {
			if o == "norbind" {
				continue
			}
			if o == "" || strings.Contains(o, ",") {
				return nil, invalidf("mount on %s: bad option %q", target, o)
			}
			sm.Options = append(sm.Options, o)
		}
		if m.ReadOnly {
			sm.Options = append(sm.Options, "ro")
		}
		user = append(user, sm)
	}
	var out []specs.Mount
	for _, m := range defaultMounts(opts) {
		if !targets[m.Destination] {
			out = append(out, m)
		}
	}
	for _, f := range []struct{ src, dst string }{
		{opts.HostsPath, "/etc/hosts"},
		{opts.ResolvConfPath, "/etc/resolv.conf"},
		{opts.HostnamePath, "/etc/hostname"},
	} {
		if f.src == "" || targets[f.dst] {
			continue
		}
		if !path.IsAbs(f.src) {
			return nil, invalidf("%s source %q must be an absolute host path", f.dst, f.src)
		}
		o := []string{"rbind", "rprivate"}
		if opts.ReadOnly {
			o = append(o, "ro")
		}
		out = append(out, specs.Mount{Destination: f.dst, Type: "bind", Source: f.src, Options: o})
	}
	if opts.Init {
		out = append(out, specs.Mount{Destination: InitPathInContainer, Type: "bind", Source: opts.InitPath, Options: []string{"bind", "rprivate", "ro"}})
	}
	// Parents before children, so that a mount inside another one is not
	// hidden by it; the order given is kept otherwise.
	slices.SortStableFunc(user, func(a, b specs.Mount) int {
		return cmp.Compare(depth(a.Destination), depth(b.Destination))
	})
	return append(out, user...), nil
}

func depth(p string) int { return strings.Count(path.Clean(p), "/") }

func isPropagation(o string) bool {
	switch o {
	case "shared", "rshared", "slave", "rslave", "private", "rprivate":
		return true
	}
	return false
}

func namespaces(opts CreateOptions) []specs.LinuxNamespace {
	ns := []specs.LinuxNamespace{
		{Type: specs.PIDNamespace},
		{Type: specs.MountNamespace},
		{Type: specs.IPCNamespace},
		{Type: specs.UTSNamespace},
	}
	if !opts.HostNetwork {
		ns = append(ns, specs.LinuxNamespace{Type: specs.NetworkNamespace, Path: opts.NetNSPath})
	}
	return ns
}

func resources(opts CreateOptions) (*specs.LinuxResources, error) {
	r := &specs.LinuxResources{
		Devices: []specs.LinuxDeviceCgroup{{Allow: opts.Privileged, Access: "rwm"}},
	}
	mem, err := memory(opts)
	if err != nil {
		return nil, err
	}
	r.Memory = mem
	cpu, err := cpu(opts)
	if err != nil {
		return nil, err
	}
	r.CPU = cpu
	switch {
	case opts.PidsLimit > 0:
		r.Pids = &specs.LinuxPids{Limit: ptr(opts.PidsLimit)}
	case opts.PidsLimit < 0:
		r.Pids = &specs.LinuxPids{Limit: ptr(int64(-1))}
	}
	return r, nil
}

func ptr[T any](v T) *T { return &v }

func memory(opts CreateOptions) (*specs.LinuxMemory, error) {
	m, res, swap := opts.Memory, opts.MemoryReservation, opts.MemorySwap
	switch {
	case m < 0:
		return nil, invalidf("memory limit %d must not be negative", m)
	case m > 0 && m < minMemory:
		return nil, invalidf("memory limit %d is below the minimum of 6MB", m)
	case res < 0:
		return nil, invalidf("memory reservation %d must not be negative", res)
	case m > 0 && res > m:
		return nil, invalidf("memory reservation %d must be below the memory limit %d", res, m)
	case swap < -1:
		return nil, invalidf("memory+swap limit %d must be -1 (unlimited) or positive", swap)
	case swap != 0 && m == 0:
		return nil, invalidf("a memory+swap limit needs a memory limit too")
	case swap > 0 && swap < m:
		return nil, invalidf("memory+swap limit %d must not be smaller than the memory limit %d", swap, m)
	}
	if m == 0 && res == 0 {
		return nil, nil
	}
	out := &specs.LinuxMemory{}
	if m > 0 {
		out.Limit = ptr(m)
		if swap == 0 {
			swap = 2 * m
		}
		out.Swap = ptr(swap)
	}
	if res > 0 {
		out.Reservation = ptr(res)
	}
	return out, nil
}

func cpu(opts CreateOptions) (*specs.LinuxCPU, error) {
	if opts.CPUs < 0 || math.IsNaN(opts.CPUs) || math.IsInf(opts.CPUs, 0) {
		return nil, invalidf("CPUs %v must be a positive number", opts.CPUs)
	}
	if n := goruntime.NumCPU(); opts.CPUs > float64(n) {
		return nil, invalidf("CPUs %v: the range of CPUs is from 0.01 to %d.00, as there are only %d CPUs available", opts.CPUs, n, n)
	}
	if opts.CPUShares < 0 {
		return nil, invalidf("CPU shares %d must not be negative", opts.CPUShares)
	}
	c := &specs.LinuxCPU{Cpus: opts.CpusetCpus, Mems: opts.CpusetMems}
	if opts.CPUs > 0 {
		quota := int64(opts.CPUs * cpuPeriod)
		if quota < 1000 {
			return nil, invalidf("CPUs %v is below the minimum of 0.01", opts.CPUs)
		}
		c.Quota = ptr(quota)
		c.Period = ptr(uint64(cpuPeriod))
	}
	if opts.CPUShares > 0 {
		c.Shares = ptr(uint64(opts.CPUShares))
	}
	for _, set := range []string{opts.CpusetCpus, opts.CpusetMems} {
		if err := checkCPUSet(set); err != nil {
			return nil, err
		}
	}
	if *c == (specs.LinuxCPU{}) {
		return nil, nil
	}
	return c, nil
}

// checkCPUSet validates a list such as "0-2,4".
func checkCPUSet(s string) error {
	if s == "" {
		return nil
	}
	for _, part := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, err1 := strconv.ParseUint(lo, 10, 16)
		b, err2 := a, error(nil)
		if isRange {
			b, err2 = strconv.ParseUint(hi, 10, 16)
		}
		if err1 != nil || err2 != nil || b < a {
			return invalidf("cpuset %q is not a list of numbers and ranges such as \"0-2,4\"", s)
		}
	}
	return nil
}

// ExecOptions describe a process to run in a running container, as
// docker exec does.
type ExecOptions struct {
	// Cmd is the command line; it is required.
	Cmd []string
	// Env entries ("KEY=value") are applied after the container's.
	Env []string
	// User is "user[:group]" resolved against the container's files;
	// empty means the container's user.
	User string
	// WorkingDir must be absolute; empty means the container's.
	WorkingDir string
	// Privileged gives the process every capability.
	Privileged bool
	// Tty allocates a terminal (and sets TERM=xterm); ConsoleHeight and
	// ConsoleWidth, when set, are its initial size.
	Tty                         bool
	ConsoleHeight, ConsoleWidth uint
}

// ExecProcess builds the process of an exec from the container's spec
// (as made by CreateSpec; Root.Path must be the mounted root file system
// when opts.User is set): the container's environment with opts.Env
// applied, its user, working directory, capabilities, rlimits and
// no_new_privs unless opts say otherwise. With another user, HOME becomes
// that user's home unless opts.Env sets it.
func ExecProcess(spec *specs.Spec, opts ExecOptions) (*specs.Process, error) {
	if spec == nil || spec.Process == nil || spec.Root == nil {
		return nil, invalidf("exec: the container spec has no process or root")
	}
	if len(opts.Cmd) == 0 || opts.Cmd[0] == "" {
		return nil, invalidf("exec: no command specified")
	}
	base := spec.Process
	p := &specs.Process{
		Terminal:        opts.Tty,
		User:            base.User,
		Args:            slices.Clone(opts.Cmd),
		Cwd:             base.Cwd,
		Rlimits:         slices.Clone(base.Rlimits),
		NoNewPrivileges: base.NoNewPrivileges,
	}
	p.User.AdditionalGids = slices.Clone(base.User.AdditionalGids)
	if opts.WorkingDir != "" {
		if !path.IsAbs(opts.WorkingDir) {
			return nil, invalidf("exec: working directory %q must be an absolute path", opts.WorkingDir)
		}
		p.Cwd = path.Clean(opts.WorkingDir)
	}
	home := ""
	if opts.User != "" {
		u, err := resolveUser(spec.Root.Path, opts.User, nil)
		if err != nil {
			return nil, fmt.Errorf("exec: %w", err)
		}
		p.User = specs.User{UID: uint32(u.uid), GID: uint32(u.gid), AdditionalGids: u.sgids}
		home = u.home
	}
	env := slices.Clone(base.Env)
	extra := slices.Clone(opts.Env)
	if opts.Tty {
		extra = append([]string{"TERM=xterm"}, extra...)
	}
	if home != "" && !slices.ContainsFunc(opts.Env, func(kv string) bool { return strings.HasPrefix(kv, "HOME=") }) {
		extra = append(extra, "HOME="+home)
	}
	for _, kv := range extra {
		k, _, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, invalidf("exec: environment variable %q must be NAME=value", kv)
		}
		if i := slices.IndexFunc(env, func(e string) bool { return strings.HasPrefix(e, k+"=") }); i >= 0 {
			env[i] = kv
		} else {
			env = append(env, kv)
		}
	}
	p.Env = env
	if opts.Tty && opts.ConsoleHeight > 0 && opts.ConsoleWidth > 0 {
		p.ConsoleSize = &specs.Box{Height: opts.ConsoleHeight, Width: opts.ConsoleWidth}
	}
	switch {
	case opts.Privileged:
		all := allCaps()
		p.Capabilities = &specs.LinuxCapabilities{Bounding: all, Effective: all, Permitted: all}
	case base.Capabilities != nil:
		c := *base.Capabilities
		p.Capabilities = &specs.LinuxCapabilities{
			Bounding:    slices.Clone(c.Bounding),
			Effective:   slices.Clone(c.Effective),
			Permitted:   slices.Clone(c.Permitted),
			Inheritable: slices.Clone(c.Inheritable),
			Ambient:     slices.Clone(c.Ambient),
		}
	}
	return p, nil
}

// SeccompUnconfined is the CreateOptions.Seccomp value that applies no
// syscall filter.
const SeccompUnconfined = "unconfined"

// seccompFilter resolves opts.Seccomp for a process with bounding
// capabilities caps.
func seccompFilter(opts CreateOptions, caps []string) (*specs.LinuxSeccomp, error) {
	if opts.Privileged || opts.Seccomp == SeccompUnconfined {
		return nil, nil
	}
	profile := seccomp.Default()
	if opts.Seccomp != "" {
		if !SeccompSupported {
			return nil, fmt.Errorf("seccomp profile given but this berth was built without seccomp support (build tag seccomp): %w", errdefs.ErrNotImplemented)
		}
		p, err := seccomp.Parse([]byte(opts.Seccomp))
		if err != nil {
			return nil, err
		}
		profile = p
	} else if !SeccompSupported {
		return nil, nil
	}
	f, err := profile.Spec(seccomp.Target{Caps: caps, Kernel: kernelRelease(), Unsupported: unsupportedArches()})
	if err != nil {
		return nil, fmt.Errorf("seccomp: %w", err)
	}
	return f, nil
}
