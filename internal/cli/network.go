package cli

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/berthsh/berth/pkg/errdefs"
	"github.com/berthsh/berth/pkg/network"
	"github.com/berthsh/berth/pkg/runtime"
)

// openNetworks opens the network state under the data directory.
func (g *globals) openNetworks() (*network.Manager, error) {
	return network.New(filepath.Join(g.Root, "networks"))
}

// Docker's predefined networks besides the default bridge: they have no
// state of their own.
var builtinNetworks = map[string]string{"host": "host", "none": "null"}

// builtinNetworkID is a stable ID for a predefined network.
func builtinNetworkID(name string) string {
	sum := sha256.Sum256([]byte("berth-network:" + name))
	return hex.EncodeToString(sum[:])
}

func isBuiltinNetwork(name string) bool {
	_, ok := builtinNetworks[name]
	return ok || name == network.DefaultNetwork
}

func noSuchNetwork(name string, err error) error {
	if errors.Is(err, errdefs.ErrNotFound) {
		return notFoundError("network " + name + " not found")
	}
	return err
}

func newNetworkCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "network",
		Short: "Manage networks",
		Long: `Manage bridge networks. Containers on the same user network reach each other
by container name, network alias and short ID; the default network "bridge"
connects containers without names.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return cmd.Help()
		},
	}
	cmd.AddCommand(
		newNetworkCreateCmd(g),
		newNetworkLsCmd(g),
		newNetworkRmCmd(g),
		newNetworkInspectCmd(g),
		newNetworkConnectCmd(g),
		newNetworkDisconnectCmd(g),
		newNetworkPruneCmd(g),
	)
	return cmd
}

func newNetworkCreateCmd(g *globals) *cobra.Command {
	var (
		driver, subnet, gateway string
		internal, attachable    bool
		ipv6                    bool
		labels                  []string
	)
	cmd := &cobra.Command{
		Use:   "create [OPTIONS] NETWORK",
		Short: "Create a network",
		Long: `Create a bridge network and print its ID. Without --subnet a free one is
chosen from 10.88.0.0/16 upwards.`,
		Example: `  berth network create backend
  berth network create --subnet 10.90.0.0/24 --gateway 10.90.0.254 backend
  berth network create --internal --label project=shop db-only`,
		Args: argsBetween(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			name := args[0]
			opts := network.CreateOptions{Name: name, Driver: driver, Internal: internal}
			var err error
			if opts.Labels, err = parseKeyValues("label", labels); err != nil {
				return err
			}
			if subnet != "" {
				if opts.Subnet, err = netip.ParsePrefix(subnet); err != nil {
					return usageErrorf("invalid --subnet %q: use CIDR notation such as 10.90.0.0/24", subnet)
				}
			}
			if gateway != "" {
				if opts.Gateway, err = netip.ParseAddr(gateway); err != nil {
					return usageErrorf("invalid --gateway %q: not an IP address", gateway)
				}
			}
			if ipv6 {
				return fmt.Errorf("create network %s: IPv6 networks are not supported: %w", name, errdefs.ErrNotImplemented)
			}
			if isBuiltinNetwork(name) {
				return fmt.Errorf("network with name %s already exists: %s is a pre-defined network: %w", name, name, errdefs.ErrAlreadyExists)
			}
			nets, err := g.openNetworks()
			if err != nil {
				return err
			}
			n, err := nets.Create(ctx, opts)
			if err != nil {
				return err
			}
			fmt.Fprintln(g.Out, n.ID)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVarP(&driver, "driver", "d", network.DriverBridge, "driver to manage the network (only bridge)")
	f.StringVar(&subnet, "subnet", "", "subnet in CIDR format, e.g. 10.90.0.0/24")
	f.StringVar(&gateway, "gateway", "", "gateway address of the subnet (default: its first address)")
	f.BoolVar(&internal, "internal", false, "restrict external access to the network")
	f.StringArrayVar(&labels, "label", nil, "set metadata on the network (KEY=VALUE)")
	f.BoolVar(&attachable, "attachable", false, "accepted for compatibility: every network is attachable")
	f.BoolVar(&ipv6, "ipv6", false, "enable IPv6 (not supported)")
	return cmd
}

// networkRow is one line of "network ls": docker's template fields.
type networkRow struct {
	ID        string
	Name      string
	Driver    string
	Scope     string
	CreatedAt string
	Internal  string
	IPv6      string
	Labels    string

	labels  map[string]string
	builtin bool
	fullID  string
}

// Label is the value of one label, for {{.Label "key"}} in --format.
func (r networkRow) Label(name string) string { return r.labels[name] }

const networkTable = "table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}"

var networkHeaders = map[string]string{
	"ID":        "NETWORK ID",
	"Name":      "NAME",
	"Driver":    "DRIVER",
	"Scope":     "SCOPE",
	"CreatedAt": "CREATED AT",
	"Internal":  "INTERNAL",
	"IPv6":      "IPV6",
	"Labels":    "LABELS",
}

// allNetworks lists the stored networks (making sure the default one
// exists) and the predefined host and none networks, sorted by name.
func allNetworks(ctx context.Context, nets *network.Manager) ([]network.Network, error) {
	if _, err := nets.EnsureDefault(ctx); err != nil {
		return nil, err
	}
	list, err := nets.List(ctx)
	if err != nil {
		return nil, err
	}
	for name, driver := range builtinNetworks {
		list = append(list, network.Network{Name: name, ID: builtinNetworkID(name), Driver: driver})
	}
	sort.Slice(list, func(i, j int) bool { return list[i].Name < list[j].Name })
	return list, nil
}

func newNetworkRow(n network.Network, noTrunc bool) networkRow {
	var kv []string
	for k, v := range n.Labels {
		kv = append(kv, k+"="+v)
	}
	sort.Strings(kv)
	id := n.ID
	if !noTrunc && len(id) > 12 {
		id = id[:12]
	}
	created := ""
	if !n.Created.IsZero() {
		created = n.Created.Local().Format("2006-01-02 15:04:05.999999999 -0700 MST")
	}
	_, builtin := builtinNetworks[n.Name]
	return networkRow{
		ID: id, Name: n.Name, Driver: n.Driver, Scope: "local", CreatedAt: created,
		Internal: fmt.Sprint(n.Internal), IPv6: "false", Labels: strings.Join(kv, ","),
		labels: n.Labels, builtin: builtin || n.Name == network.DefaultNetwork, fullID: n.ID,
	}
}

// networkFilter is "network ls --filter": each key's values are ORed, the
// keys ANDed, as with docker.
type networkFilter map[string][]string

func parseNetworkFilter(args []string) (networkFilter, error) {
	f := networkFilter{}
	for _, a := range args {
		k, v, ok := strings.Cut(a, "=")
		if !ok {
			return nil, usageErrorf("invalid filter %q: use KEY=VALUE", a)
		}
		switch k {
		case "name", "id", "driver", "label", "scope", "type":
		case "dangling":
			return nil, usageErrorf("filter %q is not supported yet", k)
		default:
			return nil, usageErrorf("invalid filter %q: supported are name, id, driver, label, scope and type", k)
		}
		if k == "type" && v != "custom" && v != "builtin" {
			return nil, usageErrorf("invalid filter 'type=%s': use custom or builtin", v)
		}
		f[k] = append(f[k], v)
	}
	return f, nil
}

func (f networkFilter) match(r networkRow) bool {
	anyOf := func(key string, fn func(string) bool) bool {
		vals, ok := f[key]
		if !ok {
			return true
		}
		for _, v := range vals {
			if fn(v) {
				return true
			}
		}
		return false
	}
	return anyOf("name", func(v string) bool { return strings.Contains(r.Name, v) }) &&
		anyOf("id", func(v string) bool { return strings.HasPrefix(r.fullID, v) }) &&
		anyOf("driver", func(v string) bool { return r.Driver == v }) &&
		anyOf("scope", func(v string) bool { return v == "local" }) &&
		anyOf("type", func(v string) bool { return (v == "builtin") == r.builtin }) &&
		anyOf("label", func(v string) bool {
			k, val, hasVal := strings.Cut(v, "=")
			got, ok := r.labels[k]
			return ok && (!hasVal || got == val)
		})
}

func newNetworkLsCmd(g *globals) *cobra.Command {
	var (
		quiet, noTrunc bool
		format         string
		filters        []string
	)
	cmd := &cobra.Command{
		Use:     "ls [OPTIONS]",
		Aliases: []string{"list"},
		Short:   "List networks",
		Example: `  berth network ls
  berth network ls --filter type=custom -q
  berth network ls --format '{{.Name}} {{.Driver}}'`,
		Args: argsBetween(0, 0),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			filter, err := parseNetworkFilter(filters)
			if err != nil {
				return err
			}
			nets, err := g.openNetworks()
			if err != nil {
				return err
			}
			list, err := allNetworks(ctx, nets)
			if err != nil {
				return err
			}
			if quiet && (format == "" || format == "table") {
				format = "{{.ID}}"
			}
			var rows []any
			for _, n := range list {
				if r := newNetworkRow(n, noTrunc); filter.match(r) {
					rows = append(rows, r)
				}
			}
			return writeList(g.Out, format, listFormat{Table: networkTable, Headers: networkHeaders}, rows)
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&quiet, "quiet", "q", false, "only display network IDs")
	f.BoolVar(&noTrunc, "no-trunc", false, "do not truncate the output")
	f.StringVar(&format, "format", "", "output format: table, json, 'table TEMPLATE' or a Go template")
	f.StringArrayVarP(&filters, "filter", "f", nil, "filter output: name=, id=, driver=, label=KEY[=VALUE], scope=local, type=custom|builtin")
	return cmd
}

func newNetworkRmCmd(g *globals) *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:     "rm NETWORK [NETWORK...]",
		Aliases: []string{"remove"},
		Short:   "Remove one or more networks",
		Long:    `Remove networks. A network that running containers are connected to is not removed.`,
		Example: `  berth network rm backend`,
		Args:    argsBetween(1, -1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			nets, err := g.openNetworks()
			if err != nil {
				return err
			}
			failed := false
			for _, name := range args {
				var err error
				if isBuiltinNetwork(name) {
					err = fmt.Errorf("%s is a pre-defined network and cannot be removed: %w", name, errdefs.ErrConflict)
				} else {
					err = nets.Remove(ctx, name)
				}
				if err != nil {
					if errors.Is(err, context.Canceled) {
						return err
					}
					if force && errors.Is(err, errdefs.ErrNotFound) {
						continue
					}
					fmt.Fprintln(g.Err, "Error:", message(noSuchNetwork(name, err)))
					failed = true
					continue
				}
				fmt.Fprintln(g.Out, name)
			}
			if failed {
				return exitCodeError{code: exitFailure}
			}
			return nil
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "do not fail on networks that do not exist")
	return cmd
}

// networkInspect is a network as "network inspect" prints it: docker's
// shape.
type networkInspect struct {
	Name       string
	Id         string
	Created    string
	Scope      string
	Driver     string
	EnableIPv6 bool
	IPAM       networkIPAM
	Internal   bool
	Attachable bool
	Ingress    bool
	ConfigFrom struct{ Network string }
	ConfigOnly bool
	Containers map[string]networkContainer
	Options    map[string]string
	Labels     map[string]string
}

type networkIPAM struct {
	Driver  string
	Options map[string]string
	Config  []networkIPAMConfig
}

type networkIPAMConfig struct {
	Subnet  string
	Gateway string
}

type networkContainer struct {
	Name        string
	EndpointID  string
	MacAddress  string
	IPv4Address string
	IPv6Address string
}

func newNetworkInspect(ctx context.Context, nets *network.Manager, names map[string]string, n network.Network) (networkInspect, error) {
	out := networkInspect{
		Name: n.Name, Id: n.ID, Scope: "local", Driver: n.Driver,
		IPAM:       networkIPAM{Driver: "default", Options: map[string]string{}, Config: []networkIPAMConfig{}},
		Internal:   n.Internal,
		Containers: map[string]networkContainer{},
		Options:    map[string]string{},
		Labels:     n.Labels,
	}
	if out.Labels == nil {
		out.Labels = map[string]string{}
	}
	if _, ok := builtinNetworks[n.Name]; ok {
		out.Created = time.Time{}.Format(time.RFC3339Nano)
		return out, nil
	}
	out.Created = n.Created.Local().Format(time.RFC3339Nano)
	out.IPAM.Config = append(out.IPAM.Config, networkIPAMConfig{Subnet: n.Subnet.String(), Gateway: n.Gateway.String()})
	if n.Name == network.DefaultNetwork {
		out.Options["com.docker.network.bridge.default_bridge"] = "true"
	}
	out.Options["com.docker.network.bridge.name"] = n.Bridge
	eps, err := nets.Endpoints(ctx, n.ID)
	if err != nil {
		return networkInspect{}, err
	}
	for _, ep := range eps {
		sum := sha256.Sum256([]byte(n.ID + "/" + ep.ContainerID))
		out.Containers[ep.ContainerID] = networkContainer{
			Name:        names[ep.ContainerID],
			EndpointID:  hex.EncodeToString(sum[:]),
			MacAddress:  ep.MAC,
			IPv4Address: ep.Address.String(),
		}
	}
	return out, nil
}

func newNetworkInspectCmd(g *globals) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "inspect [OPTIONS] NETWORK [NETWORK...]",
		Short: "Display detailed information on one or more networks",
		Example: `  berth network inspect backend
  berth network inspect -f '{{range .IPAM.Config}}{{.Subnet}}{{end}}' backend`,
		Args: argsBetween(1, -1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			nets, err := g.openNetworks()
			if err != nil {
				return err
			}
			names, err := runtime.ContainerNames(ctx, g.Root)
			if err != nil {
				return err
			}
			var objs []any
			var errs []error
			for _, name := range args {
				var n network.Network
				if driver, ok := builtinNetworks[name]; ok {
					n = network.Network{Name: name, ID: builtinNetworkID(name), Driver: driver}
				} else if n, err = nets.Get(ctx, name); errors.Is(err, errdefs.ErrNotFound) && name == network.DefaultNetwork {
					n, err = nets.EnsureDefault(ctx)
				}
				if err != nil {
					errs = append(errs, noSuchNetwork(name, err))
					continue
				}
				obj, err := newNetworkInspect(ctx, nets, names, n)
				if err != nil {
					errs = append(errs, err)
					continue
				}
				objs = append(objs, obj)
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

func newNetworkConnectCmd(g *globals) *cobra.Command {
	var aliases []string
	cmd := &cobra.Command{
		Use:   "connect [OPTIONS] NETWORK CONTAINER",
		Short: "Connect a container to a network",
		Long: `Connect a container to a network. A running container joins it at once;
a stopped one when it next starts.`,
		Example: `  berth network connect --alias db backend postgres`,
		Args:    argsBetween(2, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			nets, err := g.openNetworks()
			if err != nil {
				return err
			}
			return runtime.ConnectNetwork(cmd.Context(), g.Root, nets, args[1], args[0], runtime.NetworkConnectOptions{Aliases: aliases})
		},
	}
	cmd.Flags().StringArrayVar(&aliases, "alias", nil, "add a network-scoped alias for the container")
	return cmd
}

func newNetworkDisconnectCmd(g *globals) *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:     "disconnect [OPTIONS] NETWORK CONTAINER",
		Short:   "Disconnect a container from a network",
		Example: `  berth network disconnect backend postgres`,
		Args:    argsBetween(2, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			nets, err := g.openNetworks()
			if err != nil {
				return err
			}
			return runtime.DisconnectNetwork(cmd.Context(), g.Root, nets, args[1], args[0])
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "force the container to disconnect (accepted for compatibility)")
	return cmd
}

const networkPruneWarning = `WARNING! This will remove all custom networks not used by at least one container.
Are you sure you want to continue?`

func newNetworkPruneCmd(g *globals) *cobra.Command {
	var (
		force   bool
		filters []string
	)
	cmd := &cobra.Command{
		Use:   "prune [OPTIONS]",
		Short: "Remove all unused networks",
		Long: `Remove the user networks that no container, running or stopped, is
configured to join.`,
		Example: `  berth network prune -f
  berth network prune -f --filter label=project=shop`,
		Args: argsBetween(0, 0),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			filter := networkFilter{}
			for _, a := range filters {
				k, v, ok := strings.Cut(a, "=")
				if !ok || k != "label" {
					return usageErrorf("invalid filter %q: network prune supports label=KEY[=VALUE]", a)
				}
				filter[k] = append(filter[k], v)
			}
			if !force && !promptConfirm(g.In, g.Out, networkPruneWarning) {
				return exitCodeError{code: exitFailure}
			}
			nets, err := g.openNetworks()
			if err != nil {
				return err
			}
			users, err := runtime.NetworkUsers(ctx, g.Root)
			if err != nil {
				return err
			}
			list, err := nets.List(ctx)
			if err != nil {
				return err
			}
			var removed []string
			var errs []error
			for _, n := range list {
				if isBuiltinNetwork(n.Name) || len(users[n.Name]) > 0 || len(users[n.ID]) > 0 || !filter.match(newNetworkRow(n, true)) {
					continue
				}
				if err := nets.Remove(ctx, n.ID); err != nil {
					if !errors.Is(err, errdefs.ErrConflict) { // in use by a running container
						errs = append(errs, err)
					}
					continue
				}
				removed = append(removed, n.Name)
			}
			if len(removed) > 0 {
				fmt.Fprintln(g.Out, "Deleted Networks:")
				for _, n := range removed {
					fmt.Fprintln(g.Out, n)
				}
			}
			return errors.Join(errs...)
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&force, "force", "f", false, "do not prompt for confirmation")
	f.StringArrayVar(&filters, "filter", nil, "only prune networks that match: label=KEY[=VALUE]")
	return cmd
}
