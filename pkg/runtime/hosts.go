package runtime

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/berthsh/berth/pkg/errdefs"
)

// HostGateway is the special address of --add-host that stands for the
// default bridge's gateway (the host as seen from containers).
const HostGateway = "host-gateway"

// Markers around the part of a container's hosts file that lists the other
// containers on its networks. That part is rewritten in place whenever a
// container joins or leaves one of those networks.
const (
	hostsPeersBegin = "# berth: containers on the same networks (managed by berth)"
	hostsPeersEnd   = "# berth: end of containers"
)

// defaultHosts are docker's first lines of a container's /etc/hosts.
const defaultHosts = `127.0.0.1	localhost
::1	localhost ip6-localhost ip6-loopback
fe00::	ip6-localnet
ff00::	ip6-mcastprefix
ff02::1	ip6-allnodes
ff02::2	ip6-allrouters
`

// ExtraHost is one parsed --add-host entry.
type ExtraHost struct {
	Name string
	// IP is the address, or HostGateway.
	IP string
}

// ParseExtraHost parses docker's --add-host value "name:ip" (or
// "name=ip"); ip may be an IPv6 address (with colons, optionally in
// brackets) or HostGateway.
func ParseExtraHost(s string) (ExtraHost, error) {
	name, ip, ok := strings.Cut(s, "=")
	if !ok {
		name, ip, ok = strings.Cut(s, ":")
	}
	name = strings.TrimSpace(name)
	ip = strings.Trim(strings.TrimSpace(ip), "[]")
	if !ok || name == "" || ip == "" || strings.ContainsAny(name, " \t\n#") {
		return ExtraHost{}, fmt.Errorf("invalid extra host %q: use NAME:IP (--add-host db:10.0.0.5): %w", s, errdefs.ErrInvalidArgument)
	}
	if ip != HostGateway {
		if _, err := netip.ParseAddr(ip); err != nil {
			return ExtraHost{}, fmt.Errorf("invalid extra host %q: %q is not an IP address or %s: %w", s, ip, HostGateway, errdefs.ErrInvalidArgument)
		}
	}
	return ExtraHost{Name: name, IP: ip}, nil
}

// HostsPeer is another container on one of a container's networks, as
// listed in its hosts file.
type HostsPeer struct {
	IP    netip.Addr
	Names []string
}

// hostsFile renders a container's hosts file: docker's localhost lines,
// the extra hosts (gateway already resolved), the container's own address
// and name, and the managed list of peers.
func hostsFile(self netip.Addr, hostname, domainname string, extra []ExtraHost, peers []HostsPeer) []byte {
	var b strings.Builder
	b.WriteString(defaultHosts)
	for _, e := range extra {
		fmt.Fprintf(&b, "%s\t%s\n", e.IP, e.Name)
	}
	if self.IsValid() && hostname != "" {
		if domainname != "" {
			fmt.Fprintf(&b, "%s\t%s.%s %s\n", self, hostname, domainname, hostname)
		} else {
			fmt.Fprintf(&b, "%s\t%s\n", self, hostname)
		}
	}
	b.WriteString(peersSection(peers))
	return []byte(b.String())
}

// peersSection renders the managed part of a hosts file; empty without
// peers.
func peersSection(peers []HostsPeer) string {
	if len(peers) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteString(hostsPeersBegin + "\n")
	for _, p := range peers {
		if len(p.Names) == 0 {
			continue
		}
		fmt.Fprintf(&b, "%s\t%s\n", p.IP, strings.Join(p.Names, " "))
	}
	b.WriteString(hostsPeersEnd + "\n")
	return b.String()
}

// replacePeers returns content with its managed peers section replaced by
// one listing peers (removed when there are none; appended when content
// had none).
func replacePeers(content []byte, peers []HostsPeer) []byte {
	lines := strings.SplitAfter(string(content), "\n")
	var b strings.Builder
	in := false
	for _, l := range lines {
		t := strings.TrimRight(l, "\n")
		switch {
		case t == hostsPeersBegin:
			in = true
		case t == hostsPeersEnd && in:
			in = false
		case !in:
			b.WriteString(l)
		}
	}
	out := b.String()
	if out != "" && !strings.HasSuffix(out, "\n") {
		out += "\n"
	}
	return []byte(out + peersSection(peers))
}
