package network

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/berthsh/berth/internal/atomicfile"
	"github.com/berthsh/berth/internal/flock"
	"github.com/berthsh/berth/pkg/errdefs"
)

const (
	// DefaultNetwork is the name of the network containers join when they
	// name none.
	DefaultNetwork = "bridge"
	// DefaultBridge is the interface name of the default network's bridge
	// for the default data directory (DefaultStateDir). Another data
	// directory gets its own default bridge, "berth-" and a hash of the
	// directory, so two roots never share (and re-address) one bridge.
	DefaultBridge = "berth0"
	// DefaultStateDir is the network state directory of berth's default
	// data directory (/var/lib/berth).
	DefaultStateDir = "/var/lib/berth/networks"
	// DriverBridge is the only driver.
	DriverBridge = "bridge"

	// bridgePrefix starts the bridge name of every user network; the
	// iptables rules match it.
	bridgePrefix = "berth-"
)

// Network is one network's configuration.
type Network struct {
	Name     string            `json:"name"`
	ID       string            `json:"id"`
	Driver   string            `json:"driver"`
	Subnet   netip.Prefix      `json:"subnet"`
	Gateway  netip.Addr        `json:"gateway"`
	Bridge   string            `json:"bridge"`
	Labels   map[string]string `json:"labels,omitempty"`
	Internal bool              `json:"internal,omitempty"`
	Created  time.Time         `json:"created"`
}

// PortMapping publishes a container port on the host.
type PortMapping struct {
	// Proto is "tcp" or "udp".
	Proto string `json:"proto"`
	// HostIP is the host address to publish on; the zero value means every
	// local address.
	HostIP        netip.Addr `json:"hostIP,omitzero"`
	HostPort      uint16     `json:"hostPort"`
	ContainerPort uint16     `json:"containerPort"`
}

// String formats m as Docker does: "0.0.0.0:8080->80/tcp".
func (m PortMapping) String() string {
	ip := "0.0.0.0"
	if m.HostIP.IsValid() {
		ip = m.HostIP.String()
	}
	return fmt.Sprintf("%s:%d->%d/%s", ip, m.HostPort, m.ContainerPort, m.Proto)
}

// Endpoint is a container's attachment to a network.
type Endpoint struct {
	ContainerID string `json:"containerID"`
	// IfName is the interface name inside the container (eth0).
	IfName string `json:"ifName"`
	// HostIfName is the host end of the veth pair.
	HostIfName string `json:"hostIfName"`
	// Address is the container's address with the subnet's prefix length.
	Address netip.Prefix `json:"address"`
	Gateway netip.Addr   `json:"gateway,omitzero"`
	MAC     string       `json:"mac,omitempty"`
	// Aliases are the names other containers on the network resolve to
	// this endpoint.
	Aliases []string      `json:"aliases,omitempty"`
	Ports   []PortMapping `json:"ports,omitempty"`
	// NetNSPath is the network namespace the endpoint was created in.
	NetNSPath string `json:"netns,omitempty"`
}

// AttachOptions configures an endpoint.
type AttachOptions struct {
	// IfName is the interface name in the container; default "eth0".
	IfName string
	// IP requests a fixed address; zero picks a free one.
	IP netip.Addr
	// MAC sets the container interface's address; nil lets the kernel
	// pick a random one.
	MAC net.HardwareAddr
	// Aliases are the names the endpoint is known by on the network.
	Aliases []string
	// Ports are published on the host. The caller reserves each host port
	// with ReservePort first and keeps the reservation while the endpoint
	// exists.
	Ports []PortMapping
	// NoDefaultRoute skips the default route via the gateway (for a
	// container's second network). Internal networks never add one.
	NoDefaultRoute bool
}

// CreateOptions configures a new network.
type CreateOptions struct {
	Name string
	// Driver defaults to "bridge", the only one supported.
	Driver string
	// Subnet is chosen from 10.88.0.0/16 … 10.99.0.0/16 (then /24s of
	// 10.100.0.0/14) when zero, avoiding host routes and other networks.
	Subnet netip.Prefix
	// Gateway defaults to the first address of Subnet.
	Gateway  netip.Addr
	Labels   map[string]string
	Internal bool
}

// state is the content of one network file.
type state struct {
	Network Network `json:"network"`
	// LastIP is the address most recently handed out; allocation resumes
	// after it so that a released address is not reused at once.
	LastIP    netip.Addr           `json:"lastIP,omitzero"`
	Endpoints map[string]*Endpoint `json:"endpoints,omitempty"`
}

// Manager manages the networks stored in one directory.
type Manager struct {
	dir string
	// routes lists the host's IPv4 route destinations; replaced in tests.
	routes func() ([]netip.Prefix, error)
	// defaultBridge is the bridge name of this directory's default network.
	defaultBridge string
}

// New returns a Manager keeping its state in dir (created if missing).
func New(dir string) (*Manager, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("network state directory: %w", err)
	}
	return &Manager{dir: dir, routes: hostRoutes, defaultBridge: defaultBridgeFor(dir)}, nil
}

// defaultBridgeFor names the default network's bridge for a state dir.
func defaultBridgeFor(dir string) string {
	abs, err := filepath.Abs(dir)
	if err == nil && filepath.Clean(abs) == DefaultStateDir {
		return DefaultBridge
	}
	sum := sha256.Sum256([]byte(abs))
	return bridgePrefix + hex.EncodeToString(sum[:])[:9]
}

// RemoveAll removes every network of this state directory, the default
// one included, with its bridge and firewall state. It fails with
// errdefs.ErrConflict while containers are attached to any of them. It is
// for tearing down a whole data directory (tests, "system reset").
func (m *Manager) RemoveAll(ctx context.Context) error {
	return m.locked(ctx, func() error {
		all, err := m.readAll()
		if err != nil {
			return err
		}
		for _, st := range all {
			if len(st.Endpoints) > 0 {
				return fmt.Errorf("network %s has active endpoints: %w", st.Network.Name, errdefs.ErrConflict)
			}
		}
		for _, st := range all {
			if err := teardownNetwork(ctx, st.Network); err != nil {
				return fmt.Errorf("remove network %s: %w", st.Network.Name, err)
			}
			if err := os.Remove(m.path(st.Network.ID)); err != nil {
				return fmt.Errorf("remove network %s: %w", st.Network.Name, err)
			}
		}
		return atomicfile.SyncDir(m.dir)
	})
}

var nameRE = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`)

// Create creates a network. Its bridge is made on first use.
func (m *Manager) Create(ctx context.Context, opts CreateOptions) (Network, error) {
	if !nameRE.MatchString(opts.Name) || len(opts.Name) > 128 {
		return Network{}, fmt.Errorf("create network %q: invalid name: use letters, digits, '_', '.' and '-', starting with a letter or digit: %w", opts.Name, errdefs.ErrInvalidArgument)
	}
	if opts.Driver == "" {
		opts.Driver = DriverBridge
	}
	if opts.Driver != DriverBridge {
		return Network{}, fmt.Errorf("create network %s: driver %q is not supported (only %q): %w", opts.Name, opts.Driver, DriverBridge, errdefs.ErrNotImplemented)
	}
	var n Network
	err := m.locked(ctx, func() error {
		all, err := m.list()
		if err != nil {
			return err
		}
		for _, o := range all {
			if o.Name == opts.Name {
				return fmt.Errorf("network with name %s already exists: %w", opts.Name, errdefs.ErrAlreadyExists)
			}
		}
		subnet, gw, err := m.chooseSubnet(opts, all)
		if err != nil {
			return fmt.Errorf("create network %s: %w", opts.Name, err)
		}
		id, err := newID(all)
		if err != nil {
			return err
		}
		bridge := bridgePrefix + id[:9]
		if opts.Name == DefaultNetwork {
			bridge = m.defaultBridge
		}
		n = Network{
			Name: opts.Name, ID: id, Driver: opts.Driver,
			Subnet: subnet, Gateway: gw, Bridge: bridge,
			Labels: opts.Labels, Internal: opts.Internal,
			Created: time.Now().UTC(),
		}
		return m.write(&state{Network: n})
	})
	if err != nil {
		return Network{}, err
	}
	return n, nil
}

// EnsureDefault returns the default network "bridge", creating it (with a
// subnet chosen as for Create) if it does not exist yet.
func (m *Manager) EnsureDefault(ctx context.Context) (Network, error) {
	n, err := m.Get(ctx, DefaultNetwork)
	if err == nil || !errors.Is(err, errdefs.ErrNotFound) {
		return n, err
	}
	n, err = m.Create(ctx, CreateOptions{Name: DefaultNetwork})
	if errors.Is(err, errdefs.ErrAlreadyExists) { // another process won
		return m.Get(ctx, DefaultNetwork)
	}
	return n, err
}

// Get returns the network with the given name, ID or unique ID prefix.
func (m *Manager) Get(ctx context.Context, nameOrID string) (Network, error) {
	st, err := m.find(nameOrID)
	if err != nil {
		return Network{}, err
	}
	return st.Network, nil
}

// List returns all networks, sorted by name.
func (m *Manager) List(ctx context.Context) ([]Network, error) {
	return m.list()
}

// Endpoints returns the endpoints attached to a network, sorted by
// container ID.
func (m *Manager) Endpoints(ctx context.Context, nameOrID string) ([]Endpoint, error) {
	st, err := m.find(nameOrID)
	if err != nil {
		return nil, err
	}
	eps := make([]Endpoint, 0, len(st.Endpoints))
	for _, ep := range st.Endpoints {
		eps = append(eps, *ep)
	}
	slices.SortFunc(eps, func(a, b Endpoint) int { return strings.Compare(a.ContainerID, b.ContainerID) })
	return eps, nil
}

// Remove deletes a network, its bridge and its firewall state. It fails
// with errdefs.ErrConflict while containers are attached, and for the
// default network.
func (m *Manager) Remove(ctx context.Context, nameOrID string) error {
	return m.locked(ctx, func() error {
		st, err := m.find(nameOrID)
		if err != nil {
			return err
		}
		n := st.Network
		if n.Name == DefaultNetwork {
			return fmt.Errorf("%s is a pre-defined network and cannot be removed: %w", n.Name, errdefs.ErrConflict)
		}
		if len(st.Endpoints) > 0 {
			ids := make([]string, 0, len(st.Endpoints))
			for id := range st.Endpoints {
				ids = append(ids, shortID(id))
			}
			slices.Sort(ids)
			return fmt.Errorf("network %s has active endpoints (containers %s): disconnect or remove them first: %w", n.Name, strings.Join(ids, ", "), errdefs.ErrConflict)
		}
		if err := teardownNetwork(ctx, n); err != nil {
			return fmt.Errorf("remove network %s: %w", n.Name, err)
		}
		if err := os.Remove(m.path(n.ID)); err != nil {
			return fmt.Errorf("remove network %s: %w", n.Name, err)
		}
		return atomicfile.SyncDir(m.dir)
	})
}

func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

func (m *Manager) path(id string) string { return filepath.Join(m.dir, id+".json") }

// locked runs fn holding the exclusive lock of the state directory.
func (m *Manager) locked(ctx context.Context, fn func() error) error {
	unlock, err := lockFile(ctx, filepath.Join(m.dir, "lock"))
	if err != nil {
		return fmt.Errorf("lock network state: %w", err)
	}
	defer unlock()
	return fn()
}

func (m *Manager) readAll() ([]*state, error) {
	entries, err := os.ReadDir(m.dir)
	if err != nil {
		return nil, fmt.Errorf("read network state: %w", err)
	}
	var out []*state
	for _, e := range entries {
		name := e.Name()
		if !strings.HasSuffix(name, ".json") || strings.HasPrefix(name, ".") {
			continue
		}
		st, err := m.read(strings.TrimSuffix(name, ".json"))
		if errors.Is(err, errdefs.ErrNotFound) { // removed meanwhile
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, st)
	}
	slices.SortFunc(out, func(a, b *state) int { return strings.Compare(a.Network.Name, b.Network.Name) })
	return out, nil
}

func (m *Manager) list() ([]Network, error) {
	all, err := m.readAll()
	if err != nil {
		return nil, err
	}
	nets := make([]Network, len(all))
	for i, st := range all {
		nets[i] = st.Network
	}
	return nets, nil
}

func (m *Manager) read(id string) (*state, error) {
	data, err := os.ReadFile(m.path(id))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("network %s: %w", id, errdefs.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("read network %s: %w", id, err)
	}
	var st state
	if err := json.Unmarshal(data, &st); err != nil {
		return nil, fmt.Errorf("network state %s: %v: %w", m.path(id), err, errdefs.ErrDataCorrupt)
	}
	if st.Network.ID != id || !st.Network.Subnet.IsValid() || !st.Network.Gateway.IsValid() {
		return nil, fmt.Errorf("network state %s: incomplete: %w", m.path(id), errdefs.ErrDataCorrupt)
	}
	if st.Endpoints == nil {
		st.Endpoints = map[string]*Endpoint{}
	}
	return &st, nil
}

// find resolves a name, full ID or unique ID prefix (Docker's order).
func (m *Manager) find(nameOrID string) (*state, error) {
	if nameOrID == "" {
		return nil, fmt.Errorf("network name is empty: %w", errdefs.ErrInvalidArgument)
	}
	all, err := m.readAll()
	if err != nil {
		return nil, err
	}
	for _, st := range all {
		if st.Network.ID == nameOrID {
			return st, nil
		}
	}
	for _, st := range all {
		if st.Network.Name == nameOrID {
			return st, nil
		}
	}
	var match []*state
	for _, st := range all {
		if strings.HasPrefix(st.Network.ID, nameOrID) {
			match = append(match, st)
		}
	}
	switch len(match) {
	case 1:
		return match[0], nil
	case 0:
		return nil, fmt.Errorf("network %s not found: %w", nameOrID, errdefs.ErrNotFound)
	}
	return nil, fmt.Errorf("network ID prefix %s is ambiguous (%d networks): %w", nameOrID, len(match), errdefs.ErrInvalidArgument)
}

func (m *Manager) write(st *state) error {
	data, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	if err := atomicfile.WriteFile(m.path(st.Network.ID), data, 0o600); err != nil {
		return fmt.Errorf("write network %s: %w", st.Network.Name, err)
	}
	return nil
}

func newID(all []Network) (string, error) {
	for {
		b := make([]byte, 32)
		if _, err := rand.Read(b); err != nil {
			return "", err
		}
		id := hex.EncodeToString(b)
		// Bridge names use 9 characters; keep them unique.
		if !slices.ContainsFunc(all, func(n Network) bool { return strings.HasPrefix(n.ID, id[:9]) }) {
			return id, nil
		}
	}
}

// lockFile takes an exclusive flock on path (created if missing), waiting
// until it is free or ctx ends.
func lockFile(ctx context.Context, path string) (unlock func(), err error) {
	l, err := flock.Acquire(ctx, path, true)
	if err != nil {
		return nil, err
	}
	return l.Unlock, nil
}
