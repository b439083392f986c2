package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path"
	"strings"
	"syscall"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"golang.org/x/term"

	"github.com/berthsh/berth/pkg/errdefs"
	"github.com/berthsh/berth/pkg/reference"
	"github.com/berthsh/berth/pkg/registry"
	"github.com/berthsh/berth/pkg/runtime"
	"github.com/berthsh/berth/pkg/runtime/logs"
	"github.com/berthsh/berth/pkg/runtime/seccomp"
	"github.com/berthsh/berth/pkg/store"
)

// createFlags are the flags of run and create.
type createFlags struct {
	name, platform, pull                          string
	env, envFiles                                 []string
	publish                                       []string
	publishAll                                    bool
	volumes, mounts, tmpfs                        []string
	workdir, user, entrypoint, hostname           string
	domainname                                    string
	networks, aliases                             []string
	interactive, tty, init, readOnly, privileged  bool
	capAdd, capDrop, securityOpts, groupAdd       []string
	restart                                       string
	memory, memorySwap, memoryReservation, shm    string
	cpus                                          string
	cpuShares                                     int64
	cpusetCpus, cpusetMems                        string
	pidsLimit                                     int64
	oomScoreAdj                                   int
	ulimits, sysctls                              []string
	stopSignal                                    string
	stopTimeout                                   int
	labels, labelFiles                            []string
	logDriver                                     string
	logOpts                                       []string
	addHosts, dns                                 []string
	healthCmd                                     string
	healthInterval, healthTimeout                 time.Duration
	healthStartPeriod, healthStartInterval        time.Duration
	healthRetries                                 int
	noHealthcheck                                 bool
	healthOnFailure                               string
	autoRemove                                    bool
	quiet                                         bool
	cidfile                                       string
	expose                                        []string
	lookupEnv                                     func(string) (string, bool)
	changed                                       func(string) bool
	entrypointSet, stopTimeoutSet, pidsLimitSet   bool
	healthRetriesSet, memorySwapSet, cpuSharesSet bool
}

func addCreateFlags(fs *pflag.FlagSet, f *createFlags) {
	fs.SetInterspersed(false)
	fs.StringVar(&f.name, "name", "", "assign a name to the container")
	fs.StringVar(&f.platform, "platform", os.Getenv("DOCKER_DEFAULT_PLATFORM"), "set platform if the image is pulled (os/arch[/variant])")
	fs.StringVar(&f.pull, "pull", "missing", `pull image before running ("always", "missing", "never")`)
	fs.BoolVarP(&f.quiet, "quiet", "q", false, "suppress the pull output")
	fs.StringArrayVarP(&f.env, "env", "e", nil, "set environment variables (KEY=VALUE, or KEY to copy it from this environment)")
	fs.StringArrayVar(&f.envFiles, "env-file", nil, "read in a file of environment variables")
	fs.StringArrayVarP(&f.publish, "publish", "p", nil, "publish a container's port(s) to the host ([IP:][HOST_PORT:]CONTAINER_PORT[/PROTO])")
	fs.BoolVarP(&f.publishAll, "publish-all", "P", false, "publish all exposed ports to random ports")
	fs.StringArrayVar(&f.expose, "expose", nil, "expose a port or a range of ports (documentation only)")
	fs.StringArrayVarP(&f.volumes, "volume", "v", nil, "bind mount a volume ([SRC:]DST[:OPTS])")
	fs.StringArrayVar(&f.mounts, "mount", nil, "attach a filesystem mount to the container (type=bind|volume|tmpfs,...)")
	fs.StringArrayVar(&f.tmpfs, "tmpfs", nil, "mount a tmpfs directory (PATH[:OPTIONS])")
	fs.StringVarP(&f.workdir, "workdir", "w", "", "working directory inside the container")
	fs.StringVarP(&f.user, "user", "u", "", "username or UID (format: <name|uid>[:<group|gid>])")
	fs.StringArrayVar(&f.groupAdd, "group-add", nil, "add additional groups to join")
	fs.StringVar(&f.entrypoint, "entrypoint", "", "overwrite the default ENTRYPOINT of the image")
	fs.StringVarP(&f.hostname, "hostname", "h", "", "container host name")
	fs.Bool("help", false, "print usage") // -h is --hostname, as in docker
	fs.StringVar(&f.domainname, "domainname", "", "container NIS domain name")
	fs.StringArrayVar(&f.networks, "network", nil, "connect a container to a network (bridge, host, none or a network name)")
	fs.StringArrayVar(&f.networks, "net", nil, "connect a container to a network")
	_ = fs.MarkHidden("net")
	fs.StringArrayVar(&f.aliases, "network-alias", nil, "add network-scoped alias for the container")
	fs.StringArrayVar(&f.aliases, "net-alias", nil, "add network-scoped alias for the container")
	_ = fs.MarkHidden("net-alias")
	fs.BoolVarP(&f.interactive, "interactive", "i", false, "keep STDIN open even if not attached")
	fs.BoolVarP(&f.tty, "tty", "t", false, "allocate a pseudo-TTY")
	fs.BoolVar(&f.init, "init", false, "run an init inside the container that forwards signals and reaps processes")
	fs.BoolVar(&f.readOnly, "read-only", false, "mount the container's root filesystem as read only")
	fs.StringArrayVar(&f.capAdd, "cap-add", nil, "add Linux capabilities")
	fs.StringArrayVar(&f.capDrop, "cap-drop", nil, "drop Linux capabilities")
	fs.BoolVar(&f.privileged, "privileged", false, "give extended privileges to this container")
	fs.StringArrayVar(&f.securityOpts, "security-opt", nil, "security options (seccomp=unconfined|PROFILE.json, no-new-privileges)")
	fs.StringVar(&f.restart, "restart", "no", "restart policy to apply when a container exits")
	fs.BoolVar(&f.autoRemove, "rm", false, "automatically remove the container when it exits")
	fs.StringVarP(&f.memory, "memory", "m", "", "memory limit")
	fs.StringVar(&f.memorySwap, "memory-swap", "", "swap limit equal to memory plus swap: '-1' to enable unlimited swap")
	fs.StringVar(&f.memoryReservation, "memory-reservation", "", "memory soft limit")
	fs.StringVar(&f.shm, "shm-size", "", "size of /dev/shm")
	fs.StringVar(&f.cpus, "cpus", "", "number of CPUs")
	fs.Int64VarP(&f.cpuShares, "cpu-shares", "c", 0, "CPU shares (relative weight)")
	fs.StringVar(&f.cpusetCpus, "cpuset-cpus", "", "CPUs in which to allow execution (0-3, 0,1)")
	fs.StringVar(&f.cpusetMems, "cpuset-mems", "", "MEMs in which to allow execution (0-3, 0,1)")
	fs.Int64Var(&f.pidsLimit, "pids-limit", 0, "tune container pids limit (set -1 for unlimited)")
	fs.IntVar(&f.oomScoreAdj, "oom-score-adj", 0, "tune host's OOM preferences (-1000 to 1000)")
	fs.StringArrayVar(&f.ulimits, "ulimit", nil, "ulimit options (nofile=1024:2048)")
	fs.StringArrayVar(&f.sysctls, "sysctl", nil, "sysctl options (KEY=VALUE)")
	fs.StringVar(&f.stopSignal, "stop-signal", "", "signal to stop the container")
	fs.IntVar(&f.stopTimeout, "stop-timeout", 0, "timeout (in seconds) to stop a container")
	fs.StringArrayVarP(&f.labels, "label", "l", nil, "set meta data on a container")
	fs.StringArrayVar(&f.labelFiles, "label-file", nil, "read in a line delimited file of labels")
	fs.StringVar(&f.logDriver, "log-driver", "", "logging driver for the container (json-file only)")
	fs.StringArrayVar(&f.logOpts, "log-opt", nil, "log driver options (max-size, max-file, compress)")
	fs.StringArrayVar(&f.addHosts, "add-host", nil, "add a custom host-to-IP mapping (host:ip)")
	fs.StringArrayVar(&f.dns, "dns", nil, "set custom DNS servers")
	fs.StringVar(&f.healthCmd, "health-cmd", "", "command to run to check health")
	fs.DurationVar(&f.healthInterval, "health-interval", 0, "time between running the check (ms|s|m|h)")
	fs.DurationVar(&f.healthTimeout, "health-timeout", 0, "maximum time to allow one check to run (ms|s|m|h)")
	fs.DurationVar(&f.healthStartPeriod, "health-start-period", 0, "start period for the container to initialize before starting health-retries countdown (ms|s|m|h)")
	fs.DurationVar(&f.healthStartInterval, "health-start-interval", 0, "time between running the check during the start period (ms|s|m|h)")
	fs.IntVar(&f.healthRetries, "health-retries", 0, "consecutive failures needed to report unhealthy")
	fs.BoolVar(&f.noHealthcheck, "no-healthcheck", false, "disable any container-specified HEALTHCHECK")
	fs.StringVar(&f.healthOnFailure, "health-on-failure", "", "action when the container becomes unhealthy: none, restart, stop or kill")
	fs.StringVar(&f.cidfile, "cidfile", "", "write the container ID to the file")
}

// healthFlags are the --health-* flags besides --no-healthcheck.
var healthFlags = []string{"health-cmd", "health-interval", "health-timeout", "health-start-period", "health-start-interval", "health-retries", "health-on-failure"}

// config maps the flags and the IMAGE [COMMAND [ARG...]] arguments to a
// container config. It only parses: nothing is created.
func (f *createFlags) config(args []string) (runtime.ContainerConfig, error) {
	changed := f.changed
	if changed == nil {
		changed = func(string) bool { return false }
	}
	var cfg runtime.ContainerConfig
	if len(args) == 0 {
		return cfg, usageErrorf("an image is required")
	}
	if _, err := reference.Parse(args[0]); err != nil {
		return cfg, usageErrorf("invalid reference format: %q: %v", args[0], err)
	}
	cfg.Image = args[0]
	cfg.Name = strings.TrimPrefix(f.name, "/")
	co := &cfg.Create
	co.Cmd = append([]string(nil), args[1:]...)
	if changed("entrypoint") || f.entrypointSet {
		co.EntrypointSet = true
		if f.entrypoint != "" {
			co.Entrypoint = []string{f.entrypoint}
		}
	}
	bad := func(err error) error { return usageError{err: err} }

	// Environment: files first, then -e, as docker.
	for _, file := range f.envFiles {
		env, err := runtime.ParseEnvFile(file, f.lookupEnv)
		if err != nil {
			return cfg, bad(err)
		}
		co.Env = append(co.Env, env...)
	}
	env, err := runtime.ParseEnv(f.env, f.lookupEnv)
	if err != nil {
		return cfg, bad(err)
	}
	co.Env = append(co.Env, env...)

	if f.workdir != "" && !path.IsAbs(f.workdir) {
		return cfg, usageErrorf("the working directory %q is invalid, it needs to be an absolute path", f.workdir)
	}
	co.WorkingDir = f.workdir
	co.User = f.user
	co.GroupAdd = f.groupAdd
	co.Hostname, co.Domainname = f.hostname, f.domainname
	co.Tty = f.tty
	cfg.Interactive = f.interactive
	co.Init = f.init
	co.ReadOnly = f.readOnly
	co.Privileged = f.privileged
	co.CapAdd, co.CapDrop = f.capAdd, f.capDrop
	for _, o := range f.securityOpts {
		k, v, hasV := strings.Cut(o, ":")
		if !hasV {
			k, v, hasV = strings.Cut(o, "=")
		}
		if k == "seccomp" {
			if err := seccompOpt(co, o, v); err != nil {
				return cfg, err
			}
			continue
		}
		if k != "no-new-privileges" {
			return cfg, usageErrorf("invalid --security-opt %q: berth supports seccomp=unconfined|PROFILE.json and no-new-privileges[:true|false]", o)
		}
		switch {
		case !hasV || v == "true":
			co.NoNewPrivileges = true
		case v == "false":
			co.NoNewPrivileges = false
		default:
			return cfg, usageErrorf("invalid --security-opt %q: want no-new-privileges[:true|false]", o)
		}
	}

	// Resources.
	size := func(flag, v string, parse func(string) (int64, error)) (int64, error) {
		if v == "" {
			return 0, nil
		}
		n, err := parse(v)
		if err != nil {
			return 0, usageErrorf("invalid --%s: %v", flag, message(err))
		}
		return n, nil
	}
	if co.Memory, err = size("memory", f.memory, runtime.ParseMemory); err != nil {
		return cfg, err
	}
	if co.MemorySwap, err = size("memory-swap", f.memorySwap, runtime.ParseMemorySwap); err != nil {
		return cfg, err
	}
	if co.MemoryReservation, err = size("memory-reservation", f.memoryReservation, runtime.ParseMemory); err != nil {
		return cfg, err
	}
	if co.ShmSize, err = size("shm-size", f.shm, runtime.ParseMemory); err != nil {
		return cfg, err
	}
	if co.MemorySwap > 0 && co.Memory == 0 {
		return cfg, usageErrorf("you should always set the memory limit when using the memory swap limit")
	}
	if co.MemorySwap > 0 && co.MemorySwap < co.Memory {
		return cfg, usageErrorf("minimum memory swap limit should be larger than the memory limit, see usage")
	}
	if f.cpus != "" {
		if co.CPUs, err = runtime.ParseCPUs(f.cpus); err != nil {
			return cfg, bad(err)
		}
	}
	if f.cpuShares < 0 {
		return cfg, usageErrorf("invalid --cpu-shares %d: must not be negative", f.cpuShares)
	}
	co.CPUShares = f.cpuShares
	co.CpusetCpus, co.CpusetMems = f.cpusetCpus, f.cpusetMems
	co.PidsLimit = f.pidsLimit
	if changed("pids-limit") && f.pidsLimit == 0 {
		co.PidsLimit = -1 // docker: 0 means unlimited too
	}
	if f.oomScoreAdj < -1000 || f.oomScoreAdj > 1000 {
		return cfg, usageErrorf("invalid --oom-score-adj %d: must be between -1000 and 1000", f.oomScoreAdj)
	}
	co.OOMScoreAdj = f.oomScoreAdj
	for _, u := range f.ulimits {
		ul, err := runtime.ParseUlimit(u)
		if err != nil {
			return cfg, bad(err)
		}
		co.Ulimits = append(co.Ulimits, ul)
	}
	for _, s := range f.sysctls {
		k, v, ok := strings.Cut(s, "=")
		if !ok || k == "" {
			return cfg, usageErrorf("invalid --sysctl %q: want KEY=VALUE", s)
		}
		if co.Sysctls == nil {
			co.Sysctls = map[string]string{}
		}
		co.Sysctls[k] = v
	}

	// Mounts and ports.
	if cfg.Mounts, err = runtime.ParseMountSpecs(f.volumes, f.mounts, f.tmpfs); err != nil {
		return cfg, bad(err)
	}
	if cfg.Ports, err = runtime.ParsePortSpecs(f.publish); err != nil {
		return cfg, bad(err)
	}
	cfg.PublishAll = f.publishAll
	for _, e := range f.expose {
		if _, err := runtime.ParsePortSpecs([]string{e}); err != nil || strings.Contains(e, ":") {
			return cfg, usageErrorf("invalid --expose %q: want PORT[/PROTO] or a range", e)
		}
	}

	// Network.
	cfg.NetworkMode = "bridge"
	if len(f.networks) > 0 {
		cfg.NetworkMode = f.networks[0]
	}
	for _, n := range f.networks {
		if n == "" {
			return cfg, usageErrorf("invalid --network: the name must not be empty")
		}
		if (n == "host" || n == "none" || strings.HasPrefix(n, "container:")) && len(f.networks) > 1 {
			return cfg, usageErrorf("conflicting options: --network %s cannot be combined with other networks", n)
		}
	}
	if cfg.NetworkMode != "host" && cfg.NetworkMode != "none" && !strings.HasPrefix(cfg.NetworkMode, "container:") {
		cfg.Networks = dedupe(append([]string{cfg.NetworkMode}, f.networks...))
	}
	if len(f.aliases) > 0 {
		switch cfg.NetworkMode {
		case "bridge", "host", "none", "default":
			return cfg, usageErrorf("network-scoped aliases are only supported for user-defined networks")
		}
		cfg.Aliases = f.aliases
	}
	if cfg.NetworkMode == "host" && f.hostname != "" {
		return cfg, usageErrorf("conflicting options: --hostname and --network host")
	}
	for _, h := range f.addHosts {
		eh, err := runtime.ParseExtraHost(h)
		if err != nil {
			return cfg, bad(err)
		}
		cfg.ExtraHosts = append(cfg.ExtraHosts, eh.Name+":"+eh.IP)
	}
	for _, d := range f.dns {
		if net.ParseIP(d) == nil {
			return cfg, usageErrorf("invalid --dns %q: not an IP address", d)
		}
		cfg.DNS = append(cfg.DNS, d)
	}

	// Lifecycle.
	if cfg.RestartPolicy, err = runtime.ParseRestartPolicy(f.restart); err != nil {
		return cfg, bad(err)
	}
	cfg.AutoRemove = f.autoRemove
	if cfg.AutoRemove && cfg.RestartPolicy.Name != runtime.RestartNo {
		return cfg, usageErrorf("conflicting options: --restart and --rm")
	}
	if f.stopSignal != "" {
		sig, err := runtime.ParseSignal(f.stopSignal)
		if err != nil {
			return cfg, bad(err)
		}
		cfg.StopSignal = runtime.SignalName(sig)
	}
	if changed("stop-timeout") || f.stopTimeoutSet {
		t := f.stopTimeout
		cfg.StopTimeout = &t
	}

	// Metadata and logs.
	var labelList []string
	for _, file := range f.labelFiles {
		m, err := runtime.ParseLabelFile(file)
		if err != nil {
			return cfg, bad(err)
		}
		for k, v := range m {
			labelList = append(labelList, k+"="+v)
		}
	}
	if cfg.Labels, err = runtime.ParseLabels(append(labelList, f.labels...)); err != nil {
		return cfg, bad(err)
	}
	if f.logDriver != "" && f.logDriver != "json-file" {
		return cfg, usageErrorf("unsupported --log-driver %q: berth writes json-file logs only", f.logDriver)
	}
	if len(f.logOpts) > 0 {
		cfg.LogOpts = map[string]string{}
		for _, o := range f.logOpts {
			k, v, ok := strings.Cut(o, "=")
			if !ok || k == "" {
				return cfg, usageErrorf("invalid --log-opt %q: want KEY=VALUE", o)
			}
			cfg.LogOpts[k] = v
		}
		if cfg.Log, err = logs.ParseOptions(cfg.LogOpts); err != nil {
			return cfg, bad(err)
		}
	}

	// Health check.
	anyHealth := false
	for _, name := range healthFlags {
		if changed(name) {
			anyHealth = true
		}
	}
	anyHealth = anyHealth || f.healthCmd != "" || f.healthInterval != 0 || f.healthTimeout != 0 ||
		f.healthStartPeriod != 0 || f.healthStartInterval != 0 || f.healthRetries != 0 || f.healthOnFailure != ""
	if f.noHealthcheck {
		if anyHealth {
			return cfg, usageErrorf("--no-healthcheck conflicts with --health-* options")
		}
		cfg.Healthcheck = &runtime.HealthConfig{Test: []string{"NONE"}}
	} else if anyHealth {
		for name, d := range map[string]time.Duration{"health-interval": f.healthInterval, "health-timeout": f.healthTimeout,
			"health-start-period": f.healthStartPeriod, "health-start-interval": f.healthStartInterval} {
			if d < 0 {
				return cfg, usageErrorf("--%s cannot be negative", name)
			}
		}
		if f.healthRetries < 0 {
			return cfg, usageErrorf("--health-retries cannot be negative")
		}
		switch f.healthOnFailure {
		case "", "none", "restart", "stop", "kill":
		default:
			return cfg, usageErrorf("invalid --health-on-failure %q: want none, restart, stop or kill", f.healthOnFailure)
		}
		hc := &runtime.HealthConfig{
			Interval: f.healthInterval, Timeout: f.healthTimeout, StartPeriod: f.healthStartPeriod,
			StartInterval: f.healthStartInterval, Retries: f.healthRetries, OnFailure: f.healthOnFailure,
		}
		if f.healthCmd != "" {
			hc.Test = []string{"CMD-SHELL", f.healthCmd}
		}
		cfg.Healthcheck = hc
	}
	return cfg, nil
}

func dedupe(list []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range list {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

// runError is a failure of run or exec with docker's exit code: 125 when
// berth itself failed, 126 when the command could not be invoked, 127
// when it was not found.
type runError struct {
	err  error
	code int
}

func (e runError) Error() string { return e.err.Error() }
func (e runError) Unwrap() error { return e.err }

// berthFailed marks err as berth's own failure of run (exit 125).
func berthFailed(err error) error {
	var re runError
	var ec exitCodeError
	if err == nil || errors.As(err, &re) || errors.As(err, &ec) || errors.Is(err, context.Canceled) {
		return err
	}
	return runError{err: err, code: exitUsage}
}

// startFailed maps a failure to start a container's (or exec's) process
// to docker's exit codes.
func startFailed(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, errdefs.ErrNotFound):
		return runError{err: err, code: 127}
	case errors.Is(err, errdefs.ErrPermission):
		return runError{err: err, code: 126}
	}
	return berthFailed(err)
}

func newCreateCmd(g *globals) *cobra.Command {
	var f createFlags
	cmd := &cobra.Command{
		Use:   "create [OPTIONS] IMAGE [COMMAND] [ARG...]",
		Short: "Create a new container",
		Long:  "Create a container from an image without starting it, and print its ID.",
		Args:  argsBetween(1, -1),
		RunE: func(cmd *cobra.Command, args []string) error {
			f.changed = cmd.Flags().Changed
			c, _, _, err := createContainer(cmd.Context(), g, &f, args, false)
			if err != nil {
				return err
			}
			fmt.Fprintln(g.Out, c.Config.ID)
			return nil
		},
	}
	addCreateFlags(cmd.Flags(), &f)
	return cmd
}

func newRunCmd(g *globals) *cobra.Command {
	var f createFlags
	var detach, sigProxy bool
	var detachKeys string
	var attach []string
	cmd := &cobra.Command{
		Use:   "run [OPTIONS] IMAGE [COMMAND] [ARG...]",
		Short: "Create and run a new container from an image",
		Long: `Create and start a container. In the foreground (without -d) its output is
streamed, signals are forwarded to it, and berth exits with its exit code;
125 means berth itself failed, 126 that the command could not be invoked,
127 that it was not found. An image not in the local store is pulled first.`,
		Example: `  berth run --rm python:3.12-slim python -c 'print("hi")'
  berth run -d --name web -p 8080:8000 myapp
  berth run -it --rm -v "$PWD":/app -w /app python:3.12 bash`,
		Args: argsBetween(1, -1),
		RunE: func(cmd *cobra.Command, args []string) error {
			f.changed = cmd.Flags().Changed
			if detach && len(attach) > 0 {
				return berthFailed(usageErrorf("conflicting options: cannot specify both --attach and --detach"))
			}
			if f.tty && f.interactive && !detach {
				if _, ok := terminalFdOf(g.In); !ok {
					return berthFailed(usageErrorf("the input device is not a TTY"))
				}
			}
			ctx := cmd.Context()
			c, m, st, err := createContainer(ctx, g, &f, args, true)
			if err != nil {
				return err
			}
			defer m.Close()
			if detach {
				if err := m.Start(ctx, c.Config.ID); err != nil {
					// A run that could not start leaves nothing behind
					// (docker keeps a "Created" container; berth does not).
					_ = m.Remove(context.WithoutCancel(ctx), c.Config.ID, runtime.RemoveOptions{Force: true, Volumes: true})
					return startFailed(err)
				}
				fmt.Fprintln(g.Out, c.Config.ID)
				return nil
			}
			return runAttached(ctx, g, m, st, c, attachOptions{stdin: f.interactive, detachKeys: detachKeys, sigProxy: sigProxy, start: true, run: true})
		},
	}
	fl := cmd.Flags()
	addCreateFlags(fl, &f)
	fl.BoolVarP(&detach, "detach", "d", false, "run container in background and print container ID")
	fl.BoolVar(&sigProxy, "sig-proxy", true, "proxy received signals to the process")
	fl.StringVar(&detachKeys, "detach-keys", "", "override the key sequence for detaching a container")
	fl.StringArrayVarP(&attach, "attach", "a", nil, "attach to STDIN, STDOUT or STDERR (accepted; all streams are attached)")
	return cmd
}

// createContainer parses the flags, makes sure the image is there
// (pulling it as --pull says) and creates the container. Errors are
// berth's own (exit 125 for run). With prestart (run), the container's
// supervisor starts meanwhile (Manager.PrestartSupervisor); the caller
// closes the manager.
func createContainer(ctx context.Context, g *globals, f *createFlags, args []string, prestart bool) (_ runtime.Container, _ *runtime.Manager, _ *store.Store, err error) {
	cfg, err := f.config(args)
	if err != nil {
		return runtime.Container{}, nil, nil, berthFailed(err)
	}
	platform, err := parsePlatformFlag(f.platform)
	if err != nil {
		return runtime.Container{}, nil, nil, berthFailed(err)
	}
	m, st, err := g.openManager(ctx)
	if err != nil {
		return runtime.Container{}, nil, nil, berthFailed(err)
	}
	if prestart {
		// Best effort: Start spawns one itself otherwise.
		_ = m.PrestartSupervisor()
		defer func() {
			if err != nil {
				m.Close()
			}
		}()
	}
	if err := ensureImage(ctx, g, st, cfg.Image, f.pull, platform, f.quiet); err != nil {
		return runtime.Container{}, nil, nil, berthFailed(err)
	}
	c, err := m.Create(ctx, cfg)
	if err != nil {
		return runtime.Container{}, nil, nil, berthFailed(err)
	}
	if f.cidfile != "" {
		if err := writeFileAtomic(f.cidfile, func(w io.Writer) error { _, err := io.WriteString(w, c.Config.ID); return err }); err != nil {
			return c, m, st, berthFailed(err)
		}
	}
	return c, m, st, nil
}

func parsePlatformFlag(s string) (*v1.Platform, error) {
	if s == "" {
		return nil, nil
	}
	p, err := v1.ParsePlatform(s)
	if err != nil || p.OS == "" || p.Architecture == "" || strings.Count(s, "/") > 2 {
		return nil, usageErrorf("invalid --platform %q: want os/arch[/variant], e.g. linux/amd64", s)
	}
	return p, nil
}

// ensureImage pulls image when it is not in the store (or always, as
// --pull says), printing docker's messages to stderr.
func ensureImage(ctx context.Context, g *globals, st *store.Store, image, pull string, platform *v1.Platform, quiet bool) error {
	switch pull {
	case "missing", "always", "never":
	default:
		return usageErrorf("invalid --pull %q: want always, missing or never", pull)
	}
	_, err := st.Get(ctx, image)
	switch {
	case err == nil && pull != "always":
		return nil
	case err != nil && !errors.Is(err, errdefs.ErrNotFound):
		return err
	case err != nil && pull == "never":
		return notFoundError("No such image: " + image)
	}
	ref, perr := reference.Parse(image)
	if perr != nil {
		return usageErrorf("invalid reference format: %q: %v", image, perr)
	}
	if err != nil && !quiet {
		fmt.Fprintf(g.Err, "Unable to find image '%s' locally\n", ref.Familiar())
	}
	if !quiet {
		what := ref.Tag()
		if d := ref.Digest(); d != "" {
			what = d
		}
		fmt.Fprintf(g.Err, "%s: Pulling from %s\n", what, ref.Path())
	}
	pp := newProgressPrinter(g.Err, "Pulling", quiet)
	res, perr2 := registry.Pull(ctx, st, ref, registry.PullOptions{Platform: platform, Progress: pp.Update})
	pp.Close()
	if perr2 != nil {
		return perr2
	}
	if !quiet {
		fmt.Fprintf(g.Err, "Digest: %s\n", res.Digest)
		fmt.Fprintf(g.Err, "Status: Downloaded newer image for %s\n", ref.Familiar())
	}
	return nil
}

// attachOptions tune runAttached.
type attachOptions struct {
	stdin      bool
	detachKeys string
	sigProxy   bool
	// start starts the container before attaching (run, start -a).
	start bool
	// run maps failures to run's exit codes.
	run bool
}

// terminalFdOf returns the descriptor of v when it is a terminal.
func terminalFdOf(v any) (int, bool) {
	f, ok := v.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return 0, false
	}
	return int(f.Fd()), true
}

// setupTerminal puts stdin in raw mode and streams the size of the
// output terminal when tty is set. The returned function restores it.
func setupTerminal(g *globals, tty, stdin bool) (<-chan runtime.TermSize, func()) {
	restore := func() {}
	if !tty {
		return nil, restore
	}
	if stdin {
		if fd, ok := terminalFdOf(g.In); ok {
			if old, err := term.MakeRaw(fd); err == nil {
				restore = func() { _ = term.Restore(fd, old) }
			}
		}
	}
	outFd, ok := terminalFdOf(g.Out)
	if !ok {
		return nil, restore
	}
	sizes := make(chan runtime.TermSize, 1)
	send := func() {
		w, h, err := term.GetSize(outFd)
		if err != nil {
			return
		}
		select {
		case sizes <- runtime.TermSize{Width: uint16(w), Height: uint16(h)}:
		default:
		}
	}
	send()
	winch := make(chan os.Signal, 1)
	signal.Notify(winch, syscall.SIGWINCH)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-winch:
				send()
			case <-done:
				return
			}
		}
	}()
	prev := restore
	return sizes, func() {
		signal.Stop(winch)
		close(done)
		prev()
	}
}

// proxySignals forwards the signals berth receives to the container
// until the returned function is called.
func proxySignals(ctx context.Context, m *runtime.Manager, id string) func() {
	ch := make(chan os.Signal, 8)
	signal.Notify(ch, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT, syscall.SIGUSR1, syscall.SIGUSR2)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case s := <-ch:
				if sig, ok := s.(syscall.Signal); ok {
					_ = m.Kill(ctx, id, runtime.SignalName(sig))
				}
			case <-done:
				return
			}
		}
	}()
	return func() {
		signal.Stop(ch)
		close(done)
	}
}

// runAttached (optionally) starts c, streams its output (and stdin) until
// it exits, and returns its exit code as an exitCodeError.
func runAttached(ctx context.Context, g *globals, m *runtime.Manager, st *store.Store, c runtime.Container, o attachOptions) error {
	id := c.Config.ID
	fail := func(err error) error {
		if o.run {
			return startFailed(err)
		}
		return err
	}
	tty := c.Config.Create.Tty
	// With the signal proxy, ^C goes to the container: berth keeps
	// streaming until it exits.
	actx := ctx
	if o.sigProxy && !tty {
		actx = context.WithoutCancel(ctx)
		defer proxySignals(actx, m, id)()
	}
	if o.start {
		if err := m.Start(ctx, id); err != nil {
			if o.run || c.Config.AutoRemove {
				// A run that could not start leaves nothing behind.
				_ = m.Remove(context.WithoutCancel(ctx), id, runtime.RemoveOptions{Force: true, Volumes: o.run})
			}
			return fail(err)
		}
	}
	resize, restore := setupTerminal(g, tty, o.stdin)
	streams := runtime.AttachStreams{Stdout: g.Out, Stderr: g.Err, Tty: tty, Resize: resize, DetachKeys: o.detachKeys, Logs: o.start}
	if o.stdin {
		streams.Stdin = g.In
	}
	err := m.Attach(actx, id, streams)
	restore()
	if err != nil && ctx.Err() == nil && actx.Err() == nil {
		// It exited before the attach (or the attach failed): print what
		// it wrote once it has stopped.
		slog.Debug("attach failed, replaying the log", "container", id, "err", err)
		if _, werr := m.Wait(actx, id, runtime.WaitNotRunning); werr == nil || errors.Is(werr, errdefs.ErrNotFound) {
			err = replayLogs(actx, g, m, id)
		}
	} else if err == nil && tty && o.stdin {
		if cur, gerr := m.Get(actx, id); gerr == nil && cur.State.Running {
			return nil // detached
		}
	}
	if err != nil {
		return fail(err)
	}
	cond := runtime.WaitNotRunning
	if c.Config.AutoRemove {
		cond = runtime.WaitRemoved
	}
	code, err := m.Wait(actx, id, cond)
	if err != nil {
		return fail(err)
	}
	if code != 0 {
		return exitCodeError{code: code}
	}
	return nil
}

// replayLogs prints the log of the container's last run.
func replayLogs(ctx context.Context, g *globals, m *runtime.Manager, id string) error {
	c, err := m.Get(ctx, id)
	if err != nil {
		if errors.Is(err, errdefs.ErrNotFound) {
			return nil // auto-removed
		}
		return err
	}
	return logs.Read(ctx, m.LogPath(c), logs.ReadOptions{Tail: -1, Since: c.State.StartedAt}, func(e logs.Entry) error {
		w := g.Out
		if e.Stream == "stderr" {
			w = g.Err
		}
		return logs.Format(w, e, false)
	})
}

// seccompOpt applies --security-opt seccomp=VALUE: "unconfined", or the
// path of a Docker-format profile, read now and kept with the container.
func seccompOpt(co *runtime.CreateOptions, opt, v string) error {
	if v == "" {
		return usageErrorf("invalid --security-opt %q: want seccomp=unconfined or seccomp=PROFILE.json", opt)
	}
	if v == runtime.SeccompUnconfined {
		co.Seccomp = v
		return nil
	}
	data, err := os.ReadFile(v)
	if err != nil {
		return usageErrorf("invalid --security-opt %q: read seccomp profile: %v", opt, err)
	}
	if _, err := seccomp.Parse(data); err != nil {
		return usageErrorf("invalid --security-opt %q: %v", opt, err)
	}
	co.Seccomp = string(data)
	return nil
}
