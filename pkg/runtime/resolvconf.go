package runtime

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/berthsh/berth/pkg/errdefs"
)

// Files the container's resolv.conf is made from.
const (
	hostResolvConf     = "/etc/resolv.conf"
	resolvedResolvConf = "/run/systemd/resolve/resolv.conf"
)

// defaultDNS are the servers a container gets when the host has none it
// could reach (docker's fallback).
var defaultDNS = []string{"8.8.8.8", "8.8.4.4"}

// parseDNS checks --dns values.
func parseDNS(list []string) ([]string, error) {
	var out []string
	for _, s := range list {
		a, err := netip.ParseAddr(strings.TrimSpace(s))
		if err != nil {
			return nil, fmt.Errorf("invalid DNS server %q: not an IP address: %w", s, errdefs.ErrInvalidArgument)
		}
		out = append(out, a.String())
	}
	return out, nil
}

// nameservers returns the usable nameserver addresses of a resolv.conf:
// not loopback (unreachable from a container's own network namespace),
// and IPv4 only unless ipv6 is set.
func nameservers(content string, ipv6 bool) []string {
	var out []string
	for _, line := range strings.Split(content, "\n") {
		f := strings.Fields(line)
		if len(f) < 2 || f[0] != "nameserver" {
			continue
		}
		a, err := netip.ParseAddr(f[1])
		if err != nil || a.IsLoopback() || (a.Is6() && !a.Is4In6() && !ipv6) {
			continue
		}
		out = append(out, f[1])
	}
	return out
}

// containerResolvConf makes a container's resolv.conf from the host's
// (hostContent) as docker does for a container with its own network
// namespace: the host's search and options lines are kept; its
// nameservers are kept unless loopback or IPv6; when none is left, those
// of systemd-resolved's upstream file (resolvedContent, empty if absent)
// are used, else Google's public servers. dns (--dns) replaces the
// nameservers.
func containerResolvConf(hostContent, resolvedContent string, dns []string) []byte {
	servers := dns
	if len(servers) == 0 {
		servers = nameservers(hostContent, false)
	}
	if len(servers) == 0 {
		servers = nameservers(resolvedContent, false)
	}
	if len(servers) == 0 {
		servers = defaultDNS
	}
	var b strings.Builder
	for _, line := range strings.Split(hostContent, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || f[0] == "nameserver" {
			continue
		}
		if f[0] == "search" || f[0] == "domain" || f[0] == "options" {
			b.WriteString(strings.TrimSpace(line) + "\n")
		}
	}
	for _, s := range servers {
		b.WriteString("nameserver " + s + "\n")
	}
	return []byte(b.String())
}
