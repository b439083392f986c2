package cli

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/berthsh/berth/pkg/store"
)

// globals holds what every command sees: the global flags and the
// process's standard streams. Commands read it; they never print anywhere
// else.
type globals struct {
	Root  string
	Debug bool

	In  io.Reader
	Out io.Writer
	Err io.Writer
}

// defaultRoot is the data directory when neither --root nor BERTH_ROOT is
// given: /var/lib/berth for root, $XDG_DATA_HOME/berth otherwise.
func defaultRoot() string {
	if v := os.Getenv("BERTH_ROOT"); v != "" {
		return v
	}
	if os.Geteuid() == 0 {
		return "/var/lib/berth"
	}
	if v := os.Getenv("XDG_DATA_HOME"); v != "" {
		return filepath.Join(v, "berth")
	}
	if home, err := os.UserHomeDir(); err == nil {
		return filepath.Join(home, ".local", "share", "berth")
	}
	return filepath.Join(os.TempDir(), "berth-"+fmt.Sprint(os.Geteuid()))
}

// Main runs the berth command line with args and returns the process exit
// code. It is the only place that turns errors into exit codes and messages.
func Main(ctx context.Context, args []string, in io.Reader, out, errOut io.Writer) int {
	g := &globals{In: in, Out: out, Err: errOut}
	root := newRootCmd(g)
	root.SetArgs(args)
	root.SetIn(in)
	root.SetOut(out)
	root.SetErr(errOut)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	return reportError(errOut, err)
}

func newRootCmd(g *globals) *cobra.Command {
	root := &cobra.Command{
		Use:           "berth",
		Short:         "Build, push, run and monitor containers for Python apps, with no daemon",
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			level := slog.LevelInfo
			if g.Debug {
				level = slog.LevelDebug
				slog.SetDefault(slog.New(slog.NewTextHandler(g.Err, &slog.HandlerOptions{Level: level})))
			} else {
				slog.SetDefault(slog.New(slog.DiscardHandler))
			}
			if g.Root == "" {
				return usageErrorf("--root must not be empty")
			}
			abs, err := filepath.Abs(g.Root)
			if err != nil {
				return fmt.Errorf("resolve --root %q: %w", g.Root, err)
			}
			g.Root = abs
			return nil
		},
	}
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		return usageError{err: err, cmd: cmd.CommandPath()}
	})
	pf := root.PersistentFlags()
	pf.StringVar(&g.Root, "root", defaultRoot(), "data directory for images, containers and state (env BERTH_ROOT)")
	pf.BoolVarP(&g.Debug, "debug", "D", false, "print debug logs to stderr")

	root.AddCommand(
		newVersionCmd(g),
		newRegistryCmd(g),
		newVolumeCmd(g),
		newNetworkCmd(g),
		newBuildCmd(g),
		newInitCmd(g),
		newBuilderCmd(g),
		newMonitorCmd(g),
		newEventsCmd(g),
		newLoadtestCmd(g),
	)
	addImageCommands(root, g)
	addContainerCommands(root, g)
	addStatsCommands(root, g)
	return root
}

// openStore opens the image store under the data directory.
func (g *globals) openStore(ctx context.Context) (*store.Store, error) {
	return store.Open(ctx, filepath.Join(g.Root, "images"))
}
