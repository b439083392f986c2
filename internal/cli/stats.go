package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	units "github.com/docker/go-units"
	"github.com/spf13/cobra"

	"github.com/berthsh/berth/pkg/monitor"
)

// statsRow is one line of "stats". The fields are docker's template
// fields; JSON keys come out in docker's (alphabetical) order.
type statsRow struct {
	BlockIO   string
	CPUPerc   string
	Container string
	ID        string
	MemPerc   string
	MemUsage  string
	Name      string
	NetIO     string
	PIDs      string
}

const statsTable = "table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}"

var statsFormat = listFormat{
	Table: statsTable,
	Headers: map[string]string{
		"Container": "CONTAINER",
		"ID":        "CONTAINER ID",
		"Name":      "NAME",
		"CPUPerc":   "CPU %",
		"MemUsage":  "MEM USAGE / LIMIT",
		"MemPerc":   "MEM %",
		"NetIO":     "NET I/O",
		"BlockIO":   "BLOCK I/O",
		"PIDs":      "PIDS",
	},
}

// statsRefresh is how often the streaming view redraws.
const statsRefresh = time.Second

type statsOptions struct {
	all, noStream, noTrunc bool
	format                 string
}

// addStatsCommands adds "stats" at the top level and to the "container"
// group, as docker has both.
func addStatsCommands(root *cobra.Command, g *globals) {
	root.AddCommand(newStatsCmd(g))
	for _, c := range root.Commands() {
		if c.Name() == "container" {
			c.AddCommand(newStatsCmd(g))
		}
	}
}

func newStatsCmd(g *globals) *cobra.Command {
	var o statsOptions
	cmd := &cobra.Command{
		Use:   "stats [OPTIONS] [CONTAINER...]",
		Short: "Display a live stream of container(s) resource usage statistics",
		Long: `Show CPU, memory, network, block I/O and process counts of containers:
the running ones (all with -a), or the ones named. On a terminal the view
redraws every second until interrupted; --no-stream prints one table.
CPU % is docker's: 100% is one busy core.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runStats(cmd.Context(), g, o, args)
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&o.all, "all", "a", false, "show all containers (default shows just running)")
	f.StringVar(&o.format, "format", "", "format output: 'table', 'table TEMPLATE', 'json', or a Go template")
	f.BoolVar(&o.noStream, "no-stream", false, "disable streaming stats and only pull the first result")
	f.BoolVar(&o.noTrunc, "no-trunc", false, "do not truncate output")
	return cmd
}

func runStats(ctx context.Context, g *globals, o statsOptions, names []string) error {
	// A bad --format fails before anything is read.
	if err := writeList(io.Discard, o.format, statsFormat, []any{statsRow{}}); err != nil {
		return err
	}
	m, _, err := g.openManager(ctx)
	if err != nil {
		return err
	}
	col := monitor.NewCollector(m, monitor.CollectOptions{Names: names, All: o.all})
	tty := isTTY(g.Out)
	warned := map[string]string{} // container ID -> the error last reported
	for frame := 0; ; frame++ {
		start := time.Now()
		cs, err := col.Collect(ctx)
		if err != nil {
			if frame > 0 && errors.Is(err, context.Canceled) {
				return nil // the user ended the stream
			}
			return err
		}
		// As docker: a named container that cannot be read at the start
		// is an error; later, and when listing, its row shows "--".
		if frame == 0 && len(names) > 0 {
			var errs []error
			for _, c := range cs {
				if c.Err != nil {
					errs = append(errs, c.Err)
				}
			}
			if len(errs) > 0 {
				return errors.Join(errs...)
			}
		}
		var buf bytes.Buffer
		if err := writeList(&buf, o.format, statsFormat, statsRows(cs, names, o.noTrunc)); err != nil {
			return err
		}
		if !o.noStream && tty {
			redraw(g.Out, buf.Bytes(), frame == 0)
		} else {
			if _, err := g.Out.Write(buf.Bytes()); err != nil {
				return err
			}
			// Say why a row shows "--", once per error (not on a
			// terminal's redrawn view, which it would garble).
			for _, c := range cs {
				if c.Err != nil && warned[c.ID] != c.Err.Error() {
					warned[c.ID] = c.Err.Error()
					fmt.Fprintf(g.Err, "warning: %s\n", message(c.Err))
				}
			}
		}
		if o.noStream {
			return nil
		}
		t := time.NewTimer(statsRefresh - time.Since(start))
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

// redraw paints a frame over the previous one on a terminal: cursor home,
// each line cleared to its end, the rest of the screen cleared.
func redraw(w io.Writer, frame []byte, first bool) {
	var b bytes.Buffer
	if first {
		b.WriteString("\033[2J")
	}
	b.WriteString("\033[H")
	for _, line := range strings.SplitAfter(string(frame), "\n") {
		if line == "" {
			continue
		}
		b.WriteString(strings.TrimSuffix(line, "\n"))
		b.WriteString("\033[K\n")
	}
	b.WriteString("\033[J")
	w.Write(b.Bytes())
}

// statsRows formats readings as docker's stats does. names are the
// containers as the user gave them (one reading each, in order), or nil.
func statsRows(cs []monitor.ContainerStats, names []string, noTrunc bool) []any {
	rows := make([]any, 0, len(cs))
	for i, c := range cs {
		id := c.ID
		if !noTrunc && len(id) > 12 {
			id = id[:12]
		}
		r := statsRow{
			ID:       id,
			Name:     strings.TrimPrefix(c.Name, "/"),
			CPUPerc:  formatPercent(c.CPUPercent),
			MemUsage: units.BytesSize(float64(c.MemoryUsage)) + " / " + units.BytesSize(float64(c.MemoryLimit)),
			MemPerc:  formatPercent(c.MemPercent),
			NetIO:    formatIO(c.NetRx, c.NetTx),
			BlockIO:  formatIO(c.BlockRead, c.BlockWrite),
			PIDs:     strconv.FormatUint(c.PIDs, 10),
		}
		// docker's {{.Container}}: the name or ID as given, else the
		// short ID (also with --no-trunc).
		r.Container = c.ID
		if len(r.Container) > 12 {
			r.Container = r.Container[:12]
		}
		if len(names) == len(cs) {
			r.Container = names[i]
		}
		if r.Name == "" {
			r.Name = "--"
		}
		if c.Err != nil { // docker's invalid reading
			r.CPUPerc, r.MemUsage, r.MemPerc, r.NetIO, r.BlockIO, r.PIDs = "--", "-- / --", "--", "--", "--", "--"
		}
		rows = append(rows, r)
	}
	return rows
}

func formatPercent(p float64) string { return fmt.Sprintf("%.2f%%", p) }

// formatIO is docker's "1.2kB / 648B": decimal units, three significant
// digits.
func formatIO(a, b uint64) string {
	return units.HumanSizeWithPrecision(float64(a), 3) + " / " + units.HumanSizeWithPrecision(float64(b), 3)
}
