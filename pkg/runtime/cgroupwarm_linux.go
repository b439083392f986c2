package runtime

import (
	"os"
	"path/filepath"
	"sync"

	"github.com/opencontainers/cgroups"
)

// WarmCgroupAttach moves this process into the cgroup it is already in:
// a no-op move that takes the kernel's cgroup_threadgroup_rwsem for
// writing. The first writer to that lock waits for an RCU grace period
// (6–10 ms here) and writers within about one more grace period after it
// do not, so calling this in a goroutine before a container's init or an
// exec process is put into its cgroup overlaps that wait with other work
// instead of adding it to every start. Kernels mounted with favordynmods
// never wait; there this costs one cheap write. Errors are ignored: a
// process that may not write its own cgroup (rootless, read-only
// cgroupfs) just loses the overlap. RuncContainer's Start and Exec call
// it; callers that know earlier that a container will start (a
// supervisor, a build's RUN step) call it sooner, in a goroutine.
func WarmCgroupAttach() {
	path := ownCgroupProcsOnce()
	if path == "" {
		return
	}
	_ = os.WriteFile(path, []byte("0"), 0)
}

// ownCgroupProcsOnce is ownCgroupProcs, worked out once per process (it
// reads mountinfo; the move WarmCgroupAttach makes keeps the process
// where it is).
var ownCgroupProcsOnce = sync.OnceValue(ownCgroupProcs)

// ownCgroupProcs is the cgroup.procs file of this process's cgroup: in the
// unified hierarchy on cgroup v2, else in the pids (or any) v1 hierarchy.
func ownCgroupProcs() string {
	if cgroups.IsCgroup2UnifiedMode() {
		m, err := cgroups.ParseCgroupFile("/proc/self/cgroup")
		if err != nil {
			return ""
		}
		return filepath.Join("/sys/fs/cgroup", m[""], "cgroup.procs")
	}
	for _, sub := range []string{"pids", "memory", "cpu"} {
		if dir, err := cgroups.GetOwnCgroupPath(sub); err == nil {
			return filepath.Join(dir, "cgroup.procs")
		}
	}
	return ""
}
