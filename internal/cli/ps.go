package cli

import (
	"context"
	"fmt"
	"io/fs"
	"net"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	units "github.com/docker/go-units"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/spf13/cobra"

	"github.com/berthsh/berth/pkg/reference"
	"github.com/berthsh/berth/pkg/runtime"
	"github.com/berthsh/berth/pkg/store"
)

// psRow is one line of "ps". The fields are docker's template fields and
// JSON keys.
type psRow struct {
	Command      string
	CreatedAt    string
	ID           string
	Image        string
	Labels       string
	LocalVolumes string
	Mounts       string
	Names        string
	Networks     string
	Ports        string
	RunningFor   string
	Size         string
	State        string
	Status       string

	labels map[string]string
}

// Label is docker's {{.Label "key"}}.
func (r psRow) Label(key string) string { return r.labels[key] }

const (
	psTable     = "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}"
	psTableSize = psTable + "\t{{.Size}}"
)

var psHeaders = map[string]string{
	"ID":           "CONTAINER ID",
	"Image":        "IMAGE",
	"Command":      "COMMAND",
	"CreatedAt":    "CREATED AT",
	"RunningFor":   "CREATED",
	"Status":       "STATUS",
	"Ports":        "PORTS",
	"Names":        "NAMES",
	"Size":         "SIZE",
	"Labels":       "LABELS",
	"Mounts":       "MOUNTS",
	"Networks":     "NETWORKS",
	"State":        "STATE",
	"LocalVolumes": "LOCAL VOLUMES",
}

// containerState is docker's State field: running, paused, exited, …
func containerState(st runtime.State) string {
	switch {
	case st.Paused && st.Running:
		return runtime.StatusPaused
	case st.Restarting:
		return runtime.StatusRestarting
	case st.Status != "":
		return st.Status
	case st.Running:
		return runtime.StatusRunning
	}
	return runtime.StatusCreated
}

// containerStatus is docker's STATUS column ("Up 3 minutes",
// "Exited (0) 2 seconds ago", …) at time now.
func containerStatus(st runtime.State, now time.Time) string {
	since := func(t time.Time) string { return units.HumanDuration(now.Sub(t)) }
	switch containerState(st) {
	case runtime.StatusRestarting:
		return fmt.Sprintf("Restarting (%d) %s ago", st.ExitCode, since(st.FinishedAt))
	case runtime.StatusPaused:
		return fmt.Sprintf("Up %s (Paused)", since(st.StartedAt))
	case runtime.StatusRunning:
		if h := st.Health; h != nil && h.Status != "" {
			hs := h.Status
			if hs == "starting" {
				hs = "health: starting"
			}
			return fmt.Sprintf("Up %s (%s)", since(st.StartedAt), hs)
		}
		return "Up " + since(st.StartedAt)
	case runtime.StatusRemoving:
		return "Removal In Progress"
	case runtime.StatusDead:
		return "Dead"
	}
	if st.StartedAt.IsZero() {
		return "Created"
	}
	if st.FinishedAt.IsZero() {
		return ""
	}
	return fmt.Sprintf("Exited (%d) %s ago", st.ExitCode, since(st.FinishedAt))
}

// displayPorts is docker's PORTS column: bindings sorted by container
// port, consecutive ports grouped into ranges.
func displayPorts(ports []runtime.PortBinding) string {
	sorted := slices.Clone(ports)
	sort.SliceStable(sorted, func(i, j int) bool {
		a, b := sorted[i], sorted[j]
		if a.ContainerPort != b.ContainerPort {
			return a.ContainerPort < b.ContainerPort
		}
		if a.HostIP != b.HostIP {
			return a.HostIP < b.HostIP
		}
		if a.HostPort != b.HostPort {
			return a.HostPort < b.HostPort
		}
		return a.Proto < b.Proto
	})
	type group struct {
		ip, proto         string
		cFirst, cLast     uint16
		hFirst, hLast     uint16
		published, closed bool
	}
	var groups []*group
	open := map[string]*group{}
	for _, p := range sorted {
		proto := cmpOr(p.Proto, "tcp")
		ip := p.HostIP
		if ip == "" && p.HostPort != 0 {
			ip = "0.0.0.0"
		}
		key := ip + "/" + proto
		if g := open[key]; g != nil && p.ContainerPort == g.cLast+1 && (!g.published || p.HostPort == g.hLast+1) {
			g.cLast, g.hLast = p.ContainerPort, p.HostPort
			continue
		}
		g := &group{ip: ip, proto: proto, cFirst: p.ContainerPort, cLast: p.ContainerPort, hFirst: p.HostPort, hLast: p.HostPort, published: p.HostPort != 0}
		open[key] = g
		groups = append(groups, g)
	}
	rng := func(a, b uint16) string {
		if a == b {
			return strconv.Itoa(int(a))
		}
		return fmt.Sprintf("%d-%d", a, b)
	}
	out := make([]string, 0, len(groups))
	for _, g := range groups {
		if !g.published {
			out = append(out, fmt.Sprintf("%s/%s", rng(g.cFirst, g.cLast), g.proto))
			continue
		}
		out = append(out, fmt.Sprintf("%s->%s/%s", net.JoinHostPort(g.ip, rng(g.hFirst, g.hLast)), rng(g.cFirst, g.cLast), g.proto))
	}
	return strings.Join(out, ", ")
}

// commandResolver finds the command a container runs: its config's, or
// for a container that takes the image's, the image config's. Image
// configs are read once per image.
type commandResolver struct {
	ctx     context.Context
	st      *store.Store
	configs map[v1.Hash]*v1.Config
}

// command returns docker's Path and Args of c.
func (r *commandResolver) command(c runtime.Container) (string, []string) {
	co := c.Config.Create
	var img *v1.Config
	if !co.EntrypointSet || len(co.Cmd) == 0 {
		img = r.imageConfig(c)
	}
	var entrypoint, cmd []string
	if img != nil {
		entrypoint, cmd = img.Entrypoint, img.Cmd
	}
	if co.EntrypointSet {
		entrypoint, cmd = co.Entrypoint, nil
	}
	if len(co.Cmd) > 0 {
		cmd = co.Cmd
	}
	all := append(slices.Clone(entrypoint), cmd...)
	if len(all) == 0 {
		return "", []string{}
	}
	return all[0], all[1:]
}

func (r *commandResolver) imageConfig(c runtime.Container) *v1.Config {
	if r == nil || r.st == nil {
		return nil
	}
	d := c.Config.ImageDigest
	if cfg, ok := r.configs[d]; ok {
		return cfg
	}
	if r.configs == nil {
		r.configs = map[v1.Hash]*v1.Config{}
	}
	var cfg *v1.Config
	img := store.Image{Manifest: v1.Descriptor{Digest: d}}
	if d.Hex == "" {
		if found, err := r.st.Get(r.ctx, c.Config.Image); err == nil {
			img = found
		}
	}
	if cf, _, err := r.st.ConfigFile(r.ctx, img); err == nil {
		cfg = &cf.Config
	}
	r.configs[d] = cfg
	return cfg
}

// commandLine is docker's COMMAND: the command, quoted, cut to 20
// characters unless noTrunc.
func commandLine(p string, args []string, trunc bool) string {
	s := strings.TrimSpace(strings.Join(append([]string{p}, args...), " "))
	if trunc {
		s = ellipsis(s, 20)
	}
	return strconv.Quote(s)
}

// sortedLabels is "k=v,k2=v2", sorted.
func sortedLabels(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, k+"="+m[k])
	}
	return strings.Join(parts, ",")
}

// containerNetworks are the names of the networks c is on.
func containerNetworks(c runtime.Container) []string {
	var names []string
	for _, e := range c.State.Endpoints {
		names = append(names, e.Network)
	}
	if len(names) == 0 {
		names = c.Config.Networks
	}
	if len(names) == 0 && c.Config.NetworkMode != "" {
		names = []string{c.Config.NetworkMode}
	}
	return dedupe(names)
}

// dirSize is the total size of the regular files under dir.
func dirSize(dir string) int64 {
	var n int64
	_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}

// newPsRow builds c's row at time now.
func newPsRow(c runtime.Container, r *commandResolver, trunc, size bool, now time.Time) psRow {
	p, args := r.command(c)
	row := psRow{
		Command:    commandLine(p, args, trunc),
		CreatedAt:  createdAt(c.Config.Created),
		ID:         c.Config.ID,
		Image:      c.Config.Image,
		Labels:     sortedLabels(c.Config.Labels),
		Names:      containerName(c),
		Networks:   strings.Join(containerNetworks(c), ","),
		Ports:      displayPorts(c.State.Ports),
		RunningFor: units.HumanDuration(now.Sub(c.Config.Created)) + " ago",
		State:      containerState(c.State),
		Status:     containerStatus(c.State, now),
		labels:     c.Config.Labels,
	}
	if trunc {
		row.ID = c.ShortID()
		if strings.HasPrefix(row.Image, "sha256:") {
			row.Image = truncID(row.Image, true)
		}
	}
	var mounts []string
	vols := 0
	for _, m := range c.Config.Mounts {
		name := m.Source
		if m.Type == runtime.MountTypeVolume {
			vols++
			if name == "" {
				name = runtime.AnonymousVolumeName(c.Config.ID, m.Target)
			}
		}
		if name == "" {
			name = m.Target
		}
		if trunc {
			name = ellipsis(name, 15)
		}
		mounts = append(mounts, name)
	}
	row.Mounts = strings.Join(mounts, ",")
	row.LocalVolumes = strconv.Itoa(vols)
	if size {
		row.Size = units.HumanSizeWithPrecision(float64(dirSize(filepath.Join(c.Dir, runtime.UpperDir))), 3)
	}
	return row
}

// psFilter is a parsed set of ps --filter values.
type psFilter struct {
	status, names, ids, ancestors, exited []string
	health, restartPolicies               []string
	labels                                map[string]*string
	namesRE                               []*regexp.Regexp
}

var psStatuses = []string{"created", "restarting", "running", "removing", "paused", "exited", "dead"}

// psHealths are the values of the health filter ("none": no health check).
var psHealths = []string{"starting", "healthy", "unhealthy", "none"}

// healthStatus is c's health status for the health filter.
func healthStatus(st runtime.State) string {
	if st.Health == nil || st.Health.Status == "" {
		return "none"
	}
	return st.Health.Status
}

// restartPolicyName is c's restart policy name for the restart-policy
// filter.
func restartPolicyName(c runtime.Container) string {
	if c.Config.RestartPolicy.Name == "" {
		return runtime.RestartNo
	}
	return c.Config.RestartPolicy.Name
}

func parsePsFilter(args []string) (psFilter, error) {
	var f psFilter
	for _, a := range args {
		k, v, ok := strings.Cut(a, "=")
		if !ok {
			return f, usageErrorf("bad format of filter (expected name=value): %s", a)
		}
		switch strings.ToLower(k) {
		case "status":
			if !slices.Contains(psStatuses, v) {
				return f, usageErrorf("invalid filter 'status=%s': want one of %s", v, strings.Join(psStatuses, ", "))
			}
			f.status = append(f.status, v)
		case "name":
			re, err := regexp.Compile(v)
			if err != nil {
				return f, usageErrorf("invalid filter 'name=%s': %v", v, err)
			}
			f.names = append(f.names, v)
			f.namesRE = append(f.namesRE, re)
		case "id":
			f.ids = append(f.ids, v)
		case "ancestor":
			f.ancestors = append(f.ancestors, v)
		case "exited":
			if _, err := strconv.Atoi(v); err != nil {
				return f, usageErrorf("invalid filter 'exited=%s': want an exit code", v)
			}
			f.exited = append(f.exited, v)
		case "health":
			if !slices.Contains(psHealths, v) {
				return f, usageErrorf("invalid filter 'health=%s': want one of %s", v, strings.Join(psHealths, ", "))
			}
			f.health = append(f.health, v)
		case "restart-policy":
			if err := runtime.CheckRestartPolicyName(v); err != nil {
				return f, usageErrorf("invalid filter 'restart-policy=%s': want one of no, always, on-failure, unless-stopped", v)
			}
			f.restartPolicies = append(f.restartPolicies, v)
		case "label":
			if f.labels == nil {
				f.labels = map[string]*string{}
			}
			lk, lv, hasV := strings.Cut(v, "=")
			if hasV {
				f.labels[lk] = &lv
			} else {
				f.labels[lk] = nil
			}
		default:
			return f, usageErrorf("invalid filter '%s'", k)
		}
	}
	return f, nil
}

// impliesAll reports whether the filter looks at stopped containers.
func (f psFilter) impliesAll() bool {
	return len(f.exited) > 0 || slices.ContainsFunc(f.status, func(s string) bool { return s != "running" })
}

// sameImage reports whether the container's image is ancestor (a name,
// normalised, or an ID prefix).
func sameImage(c runtime.Container, ancestor string) bool {
	if c.Config.Image == ancestor {
		return true
	}
	if a, err := reference.Parse(ancestor); err == nil {
		if ci, err := reference.Parse(c.Config.Image); err == nil && ci.String() == a.String() {
			return true
		}
	}
	id := strings.TrimPrefix(ancestor, "sha256:")
	return len(id) >= 4 && c.Config.ImageID.Hex != "" && strings.HasPrefix(c.Config.ImageID.Hex, id)
}

func (f psFilter) match(c runtime.Container) bool {
	if len(f.status) > 0 && !slices.Contains(f.status, containerState(c.State)) {
		return false
	}
	if len(f.health) > 0 && !slices.Contains(f.health, healthStatus(c.State)) {
		return false
	}
	if len(f.restartPolicies) > 0 && !slices.Contains(f.restartPolicies, restartPolicyName(c)) {
		return false
	}
	if len(f.namesRE) > 0 && !slices.ContainsFunc(f.namesRE, func(re *regexp.Regexp) bool { return re.MatchString(containerName(c)) }) {
		return false
	}
	if len(f.ids) > 0 && !slices.ContainsFunc(f.ids, func(id string) bool { return strings.HasPrefix(c.Config.ID, id) }) {
		return false
	}
	if len(f.ancestors) > 0 && !slices.ContainsFunc(f.ancestors, func(a string) bool { return sameImage(c, a) }) {
		return false
	}
	if len(f.exited) > 0 {
		if containerState(c.State) != runtime.StatusExited || !slices.Contains(f.exited, strconv.Itoa(c.State.ExitCode)) {
			return false
		}
	}
	for k, v := range f.labels {
		got, ok := c.Config.Labels[k]
		if !ok || (v != nil && got != *v) {
			return false
		}
	}
	return true
}

func newPsCmd(g *globals, use string) *cobra.Command {
	var all, quiet, latest, noTrunc, size bool
	var last int
	var filters []string
	var format string
	cmd := &cobra.Command{
		Use:   use,
		Short: "List containers",
		Long: `List running containers (all with -a), newest first. Filters: status=,
name= (regular expression), id= (prefix), label=KEY[=VALUE], ancestor=IMAGE,
exited=CODE, health=starting|healthy|unhealthy|none,
restart-policy=no|always|on-failure|unless-stopped.`,
		Args: argsBetween(0, 0),
		RunE: func(cmd *cobra.Command, args []string) error {
			flt, err := parsePsFilter(filters)
			if err != nil {
				return err
			}
			if latest {
				last = 1
			}
			ctx := cmd.Context()
			m, st, err := g.openManager(ctx)
			if err != nil {
				return err
			}
			list, err := m.List(ctx, runtime.ListOptions{All: all || last > 0 || flt.impliesAll()})
			if err != nil {
				return err
			}
			var cs []runtime.Container
			for _, c := range list {
				if flt.match(c) {
					cs = append(cs, c)
				}
			}
			if last > 0 && len(cs) > last {
				cs = cs[:last]
			}
			return writePs(g, cs, &commandResolver{ctx: ctx, st: st}, psOptions{quiet: quiet, trunc: !noTrunc, size: size, format: format}, time.Now())
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&all, "all", "a", false, "show all containers (default shows just running)")
	f.BoolVarP(&quiet, "quiet", "q", false, "only display container IDs")
	f.IntVarP(&last, "last", "n", -1, "show n last created containers (includes all states)")
	f.BoolVarP(&latest, "latest", "l", false, "show the latest created container (includes all states)")
	f.BoolVar(&noTrunc, "no-trunc", false, "don't truncate output")
	f.BoolVarP(&size, "size", "s", false, "display total file sizes")
	f.StringArrayVarP(&filters, "filter", "f", nil, "filter output based on conditions provided")
	f.StringVar(&format, "format", "", "output format: table, json, 'table TEMPLATE' or a Go template")
	return cmd
}

type psOptions struct {
	quiet, trunc, size bool
	format             string
}

// writePs prints containers as ps does.
func writePs(g *globals, cs []runtime.Container, r *commandResolver, o psOptions, now time.Time) error {
	format := o.format
	if o.quiet && (format == "" || format == "table") {
		format = "{{.ID}}"
	}
	if format == "" || format == "table" {
		format = psTable
		if o.size {
			format = psTableSize
		}
	}
	size := o.size || strings.Contains(format, ".Size") || format == "json"
	rows := make([]any, 0, len(cs))
	for _, c := range cs {
		rows = append(rows, newPsRow(c, r, o.trunc, size, now))
	}
	return writeList(g.Out, format, listFormat{Table: psTable, Headers: psHeaders}, rows)
}
