package cli

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/berthsh/berth/pkg/errdefs"
	"github.com/berthsh/berth/pkg/monitor"
)

type monitorFlags struct {
	listen    string
	interval  time.Duration
	retention time.Duration
}

func newMonitorCmd(g *globals) *cobra.Command {
	var f monitorFlags
	cmd := &cobra.Command{
		Use:   "monitor [OPTIONS]",
		Short: "Serve Prometheus metrics, a JSON API and a live dashboard of the containers",
		Long: `Serve, until interrupted (Ctrl-C):
  /        a dashboard of the containers: state, health, ports, live CPU,
           memory and network charts, recent log lines
  /metrics Prometheus metrics with cAdvisor's names (container_cpu_usage_seconds_total, ...)
  /api/    the same as JSON (containers, summary, history, logs)
The dashboard's history is kept in memory for --history.`,
		Args: argsBetween(0, 0),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runMonitor(cmd.Context(), g, f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.listen, "listen", monitor.DefaultListen, "address (HOST:PORT) to serve on")
	fl.DurationVar(&f.interval, "interval", time.Second, "how often the dashboard's history is sampled")
	fl.DurationVar(&f.retention, "history", 15*time.Minute, "how much resource history to keep in memory")
	return cmd
}

func runMonitor(ctx context.Context, g *globals, f monitorFlags) error {
	if f.interval < 100*time.Millisecond {
		return usageErrorf("--interval %s is too short: use 100ms or more", f.interval)
	}
	if f.retention < f.interval {
		return usageErrorf("--history %s must be at least --interval (%s)", f.retention, f.interval)
	}
	l, err := monitor.Listen(ctx, f.listen)
	switch {
	case errors.Is(err, errdefs.ErrInvalidArgument):
		return usageErrorf("invalid --listen: %s", message(err))
	case errors.Is(err, errdefs.ErrConflict):
		return fmt.Errorf("%s; stop the program using it or pick another port with --listen: %w", message(err), errdefs.ErrConflict)
	case err != nil:
		return err
	}
	defer l.Close() // Serve closes it too; this covers the errors before
	m, _, err := g.openManager(ctx)
	if err != nil {
		return err
	}
	srv, err := monitor.NewServer(monitor.NewManagerSource(m), monitor.Options{Interval: f.interval, Retention: f.retention})
	if err != nil {
		return err
	}
	fmt.Fprintf(g.Out, "berth monitor: serving http://%s/ (metrics at /metrics); press Ctrl-C to stop\n", l.Addr())
	if err := srv.Serve(ctx, l); err != nil {
		return err
	}
	fmt.Fprintln(g.Err, "berth monitor: stopped")
	return nil
}
