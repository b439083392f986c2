package monitor

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/opencontainers/cgroups"
	"github.com/opencontainers/cgroups/fscommon"
	"github.com/opencontainers/cgroups/manager"
	"golang.org/x/sys/unix"

	"github.com/berthsh/berth/pkg/errdefs"
	"github.com/berthsh/berth/pkg/runtime"
)

// procRoot is where proc(5) is mounted (a variable for tests).
var procRoot = "/proc"

// readProcFile reads the host-wide files of procRoot (a variable for
// tests counting the reads).
var readProcFile = os.ReadFile

// clockTicks is USER_HZ, the unit of /proc/stat: 100 on every Linux
// architecture berth runs on.
const clockTicks = 100

// statControllers are the cgroup controllers a reading needs.
const statControllers = cgroups.CPU | cgroups.Memory | cgroups.Pids | cgroups.IO

// ReadStats takes one reading of the running container c: its cgroup
// (CPU, memory, pids, block I/O, through the opencontainers/cgroups
// managers, cgroup v1 or v2), its network namespace (/proc/PID/net/dev)
// and the host's CPU time (/proc/stat). The reading has c's ID, Name and
// Image and the time it was taken (Read); its counters are cumulative, so
// rates need two readings (CPUPercent). A container that is not running,
// or that exits during the reading, fails with an error wrapping
// errdefs.ErrNotFound ("container X is not running"). It is safe for
// concurrent use.
func ReadStats(ctx context.Context, c runtime.Container) (Stats, error) {
	r, err := newReader(c)
	if err != nil {
		return Stats{}, err
	}
	host, err := readHostCPU()
	if err != nil {
		return Stats{}, fmt.Errorf("stats %s: %w", r.name, err)
	}
	return r.read(ctx, host)
}

// hostCPU is one reading of the host's CPU time (ns) and online CPUs.
// A round of readings of many containers shares one: /proc/stat is read
// once per round, not once per container.
type hostCPU struct {
	usage uint64
	cpus  int
}

func readHostCPU() (hostCPU, error) {
	usage, cpus, err := systemCPU(procRoot)
	return hostCPU{usage: usage, cpus: cpus}, err
}

// reader reads one container repeatedly; the cgroup manager (and the
// controller paths it found) is made once.
type reader struct {
	c      runtime.Container
	name   string
	cgPath string
	cg     cgroups.Manager
	// v2 is set on a cgroup v2 (unified) host.
	v2 bool
	// hostNet is set when the container shares the host's network
	// namespace or has none: its network counters are zero.
	hostNet bool
}

func newReader(c runtime.Container) (*reader, error) {
	name := c.Config.Name
	if name == "" {
		name = c.Config.ID
	}
	r := &reader{c: c, name: name}
	if !c.State.Running || c.State.Pid <= 0 {
		return nil, r.notRunning()
	}
	r.cgPath = c.Config.Create.CgroupsPath
	if r.cgPath == "" {
		r.cgPath = runtime.DefaultCgroupsPath(c.Config.ID)
	}
	cg, err := manager.NewWithPaths(&cgroups.Cgroup{Path: r.cgPath, Resources: &cgroups.Resources{}}, v1Paths(r.cgPath))
	if err != nil {
		return nil, fmt.Errorf("stats %s: open cgroup %s: %w", name, r.cgPath, err)
	}
	r.cg = cg
	r.v2 = cgroups.IsCgroup2UnifiedMode()
	switch c.Config.NetworkMode {
	case "host", "none":
		r.hostNet = true
	}
	return r, nil
}

// setContainer updates the container's configuration and state; its
// cgroup and process stay the same.
func (r *reader) setContainer(c runtime.Container) {
	r.c = c
	r.name = c.Config.Name
	if r.name == "" {
		r.name = c.Config.ID
	}
}

// v1Controllers are the cgroup v1 controllers a reading uses ("devices"
// tells whether the cgroup exists and which processes it has).
var v1Controllers = []string{"cpu", "cpuacct", "memory", "pids", "blkio", "devices"}

// v1Mounts maps v1Controllers to their mount points, found once: the
// library would look them up for every container.
var v1Mounts = sync.OnceValue(func() map[string]string {
	out := map[string]string{}
	for _, sub := range v1Controllers {
		if mnt, err := cgroups.FindCgroupMountpoint("", sub); err == nil {
			out[sub] = mnt
		}
	}
	return out
})

// v1Paths returns the controller paths of cgroup cg on a cgroup v1 (or
// hybrid) host, or nil for the library to find them (cgroup v2, a
// relative path, no devices controller).
func v1Paths(cg string) map[string]string {
	if cgroups.IsCgroup2UnifiedMode() || !filepath.IsAbs(cg) {
		return nil
	}
	mounts := v1Mounts()
	if mounts["devices"] == "" {
		return nil
	}
	paths := make(map[string]string, len(mounts))
	for sub, mnt := range mounts {
		paths[sub] = filepath.Join(mnt, cg)
	}
	return paths
}

func (r *reader) notRunning() error {
	return fmt.Errorf("container %s is not running: %w", r.name, errdefs.ErrNotFound)
}

// alive tells whether the container's cgroup still exists and holds a
// process.
func (r *reader) alive() bool {
	if !r.cg.Exists() {
		return false
	}
	pids, err := r.cg.GetPids()
	return err == nil && len(pids) > 0
}

// read takes one reading; host is the host's CPU time taken for the
// round this reading belongs to.
func (r *reader) read(ctx context.Context, host hostCPU) (Stats, error) {
	if err := ctx.Err(); err != nil {
		return Stats{}, err
	}
	c := r.c
	s := Stats{ID: c.Config.ID, Name: c.Config.Name, Image: c.Config.Image, Read: time.Now()}
	// On cgroup v1 the library reads every file of each controller
	// (some 30, with kernel, swap and per-CPU accounting); the few a
	// reading needs are read with its helpers instead, and only block
	// I/O (which has several kernel-dependent formats) by the manager.
	var cs *cgroups.Stats
	var err error
	if r.v2 {
		cs, err = r.cg.Stats(&cgroups.StatsOptions{Controllers: statControllers})
	} else if cs, err = r.cg.Stats(&cgroups.StatsOptions{Controllers: cgroups.IO}); err == nil {
		err = readV1(r.cg, cs)
	}
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || !r.alive() {
			return Stats{}, r.notRunning()
		}
		return Stats{}, fmt.Errorf("stats %s: read cgroup %s: %w", r.name, r.cgPath, err)
	}
	s.SystemUsage, s.OnlineCPUs = host.usage, host.cpus
	memTotal, err := hostMemTotal()
	if err != nil {
		return Stats{}, fmt.Errorf("stats %s: %w", r.name, err)
	}
	fromCgroupStats(&s, cs, memTotal)
	if n, err := r.cg.OOMKillCount(); err == nil {
		s.OOMEvents = n
	}
	s.CPUQuota, s.CPUPeriod = r.cpuLimit()

	if !r.hostNet {
		rx, tx, err := r.network()
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) || !r.alive() {
				return Stats{}, r.notRunning()
			}
			return Stats{}, fmt.Errorf("stats %s: %w", r.name, err)
		}
		s.NetRx, s.NetTx = rx, tx
	}
	// A container that exited while it was read leaves a partial
	// reading: no processes (or, when the pids controller is missing,
	// an empty or removed cgroup).
	if s.PIDs == 0 && (r.v2 || r.cg.Path("pids") != "" || !r.alive()) {
		return Stats{}, r.notRunning()
	}
	return s, nil
}

// fromCgroupStats fills s from a cgroup reading with docker's rules:
// memory usage excludes inactive file cache (total_inactive_file on v1,
// inactive_file on v2) and an unlimited (or larger than the host) memory
// limit is the host's memory.
func fromCgroupStats(s *Stats, cs *cgroups.Stats, memTotal uint64) {
	s.CPUUsage = cs.CpuStats.CpuUsage.TotalUsage
	s.CPUThrottled = cs.CpuStats.ThrottlingData.ThrottledTime

	mem := cs.MemoryStats
	s.MemoryRaw = mem.Usage.Usage
	inactive, ok := mem.Stats["total_inactive_file"] // v1
	if !ok {
		inactive = mem.Stats["inactive_file"] // v2
	}
	s.MemoryUsage = s.MemoryRaw
	if inactive < s.MemoryUsage {
		s.MemoryUsage -= inactive
	}
	s.MemoryLimit = mem.Usage.Limit
	if s.MemoryLimit == 0 || (memTotal > 0 && s.MemoryLimit > memTotal) {
		s.MemoryLimit = memTotal
	}

	s.PIDs = cs.PidsStats.Current

	for _, e := range cs.BlkioStats.IoServiceBytesRecursive {
		switch strings.ToLower(e.Op) {
		case "read":
			s.BlockRead += e.Value
		case "write":
			s.BlockWrite += e.Value
		}
	}
}

// readV1 fills cs with the CPU, pids and memory counters of a cgroup v1
// manager's controllers.
func readV1(cg cgroups.Manager, cs *cgroups.Stats) error {
	var err error
	if dir := cg.Path("cpuacct"); dir != "" {
		if cs.CpuStats.CpuUsage.TotalUsage, err = fscommon.GetCgroupParamUint(dir, "cpuacct.usage"); err != nil {
			return err
		}
	}
	if dir := cg.Path("cpu"); dir != "" {
		if cs.CpuStats.ThrottlingData.ThrottledTime, err = fscommon.GetValueByKey(dir, "cpu.stat", "throttled_time"); err != nil {
			return err
		}
	}
	if dir := cg.Path("pids"); dir != "" {
		if cs.PidsStats.Current, err = fscommon.GetCgroupParamUint(dir, "pids.current"); err != nil {
			return err
		}
	}
	return memoryV1(cg.Path("memory"), &cs.MemoryStats)
}

// memoryV1 reads the usage, the limit and memory.stat of the cgroup v1
// memory controller at dir.
func memoryV1(dir string, m *cgroups.MemoryStats) error {
	if dir == "" {
		return nil // no memory controller
	}
	var err error
	if m.Usage.Usage, err = fscommon.GetCgroupParamUint(dir, "memory.usage_in_bytes"); err != nil {
		return err
	}
	if m.Usage.Limit, err = fscommon.GetCgroupParamUint(dir, "memory.limit_in_bytes"); err != nil {
		return err
	}
	data, err := cgroups.ReadFile(dir, "memory.stat")
	if err != nil {
		return err
	}
	if m.Stats == nil {
		m.Stats = map[string]uint64{}
	}
	for _, line := range strings.Split(data, "\n") {
		if line == "" {
			continue
		}
		k, v, err := fscommon.ParseKeyValue(line)
		if err != nil {
			return fmt.Errorf("%s/memory.stat: %w", dir, err)
		}
		m.Stats[k] = v
	}
	return nil
}

// cpuLimit reads the CFS quota and period (-1 and 0 when unknown or
// unlimited).
func (r *reader) cpuLimit() (quota int64, period uint64) {
	if r.v2 {
		v, err := fscommon.GetCgroupParamString(r.cg.Path(""), "cpu.max")
		if err != nil {
			return -1, 0
		}
		return parseCPUMax(v)
	}
	dir := r.cg.Path("cpu")
	if dir == "" {
		return -1, 0
	}
	quota, err := fscommon.GetCgroupParamInt(dir, "cpu.cfs_quota_us")
	if err != nil {
		quota = -1
	}
	period, err = fscommon.GetCgroupParamUint(dir, "cpu.cfs_period_us")
	if err != nil {
		period = 0
	}
	return quota, period
}

// parseCPUMax parses cgroup v2's cpu.max ("max 100000", "50000 100000").
func parseCPUMax(v string) (quota int64, period uint64) {
	quota, period = -1, 0
	f := strings.Fields(v)
	if len(f) == 0 {
		return
	}
	if f[0] != "max" {
		if q, err := strconv.ParseInt(f[0], 10, 64); err == nil {
			quota = q
		}
	}
	if len(f) > 1 {
		if p, err := strconv.ParseUint(f[1], 10, 64); err == nil {
			period = p
		}
	}
	return
}

// network sums the bytes received and sent on the interfaces of the
// container's network namespace, loopback excluded. A namespace that is
// the caller's own (the host's) counts as none, so that a container
// sharing the host network never reports the host's traffic.
func (r *reader) network() (rx, tx uint64, err error) {
	pidDir := filepath.Join(procRoot, strconv.Itoa(r.c.State.Pid))
	var theirs, ours unix.Stat_t
	if err := unix.Stat(filepath.Join(pidDir, "ns", "net"), &theirs); err != nil {
		return 0, 0, fmt.Errorf("network namespace of pid %d: %w", r.c.State.Pid, err)
	}
	if err := unix.Stat(filepath.Join(procRoot, "self", "ns", "net"), &ours); err == nil &&
		theirs.Dev == ours.Dev && theirs.Ino == ours.Ino {
		return 0, 0, nil
	}
	data, err := os.ReadFile(filepath.Join(pidDir, "net", "dev"))
	if err != nil {
		return 0, 0, fmt.Errorf("network counters of pid %d: %w", r.c.State.Pid, err)
	}
	return parseNetDev(data)
}

// parseNetDev sums the receive and transmit byte counters of
// /proc/PID/net/dev, loopback excluded.
func parseNetDev(data []byte) (rx, tx uint64, err error) {
	sc := bufio.NewScanner(bytes.NewReader(data))
	for line := 0; sc.Scan(); line++ {
		if line < 2 { // two header lines
			continue
		}
		iface, counters, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			return 0, 0, fmt.Errorf("parse net/dev line %q: no interface name", sc.Text())
		}
		if strings.TrimSpace(iface) == "lo" {
			continue
		}
		// Receive: bytes packets errs drop fifo frame compressed
		// multicast; transmit: bytes ...
		f := strings.Fields(counters)
		if len(f) < 16 {
			return 0, 0, fmt.Errorf("parse net/dev line %q: %d fields, want 16", sc.Text(), len(f))
		}
		r, err1 := strconv.ParseUint(f[0], 10, 64)
		t, err2 := strconv.ParseUint(f[8], 10, 64)
		if err := errors.Join(err1, err2); err != nil {
			return 0, 0, fmt.Errorf("parse net/dev line %q: %w", sc.Text(), err)
		}
		rx += r
		tx += t
	}
	return rx, tx, sc.Err()
}

// systemCPU reads the host's CPU time in nanoseconds and its online CPUs
// from procDir/stat, as docker does: the sum of the user, nice, system,
// idle, iowait, irq and softirq columns of the "cpu" line, and the number
// of "cpuN" lines.
func systemCPU(procDir string) (usage uint64, cpus int, err error) {
	data, err := readProcFile(filepath.Join(procDir, "stat"))
	if err != nil {
		return 0, 0, fmt.Errorf("read host CPU time: %w", err)
	}
	return parseProcStat(data)
}

func parseProcStat(data []byte) (usage uint64, cpus int, err error) {
	found := false
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || !strings.HasPrefix(f[0], "cpu") {
			continue
		}
		if f[0] != "cpu" {
			cpus++
			continue
		}
		if len(f) < 8 {
			return 0, 0, fmt.Errorf("parse /proc/stat: cpu line %q has %d fields, want 8", line, len(f))
		}
		var ticks uint64
		for _, v := range f[1:8] {
			n, err := strconv.ParseUint(v, 10, 64)
			if err != nil {
				return 0, 0, fmt.Errorf("parse /proc/stat: cpu line %q: %w", line, err)
			}
			ticks += n
		}
		usage = ticks * (uint64(time.Second) / clockTicks)
		found = true
	}
	if !found {
		return 0, 0, errors.New("parse /proc/stat: no cpu line")
	}
	return usage, cpus, nil
}

// hostMemTotal is the host's memory in bytes (MemTotal of
// /proc/meminfo), read once.
var hostMemTotal = sync.OnceValues(func() (uint64, error) {
	data, err := os.ReadFile(filepath.Join(procRoot, "meminfo"))
	if err != nil {
		return 0, fmt.Errorf("read host memory: %w", err)
	}
	return parseMemTotal(data)
})

func parseMemTotal(data []byte) (uint64, error) {
	for _, line := range strings.Split(string(data), "\n") {
		v, ok := strings.CutPrefix(line, "MemTotal:")
		if !ok {
			continue
		}
		f := strings.Fields(v)
		if len(f) == 0 {
			break
		}
		kb, err := strconv.ParseUint(f[0], 10, 64)
		if err != nil || kb > math.MaxUint64/1024 {
			break
		}
		return kb * 1024, nil
	}
	return 0, errors.New("parse /proc/meminfo: no MemTotal line")
}
