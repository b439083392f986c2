package runtime

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/berthsh/berth/internal/testutil"
	"github.com/berthsh/berth/internal/testutil/nettest"
	"github.com/berthsh/berth/pkg/errdefs"
	"github.com/berthsh/berth/pkg/network"
	"github.com/berthsh/berth/pkg/runtime/volume"
	"github.com/berthsh/berth/pkg/store"
	"github.com/berthsh/berth/pkg/store/archive"
)

// envFixture is a state root with the minimal base image imported (with
// extra image config changes) and the stores PrepareEnvironment needs.
type envFixture struct {
	root  string
	store *store.Store
	img   store.Image
	cache *LayerCache
	vols  *volume.Store
	nets  *network.Manager
}

func newEnvFixture(t *testing.T, changes ...string) *envFixture {
	t.Helper()
	testutil.RequiresRoot(t)
	ctx := t.Context()
	root := t.TempDir()
	s, img := importMinimal(t, root, "images", archive.ImportOptions{Changes: changes})
	cache, err := OpenLayerCache(filepath.Join(root, "layers"))
	if err != nil {
		t.Fatal(err)
	}
	vols, err := volume.Open(ctx, filepath.Join(root, "volumes"))
	if err != nil {
		t.Fatal(err)
	}
	nets, err := network.New(filepath.Join(root, "networks"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { checkNoMounts(t, root) })
	return &envFixture{root: root, store: s, img: img, cache: cache, vols: vols, nets: nets}
}

func envRandHex(t *testing.T, n int) string {
	t.Helper()
	b := make([]byte, (n+1)/2)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)[:n]
}

// network creates a user network on a random /24 of 10.251.0.0/16,
// removed when the test ends.
func (f *envFixture) network(t *testing.T) network.Network {
	t.Helper()
	var last error
	for range 20 {
		var b [1]byte
		_, _ = rand.Read(b[:])
		subnet := netip.MustParsePrefix(fmt.Sprintf("10.251.%d.0/24", b[0]))
		n, err := f.nets.Create(t.Context(), network.CreateOptions{Name: "envtest-" + envRandHex(t, 8), Subnet: subnet})
		if errors.Is(err, errdefs.ErrConflict) {
			last = err
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if err := f.nets.Remove(context.Background(), n.ID); err != nil {
				t.Error(err)
			}
		})
		return n
	}
	t.Fatalf("no free test subnet: %v", last)
	return network.Network{}
}

// config returns a container config for a new container directory.
func (f *envFixture) config(t *testing.T, name string) (*ContainerConfig, string) {
	t.Helper()
	id := envRandHex(t, 64)
	dir := filepath.Join(f.root, "containers", id)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	imageID, err := f.store.ID(t.Context(), f.img)
	if err != nil {
		t.Fatal(err)
	}
	return &ContainerConfig{ID: id, Name: name, Image: "base", ImageID: imageID, ImageDigest: f.img.Digest()}, dir
}

func (f *envFixture) params(cfg *ContainerConfig, dir string) EnvParams {
	return EnvParams{Root: f.root, Dir: dir, Store: f.store, Layers: f.cache, Volumes: f.vols, Networks: f.nets, Config: cfg}
}

// prepare prepares an environment that is torn down when the test ends.
func (f *envFixture) prepare(t *testing.T, cfg *ContainerConfig, dir string) *Environment {
	t.Helper()
	e, err := PrepareEnvironment(t.Context(), f.params(cfg, dir))
	if err != nil {
		t.Fatalf("prepare environment: %v", err)
	}
	t.Cleanup(func() {
		if err := e.Teardown(context.Background()); err != nil {
			t.Error(err)
		}
	})
	return e
}

// vethName is the host end of an endpoint's veth pair (pkg/network's
// naming).
func vethName(networkID, containerID string) string {
	sum := sha256.Sum256([]byte(networkID + "/" + containerID))
	return "vb" + hex.EncodeToString(sum[:])[:12]
}

func nftTable(t *testing.T) string {
	t.Helper()
	out, _ := exec.Command("nft", "list", "table", "ip", "berth").CombinedOutput()
	return string(out)
}

// assertGone fails t if anything of container id's environment remains
// on network n (zero: none): netns, veth, endpoint, firewall elements for
// container addresses of n or for hostPorts, mounts in dir.
func assertGone(t *testing.T, f *envFixture, n network.Network, id, dir string, hostPorts ...uint16) {
	t.Helper()
	checkNoMounts(t, dir)
	if _, err := os.Lstat(ContainerNetNSPath(id)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("network namespace %s remains (%v)", ContainerNetNSPath(id), err)
	}
	if n.ID == "" {
		return
	}
	if _, err := netlink.LinkByName(vethName(n.ID, id)); err == nil {
		t.Errorf("veth %s remains", vethName(n.ID, id))
	}
	eps, err := f.nets.Endpoints(t.Context(), n.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, ep := range eps {
		if ep.ContainerID == id {
			t.Errorf("endpoint on %s remains: %+v", n.Name, ep)
		}
	}
	table := nftTable(t)
	prefix := strings.TrimSuffix(n.Subnet.Addr().String(), "0")
	for _, m := range regexp.MustCompile(regexp.QuoteMeta(prefix)+`(\d+)`).FindAllStringSubmatch(table, -1) {
		if m[1] != "0" {
			t.Errorf("firewall still mentions container address %s:\n%s", m[0], table)
		}
	}
	for _, p := range hostPorts {
		if strings.Contains(table, fmt.Sprintf(" . %d : ", p)) {
			t.Errorf("firewall still publishes host port %d:\n%s", p, table)
		}
	}
}

// freePort returns a TCP port that is free now.
func freePort(t *testing.T) uint16 {
	t.Helper()
	r, err := network.ReservePort(t.Context(), "tcp", netip.Addr{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	return r.HostPort
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestEnvironment runs the environment tests on one fixture, as importing
// and unpacking the base image is the slow part.
func TestEnvironment(t *testing.T) {
	f := newEnvFixture(t, "VOLUME /data", "EXPOSE 8080/udp")
	t.Run("Prepare", func(t *testing.T) { testPrepareEnvironment(t, f) })
	t.Run("NetworkModes", func(t *testing.T) { testNetworkModes(t, f) })
	t.Run("FailuresLeaveNothing", func(t *testing.T) { testFailuresLeaveNothing(t, f) })
	t.Run("PeersInHosts", func(t *testing.T) { testPeersInHosts(t, f) })
	t.Run("TeardownStale", func(t *testing.T) { testTeardownStale(t, f) })
	t.Run("ConnectStopped", func(t *testing.T) { testConnectStopped(t, f) })
	t.Run("ConnectRunning", func(t *testing.T) { testConnectRunning(t, f) })
	t.Run("RunPublished", func(t *testing.T) { testRunPublished(t, f) })
}

func testPrepareEnvironment(t *testing.T, f *envFixture) {
	n := f.network(t)
	cfg, dir := f.config(t, "web")
	bindSrc := t.TempDir()
	if err := os.WriteFile(filepath.Join(bindSrc, "hello"), []byte("hi"), 0o644); err != nil {
		t.Fatal(err)
	}
	volName := "envtest-" + envRandHex(t, 8)
	t.Cleanup(func() { _ = f.vols.Remove(context.Background(), volName, volume.RemoveOptions{Force: true}) })
	hostPort := freePort(t)
	cfg.NetworkMode = n.Name
	cfg.Aliases = []string{"www"}
	cfg.Ports = []PortSpec{{HostPort: hostPort, ContainerPort: 80, Proto: "tcp"}}
	cfg.PublishAll = true
	cfg.ExtraHosts = []string{"db:10.0.0.5", "gw:host-gateway"}
	cfg.DNS = []string{"1.1.1.1"}
	cfg.Mounts = []MountSpec{
		{Type: "bind", Source: bindSrc, Target: "/mnt/src", ReadOnly: true},
		{Type: "volume", Source: volName, Target: "/etc/apt"},
		{Type: "volume", Target: "/anon"},
		{Type: "tmpfs", Target: "/scratch", Options: []string{"size=1m"}},
	}

	e := f.prepare(t, cfg, dir)

	// Network.
	if e.NetNSPath != filepath.Join(network.NetNSDir, cfg.ID) {
		t.Errorf("NetNSPath = %s", e.NetNSPath)
	}
	if len(e.Endpoints) != 1 || e.Endpoints[0].Network != n.Name || e.Endpoints[0].Gateway != n.Gateway.String() {
		t.Fatalf("endpoints = %+v", e.Endpoints)
	}
	ip := e.Endpoints[0].IPAddress
	if !slices.Equal(e.Endpoints[0].Aliases, []string{"web", "www"}) {
		t.Errorf("aliases = %v", e.Endpoints[0].Aliases)
	}
	if len(e.Ports) != 2 || e.Ports[0] != (PortBinding{HostIP: "0.0.0.0", HostPort: hostPort, ContainerPort: 80, Proto: "tcp"}) ||
		e.Ports[1].ContainerPort != 8080 || e.Ports[1].Proto != "udp" || e.Ports[1].HostPort == 0 {
		t.Errorf("ports = %+v", e.Ports)
	}
	// The host port is held.
	if _, err := network.ReservePort(t.Context(), "tcp", netip.Addr{}, hostPort); !errors.Is(err, errdefs.ErrConflict) {
		t.Errorf("reserving published port %d: err = %v, want conflict", hostPort, err)
	}
	if table := nftTable(t); !strings.Contains(table, fmt.Sprintf("%d : %s . 80", hostPort, ip)) {
		t.Errorf("no DNAT of port %d to %s:\n%s", hostPort, ip, table)
	}

	// Spec.
	s := e.Spec
	short := cfg.ID[:12]
	if s.Hostname != short {
		t.Errorf("hostname = %q", s.Hostname)
	}
	if s.Linux.CgroupsPath != DefaultCgroupsPath(cfg.ID) {
		t.Errorf("cgroups path = %q", s.Linux.CgroupsPath)
	}
	var netns string
	for _, ns := range s.Linux.Namespaces {
		if ns.Type == "network" {
			netns = ns.Path
		}
	}
	if netns != e.NetNSPath {
		t.Errorf("network namespace in spec = %q", netns)
	}
	mounts := map[string][2]string{}
	for _, m := range s.Mounts {
		mounts[m.Destination] = [2]string{m.Source, strings.Join(m.Options, ",")}
	}
	anonName := AnonymousVolumeName(cfg.ID, "/anon")
	dataName := AnonymousVolumeName(cfg.ID, "/data")
	for dst, src := range map[string]string{
		"/etc/hosts":       filepath.Join(dir, "hosts"),
		"/etc/resolv.conf": filepath.Join(dir, "resolv.conf"),
		"/etc/hostname":    filepath.Join(dir, "hostname"),
		"/mnt/src":         bindSrc,
		"/etc/apt":         filepath.Join(f.vols.Dir(), volName, "_data"),
		"/anon":            filepath.Join(f.vols.Dir(), anonName, "_data"),
		"/data":            filepath.Join(f.vols.Dir(), dataName, "_data"),
		"/scratch":         "tmpfs",
	} {
		if got, ok := mounts[dst]; !ok || got[0] != src {
			t.Errorf("mount on %s: got %v, want source %s", dst, got, src)
		}
	}
	if !strings.Contains(mounts["/mnt/src"][1], "ro") || !strings.Contains(mounts["/scratch"][1], "size=1m") {
		t.Errorf("mount options: %v %v", mounts["/mnt/src"], mounts["/scratch"])
	}
	if saved, err := LoadSpec(dir); err != nil || saved.Hostname != short {
		t.Errorf("saved spec: %v", err)
	}

	// Volumes: the named one is seeded from the image's /etc/apt.
	want, err := os.ReadDir(filepath.Join(dir, "rootfs", "etc", "apt"))
	if err != nil || len(want) == 0 {
		t.Fatalf("image /etc/apt: %v (%d entries)", err, len(want))
	}
	got, err := os.ReadDir(filepath.Join(f.vols.Dir(), volName, "_data"))
	if err != nil || len(got) != len(want) || got[0].Name() != want[0].Name() {
		t.Errorf("volume content %v (%v), want %v", got, err, want)
	}
	for _, name := range []string{anonName, dataName} {
		v, err := f.vols.Get(t.Context(), name)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := v.Labels[volume.AnonymousLabel]; !ok || v.Labels[ContainerVolumeLabel] != cfg.ID {
			t.Errorf("volume %s labels = %v", name, v.Labels)
		}
	}
	if !slices.Equal(e.AnonymousVolumes, []string{anonName, dataName}) || len(e.Volumes) != 3 {
		t.Errorf("volumes %v, anonymous %v", e.Volumes, e.AnonymousVolumes)
	}

	// Files.
	hosts := readFile(t, filepath.Join(dir, "hosts"))
	for _, w := range []string{"127.0.0.1\tlocalhost\n", "10.0.0.5\tdb\n", "\t" + "gw\n", ip + "\t" + short + "\n"} {
		if !strings.Contains(hosts, w) {
			t.Errorf("hosts lacks %q:\n%s", w, hosts)
		}
	}
	if !strings.Contains(hosts, n.Gateway.String()+"\tgw\n") {
		t.Errorf("host-gateway not resolved to %s:\n%s", n.Gateway, hosts)
	}
	if got := readFile(t, filepath.Join(dir, "hostname")); got != short+"\n" {
		t.Errorf("hostname file = %q", got)
	}
	if got := readFile(t, filepath.Join(dir, "resolv.conf")); !strings.Contains(got, "nameserver 1.1.1.1\n") || strings.Count(got, "nameserver") != 1 {
		t.Errorf("resolv.conf = %q", got)
	}

	// Teardown, twice.
	for range 2 {
		if err := e.Teardown(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	assertGone(t, f, n, cfg.ID, dir, hostPort, e.Ports[1].HostPort)
	r, err := network.ReservePort(t.Context(), "tcp", netip.Addr{}, hostPort)
	if err != nil {
		t.Errorf("host port %d not released: %v", hostPort, err)
	} else {
		r.Close()
	}
	// Volumes outlive the environment.
	if _, err := f.vols.Get(t.Context(), anonName); err != nil {
		t.Error(err)
	}
}

func testNetworkModes(t *testing.T, f *envFixture) {
	t.Run("none", func(t *testing.T) {
		cfg, dir := f.config(t, "lonely")
		cfg.NetworkMode = "none"
		cfg.Ports = []PortSpec{{ContainerPort: 80}} // ignored, as docker does
		e := f.prepare(t, cfg, dir)
		if e.NetNSPath != ContainerNetNSPath(cfg.ID) || len(e.Endpoints) != 0 || len(e.Ports) != 0 {
			t.Fatalf("environment %+v", e)
		}
		if _, err := os.Stat(e.NetNSPath); err != nil {
			t.Fatal(err)
		}
		hosts := readFile(t, filepath.Join(dir, "hosts"))
		if !strings.HasPrefix(hosts, "127.0.0.1\tlocalhost\n") || strings.Contains(hosts, cfg.ID[:12]) {
			t.Errorf("hosts:\n%s", hosts)
		}
		if err := e.Teardown(t.Context()); err != nil {
			t.Fatal(err)
		}
		assertGone(t, f, network.Network{}, cfg.ID, dir)
	})
	t.Run("host", func(t *testing.T) {
		cfg, dir := f.config(t, "hosty")
		cfg.NetworkMode = "host"
		cfg.ExtraHosts = []string{"extra:10.9.9.9"}
		e := f.prepare(t, cfg, dir)
		if e.NetNSPath != "" || len(e.Endpoints) != 0 {
			t.Fatalf("environment %+v", e)
		}
		for _, ns := range e.Spec.Linux.Namespaces {
			if ns.Type == "network" {
				t.Errorf("host network mode has a network namespace")
			}
		}
		host, _ := os.Hostname()
		if e.Spec.Hostname != host {
			t.Errorf("hostname %q, want the host's %q", e.Spec.Hostname, host)
		}
		hostHosts, _ := os.ReadFile("/etc/hosts")
		hosts := readFile(t, filepath.Join(dir, "hosts"))
		if !strings.HasPrefix(hosts, string(hostHosts)) || !strings.HasSuffix(hosts, "10.9.9.9\textra\n") {
			t.Errorf("hosts:\n%s", hosts)
		}
		hostResolv, _ := os.ReadFile("/etc/resolv.conf")
		if got := readFile(t, filepath.Join(dir, "resolv.conf")); got != string(hostResolv) {
			t.Errorf("resolv.conf %q, want the host's %q", got, hostResolv)
		}
	})
}

func testFailuresLeaveNothing(t *testing.T, f *envFixture) {
	n := f.network(t)

	// A running peer on the network, whose hosts file must end as it was.
	peerCfg, peerDir := f.config(t, "peer")
	peerCfg.NetworkMode = n.Name
	f.prepare(t, peerCfg, peerDir)
	peerHosts := readFile(t, filepath.Join(peerDir, "hosts"))

	held, err := network.ReservePort(t.Context(), "tcp", netip.Addr{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()

	for _, tc := range []struct {
		name  string
		setup func(cfg *ContainerConfig)
		is    error
		msg   string
	}{
		{
			name: "bind source missing",
			setup: func(cfg *ContainerConfig) {
				cfg.Mounts = []MountSpec{{Type: "bind", Source: "/nonexistent-" + cfg.ID[:8], Target: "/x"}}
			},
			is:  errdefs.ErrNotFound,
			msg: "bind source path does not exist: /nonexistent-",
		},
		{
			name: "port conflict",
			setup: func(cfg *ContainerConfig) {
				cfg.Ports = []PortSpec{{ContainerPort: 80}, {HostPort: held.HostPort, ContainerPort: 81}}
			},
			is:  errdefs.ErrConflict,
			msg: fmt.Sprintf("0.0.0.0:%d/tcp failed: port is already allocated", held.HostPort),
		},
		{
			name: "unknown network",
			setup: func(cfg *ContainerConfig) {
				cfg.NetworkMode = "envtest-missing-" + cfg.ID[:8]
			},
			is: errdefs.ErrNotFound,
		},
		{
			name: "spec fails after everything was set up",
			setup: func(cfg *ContainerConfig) {
				cfg.Ports = []PortSpec{{ContainerPort: 80}}
				cfg.Create.User = "nosuchuser"
			},
			is:  errdefs.ErrInvalidArgument,
			msg: "nosuchuser",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, dir := f.config(t, "c-"+envRandHex(t, 6))
			cfg.NetworkMode = n.Name
			vol := "envtest-" + envRandHex(t, 8)
			cfg.Mounts = []MountSpec{{Type: "volume", Source: vol, Target: "/vol"}, {Type: "volume", Target: "/anon"}}
			tc.setup(cfg)
			_, err := PrepareEnvironment(t.Context(), f.params(cfg, dir))
			if err == nil {
				t.Fatal("prepare succeeded")
			}
			if !errors.Is(err, tc.is) {
				t.Errorf("err = %v, want %v", err, tc.is)
			}
			if !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("err = %q, want it to mention %q", err, tc.msg)
			}
			assertGone(t, f, n, cfg.ID, dir, held.HostPort)
			for _, v := range []string{vol, AnonymousVolumeName(cfg.ID, "/anon")} {
				if _, err := f.vols.Get(t.Context(), v); !errors.Is(err, errdefs.ErrNotFound) {
					t.Errorf("volume %s created by the failed prepare remains (%v)", v, err)
				}
			}
			if got := readFile(t, filepath.Join(peerDir, "hosts")); got != peerHosts {
				t.Errorf("peer hosts changed:\n%s\nwant:\n%s", got, peerHosts)
			}
		})
	}
}

func testPeersInHosts(t *testing.T, f *envFixture) {
	n := f.network(t)
	aCfg, aDir := f.config(t, "alpha")
	aCfg.NetworkMode = n.Name
	a := f.prepare(t, aCfg, aDir)
	aHostsPath := filepath.Join(aDir, "hosts")
	var before syscall.Stat_t
	if err := syscall.Stat(aHostsPath, &before); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(readFile(t, aHostsPath), hostsPeersBegin) {
		t.Fatalf("alone on the network, alpha lists peers:\n%s", readFile(t, aHostsPath))
	}

	bCfg, bDir := f.config(t, "beta")
	bCfg.NetworkMode = n.Name
	bCfg.Aliases = []string{"db"}
	b, err := PrepareEnvironment(t.Context(), f.params(bCfg, bDir))
	if err != nil {
		t.Fatal(err)
	}
	aIP, bIP := a.Endpoints[0].IPAddress, b.Endpoints[0].IPAddress
	if got := readFile(t, filepath.Join(bDir, "hosts")); !strings.Contains(got, aIP+"\talpha "+aCfg.ID[:12]+"\n") {
		t.Errorf("beta's hosts lacks alpha:\n%s", got)
	}
	if got := readFile(t, aHostsPath); !strings.Contains(got, bIP+"\tbeta db "+bCfg.ID[:12]+"\n") {
		t.Errorf("alpha's hosts lacks beta:\n%s", got)
	}
	var after syscall.Stat_t
	if err := syscall.Stat(aHostsPath, &after); err != nil {
		t.Fatal(err)
	}
	if after.Ino != before.Ino {
		t.Errorf("alpha's hosts file was replaced, not rewritten in place (bind mounts would not see it)")
	}

	if err := b.Teardown(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, aHostsPath); strings.Contains(got, bIP) || strings.Contains(got, "beta") {
		t.Errorf("alpha's hosts still lists beta after its teardown:\n%s", got)
	}
	assertGone(t, f, n, bCfg.ID, bDir)
}

func testTeardownStale(t *testing.T, f *envFixture) {
	n := f.network(t)
	peerCfg, peerDir := f.config(t, "survivor")
	peerCfg.NetworkMode = n.Name
	f.prepare(t, peerCfg, peerDir)

	cfg, dir := f.config(t, "crasher")
	cfg.NetworkMode = n.Name
	cfg.Ports = []PortSpec{{ContainerPort: 80}}
	p := f.params(cfg, dir)
	e, err := PrepareEnvironment(t.Context(), p)
	if err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, filepath.Join(peerDir, "hosts")); !strings.Contains(got, "crasher") {
		t.Fatalf("peer does not list the container:\n%s", got)
	}
	// The supervisor dies: its port reservations go with it, the rest
	// stays.
	for _, r := range e.reservations {
		r.Close()
	}
	st := State{Status: StatusRunning, Running: true, Ports: e.Ports, Endpoints: e.Endpoints}
	for range 2 {
		if err := TeardownStale(t.Context(), p, st); err != nil {
			t.Fatal(err)
		}
	}
	assertGone(t, f, n, cfg.ID, dir, e.Ports[0].HostPort)
	if got := readFile(t, filepath.Join(peerDir, "hosts")); strings.Contains(got, "crasher") {
		t.Errorf("peer still lists the crashed container:\n%s", got)
	}
	// A new start after the crash works.
	e2 := f.prepare(t, cfg, dir)
	if len(e2.Endpoints) != 1 {
		t.Errorf("endpoints %+v", e2.Endpoints)
	}
}

// saveTestConfig writes cfg as the container's config.json.
func saveTestConfig(t *testing.T, dir string, cfg *ContainerConfig) {
	t.Helper()
	if err := saveConfig(dir, *cfg); err != nil {
		t.Fatal(err)
	}
}

func testConnectStopped(t *testing.T, f *envFixture) {
	n := f.network(t)
	cfg, dir := f.config(t, "stopped-"+envRandHex(t, 6))
	cfg.NetworkMode = "bridge"
	saveTestConfig(t, dir, cfg)
	ctx := t.Context()

	if err := ConnectNetwork(ctx, f.root, f.nets, cfg.Name, n.Name, NetworkConnectOptions{Aliases: []string{"api"}}); err != nil {
		t.Fatal(err)
	}
	got, err := loadConfig(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got.Networks, []string{"bridge", n.Name}) || got.NetworkMode != "bridge" || !slices.Equal(got.Aliases, []string{"api"}) {
		t.Errorf("after connect: mode %q networks %v aliases %v", got.NetworkMode, got.Networks, got.Aliases)
	}
	if err := ConnectNetwork(ctx, f.root, f.nets, cfg.ID[:10], n.ID, NetworkConnectOptions{}); !errors.Is(err, errdefs.ErrAlreadyExists) {
		t.Errorf("connecting twice: err = %v", err)
	}
	if err := ConnectNetwork(ctx, f.root, f.nets, cfg.Name, "envtest-nonet", NetworkConnectOptions{}); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("unknown network: err = %v", err)
	}
	if err := ConnectNetwork(ctx, f.root, f.nets, "no-such-container", n.Name, NetworkConnectOptions{}); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("unknown container: err = %v", err)
	}
	if err := DisconnectNetwork(ctx, f.root, f.nets, cfg.Name, "bridge"); err != nil {
		t.Fatal(err)
	}
	if got, _ := loadConfig(dir); !slices.Equal(got.Networks, []string{n.Name}) || got.NetworkMode != n.Name {
		t.Errorf("after disconnect: mode %q networks %v", got.NetworkMode, got.Networks)
	}
	if err := DisconnectNetwork(ctx, f.root, f.nets, cfg.Name, "bridge"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("disconnecting twice: err = %v", err)
	}
	if err := DisconnectNetwork(ctx, f.root, f.nets, cfg.Name, n.Name); err != nil {
		t.Fatal(err)
	}
	if got, _ := loadConfig(dir); len(got.Networks) != 0 || got.NetworkMode != "none" {
		t.Errorf("after the last disconnect: mode %q networks %v", got.NetworkMode, got.Networks)
	}
	if err := ConnectNetwork(ctx, f.root, f.nets, cfg.Name, n.Name, NetworkConnectOptions{}); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("connecting a none-mode container: err = %v", err)
	}
}

func testConnectRunning(t *testing.T, f *envFixture) {
	n1, n2 := f.network(t), f.network(t)
	ctx := t.Context()
	peerCfg, peerDir := f.config(t, "peer-"+envRandHex(t, 6))
	peerCfg.NetworkMode = n2.Name
	f.prepare(t, peerCfg, peerDir)

	cfg, dir := f.config(t, "runner-"+envRandHex(t, 6))
	cfg.NetworkMode = n1.Name
	e := f.prepare(t, cfg, dir)
	saveTestConfig(t, dir, cfg)
	if err := saveState(dir, State{Status: StatusRunning, Running: true, Endpoints: e.Endpoints}); err != nil {
		t.Fatal(err)
	}
	// Play the supervisor: hold its lock.
	lock, ok, err := tryLock(filepath.Join(dir, supervisorLock))
	if err != nil || !ok {
		t.Fatalf("supervisor lock: %v", err)
	}
	defer lock.Unlock()

	if err := ConnectNetwork(ctx, f.root, f.nets, cfg.Name, n2.Name, NetworkConnectOptions{}); err != nil {
		t.Fatal(err)
	}
	eps, err := f.nets.Endpoints(ctx, n2.ID)
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(eps, func(ep network.Endpoint) bool { return ep.ContainerID == cfg.ID })
	if i < 0 || eps[i].IfName != "eth1" {
		t.Fatalf("endpoints on %s: %+v", n2.Name, eps)
	}
	ip := eps[i].Address.Addr().String()
	if got := readFile(t, filepath.Join(peerDir, "hosts")); !strings.Contains(got, ip+"\t"+cfg.Name+" ") {
		t.Errorf("peer's hosts lacks the connected container:\n%s", got)
	}
	if got := readFile(t, filepath.Join(dir, "hosts")); !strings.Contains(got, peerCfg.Name) {
		t.Errorf("connected container's hosts lacks the peer:\n%s", got)
	}
	if got, _ := loadConfig(dir); !slices.Equal(got.Networks, []string{n1.Name, n2.Name}) {
		t.Errorf("config networks %v", got.Networks)
	}
	if st, _ := loadState(dir); len(st.Endpoints) != 2 || st.Endpoints[1].Network != n2.Name || st.Endpoints[1].IPAddress != ip {
		t.Errorf("state endpoints %+v", st.Endpoints)
	}

	if err := DisconnectNetwork(ctx, f.root, f.nets, cfg.ID, n2.Name); err != nil {
		t.Fatal(err)
	}
	if _, err := netlink.LinkByName(vethName(n2.ID, cfg.ID)); err == nil {
		t.Errorf("veth on %s remains", n2.Name)
	}
	if got := readFile(t, filepath.Join(peerDir, "hosts")); strings.Contains(got, cfg.Name) {
		t.Errorf("peer's hosts still lists the disconnected container:\n%s", got)
	}
	if got := readFile(t, filepath.Join(dir, "hosts")); strings.Contains(got, peerCfg.Name) {
		t.Errorf("disconnected container's hosts still lists the peer:\n%s", got)
	}
	if st, _ := loadState(dir); len(st.Endpoints) != 1 || st.Endpoints[0].Network != n1.Name {
		t.Errorf("state endpoints after disconnect %+v", st.Endpoints)
	}
}

// testRunPublished runs a web server in a prepared environment and
// checks that its published port answers from the host and that a second
// container on the network reaches it by name.
func testRunPublished(t *testing.T, f *envFixture) {
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	n := f.network(t)
	stateRoot := filepath.Join(f.root, "libcontainer")

	run := func(cfg *ContainerConfig, dir string, stdout *syncBuffer) (*Environment, func() ExitStatus) {
		t.Helper()
		e := f.prepare(t, cfg, dir)
		c, err := Create(ctx, stateRoot, cfg.ID, e.Spec)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if err := c.Destroy(context.Background()); err != nil {
				t.Error(err)
			}
		})
		if err := c.Start(ctx, Stdio{Stdout: stdout, Stderr: stdout}); err != nil {
			t.Fatal(err)
		}
		return e, func() ExitStatus {
			st, err := c.Wait(ctx)
			if err != nil {
				t.Fatal(err)
			}
			return st
		}
	}

	webCfg, webDir := f.config(t, "web-"+envRandHex(t, 4))
	webCfg.NetworkMode = n.Name
	webCfg.Ports = []PortSpec{{ContainerPort: 8000}}
	webCfg.Create.Cmd = []string{"busybox", "sh", "-c", "mkdir -p /www && echo hello-from-berth > /www/index.html && exec busybox httpd -f -p 8000 -h /www"}
	var webOut syncBuffer
	web, _ := run(webCfg, webDir, &webOut)

	url := fmt.Sprintf("http://127.0.0.1:%d/", web.Ports[0].HostPort)
	var body string
	waitFor(t, func() bool {
		resp, err := http.Get(url)
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		body = string(b)
		return true
	})
	if body != "hello-from-berth\n" {
		t.Errorf("GET %s = %q (server output %q)", url, body, webOut.String())
	}

	clientCfg, clientDir := f.config(t, "client-"+envRandHex(t, 4))
	clientCfg.NetworkMode = n.Name
	clientCfg.Create.Cmd = []string{"busybox", "wget", "-q", "-O", "-", "http://" + webCfg.Name + ":8000/"}
	var clientOut syncBuffer
	_, wait := run(clientCfg, clientDir, &clientOut)
	if st := wait(); st.Code != 0 || clientOut.String() != "hello-from-berth\n" {
		t.Errorf("wget by name: exit %d, output %q", st.Code, clientOut.String())
	}
}

// importMinimal opens a store at root/storeDir (cleaning the root's
// networks when the test ends) and imports the minimal base image into it
// with CMD ["/bin/sh"] and opts.
func importMinimal(t *testing.T, root, storeDir string, opts archive.ImportOptions) (*store.Store, store.Image) {
	t.Helper()
	tarball := testutil.BaseTarball(t, testutil.BaseMinimal)
	nettest.CleanupNetworks(t, root)
	s, err := store.Open(t.Context(), filepath.Join(root, storeDir))
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(tarball)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	opts.Changes = append([]string{`CMD ["/bin/sh"]`}, opts.Changes...)
	img, err := archive.Import(t.Context(), s, f, opts)
	if err != nil {
		t.Fatalf("import base image: %v", err)
	}
	return s, img
}
