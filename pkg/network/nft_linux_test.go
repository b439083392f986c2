package network

import (
	"context"
	"net/netip"
	"os/exec"
	"strings"
	"testing"

	"github.com/berthsh/berth/internal/testutil"
)

// TestNftTableUpgrade brings a table made by an older berth up to date:
// rules replaced, set elements kept, and a second ensure changes nothing.
func TestNftTableUpgrade(t *testing.T) {
	testutil.RequiresRoot(t)
	if _, err := exec.LookPath("nft"); err != nil {
		t.Skip("nft not installed")
	}
	ctx := t.Context()
	table := "berthtest" + randHex(t, 8)
	old := "table ip " + table + ` {
	comment "berth old"
	set bridges { type ifname; elements = { "brtestold" } }
	chain forward { type filter hook forward priority filter; policy accept; iifname "brtestold0" drop; }
}
`
	if err := nft(ctx, old); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { exec.Command("nft", "delete", "table", "ip", table).Run() })
	list := func() string {
		out, err := exec.Command("nft", "list", "table", "ip", table).CombinedOutput()
		if err != nil {
			t.Fatalf("nft list: %v: %s", err, out)
		}
		return string(out)
	}
	for i := range 2 {
		if err := nftEnsureTable(ctx, table); err != nil {
			t.Fatal(err)
		}
		got := list()
		if !strings.Contains(got, nftVersion) || strings.Contains(got, "brtestold0") || !strings.Contains(got, `"brtestold"`) {
			t.Errorf("ensure %d: table is\n%s", i, got)
		}
		if n := strings.Count(got, "jump publish"); n != 2 {
			t.Errorf("ensure %d: %d jump rules, want 2:\n%s", i, n, got)
		}
	}
	if empty, err := nftTableEmpty(ctx, table); err != nil || empty {
		t.Errorf("nftTableEmpty = %v, %v; want false (an element is left)", empty, err)
	}
	if err := nft(ctx, "delete element ip "+table+` bridges { "brtestold" }`); err != nil {
		t.Fatal(err)
	}
	if empty, err := nftTableEmpty(ctx, table); err != nil || !empty {
		t.Errorf("nftTableEmpty = %v, %v; want true", empty, err)
	}
}

// TestPortTakeover publishes a host port for a container, then for another
// one (the first was never detached): the second gets the port, the first's
// late removal leaves the second's mapping alone, and the second's removal
// leaves nothing.
func TestPortTakeover(t *testing.T) {
	testutil.RequiresRoot(t)
	forEachFirewall(t, func(t *testing.T) {
		ctx := t.Context()
		fw, err := chooseFirewall(ctx)
		if err != nil {
			t.Fatal(err)
		}
		oldIP, newIP := netip.MustParseAddr("10.250.254.2"), netip.MustParseAddr("10.250.254.3")
		ports := []PortMapping{
			{Proto: "tcp", HostPort: 1, ContainerPort: 80},
			{Proto: "udp", HostIP: netip.MustParseAddr("127.0.0.1"), HostPort: 1, ContainerPort: 53},
		}
		t.Cleanup(func() {
			ctx := context.Background()
			fw.removePorts(ctx, oldIP, ports)
			fw.removePorts(ctx, newIP, ports)
			// Sweep berth's empty chains (removeNetwork does that).
			fw.removeNetwork(ctx, Network{Name: "sweep", Bridge: "berth-sweep", Subnet: netip.MustParsePrefix("10.250.254.0/24")})
		})
		mappings := func() string {
			var out []byte
			if fw.name() == "nftables" {
				out, _ = exec.Command("nft", "list", "table", "ip", nftTable).CombinedOutput()
			} else {
				out, _ = exec.Command("iptables", "-w", "-t", "nat", "-S", iptDNATChain).CombinedOutput()
			}
			return string(out)
		}
		for _, ip := range []netip.Addr{oldIP, newIP} {
			if err := fwAddPorts(ctx, ip, ports); err != nil {
				t.Fatal(err)
			}
			if err := fwAddPorts(ctx, ip, ports); err != nil {
				t.Fatalf("adding the same ports again: %v", err)
			}
		}
		got := mappings()
		if strings.Contains(got, oldIP.String()) || strings.Count(got, newIP.String()) != 2 {
			t.Errorf("after takeover, mappings are\n%s\nwant two to %s and none to %s", got, newIP, oldIP)
		}
		if err := fwRemovePorts(ctx, oldIP, ports); err != nil {
			t.Fatal(err)
		}
		if got := mappings(); strings.Count(got, newIP.String()) != 2 {
			t.Errorf("removing the old container's ports touched the new one's:\n%s", got)
		}
		if err := fwRemovePorts(ctx, newIP, ports); err != nil {
			t.Fatal(err)
		}
		if got := mappings(); strings.Contains(got, newIP.String()) {
			t.Errorf("mappings left after removal:\n%s", got)
		}
	})
}
