package cli

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	units "github.com/docker/go-units"
	"github.com/spf13/cobra"

	"github.com/berthsh/berth/pkg/errdefs"
	"github.com/berthsh/berth/pkg/store"
)

// inspector finds objects of one type by name or ID for "inspect". get
// returns an error wrapping errdefs.ErrNotFound when name is not an object
// of its type, so the next inspector is tried.
type inspector struct {
	typ string
	get func(name string) (any, error)
}

// objectInspectors are the types "inspect" knows, in the order it tries
// them for a name.
func objectInspectors(ctx context.Context, g *globals) []inspector {
	return []inspector{
		{typ: "container", get: containerInspector(ctx, g)},
		{typ: "image", get: imageInspector(ctx, g)},
	}
}

// imageInspector returns the Docker-shaped inspect object of an image. The
// store is opened on first use.
func imageInspector(ctx context.Context, g *globals) func(string) (any, error) {
	var st *store.Store
	return func(name string) (any, error) {
		if st == nil {
			s, err := g.openStore(ctx)
			if err != nil {
				return nil, err
			}
			st = s
		}
		img, err := st.Get(ctx, name)
		if err != nil {
			return nil, err
		}
		return st.Inspect(ctx, img)
	}
}

// runInspect prints the objects found for names as docker's inspect does:
// everything found (a JSON array or the template per object), then one
// error line per name that was not, and exit status 1 if there was one.
func runInspect(g *globals, inspectors []inspector, names []string, format string, notFound func(string) string) error {
	var objs []any
	var msgs []string
	for _, name := range names {
		found := false
		for _, ins := range inspectors {
			obj, err := ins.get(name)
			if errors.Is(err, errdefs.ErrNotFound) {
				continue
			}
			found = true
			if err != nil {
				msgs = append(msgs, err.Error())
			} else {
				objs = append(objs, obj)
			}
			break
		}
		if !found {
			msgs = append(msgs, notFound(name))
		}
	}
	if err := writeFormatted(g.Out, format, objs); err != nil {
		return err
	}
	for _, m := range msgs {
		fmt.Fprintln(g.Err, "Error:", m)
	}
	if len(msgs) > 0 {
		return exitCodeError{code: exitFailure}
	}
	return nil
}

func newInspectCmd(g *globals) *cobra.Command {
	var format, typ string
	cmd := &cobra.Command{
		Use:   "inspect [OPTIONS] NAME|ID [NAME|ID...]",
		Short: "Return low-level information on berth objects",
		Long: `Print objects as a JSON array, or format each with a Go template whose
fields are the JSON keys ({{.Id}}, {{.Config.Cmd}}, {{json .Config}}).`,
		Example: `  berth inspect python:3.11
  berth inspect -f '{{.Id}}' python:3.11
  berth inspect -f '{{index .RepoTags 0}} {{.Config.Cmd}}' 0e5b3f2a1c9d`,
		Args: argsBetween(1, -1),
		RunE: func(cmd *cobra.Command, args []string) error {
			all := objectInspectors(cmd.Context(), g)
			var use []inspector
			var types []string
			for _, ins := range all {
				types = append(types, ins.typ)
				if typ == "" || typ == ins.typ {
					use = append(use, ins)
				}
			}
			if len(use) == 0 {
				return usageError{err: fmt.Errorf(`unknown type: %q: must be one of "%s"`, typ, strings.Join(types, `", "`)), cmd: cmd.CommandPath()}
			}
			return runInspect(g, use, args, format, func(name string) string { return "No such object: " + name })
		},
	}
	cmd.Flags().StringVarP(&format, "format", "f", "", "format the output with a Go template, or json")
	cmd.Flags().StringVar(&typ, "type", "", "only inspect objects of the given type (container, image)")
	return cmd
}

func newImageInspectCmd(g *globals) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "inspect [OPTIONS] IMAGE [IMAGE...]",
		Short: "Display detailed information on one or more images",
		Long: `Print images as docker's JSON array, or format each with a Go template.
Size is the stored (compressed) size of the image.`,
		Args: argsBetween(1, -1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ins := []inspector{{typ: "image", get: imageInspector(cmd.Context(), g)}}
			return runInspect(g, ins, args, format, func(name string) string { return "No such image: " + name })
		},
	}
	cmd.Flags().StringVarP(&format, "format", "f", "", "format the output with a Go template, or json")
	return cmd
}

// historyRow is one line of "history"; the fields are docker's template
// fields and JSON keys.
type historyRow struct {
	Comment      string
	CreatedAt    string
	CreatedBy    string
	CreatedSince string
	ID           string
	Size         string
}

const (
	historyTable         = "table {{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}"
	historyTableNonHuman = "table {{.ID}}\t{{.CreatedAt}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}"
)

var historyHeaders = map[string]string{
	"ID":           "IMAGE",
	"CreatedSince": "CREATED",
	"CreatedAt":    "CREATED AT",
	"CreatedBy":    "CREATED BY",
	"Size":         "SIZE",
	"Comment":      "COMMENT",
}

// historyEpoch: steps created before it show "N/A" as their age, as in
// docker (reproducible builds set 1970).
var historyEpoch = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// ellipsis cuts s to n runes, ending in "…" when it was longer.
func ellipsis(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n-1]) + "…"
}

func newHistoryRow(e store.HistoryEntry, trunc, human bool) historyRow {
	created := time.Unix(0, 0)
	if !e.Created.IsZero() {
		created = time.Unix(e.Created.Unix(), 0)
	}
	r := historyRow{
		Comment:   e.Comment,
		CreatedAt: created.Format(time.RFC3339),
		CreatedBy: strings.ReplaceAll(e.CreatedBy, "\t", " "),
		ID:        truncID(e.ID, trunc),
		Size:      strconv.FormatInt(e.Size, 10),
	}
	r.CreatedSince = r.CreatedAt
	if human {
		r.CreatedSince = "N/A"
		if created.After(historyEpoch) {
			r.CreatedSince = units.HumanDuration(time.Now().UTC().Sub(created)) + " ago"
		}
		r.Size = units.HumanSizeWithPrecision(float64(e.Size), 3)
	}
	if trunc {
		r.CreatedBy = ellipsis(r.CreatedBy, 45)
	}
	return r
}

func newHistoryCmd(g *globals) *cobra.Command {
	var human, quiet, noTrunc bool
	var format string
	cmd := &cobra.Command{
		Use:   "history [OPTIONS] IMAGE",
		Short: "Show the history of an image",
		Long: `Show the build steps recorded in an image's config, newest first. SIZE is
the stored (compressed) size of the layer a step created.`,
		Args: argsBetween(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			st, err := g.openStore(ctx)
			if err != nil {
				return err
			}
			img, err := st.Get(ctx, args[0])
			if err != nil {
				return noSuchImage(args[0], err)
			}
			entries, err := st.History(ctx, img)
			if err != nil {
				return err
			}
			if format == "" || format == "table" {
				switch {
				case quiet:
					format = "{{.ID}}"
				case !human:
					format = historyTableNonHuman
				default:
					format = historyTable
				}
			}
			rows := make([]any, 0, len(entries))
			for _, e := range entries {
				rows = append(rows, newHistoryRow(e, !noTrunc, human))
			}
			return writeList(g.Out, format, listFormat{Table: historyTable, Headers: historyHeaders}, rows)
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&human, "human", "H", true, "print sizes and dates in human readable format")
	f.BoolVarP(&quiet, "quiet", "q", false, "only show image IDs")
	f.BoolVar(&noTrunc, "no-trunc", false, "don't truncate output")
	f.StringVar(&format, "format", "", "output format: table, json, 'table TEMPLATE' or a Go template")
	return cmd
}
