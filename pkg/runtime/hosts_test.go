package runtime

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/berthsh/berth/pkg/errdefs"
)

func TestParseExtraHost(t *testing.T) {
	for _, tc := range []struct {
		in       string
		name, ip string
		bad      bool
	}{
		{in: "db:10.0.0.5", name: "db", ip: "10.0.0.5"},
		{in: "db=10.0.0.5", name: "db", ip: "10.0.0.5"},
		{in: "v6:fe80::1", name: "v6", ip: "fe80::1"},
		{in: "v6:[::1]", name: "v6", ip: "::1"},
		{in: "gw:host-gateway", name: "gw", ip: HostGateway},
		{in: "db", bad: true},
		{in: ":10.0.0.1", bad: true},
		{in: "db:", bad: true},
		{in: "db:notanip", bad: true},
		{in: "a b:10.0.0.1", bad: true},
	} {
		t.Run(tc.in, func(t *testing.T) {
			x, err := ParseExtraHost(tc.in)
			if tc.bad {
				if !errors.Is(err, errdefs.ErrInvalidArgument) {
					t.Fatalf("err = %v, want invalid argument", err)
				}
				return
			}
			if err != nil || x.Name != tc.name || x.IP != tc.ip {
				t.Fatalf("got %+v, %v; want %s %s", x, err, tc.name, tc.ip)
			}
		})
	}
}

func TestHostsFile(t *testing.T) {
	self := netip.MustParseAddr("10.89.0.2")
	peers := []HostsPeer{
		{IP: netip.MustParseAddr("10.89.0.3"), Names: []string{"web", "www", "0123456789ab"}},
	}
	got := string(hostsFile(self, "box", "", []ExtraHost{{Name: "db", IP: "10.0.0.5"}}, peers))
	for _, want := range []string{
		"127.0.0.1\tlocalhost\n",
		"::1\tlocalhost ip6-localhost ip6-loopback\n",
		"10.0.0.5\tdb\n",
		"10.89.0.2\tbox\n",
		hostsPeersBegin + "\n10.89.0.3\tweb www 0123456789ab\n" + hostsPeersEnd + "\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("hosts file lacks %q:\n%s", want, got)
		}
	}
	if got := string(hostsFile(self, "box", "example.com", nil, nil)); !strings.Contains(got, "10.89.0.2\tbox.example.com box\n") || strings.Contains(got, hostsPeersBegin) {
		t.Errorf("with domain, no peers:\n%s", got)
	}
	if got := string(hostsFile(netip.Addr{}, "box", "", nil, nil)); strings.Contains(got, "box") {
		t.Errorf("without an address the hostname has no line:\n%s", got)
	}
}

func TestReplacePeers(t *testing.T) {
	base := "127.0.0.1\tlocalhost\n10.89.0.2\tbox\n"
	one := []HostsPeer{{IP: netip.MustParseAddr("10.89.0.3"), Names: []string{"a"}}}
	two := append(one, HostsPeer{IP: netip.MustParseAddr("10.89.0.4"), Names: []string{"b", "bb"}})

	added := string(replacePeers([]byte(base), one))
	if added != base+hostsPeersBegin+"\n10.89.0.3\ta\n"+hostsPeersEnd+"\n" {
		t.Fatalf("add:\n%s", added)
	}
	// A user's line after the section is kept.
	withUser := added + "1.2.3.4\tmine\n"
	grown := string(replacePeers([]byte(withUser), two))
	if !strings.Contains(grown, "10.89.0.4\tb bb\n") || !strings.Contains(grown, "1.2.3.4\tmine\n") || strings.Count(grown, hostsPeersBegin) != 1 {
		t.Fatalf("grow:\n%s", grown)
	}
	removed := string(replacePeers([]byte(grown), nil))
	if removed != base+"1.2.3.4\tmine\n" {
		t.Fatalf("remove:\n%q", removed)
	}
	if got := string(replacePeers([]byte("no newline"), nil)); got != "no newline\n" {
		t.Fatalf("got %q", got)
	}
}
