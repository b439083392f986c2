package network

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"strings"
)

// berth's iptables chains, each jumped to from built-in chains. With the
// nftables backend only BERTH-FORWARD is used (see iptEnsureForward).
const (
	iptForwardChain  = "BERTH-FORWARD"     // filter
	iptRawChain      = "BERTH-PREROUTING"  // raw
	iptDNATChain     = "BERTH-DNAT"        // nat
	iptPostChain     = "BERTH-POSTROUTING" // nat
	iptLocalDstMatch = "-m addrtype --dst-type LOCAL"
)

// iptRule is one rule: table, chain, arguments, and whether it goes to the
// top of the chain (else the end).
type iptRule struct {
	table, chain string
	top          bool
	args         []string
}

func rule(table, chain string, top bool, args string) iptRule {
	return iptRule{table: table, chain: chain, top: top, args: strings.Fields(args)}
}

// iptChains lists berth's chains with the rules that jump to them.
type iptChain struct {
	table, chain string
	jumps        []iptRule
}

var iptChains = []iptChain{
	{"filter", iptForwardChain, []iptRule{rule("filter", "FORWARD", true, "-j "+iptForwardChain)}},
	{"raw", iptRawChain, []iptRule{rule("raw", "PREROUTING", true, "-j "+iptRawChain)}},
	{"nat", iptDNATChain, []iptRule{
		rule("nat", "PREROUTING", true, iptLocalDstMatch+" -j "+iptDNATChain),
		rule("nat", "OUTPUT", true, iptLocalDstMatch+" -j "+iptDNATChain),
	}},
	{"nat", iptPostChain, []iptRule{rule("nat", "POSTROUTING", true, "-j "+iptPostChain)}},
}

// iptables runs iptables -w -t table args.
func iptables(ctx context.Context, table string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "iptables", append([]string{"-w", "10", "-t", table}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return string(out), fmt.Errorf("iptables -t %s %s: %v: %s", table, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return string(out), nil
}

// iptEnsureChain creates chain in table unless it exists, noting first
// whether berth is about to create the table itself (iptNoteTable).
func iptEnsureChain(ctx context.Context, table, chain string) error {
	if _, err := iptables(ctx, table, "-S", chain); err == nil {
		return nil
	}
	if err := iptNoteTable(ctx, table); err != nil {
		return err
	}
	_, err := iptables(ctx, table, "-N", chain)
	return err
}

// iptEnsure adds r unless an identical rule exists.
func iptEnsure(ctx context.Context, r iptRule) error {
	if _, err := iptables(ctx, r.table, append([]string{"-C", r.chain}, r.args...)...); err == nil {
		return nil
	}
	args := append([]string{"-A", r.chain}, r.args...)
	if r.top {
		args = append([]string{"-I", r.chain, "1"}, r.args...)
	}
	_, err := iptables(ctx, r.table, args...)
	return err
}

// iptDelete deletes every copy of r; none is not an error.
func iptDelete(ctx context.Context, r iptRule) error {
	for {
		if _, err := iptables(ctx, r.table, append([]string{"-C", r.chain}, r.args...)...); err != nil {
			return nil
		}
		if _, err := iptables(ctx, r.table, append([]string{"-D", r.chain}, r.args...)...); err != nil {
			return err
		}
	}
}

// iptChainExists reports whether chain exists in table.
func iptChainExists(ctx context.Context, table, chain string) bool {
	_, err := iptables(ctx, table, "-S", chain)
	return err == nil
}

// iptRemoveChainIfEmpty deletes an empty chain and the rules jumping to
// it, then the table if berth created it and it is now unused.
func iptRemoveChainIfEmpty(ctx context.Context, table, chain string, jumps []iptRule) error {
	out, err := iptables(ctx, table, "-S", chain)
	if err != nil {
		return nil // no chain
	}
	if strings.Count(strings.TrimSpace(out), "\n") > 0 {
		return nil // has rules
	}
	for _, j := range jumps {
		if err := iptDelete(ctx, j); err != nil {
			return err
		}
	}
	if _, err := iptables(ctx, table, "-X", chain); err != nil {
		return err
	}
	return iptRemoveTable(ctx, table)
}

// iptForwardRules are the rules in BERTH-FORWARD for one bridge: traffic
// from the bridge, replies to it, and published ports (DNAT) to it.
func iptForwardRules(bridge string) []iptRule {
	return []iptRule{
		rule("filter", iptForwardChain, false, "-i "+bridge+" -j ACCEPT"),
		rule("filter", iptForwardChain, false, "-o "+bridge+" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT"),
		rule("filter", iptForwardChain, false, "-o "+bridge+" -m conntrack --ctstate DNAT -j ACCEPT"),
	}
}

// iptEnsureForward makes the iptables FORWARD chain accept bridge's
// traffic, so that a DROP policy (set by Docker or ufw) does not block
// what berth's nftables table allows. Without iptables there is no such
// policy to work around.
func iptEnsureForward(ctx context.Context, bridge string) error {
	if !(iptFirewall{}).available() {
		return nil
	}
	if err := iptEnsureChain(ctx, "filter", iptForwardChain); err != nil {
		return err
	}
	for _, r := range iptForwardRules(bridge) {
		if err := iptEnsure(ctx, r); err != nil {
			return err
		}
	}
	return iptEnsure(ctx, iptChains[0].jumps[0])
}

// iptRemoveForward deletes bridge's accept rules, and BERTH-FORWARD and
// its jump once the chain is empty.
func iptRemoveForward(ctx context.Context, bridge string) error {
	if !(iptFirewall{}).available() || !iptChainExists(ctx, "filter", iptForwardChain) {
		return nil
	}
	for _, r := range iptForwardRules(bridge) {
		if err := iptDelete(ctx, r); err != nil {
			return err
		}
	}
	return iptRemoveChainIfEmpty(ctx, "filter", iptForwardChain, iptChains[0].jumps)
}

// iptFirewall is the backend for hosts without nft: the same behaviour as
// table ip berth, as rules in berth's iptables chains.
type iptFirewall struct{}

func (iptFirewall) name() string { return "iptables" }

func (iptFirewall) available() bool {
	_, err := exec.LookPath("iptables")
	return err == nil
}

// networkRules are n's rules, in the order they are added.
func (iptFirewall) networkRules(n Network) []iptRule {
	br, s := n.Bridge, n.Subnet.String()
	rules := []iptRule{
		// Containers cannot reach host services on loopback although
		// route_localnet is set; nothing outside reaches container
		// addresses directly.
		rule("raw", iptRawChain, false, "-i "+br+" -d 127.0.0.0/8 -j DROP"),
		rule("raw", iptRawChain, false, "! -i "+br+" -d "+s+" -j DROP"),
		// Localhost clients of published ports, and hairpin traffic.
		rule("nat", iptPostChain, false, "-s 127.0.0.0/8 -o "+br+" -m conntrack --ctstate DNAT -j MASQUERADE"),
		rule("nat", iptPostChain, false, "-s "+s+" -o "+br+" -m conntrack --ctstate DNAT -j MASQUERADE"),
	}
	if n.Internal {
		rules = append(rules,
			rule("filter", iptForwardChain, true, "-i "+br+" ! -o "+br+" -j DROP"),
			rule("filter", iptForwardChain, true, "-o "+br+" ! -i "+br+" -j DROP"))
	} else {
		rules = append(rules,
			rule("nat", iptPostChain, false, "-s "+s+" ! -o "+br+" -j MASQUERADE"),
			// Only published ports and replies enter from elsewhere.
			rule("filter", iptForwardChain, true, "-o "+br+" ! -i "+br+" -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP"))
	}
	return append(rules, iptForwardRules(br)...)
}

func (fw iptFirewall) ensureNetwork(ctx context.Context, n Network) error {
	for _, c := range iptChains {
		if err := iptEnsureChain(ctx, c.table, c.chain); err != nil {
			return err
		}
	}
	for _, r := range fw.networkRules(n) {
		if err := iptEnsure(ctx, r); err != nil {
			return err
		}
	}
	for _, c := range iptChains {
		for _, j := range c.jumps {
			if err := iptEnsure(ctx, j); err != nil {
				return err
			}
		}
	}
	return nil
}

func (fw iptFirewall) removeNetwork(ctx context.Context, n Network) error {
	if !slices.ContainsFunc(iptChains, func(c iptChain) bool { return iptChainExists(ctx, c.table, c.chain) }) {
		return nil // nothing of berth's
	}
	rules := fw.networkRules(n)
	slices.Reverse(rules)
	for _, r := range rules {
		if err := iptDelete(ctx, r); err != nil {
			return err
		}
	}
	for _, c := range iptChains {
		if err := iptRemoveChainIfEmpty(ctx, c.table, c.chain, c.jumps); err != nil {
			return err
		}
	}
	return nil
}

// portRules are the DNAT rules of ports of the container at ip. Rules for
// one host address go first, so they win over rules for every address.
func (iptFirewall) portRules(ip netip.Addr, ports []PortMapping) []iptRule {
	var rules []iptRule
	for _, p := range ports {
		args := fmt.Sprintf("-p %s --dport %d -j DNAT --to-destination %s:%d", p.Proto, p.HostPort, ip, p.ContainerPort)
		if p.HostIP.IsValid() {
			rules = append(rules, rule("nat", iptDNATChain, true, "-d "+p.HostIP.String()+"/32 "+args))
		} else {
			rules = append(rules, rule("nat", iptDNATChain, false, args))
		}
	}
	return rules
}

func (fw iptFirewall) addPorts(ctx context.Context, ip netip.Addr, ports []PortMapping) error {
	c := iptChains[2]
	if err := iptEnsureChain(ctx, c.table, c.chain); err != nil {
		return err
	}
	if err := iptDeleteStalePorts(ctx, ports); err != nil {
		return err
	}
	for _, r := range fw.portRules(ip, ports) {
		if err := iptEnsure(ctx, r); err != nil {
			return err
		}
	}
	for _, j := range c.jumps {
		if err := iptEnsure(ctx, j); err != nil {
			return err
		}
	}
	return nil
}

func (fw iptFirewall) removePorts(ctx context.Context, ip netip.Addr, ports []PortMapping) error {
	if !iptChainExists(ctx, "nat", iptDNATChain) {
		return nil
	}
	for _, r := range fw.portRules(ip, ports) {
		if err := iptDelete(ctx, r); err != nil {
			return err
		}
	}
	return nil
}

// With iptables-nft, the first iptables command on a table creates it as
// nftables table "ip <table>". When berth's was that first command, it
// notes so in a marker file, and removes the table again with its last
// chain if nobody else has put anything in it. (Without the nft command
// such a table stays, empty.)
func iptMarker(table string) string { return "/run/berth/iptables-" + table + "-created" }

// iptBuiltin lists each table's built-in chains.
var iptBuiltin = map[string][]string{
	"filter": {"INPUT", "FORWARD", "OUTPUT"},
	"nat":    {"PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"},
	"raw":    {"PREROUTING", "OUTPUT"},
}

// iptNoteTable writes table's marker if iptables is nf_tables based and
// table ip <table> does not exist yet.
func iptNoteTable(ctx context.Context, table string) error {
	if !(nftFirewall{}).available() || !iptablesIsNft(ctx) {
		return nil
	}
	if exec.CommandContext(ctx, "nft", "list", "table", "ip", table).Run() == nil {
		return nil
	}
	if err := os.WriteFile(iptMarker(table), nil, 0o600); err != nil {
		return fmt.Errorf("firewall: %w", err)
	}
	return nil
}

// iptRemoveTable deletes table ip <table> if berth created it and it
// holds nothing but empty built-in chains with an accept policy.
func iptRemoveTable(ctx context.Context, table string) error {
	if _, err := os.Stat(iptMarker(table)); err != nil {
		return nil
	}
	if !(nftFirewall{}).available() {
		return nil
	}
	out, err := exec.CommandContext(ctx, "nft", "-j", "list", "table", "ip", table).Output()
	if err != nil {
		os.Remove(iptMarker(table))
		return nil // already gone
	}
	var doc struct {
		Nftables []map[string]json.RawMessage `json:"nftables"`
	}
	if err := json.Unmarshal(out, &doc); err != nil {
		return fmt.Errorf("nft list table ip %s: %w", table, err)
	}
	var chains []string
	for _, obj := range doc.Nftables {
		for kind, raw := range obj {
			switch kind {
			case "metainfo", "table":
			case "chain":
				var c struct{ Name, Policy string }
				if err := json.Unmarshal(raw, &c); err != nil {
					return fmt.Errorf("nft list table ip %s: %w", table, err)
				}
				if !slices.Contains(iptBuiltin[table], c.Name) || c.Policy != "accept" {
					return nil // someone else's chain: not ours to remove yet
				}
				chains = append(chains, c.Name)
			default:
				return nil // rules or sets: in use
			}
		}
	}
	// Deleting a chain that has gained rules meanwhile fails and aborts
	// the whole transaction.
	var script strings.Builder
	for _, c := range chains {
		fmt.Fprintf(&script, "delete chain ip %s %s\n", table, c)
	}
	fmt.Fprintf(&script, "delete table ip %s\n", table)
	if nft(ctx, script.String()) == nil {
		os.Remove(iptMarker(table))
	}
	return nil
}

// iptDeleteStalePorts deletes DNAT rules for the host ports of ports that
// send them elsewhere: the caller holds those ports, so such rules were
// left by a container that was not detached.
func iptDeleteStalePorts(ctx context.Context, ports []PortMapping) error {
	out, err := iptables(ctx, "nat", "-S", iptDNATChain)
	if err != nil {
		return err
	}
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) < 2 || f[0] != "-A" {
			continue
		}
		arg := func(name string) string {
			if i := slices.Index(f, name); i >= 0 && i+1 < len(f) {
				return f[i+1]
			}
			return ""
		}
		for _, p := range ports {
			hostIP := ""
			if p.HostIP.IsValid() {
				hostIP = p.HostIP.String() + "/32"
			}
			if arg("-p") == p.Proto && arg("--dport") == fmt.Sprint(p.HostPort) && arg("-d") == hostIP {
				if _, err := iptables(ctx, "nat", append([]string{"-D"}, f[1:]...)...); err != nil {
					return err
				}
				break
			}
		}
	}
	return nil
}
