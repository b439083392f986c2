package network

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/berthsh/berth/pkg/errdefs"
)

// newTestManager returns a Manager in a temporary directory that sees the
// given host routes.
func newTestManager(t *testing.T, routes ...string) *Manager {
	t.Helper()
	m, err := New(filepath.Join(t.TempDir(), "networks"))
	if err != nil {
		t.Fatal(err)
	}
	var ps []netip.Prefix
	for _, r := range routes {
		ps = append(ps, netip.MustParsePrefix(r))
	}
	m.routes = func() ([]netip.Prefix, error) { return ps, nil }
	return m
}

func TestCreateGetListRemove(t *testing.T) {
	ctx := t.Context()
	m := newTestManager(t)
	n, err := m.Create(ctx, CreateOptions{Name: "web", Labels: map[string]string{"a": "b"}})
	if err != nil {
		t.Fatal(err)
	}
	if n.Driver != DriverBridge || len(n.ID) != 64 || n.Bridge != bridgePrefix+n.ID[:9] || len(n.Bridge) > 15 {
		t.Errorf("created %+v", n)
	}
	if n.Subnet != netip.MustParsePrefix("10.88.0.0/16") || n.Gateway != netip.MustParseAddr("10.88.0.1") {
		t.Errorf("subnet %s gateway %s, want 10.88.0.0/16 and 10.88.0.1", n.Subnet, n.Gateway)
	}
	for _, key := range []string{"web", n.ID, n.ID[:5]} {
		got, err := m.Get(ctx, key)
		if err != nil {
			t.Fatalf("Get(%s): %v", key, err)
		}
		if got.ID != n.ID || got.Labels["a"] != "b" || got.Subnet != n.Subnet || !got.Created.Equal(n.Created) {
			t.Errorf("Get(%s) = %+v, want %+v", key, got, n)
		}
	}
	if _, err := m.Create(ctx, CreateOptions{Name: "web"}); !errors.Is(err, errdefs.ErrAlreadyExists) {
		t.Errorf("duplicate name: %v, want ErrAlreadyExists", err)
	}
	n2, err := m.Create(ctx, CreateOptions{Name: "db", Internal: true})
	if err != nil {
		t.Fatal(err)
	}
	if n2.Subnet != netip.MustParsePrefix("10.89.0.0/16") || !n2.Internal {
		t.Errorf("second network %+v, want 10.89.0.0/16 internal", n2)
	}
	list, err := m.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].Name != "db" || list[1].Name != "web" {
		t.Errorf("List = %+v, want db, web", list)
	}
	if err := m.Remove(ctx, "web"); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Get(ctx, "web"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("Get after Remove: %v, want ErrNotFound", err)
	}
	if err := m.Remove(ctx, "web"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("second Remove: %v, want ErrNotFound", err)
	}
	// No temporary files are left behind.
	entries, _ := os.ReadDir(m.dir)
	for _, e := range entries {
		if e.Name() != "lock" && e.Name() != n2.ID+".json" {
			t.Errorf("unexpected file %s in state directory", e.Name())
		}
	}
}

func TestCreateInvalid(t *testing.T) {
	m := newTestManager(t, "192.168.1.0/24", "10.88.0.0/16")
	if _, err := m.Create(t.Context(), CreateOptions{Name: "taken", Subnet: netip.MustParsePrefix("172.30.0.0/16")}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		opts CreateOptions
		want error
	}{
		{"bad name", CreateOptions{Name: "-x"}, errdefs.ErrInvalidArgument},
		{"slash", CreateOptions{Name: "a/b"}, errdefs.ErrInvalidArgument},
		{"driver", CreateOptions{Name: "o", Driver: "overlay"}, errdefs.ErrNotImplemented},
		{"ipv6", CreateOptions{Name: "v6", Subnet: netip.MustParsePrefix("fd00::/64")}, errdefs.ErrInvalidArgument},
		{"host bits", CreateOptions{Name: "h", Subnet: netip.MustParsePrefix("10.1.2.3/24")}, errdefs.ErrInvalidArgument},
		{"too small", CreateOptions{Name: "s", Subnet: netip.MustParsePrefix("10.1.2.0/31")}, errdefs.ErrInvalidArgument},
		{"loopback", CreateOptions{Name: "l", Subnet: netip.MustParsePrefix("127.0.0.0/16")}, errdefs.ErrInvalidArgument},
		{"host route", CreateOptions{Name: "r", Subnet: netip.MustParsePrefix("192.168.0.0/16")}, errdefs.ErrConflict},
		{"other network", CreateOptions{Name: "o2", Subnet: netip.MustParsePrefix("172.30.5.0/24")}, errdefs.ErrConflict},
		{"gateway outside", CreateOptions{Name: "g", Subnet: netip.MustParsePrefix("10.5.0.0/24"), Gateway: netip.MustParseAddr("10.6.0.1")}, errdefs.ErrInvalidArgument},
		{"gateway broadcast", CreateOptions{Name: "g", Subnet: netip.MustParsePrefix("10.5.0.0/24"), Gateway: netip.MustParseAddr("10.5.0.255")}, errdefs.ErrInvalidArgument},
		{"gateway without subnet", CreateOptions{Name: "g", Gateway: netip.MustParseAddr("10.5.0.1")}, errdefs.ErrInvalidArgument},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := m.Create(t.Context(), tt.opts)
			if !errors.Is(err, tt.want) {
				t.Errorf("Create(%+v) = %v, want %v", tt.opts, err, tt.want)
			}
		})
	}
	list, _ := m.List(t.Context())
	if len(list) != 1 {
		t.Errorf("failed creates left %d networks, want 1", len(list))
	}
}

func TestAutoSubnetAvoidsRoutes(t *testing.T) {
	// 10.88/16 is routed, 10.89.3.0/24 overlaps 10.89/16: the first free
	// candidate is 10.90/16.
	m := newTestManager(t, "10.88.0.0/16", "10.89.3.0/24", "0.0.0.0/0")
	n, err := m.Create(t.Context(), CreateOptions{Name: DefaultNetwork})
	if err != nil {
		t.Fatal(err)
	}
	if n.Subnet.String() != "10.90.0.0/16" || n.Bridge != m.defaultBridge {
		t.Errorf("default network %s on %s, want 10.90.0.0/16 on %s", n.Subnet, n.Bridge, m.defaultBridge)
	}
	d, err := m.EnsureDefault(t.Context())
	if err != nil || d.ID != n.ID {
		t.Errorf("EnsureDefault = %+v, %v; want the existing network", d, err)
	}
	if err := m.Remove(t.Context(), DefaultNetwork); !errors.Is(err, errdefs.ErrConflict) {
		t.Errorf("Remove default: %v, want ErrConflict", err)
	}
	// A /8 route covering the whole /16 pool leaves the /24 pool.
	m2 := newTestManager(t, "10.0.0.0/8")
	if _, err := m2.Create(t.Context(), CreateOptions{Name: "x"}); !errors.Is(err, errdefs.ErrConflict) {
		t.Errorf("all candidates routed: %v, want ErrConflict", err)
	}
	m3 := newTestManager(t, "10.64.0.0/11") // 10.64-10.95
	n3, err := m3.Create(t.Context(), CreateOptions{Name: "x"})
	if err != nil || n3.Subnet.String() != "10.96.0.0/16" {
		t.Errorf("got %s, %v; want 10.96.0.0/16", n3.Subnet, err)
	}
}

func TestEnsureDefaultCreates(t *testing.T) {
	m := newTestManager(t)
	n, err := m.EnsureDefault(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if n.Name != DefaultNetwork || n.Bridge != m.defaultBridge || n.Subnet.String() != "10.88.0.0/16" {
		t.Errorf("EnsureDefault created %+v", n)
	}
}

func TestAllocate(t *testing.T) {
	n := Network{Name: "n", Subnet: netip.MustParsePrefix("10.1.0.0/29"), Gateway: netip.MustParseAddr("10.1.0.1")}
	a := netip.MustParseAddr
	used := func(ips ...string) map[netip.Addr]bool {
		m := map[netip.Addr]bool{}
		for _, ip := range ips {
			m[a(ip)] = true
		}
		return m
	}
	tests := []struct {
		name       string
		used       map[netip.Addr]bool
		last, want netip.Addr
		got        string
		err        error
	}{
		{name: "first", used: used(), got: "10.1.0.2"},
		{name: "after last", used: used(), last: a("10.1.0.4"), got: "10.1.0.5"},
		{name: "skips used", used: used("10.1.0.2", "10.1.0.3"), got: "10.1.0.4"},
		{name: "wraps, skips gateway", used: used("10.1.0.3"), last: a("10.1.0.6"), got: "10.1.0.2"},
		{name: "never broadcast", used: used("10.1.0.2", "10.1.0.3", "10.1.0.4", "10.1.0.5"), last: a("10.1.0.5"), got: "10.1.0.6"},
		{name: "exhausted", used: used("10.1.0.2", "10.1.0.3", "10.1.0.4", "10.1.0.5", "10.1.0.6"), err: errdefs.ErrConflict},
		{name: "stale last", used: used(), last: a("192.168.0.9"), got: "10.1.0.2"},
		{name: "want", used: used(), want: a("10.1.0.6"), got: "10.1.0.6"},
		{name: "want used", used: used("10.1.0.6"), want: a("10.1.0.6"), err: errdefs.ErrConflict},
		{name: "want gateway", used: used(), want: a("10.1.0.1"), err: errdefs.ErrInvalidArgument},
		{name: "want network", used: used(), want: a("10.1.0.0"), err: errdefs.ErrInvalidArgument},
		{name: "want broadcast", used: used(), want: a("10.1.0.7"), err: errdefs.ErrInvalidArgument},
		{name: "want outside", used: used(), want: a("10.2.0.3"), err: errdefs.ErrInvalidArgument},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := allocate(n, tt.used, tt.last, tt.want)
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("allocate = %v, %v; want error %v", got, err, tt.err)
				}
				return
			}
			if err != nil || got.String() != tt.got {
				t.Fatalf("allocate = %v, %v; want %s", got, err, tt.got)
			}
		})
	}
}

func TestAllocateSlash30(t *testing.T) {
	n := Network{Name: "n", Subnet: netip.MustParsePrefix("10.1.0.4/30"), Gateway: netip.MustParseAddr("10.1.0.5")}
	got, err := allocate(n, nil, netip.Addr{}, netip.Addr{})
	if err != nil || got.String() != "10.1.0.6" {
		t.Fatalf("allocate = %v, %v; want 10.1.0.6", got, err)
	}
	if _, err := allocate(n, map[netip.Addr]bool{got: true}, got, netip.Addr{}); !errors.Is(err, errdefs.ErrConflict) {
		t.Fatalf("second allocate: %v, want ErrConflict", err)
	}
}

// TestEndpointRecords covers address allocation through the persisted
// state: no reuse while held, release, exhaustion, and Remove refusing a
// network with endpoints.
func TestEndpointRecords(t *testing.T) {
	ctx := t.Context()
	m := newTestManager(t)
	n, err := m.Create(ctx, CreateOptions{Name: "small", Subnet: netip.MustParsePrefix("10.7.0.0/29")})
	if err != nil {
		t.Fatal(err)
	}
	opts := AttachOptions{IfName: "eth0", Aliases: []string{"web"}}
	var addrs []string
	for i := range 5 {
		_, ep, err := m.reserveEndpoint(ctx, "small", fmt.Sprintf("c%d", i), "/x", opts)
		if err != nil {
			t.Fatal(err)
		}
		addrs = append(addrs, ep.Address.String())
	}
	want := []string{"10.7.0.2/29", "10.7.0.3/29", "10.7.0.4/29", "10.7.0.5/29", "10.7.0.6/29"}
	if fmt.Sprint(addrs) != fmt.Sprint(want) {
		t.Errorf("addresses %v, want %v", addrs, want)
	}
	if _, _, err := m.reserveEndpoint(ctx, "small", "c9", "/x", opts); !errors.Is(err, errdefs.ErrConflict) {
		t.Errorf("exhausted: %v, want ErrConflict", err)
	}
	if _, _, err := m.reserveEndpoint(ctx, "small", "c1", "/x", opts); !errors.Is(err, errdefs.ErrAlreadyExists) {
		t.Errorf("same container twice: %v, want ErrAlreadyExists", err)
	}
	if err := m.Remove(ctx, "small"); !errors.Is(err, errdefs.ErrConflict) {
		t.Errorf("Remove with endpoints: %v, want ErrConflict", err)
	}
	if err := m.releaseEndpoint(ctx, n.ID, "c1"); err != nil {
		t.Fatal(err)
	}
	if err := m.releaseEndpoint(ctx, n.ID, "c1"); err != nil {
		t.Errorf("second release: %v", err)
	}
	_, ep, err := m.reserveEndpoint(ctx, "small", "c9", "/x", opts)
	if err != nil || ep.Address.String() != "10.7.0.3/29" {
		t.Errorf("after release got %v, %v; want the freed 10.7.0.3/29", ep.Address, err)
	}
	eps, err := m.Endpoints(ctx, "small")
	if err != nil || len(eps) != 5 || eps[0].ContainerID != "c0" || eps[0].Aliases[0] != "web" || eps[0].Gateway != n.Gateway {
		t.Errorf("Endpoints = %+v, %v", eps, err)
	}
	if got, err := m.Lookup(ctx, "small", "WEB."); err != nil || len(got) != 5 {
		t.Errorf("Lookup(WEB.) = %v, %v; want the 5 endpoints aliased web", got, err)
	}
	if got, err := m.Lookup(ctx, "small", "c0"); err != nil || len(got) != 1 || got[0].String() != "10.7.0.2" {
		t.Errorf("Lookup(c0) = %v, %v; want 10.7.0.2", got, err)
	}
	if got, err := m.Lookup(ctx, "small", "nobody"); err != nil || len(got) != 0 {
		t.Errorf("Lookup(nobody) = %v, %v; want nothing", got, err)
	}
	for _, id := range []string{"c0", "c2", "c3", "c4", "c9"} {
		if err := m.releaseEndpoint(ctx, n.ID, id); err != nil {
			t.Fatal(err)
		}
	}
	if err := m.Remove(ctx, "small"); err != nil {
		t.Errorf("Remove after releases: %v", err)
	}
}

// TestConcurrentAllocation runs allocations from many goroutines, each
// with its own lock file descriptor as separate processes would have, and
// checks that no address is handed out twice.
func TestConcurrentAllocation(t *testing.T) {
	ctx := t.Context()
	m := newTestManager(t)
	if _, err := m.Create(ctx, CreateOptions{Name: "n", Subnet: netip.MustParsePrefix("10.7.0.0/24")}); err != nil {
		t.Fatal(err)
	}
	// A second Manager on the same directory, as another process.
	m2, err := New(m.dir)
	if err != nil {
		t.Fatal(err)
	}
	const workers, each = 8, 10
	var mu sync.Mutex
	seen := map[netip.Addr]string{}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			mgr := m
			if w%2 == 1 {
				mgr = m2
			}
			for i := range each {
				id := fmt.Sprintf("w%d-%d", w, i)
				_, ep, err := mgr.reserveEndpoint(context.Background(), "n", id, "/x", AttachOptions{})
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				if other, dup := seen[ep.Address.Addr()]; dup {
					t.Errorf("%s given to %s and %s", ep.Address, other, id)
				}
				seen[ep.Address.Addr()] = id
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	eps, err := m.Endpoints(ctx, "n")
	if err != nil {
		t.Fatal(err)
	}
	if len(eps) != workers*each || len(seen) != workers*each {
		t.Errorf("%d endpoints recorded, %d addresses seen, want %d", len(eps), len(seen), workers*each)
	}
}

func TestCorruptState(t *testing.T) {
	m := newTestManager(t)
	n, err := m.Create(t.Context(), CreateOptions{Name: "n"})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(m.path(n.ID), []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Get(t.Context(), "n"); !errors.Is(err, errdefs.ErrDataCorrupt) {
		t.Errorf("Get of corrupt state: %v, want ErrDataCorrupt", err)
	}
}

func TestHostIfName(t *testing.T) {
	a := hostIfName("net1", "c1")
	if len(a) > 15 || a != hostIfName("net1", "c1") || a == hostIfName("net2", "c1") || a == hostIfName("net1", "c2") {
		t.Errorf("hostIfName not a short deterministic name per (network, container): %s", a)
	}
}

func TestReservePort(t *testing.T) {
	ctx := t.Context()
	lo := netip.MustParseAddr("127.0.0.1")
	for _, proto := range []string{"tcp", "udp"} {
		t.Run(proto, func(t *testing.T) {
			r, err := ReservePort(ctx, proto, lo, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			if r.HostPort == 0 || r.Proto != proto {
				t.Fatalf("reservation %+v", r)
			}
			_, err = ReservePort(ctx, proto, lo, r.HostPort)
			if !errors.Is(err, errdefs.ErrConflict) {
				t.Fatalf("second reservation: %v, want ErrConflict", err)
			}
			if want := fmt.Sprintf("127.0.0.1:%d/%s", r.HostPort, proto); !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not name %s", err, want)
			}
			// The wildcard address conflicts with a specific one.
			if _, err := ReservePort(ctx, proto, netip.Addr{}, r.HostPort); !errors.Is(err, errdefs.ErrConflict) {
				t.Errorf("wildcard over specific: %v, want ErrConflict", err)
			}
			f, err := r.File()
			if err != nil {
				t.Fatal(err)
			}
			// The duplicate keeps the port after the original closes.
			if err := r.Close(); err != nil {
				t.Fatal(err)
			}
			if _, err := ReservePort(ctx, proto, lo, r.HostPort); !errors.Is(err, errdefs.ErrConflict) {
				t.Errorf("port free while the duplicate is open: %v", err)
			}
			f.Close()
			r2, err := ReservePort(ctx, proto, lo, r.HostPort)
			if err != nil {
				t.Fatalf("port not free after both closed: %v", err)
			}
			r2.Close()
		})
	}
	if _, err := ReservePort(ctx, "sctp", lo, 0); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("sctp: %v, want ErrInvalidArgument", err)
	}
	if _, err := ReservePort(ctx, "tcp", netip.MustParseAddr("::1"), 0); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("IPv6: %v, want ErrInvalidArgument", err)
	}
}

func TestDefaultBridgePerDirectory(t *testing.T) {
	t.Parallel()
	if got := defaultBridgeFor(DefaultStateDir); got != DefaultBridge {
		t.Errorf("default dir: %s, want %s", got, DefaultBridge)
	}
	a, b := defaultBridgeFor("/tmp/a/networks"), defaultBridgeFor("/tmp/b/networks")
	if a == b || a == DefaultBridge || len(a) > 15 || !strings.HasPrefix(a, bridgePrefix) {
		t.Errorf("other dirs: %q and %q", a, b)
	}
	if defaultBridgeFor("/tmp/a/networks") != a {
		t.Error("bridge name is not stable for one directory")
	}
}
