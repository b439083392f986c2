package cli

import (
	"fmt"
	"strings"
	"time"

	units "github.com/docker/go-units"
	"github.com/spf13/cobra"

	"github.com/berthsh/berth/pkg/build"
	"github.com/berthsh/berth/pkg/events"
)

// newBuilderCmd is "berth builder": the build cache.
func newBuilderCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "builder",
		Short: "Manage the build cache",
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(newBuilderPruneCmd(g))
	return cmd
}

func newBuilderPruneCmd(g *globals) *cobra.Command {
	var (
		all, force bool
		filters    []string
	)
	cmd := &cobra.Command{
		Use:   "prune [OPTIONS]",
		Short: "Remove build cache",
		Long: `Remove the build cache: cached steps whose layers no image uses (with -a,
all cached steps) and RUN --mount=type=cache directories. A running build is
waited for. --filter until=DURATION|TIMESTAMP keeps what is newer.`,
		Example: `  berth builder prune -f
  berth builder prune -a -f --filter until=24h`,
		Args: argsBetween(0, 0),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts := build.PruneOptions{All: all}
			for _, f := range filters {
				k, v, ok := strings.Cut(f, "=")
				if !ok || k != "until" {
					return usageErrorf("invalid filter %q: only until=DURATION|TIMESTAMP is supported", f)
				}
				t, err := events.ParseTime(v, time.Now())
				if err != nil {
					return usageErrorf("invalid filter %q: %v", f, err)
				}
				opts.Until = t
			}
			if !force {
				q := "WARNING! This will remove all dangling build cache.\nAre you sure you want to continue? [y/N] "
				if all {
					q = "WARNING! This will remove all build cache.\nAre you sure you want to continue? [y/N] "
				}
				if !confirm(g, q) {
					return nil
				}
			}
			ctx := cmd.Context()
			s, err := g.openStore(ctx)
			if err != nil {
				return err
			}
			res, err := build.Prune(ctx, s, g.Root, opts)
			if len(res.Deleted) > 0 {
				fmt.Fprintln(g.Out, "Deleted build cache objects:")
				for _, id := range res.Deleted {
					fmt.Fprintln(g.Out, id)
				}
				fmt.Fprintln(g.Out)
			}
			if err != nil {
				return err
			}
			fmt.Fprintln(g.Out, "Total reclaimed space:", units.HumanSize(float64(res.Reclaimed)))
			return nil
		},
	}
	fl := cmd.Flags()
	fl.BoolVarP(&all, "all", "a", false, "remove all build cache, not just what no image uses")
	fl.BoolVarP(&force, "force", "f", false, "do not prompt for confirmation")
	fl.StringArrayVar(&filters, "filter", nil, "filter: until=DURATION|TIMESTAMP (remove only older cache)")
	return cmd
}
