package cli

import (
	"fmt"
	"path"

	"github.com/spf13/cobra"

	"github.com/berthsh/berth/pkg/errdefs"
	"github.com/berthsh/berth/pkg/runtime"
)

type execFlags struct {
	interactive, tty, detach, privileged bool
	env, envFiles                        []string
	user, workdir, detachKeys            string
	lookupEnv                            func(string) (string, bool)
}

// options maps the exec flags and command to runtime.ExecOptions.
func (f execFlags) options(cmdline []string) (runtime.ExecOptions, error) {
	o := runtime.ExecOptions{Cmd: cmdline, User: f.user, WorkingDir: f.workdir, Privileged: f.privileged, Tty: f.tty}
	if f.workdir != "" && !path.IsAbs(f.workdir) {
		return o, usageErrorf("the working directory %q is invalid, it needs to be an absolute path", f.workdir)
	}
	for _, file := range f.envFiles {
		env, err := runtime.ParseEnvFile(file, f.lookupEnv)
		if err != nil {
			return o, usageError{err: err}
		}
		o.Env = append(o.Env, env...)
	}
	env, err := runtime.ParseEnv(f.env, f.lookupEnv)
	if err != nil {
		return o, usageError{err: err}
	}
	o.Env = append(o.Env, env...)
	return o, nil
}

func newExecCmd(g *globals) *cobra.Command {
	var f execFlags
	cmd := &cobra.Command{
		Use:   "exec [OPTIONS] CONTAINER COMMAND [ARG...]",
		Short: "Execute a command in a running container",
		Long: `Run a command in a running container and exit with its exit code; 126 means
the command could not be invoked, 127 that it was not found.`,
		Args: argsBetween(2, -1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts, err := f.options(args[1:])
			if err != nil {
				return err
			}
			if f.tty && f.interactive && !f.detach {
				if _, ok := terminalFdOf(g.In); !ok {
					return usageErrorf("the input device is not a TTY")
				}
			}
			ctx := cmd.Context()
			m, _, err := g.openManager(ctx)
			if err != nil {
				return err
			}
			c, err := m.Get(ctx, args[0])
			if err != nil {
				return err
			}
			if !c.State.Running {
				return fmt.Errorf("container %s is not running: %w", args[0], errdefs.ErrConflict)
			}
			if f.detach {
				if err := m.ExecDetached(ctx, c.Config.ID, opts); err != nil {
					return startFailed(err)
				}
				return nil
			}
			resize, restore := setupTerminal(g, f.tty, f.interactive)
			streams := runtime.AttachStreams{Stdout: g.Out, Stderr: g.Err, Tty: f.tty, Resize: resize, DetachKeys: f.detachKeys}
			if f.interactive {
				streams.Stdin = g.In
			}
			code, err := m.Exec(ctx, c.Config.ID, opts, streams)
			restore()
			if err != nil {
				return startFailed(err)
			}
			if code != 0 {
				return exitCodeError{code: code}
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.SetInterspersed(false)
	fl.BoolVarP(&f.interactive, "interactive", "i", false, "keep STDIN open even if not attached")
	fl.BoolVarP(&f.tty, "tty", "t", false, "allocate a pseudo-TTY")
	fl.BoolVarP(&f.detach, "detach", "d", false, "detached mode: run command in the background")
	fl.BoolVar(&f.privileged, "privileged", false, "give extended privileges to the command")
	fl.StringArrayVarP(&f.env, "env", "e", nil, "set environment variables")
	fl.StringArrayVar(&f.envFiles, "env-file", nil, "read in a file of environment variables")
	fl.StringVarP(&f.user, "user", "u", "", "username or UID (format: <name|uid>[:<group|gid>])")
	fl.StringVarP(&f.workdir, "workdir", "w", "", "working directory inside the container")
	fl.StringVar(&f.detachKeys, "detach-keys", "", "override the key sequence for detaching a container")
	return cmd
}
