package runtime

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"

	securejoin "github.com/cyphar/filepath-securejoin"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berthsh/berth/internal/flock"
	"github.com/berthsh/berth/pkg/errdefs"
	"github.com/berthsh/berth/pkg/network"
	"github.com/berthsh/berth/pkg/rootfs"
	"github.com/berthsh/berth/pkg/runtime/volume"
	"github.com/berthsh/berth/pkg/store"
)

// Files of a container directory written by PrepareEnvironment.
const (
	envHostsFile      = "hosts"
	envResolvConfFile = "resolv.conf"
	envHostnameFile   = "hostname"
	// envHostsLock, in the directory of all containers, serialises
	// rewrites of the hosts files of containers sharing networks.
	envHostsLock = "hosts.lock"
)

// ContainerVolumeLabel is set, with the container's ID as value, on the
// anonymous volumes made for a container (with volume.AnonymousLabel), so
// that "rm -v" finds them.
const ContainerVolumeLabel = "sh.berth.container"

// Network modes besides network names.
const (
	netModeBridge = "bridge"
	netModeHost   = "host"
	netModeNone   = "none"
	// netModeContainerPrefix starts --network container:NAME.
	netModeContainerPrefix = "container:"
)

// EnvParams is what PrepareEnvironment needs: the engine's state root and
// the container's directory in it (ROOT/containers/<id>, which exists),
// the stores, and the container's configuration.
type EnvParams struct {
	Root, Dir string
	Store     *store.Store
	Layers    *LayerCache
	Volumes   *volume.Store
	Networks  *network.Manager
	Config    *ContainerConfig
	// Resolve finds another container (for --network container:NAME);
	// nil refuses that mode.
	Resolve func(ctx context.Context, idOrName string) (Container, error)
}

// Environment is everything prepared around a container's process: its
// mounted root file system, volumes, network namespace and endpoints with
// the host ports they publish (held open until Teardown), the hosts,
// resolv.conf and hostname files, and the OCI spec to run.
type Environment struct {
	// Spec is the container's OCI spec, also saved as Dir/SpecFile (see SaveSpec).
	Spec *specs.Spec
	// Ports are the published ports as bound (host port 0 resolved).
	Ports []PortBinding
	// Endpoints are the container's addresses, one per network.
	Endpoints []EndpointState
	// NetNSPath is the container's network namespace ("" with the host's
	// network).
	NetNSPath string
	// Volumes are the names of the volumes mounted, named and anonymous.
	Volumes []string
	// AnonymousVolumes are those of Volumes made for this container (also
	// found by the label ContainerVolumeLabel=ID).
	AnonymousVolumes []string

	id           string
	dir          string
	networks     *network.Manager
	volumeStore  *volume.Store
	reservations []*network.PortReservation
	mounted      bool
	netns        string     // made by this environment, to remove
	sharedNet    *Container // the container whose network this one joined
	created      []string   // volumes created by PrepareEnvironment
	mu           sync.Mutex
}

// AnonymousVolumeName is the name of the anonymous volume of container id
// at target: fixed, so that a restarted container finds its data again.
func AnonymousVolumeName(id, target string) string {
	sum := sha256.Sum256([]byte(id + "\x00" + path.Clean(target)))
	return hex.EncodeToString(sum[:])
}

// ContainerNetNSPath is where the network namespace of container id is pinned.
func ContainerNetNSPath(id string) string { return filepath.Join(network.NetNSDir, id) }

// PrepareEnvironment prepares everything around the container's process
// and returns it; the caller then creates and starts the container from
// Spec and calls Teardown after it ended. The caller keeps the returned
// Environment (and so the reservations of the published host ports) for
// the container's life.
//
// On error nothing it did remains: mounts, namespace, endpoints,
// firewall rules, port reservations, volumes it created, and entries in
// other containers' hosts files are undone.
func PrepareEnvironment(ctx context.Context, p EnvParams) (_ *Environment, err error) {
	if p.Config == nil || p.Config.ID == "" || p.Dir == "" || p.Store == nil || p.Layers == nil || p.Volumes == nil || p.Networks == nil {
		return nil, fmt.Errorf("prepare environment: incomplete parameters: %w", errdefs.ErrInvalidArgument)
	}
	cfg := p.Config
	e := &Environment{id: cfg.ID, dir: p.Dir, networks: p.Networks, volumeStore: p.Volumes}
	if err := validateEnv(p); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			cctx := context.WithoutCancel(ctx)
			_ = e.Teardown(cctx)
			for _, v := range e.created {
				_ = p.Volumes.Remove(cctx, v, volume.RemoveOptions{Force: true})
			}
		}
	}()

	// Root file system.
	img, err := envImage(ctx, p)
	if err != nil {
		return nil, err
	}
	if err := UnmountRootfs(p.Dir); err != nil { // left by a crash
		return nil, err
	}
	lowers, err := PrepareRootfs(ctx, p.Layers, p.Store, img, p.Dir)
	if err != nil {
		return nil, err
	}
	var rootfsPath string
	if cfg.AutoRemove {
		// Its writes are deleted with it: a volatile overlay skips
		// syncing them at every unmount and sync(2). Kernels before
		// 5.10 reject the option (EINVAL): mount without it there.
		rootfsPath, err = MountRootfs(ctx, p.Dir, lowers, rootfs.WithMountOptions("volatile"))
	}
	if !cfg.AutoRemove || errors.Is(err, unix.EINVAL) {
		rootfsPath, err = MountRootfs(ctx, p.Dir, lowers)
	}
	if err != nil {
		return nil, fmt.Errorf("prepare environment: %w", err)
	}
	e.mounted = true
	cf, _, err := p.Store.ConfigFile(ctx, img)
	if err != nil {
		return nil, fmt.Errorf("prepare environment: %w", err)
	}

	opts := cfg.Create
	if opts.Mounts, err = e.setupMounts(ctx, p, cf, rootfsPath); err != nil {
		return nil, err
	}
	if err := e.setupNetwork(ctx, p, cf, &opts); err != nil {
		return nil, err
	}
	if err := e.writeFiles(ctx, p, &opts); err != nil {
		return nil, err
	}
	if opts.CgroupsPath == "" {
		opts.CgroupsPath = DefaultCgroupsPath(cfg.ID)
	}
	if opts.Init && opts.InitPath == "" {
		// berth itself is the init (see pkg/runtime/initproc): the
		// binary is static, so it runs in any image.
		if opts.InitPath, err = os.Executable(); err != nil {
			return nil, fmt.Errorf("--init: find the berth binary: %w", err)
		}
	}
	spec, err := CreateSpec(&cf.Config, rootfsPath, opts)
	if err != nil {
		return nil, err
	}
	if err := SaveSpec(p.Dir, spec); err != nil {
		return nil, err
	}
	e.Spec = spec
	return e, nil
}

// validateEnv checks what can be checked before changing anything.
func validateEnv(p EnvParams) error {
	cfg := p.Config
	for _, h := range cfg.ExtraHosts {
		if _, err := ParseExtraHost(h); err != nil {
			return err
		}
	}
	if _, err := parseDNS(cfg.DNS); err != nil {
		return err
	}
	for _, m := range cfg.Mounts {
		if !path.IsAbs(m.Target) {
			return fmt.Errorf("invalid mount target %q: must be an absolute path: %w", m.Target, errdefs.ErrInvalidArgument)
		}
		switch m.Type {
		case MountTypeBind:
			if !filepath.IsAbs(m.Source) {
				return fmt.Errorf("invalid bind mount source %q: must be an absolute host path: %w", m.Source, errdefs.ErrInvalidArgument)
			}
			if _, err := os.Stat(m.Source); err != nil {
				if errors.Is(err, fs.ErrNotExist) {
					return fmt.Errorf("invalid mount config for type \"bind\": bind source path does not exist: %s: %w", m.Source, errdefs.ErrNotFound)
				}
				return fmt.Errorf("bind source %s: %w", m.Source, err)
			}
		case "volume":
			if m.Source != "" {
				if err := volume.ValidateName(m.Source); err != nil {
					return err
				}
			}
		case MountTypeTmpfs:
		default:
			return fmt.Errorf("mount on %s: unknown mount type %q (want bind, volume or tmpfs): %w", m.Target, m.Type, errdefs.ErrInvalidArgument)
		}
	}
	for _, ps := range cfg.Ports {
		if _, err := portProto(ps.Proto); err != nil {
			return err
		}
		if ps.ContainerPort == 0 {
			return fmt.Errorf("invalid port publication: container port 0: %w", errdefs.ErrInvalidArgument)
		}
	}
	if err := validateNetworkMode(cfg); err != nil {
		return err
	}
	return nil
}

// validateNetworkMode checks the options that cannot go with --network
// container:NAME, as docker does.
func validateNetworkMode(cfg *ContainerConfig) error {
	if target, ok := strings.CutPrefix(cfg.NetworkMode, netModeContainerPrefix); ok {
		conflict := func(what string) error {
			return fmt.Errorf("conflicting options: %s and the network mode %s: %w", what, cfg.NetworkMode, errdefs.ErrInvalidArgument)
		}
		switch {
		case target == "":
			return fmt.Errorf("invalid network mode %q: name the container (container:NAME|ID): %w", cfg.NetworkMode, errdefs.ErrInvalidArgument)
		case target == strings.TrimPrefix(cfg.Name, "/") || target == cfg.ID:
			return fmt.Errorf("network mode %q: a container cannot join its own network: %w", cfg.NetworkMode, errdefs.ErrInvalidArgument)
		case len(cfg.Ports) > 0 || cfg.PublishAll:
			return conflict("port publishing")
		case cfg.Create.Hostname != "":
			return conflict("hostname")
		case len(cfg.DNS) > 0:
			return conflict("dns")
		case len(cfg.ExtraHosts) > 0:
			return conflict("custom host-to-IP mapping")
		case len(cfg.Aliases) > 0 || len(cfg.Networks) > 1:
			return conflict("other networks and aliases")
		}
	}
	return nil
}

// joinContainerNetwork makes the container share the network namespace
// (and the hostname, hosts and resolv.conf files) of the running container
// target, as docker's --network container:NAME does.
func (e *Environment) joinContainerNetwork(ctx context.Context, p EnvParams, target string, opts *CreateOptions) error {
	if p.Resolve == nil {
		return fmt.Errorf("network mode container:%s is not available here: %w", target, errdefs.ErrNotImplemented)
	}
	t, err := p.Resolve(ctx, target)
	if err != nil {
		return fmt.Errorf("join the network of container %s: %w", target, err)
	}
	if !t.State.Running || t.State.Pid <= 0 {
		return fmt.Errorf("cannot join the network of container %s: it is not running: %w", target, errdefs.ErrConflict)
	}
	if t.Config.NetworkMode == netModeHost {
		opts.HostNetwork = true
		opts.NetNSPath = ""
	} else {
		opts.NetNSPath = fmt.Sprintf("/proc/%d/ns/net", t.State.Pid)
		if _, err := os.Stat(opts.NetNSPath); err != nil {
			return fmt.Errorf("cannot join the network of container %s: %w", target, errdefs.ErrConflict)
		}
	}
	e.sharedNet = &t
	return nil
}

func portProto(p string) (string, error) {
	switch strings.ToLower(p) {
	case "", "tcp":
		return "tcp", nil
	case "udp":
		return "udp", nil
	}
	return "", fmt.Errorf("invalid protocol %q: use tcp or udp: %w", p, errdefs.ErrInvalidArgument)
}

// envImage finds the container's image by its manifest digest.
func envImage(ctx context.Context, p EnvParams) (store.Image, error) {
	d := p.Config.ImageDigest
	if d.Hex == "" {
		img, err := p.Store.Get(ctx, p.Config.Image)
		if err != nil {
			return store.Image{}, fmt.Errorf("image of the container: %w", err)
		}
		return img, nil
	}
	if !p.Store.HasBlob(ctx, d) {
		return store.Image{}, fmt.Errorf("image %s (%s) of the container is not in the store any more: %w", p.Config.Image, d, errdefs.ErrNotFound)
	}
	return store.Image{Manifest: v1.Descriptor{Digest: d}}, nil
}

// ensureVolume returns the named volume, creating it with labels if
// missing.
func (e *Environment) ensureVolume(ctx context.Context, name string, labels map[string]string) (volume.Volume, error) {
	v, err := e.volumeStore.Get(ctx, name)
	if err == nil {
		return v, nil
	}
	if !errors.Is(err, errdefs.ErrNotFound) {
		return volume.Volume{}, err
	}
	v, err = e.volumeStore.Create(ctx, name, volume.CreateOptions{Labels: labels})
	if err != nil {
		return volume.Volume{}, err
	}
	e.created = append(e.created, name)
	return v, nil
}

// setupMounts resolves the requested mounts and the image's volumes into
// spec mounts, creating and seeding volumes.
func (e *Environment) setupMounts(ctx context.Context, p EnvParams, cf *v1.ConfigFile, rootfsPath string) ([]Mount, error) {
	type req struct {
		MountSpec
		anonymous bool
	}
	var reqs []req
	targets := map[string]bool{}
	for _, m := range p.Config.Mounts {
		m.Target = path.Clean(m.Target)
		targets[m.Target] = true
		reqs = append(reqs, req{MountSpec: m, anonymous: m.Type == "volume" && m.Source == ""})
	}
	var imageVolumes []string
	for t := range cf.Config.Volumes {
		if path.IsAbs(t) {
			imageVolumes = append(imageVolumes, path.Clean(t))
		}
	}
	sort.Strings(imageVolumes)
	for _, t := range imageVolumes {
		if !targets[t] && t != "/" {
			targets[t] = true
			reqs = append(reqs, req{MountSpec: MountSpec{Type: "volume", Target: t}, anonymous: true})
		}
	}

	var out []Mount
	for _, r := range reqs {
		m := r.MountSpec
		switch m.Type {
		case MountTypeBind:
			out = append(out, Mount{Type: MountTypeBind, Source: filepath.Clean(m.Source), Target: m.Target, ReadOnly: m.ReadOnly, Options: mountOptions(m.Options)})
		case MountTypeTmpfs:
			out = append(out, Mount{Type: MountTypeTmpfs, Target: m.Target, ReadOnly: m.ReadOnly, Options: mountOptions(m.Options)})
		case "volume":
			name := m.Source
			var labels map[string]string
			if r.anonymous {
				name = AnonymousVolumeName(e.id, m.Target)
				labels = map[string]string{volume.AnonymousLabel: "", ContainerVolumeLabel: e.id}
			}
			v, err := e.ensureVolume(ctx, name, labels)
			if err != nil {
				return nil, fmt.Errorf("volume for %s: %w", m.Target, err)
			}
			if len(v.Options) > 0 {
				return nil, fmt.Errorf("volume %s has driver options (%v); mounting such volumes is not supported yet: %w", name, v.Options, errdefs.ErrNotImplemented)
			}
			e.Volumes = append(e.Volumes, name)
			if r.anonymous {
				e.AnonymousVolumes = append(e.AnonymousVolumes, name)
			}
			if !slices.Contains(m.Options, "nocopy") {
				// Docker copies the image's content at the target into an
				// empty volume the first time it is used.
				src, err := securejoin.SecureJoin(rootfsPath, m.Target)
				if err != nil {
					return nil, fmt.Errorf("volume %s: resolve %s in the image: %w", name, m.Target, err)
				}
				if _, err := e.volumeStore.Seed(ctx, name, src); err != nil {
					return nil, err
				}
			}
			out = append(out, Mount{Type: MountTypeBind, Source: v.Mountpoint, Target: m.Target, ReadOnly: m.ReadOnly, Options: mountOptions(m.Options)})
		}
	}
	return out, nil
}

// mountOptions drops the options that are not mount(2) options.
func mountOptions(opts []string) []string {
	var out []string
	for _, o := range opts {
		switch o {
		case "nocopy", "z", "Z", "rw", "":
			continue
		}
		out = append(out, o)
	}
	return out
}

// setupNetwork makes the container's network namespace and endpoints.
func (e *Environment) setupNetwork(ctx context.Context, p EnvParams, cf *v1.ConfigFile, opts *CreateOptions) error {
	cfg := p.Config
	mode := cfg.NetworkMode
	if mode == "" {
		mode = netModeBridge
	}
	if target, ok := strings.CutPrefix(mode, netModeContainerPrefix); ok {
		return e.joinContainerNetwork(ctx, p, target, opts)
	}
	switch mode {
	case netModeHost:
		opts.HostNetwork = true
		opts.NetNSPath = ""
		return nil
	case netModeNone:
		nsPath, err := e.newNetNS(ctx, p)
		if err != nil {
			return err
		}
		opts.NetNSPath = nsPath
		return nil
	}
	names := cfg.Networks
	if len(names) == 0 {
		names = []string{mode}
	}
	var nets []network.Network
	for _, name := range names {
		var n network.Network
		var err error
		if name == netModeBridge || name == network.DefaultNetwork {
			n, err = p.Networks.EnsureDefault(ctx)
		} else {
			n, err = p.Networks.Get(ctx, name)
		}
		if err != nil {
			if errors.Is(err, errdefs.ErrNotFound) {
				return fmt.Errorf("network %s not found: create it with 'berth network create %s': %w", name, name, errdefs.ErrNotFound)
			}
			return err
		}
		if !slices.ContainsFunc(nets, func(o network.Network) bool { return o.ID == n.ID }) {
			nets = append(nets, n)
		}
	}
	ports, err := e.reservePorts(ctx, cfg, cf)
	if err != nil {
		return err
	}
	nsPath, err := e.newNetNS(ctx, p)
	if err != nil {
		return err
	}
	opts.NetNSPath = nsPath
	for i, n := range nets {
		ao := network.AttachOptions{IfName: "eth" + strconv.Itoa(i), NoDefaultRoute: i > 0}
		if n.Name != network.DefaultNetwork {
			ao.Aliases = containerAliases(cfg)
		}
		if i == 0 {
			ao.Ports = ports
		}
		ep, err := p.Networks.Attach(ctx, n.ID, cfg.ID, nsPath, ao)
		if err != nil {
			return err
		}
		e.Endpoints = append(e.Endpoints, endpointState(n, ep))
	}
	return nil
}

// containerAliases are the names of a container on user networks: its
// name and --network-alias values.
func containerAliases(cfg *ContainerConfig) []string {
	var out []string
	if name := strings.TrimPrefix(cfg.Name, "/"); name != "" {
		out = append(out, name)
	}
	for _, a := range cfg.Aliases {
		if a != "" && !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	return out
}

func endpointState(n network.Network, ep network.Endpoint) EndpointState {
	st := EndpointState{
		Network:    n.Name,
		IPAddress:  ep.Address.Addr().String(),
		PrefixLen:  ep.Address.Bits(),
		MacAddress: ep.MAC,
		Aliases:    slices.Clone(ep.Aliases),
	}
	if ep.Gateway.IsValid() {
		st.Gateway = ep.Gateway.String()
	}
	return st
}

// newNetNS pins a new network namespace for the container, removing one
// a crash left behind.
func (e *Environment) newNetNS(ctx context.Context, p EnvParams) (string, error) {
	nsPath, err := network.NewNetNS(ctx, e.id)
	if errors.Is(err, errdefs.ErrAlreadyExists) {
		// Only this container's supervisor uses the name, and it holds
		// the supervisor lock: the namespace is a crash's leftover.
		if derr := p.Networks.DetachAll(ctx, e.id); derr != nil {
			return "", derr
		}
		if rerr := network.RemoveNetNS(ContainerNetNSPath(e.id)); rerr != nil {
			return "", rerr
		}
		nsPath, err = network.NewNetNS(ctx, e.id)
	}
	if err != nil {
		return "", fmt.Errorf("prepare environment: %w", err)
	}
	e.netns = nsPath
	e.NetNSPath = nsPath
	return nsPath, nil
}

// reservePorts reserves the host ports to publish (-p, and -P for the
// image's exposed ports) and returns the mappings.
func (e *Environment) reservePorts(ctx context.Context, cfg *ContainerConfig, cf *v1.ConfigFile) ([]network.PortMapping, error) {
	want := slices.Clone(cfg.Ports)
	if cfg.PublishAll {
		var exposed []PortSpec
		for k := range cf.Config.ExposedPorts {
			num, proto, _ := strings.Cut(k, "/")
			port, err := strconv.ParseUint(num, 10, 16)
			if err != nil || port == 0 {
				continue
			}
			if proto == "" {
				proto = "tcp"
			}
			exposed = append(exposed, PortSpec{ContainerPort: uint16(port), Proto: proto})
		}
		slices.SortFunc(exposed, func(a, b PortSpec) int {
			if a.ContainerPort != b.ContainerPort {
				return int(a.ContainerPort) - int(b.ContainerPort)
			}
			return strings.Compare(a.Proto, b.Proto)
		})
		for _, x := range exposed {
			if !slices.ContainsFunc(want, func(w PortSpec) bool {
				pr, _ := portProto(w.Proto)
				return w.ContainerPort == x.ContainerPort && pr == x.Proto
			}) {
				want = append(want, x)
			}
		}
	}
	var out []network.PortMapping
	for _, ps := range want {
		proto, err := portProto(ps.Proto)
		if err != nil {
			return nil, err
		}
		var ip netip.Addr
		if ps.HostIP != "" {
			ip, err = netip.ParseAddr(ps.HostIP)
			if err != nil {
				return nil, fmt.Errorf("invalid host address %q to publish port %d on: %w", ps.HostIP, ps.ContainerPort, errdefs.ErrInvalidArgument)
			}
			if ip.IsUnspecified() {
				ip = netip.Addr{}
			}
		}
		r, err := network.ReservePort(ctx, proto, ip, ps.HostPort)
		if err != nil {
			return nil, fmt.Errorf("publish port %d/%s: %w", ps.ContainerPort, proto, err)
		}
		e.reservations = append(e.reservations, r)
		out = append(out, network.PortMapping{Proto: proto, HostIP: ip, HostPort: r.HostPort, ContainerPort: ps.ContainerPort})
		hostIP := "0.0.0.0"
		if ip.IsValid() {
			hostIP = ip.String()
		}
		e.Ports = append(e.Ports, PortBinding{HostIP: hostIP, HostPort: r.HostPort, ContainerPort: ps.ContainerPort, Proto: proto})
	}
	return out, nil
}

// writeFiles writes hostname, hosts and resolv.conf and points opts at
// them; it also adds the container to the hosts files of the containers
// on its user networks.
func (e *Environment) writeFiles(ctx context.Context, p EnvParams, opts *CreateOptions) error {
	cfg := p.Config
	if err := os.MkdirAll(p.Dir, 0o700); err != nil {
		return err
	}
	if t := e.sharedNet; t != nil {
		// Sharing a network namespace means sharing its names too.
		opts.HostnamePath = filepath.Join(t.Dir, envHostnameFile)
		opts.HostsPath = filepath.Join(t.Dir, envHostsFile)
		opts.ResolvConfPath = filepath.Join(t.Dir, envResolvConfFile)
		if h, err := os.ReadFile(opts.HostnamePath); err == nil {
			opts.Hostname = strings.TrimSpace(string(h))
		}
		return nil
	}
	hostname := opts.Hostname
	if hostname == "" && opts.HostNetwork {
		hostname, _ = os.Hostname()
	}
	if hostname == "" {
		hostname = shortContainerID(cfg.ID)
	}
	opts.Hostname = hostname
	opts.HostnamePath = filepath.Join(p.Dir, envHostnameFile)
	opts.HostsPath = filepath.Join(p.Dir, envHostsFile)
	opts.ResolvConfPath = filepath.Join(p.Dir, envResolvConfFile)
	if err := writeDerivedFile(opts.HostnamePath, []byte(hostname+"\n"), 0o644); err != nil {
		return fmt.Errorf("write hostname: %w", err)
	}

	dns, _ := parseDNS(cfg.DNS)
	var resolv []byte
	hostResolv, _ := os.ReadFile(hostResolvConf)
	if opts.HostNetwork && len(dns) == 0 {
		resolv = hostResolv
	} else {
		resolved, _ := os.ReadFile(resolvedResolvConf)
		resolv = containerResolvConf(string(hostResolv), string(resolved), dns)
	}
	if err := writeDerivedFile(opts.ResolvConfPath, resolv, 0o644); err != nil {
		return fmt.Errorf("write resolv.conf: %w", err)
	}

	extra, err := e.extraHosts(ctx, p)
	if err != nil {
		return err
	}
	if opts.HostNetwork {
		content, _ := os.ReadFile("/etc/hosts")
		s := string(content)
		if s != "" && !strings.HasSuffix(s, "\n") {
			s += "\n"
		}
		for _, x := range extra {
			s += x.IP + "\t" + x.Name + "\n"
		}
		if err := writeDerivedFile(opts.HostsPath, []byte(s), 0o644); err != nil {
			return fmt.Errorf("write hosts: %w", err)
		}
		return nil
	}
	var self netip.Addr
	if len(e.Endpoints) > 0 {
		self, _ = netip.ParseAddr(e.Endpoints[0].IPAddress)
	}
	containers := filepath.Dir(p.Dir)
	return withHostsLock(ctx, containers, func() error {
		snap, err := snapshotNetworks(ctx, p.Networks)
		if err != nil {
			return err
		}
		content := hostsFile(self, hostname, opts.Domainname, extra, snap.peers(cfg.ID))
		if err := writeDerivedFile(opts.HostsPath, content, 0o644); err != nil {
			return fmt.Errorf("write hosts: %w", err)
		}
		return snap.refresh(containers, snap.peerIDs(cfg.ID))
	})
}

// extraHosts parses --add-host entries, resolving host-gateway to the
// gateway of the container's first network or else the default network.
func (e *Environment) extraHosts(ctx context.Context, p EnvParams) ([]ExtraHost, error) {
	var out []ExtraHost
	gw := ""
	for _, s := range p.Config.ExtraHosts {
		x, err := ParseExtraHost(s)
		if err != nil {
			return nil, err
		}
		if x.IP == HostGateway {
			if gw == "" {
				for _, ep := range e.Endpoints {
					if ep.Gateway != "" {
						gw = ep.Gateway
						break
					}
				}
			}
			if gw == "" {
				n, err := p.Networks.EnsureDefault(ctx)
				if err != nil {
					return nil, fmt.Errorf("resolve %s: %w", HostGateway, err)
				}
				gw = n.Gateway.String()
			}
			x.IP = gw
		}
		out = append(out, x)
	}
	return out, nil
}

func shortContainerID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// Teardown undoes PrepareEnvironment, for after the container ended:
// removes its endpoints and firewall rules, its network namespace and
// its entries in other containers' hosts files, releases its host ports
// and unmounts its root file system. Volumes stay. Calling it again does
// nothing more.
func (e *Environment) Teardown(ctx context.Context) error {
	deleteLinks, err := e.TeardownKeepLinks(ctx)
	return errors.Join(err, deleteLinks())
}

// TeardownKeepLinks is Teardown except that the container's veth pairs
// are deleted only when the returned function is called (which it must
// be, also after an error). Deleting a link waits for an RCU grace
// period, about 10 ms each; a supervisor calls it once it has let go of
// whoever waits for the container to be gone. The addresses are released
// and the ports unpublished at once, and the namespace is unpinned, so
// the kernel may delete the pairs first.
func (e *Environment) TeardownKeepLinks(ctx context.Context) (deleteLinks func() error, err error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	ctx = context.WithoutCancel(ctx)
	var errs []error
	var links []string
	if e.netns != "" || len(e.Endpoints) > 0 {
		l, err := teardownNetwork(ctx, e.networks, e.dir, e.id, e.netns, nil)
		links = l
		if err != nil {
			errs = append(errs, err)
		} else {
			e.netns = ""
			e.Endpoints = nil
		}
	}
	deleteLinks = func() error { return network.DeleteLinks(links) }
	for _, r := range e.reservations {
		_ = r.Close()
	}
	e.reservations = nil
	if e.mounted {
		if err := UnmountRootfs(e.dir); err != nil {
			errs = append(errs, err)
		} else {
			e.mounted = false
		}
	}
	if err := errors.Join(errs...); err != nil {
		return deleteLinks, fmt.Errorf("tear down environment of %s: %w", shortContainerID(e.id), err)
	}
	return deleteLinks, nil
}

// TeardownStale cleans up after a container whose supervisor died without
// calling Teardown (crash, kill, reboot), from its state and directory
// only: endpoints and firewall rules, network namespace, entries in other
// containers' hosts files and the root file system mount. The host ports
// were released with the dead supervisor. Cleaning a clean container is
// not an error.
func TeardownStale(ctx context.Context, p EnvParams, st State) error {
	if p.Config == nil || p.Config.ID == "" || p.Dir == "" || p.Networks == nil {
		return fmt.Errorf("tear down stale environment: incomplete parameters: %w", errdefs.ErrInvalidArgument)
	}
	ctx = context.WithoutCancel(ctx)
	id := p.Config.ID
	var names []string
	for _, ep := range st.Endpoints {
		names = append(names, ep.Network)
	}
	var errs []error
	links, err := teardownNetwork(ctx, p.Networks, p.Dir, id, ContainerNetNSPath(id), names)
	if err != nil {
		errs = append(errs, err)
	}
	if err := network.DeleteLinks(links); err != nil {
		errs = append(errs, err)
	}
	if err := UnmountRootfs(p.Dir); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("tear down stale environment of %s: %w", shortContainerID(id), err)
	}
	return nil
}

// teardownNetwork detaches container id from every network, removes its
// namespace (nsPath, if set) and takes it out of the hosts files of the
// containers it shared networks with (those it is attached to now and
// those named in also). The host sides of its veth pairs are left for
// the caller to delete (network.DeleteLinks): their names are returned,
// also with an error.
func teardownNetwork(ctx context.Context, nets *network.Manager, dir, id, nsPath string, also []string) ([]string, error) {
	var errs []error
	before, err := snapshotNetworks(ctx, nets)
	if err != nil {
		errs = append(errs, err)
		before = &netSnapshot{eps: map[string][]network.Endpoint{}}
	}
	peers := before.peerIDs(id)
	for _, name := range also {
		if n, err := nets.Get(ctx, name); err == nil && n.Name != network.DefaultNetwork {
			for _, ep := range before.eps[n.ID] {
				if ep.ContainerID != id && !slices.Contains(peers, ep.ContainerID) {
					peers = append(peers, ep.ContainerID)
				}
			}
		}
	}
	links, err := nets.DetachAllKeepLinks(ctx, id)
	if err != nil {
		errs = append(errs, err)
	}
	if nsPath != "" {
		if err := network.RemoveNetNS(nsPath); err != nil {
			errs = append(errs, err)
		}
	}
	if len(peers) > 0 {
		containers := filepath.Dir(dir)
		err := withHostsLock(ctx, containers, func() error {
			snap, err := snapshotNetworks(ctx, nets)
			if err != nil {
				return err
			}
			return snap.refresh(containers, peers)
		})
		if err != nil {
			errs = append(errs, err)
		}
	}
	return links, errors.Join(errs...)
}

// netSnapshot is every network with its endpoints, read once.
type netSnapshot struct {
	nets []network.Network
	eps  map[string][]network.Endpoint // by network ID
}

func snapshotNetworks(ctx context.Context, nets *network.Manager) (*netSnapshot, error) {
	list, err := nets.List(ctx)
	if err != nil {
		return nil, err
	}
	s := &netSnapshot{nets: list, eps: map[string][]network.Endpoint{}}
	for _, n := range list {
		eps, err := nets.Endpoints(ctx, n.ID)
		if errors.Is(err, errdefs.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		s.eps[n.ID] = eps
	}
	return s, nil
}

// userNetworksOf lists the user networks (not the default one, where
// containers do not know each other by name) container id is attached to.
func (s *netSnapshot) userNetworksOf(id string) []network.Network {
	var out []network.Network
	for _, n := range s.nets {
		if n.Name == network.DefaultNetwork {
			continue
		}
		if slices.ContainsFunc(s.eps[n.ID], func(ep network.Endpoint) bool { return ep.ContainerID == id }) {
			out = append(out, n)
		}
	}
	return out
}

// peers are the other containers on id's user networks, by address, with
// their names: aliases (which include the container name) and short ID.
func (s *netSnapshot) peers(id string) []HostsPeer {
	var out []HostsPeer
	for _, n := range s.userNetworksOf(id) {
		for _, ep := range s.eps[n.ID] {
			if ep.ContainerID == id {
				continue
			}
			names := slices.Clone(ep.Aliases)
			if short := shortContainerID(ep.ContainerID); !slices.Contains(names, short) {
				names = append(names, short)
			}
			ip := ep.Address.Addr()
			if i := slices.IndexFunc(out, func(p HostsPeer) bool { return p.IP == ip }); i >= 0 {
				for _, nm := range names {
					if !slices.Contains(out[i].Names, nm) {
						out[i].Names = append(out[i].Names, nm)
					}
				}
				continue
			}
			out = append(out, HostsPeer{IP: ip, Names: names})
		}
	}
	slices.SortFunc(out, func(a, b HostsPeer) int { return a.IP.Compare(b.IP) })
	return out
}

// peerIDs are the IDs of the other containers on id's user networks.
func (s *netSnapshot) peerIDs(id string) []string {
	var out []string
	for _, n := range s.userNetworksOf(id) {
		for _, ep := range s.eps[n.ID] {
			if ep.ContainerID != id && !slices.Contains(out, ep.ContainerID) {
				out = append(out, ep.ContainerID)
			}
		}
	}
	sort.Strings(out)
	return out
}

// refresh rewrites the managed peers section of the hosts files of the
// containers ids (in the directory containers) from the snapshot. The
// files are bind-mounted into running containers, so they are rewritten
// in place. Containers without a hosts file are skipped.
func (s *netSnapshot) refresh(containers string, ids []string) error {
	var errs []error
	for _, id := range ids {
		if id == "" || strings.ContainsAny(id, "/\x00") || id == "." || id == ".." {
			continue
		}
		p := filepath.Join(containers, id, envHostsFile)
		old, err := os.ReadFile(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		updated := replacePeers(old, s.peers(id))
		if string(updated) == string(old) {
			continue
		}
		if err := rewriteInPlace(p, updated); err != nil {
			errs = append(errs, fmt.Errorf("update hosts file of %s: %w", shortContainerID(id), err))
		}
	}
	return errors.Join(errs...)
}

// rewriteInPlace replaces the content of the file at p without replacing
// the file (a bind mount of it would keep showing the old one).
func rewriteInPlace(p string, data []byte) error {
	f, err := os.OpenFile(p, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	if _, err := f.WriteAt(data, 0); err != nil {
		f.Close()
		return err
	}
	if err := f.Truncate(int64(len(data))); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// withHostsLock runs fn holding the exclusive lock on hosts file rewrites
// of the containers in the directory containers.
func withHostsLock(ctx context.Context, containers string, fn func() error) error {
	unlock, err := envLockFile(ctx, filepath.Join(containers, envHostsLock))
	if err != nil {
		return fmt.Errorf("lock hosts files: %w", err)
	}
	defer unlock()
	return fn()
}

// envLockFile takes an exclusive flock on path (created if missing),
// waiting until it is free or ctx ends.
func envLockFile(ctx context.Context, p string) (func(), error) {
	l, err := flock.Acquire(ctx, p, true)
	if err != nil {
		return nil, err
	}
	return l.Unlock, nil
}
