package network

import (
	"encoding/binary"
	"fmt"
	"net/netip"

	"github.com/berthsh/berth/pkg/errdefs"
)

// Subnet sizes a network may have: /30 leaves one container address next
// to the gateway; /8 is the largest.
const (
	minPrefixBits = 8
	maxPrefixBits = 30
)

func u32(a netip.Addr) uint32 {
	b := a.As4()
	return binary.BigEndian.Uint32(b[:])
}

func addr32(v uint32) netip.Addr {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], v)
	return netip.AddrFrom4(b)
}

// hostRange returns the first and last host address of an IPv4 subnet
// (excluding the network and broadcast addresses).
func hostRange(p netip.Prefix) (first, last uint32) {
	base := u32(p.Masked().Addr())
	size := uint32(1) << (32 - p.Bits())
	return base + 1, base + size - 2
}

// validSubnet checks that p can be a network's subnet.
func validSubnet(p netip.Prefix) error {
	if !p.IsValid() || !p.Addr().Is4() {
		return fmt.Errorf("subnet %s: only IPv4 subnets are supported: %w", p, errdefs.ErrInvalidArgument)
	}
	if p.Masked() != p {
		return fmt.Errorf("subnet %s has host bits set: use %s: %w", p, p.Masked(), errdefs.ErrInvalidArgument)
	}
	if p.Bits() < minPrefixBits || p.Bits() > maxPrefixBits {
		return fmt.Errorf("subnet %s: prefix length must be between /%d and /%d: %w", p, minPrefixBits, maxPrefixBits, errdefs.ErrInvalidArgument)
	}
	if p.Addr().IsLoopback() || p.Addr().IsMulticast() || p.Addr().IsLinkLocalUnicast() || p.Addr().IsUnspecified() {
		return fmt.Errorf("subnet %s is a reserved range: %w", p, errdefs.ErrInvalidArgument)
	}
	return nil
}

// usableHost reports whether a is a host address of subnet other than the
// gateway.
func usableHost(subnet netip.Prefix, gw, a netip.Addr) bool {
	if !a.Is4() || !subnet.Contains(a) || a == gw {
		return false
	}
	first, last := hostRange(subnet)
	v := u32(a)
	return v >= first && v <= last
}

// allocate picks a free address of n for a new endpoint: want if it is
// valid, else the first free one after last (wrapping), so that recently
// released addresses are reused last.
func allocate(n Network, used map[netip.Addr]bool, last, want netip.Addr) (netip.Addr, error) {
	if want.IsValid() {
		if !usableHost(n.Subnet, n.Gateway, want) {
			return netip.Addr{}, fmt.Errorf("address %s is not a usable container address of network %s (subnet %s, gateway %s): %w", want, n.Name, n.Subnet, n.Gateway, errdefs.ErrInvalidArgument)
		}
		if used[want] {
			return netip.Addr{}, fmt.Errorf("address %s on network %s is already in use: %w", want, n.Name, errdefs.ErrConflict)
		}
		return want, nil
	}
	first, lastHost := hostRange(n.Subnet)
	start := first
	if last.IsValid() && n.Subnet.Contains(last) {
		if v := u32(last); v >= first && v < lastHost {
			start = v + 1
		}
	}
	count := uint64(lastHost) - uint64(first) + 1
	v := start
	for range count {
		a := addr32(v)
		if a != n.Gateway && !used[a] {
			return a, nil
		}
		if v == lastHost {
			v = first
		} else {
			v++
		}
	}
	return netip.Addr{}, fmt.Errorf("network %s has no free addresses (subnet %s): disconnect containers or use a network with a larger subnet: %w", n.Name, n.Subnet, errdefs.ErrConflict)
}

// usedAddrs returns the addresses st's endpoints hold.
func (st *state) usedAddrs() map[netip.Addr]bool {
	used := make(map[netip.Addr]bool, len(st.Endpoints))
	for _, ep := range st.Endpoints {
		used[ep.Address.Addr()] = true
	}
	return used
}

// subnetCandidates yields the automatic subnets in order: 10.88.0.0/16 …
// 10.99.0.0/16, then the /24s of 10.100.0.0/14.
func subnetCandidates(yield func(netip.Prefix) bool) {
	for b := 88; b <= 99; b++ {
		if !yield(netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(b), 0, 0}), 16)) {
			return
		}
	}
	for b := 100; b <= 103; b++ {
		for c := 0; c <= 255; c++ {
			if !yield(netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(b), byte(c), 0}), 24)) {
				return
			}
		}
	}
}

// chooseSubnet validates or picks the subnet and gateway of a new network,
// which must not overlap other networks or the host's routes.
func (m *Manager) chooseSubnet(opts CreateOptions, others []Network) (netip.Prefix, netip.Addr, error) {
	routes, err := m.routes()
	if err != nil {
		return netip.Prefix{}, netip.Addr{}, fmt.Errorf("list host routes: %w", err)
	}
	conflict := func(p netip.Prefix) string {
		for _, o := range others {
			if o.Subnet.Overlaps(p) {
				return fmt.Sprintf("network %s (%s)", o.Name, o.Subnet)
			}
		}
		for _, r := range routes {
			if r.Bits() > 0 && r.Overlaps(p) {
				return fmt.Sprintf("a host route to %s", r)
			}
		}
		return ""
	}
	subnet := opts.Subnet
	if subnet.IsValid() {
		if err := validSubnet(subnet); err != nil {
			return netip.Prefix{}, netip.Addr{}, err
		}
		if c := conflict(subnet); c != "" {
			return netip.Prefix{}, netip.Addr{}, fmt.Errorf("subnet %s overlaps %s: %w", subnet, c, errdefs.ErrConflict)
		}
	} else {
		if opts.Gateway.IsValid() {
			return netip.Prefix{}, netip.Addr{}, fmt.Errorf("a gateway needs a subnet: %w", errdefs.ErrInvalidArgument)
		}
		for p := range subnetCandidates {
			if conflict(p) == "" {
				subnet = p
				break
			}
		}
		if !subnet.IsValid() {
			return netip.Prefix{}, netip.Addr{}, fmt.Errorf("no free subnet left in 10.88.0.0-10.103.255.255: give one with --subnet: %w", errdefs.ErrConflict)
		}
	}
	gw := opts.Gateway
	if !gw.IsValid() {
		first, _ := hostRange(subnet)
		gw = addr32(first)
	} else if !usableHost(subnet, netip.Addr{}, gw) {
		return netip.Prefix{}, netip.Addr{}, fmt.Errorf("gateway %s is not a host address of subnet %s: %w", gw, subnet, errdefs.ErrInvalidArgument)
	}
	return subnet, gw, nil
}
