package network

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/berthsh/berth/pkg/errdefs"
)

// Attach connects a container, whose network namespace is at netnsPath,
// to a network: it makes sure the network's bridge and firewall state
// exist, allocates an address, creates a veth pair with the container end
// in the namespace (named opts.IfName, with the address and a default
// route via the gateway), and publishes opts.Ports. On error nothing is
// left behind.
func (m *Manager) Attach(ctx context.Context, network, containerID, netnsPath string, opts AttachOptions) (Endpoint, error) {
	if containerID == "" {
		return Endpoint{}, fmt.Errorf("attach to network %s: empty container ID: %w", network, errdefs.ErrInvalidArgument)
	}
	if opts.IfName == "" {
		opts.IfName = "eth0"
	}
	if len(opts.IfName) > unix.IFNAMSIZ-1 {
		return Endpoint{}, fmt.Errorf("attach to network %s: interface name %q is longer than %d characters: %w", network, opts.IfName, unix.IFNAMSIZ-1, errdefs.ErrInvalidArgument)
	}
	opts.Ports = slices.Clone(opts.Ports)
	for i, p := range opts.Ports {
		if p.HostIP == netip.IPv4Unspecified() {
			opts.Ports[i].HostIP = netip.Addr{} // 0.0.0.0 means every address
		}
	}
	if err := validatePorts(opts.Ports); err != nil {
		return Endpoint{}, fmt.Errorf("attach %s to network %s: %w", shortID(containerID), network, err)
	}
	n, ep, err := m.reserveEndpoint(ctx, network, containerID, netnsPath, opts)
	if err != nil {
		return Endpoint{}, fmt.Errorf("attach %s to network %s: %w", shortID(containerID), network, err)
	}
	mac, err := setupEndpoint(ctx, n, &ep, opts)
	if err == nil {
		err = m.updateEndpoint(ctx, n.ID, containerID, func(e *Endpoint) { e.MAC = mac })
		ep.MAC = mac
	}
	if err != nil {
		// Roll back even if ctx was cancelled.
		cctx := context.WithoutCancel(ctx)
		err = errors.Join(err, cleanupEndpoint(cctx, n, &ep, true), m.releaseEndpoint(cctx, n.ID, containerID))
		return Endpoint{}, fmt.Errorf("attach %s to network %s: %w", shortID(containerID), n.Name, err)
	}
	return ep, nil
}

// Detach disconnects a container from a network: it removes the
// container's published ports, deletes the veth pair and releases the
// address. It works after a crash and when the namespace is already gone.
func (m *Manager) Detach(ctx context.Context, network, containerID string) error {
	var link string
	if err := m.detach(ctx, network, containerID, &link); err != nil {
		return err
	}
	return DeleteLinks([]string{link})
}

// detach is Detach without deleting the veth pair: the host side's name
// goes to *link. Deleting a link waits for an RCU grace period (about
// 10 ms), so it happens outside the network's lock.
func (m *Manager) detach(ctx context.Context, network, containerID string, link *string) error {
	err := m.locked(ctx, func() error {
		st, err := m.find(network)
		if err != nil {
			return err
		}
		ep, ok := st.Endpoints[containerID]
		if !ok {
			return fmt.Errorf("container %s is not connected to network %s: %w", shortID(containerID), st.Network.Name, errdefs.ErrNotFound)
		}
		if err := cleanupEndpoint(ctx, st.Network, ep, false); err != nil {
			return err
		}
		*link = ep.HostIfName
		delete(st.Endpoints, containerID)
		return m.write(st)
	})
	if err != nil {
		return fmt.Errorf("detach %s from network %s: %w", shortID(containerID), network, err)
	}
	return nil
}

// DetachAll detaches a container from every network it is attached to,
// for cleanup when it stops or after a crash. Not being attached anywhere
// is not an error.
func (m *Manager) DetachAll(ctx context.Context, containerID string) error {
	links, err := m.DetachAllKeepLinks(ctx, containerID)
	return errors.Join(err, DeleteLinks(links))
}

// DetachAllKeepLinks is DetachAll except that the container's veth pairs
// stay: it returns the names of their host sides for DeleteLinks. Each
// deletion waits for an RCU grace period (about 10 ms); a container that
// is going away anyway can have that done after whoever waits for it has
// been let go. Its addresses are released at once (the allocator hands
// out recently released addresses last) and its ports unpublished.
func (m *Manager) DetachAllKeepLinks(ctx context.Context, containerID string) ([]string, error) {
	all, err := m.readAll()
	if err != nil {
		return nil, err
	}
	var errs []error
	var links []string
	for _, st := range all {
		if _, ok := st.Endpoints[containerID]; ok {
			var link string
			if err := m.detach(ctx, st.Network.ID, containerID, &link); err != nil && !errors.Is(err, errdefs.ErrNotFound) {
				errs = append(errs, err)
			}
			if link != "" {
				links = append(links, link)
			}
		}
	}
	return links, errors.Join(errs...)
}

// DeleteLinks deletes the host links named (veth pairs go with their
// host side); missing ones are not errors.
func DeleteLinks(names []string) error {
	var errs []error
	for _, name := range names {
		if name != "" {
			errs = append(errs, deleteLink(name))
		}
	}
	return errors.Join(errs...)
}

func validatePorts(ports []PortMapping) error {
	seen := map[PortMapping]bool{}
	for _, p := range ports {
		if p.Proto != "tcp" && p.Proto != "udp" {
			return fmt.Errorf("port %s: protocol must be tcp or udp: %w", p, errdefs.ErrInvalidArgument)
		}
		if p.HostPort == 0 || p.ContainerPort == 0 {
			return fmt.Errorf("port %s: ports must be 1-65535 (reserve host port 0 with ReservePort first): %w", p, errdefs.ErrInvalidArgument)
		}
		if p.HostIP.IsValid() && (!p.HostIP.Is4() || p.HostIP.IsUnspecified()) {
			return fmt.Errorf("port %s: host address must be a specific IPv4 address or unset: %w", p, errdefs.ErrInvalidArgument)
		}
		key := PortMapping{Proto: p.Proto, HostIP: p.HostIP, HostPort: p.HostPort}
		if seen[key] {
			return fmt.Errorf("port %s: host port published twice: %w", p, errdefs.ErrConflict)
		}
		seen[key] = true
	}
	return nil
}

// setupEndpoint creates the bridge, firewall state, veth pair and ports
// of ep, returning the container interface's MAC address.
func setupEndpoint(ctx context.Context, n Network, ep *Endpoint, opts AttachOptions) (string, error) {
	br, err := ensureBridge(n)
	if err != nil {
		return "", err
	}
	if err := fwEnsureNetwork(ctx, n); err != nil {
		return "", err
	}
	ns, err := netns.GetFromPath(ep.NetNSPath)
	if err != nil {
		return "", fmt.Errorf("open network namespace %s: %w", ep.NetNSPath, err)
	}
	defer ns.Close()

	veth := &netlink.Veth{
		LinkAttrs: netlink.LinkAttrs{
			Name:        ep.HostIfName,
			MasterIndex: br.Attrs().Index,
			MTU:         br.Attrs().MTU,
		},
		PeerName:         ep.IfName,
		PeerHardwareAddr: opts.MAC,
		PeerNamespace:    netlink.NsFd(ns),
		PeerMTU:          uint32(br.Attrs().MTU),
	}
	if err := netlink.LinkAdd(veth); err != nil {
		if errors.Is(err, unix.EEXIST) {
			return "", fmt.Errorf("create veth %s/%s: an interface of that name exists on the host or in %s: %w", ep.HostIfName, ep.IfName, ep.NetNSPath, errdefs.ErrConflict)
		}
		return "", fmt.Errorf("create veth %s/%s: %w", ep.HostIfName, ep.IfName, err)
	}
	host, err := netlink.LinkByName(ep.HostIfName)
	if err != nil {
		return "", fmt.Errorf("find veth %s: %w", ep.HostIfName, err)
	}
	// Hairpin lets a container reach itself through its published ports.
	if err := netlink.LinkSetHairpin(host, true); err != nil {
		return "", fmt.Errorf("set hairpin on %s: %w", ep.HostIfName, err)
	}
	if err := netlink.LinkSetUp(host); err != nil {
		return "", fmt.Errorf("set %s up: %w", ep.HostIfName, err)
	}

	var mac string
	err = withNetNSHandle(ep.NetNSPath, func(h *netlink.Handle) error {
		link, err := h.LinkByName(ep.IfName)
		if err != nil {
			return fmt.Errorf("find %s in container: %w", ep.IfName, err)
		}
		mac = link.Attrs().HardwareAddr.String()
		addr := &netlink.Addr{IPNet: prefixToIPNet(ep.Address)}
		if err := h.AddrAdd(link, addr); err != nil {
			return fmt.Errorf("add address %s to %s: %w", ep.Address, ep.IfName, err)
		}
		if err := h.LinkSetUp(link); err != nil {
			return fmt.Errorf("set %s up: %w", ep.IfName, err)
		}
		if lo, err := h.LinkByName("lo"); err == nil {
			if err := h.LinkSetUp(lo); err != nil {
				return fmt.Errorf("set lo up: %w", err)
			}
		}
		if ep.Gateway.IsValid() && !opts.NoDefaultRoute {
			route := &netlink.Route{LinkIndex: link.Attrs().Index, Gw: ep.Gateway.AsSlice()}
			if err := h.RouteAdd(route); err != nil && !errors.Is(err, unix.EEXIST) {
				return fmt.Errorf("add default route via %s: %w", ep.Gateway, err)
			}
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	if err := fwAddPorts(ctx, ep.Address.Addr(), ep.Ports); err != nil {
		return "", err
	}
	return mac, nil
}

// cleanupEndpoint removes what setupEndpoint made for ep (the veth pair
// only with deleteVeth); missing pieces are not errors.
func cleanupEndpoint(ctx context.Context, n Network, ep *Endpoint, deleteVeth bool) error {
	var errs []error
	if len(ep.Ports) > 0 {
		if err := fwRemovePorts(ctx, ep.Address.Addr(), ep.Ports); err != nil {
			errs = append(errs, err)
		}
	}
	if deleteVeth {
		if err := deleteLink(ep.HostIfName); err != nil {
			errs = append(errs, err)
		}
	}
	if len(ep.Ports) > 0 {
		// Only published ports leave DNAT entries that would steer
		// clients to a later holder of the address; walking the
		// conntrack table costs milliseconds on every container stop.
		forgetFlows(ep.Address.Addr())
	}
	return errors.Join(errs...)
}

// forgetFlows deletes the connection tracking entries of the container at
// ip, so that UDP clients of a published port do not keep sending to it
// through a stale DNAT entry after it is gone. Best effort: without
// conntrack support there is nothing to delete.
func forgetFlows(ip netip.Addr) {
	var filters []netlink.CustomConntrackFilter
	for _, tp := range []netlink.ConntrackFilterType{netlink.ConntrackOrigSrcIP, netlink.ConntrackReplySrcIP} {
		f := &netlink.ConntrackFilter{}
		if f.AddIP(tp, ip.AsSlice()) == nil {
			filters = append(filters, f)
		}
	}
	_, _ = netlink.ConntrackDeleteFilters(netlink.ConntrackTable, unix.AF_INET, filters...)
}

// deleteLink deletes the host link name if it exists.
func deleteLink(name string) error {
	link, err := netlink.LinkByName(name)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) {
			return nil
		}
		return fmt.Errorf("find %s: %w", name, err)
	}
	if err := netlink.LinkDel(link); err != nil && !errors.Is(err, unix.ENODEV) {
		return fmt.Errorf("delete %s: %w", name, err)
	}
	return nil
}

// ensureBridge creates n's bridge if missing and makes sure it is up and
// holds the gateway address; it also enables IPv4 forwarding.
func ensureBridge(n Network) (netlink.Link, error) {
	br, err := netlink.LinkByName(n.Bridge)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if !errors.As(err, &nf) {
			return nil, fmt.Errorf("find bridge %s: %w", n.Bridge, err)
		}
		err := netlink.LinkAdd(&netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: n.Bridge}})
		if err != nil && !errors.Is(err, unix.EEXIST) {
			return nil, fmt.Errorf("create bridge %s: %w", n.Bridge, err)
		}
		if br, err = netlink.LinkByName(n.Bridge); err != nil {
			return nil, fmt.Errorf("find bridge %s: %w", n.Bridge, err)
		}
	}
	if br.Type() != "bridge" {
		return nil, fmt.Errorf("interface %s exists but is a %s, not a bridge: %w", n.Bridge, br.Type(), errdefs.ErrConflict)
	}
	gw := &netlink.Addr{IPNet: prefixToIPNet(netip.PrefixFrom(n.Gateway, n.Subnet.Bits()))}
	if err := netlink.AddrReplace(br, gw); err != nil {
		return nil, fmt.Errorf("add address %s to bridge %s: %w", gw.IPNet, n.Bridge, err)
	}
	if err := netlink.LinkSetUp(br); err != nil {
		return nil, fmt.Errorf("set bridge %s up: %w", n.Bridge, err)
	}
	// route_localnet lets DNAT from 127.0.0.1 reach containers; the
	// firewall drops packets from the bridge to 127.0.0.0/8.
	if err := writeSysctl("net/ipv4/conf/"+n.Bridge+"/route_localnet", "1"); err != nil {
		return nil, err
	}
	if err := writeSysctl("net/ipv4/ip_forward", "1"); err != nil {
		return nil, err
	}
	return br, nil
}

func writeSysctl(name, value string) error {
	path := "/proc/sys/" + name
	if cur, err := os.ReadFile(path); err == nil && string(cur) == value+"\n" {
		return nil
	}
	if err := os.WriteFile(path, []byte(value), 0o644); err != nil {
		return fmt.Errorf("set sysctl %s=%s: %w", name, value, err)
	}
	return nil
}

// teardownNetwork deletes n's bridge and firewall state.
func teardownNetwork(ctx context.Context, n Network) error {
	if os.Geteuid() != 0 {
		// Nothing can exist that an unprivileged caller made; anything
		// else needs root to remove.
		if _, err := netlink.LinkByName(n.Bridge); err == nil {
			return fmt.Errorf("bridge %s exists and removing it needs root: %w", n.Bridge, errdefs.ErrPermission)
		}
		return nil
	}
	if err := fwRemoveNetwork(ctx, n); err != nil {
		return err
	}
	return deleteLink(n.Bridge)
}

func prefixToIPNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

// hostRoutes lists the destinations of the host's IPv4 routes (main
// table).
func hostRoutes() ([]netip.Prefix, error) {
	var routes []netlink.Route
	var err error
	for range 5 {
		routes, err = netlink.RouteList(nil, netlink.FAMILY_V4)
		if !errors.Is(err, netlink.ErrDumpInterrupted) {
			break
		}
	}
	if err != nil {
		return nil, err
	}
	var out []netip.Prefix
	for _, r := range routes {
		if r.Dst == nil {
			continue // default route
		}
		a, ok := netip.AddrFromSlice(r.Dst.IP)
		if !ok {
			continue
		}
		bits, _ := r.Dst.Mask.Size()
		out = append(out, netip.PrefixFrom(a.Unmap(), bits).Masked())
	}
	return out, nil
}
