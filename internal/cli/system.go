package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	units "github.com/docker/go-units"
	"github.com/spf13/cobra"

	"github.com/berthsh/berth/pkg/build"
	"github.com/berthsh/berth/pkg/runtime"
	"github.com/berthsh/berth/pkg/store"
)

// newSystemCmd returns the "system" group.
func newSystemCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "system",
		Short: "Manage berth's data",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return cmd.Help()
		},
	}
	cmd.AddCommand(newSystemDfCmd(g), newSystemResetCmd(g))
	return cmd
}

// diskUsageRow is one TYPE line of "system df"; the fields are docker's
// template fields and JSON keys.
type diskUsageRow struct {
	Active      string
	Reclaimable string
	Size        string
	TotalCount  string
	Type        string
}

func newDiskUsageRow(typ string, total, active int, size, reclaimable int64) diskUsageRow {
	r := diskUsageRow{
		Type:        typ,
		TotalCount:  strconv.Itoa(total),
		Active:      strconv.Itoa(active),
		Size:        units.HumanSize(float64(size)),
		Reclaimable: units.HumanSize(float64(reclaimable)),
	}
	if size > 0 {
		r.Reclaimable = fmt.Sprintf("%s (%d%%)", r.Reclaimable, reclaimable*100/size)
	}
	return r
}

const diskUsageTable = "table {{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}"

var diskUsageHeaders = map[string]string{
	"Type":        "TYPE",
	"TotalCount":  "TOTAL",
	"Active":      "ACTIVE",
	"Size":        "SIZE",
	"Reclaimable": "RECLAIMABLE",
}

// diskUsageSection is one kind of object's share of the disk: its
// summary row and the detail table "system df -v" prints.
type diskUsageSection struct {
	Row diskUsageRow
	// Key names the items in "system df -v --format json".
	Key string
	// Heading precedes the detail table.
	Heading string
	Table   listFormat
	Items   []any
}

// diskUsageSections gathers every section, in docker's order. trunc
// shortens IDs in the detail rows.
func diskUsageSections(ctx context.Context, g *globals, trunc bool) ([]diskUsageSection, error) {
	images, err := imagesDiskUsage(ctx, g, trunc)
	if err != nil {
		return nil, err
	}
	containers, err := containersDiskUsage(ctx, g, trunc)
	if err != nil {
		return nil, err
	}
	buildCache, err := buildCacheDiskUsage(ctx, g)
	if err != nil {
		return nil, err
	}
	return []diskUsageSection{images, containers, volumesDiskUsage(), buildCache}, nil
}

const diskUsageImagesTable = "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}\t{{.SharedSize}}\t{{.UniqueSize}}\t{{.Containers}}"

func imagesDiskUsage(ctx context.Context, g *globals, trunc bool) (diskUsageSection, error) {
	st, err := g.openStore(ctx)
	if err != nil {
		return diskUsageSection{}, err
	}
	perImage, err := imageContainers(ctx, g, st)
	if err != nil {
		return diskUsageSection{}, err
	}
	du, err := st.DiskUsage(ctx, store.DiskUsageOptions{Containers: perImage})
	if err != nil {
		return diskUsageSection{}, err
	}
	sec := diskUsageSection{
		Row:     newDiskUsageRow("Images", len(du.Images), du.Active, du.Size, du.Reclaimable),
		Key:     "Images",
		Heading: "Images space usage:",
		Table:   listFormat{Table: diskUsageImagesTable, Headers: imageHeaders},
		Items:   []any{},
	}
	for _, u := range du.Images {
		r := imageRow{
			Containers:   strconv.Itoa(u.Containers),
			CreatedAt:    createdAt(u.Created),
			CreatedSince: createdSince(u.Created),
			Digest:       "<none>",
			ID:           imageID(u.ID, trunc),
			Repository:   "<none>",
			SharedSize:   units.HumanSize(float64(u.SharedSize)),
			Size:         units.HumanSizeWithPrecision(float64(u.Size), 3),
			Tag:          "<none>",
			UniqueSize:   units.HumanSize(float64(u.UniqueSize())),
		}
		if len(u.Names) > 0 { // docker shows the first name only
			r.Repository, r.Tag = u.Names[0].FamiliarRepository(), u.Names[0].Tag()
		}
		sec.Items = append(sec.Items, r)
	}
	return sec, nil
}

// containersDiskUsage is the Containers section: every container, the
// running ones active, sized by their writable layer; what stopped ones
// use is reclaimable (container prune).
func containersDiskUsage(ctx context.Context, g *globals, trunc bool) (diskUsageSection, error) {
	sec := diskUsageSection{
		Key:     "Containers",
		Heading: "Containers space usage:",
		Table: listFormat{
			Table: "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.LocalVolumes}}\t{{.Size}}\t{{.RunningFor}}\t{{.Status}}\t{{.Names}}",
			Headers: map[string]string{"ID": "CONTAINER ID", "Image": "IMAGE", "Command": "COMMAND", "LocalVolumes": "LOCAL VOLUMES",
				"Size": "SIZE", "RunningFor": "CREATED", "Status": "STATUS", "Names": "NAMES"},
		},
		Items: []any{},
	}
	var cs []runtime.Container
	st, err := g.openStore(ctx)
	if err != nil {
		return sec, err
	}
	m, err := g.openManagerIfAny(ctx, st)
	if err != nil {
		return sec, err
	}
	if m != nil {
		if cs, err = m.List(ctx, runtime.ListOptions{All: true}); err != nil {
			return sec, err
		}
	}
	var size, reclaimable int64
	active := 0
	r := &commandResolver{ctx: ctx, st: st}
	now := time.Now()
	for _, c := range cs {
		n := dirSize(filepath.Join(c.Dir, runtime.UpperDir))
		size += n
		if c.State.Running {
			active++
		} else {
			reclaimable += n
		}
		row := newPsRow(c, r, trunc, false, now)
		row.Size = units.HumanSizeWithPrecision(float64(n), 3)
		sec.Items = append(sec.Items, row)
	}
	sec.Row = newDiskUsageRow("Containers", len(cs), active, size, reclaimable)
	return sec, nil
}

// volumesDiskUsage is the Local Volumes section (empty until berth has
// volumes).
func volumesDiskUsage() diskUsageSection {
	return diskUsageSection{
		Row:     newDiskUsageRow("Local Volumes", 0, 0, 0, 0),
		Key:     "Volumes",
		Heading: "Local Volumes space usage:",
		Table: listFormat{
			Table:   "table {{.Name}}\t{{.Links}}\t{{.Size}}",
			Headers: map[string]string{"Name": "VOLUME NAME", "Links": "LINKS", "Size": "SIZE"},
		},
		Items: []any{},
	}
}

// buildCacheDiskUsage is the Build Cache section: the cached build steps'
// layers that no image uses and the RUN cache mounts (no detail rows).
func buildCacheDiskUsage(ctx context.Context, g *globals) (diskUsageSection, error) {
	s, err := g.openStore(ctx)
	if err != nil {
		return diskUsageSection{}, err
	}
	u, err := build.Usage(ctx, s, g.Root)
	if err != nil {
		return diskUsageSection{}, err
	}
	size := u.Size
	return diskUsageSection{
		Row:     newDiskUsageRow("Build Cache", u.Entries, 0, size, u.Reclaimable),
		Key:     "BuildCache",
		Heading: "Build cache usage: " + units.HumanSize(float64(size)),
		Table: listFormat{
			Table: "table {{.ID}}\t{{.CacheType}}\t{{.Size}}\t{{.CreatedSince}}\t{{.LastUsedSince}}\t{{.UsageCount}}\t{{.Shared}}",
			Headers: map[string]string{"ID": "CACHE ID", "CacheType": "CACHE TYPE", "Size": "SIZE", "CreatedSince": "CREATED",
				"LastUsedSince": "LAST USED", "UsageCount": "USAGE", "Shared": "SHARED"},
		},
		Items: []any{},
	}, nil
}

func newSystemDfCmd(g *globals) *cobra.Command {
	var verbose bool
	var format string
	cmd := &cobra.Command{
		Use:   "df [OPTIONS]",
		Short: "Show berth disk usage",
		Long: `Show how much space images (and, as berth gains them, containers, volumes
and the build cache) take. Image sizes are stored (compressed) sizes; a blob
shared by several images is counted once. RECLAIMABLE is what 'berth image
prune' would free: the blobs only dangling images use.`,
		Args: argsBetween(0, 0),
		RunE: func(cmd *cobra.Command, args []string) error {
			// -v prints docker's fixed tables for any "table" format.
			table := format == "" || strings.HasPrefix(format, "table")
			secs, err := diskUsageSections(cmd.Context(), g, table)
			if err != nil {
				return err
			}
			if !verbose {
				rows := make([]any, 0, len(secs))
				for _, s := range secs {
					rows = append(rows, s.Row)
				}
				return writeList(g.Out, format, listFormat{Table: diskUsageTable, Headers: diskUsageHeaders}, rows)
			}
			if table {
				for i, s := range secs {
					if i > 0 {
						fmt.Fprintln(g.Out)
					}
					fmt.Fprintf(g.Out, "%s\n\n", s.Heading)
					if err := writeList(g.Out, "", s.Table, s.Items); err != nil {
						return err
					}
				}
				return nil
			}
			all := map[string][]any{}
			for _, s := range secs {
				all[s.Key] = s.Items
			}
			if format == "json" {
				enc := json.NewEncoder(g.Out)
				enc.SetEscapeHTML(false)
				return enc.Encode(all)
			}
			t, err := parseTemplate(strings.NewReplacer(`\t`, "\t", `\n`, "\n").Replace(format))
			if err != nil {
				return err
			}
			if err := t.Execute(g.Out, all); err != nil {
				return usageErrorf("invalid --format template: %v", err)
			}
			fmt.Fprintln(g.Out)
			return nil
		},
	}
	cmd.Flags().BoolVarP(&verbose, "verbose", "v", false, "show detailed information on space usage")
	cmd.Flags().StringVar(&format, "format", "", "output format: table, json, 'table TEMPLATE' or a Go template")
	return cmd
}

func newSystemResetCmd(g *globals) *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   "reset [-f]",
		Short: "Remove all containers, images, volumes, networks and the build cache of this data directory",
		Long: `Remove everything berth keeps under the data directory (--root): containers
(running ones are killed), their networks' bridges and firewall rules, then the
directory itself with images, volumes and the build cache.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if !force && !confirm(g, "WARNING! This will remove all containers, images, volumes, networks and the build cache in "+g.Root+".\nAre you sure you want to continue? [y/N] ") {
				return exitCodeError{code: exitFailure}
			}
			ctx := cmd.Context()
			m, _, err := g.openManager(ctx)
			if err != nil {
				return err
			}
			if err := m.Reset(ctx); err != nil {
				return err
			}
			if err := os.RemoveAll(g.Root); err != nil {
				return fmt.Errorf("reset: remove %s: %w", g.Root, err)
			}
			return nil
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "do not prompt for confirmation")
	return cmd
}
