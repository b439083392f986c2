package network

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/netip"
	"os/exec"
	"path/filepath"
	"strings"
)

// nftTable is the nftables table berth owns: its rules are fixed and
// everything that changes is a set or map element.
const nftTable = "berth"

// The nftables table ip berth. Forwarding rules: containers of an
// internal network reach only their own network; published ports (DNAT)
// are reachable from everywhere else; other traffic between two networks
// is dropped. Sets: bridges (every berth bridge), self_pairs (bridge .
// same bridge: traffic within a network), internal (bridges of internal
// networks), subnets (all network subnets), masq (subnets of non-internal
// networks). Maps: dnat_any (proto . port → container addr . port, for
// every local address), dnat_addr (host addr . proto . port → container
// addr . port).
var nftSets = []string{
	"set bridges { type ifname; }",
	"set self_pairs { type ifname . ifname; }",
	"set internal { type ifname; }",
	"set subnets { type ipv4_addr; flags interval; }",
	"set masq { type ipv4_addr; flags interval; }",
	"map dnat_any { type inet_proto . inet_service : ipv4_addr . inet_service; }",
	"map dnat_addr { type ipv4_addr . inet_proto . inet_service : ipv4_addr . inet_service; }",
}

var nftChains = []struct {
	name, hook string
	rules      []string
}{
	{"raw_prerouting", "type filter hook prerouting priority raw; policy accept;", []string{
		// Containers cannot reach host services on loopback although
		// route_localnet is set on the bridges.
		"iifname @bridges ip daddr 127.0.0.0/8 drop",
		// Nothing outside reaches container addresses directly.
		"iifname != @bridges ip daddr @subnets drop",
	}},
	{"publish", "", []string{
		"dnat ip to ip daddr . meta l4proto . th dport map @dnat_addr",
		"dnat ip to meta l4proto . th dport map @dnat_any",
	}},
	{"prerouting", "type nat hook prerouting priority dstnat; policy accept;", []string{
		"fib daddr type local jump publish",
	}},
	{"output", "type nat hook output priority -100; policy accept;", []string{
		"fib daddr type local jump publish",
	}},
	{"postrouting", "type nat hook postrouting priority srcnat; policy accept;", []string{
		"ip saddr @masq oifname != @bridges masquerade",
		"ct status dnat ip saddr 127.0.0.0/8 oifname @bridges masquerade",
		// Hairpin: a container reaching a published port from a bridge.
		// (iifname is unset in postrouting, hence saddr.)
		"ct status dnat ip saddr @subnets oifname @bridges masquerade",
	}},
	{"forward", "type filter hook forward priority filter; policy accept;", []string{
		"iifname @internal iifname . oifname != @self_pairs drop",
		"oifname @internal iifname . oifname != @self_pairs drop",
		"ct status dnat accept",
		"iifname @bridges oifname @bridges iifname . oifname != @self_pairs drop",
	}},
}

// nftVersion identifies the rules above; see nftEnsureScript.
var nftVersion = func() string {
	h := sha256.New()
	for _, set := range nftSets {
		fmt.Fprintln(h, set)
	}
	for _, c := range nftChains {
		fmt.Fprintln(h, c.name, c.hook, c.rules)
	}
	return "berth " + hex.EncodeToString(h.Sum(nil))[:16]
}()

// nftEnsureScript creates table ip <table> or brings its rules up to date
// in one transaction, keeping the elements of its sets and maps.
func nftEnsureScript(table string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "table ip %s {\n", table)
	for _, set := range nftSets {
		fmt.Fprintf(&b, "\t%s\n", set)
	}
	for _, c := range nftChains {
		fmt.Fprintf(&b, "\tchain %s { %s }\n", c.name, c.hook)
	}
	b.WriteString("}\n")
	for _, c := range nftChains {
		fmt.Fprintf(&b, "flush chain ip %s %s\n", table, c.name)
	}
	for _, c := range nftChains {
		for _, r := range c.rules {
			fmt.Fprintf(&b, "add rule ip %s %s %s\n", table, c.name, r)
		}
	}
	// The version marker: a comment on a rule that matches nothing, so
	// that it is replaced with the rules (a table's comment cannot
	// change).
	fmt.Fprintf(&b, "add rule ip %s publish meta l4proto 255 comment %q\n", table, nftVersion)
	return b.String()
}

// nftFirewall keeps berth's rules in table ip berth, plus FORWARD
// accept rules in iptables when that is installed (see iptEnsureForward).
type nftFirewall struct{}

func (nftFirewall) name() string { return "nftables" }

func (nftFirewall) available() bool {
	_, err := exec.LookPath("nft")
	return err == nil
}

func (nftFirewall) ensureNetwork(ctx context.Context, n Network) error {
	if err := nftEnsureTable(ctx, nftTable); err != nil {
		return err
	}
	if err := nft(ctx, addScript(networkElements(n))); err != nil {
		return err
	}
	return iptEnsureForward(ctx, n.Bridge)
}

func (nftFirewall) removeNetwork(ctx context.Context, n Network) error {
	if err := nftRemoveElements(ctx, networkElements(n)); err != nil {
		return err
	}
	return iptRemoveForward(ctx, n.Bridge)
}

func (nftFirewall) addPorts(ctx context.Context, ip netip.Addr, ports []PortMapping) error {
	if err := nftEnsureTable(ctx, nftTable); err != nil {
		return err
	}
	return nftSetPorts(ctx, portElements(ip, ports))
}

func (nftFirewall) removePorts(ctx context.Context, ip netip.Addr, ports []PortMapping) error {
	return nftDeletePorts(ctx, portElements(ip, ports))
}

// nft runs nft -f - with script.
func nft(ctx context.Context, script string) error {
	cmd := exec.CommandContext(ctx, "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(script)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("nft: %v: %s", err, strings.TrimSpace(out.String()))
	}
	return nil
}

// nftEnsureTable creates table ip <table> unless it exists with the
// current rules, and updates the rules of one an older berth made.
func nftEnsureTable(ctx context.Context, table string) error {
	stamp, want := filepath.Join(fwStampDir, "nft-table-"+table), "boot="+bootID()+" rules="+nftVersion+"\n"
	useStamp := forceFirewall == "" && table == nftTable
	if useStamp && stampValid(stamp, want) {
		return nil
	}
	out, err := exec.CommandContext(ctx, "nft", "list", "table", "ip", table).Output()
	if err != nil || !strings.Contains(string(out), fmt.Sprintf("comment %q", nftVersion)) {
		if err := nft(ctx, nftEnsureScript(table)); err != nil {
			return err
		}
	}
	if useStamp {
		writeStamp(stamp, want)
	}
	return nil
}

// nftTableEmpty reports whether table ip berth has no set or map
// elements (or does not exist).
func nftTableEmpty(ctx context.Context, table string) (bool, error) {
	cmd := exec.CommandContext(ctx, "nft", "-j", "list", "table", "ip", table)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		if strings.Contains(stderr.String(), "No such file") {
			return true, nil
		}
		return false, fmt.Errorf("nft list table: %v: %s", err, strings.TrimSpace(stderr.String()))
	}
	var doc struct {
		Nftables []map[string]struct {
			Elem []json.RawMessage `json:"elem"`
		} `json:"nftables"`
	}
	if err := json.Unmarshal(out, &doc); err != nil {
		return false, fmt.Errorf("nft list table: %w", err)
	}
	for _, obj := range doc.Nftables {
		for kind, v := range obj {
			if (kind == "set" || kind == "map") && len(v.Elem) > 0 {
				return false, nil
			}
		}
	}
	return true, nil
}

// networkElements are n's set elements.
func networkElements(n Network) []string {
	br := fmt.Sprintf("%q", n.Bridge)
	el := []string{
		"bridges { " + br + " }",
		"self_pairs { " + br + " . " + br + " }",
		"subnets { " + n.Subnet.String() + " }",
	}
	if n.Internal {
		el = append(el, "internal { "+br+" }")
	} else {
		el = append(el, "masq { "+n.Subnet.String()+" }")
	}
	return el
}

// portElem is one element of dnat_any or dnat_addr.
type portElem struct{ set, key, data string }

func portElements(ip netip.Addr, ports []PortMapping) []portElem {
	var el []portElem
	for _, p := range ports {
		data := fmt.Sprintf("%s . %d", ip, p.ContainerPort)
		if p.HostIP.IsValid() {
			el = append(el, portElem{"dnat_addr", fmt.Sprintf("%s . %s . %d", p.HostIP, p.Proto, p.HostPort), data})
		} else {
			el = append(el, portElem{"dnat_any", fmt.Sprintf("%s . %d", p.Proto, p.HostPort), data})
		}
	}
	return el
}

// nftGetData returns the data of the element of map set with key, if
// there is one.
func nftGetData(ctx context.Context, set, key string) (string, bool) {
	out, err := exec.CommandContext(ctx, "nft", "get", "element", "ip", nftTable, set, "{ "+key+" }").Output()
	if err != nil {
		return "", false
	}
	_, rest, ok := strings.Cut(string(out), "elements = {")
	if !ok {
		return "", false
	}
	rest, _, _ = strings.Cut(rest, "}")
	_, data, ok := strings.Cut(rest, " : ")
	return strings.Join(strings.Fields(data), " "), ok
}

// nftSetPorts adds port elements, replacing elements with the same key:
// the caller holds the host port, so such an element is stale (left by a
// container that was not detached).
func nftSetPorts(ctx context.Context, elems []portElem) error {
	var b strings.Builder
	for _, e := range elems {
		data, ok := nftGetData(ctx, e.set, e.key)
		if ok && data == e.data {
			continue
		}
		if ok {
			fmt.Fprintf(&b, "delete element ip %s %s { %s }\n", nftTable, e.set, e.key)
		}
		fmt.Fprintf(&b, "add element ip %s %s { %s : %s }\n", nftTable, e.set, e.key, e.data)
	}
	if b.Len() == 0 {
		return nil
	}
	return nft(ctx, b.String())
}

// nftDeletePorts deletes port elements that still map to the given data
// (a newer container may have taken the key over), then the table if it is
// empty.
func nftDeletePorts(ctx context.Context, elems []portElem) error {
	if exec.CommandContext(ctx, "nft", "list", "table", "ip", nftTable).Run() != nil {
		return nil // no table, no elements
	}
	var b strings.Builder
	for _, e := range elems {
		if data, ok := nftGetData(ctx, e.set, e.key); ok && data == e.data {
			fmt.Fprintf(&b, "delete element ip %s %s { %s }\n", nftTable, e.set, e.key)
		}
	}
	if b.Len() > 0 {
		if err := nft(ctx, b.String()); err != nil {
			return err
		}
	}
	return nftDeleteTableIfEmpty(ctx)
}

// addScript adds set elements; adding one that exists is a no-op.
func addScript(elements []string) string {
	var b strings.Builder
	for _, e := range elements {
		fmt.Fprintf(&b, "add element ip %s %s\n", nftTable, e)
	}
	return b.String()
}

// deleteScript deletes set elements. It adds each element first (a no-op
// if present) so that deleting one that is already gone is not an error.
func deleteScript(elements []string) string {
	var b strings.Builder
	for _, e := range elements {
		fmt.Fprintf(&b, "add element ip %s %s\ndelete element ip %s %s\n", nftTable, e, nftTable, e)
	}
	return b.String()
}

// nftRemoveElements deletes set elements, then the table if it is empty.
func nftRemoveElements(ctx context.Context, elements []string) error {
	if exec.CommandContext(ctx, "nft", "list", "table", "ip", nftTable).Run() != nil {
		return nil // no table, no elements
	}
	if err := nft(ctx, deleteScript(elements)); err != nil {
		return err
	}
	return nftDeleteTableIfEmpty(ctx)
}

// nftDeleteTableIfEmpty deletes table ip berth if it has no elements.
func nftDeleteTableIfEmpty(ctx context.Context) error {
	empty, err := nftTableEmpty(ctx, nftTable)
	if err != nil || !empty {
		return err
	}
	clearStamps()
	return nft(ctx, "delete table ip "+nftTable+"\n")
}
