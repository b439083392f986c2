package cli

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"time"

	units "github.com/docker/go-units"
	"github.com/spf13/cobra"

	"github.com/berthsh/berth/pkg/errdefs"
	"github.com/berthsh/berth/pkg/runtime/volume"
)

// openVolumes opens the volume store under the data directory.
func (g *globals) openVolumes(ctx context.Context) (*volume.Store, error) {
	return volume.Open(ctx, filepath.Join(g.Root, "volumes"))
}

// volumeUsers is the hook that tells the volume commands which containers
// use a volume: rm and prune refuse to delete a volume in use, and
// "ls --filter dangling=…" relies on it. It maps a volume name to the IDs
// of the containers (running or not) that mount it.
func volumeUsers(ctx context.Context, g *globals) (volume.InUseFunc, error) {
	st, err := g.openStore(ctx)
	if err != nil {
		return nil, err
	}
	m, err := g.openManagerIfAny(ctx, st)
	if err != nil {
		return nil, err
	}
	if m == nil {
		return func(string) []string { return nil }, nil
	}
	users, err := m.VolumeUsers(ctx)
	if err != nil {
		return nil, err
	}
	return func(name string) []string { return users[name] }, nil
}

// noSuchVolume turns a "not found" error for name into docker's message;
// other errors pass through.
func noSuchVolume(name string, err error) error {
	if errors.Is(err, errdefs.ErrNotFound) {
		return notFoundError("No such volume: " + name)
	}
	return err
}

func newVolumeCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "volume",
		Short: "Manage volumes",
		Long: `Manage named volumes: directories under the data directory that outlive
containers and are mounted into them (docker's "local" driver).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return cmd.Help()
		},
	}
	cmd.AddCommand(
		newVolumeCreateCmd(g),
		newVolumeLsCmd(g),
		newVolumeInspectCmd(g),
		newVolumeRmCmd(g),
		newVolumePruneCmd(g),
	)
	return cmd
}

// parseKeyValues turns K=V (or K, for an empty value) arguments into a
// map; what names the flag in errors.
func parseKeyValues(what string, args []string) (map[string]string, error) {
	if len(args) == 0 {
		return nil, nil
	}
	m := make(map[string]string, len(args))
	for _, a := range args {
		k, v, _ := strings.Cut(a, "=")
		if strings.TrimSpace(k) == "" {
			return nil, usageErrorf("invalid %s %q: the key is empty (expected KEY=VALUE)", what, a)
		}
		m[k] = v
	}
	return m, nil
}

func newVolumeCreateCmd(g *globals) *cobra.Command {
	var (
		driver, name string
		labels, opts []string
	)
	cmd := &cobra.Command{
		Use:   "create [OPTIONS] [VOLUME]",
		Short: "Create a volume",
		Long: `Create a volume and print its name. Without a name the volume gets a random
one. Creating a volume that exists returns it, unless other labels or
options are asked for.`,
		Example: `  berth volume create pgdata
  berth volume create --label project=shop cache`,
		Args: argsBetween(0, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if len(args) == 1 {
				if name != "" && name != args[0] {
					return usageError{err: errors.New("conflicting options: either specify --name or provide positional arg, not both"), cmd: cmd.CommandPath()}
				}
				name = args[0]
			}
			lm, err := parseKeyValues("label", labels)
			if err != nil {
				return err
			}
			om, err := parseKeyValues("option", opts)
			if err != nil {
				return err
			}
			st, err := g.openVolumes(ctx)
			if err != nil {
				return err
			}
			v, err := st.Create(ctx, name, volume.CreateOptions{Driver: driver, Labels: lm, DriverOpts: om})
			if err != nil {
				return err
			}
			fmt.Fprintln(g.Out, v.Name)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVarP(&driver, "driver", "d", volume.DriverLocal, "volume driver (only local)")
	f.StringArrayVar(&labels, "label", nil, "set metadata on the volume (KEY=VALUE)")
	f.StringArrayVarP(&opts, "opt", "o", nil, "set a driver option: type, device, o (as for mount -t TYPE -o O DEVICE)")
	f.StringVar(&name, "name", "", "volume name")
	f.MarkHidden("name")
	return cmd
}

// volumeRow is one line of "volume ls". The fields are docker's template
// fields and JSON keys.
type volumeRow struct {
	Availability string
	Driver       string
	Group        string
	Labels       string
	Links        string
	Mountpoint   string
	Name         string
	Scope        string
	Size         string
	Status       string

	labels map[string]string
}

// Label is the value of one label, for {{.Label "key"}} in --format.
func (r volumeRow) Label(name string) string { return r.labels[name] }

func newVolumeRow(v volume.Volume) volumeRow {
	var kv []string
	for k, val := range v.Labels {
		kv = append(kv, k+"="+val)
	}
	sort.Strings(kv)
	return volumeRow{
		Availability: "N/A",
		Driver:       v.Driver,
		Group:        "N/A",
		Labels:       strings.Join(kv, ","),
		Links:        "N/A",
		Mountpoint:   v.Mountpoint,
		Name:         v.Name,
		Scope:        v.Scope,
		Size:         "N/A",
		Status:       "N/A",
		labels:       v.Labels,
	}
}

const volumeTable = "table {{.Driver}}\t{{.Name}}"

var volumeHeaders = map[string]string{
	"Name":         "VOLUME NAME",
	"Driver":       "DRIVER",
	"Scope":        "SCOPE",
	"Mountpoint":   "MOUNTPOINT",
	"Labels":       "LABELS",
	"Links":        "LINKS",
	"Size":         "SIZE",
	"Group":        "GROUP",
	"Availability": "AVAILABILITY",
	"Status":       "STATUS",
}

func newVolumeLsCmd(g *globals) *cobra.Command {
	var (
		quiet   bool
		format  string
		filters []string
	)
	cmd := &cobra.Command{
		Use:     "ls [OPTIONS]",
		Aliases: []string{"list"},
		Short:   "List volumes",
		Example: `  berth volume ls
  berth volume ls --filter dangling=true -q
  berth volume ls --filter label=project=shop --format '{{.Name}} {{.Mountpoint}}'`,
		Args: argsBetween(0, 0),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			filter, err := volume.ParseListFilter(filters)
			if err != nil {
				return usageError{err: err, cmd: cmd.CommandPath()}
			}
			st, err := g.openVolumes(ctx)
			if err != nil {
				return err
			}
			inUse, err := volumeUsers(ctx, g)
			if err != nil {
				return err
			}
			vols, err := st.List(ctx, volume.ListOptions{Filter: filter, InUse: inUse})
			if err != nil {
				return err
			}
			if quiet && (format == "" || format == "table") {
				format = "{{.Name}}"
			}
			rows := make([]any, 0, len(vols))
			for _, v := range vols {
				rows = append(rows, newVolumeRow(v))
			}
			return writeList(g.Out, format, listFormat{Table: volumeTable, Headers: volumeHeaders}, rows)
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&quiet, "quiet", "q", false, "only show volume names")
	f.StringVar(&format, "format", "", "output format: table, json, 'table TEMPLATE' or a Go template")
	f.StringArrayVarP(&filters, "filter", "f", nil, "filter output: dangling=true|false, driver=NAME, label=KEY[=VALUE], name=NAME")
	return cmd
}

// volumeInspect is a volume as "volume inspect" prints it: docker's
// shape.
type volumeInspect struct {
	CreatedAt  string
	Driver     string
	Labels     map[string]string
	Mountpoint string
	Name       string
	Options    map[string]string
	Scope      string
}

func newVolumeInspectCmd(g *globals) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "inspect [OPTIONS] VOLUME [VOLUME...]",
		Short: "Display detailed information on one or more volumes",
		Example: `  berth volume inspect pgdata
  berth volume inspect --format '{{.Mountpoint}}' pgdata`,
		Args: argsBetween(1, -1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			st, err := g.openVolumes(ctx)
			if err != nil {
				return err
			}
			var objs []any
			var errs []error
			for _, name := range args {
				v, err := st.Get(ctx, name)
				if err != nil {
					errs = append(errs, noSuchVolume(name, err))
					continue
				}
				objs = append(objs, volumeInspect{
					CreatedAt:  v.CreatedAt.Local().Format(time.RFC3339),
					Driver:     v.Driver,
					Labels:     v.Labels,
					Mountpoint: v.Mountpoint,
					Name:       v.Name,
					Options:    v.Options,
					Scope:      v.Scope,
				})
			}
			if err := writeFormatted(g.Out, format, objs); err != nil {
				return err
			}
			return errors.Join(errs...)
		},
	}
	cmd.Flags().StringVarP(&format, "format", "f", "", "output format: json or a Go template")
	return cmd
}

func newVolumeRmCmd(g *globals) *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:     "rm [OPTIONS] VOLUME [VOLUME...]",
		Aliases: []string{"remove"},
		Short:   "Remove one or more volumes",
		Long: `Remove volumes and their data. A volume a container uses is not removed,
even with --force.`,
		Example: `  berth volume rm pgdata`,
		Args:    argsBetween(1, -1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			st, err := g.openVolumes(ctx)
			if err != nil {
				return err
			}
			inUse, err := volumeUsers(ctx, g)
			if err != nil {
				return err
			}
			return forEachName(g, args, func(name string) error {
				if err := st.Remove(ctx, name, volume.RemoveOptions{Force: force, InUse: inUse}); err != nil {
					return noSuchVolume(name, err)
				}
				return nil
			})
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "do not fail on volumes that do not exist")
	return cmd
}

const (
	volumePruneWarning = `WARNING! This will remove anonymous local volumes not used by at least one container.
Are you sure you want to continue?`
	volumePruneAllWarning = `WARNING! This will remove all local volumes not used by at least one container.
Are you sure you want to continue?`
)

func newVolumePruneCmd(g *globals) *cobra.Command {
	var (
		all, force bool
		filters    []string
	)
	cmd := &cobra.Command{
		Use:   "prune [OPTIONS]",
		Short: "Remove unused volumes",
		Long: `Remove the anonymous volumes no container uses, or with --all every volume
no container uses.`,
		Example: `  berth volume prune -f
  berth volume prune -a --filter label!=keep`,
		Args: argsBetween(0, 0),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			filter, err := volume.ParsePruneFilter(filters)
			if err != nil {
				return usageError{err: err, cmd: cmd.CommandPath()}
			}
			if !force {
				warning := volumePruneWarning
				if all {
					warning = volumePruneAllWarning
				}
				if !promptConfirm(g.In, g.Out, warning) {
					// Docker exits 1 without a message when the user declines.
					return exitCodeError{code: exitFailure}
				}
			}
			st, err := g.openVolumes(ctx)
			if err != nil {
				return err
			}
			inUse, err := volumeUsers(ctx, g)
			if err != nil {
				return err
			}
			removed, reclaimed, err := st.Prune(ctx, volume.PruneOptions{All: all, Filter: filter, InUse: inUse})
			if len(removed) > 0 {
				fmt.Fprintln(g.Out, "Deleted Volumes:")
				for _, n := range removed {
					fmt.Fprintln(g.Out, n)
				}
				fmt.Fprintln(g.Out)
			}
			if err != nil {
				return err
			}
			fmt.Fprintln(g.Out, "Total reclaimed space:", units.HumanSize(float64(reclaimed)))
			return nil
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&all, "all", "a", false, "remove all unused volumes, not just anonymous ones")
	f.BoolVarP(&force, "force", "f", false, "do not prompt for confirmation")
	f.StringArrayVar(&filters, "filter", nil, "only prune volumes that match: label=KEY[=VALUE], label!=KEY[=VALUE]")
	return cmd
}
