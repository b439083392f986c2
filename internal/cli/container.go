package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/spf13/cobra"

	"github.com/berthsh/berth/pkg/errdefs"
	"github.com/berthsh/berth/pkg/rootfs"
	"github.com/berthsh/berth/pkg/runtime"
	"github.com/berthsh/berth/pkg/store"
)

// addContainerCommands adds the container commands: docker's top-level
// verbs (run, ps, logs, …) and the "container" group with the same verbs.
func addContainerCommands(root *cobra.Command, g *globals) {
	group := &cobra.Command{
		Use:   "container",
		Short: "Manage containers",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return cmd.Help()
		},
	}
	root.AddCommand(group)
	verbs := func() []*cobra.Command {
		return []*cobra.Command{
			newRunCmd(g), newCreateCmd(g), newStartCmd(g), newStopCmd(g), newRestartCmd(g),
			newKillCmd(g), newRmCmd(g), newLogsCmd(g), newExecCmd(g), newWaitCmd(g),
			newTopCmd(g), newPortCmd(g), newCpCmd(g), newRenameCmd(g), newExportCmd(g),
			newPauseCmd(g), newUnpauseCmd(g),
		}
	}
	root.AddCommand(verbs()...)
	root.AddCommand(newPsCmd(g, "ps [OPTIONS]"))
	ls := newPsCmd(g, "ls [OPTIONS]")
	ls.Aliases = []string{"ps", "list"}
	group.AddCommand(verbs()...)
	group.AddCommand(ls, newContainerPruneCmd(g), newContainerInspectCmd(g))
	for _, c := range group.Commands() {
		if strings.HasPrefix(c.Use, "rm ") {
			c.Aliases = append(c.Aliases, "remove")
		}
	}
}

// openManager opens the image store and the containers under the data
// directory.
func (g *globals) openManager(ctx context.Context) (*runtime.Manager, *store.Store, error) {
	st, err := g.openStore(ctx)
	if err != nil {
		return nil, nil, err
	}
	m, err := runtime.NewManager(ctx, g.Root, st)
	if err != nil {
		return nil, nil, err
	}
	return m, st, nil
}

// containerName is a container's name as docker shows it in lists
// (without the leading "/").
func containerName(c runtime.Container) string {
	return strings.TrimPrefix(c.Config.Name, "/")
}

// forEachName runs fn for each name as docker's multi-object
// verbs do: a success prints the name as given, a failure prints an error
// line, and the command fails (exit 1) if any did.
func forEachName(g *globals, names []string, fn func(name string) error) error {
	failed := false
	for _, n := range names {
		if err := fn(n); err != nil {
			failed = true
			if errors.Is(err, context.Canceled) {
				return err
			}
			fmt.Fprintln(g.Err, "Error:", message(err))
			continue
		}
		fmt.Fprintln(g.Out, n)
	}
	if failed {
		return exitCodeError{code: exitFailure}
	}
	return nil
}

// stopOptions builds runtime.StopOptions from stop/restart flags.
func stopOptions(cmd *cobra.Command, timeout int, signal string) (runtime.StopOptions, error) {
	var o runtime.StopOptions
	if cmd.Flags().Changed("timeout") || cmd.Flags().Changed("time") {
		d := time.Duration(timeout) * time.Second
		if timeout < 0 {
			d = -1 // wait forever, as docker's -1
		}
		o.Timeout = &d
	}
	if signal != "" {
		sig, err := runtime.ParseSignal(signal)
		if err != nil {
			return o, usageError{err: err, cmd: cmd.CommandPath()}
		}
		o.Signal = runtime.SignalName(sig)
	}
	return o, nil
}

func addTimeoutFlag(cmd *cobra.Command, timeout *int) {
	f := cmd.Flags()
	f.IntVarP(timeout, "timeout", "t", 10, "seconds to wait before killing the container")
	f.IntVar(timeout, "time", 10, "seconds to wait before killing the container")
	_ = f.MarkDeprecated("time", "use --timeout")
}

func newStartCmd(g *globals) *cobra.Command {
	var attach, interactive, all bool
	var detachKeys string
	var filters []string
	cmd := &cobra.Command{
		Use:   "start [OPTIONS] CONTAINER [CONTAINER...]",
		Short: "Start one or more stopped containers",
		Long: `Start one or more stopped containers.

With --all, start every container that does not run, oldest first, except
unless-stopped containers stopped with "berth stop" or "berth kill" (start
those by name); --filter restart-policy=NAME (repeatable) limits it to
those restart policies. At boot, berth-restart.service runs
"berth start --all --filter restart-policy=always --filter restart-policy=unless-stopped".`,
		Args: func(cmd *cobra.Command, args []string) error {
			if all && len(args) > 0 {
				return usageError{err: errors.New("--all starts every stopped container: give no container names with it"), cmd: cmd.CommandPath()}
			}
			if all {
				return nil
			}
			return argsBetween(1, -1)(cmd, args)
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if len(filters) > 0 && !all {
				return usageErrorf("--filter needs --all")
			}
			if all {
				if attach || interactive {
					return usageErrorf("you cannot start and attach multiple containers at once")
				}
				return startAll(ctx, g, filters)
			}
			m, st, err := g.openManager(ctx)
			if err != nil {
				return err
			}
			if attach || interactive {
				if len(args) > 1 {
					return usageErrorf("you cannot start and attach multiple containers at once")
				}
				c, err := m.Get(ctx, args[0])
				if err != nil {
					return err
				}
				return runAttached(ctx, g, m, st, c, attachOptions{stdin: interactive, detachKeys: detachKeys, sigProxy: true, start: true})
			}
			return forEachName(g, args, func(name string) error {
				return m.Start(ctx, name)
			})
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&attach, "attach", "a", false, "attach STDOUT/STDERR and forward signals")
	f.BoolVarP(&interactive, "interactive", "i", false, "attach container's STDIN")
	f.StringVar(&detachKeys, "detach-keys", "", "override the key sequence for detaching a container")
	f.BoolVar(&all, "all", false, "start all containers that do not run")
	f.StringArrayVarP(&filters, "filter", "f", nil, "with --all: only containers matching a filter (restart-policy=NAME)")
	return cmd
}

// startAll is "start --all": one line per started container (its name),
// an error line per failure, exit 1 if any failed.
func startAll(ctx context.Context, g *globals, filters []string) error {
	opts, err := runtime.ParseStartAllFilters(filters)
	if err != nil {
		return usageErrorf("%s", message(err))
	}
	m, _, err := g.openManager(ctx)
	if err != nil {
		return err
	}
	res, err := m.StartAll(ctx, opts)
	failed := false
	for _, r := range res {
		if r.Err != nil {
			failed = true
			fmt.Fprintln(g.Err, "Error:", message(r.Err))
			continue
		}
		fmt.Fprintln(g.Out, containerName(r.Container))
	}
	if err != nil {
		return err
	}
	if failed {
		return exitCodeError{code: exitFailure}
	}
	return nil
}

func newStopCmd(g *globals) *cobra.Command {
	return newStopOrRestartCmd(g, "stop", "Stop one or more running containers",
		`Send the stop signal (--signal, else the container's --stop-signal or the
image's STOPSIGNAL, else SIGTERM), wait --timeout seconds, then SIGKILL.`,
		(*runtime.Manager).Stop)
}

func newRestartCmd(g *globals) *cobra.Command {
	return newStopOrRestartCmd(g, "restart", "Restart one or more containers", "", (*runtime.Manager).Restart)
}

// newStopOrRestartCmd makes stop and restart, which share their flags and
// differ only in the manager call.
func newStopOrRestartCmd(g *globals, verb, short, long string, do func(*runtime.Manager, context.Context, string, runtime.StopOptions) error) *cobra.Command {
	var timeout int
	var signal string
	cmd := &cobra.Command{
		Use:   verb + " [OPTIONS] CONTAINER [CONTAINER...]",
		Short: short,
		Long:  long,
		Args:  argsBetween(1, -1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts, err := stopOptions(cmd, timeout, signal)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			m, _, err := g.openManager(ctx)
			if err != nil {
				return err
			}
			return forEachName(g, args, func(name string) error { return do(m, ctx, name, opts) })
		},
	}
	addTimeoutFlag(cmd, &timeout)
	cmd.Flags().StringVarP(&signal, "signal", "s", "", "signal to send to the container")
	return cmd
}

func newKillCmd(g *globals) *cobra.Command {
	var signal string
	cmd := &cobra.Command{
		Use:   "kill [OPTIONS] CONTAINER [CONTAINER...]",
		Short: "Kill one or more running containers",
		Args:  argsBetween(1, -1),
		RunE: func(cmd *cobra.Command, args []string) error {
			sig, err := runtime.ParseSignal(signal)
			if err != nil {
				return usageError{err: err, cmd: cmd.CommandPath()}
			}
			ctx := cmd.Context()
			m, _, err := g.openManager(ctx)
			if err != nil {
				return err
			}
			return forEachName(g, args, func(name string) error { return m.Kill(ctx, name, runtime.SignalName(sig)) })
		},
	}
	cmd.Flags().StringVarP(&signal, "signal", "s", "KILL", "signal to send to the container")
	return cmd
}

func newRmCmd(g *globals) *cobra.Command {
	var opts runtime.RemoveOptions
	var link bool
	cmd := &cobra.Command{
		Use:   "rm [OPTIONS] CONTAINER [CONTAINER...]",
		Short: "Remove one or more containers",
		Long: `Remove stopped containers (with --force, running ones are killed first).
--volumes also removes the container's anonymous volumes.`,
		Args: argsBetween(1, -1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if link {
				return usageErrorf("--link is not supported: berth has no legacy links")
			}
			ctx := cmd.Context()
			m, _, err := g.openManager(ctx)
			if err != nil {
				return err
			}
			return forEachName(g, args, func(name string) error { return m.Remove(ctx, name, opts) })
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&opts.Force, "force", "f", false, "force the removal of a running container (uses SIGKILL)")
	f.BoolVarP(&opts.Volumes, "volumes", "v", false, "remove anonymous volumes associated with the container")
	f.BoolVarP(&link, "link", "l", false, "remove the specified link (not supported)")
	return cmd
}

func newWaitCmd(g *globals) *cobra.Command {
	var condition string
	cmd := &cobra.Command{
		Use:   "wait CONTAINER [CONTAINER...]",
		Short: "Block until one or more containers stop, then print their exit codes",
		Args:  argsBetween(1, -1),
		RunE: func(cmd *cobra.Command, args []string) error {
			switch condition {
			case "", runtime.WaitNotRunning, runtime.WaitNextExit, runtime.WaitRemoved:
			default:
				return usageErrorf("invalid --condition %q: want not-running, next-exit or removed", condition)
			}
			ctx := cmd.Context()
			m, _, err := g.openManager(ctx)
			if err != nil {
				return err
			}
			failed := false
			for _, name := range args {
				code, err := m.Wait(ctx, name, condition)
				if err != nil {
					if errors.Is(err, context.Canceled) {
						return err
					}
					failed = true
					fmt.Fprintln(g.Err, "Error:", message(err))
					continue
				}
				fmt.Fprintln(g.Out, code)
			}
			if failed {
				return exitCodeError{code: exitFailure}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&condition, "condition", "", "wait until not-running (default), next-exit or removed")
	_ = cmd.Flags().MarkHidden("condition")
	return cmd
}

func newRenameCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "rename CONTAINER NEW_NAME",
		Short: "Rename a container",
		Args:  argsBetween(2, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			m, _, err := g.openManager(ctx)
			if err != nil {
				return err
			}
			return m.Rename(ctx, args[0], strings.TrimPrefix(args[1], "/"))
		},
	}
}

func newPauseCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "pause CONTAINER [CONTAINER...]",
		Short: "Pause all processes within one or more containers",
		Args:  argsBetween(1, -1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			m, _, err := g.openManager(ctx)
			if err != nil {
				return err
			}
			return forEachName(g, args, func(name string) error { return m.Pause(ctx, name) })
		},
	}
}

func newUnpauseCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "unpause CONTAINER [CONTAINER...]",
		Short: "Unpause all processes within one or more containers",
		Args:  argsBetween(1, -1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			m, _, err := g.openManager(ctx)
			if err != nil {
				return err
			}
			return forEachName(g, args, func(name string) error { return m.Unpause(ctx, name) })
		},
	}
}

func newContainerPruneCmd(g *globals) *cobra.Command {
	var force bool
	var filters []string
	cmd := &cobra.Command{
		Use:   "prune [OPTIONS]",
		Short: "Remove all stopped containers",
		Args:  argsBetween(0, 0),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(filters) > 0 {
				return usageErrorf("--filter is not supported by container prune yet")
			}
			if !force && !confirm(g, "WARNING! This will remove all stopped containers.\nAre you sure you want to continue? [y/N] ") {
				return nil
			}
			ctx := cmd.Context()
			m, _, err := g.openManager(ctx)
			if err != nil {
				return err
			}
			ids, err := m.Prune(ctx)
			if len(ids) > 0 {
				fmt.Fprintln(g.Out, "Deleted Containers:")
				for _, id := range ids {
					fmt.Fprintln(g.Out, id)
				}
				fmt.Fprintln(g.Out)
			}
			if err != nil {
				return err
			}
			fmt.Fprintln(g.Out, "Total reclaimed space: 0B")
			return nil
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "do not prompt for confirmation")
	cmd.Flags().StringArrayVar(&filters, "filter", nil, "provide filter values (not supported yet)")
	return cmd
}

// confirm asks question on g.Err... as docker does on stdout, and reads a
// yes from g.In.
func confirm(g *globals, question string) bool {
	fmt.Fprint(g.Out, question)
	var answer string
	if _, err := fmt.Fscanln(g.In, &answer); err != nil {
		return false
	}
	a := strings.ToLower(strings.TrimSpace(answer))
	return a == "y" || a == "yes"
}

// portLines are "port" output lines for the container's bound ports,
// "80/tcp -> 0.0.0.0:8080", filtered by want ("80" or "80/udp"; "" for
// all).
func portLines(ports []runtime.PortBinding, want string) ([]string, error) {
	var wantPort uint64
	wantProto := ""
	if want != "" {
		p, proto, hasProto := strings.Cut(want, "/")
		n, err := strconv.ParseUint(p, 10, 16)
		if err != nil || n == 0 {
			return nil, usageErrorf("invalid port %q: want PRIVATE_PORT[/PROTO]", want)
		}
		wantPort = n
		wantProto = "tcp"
		if hasProto {
			wantProto = strings.ToLower(proto)
		}
	}
	sorted := slices.Clone(ports)
	sort.SliceStable(sorted, func(i, j int) bool {
		a, b := sorted[i], sorted[j]
		if a.ContainerPort != b.ContainerPort {
			return a.ContainerPort < b.ContainerPort
		}
		return cmpOr(a.Proto, "tcp") < cmpOr(b.Proto, "tcp")
	})
	var out []string
	for _, p := range sorted {
		proto := cmpOr(p.Proto, "tcp")
		if want != "" && (uint64(p.ContainerPort) != wantPort || proto != wantProto) {
			continue
		}
		host := hostAddr(p.HostIP, p.HostPort)
		if want != "" {
			out = append(out, host)
		} else {
			out = append(out, fmt.Sprintf("%d/%s -> %s", p.ContainerPort, proto, host))
		}
	}
	return out, nil
}

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// hostAddr is "0.0.0.0:8080" or "[::]:8080".
func hostAddr(ip string, port uint16) string {
	if ip == "" {
		ip = "0.0.0.0"
	}
	if strings.Contains(ip, ":") {
		return fmt.Sprintf("[%s]:%d", ip, port)
	}
	return fmt.Sprintf("%s:%d", ip, port)
}

func newPortCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "port CONTAINER [PRIVATE_PORT[/PROTO]]",
		Short: "List port mappings or a specific mapping for the container",
		Args:  argsBetween(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			m, _, err := g.openManager(ctx)
			if err != nil {
				return err
			}
			c, err := m.Get(ctx, args[0])
			if err != nil {
				return err
			}
			want := ""
			if len(args) == 2 {
				want = args[1]
			}
			lines, err := portLines(c.State.Ports, want)
			if err != nil {
				return err
			}
			if want != "" && len(lines) == 0 {
				return fmt.Errorf("no public port '%s' published for %s: %w", want, args[0], errdefs.ErrNotFound)
			}
			for _, l := range lines {
				fmt.Fprintln(g.Out, l)
			}
			return nil
		},
	}
}

func newTopCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "top CONTAINER [ps OPTIONS]",
		Short: "Display the running processes of a container",
		Args:  argsBetween(1, -1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 1 {
				return usageErrorf("ps options are not supported: berth top prints docker's default columns")
			}
			ctx := cmd.Context()
			m, _, err := g.openManager(ctx)
			if err != nil {
				return err
			}
			procs, err := runtime.Top(ctx, m, args[0])
			if err != nil {
				return err
			}
			rows := make([]any, 0, len(procs))
			for _, p := range procs {
				rows = append(rows, p)
			}
			return writeList(g.Out, "", listFormat{
				Table:   "table {{.UID}}\t{{.PID}}\t{{.PPID}}\t{{.C}}\t{{.STIME}}\t{{.TTY}}\t{{.TIME}}\t{{.CMD}}",
				Headers: map[string]string{"UID": "UID", "PID": "PID", "PPID": "PPID", "C": "C", "STIME": "STIME", "TTY": "TTY", "TIME": "TIME", "CMD": "CMD"},
			}, rows)
		},
	}
}

func newExportCmd(g *globals) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "export [OPTIONS] CONTAINER",
		Short: "Export a container's filesystem as a tar archive",
		Args:  argsBetween(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			w := g.Out
			if output == "" && isTerminal(g.Out) {
				return usageErrorf("refusing to write a tar archive to a terminal: use -o FILE or redirect the output")
			}
			m, _, err := g.openManager(ctx)
			if err != nil {
				return err
			}
			if _, err := m.Get(ctx, args[0]); err != nil {
				return err
			}
			if output != "" {
				return writeFileAtomic(output, func(w io.Writer) error { return runtime.Export(ctx, m, args[0], w) })
			}
			return runtime.Export(ctx, m, args[0], w)
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "", "write to a file, instead of STDOUT")
	return cmd
}

// writeFileAtomic writes name through fn via a temporary file renamed
// into place, removed on error.
func writeFileAtomic(name string, fn func(io.Writer) error) (err error) {
	dir, base := path.Split(name)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, "."+base+".tmp*")
	if err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if err := fn(f); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	if err := os.Chmod(f.Name(), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	if err := os.Rename(f.Name(), name); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	return nil
}

// isTerminal reports whether w is a terminal.
func isTerminal(w any) bool {
	_, ok := terminalFdOf(w)
	return ok
}

// splitCpArg splits a cp argument into container and path:
// "CONTAINER:PATH" or a local path (container "").
func splitCpArg(arg string) (container, p string) {
	if arg == "-" || strings.HasPrefix(arg, "/") || strings.HasPrefix(arg, ".") {
		return "", arg
	}
	c, rest, ok := strings.Cut(arg, ":")
	if !ok || c == "" {
		return "", arg
	}
	return c, rest
}

func newCpCmd(g *globals) *cobra.Command {
	var archive, follow bool
	cmd := &cobra.Command{
		Use:   "cp [OPTIONS] CONTAINER:SRC_PATH DEST_PATH|-\n  berth cp [OPTIONS] SRC_PATH|- CONTAINER:DEST_PATH",
		Short: "Copy files/folders between a container and the local filesystem",
		Long: `Copy files between a container and the local filesystem. Use '-' as the
local side to read a tar archive from STDIN (extracted into the container
directory DEST_PATH) or write one to STDOUT.`,
		Args: argsBetween(2, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			srcC, srcP := splitCpArg(args[0])
			dstC, dstP := splitCpArg(args[1])
			switch {
			case srcC != "" && dstC != "":
				return usageErrorf("copying between containers is not supported")
			case srcC == "" && dstC == "":
				return usageErrorf("must specify at least one container source")
			}
			ctx := cmd.Context()
			m, _, err := g.openManager(ctx)
			if err != nil {
				return err
			}
			if srcC != "" {
				if dstP == "-" {
					return runtime.CopyFrom(ctx, m, srcC, srcP, g.Out)
				}
				return copyFromToLocal(ctx, m, srcC, srcP, dstP)
			}
			if srcP == "-" {
				return runtime.CopyTo(ctx, m, dstC, g.In, dstP)
			}
			return copyLocalTo(ctx, m, srcP, dstC, dstP)
		},
	}
	cmd.Flags().BoolVarP(&archive, "archive", "a", false, "archive mode (copy all uid/gid information)")
	cmd.Flags().BoolVarP(&follow, "follow-link", "L", false, "always follow symbol link in SRC_PATH")
	return cmd
}

// imageIDString is the "sha256:…" image ID, or "" when unknown.
func imageIDString(h v1.Hash) string {
	if h.Hex == "" {
		return ""
	}
	return h.String()
}

// copyFromToLocal copies containerPath out of the container to the local
// path dst, as docker cp: into dst when it is an existing directory, else
// as dst.
func copyFromToLocal(ctx context.Context, m *runtime.Manager, id, containerPath, dst string) error {
	into, rename := dst, ""
	if fi, err := os.Stat(dst); err != nil || !fi.IsDir() {
		if err == nil || strings.HasSuffix(dst, "/") {
			if err == nil {
				return fmt.Errorf("cannot copy to %s: it exists and is not a directory: %w", dst, errdefs.ErrConflict)
			}
			return fmt.Errorf("destination directory %s: %w", dst, errdefs.ErrNotFound)
		}
		into, rename = filepath.Dir(dst), filepath.Base(dst)
	}
	tmp, err := os.MkdirTemp(into, ".berth-cp-")
	if err != nil {
		return fmt.Errorf("copy to %s: %w", dst, err)
	}
	defer rootfs.RemoveAll(tmp)
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(runtime.CopyFrom(ctx, m, id, containerPath, pw)) }()
	_, err = rootfs.Apply(ctx, tmp, pr, rootfs.WithFlatten(), rootfs.WithoutChown())
	pr.CloseWithError(io.ErrClosedPipe)
	if err != nil {
		return err
	}
	entries, err := os.ReadDir(tmp)
	if err != nil {
		return err
	}
	for _, e := range entries {
		target := filepath.Join(into, e.Name())
		if rename != "" {
			target = filepath.Join(into, rename)
		}
		if err := os.Rename(filepath.Join(tmp, e.Name()), target); err != nil {
			return fmt.Errorf("copy to %s: %w", target, err)
		}
	}
	return nil
}

// copyLocalTo copies the local path src into the container, as docker cp:
// into dst when it is an existing directory, else as dst.
func copyLocalTo(ctx context.Context, m *runtime.Manager, src, id, dst string) error {
	fi, err := os.Lstat(src)
	if err != nil {
		return fmt.Errorf("could not find the file %s: %w", src, errdefs.ErrNotFound)
	}
	dir, name := dst, filepath.Base(filepath.Clean(src))
	if info, err := runtime.PathInfo(ctx, m, id, dst); err != nil || !info.IsDir() {
		if err != nil && !errors.Is(err, errdefs.ErrNotFound) {
			return err
		}
		if strings.HasSuffix(dst, "/") {
			return fmt.Errorf("destination directory %s in the container: %w", dst, errdefs.ErrNotFound)
		}
		dir, name = path.Dir(path.Clean("/"+dst)), path.Base(path.Clean("/"+dst))
	}
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(runtime.TarPath(ctx, src, fi, name, pw)) }()
	err = runtime.CopyTo(ctx, m, id, pr, dir)
	pr.CloseWithError(io.ErrClosedPipe)
	return err
}

// openManagerIfAny opens the containers under the data directory for the
// image and volume commands' in-use checks; it returns nil when there
// has never been a container.
func (g *globals) openManagerIfAny(ctx context.Context, st *store.Store) (*runtime.Manager, error) {
	if _, err := os.Stat(filepath.Join(g.Root, "containers")); errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	return runtime.NewManager(ctx, g.Root, st)
}

// imageInUse is the store hook (RemoveOptions.InUse, PruneOptions.InUse)
// that keeps images containers were created from.
func imageInUse(ctx context.Context, g *globals, st *store.Store) (func(store.Image) string, error) {
	m, err := g.openManagerIfAny(ctx, st)
	if err != nil || m == nil {
		return nil, err
	}
	users, err := m.ImageUsers(ctx)
	if err != nil {
		return nil, err
	}
	return func(img store.Image) string {
		id, err := st.ID(ctx, img)
		if err != nil {
			return ""
		}
		ids := users[id]
		if len(ids) == 0 {
			return ""
		}
		short := ids[0]
		if len(short) > 12 {
			short = short[:12]
		}
		return "image is being used by container " + short
	}, nil
}

// imageContainers counts the containers of each image for DiskUsage.
func imageContainers(ctx context.Context, g *globals, st *store.Store) (func(store.Image) int, error) {
	m, err := g.openManagerIfAny(ctx, st)
	if err != nil || m == nil {
		return nil, err
	}
	users, err := m.ImageUsers(ctx)
	if err != nil {
		return nil, err
	}
	return func(img store.Image) int {
		id, err := st.ID(ctx, img)
		if err != nil {
			return 0
		}
		return len(users[id])
	}, nil
}
