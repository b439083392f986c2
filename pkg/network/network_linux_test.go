package network

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/berthsh/berth/internal/testutil"
	"github.com/berthsh/berth/pkg/errdefs"
)

func randHex(t *testing.T, n int) string {
	t.Helper()
	b := make([]byte, (n+1)/2)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)[:n]
}

// testNetNS makes a pinned network namespace removed when the test ends.
func testNetNS(t *testing.T) string {
	t.Helper()
	path, err := NewNetNS(t.Context(), "test-"+randHex(t, 10))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := RemoveNetNS(path); err != nil {
			t.Error(err)
		}
	})
	return path
}

// testNetwork creates a network with a free random /24 in 10.250.0.0/16
// and removes it when the test ends.
func testNetwork(t *testing.T, m *Manager, opts CreateOptions) Network {
	t.Helper()
	opts.Name = "test-" + randHex(t, 8)
	var n Network
	var err error
	for range 20 {
		b := make([]byte, 1)
		rand.Read(b)
		opts.Subnet = netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 250, b[0], 0}), 24)
		if n, err = m.Create(t.Context(), opts); !errors.Is(err, errdefs.ErrConflict) {
			break
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := m.Remove(context.Background(), n.ID); err != nil {
			t.Errorf("remove network: %v", err)
		}
		assertNoTrace(t, n)
	})
	return n
}

// attach attaches a container and detaches it when the test ends.
func attach(t *testing.T, m *Manager, n Network, nsPath string, opts AttachOptions) Endpoint {
	t.Helper()
	id := randHex(t, 64)
	ep, err := m.Attach(t.Context(), n.Name, id, nsPath, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := m.Detach(context.Background(), n.Name, id); err != nil && !errors.Is(err, errdefs.ErrNotFound) {
			t.Errorf("detach: %v", err)
		}
		if _, err := netlink.LinkByName(ep.HostIfName); err == nil {
			t.Errorf("veth %s still exists after Detach", ep.HostIfName)
		}
	})
	return ep
}

// inNetNS runs fn on a thread in the namespace at path, then moves the
// thread back. Sockets fn creates stay in that namespace.
func inNetNS(t *testing.T, path string, fn func() error) error {
	t.Helper()
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		defer orig.Close()
		ns, err := netns.GetFromPath(path)
		if err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		defer ns.Close()
		if err := netns.Set(ns); err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		err = fn()
		if netns.Set(orig) == nil { // else the thread dies with the goroutine
			runtime.UnlockOSThread()
		}
		errc <- err
	}()
	return <-errc
}

// serveToken listens on addr inside a namespace and answers each
// connection with token and the address the client appears to have.
func serveToken(t *testing.T, nsPath, addr, token string) {
	t.Helper()
	var ln net.Listener
	err := inNetNS(t, nsPath, func() error {
		var err error
		ln, err = net.Listen("tcp4", addr)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			host, _, _ := net.SplitHostPort(c.RemoteAddr().String())
			fmt.Fprintf(c, "%s %s\n", token, host)
			c.Close()
		}
	}()
}

// serveUDPEcho echoes UDP datagrams on addr inside a namespace.
func serveUDPEcho(t *testing.T, nsPath, addr string) {
	t.Helper()
	var pc net.PacketConn
	err := inNetNS(t, nsPath, func() error {
		var err error
		pc, err = net.ListenPacket("udp4", addr)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			pc.WriteTo(buf[:n], from)
		}
	}()
}

// udpEcho sends msg to addr from the host and returns the reply.
func udpEcho(addr, msg string) (string, error) {
	c, err := net.Dial("udp4", addr)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Write([]byte(msg)); err != nil {
		return "", err
	}
	buf := make([]byte, 1500)
	n, err := c.Read(buf)
	return string(buf[:n]), err
}

// fetchToken connects to addr (from the namespace nsPath, or the host if
// empty) and returns the served token and the client address the server
// saw.
func fetchToken(t *testing.T, nsPath, addr string) (token, client string, err error) {
	t.Helper()
	var c net.Conn
	dial := func() error {
		var err error
		c, err = net.DialTimeout("tcp4", addr, 3*time.Second)
		return err
	}
	if nsPath == "" {
		err = dial()
	} else {
		err = inNetNS(t, nsPath, dial)
	}
	if err != nil {
		return "", "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(3 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", "", err
	}
	token, client, _ = strings.Cut(strings.TrimSpace(line), " ")
	return token, client, nil
}

// assertNoTrace checks that nothing of network n is left on the host:
// links, nftables elements, iptables rules.
func assertNoTrace(t *testing.T, n Network) {
	t.Helper()
	if _, err := netlink.LinkByName(n.Bridge); err == nil {
		t.Errorf("bridge %s still exists", n.Bridge)
	}
	out, err := exec.Command("nft", "list", "table", "ip", nftTable).CombinedOutput()
	if err == nil {
		for _, s := range []string{n.Bridge, n.Subnet.String(), n.Subnet.Addr().String()[:len(n.Subnet.Addr().String())-1]} {
			if strings.Contains(string(out), s) {
				t.Errorf("nft table %s still mentions %s:\n%s", nftTable, s, out)
			}
		}
	}
	for _, table := range []string{"filter", "nat", "raw"} {
		out, err := exec.Command("iptables", "-w", "-t", table, "-S").CombinedOutput()
		if err == nil && (strings.Contains(string(out), n.Bridge) || strings.Contains(string(out), n.Subnet.String())) {
			t.Errorf("iptables table %s still mentions %s or %s:\n%s", table, n.Bridge, n.Subnet, out)
		}
	}
}

// primaryIP returns the host's first global IPv4 address on the link of
// its default route.
func primaryIP(t *testing.T) netip.Addr {
	t.Helper()
	routes, err := netlink.RouteList(nil, netlink.FAMILY_V4)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range routes {
		if !isDefaultRoute(r) {
			continue
		}
		link, err := netlink.LinkByIndex(r.LinkIndex)
		if err != nil {
			continue
		}
		addrs, err := netlink.AddrList(link, netlink.FAMILY_V4)
		if err != nil {
			continue
		}
		for _, a := range addrs {
			if ip, ok := netip.AddrFromSlice(a.IP); ok && ip.Unmap().IsGlobalUnicast() {
				return ip.Unmap()
			}
		}
	}
	return netip.Addr{}
}

// forEachFirewall runs test once per installed firewall backend, forcing
// its use.
func forEachFirewall(t *testing.T, test func(*testing.T)) {
	for _, fw := range firewalls {
		t.Run(fw.name(), func(t *testing.T) {
			if !fw.available() {
				t.Skipf("%s not installed", fw.name())
			}
			forceFirewall = fw.name()
			t.Cleanup(func() { forceFirewall = "" })
			test(t)
		})
	}
}

func isDefaultRoute(r netlink.Route) bool {
	if r.Dst == nil {
		return true
	}
	ones, _ := r.Dst.Mask.Size()
	return ones == 0
}

func TestNetNS(t *testing.T) {
	testutil.RequiresRoot(t)
	path := testNetNS(t)
	if _, err := NewNetNS(t.Context(), filepath.Base(path)); !errors.Is(err, errdefs.ErrAlreadyExists) {
		t.Errorf("same name twice: %v, want ErrAlreadyExists", err)
	}
	if _, err := NewNetNS(t.Context(), "../x"); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("bad name: %v, want ErrInvalidArgument", err)
	}
	// A different namespace from ours, with lo up and nothing else.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var self, other unix.Stat_t
	if err := unix.Stat("/proc/thread-self/ns/net", &self); err != nil {
		t.Fatal(err)
	}
	if err := unix.Stat(path, &other); err != nil {
		t.Fatal(err)
	}
	if self.Ino == other.Ino {
		t.Fatal("NewNetNS pinned the caller's namespace")
	}
	err := withNetNSHandle(path, func(h *netlink.Handle) error {
		links, err := h.LinkList()
		if err != nil {
			return err
		}
		if len(links) != 1 || links[0].Attrs().Name != "lo" || links[0].Attrs().Flags&net.FlagUp == 0 {
			return fmt.Errorf("links in new namespace: %v", links)
		}
		return nil
	})
	if err != nil {
		t.Error(err)
	}
	// No thread of the process was left in the new namespace.
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Fatal(err)
	}
	for _, task := range tasks {
		var st unix.Stat_t
		if unix.Stat("/proc/self/task/"+task.Name()+"/ns/net", &st) == nil && st.Ino == other.Ino {
			t.Errorf("thread %s is in the new namespace", task.Name())
		}
	}
	if err := RemoveNetNS(path); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("pin file still exists: %v", err)
	}
	if err := RemoveNetNS(path); err != nil {
		t.Errorf("second RemoveNetNS: %v", err)
	}
}

// TestAttachConnectivity puts two namespaces on a network and checks their
// configuration, that they reach each other, and that Detach and Remove
// leave nothing behind.
func TestAttachConnectivity(t *testing.T) {
	testutil.RequiresRoot(t)
	m, err := New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	n := testNetwork(t, m, CreateOptions{})
	ns1, ns2 := testNetNS(t), testNetNS(t)
	mac, _ := net.ParseMAC("02:42:ac:11:00:99")
	ep1 := attach(t, m, n, ns1, AttachOptions{Aliases: []string{"one"}})
	ep2 := attach(t, m, n, ns2, AttachOptions{MAC: mac})

	if ep1.Address.Addr() == ep2.Address.Addr() || !n.Subnet.Contains(ep1.Address.Addr()) || ep1.Gateway != n.Gateway {
		t.Errorf("endpoints %+v and %+v", ep1, ep2)
	}
	if ep2.MAC != mac.String() {
		t.Errorf("MAC %s, want %s", ep2.MAC, mac)
	}
	err = withNetNSHandle(ns1, func(h *netlink.Handle) error {
		link, err := h.LinkByName("eth0")
		if err != nil {
			return err
		}
		if link.Attrs().Flags&net.FlagUp == 0 {
			return errors.New("eth0 is down")
		}
		addrs, err := h.AddrList(link, netlink.FAMILY_V4)
		if err != nil || len(addrs) != 1 || addrs[0].IPNet.String() != ep1.Address.String() {
			return fmt.Errorf("eth0 addresses %v (%v), want %s", addrs, err, ep1.Address)
		}
		routes, err := h.RouteList(link, netlink.FAMILY_V4)
		if err != nil {
			return err
		}
		for _, r := range routes {
			if isDefaultRoute(r) && r.Gw.String() == n.Gateway.String() {
				return nil
			}
		}
		return fmt.Errorf("no default route via %s: %v", n.Gateway, routes)
	})
	if err != nil {
		t.Fatal(err)
	}
	if ifs, err := m.Endpoints(t.Context(), n.Name); err != nil || len(ifs) != 2 {
		t.Errorf("Endpoints = %v, %v", ifs, err)
	}
	if err := m.Remove(t.Context(), n.Name); !errors.Is(err, errdefs.ErrConflict) {
		t.Errorf("Remove with endpoints: %v, want ErrConflict", err)
	}

	// ICMP both ways, and TCP.
	pingers := []struct{ ns, dst string }{{ns1, ep2.Address.Addr().String()}, {ns2, ep1.Address.Addr().String()}}
	if _, err := exec.LookPath("busybox"); err != nil {
		t.Log("busybox not installed; not pinging")
		pingers = nil
	}
	for _, c := range pingers {
		out, err := exec.Command("nsenter", "--net="+c.ns, "busybox", "ping", "-c", "1", "-W", "3", c.dst).CombinedOutput()
		if err != nil {
			t.Errorf("ping %s: %v\n%s", c.dst, err, out)
		}
	}
	serveToken(t, ns2, ":80", "hello")
	tok, client, err := fetchToken(t, ns1, net.JoinHostPort(ep2.Address.Addr().String(), "80"))
	if err != nil || tok != "hello" || client != ep1.Address.Addr().String() {
		t.Errorf("ns1 -> ns2:80 = %q from %q, %v; want hello from %s", tok, client, err, ep1.Address.Addr())
	}
}

// TestPublish publishes a port of a server in a namespace and reaches it
// from the host on 127.0.0.1 and the primary address, and through the
// FORWARD path from a namespace playing an outside client, with the
// iptables FORWARD policy set to DROP as Docker does. It also checks
// outbound masquerading, isolation of the container address from outside,
// and that the rules go away with Detach.
func TestPublish(t *testing.T) {
	testutil.RequiresRoot(t)
	forEachFirewall(t, testPublish)
}

func testPublish(t *testing.T) {
	ctx := t.Context()
	m, err := New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	n := testNetwork(t, m, CreateOptions{})
	ctr := testNetNS(t)
	serveToken(t, ctr, ":8000", "published")

	// Reserve host ports first, as the container's supervisor does.
	anyRes, err := ReservePort(ctx, "tcp", netip.Addr{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer anyRes.Close()
	lo := netip.MustParseAddr("127.0.0.1")
	loRes, err := ReservePort(ctx, "tcp", lo, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer loRes.Close()
	if _, err := ReservePort(ctx, "tcp", netip.Addr{}, anyRes.HostPort); !errors.Is(err, errdefs.ErrConflict) {
		t.Errorf("reserving a published port again: %v, want ErrConflict", err)
	}

	udpRes, err := ReservePort(ctx, "udp", netip.Addr{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer udpRes.Close()
	serveUDPEcho(t, ctr, ":8001")

	ports := []PortMapping{
		{Proto: "tcp", HostIP: netip.IPv4Unspecified(), HostPort: anyRes.HostPort, ContainerPort: 8000},
		{Proto: "tcp", HostIP: lo, HostPort: loRes.HostPort, ContainerPort: 8000},
		{Proto: "udp", HostPort: udpRes.HostPort, ContainerPort: 8001},
	}
	id := randHex(t, 64)
	ep, err := m.Attach(ctx, n.Name, id, ctr, AttachOptions{Ports: ports})
	if err != nil {
		t.Fatal(err)
	}
	detached := false
	t.Cleanup(func() {
		if !detached {
			m.Detach(context.Background(), n.Name, id)
		}
	})
	cip := ep.Address.Addr().String()

	check := func(nsPath, addr, wantClient string) {
		t.Helper()
		tok, client, err := fetchToken(t, nsPath, addr)
		if err != nil || tok != "published" {
			t.Errorf("connect to %s: got %q, %v; want the container's server", addr, tok, err)
			return
		}
		if wantClient != "" && client != wantClient {
			t.Errorf("connect to %s: server saw client %s, want %s", addr, client, wantClient)
		}
	}
	anyPort, loPort := fmt.Sprint(anyRes.HostPort), fmt.Sprint(loRes.HostPort)
	check("", net.JoinHostPort("127.0.0.1", anyPort), n.Gateway.String())
	check("", net.JoinHostPort("127.0.0.1", loPort), n.Gateway.String())
	udpAddr := net.JoinHostPort("127.0.0.1", fmt.Sprint(udpRes.HostPort))
	if got, err := udpEcho(udpAddr, "ping-udp"); err != nil || got != "ping-udp" {
		t.Errorf("UDP %s: got %q, %v; want the container's echo", udpAddr, got, err)
	}
	if len(ep.Ports) != 3 || ep.Ports[0].HostIP.IsValid() {
		t.Errorf("endpoint ports %v: want 3, the first with 0.0.0.0 stored as unset", ep.Ports)
	}
	primary := primaryIP(t)
	if primary.IsValid() {
		check("", net.JoinHostPort(primary.String(), anyPort), primary.String())
		// Published on 127.0.0.1 only: not on the primary address.
		if tok, _, err := fetchToken(t, "", net.JoinHostPort(primary.String(), loPort)); err == nil && tok == "published" {
			t.Errorf("port published on 127.0.0.1 reachable on %s", primary)
		}
	} else {
		t.Log("no primary IPv4 address; skipping that check")
	}

	// Hairpin: the container reaches its own published port through the
	// gateway address, and a second container on the network reaches it
	// too.
	check(ctr, net.JoinHostPort(n.Gateway.String(), anyPort), n.Gateway.String())
	peer := testNetNS(t)
	attach(t, m, n, peer, AttachOptions{})
	check(peer, net.JoinHostPort(n.Gateway.String(), anyPort), n.Gateway.String())

	// An "outside" host: a namespace linked to the host by a veth.
	out := testNetNS(t)
	third := make([]byte, 1)
	rand.Read(third)
	outHost := netip.AddrFrom4([4]byte{10, 251, third[0], 1})
	outPeer := outHost.Next()
	vethName := "bt" + randHex(t, 10)
	outNS, err := netns.GetFromPath(out)
	if err != nil {
		t.Fatal(err)
	}
	defer outNS.Close()
	err = netlink.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: vethName}, PeerName: "eth0", PeerNamespace: netlink.NsFd(outNS)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { deleteLink(vethName) })
	hostEnd, err := netlink.LinkByName(vethName)
	if err != nil {
		t.Fatal(err)
	}
	if err := netlink.AddrAdd(hostEnd, &netlink.Addr{IPNet: prefixToIPNet(netip.PrefixFrom(outHost, 30))}); err != nil {
		t.Fatal(err)
	}
	if err := netlink.LinkSetUp(hostEnd); err != nil {
		t.Fatal(err)
	}
	err = withNetNSHandle(out, func(h *netlink.Handle) error {
		l, err := h.LinkByName("eth0")
		if err != nil {
			return err
		}
		if err := h.AddrAdd(l, &netlink.Addr{IPNet: prefixToIPNet(netip.PrefixFrom(outPeer, 30))}); err != nil {
			return err
		}
		if err := h.LinkSetUp(l); err != nil {
			return err
		}
		// A route to the container subnet, to try direct access.
		return h.RouteAdd(&netlink.Route{LinkIndex: l.Attrs().Index, Dst: prefixToIPNet(n.Subnet), Gw: outHost.AsSlice()})
	})
	if err != nil {
		t.Fatal(err)
	}
	serveToken(t, out, ":9000", "outside")

	// FORWARD policy DROP, as Docker sets it.
	if _, err := exec.LookPath("iptables"); err == nil {
		policy, err := exec.Command("iptables", "-w", "-S", "FORWARD").Output()
		if err == nil && strings.Contains(string(policy), "-P FORWARD ACCEPT") {
			if out, err := exec.Command("iptables", "-w", "-P", "FORWARD", "DROP").CombinedOutput(); err != nil {
				t.Fatalf("set FORWARD policy: %v: %s", err, out)
			}
			t.Cleanup(func() { exec.Command("iptables", "-w", "-P", "FORWARD", "ACCEPT").Run() })
		}
	}

	// Outside client -> published port on the host address facing it.
	check(out, net.JoinHostPort(outHost.String(), anyPort), outPeer.String())
	// Container -> outside: masqueraded to the host's address.
	tok, client, err := fetchToken(t, ctr, net.JoinHostPort(outPeer.String(), "9000"))
	if err != nil || tok != "outside" || client != outHost.String() {
		t.Errorf("container -> outside: %q from %q, %v; want outside from %s (masqueraded)", tok, client, err, outHost)
	}
	// Outside -> container address directly: dropped.
	if tok, _, err := fetchToken(t, out, net.JoinHostPort(cip, "8000")); err == nil && tok != "" {
		t.Errorf("outside reached container address %s directly", cip)
	}
	// Detach removes the published ports: nothing answers any more.
	if err := m.Detach(ctx, n.Name, id); err != nil {
		t.Fatal(err)
	}
	detached = true
	anyRes.Close()
	loRes.Close()
	rules, _ := exec.Command("nft", "list", "table", "ip", nftTable).CombinedOutput()
	for _, p := range []string{anyPort, loPort} {
		if strings.Contains(string(rules), " "+p+" : ") {
			t.Errorf("port %s still in nft table after Detach:\n%s", p, rules)
		}
	}
	if strings.Contains(string(rules), cip+" ") {
		t.Errorf("container address %s still in nft table after Detach:\n%s", cip, rules)
	}
	if nat, err := exec.Command("iptables", "-w", "-t", "nat", "-S").CombinedOutput(); err == nil && strings.Contains(string(nat), cip+":") {
		t.Errorf("container address %s still in iptables nat table after Detach:\n%s", cip, nat)
	}
	if tok, _, err := fetchToken(t, "", net.JoinHostPort("127.0.0.1", loPort)); err == nil && tok == "published" {
		t.Error("published port still forwarded after Detach")
	}
	flows, err := netlink.ConntrackTableList(netlink.ConntrackTable, unix.AF_INET)
	if err != nil {
		t.Logf("conntrack table: %v", err)
	}
	for _, f := range flows {
		if f.Forward.SrcIP.String() == cip || f.Reverse.SrcIP.String() == cip {
			t.Errorf("conntrack entry of the detached container left: %s", f)
		}
	}
	udpRes.Close()
	if got, err := udpEcho(udpAddr, "after"); err == nil && got == "after" {
		t.Error("published UDP port still forwarded after Detach")
	}
}

// TestIsolation checks that containers on different networks cannot
// reach each other, and that a container on an internal network gets no
// default route and cannot reach beyond its network.
func TestIsolation(t *testing.T) {
	testutil.RequiresRoot(t)
	forEachFirewall(t, testIsolation)
}

func testIsolation(t *testing.T) {
	m, err := New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	netA := testNetwork(t, m, CreateOptions{})
	netB := testNetwork(t, m, CreateOptions{})
	internal := testNetwork(t, m, CreateOptions{Internal: true})
	nsA, nsB, nsI, nsI2 := testNetNS(t), testNetNS(t), testNetNS(t), testNetNS(t)
	attach(t, m, netA, nsA, AttachOptions{})
	epB := attach(t, m, netB, nsB, AttachOptions{})
	epI := attach(t, m, internal, nsI, AttachOptions{})
	epI2 := attach(t, m, internal, nsI2, AttachOptions{})
	if epI.Gateway.IsValid() {
		t.Errorf("internal endpoint has gateway %s", epI.Gateway)
	}
	serveToken(t, nsB, ":80", "b")
	serveToken(t, nsI2, ":80", "i2")

	if tok, _, err := fetchToken(t, nsA, net.JoinHostPort(epB.Address.Addr().String(), "80")); err == nil && tok == "b" {
		t.Error("container on one network reached a container on another")
	}
	// Within the internal network traffic flows.
	if tok, _, err := fetchToken(t, nsI, net.JoinHostPort(epI2.Address.Addr().String(), "80")); err != nil || tok != "i2" {
		t.Errorf("internal network peers: %q, %v", tok, err)
	}
	// From the internal network to another network: no route, and with
	// one added, dropped.
	err = withNetNSHandle(nsI, func(h *netlink.Handle) error {
		l, err := h.LinkByName("eth0")
		if err != nil {
			return err
		}
		return h.RouteAdd(&netlink.Route{LinkIndex: l.Attrs().Index, Dst: prefixToIPNet(netB.Subnet), Gw: internal.Gateway.AsSlice()})
	})
	if err != nil {
		t.Fatal(err)
	}
	if tok, _, err := fetchToken(t, nsI, net.JoinHostPort(epB.Address.Addr().String(), "80")); err == nil && tok == "b" {
		t.Error("container on an internal network reached another network")
	}
}

// TestAttachFailureLeavesNothing attaches to a namespace path that does
// not exist: the error must leave no record, link or address behind.
func TestAttachFailureLeavesNothing(t *testing.T) {
	testutil.RequiresRoot(t)
	m, err := New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	n := testNetwork(t, m, CreateOptions{})
	id := randHex(t, 64)
	_, err = m.Attach(t.Context(), n.Name, id, "/nonexistent/netns", AttachOptions{})
	if err == nil {
		t.Fatal("Attach to a missing namespace succeeded")
	}
	if eps, _ := m.Endpoints(t.Context(), n.Name); len(eps) != 0 {
		t.Errorf("failed Attach left endpoints %+v", eps)
	}
	if _, err := netlink.LinkByName(hostIfName(n.ID, id)); err == nil {
		t.Error("failed Attach left its veth")
	}
	// An interface name clash in the namespace fails cleanly too.
	ns := testNetNS(t)
	attach(t, m, n, ns, AttachOptions{})
	_, err = m.Attach(t.Context(), n.Name, id, ns, AttachOptions{})
	if !errors.Is(err, errdefs.ErrConflict) {
		t.Errorf("second eth0 in one namespace: %v, want ErrConflict", err)
	}
	if eps, _ := m.Endpoints(t.Context(), n.Name); len(eps) != 1 {
		t.Errorf("failed Attach left endpoints %+v", eps)
	}
	if _, err := netlink.LinkByName(hostIfName(n.ID, id)); err == nil {
		t.Error("failed Attach left its veth")
	}
}

// TestDetachAfterCrash detaches an endpoint that was recorded but never
// set up (a crash between the two), with ports.
func TestDetachAfterCrash(t *testing.T) {
	testutil.RequiresRoot(t)
	m, err := New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	n := testNetwork(t, m, CreateOptions{})
	opts := AttachOptions{IfName: "eth0", Ports: []PortMapping{{Proto: "udp", HostPort: 5353, ContainerPort: 53}}}
	if _, _, err := m.reserveEndpoint(t.Context(), n.Name, "crashed", "/gone", opts); err != nil {
		t.Fatal(err)
	}
	n2 := testNetwork(t, m, CreateOptions{})
	if _, _, err := m.reserveEndpoint(t.Context(), n2.Name, "crashed", "/gone", opts); err != nil {
		t.Fatal(err)
	}
	if _, _, err := m.reserveEndpoint(t.Context(), n2.Name, "other", "/gone", AttachOptions{IfName: "eth0"}); err != nil {
		t.Fatal(err)
	}
	if err := m.Detach(t.Context(), n.Name, "crashed"); err != nil {
		t.Fatalf("Detach of a half-made endpoint: %v", err)
	}
	if err := m.DetachAll(t.Context(), "crashed"); err != nil {
		t.Fatalf("DetachAll: %v", err)
	}
	if eps, _ := m.Endpoints(t.Context(), n2.Name); len(eps) != 1 || eps[0].ContainerID != "other" {
		t.Errorf("after DetachAll, %s has endpoints %+v; want only other's", n2.Name, eps)
	}
	if err := m.DetachAll(t.Context(), "crashed"); err != nil {
		t.Errorf("second DetachAll: %v", err)
	}
	if err := m.Detach(t.Context(), n2.Name, "other"); err != nil {
		t.Fatal(err)
	}
	if err := m.Detach(t.Context(), n.Name, "crashed"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("second Detach: %v, want ErrNotFound", err)
	}
}

// DetachAllKeepLinks releases a container's addresses and ports at once
// but leaves its veth pairs for DeleteLinks, which deletes them (and
// tolerates ones gone already).
func TestDetachAllKeepLinks(t *testing.T) {
	testutil.RequiresRoot(t)
	m, err := New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	n := testNetwork(t, m, CreateOptions{})
	n2 := testNetwork(t, m, CreateOptions{})
	ns := testNetNS(t)
	id := randHex(t, 64)
	ep, err := m.Attach(t.Context(), n.Name, id, ns, AttachOptions{IfName: "eth0"})
	if err != nil {
		t.Fatal(err)
	}
	ep2, err := m.Attach(t.Context(), n2.Name, id, ns, AttachOptions{IfName: "eth1", NoDefaultRoute: true})
	if err != nil {
		t.Fatal(err)
	}
	links, err := m.DetachAllKeepLinks(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(links)
	want := []string{ep.HostIfName, ep2.HostIfName}
	slices.Sort(want)
	if !slices.Equal(links, want) {
		t.Errorf("links %v, want %v", links, want)
	}
	for _, nw := range []Network{n, n2} {
		if eps, _ := m.Endpoints(t.Context(), nw.Name); len(eps) != 0 {
			t.Errorf("%s still has endpoints %+v", nw.Name, eps)
		}
	}
	for _, l := range links {
		if _, err := netlink.LinkByName(l); err != nil {
			t.Errorf("veth %s gone before DeleteLinks: %v", l, err)
		}
	}
	// The address is free again (though handed out last).
	other, err := m.Attach(t.Context(), n.Name, randHex(t, 64), testNetNS(t), AttachOptions{IfName: "eth0", IP: ep.Address.Addr()})
	if err != nil {
		t.Errorf("the released address %s cannot be taken: %v", ep.Address.Addr(), err)
	} else {
		t.Cleanup(func() { _ = m.DetachAll(context.Background(), other.ContainerID) })
	}
	if err := DeleteLinks(append(links, "vbmissing0000")); err != nil {
		t.Fatalf("DeleteLinks: %v", err)
	}
	for _, l := range links {
		if _, err := netlink.LinkByName(l); err == nil {
			t.Errorf("veth %s left after DeleteLinks", l)
		}
	}
}
