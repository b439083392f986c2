package cli

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/berthsh/berth/pkg/errdefs"
	"github.com/berthsh/berth/pkg/runtime"
	"github.com/berthsh/berth/pkg/runtime/logs"
)

// parseLogTime reads a --since/--until value as docker does: an RFC 3339
// time (with or without zone and fraction, or a date), a Unix timestamp
// with optional fraction, or a duration before now ("10m", "1h30m").
func parseLogTime(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if d, err := time.ParseDuration(s); err == nil {
		return now.Add(-d), nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02T15", "2006-01-02"} {
		loc := time.Local
		if t, err := time.ParseInLocation(layout, s, loc); err == nil {
			return t, nil
		}
	}
	if sec, frac, ok := strings.Cut(s, "."); ok || sec != "" {
		n, err := strconv.ParseInt(sec, 10, 64)
		if err == nil {
			var ns int64
			if ok {
				if len(frac) > 9 {
					frac = frac[:9]
				}
				f, err := strconv.ParseInt(frac+strings.Repeat("0", 9-len(frac)), 10, 64)
				if err != nil {
					return time.Time{}, errBadLogTime(s)
				}
				ns = f
			}
			return time.Unix(n, ns), nil
		}
	}
	return time.Time{}, errBadLogTime(s)
}

func errBadLogTime(s string) error {
	return usageErrorf("invalid time %q: want RFC 3339 (2024-01-02T15:04:05Z), a Unix timestamp or a duration such as 10m", s)
}

type logsFlags struct {
	follow, timestamps, details bool
	tail, since, until          string
}

func newLogsCmd(g *globals) *cobra.Command {
	var f logsFlags
	cmd := &cobra.Command{
		Use:   "logs [OPTIONS] CONTAINER",
		Short: "Fetch the logs of a container",
		Long: `Print a container's output: its stdout to stdout and its stderr to stderr.
--since and --until take RFC 3339 times, Unix timestamps or durations before
now (10m); --follow keeps printing until the container stops.`,
		Args: argsBetween(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runLogs(cmd.Context(), g, f, args[0])
		},
	}
	fl := cmd.Flags()
	fl.BoolVarP(&f.follow, "follow", "f", false, "follow log output")
	fl.BoolVarP(&f.timestamps, "timestamps", "t", false, "show timestamps")
	fl.BoolVar(&f.details, "details", false, "show extra details provided to logs (none with json-file)")
	fl.StringVarP(&f.tail, "tail", "n", "all", "number of lines to show from the end of the logs")
	fl.StringVar(&f.since, "since", "", "show logs since timestamp (2013-01-02T13:23:37Z) or relative (42m)")
	fl.StringVar(&f.until, "until", "", "show logs before a timestamp (2013-01-02T13:23:37Z) or relative (42m)")
	return cmd
}

// logReadOptions maps the logs flags to logs.ReadOptions at time now.
func (f logsFlags) readOptions(now time.Time) (logs.ReadOptions, error) {
	o := logs.ReadOptions{Tail: -1, Follow: f.follow}
	if f.tail != "" && f.tail != "all" {
		n, err := strconv.Atoi(f.tail)
		if err != nil {
			return o, usageErrorf("invalid --tail %q: want a number of lines or all", f.tail)
		}
		if n >= 0 {
			o.Tail = n
		}
	}
	var err error
	if o.Since, err = parseLogTime(f.since, now); err != nil {
		return o, err
	}
	if o.Until, err = parseLogTime(f.until, now); err != nil {
		return o, err
	}
	return o, nil
}

func runLogs(ctx context.Context, g *globals, f logsFlags, name string) error {
	opts, err := f.readOptions(time.Now())
	if err != nil {
		return err
	}
	m, _, err := g.openManager(ctx)
	if err != nil {
		return err
	}
	c, err := m.Get(ctx, name)
	if err != nil {
		return err
	}
	if opts.Follow {
		done := make(chan struct{})
		opts.Done = done
		wctx, cancel := context.WithCancel(ctx)
		defer cancel()
		go func() {
			defer close(done)
			if !c.State.Running {
				return
			}
			_, _ = m.Wait(wctx, c.Config.ID, runtime.WaitNotRunning)
		}()
	}
	err = logs.Read(ctx, m.LogPath(c), opts, func(e logs.Entry) error {
		w := g.Out
		if e.Stream == "stderr" {
			w = g.Err
		}
		return logs.Format(w, e, f.timestamps)
	})
	if errors.Is(err, context.Canceled) && opts.Follow {
		return nil
	}
	if errors.Is(err, errdefs.ErrNotFound) {
		return nil
	}
	return err
}
