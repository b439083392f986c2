package network

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/berthsh/berth/pkg/errdefs"
)

// reserveEndpoint records a new endpoint of containerID on network with a
// freshly allocated address, before any link exists: a crash after this
// leaves a record that Detach cleans up, and Remove refuses the network
// meanwhile.
func (m *Manager) reserveEndpoint(ctx context.Context, network, containerID, netnsPath string, opts AttachOptions) (Network, Endpoint, error) {
	var n Network
	var ep Endpoint
	err := m.locked(ctx, func() error {
		st, err := m.find(network)
		if err != nil {
			return err
		}
		n = st.Network
		if _, ok := st.Endpoints[containerID]; ok {
			return fmt.Errorf("container %s is already connected to network %s: %w", shortID(containerID), n.Name, errdefs.ErrAlreadyExists)
		}
		ip, err := allocate(n, st.usedAddrs(), st.LastIP, opts.IP)
		if err != nil {
			return err
		}
		ep = Endpoint{
			ContainerID: containerID,
			IfName:      opts.IfName,
			HostIfName:  hostIfName(n.ID, containerID),
			Address:     netip.PrefixFrom(ip, n.Subnet.Bits()),
			Aliases:     slices.Clone(opts.Aliases),
			Ports:       slices.Clone(opts.Ports),
			NetNSPath:   netnsPath,
		}
		if !n.Internal {
			ep.Gateway = n.Gateway
		}
		if opts.MAC != nil {
			ep.MAC = opts.MAC.String()
		}
		e := ep
		st.Endpoints[containerID] = &e
		if !opts.IP.IsValid() {
			st.LastIP = ip
		}
		return m.write(st)
	})
	return n, ep, err
}

// updateEndpoint changes the record of containerID's endpoint on the
// network with ID id.
func (m *Manager) updateEndpoint(ctx context.Context, id, containerID string, fn func(*Endpoint)) error {
	return m.locked(ctx, func() error {
		st, err := m.read(id)
		if err != nil {
			return err
		}
		ep, ok := st.Endpoints[containerID]
		if !ok {
			return fmt.Errorf("container %s is not connected to network %s: %w", shortID(containerID), st.Network.Name, errdefs.ErrNotFound)
		}
		fn(ep)
		return m.write(st)
	})
}

// releaseEndpoint deletes the record of containerID's endpoint on the
// network with ID id, freeing its address. A missing record is not an
// error.
func (m *Manager) releaseEndpoint(ctx context.Context, id, containerID string) error {
	return m.locked(ctx, func() error {
		st, err := m.read(id)
		if err != nil {
			return err
		}
		if _, ok := st.Endpoints[containerID]; !ok {
			return nil
		}
		delete(st.Endpoints, containerID)
		return m.write(st)
	})
}

// Lookup resolves name on a network as its DNS would: the addresses of
// the endpoints having name among their aliases (ASCII case-insensitive),
// or whose container ID is name or starts with it when name has at least
// 12 characters (the short ID). The caller passes a container's name as
// one of its aliases. No match gives an empty result, not an error.
func (m *Manager) Lookup(ctx context.Context, network, name string) ([]netip.Addr, error) {
	st, err := m.find(network)
	if err != nil {
		return nil, err
	}
	name = strings.TrimSuffix(name, ".")
	var addrs []netip.Addr
	for _, ep := range st.Endpoints {
		match := ep.ContainerID == name || (len(name) >= 12 && strings.HasPrefix(ep.ContainerID, name))
		for _, a := range ep.Aliases {
			match = match || strings.EqualFold(a, name)
		}
		if match {
			addrs = append(addrs, ep.Address.Addr())
		}
	}
	slices.SortFunc(addrs, netip.Addr.Compare)
	return addrs, nil
}

// hostIfName is the deterministic name of the host end of an endpoint's
// veth pair, so that cleanup finds it without other state.
func hostIfName(networkID, containerID string) string {
	sum := sha256.Sum256([]byte(networkID + "/" + containerID))
	return "vb" + hex.EncodeToString(sum[:])[:12]
}
