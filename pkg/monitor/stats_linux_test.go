package monitor

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/cgroups"
	"github.com/opencontainers/cgroups/fs"
	"github.com/opencontainers/cgroups/fs2"

	"github.com/berthsh/berth/pkg/errdefs"
	"github.com/berthsh/berth/pkg/runtime"
)

const procStat = `cpu  100 20 30 1000 40 5 6 7 0 0
cpu0 50 10 15 500 20 2 3 3 0 0
cpu1 50 10 15 500 20 3 3 4 0 0
intr 12345
ctxt 678
btime 1700000000
`

func TestParseProcStat(t *testing.T) {
	usage, cpus, err := parseProcStat([]byte(procStat))
	if err != nil {
		t.Fatal(err)
	}
	// user+nice+system+idle+iowait+irq+softirq (steal excluded), in
	// 10 ms ticks.
	if want := uint64(100+20+30+1000+40+5+6) * 10_000_000; usage != want {
		t.Errorf("usage = %d, want %d", usage, want)
	}
	if cpus != 2 {
		t.Errorf("cpus = %d, want 2", cpus)
	}
	for _, bad := range []string{"", "intr 1\n", "cpu 1 2 3\n", "cpu 1 2 3 x 5 6 7 8\n"} {
		if _, _, err := parseProcStat([]byte(bad)); err == nil {
			t.Errorf("parseProcStat(%q) succeeded", bad)
		}
	}
}

// testHost is a reading of the host's CPU time.
func testHost(t *testing.T) hostCPU {
	t.Helper()
	h, err := readHostCPU()
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestSystemCPUReal(t *testing.T) {
	a, cpus, err := systemCPU("/proc")
	if err != nil {
		t.Fatal(err)
	}
	if cpus < 1 || a == 0 {
		t.Errorf("systemCPU = %d ns, %d CPUs", a, cpus)
	}
}

func TestCPUPercentMath(t *testing.T) {
	base := Stats{CPUUsage: 5e9, SystemUsage: 100e9, OnlineCPUs: 2}
	for _, tc := range []struct {
		name       string
		dCPU, dSys uint64
		cpus       int
		want       float64
	}{
		// 1 s of container CPU while 2 CPUs ran 1 s each: one core busy.
		{"one core of two", 1e9, 2e9, 2, 100},
		{"both cores", 2e9, 2e9, 2, 200},
		{"half a core of four", 0.5e9, 4e9, 4, 50},
		{"idle", 0, 2e9, 2, 0},
		{"no CPU count", 1e9, 1e9, 0, 100},
		{"no host time passed", 1e9, 0, 2, 0},
	} {
		cur := Stats{CPUUsage: base.CPUUsage + tc.dCPU, SystemUsage: base.SystemUsage + tc.dSys, OnlineCPUs: tc.cpus}
		if got := CPUPercent(base, cur); math.Abs(got-tc.want) > 1e-9 {
			t.Errorf("%s: CPUPercent = %v, want %v", tc.name, got, tc.want)
		}
	}
	// A restarted container's counter goes backwards.
	if got := CPUPercent(base, Stats{CPUUsage: 1, SystemUsage: 200e9, OnlineCPUs: 2}); got != 0 {
		t.Errorf("counter reset: CPUPercent = %v, want 0", got)
	}
	if got := MemPercent(Stats{MemoryUsage: 64 << 20, MemoryLimit: 256 << 20}); got != 25 {
		t.Errorf("MemPercent = %v, want 25", got)
	}
}

func TestParseNetDev(t *testing.T) {
	const netDev = `Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:  999999     100    0    0    0     0          0         0   999999     100    0    0    0     0       0          0
  eth0:    1234      10    0    0    0     0          0         0      648       8    0    0    0     0       0          0
  eth1:1000 1 0 0 0 0 0 0 2000 2 0 0 0 0 0 0
`
	rx, tx, err := parseNetDev([]byte(netDev))
	if err != nil {
		t.Fatal(err)
	}
	if rx != 2234 || tx != 2648 {
		t.Errorf("rx, tx = %d, %d, want 2234, 2648 (loopback excluded)", rx, tx)
	}
	for _, bad := range []string{
		"h1\nh2\neth0 1 2 3\n",
		"h1\nh2\neth0: 1 2 3\n",
		"h1\nh2\neth0: x 0 0 0 0 0 0 0 1 0 0 0 0 0 0 0\n",
	} {
		if _, _, err := parseNetDev([]byte(bad)); err == nil {
			t.Errorf("parseNetDev(%q) succeeded", bad)
		}
	}
}

func TestParseMemTotal(t *testing.T) {
	n, err := parseMemTotal([]byte("MemFree: 5 kB\nMemTotal:       24684132 kB\n"))
	if err != nil || n != 24684132*1024 {
		t.Errorf("parseMemTotal = %d, %v", n, err)
	}
	if _, err := parseMemTotal([]byte("MemFree: 5 kB\n")); err == nil {
		t.Error("parseMemTotal without MemTotal succeeded")
	}
}

func TestParseCPUMax(t *testing.T) {
	for _, tc := range []struct {
		in     string
		quota  int64
		period uint64
	}{
		{"max 100000\n", -1, 100000},
		{"50000 100000", 50000, 100000},
		{"", -1, 0},
	} {
		q, p := parseCPUMax(tc.in)
		if q != tc.quota || p != tc.period {
			t.Errorf("parseCPUMax(%q) = %d, %d, want %d, %d", tc.in, q, p, tc.quota, tc.period)
		}
	}
}

func TestFromCgroupStats(t *testing.T) {
	const memTotal = 8 << 30
	v1 := cgroups.NewStats()
	v1.CpuStats.CpuUsage.TotalUsage = 7e9
	v1.CpuStats.ThrottlingData.ThrottledTime = 3e6
	v1.MemoryStats.Usage = cgroups.MemoryData{Usage: 150 << 20, Limit: math.MaxInt64 &^ 4095}
	v1.MemoryStats.Stats = map[string]uint64{"total_inactive_file": 50 << 20, "inactive_file": 1 << 20}
	v1.PidsStats.Current = 4
	v1.BlkioStats.IoServiceBytesRecursive = []cgroups.BlkioStatEntry{
		{Major: 8, Op: "Read", Value: 1000}, {Major: 8, Op: "Write", Value: 300},
		{Major: 9, Op: "read", Value: 24}, {Major: 8, Op: "Total", Value: 1324},
	}
	var s Stats
	fromCgroupStats(&s, v1, memTotal)
	want := Stats{CPUUsage: 7e9, CPUThrottled: 3e6, MemoryUsage: 100 << 20, MemoryRaw: 150 << 20,
		MemoryLimit: memTotal, PIDs: 4, BlockRead: 1024, BlockWrite: 300}
	if s != want {
		t.Errorf("v1:\n got %+v\nwant %+v", s, want)
	}

	v2 := cgroups.NewStats()
	v2.MemoryStats.Usage = cgroups.MemoryData{Usage: 300 << 20, Limit: 256 << 20}
	v2.MemoryStats.Stats = map[string]uint64{"inactive_file": 44 << 20}
	s = Stats{}
	fromCgroupStats(&s, v2, memTotal)
	if s.MemoryUsage != 256<<20 || s.MemoryRaw != 300<<20 || s.MemoryLimit != 256<<20 {
		t.Errorf("v2: usage %d raw %d limit %d", s.MemoryUsage, s.MemoryRaw, s.MemoryLimit)
	}

	// More inactive cache than usage (racy counters): usage is kept.
	odd := cgroups.NewStats()
	odd.MemoryStats.Usage = cgroups.MemoryData{Usage: 10, Limit: math.MaxUint64}
	odd.MemoryStats.Stats = map[string]uint64{"inactive_file": 20}
	s = Stats{}
	fromCgroupStats(&s, odd, memTotal)
	if s.MemoryUsage != 10 || s.MemoryLimit != memTotal {
		t.Errorf("inactive > usage: usage %d limit %d", s.MemoryUsage, s.MemoryLimit)
	}
}

func TestReadStatsNotRunning(t *testing.T) {
	ctx := context.Background()
	stopped := runtime.Container{Config: runtime.ContainerConfig{ID: "0123456789ab", Name: "web"}}
	if _, err := ReadStats(ctx, stopped); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("stopped container: %v, want ErrNotFound", err)
	}
	// Running by its state, but its cgroup is gone (it exited meanwhile).
	gone := runtime.Container{
		Config: runtime.ContainerConfig{ID: "0123456789ab", Name: "web",
			Create: runtime.CreateOptions{CgroupsPath: "/berth-test-no-such-cgroup/x"}},
		State: runtime.State{Running: true, Pid: os.Getpid()},
	}
	_, err := ReadStats(ctx, gone)
	if !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("container without a cgroup: %v, want ErrNotFound", err)
	}
}

// A process in the caller's network namespace (a --network host
// container) reports no traffic, whatever the host's interfaces carried.
func TestNetworkHostNamespace(t *testing.T) {
	r := &reader{c: runtime.Container{State: runtime.State{Running: true, Pid: os.Getpid()}}}
	rx, tx, err := r.network()
	if err != nil {
		t.Fatal(err)
	}
	if rx != 0 || tx != 0 {
		t.Errorf("host namespace: rx %d tx %d, want 0", rx, tx)
	}
	r.c.State.Pid = 1 << 30 // no such process
	if _, _, err := r.network(); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("vanished process: %v, want ErrNotExist", err)
	}
}

// writeTree writes files (path relative to dir: content) under dir.
func writeTree(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestReadFakeCgroup reads fake cgroup v1 and v2 trees through the
// library's managers, as a reading of a real container does.
func TestReadFakeCgroup(t *testing.T) {
	cgroups.TestMode = true
	t.Cleanup(func() { cgroups.TestMode = false })
	memTotal, err := hostMemTotal()
	if err != nil {
		t.Fatal(err)
	}
	ctr := runtime.Container{
		Config: runtime.ContainerConfig{ID: "0123456789ab", Name: "web", Image: "python:3.12", NetworkMode: "none"},
		State:  runtime.State{Running: true, Pid: os.Getpid()},
	}
	want := Stats{ID: "0123456789ab", Name: "web", Image: "python:3.12",
		CPUUsage: 7_000_000_000, CPUThrottled: 3_000_000, CPUQuota: 50000, CPUPeriod: 100000,
		MemoryUsage: 100 << 20, MemoryRaw: 150 << 20, MemoryLimit: 256 << 20, OOMEvents: 3,
		PIDs: 4, BlockRead: 4096, BlockWrite: 1024}

	check := func(t *testing.T, root string, r *reader) {
		t.Helper()
		got, err := r.read(context.Background(), testHost(t))
		if err != nil {
			t.Fatal(err)
		}
		if got.Read.IsZero() || got.SystemUsage == 0 || got.OnlineCPUs < 1 {
			t.Errorf("read %v, system %d, CPUs %d", got.Read, got.SystemUsage, got.OnlineCPUs)
		}
		got.Read, got.SystemUsage, got.OnlineCPUs = time.Time{}, 0, 0
		if got != want {
			t.Errorf("\n got %+v\nwant %+v", got, want)
		}
		// Unlimited memory is the host's.
		writeTree(t, r.cg.Path("memory"), map[string]string{"memory.limit_in_bytes": "9223372036854771712\n", "memory.max": "max\n"})
		if got, err := r.read(context.Background(), testHost(t)); err != nil || got.MemoryLimit != memTotal {
			t.Errorf("unlimited: limit %d (%v), want the host's %d", got.MemoryLimit, err, memTotal)
		}
		// The container exits: its processes go, then its cgroup.
		writeTree(t, r.cg.Path("pids"), map[string]string{"pids.current": "0\n"})
		if _, err := r.read(context.Background(), testHost(t)); !errors.Is(err, errdefs.ErrNotFound) {
			t.Errorf("no processes left: %v, want ErrNotFound", err)
		}
		if err := os.RemoveAll(root); err != nil {
			t.Fatal(err)
		}
		if _, err := r.read(context.Background(), testHost(t)); !errors.Is(err, errdefs.ErrNotFound) {
			t.Errorf("cgroup removed: %v, want ErrNotFound", err)
		}
	}

	t.Run("v1", func(t *testing.T) {
		root := t.TempDir()
		writeTree(t, root, map[string]string{
			"devices/cgroup.procs":                            "42\n",
			"cpuacct/cpuacct.usage":                           "7000000000\n",
			"cpuacct/cpuacct.usage_percpu":                    "3500000000 3500000000 \n",
			"cpuacct/cpuacct.stat":                            "user 500\nsystem 200\n",
			"cpu/cpu.stat":                                    "nr_periods 10\nnr_throttled 2\nthrottled_time 3000000\n",
			"cpu/cpu.cfs_quota_us":                            "50000\n",
			"cpu/cpu.cfs_period_us":                           "100000\n",
			"memory/memory.usage_in_bytes":                    "157286400\n",
			"memory/memory.limit_in_bytes":                    "268435456\n",
			"memory/memory.stat":                              "cache 60000000\ninactive_file 1\ntotal_inactive_file 52428800\n",
			"memory/memory.oom_control":                       "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n",
			"pids/pids.current":                               "4\n",
			"pids/pids.max":                                   "max\n",
			"blkio/blkio.throttle.io_service_bytes_recursive": "8:0 Read 4096\n8:0 Write 1024\n8:0 Sync 0\n8:0 Async 0\n8:0 Total 5120\nTotal 5120\n",
			"blkio/blkio.throttle.io_serviced_recursive":      "8:0 Read 1\n8:0 Write 1\nTotal 2\n",
		})
		paths := map[string]string{}
		for _, sub := range v1Controllers {
			paths[sub] = filepath.Join(root, sub)
		}
		cg, err := fs.NewManager(&cgroups.Cgroup{Resources: &cgroups.Resources{}}, paths)
		if err != nil {
			t.Fatal(err)
		}
		check(t, root, &reader{c: ctr, name: "web", cg: cg, hostNet: true})
	})

	t.Run("v2", func(t *testing.T) {
		root := t.TempDir()
		writeTree(t, root, map[string]string{
			"cgroup.procs":   "42\n",
			"cpu.stat":       "usage_usec 7000000\nuser_usec 5000000\nsystem_usec 2000000\nnr_periods 10\nnr_throttled 2\nthrottled_usec 3000\n",
			"cpu.max":        "50000 100000\n",
			"memory.current": "157286400\n",
			"memory.max":     "268435456\n",
			"memory.stat":    "anon 100000000\nfile 57286400\ninactive_file 52428800\n",
			"memory.events":  "low 0\nhigh 0\nmax 5\noom 3\noom_kill 3\n",
			"pids.current":   "4\n",
			"pids.max":       "max\n",
			"io.stat":        "8:0 rbytes=4096 wbytes=1024 rios=1 wios=1 dbytes=0 dios=0\n",
		})
		cg, err := fs2.NewManager(&cgroups.Cgroup{Resources: &cgroups.Resources{}}, root)
		if err != nil {
			t.Fatal(err)
		}
		check(t, root, &reader{c: ctr, name: "web", cg: cg, v2: true, hostNet: true})
	})
}

// fakeV2Reader is a reader of a fake cgroup v2 directory with one
// process.
func fakeV2Reader(t *testing.T, c runtime.Container) *reader {
	t.Helper()
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{
		"cgroup.procs":   "42\n",
		"cpu.stat":       "usage_usec 7000000\nuser_usec 5000000\nsystem_usec 2000000\n",
		"memory.current": "1048576\n",
		"memory.max":     "max\n",
		"memory.stat":    "anon 1048576\nfile 0\ninactive_file 0\n",
		"pids.current":   "1\n",
		"pids.max":       "max\n",
		"io.stat":        "",
	})
	cg, err := fs2.NewManager(&cgroups.Cgroup{Resources: &cgroups.Resources{}}, dir)
	if err != nil {
		t.Fatal(err)
	}
	return &reader{c: c, name: c.Config.Name, cg: cg, v2: true, hostNet: true}
}

// A round of readings reads /proc/stat once, whatever the number of
// containers, and keeps each container's reader (its cgroup manager)
// from round to round until the container restarts.
func TestReaderSetRound(t *testing.T) {
	cgroups.TestMode = true
	t.Cleanup(func() { cgroups.TestMode = false })
	var statReads, made int
	old := readProcFile
	readProcFile = func(name string) ([]byte, error) {
		if filepath.Base(name) == "stat" {
			statReads++
		}
		return old(name)
	}
	t.Cleanup(func() { readProcFile = old })

	var ctrs []runtime.Container
	for i := range 5 {
		c := runtime.Container{Config: runtime.ContainerConfig{ID: strings.Repeat(string(rune('a'+i)), 64), Name: fmt.Sprintf("c%d", i), NetworkMode: "none"},
			State: runtime.State{Running: true, Pid: 100 + i, StartedAt: time.Unix(1000, 0)}}
		ctrs = append(ctrs, c)
	}
	set := newReaderSet(3)
	set.newReader = func(c runtime.Container) (*reader, error) {
		made++
		return fakeV2Reader(t, c), nil
	}
	for round := range 2 {
		statReads = 0
		for i, r := range set.readAll(context.Background(), ctrs) {
			if r.err != nil || r.stats.Name != ctrs[i].Config.Name || r.stats.CPUUsage != 7e9 || r.stats.SystemUsage == 0 {
				t.Fatalf("round %d, container %d: %+v, %v", round, i, r.stats, r.err)
			}
		}
		if statReads != 1 {
			t.Errorf("round %d of %d containers read /proc/stat %d times, want 1", round, len(ctrs), statReads)
		}
	}
	if made != len(ctrs) {
		t.Errorf("%d readers made over two rounds of %d containers, want %d", made, len(ctrs), len(ctrs))
	}
	// A restart (new PID) gets a new reader; a rename keeps it.
	ctrs[0].State.Pid = 999
	ctrs[1].Config.Name = "renamed"
	res := set.readAll(context.Background(), ctrs)
	if made != len(ctrs)+1 || res[1].stats.Name != "renamed" {
		t.Errorf("after a restart and a rename: %d readers made (want %d), name %q", made, len(ctrs)+1, res[1].stats.Name)
	}
}

// A container whose cgroup cannot be read is reported with its error
// while the others are read as usual; a named container removed while a
// Collector follows it is reported, not the end of the stream.
func TestCollectorErrors(t *testing.T) {
	cgroups.TestMode = true
	t.Cleanup(func() { cgroups.TestMode = false })
	mk := func(id, name string, running bool) runtime.Container {
		c := runtime.Container{Config: runtime.ContainerConfig{ID: strings.Repeat(id, 64), Name: name, NetworkMode: "none"}}
		if running {
			c.State = runtime.State{Running: true, Pid: 42, StartedAt: time.Unix(1000, 0)}
		}
		return c
	}
	good, bad, stopped := mk("a", "good", true), mk("b", "bad", true), mk("c", "stopped", false)
	all := []runtime.Container{good, bad, stopped}
	exists := map[string]bool{"good": true, "bad": true, "stopped": true}
	newCol := func(opts CollectOptions) *Collector {
		opts.Interval = -1
		col := NewCollector(nil, opts)
		col.list = func(_ context.Context, o runtime.ListOptions) ([]runtime.Container, error) {
			var out []runtime.Container
			for _, c := range all {
				if exists[c.Config.Name] && (o.All || c.State.Running) {
					out = append(out, c)
				}
			}
			return out, nil
		}
		col.get = func(_ context.Context, name string) (runtime.Container, error) {
			for _, c := range all {
				if c.Config.Name == name && exists[name] {
					return c, nil
				}
			}
			return runtime.Container{}, fmt.Errorf("No such container: %s: %w", name, errdefs.ErrNotFound)
		}
		col.set.newReader = func(c runtime.Container) (*reader, error) {
			r := fakeV2Reader(t, c)
			if c.Config.Name == "bad" {
				writeTree(t, r.cg.Path(""), map[string]string{"cpu.stat": "usage_usec lots\n"})
			}
			return r, nil
		}
		return col
	}

	cs, err := newCol(CollectOptions{All: true}).Collect(context.Background())
	if err != nil {
		t.Fatalf("Collect with an unreadable container: %v", err)
	}
	byName := map[string]ContainerStats{}
	for _, c := range cs {
		byName[c.Name] = c
	}
	if g := byName["good"]; len(cs) != 3 || g.Err != nil || !g.Running || g.CPUUsage != 7e9 {
		t.Errorf("good: %+v (of %d)", g, len(cs))
	}
	if b := byName["bad"]; b.Err == nil || !b.Running || !strings.Contains(b.Err.Error(), "bad") {
		t.Errorf("bad: running %v, err %v; want a running container with an error naming it", b.Running, b.Err)
	}
	if s := byName["stopped"]; s.Err != nil || s.Running {
		t.Errorf("stopped: %+v", s)
	}

	col := newCol(CollectOptions{Names: []string{"good", "stopped"}})
	if _, err := col.Collect(context.Background()); err != nil {
		t.Fatal(err)
	}
	exists["good"] = false // removed while followed
	cs, err = col.Collect(context.Background())
	if err != nil {
		t.Fatalf("Collect after a named container was removed: %v", err)
	}
	if len(cs) != 2 || cs[0].Name != "good" || !errors.Is(cs[0].Err, errdefs.ErrNotFound) || cs[1].Name != "stopped" {
		t.Errorf("after removal: %+v", cs)
	}
	// A name that matches nothing at the start is an error, as docker's.
	if _, err := newCol(CollectOptions{Names: []string{"good"}}).Collect(context.Background()); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("unknown name: %v, want ErrNotFound", err)
	}
}
