// Package network is berth's container networking: bridge networks with
// address allocation, veth endpoints in container network namespaces, NAT
// for outbound traffic and published ports through kernel DNAT.
//
// State lives under a directory the caller chooses (ROOT/networks):
//
//	DIR/lock            flock serialising changes by parallel berth processes
//	DIR/<id>.json       one file per network: its configuration, the
//	                    addresses handed out and the endpoints attached
//
// Every change is a rewrite of one network file (temporary file, fsync,
// rename) under an exclusive flock, so a crash leaves the old or the new
// state, never half. An endpoint is recorded before its links and rules
// are created, so Detach after a crash removes whatever was made.
//
// Host side (Linux, root):
//   - Each network has a bridge (berth0 for the default network "bridge",
//     berth-<9 hex of the id> for user networks) holding the gateway
//     address; it is created on first Attach and deleted by Remove.
//   - Attach creates a veth pair whose container end is created directly in
//     the container's network namespace (found by path, e.g. from
//     NewNetNS), configured there through a netlink handle bound to that
//     namespace (no thread switching).
//   - Firewall, nftables backend (used when the nft command is installed
//     and the host's iptables, if any, is the nf_tables variant): berth
//     owns table "ip berth". Per-network and per-port state are set and map
//     elements, so adding or removing a network or a container's ports is
//     an element change; the rules only change when berth's version of
//     them does (a marker comment records which), and the table is
//     deleted when it is empty.
//   - Firewall, iptables backend (otherwise): the same rules in berth's
//     chains BERTH-PREROUTING (raw), BERTH-DNAT and BERTH-POSTROUTING
//     (nat) and BERTH-FORWARD (filter), each jumped to from the built-in
//     chain; rules are added and deleted one by one with exactly the same
//     arguments, and the chains and jumps go when they are empty.
//   - Published ports are DNAT from every local address (PREROUTING and
//     OUTPUT), including 127.0.0.1: route_localnet is set on the bridge and
//     localhost-sourced traffic is masqueraded to the gateway address (the
//     kernel way, as Docker without its userland proxy); packets from a
//     bridge to 127.0.0.0/8 are dropped before routing so containers cannot
//     reach host services bound to loopback. Nothing outside reaches
//     container addresses directly; containers on different networks do
//     not reach each other except through published ports; containers on
//     an internal network reach only their own network.
//   - Docker (and ufw) set the iptables FORWARD policy to DROP, which also
//     drops packets that berth's nftables table accepts. When an iptables
//     command is present, berth keeps accept rules for its bridges in
//     BERTH-FORWARD, jumped to from the top of FORWARD, with either
//     backend. With iptables-nft, a "filter", "nat" or "raw" table that
//     berth's rules caused to exist is deleted with them if nothing else
//     uses it.
//   - All firewall changes of all berth processes on the host are
//     serialised by a flock on /run/berth/firewall.lock.
//   - Host ports are reserved with ReservePort: a listening socket the
//     caller keeps open for the container's life, so a second claimant
//     gets a conflict error instead of silently losing traffic.
//
// Name resolution is not done here; Lookup answers a network's names
// (aliases and container IDs) for whatever serves DNS to containers.
//
// Only IPv4 is supported.
package network
