package network

import (
	"context"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berthsh/berth/internal/testutil"
)

// TestFirewallStamps checks that a network's rules are installed once per
// boot: with its stamp in place, ensuring needs no firewall tool at all;
// without it, berth installs the rules again; removing the network
// removes the stamp.
func TestFirewallStamps(t *testing.T) {
	testutil.RequiresRoot(t)
	if bootID() == "" {
		t.Skip("no boot id on this kernel: stamps are disabled")
	}
	old := fwStampDir
	fwStampDir = t.TempDir()
	t.Cleanup(func() { fwStampDir = old })
	ctx := t.Context()
	n := Network{
		Name: "stamptest", ID: randHex(t, 64), Bridge: "brst" + randHex(t, 6),
		Subnet: netip.MustParsePrefix("10.250.252.0/24"), Gateway: netip.MustParseAddr("10.250.252.1"),
	}
	t.Cleanup(func() { _ = fwRemoveNetwork(context.Background(), n) })
	if err := fwEnsureNetwork(ctx, n); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(networkStampPath(n)); err != nil || !strings.Contains(string(b), n.Bridge) {
		t.Fatalf("stamp after ensure: %q, %v", b, err)
	}
	rulesPresent := func() bool {
		out, _ := exec.Command("iptables", "-S", "BERTH-FORWARD").CombinedOutput()
		nftOut, _ := exec.Command("nft", "list", "table", "ip", nftTable).CombinedOutput()
		return strings.Contains(string(out), n.Bridge) || strings.Contains(string(nftOut), n.Bridge)
	}
	if !rulesPresent() {
		t.Fatalf("no rule names bridge %s after ensure", n.Bridge)
	}

	// With the stamp, no tool runs: hide them all.
	path := os.Getenv("PATH")
	t.Setenv("PATH", t.TempDir())
	if err := fwEnsureNetwork(ctx, n); err != nil {
		t.Errorf("ensure with a valid stamp ran a tool: %v", err)
	}
	// A stamp from another boot or rule version is not trusted.
	if err := os.WriteFile(networkStampPath(n), []byte(strings.Replace(networkStamp(n), bootID(), "other-boot", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := fwEnsureNetwork(ctx, n); err == nil {
		t.Errorf("ensure with a stale stamp did not try to install rules (no tool could run)")
	}
	t.Setenv("PATH", path)
	if err := fwEnsureNetwork(ctx, n); err != nil {
		t.Fatal(err)
	}
	if err := fwRemoveNetwork(ctx, n); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(networkStampPath(n)); !os.IsNotExist(err) {
		t.Errorf("stamp left after removing the network: %v", err)
	}
	if rulesPresent() {
		t.Errorf("rules for %s left after removal", n.Bridge)
	}
	if entries, _ := os.ReadDir(fwStampDir); len(entries) > 0 {
		var names []string
		for _, e := range entries {
			names = append(names, filepath.Base(e.Name()))
		}
		t.Logf("stamps kept: %v", names)
	}
}
