package cli

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// These tests check resource limits and lifecycle behaviour by what the
// container does (how much CPU it gets, what kills it), not by reading
// the configuration back.

// busyLoop keeps one CPU busy forever.
var busyLoop = []string{"sh", "-c", "while :; do :; done"}

// httpdScript serves "hello-web\n" on port 8000.
var httpdScript = []string{"sh", "-c", "mkdir -p /tmp/www && echo hello-web > /tmp/www/index.html && exec busybox httpd -f -p 8000 -h /tmp/www"}

// sub returns e bound to the subtest t: subtests share one data directory
// (importing the image once) but fail on their own.
func (e *ctrEnv) sub(t *testing.T) *ctrEnv { return &ctrEnv{t: t, root: e.root} }

// runD runs a detached container and removes it when the test ends.
func (e *ctrEnv) runD(args ...string) string {
	e.t.Helper()
	id := strings.TrimSpace(e.must(append([]string{"run", "-d"}, args...)...))
	e.t.Cleanup(func() { e.berth("", "rm", "-f", id) })
	return id
}

func (e *ctrEnv) inspect(format, id string) string {
	e.t.Helper()
	return strings.TrimSpace(e.must("inspect", "-f", format, id))
}

// waitLog waits until the container's stdout contains s.
func (e *ctrEnv) waitLog(id, s string) {
	e.t.Helper()
	eventually(e.t, fmt.Sprintf("%q in the log of %s", s, id[:12]), func() bool {
		out, _, _ := e.berth("", "logs", id)
		return strings.Contains(out, s)
	})
}

func cgroupV2() bool {
	_, err := os.Stat("/sys/fs/cgroup/cgroup.controllers")
	return err == nil
}

// cgroupDir is the directory of a berth container's cgroup for the given
// (v1) controller.
func cgroupDir(controller, id string) string {
	if cgroupV2() {
		return filepath.Join("/sys/fs/cgroup/berth", id)
	}
	return filepath.Join("/sys/fs/cgroup", controller, "berth", id)
}

// cgroupControllers are the controllers whose cgroups berth creates.
func cgroupControllers() []string {
	if cgroupV2() {
		return []string{"unified"}
	}
	return []string{"memory", "pids", "cpu", "cpuacct", "cpuset"}
}

// readInt reads a file holding one integer.
func readInt(t *testing.T, path string) int64 {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return n
}

// keyed reads the value of key in a "key value" per line file (cpu.stat,
// pids.events); -1 when it is absent.
func keyed(t *testing.T, path, key string) int64 {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(l, " "); ok && k == key {
			n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if err != nil {
				t.Fatalf("%s: %s: %v", path, l, err)
			}
			return n
		}
	}
	return -1
}

// cpuUsage is the CPU time the container's processes used so far.
func cpuUsage(t *testing.T, id string) time.Duration {
	t.Helper()
	if cgroupV2() {
		return time.Duration(keyed(t, filepath.Join(cgroupDir("cpu", id), "cpu.stat"), "usage_usec")) * time.Microsecond
	}
	return time.Duration(readInt(t, filepath.Join(cgroupDir("cpuacct", id), "cpuacct.usage")))
}

// throttled is how long the container's CPU quota held it back so far.
func throttled(t *testing.T, id string) time.Duration {
	t.Helper()
	if cgroupV2() {
		return time.Duration(keyed(t, filepath.Join(cgroupDir("cpu", id), "cpu.stat"), "throttled_usec")) * time.Microsecond
	}
	return time.Duration(keyed(t, filepath.Join(cgroupDir("cpu", id), "cpu.stat"), "throttled_time"))
}

// runqueueWait is how long pid waited on a run queue for a CPU so far
// (the second field of /proc/PID/schedstat), throttled or not.
func runqueueWait(t *testing.T, pid string) time.Duration {
	t.Helper()
	b, err := os.ReadFile("/proc/" + pid + "/schedstat")
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		t.Fatalf("schedstat of %s: %q", pid, b)
	}
	n, err := strconv.ParseInt(f[1], 10, 64)
	if err != nil {
		t.Fatalf("schedstat of %s: %q", pid, b)
	}
	return time.Duration(n)
}

// firstCPU is the first CPU this process may run on, to pin containers.
func firstCPU(t *testing.T) string {
	t.Helper()
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 1024; i++ {
		if set.IsSet(i) {
			return strconv.Itoa(i)
		}
	}
	t.Fatal("no CPU in the affinity mask")
	return ""
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	return port
}

// TestLimitsAndLifecycleCLI shares one data directory between its groups:
// importing the image and the first container start (which sets up the
// default bridge) are the slow parts.
func TestLimitsAndLifecycleCLI(t *testing.T) {
	e := newCtrEnv(t)
	t.Run("limits", func(t *testing.T) { testResourceLimits(t, e) })
	t.Run("stop and restart", func(t *testing.T) { testStopAndRestart(t, e) })
	t.Run("ports and names", func(t *testing.T) { testPublishedPortsAndNames(t, e) })
	t.Run("bad input", func(t *testing.T) { testBadInputLeavesNothing(t, e) })
}

func testResourceLimits(t *testing.T, e *ctrEnv) {
	cpu := firstCPU(t)

	t.Run("memory limit OOM-kills", func(t *testing.T) {
		e := e.sub(t)
		// tail holds the whole (newline-free) input in memory: 200 MB.
		_, errOut, code := e.berth("", "run", "--name", "oom", "--memory", "32m", "mini:1", "sh", "-c", "head -c 200m /dev/zero | tail")
		t.Cleanup(func() { e.berth("", "rm", "-f", "oom") })
		if code != 137 {
			t.Errorf("run --memory 32m of a 200 MB allocation: exit %d, want 137 (%s)", code, errOut)
		}
		if got := e.inspect("{{.State.OOMKilled}} {{.State.ExitCode}}", "oom"); got != "true 137" {
			t.Errorf("OOMKilled ExitCode = %q, want \"true 137\"", got)
		}
	})

	t.Run("cpu shares split a CPU 2:1", func(t *testing.T) {
		e := e.sub(t)
		hi := e.runD("--cpu-shares", "1024", "--cpuset-cpus", cpu, "mini:1", busyLoop[0], busyLoop[1], busyLoop[2])
		lo := e.runD("--cpu-shares", "512", "--cpuset-cpus", cpu, "mini:1", busyLoop[0], busyLoop[1], busyLoop[2])
		time.Sleep(500 * time.Millisecond) // both loops running
		hi0, lo0 := cpuUsage(t, hi), cpuUsage(t, lo)
		start := time.Now()
		// At least 2.5 s, longer (up to 6 s) while a busy host leaves the
		// pair too little CPU time to measure a ratio.
		var dhi, dlo time.Duration
		for {
			time.Sleep(250 * time.Millisecond)
			dhi, dlo = cpuUsage(t, hi)-hi0, cpuUsage(t, lo)-lo0
			el := time.Since(start)
			if el >= 6*time.Second || (el >= 2500*time.Millisecond && dhi+dlo >= time.Second) {
				break
			}
		}
		t.Logf("over %s: shares 1024 used %s, 512 used %s", time.Since(start).Round(time.Millisecond), dhi, dlo)
		if dlo <= 0 || dhi+dlo < 300*time.Millisecond {
			t.Fatalf("the containers got too little CPU to compare: %s and %s", dhi, dlo)
		}
		if r := float64(dhi) / float64(dlo); r < 1.5 || r > 2.7 {
			t.Errorf("CPU ratio of --cpu-shares 1024 to 512 on one CPU = %.2f, want 1.5-2.7", r)
		}
	})

	t.Run("cpus 0.5 holds a busy loop near 50%", func(t *testing.T) {
		e := e.sub(t)
		id := e.runD("--cpus", "0.5", "--cpuset-cpus", cpu, "mini:1", busyLoop[0], busyLoop[1], busyLoop[2])
		pid := e.inspect("{{.State.Pid}}", id)
		time.Sleep(300 * time.Millisecond)
		const window = 3 * time.Second
		for try := 1; ; try++ {
			u0, w0, th0, t0 := cpuUsage(t, id), runqueueWait(t, pid), throttled(t, id), time.Now()
			time.Sleep(window)
			u, w, th, el := cpuUsage(t, id)-u0, runqueueWait(t, pid)-w0, throttled(t, id)-th0, time.Since(t0)
			// A throttled task still counts as waiting on its run queue:
			// what remains is time lost to other tasks.
			frac, lost := float64(u)/float64(el), float64(w-th)/float64(el)
			t.Logf("window %d: used %.0f%% of a CPU over %s, throttled %.0f%%, waited for other tasks %.0f%%",
				try, 100*frac, el.Round(time.Millisecond), 100*float64(th)/float64(el), 100*lost)
			switch {
			case frac > 0.65:
				t.Fatalf("--cpus 0.5: a busy loop used %.0f%% of a CPU, want at most 65%%", 100*frac)
			case frac >= 0.35:
				return
			case frac+lost < 0.35:
				t.Fatalf("--cpus 0.5: a busy loop used %.0f%% of a CPU (and lost %.0f%% to other tasks), want at least 35%%", 100*frac, 100*lost)
			case try == 3:
				t.Skipf("host too busy: other tasks took %.0f%% of the time, leaving the loop %.0f%%", 100*lost, 100*frac)
			}
		}
	})

	t.Run("pids limit stops a fork bomb", func(t *testing.T) {
		e := e.sub(t)
		// The bomb runs in a subshell that dies at the first failed fork;
		// PID 1 outlives it so the limit can be watched and the container
		// stopped afterwards.
		id := e.runD("--pids-limit", "20", "mini:1", "sh", "-c",
			`(for i in $(seq 100); do sleep 30 & done; wait); echo survived; exec sleep 60`)
		dir := cgroupDir("pids", id)
		var peak int64
		deadline := time.Now().Add(10 * time.Second)
		for next := time.Now(); ; time.Sleep(20 * time.Millisecond) {
			if n := readInt(t, filepath.Join(dir, "pids.current")); n > peak {
				peak = n
			}
			if time.Now().After(next) {
				out, _, _ := e.berth("", "logs", id)
				if strings.Contains(out, "survived") {
					break
				}
				next = time.Now().Add(200 * time.Millisecond)
			}
			if time.Now().After(deadline) {
				t.Fatal("the fork bomb's subshell did not end")
			}
		}
		if peak > 20 {
			t.Errorf("pids.current reached %d with --pids-limit 20", peak)
		}
		if peak < 15 {
			t.Errorf("pids.current peaked at %d: the fork bomb did not run", peak)
		}
		if n := keyed(t, filepath.Join(dir, "pids.events"), "max"); n < 1 {
			t.Errorf("pids.events max = %d: no fork was refused", n)
		}
		if _, err := os.Stat(filepath.Join(dir, "pids.peak")); err == nil {
			if n := readInt(t, filepath.Join(dir, "pids.peak")); n > 20 {
				t.Errorf("pids.peak = %d with --pids-limit 20", n)
			}
		}
		if _, errOut, code := e.berth("", "stop", "-t", "1", id); code != 0 {
			t.Fatalf("stop: %d %s", code, errOut)
		}
		if _, errOut, code := e.berth("", "rm", id); code != 0 {
			t.Fatalf("rm: %d %s", code, errOut)
		}
		for _, c := range cgroupControllers() {
			if _, err := os.Stat(cgroupDir(c, id)); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("cgroup %s left after rm (%v)", cgroupDir(c, id), err)
			}
		}
	})
}

func testStopAndRestart(t *testing.T, e *ctrEnv) {

	t.Run("stop sends the stop signal", func(t *testing.T) {
		e := e.sub(t)
		id := e.runD("--stop-signal", "SIGUSR1", "mini:1", "sh", "-c",
			`trap "echo got-usr1; exit 0" USR1; echo ready; while :; do sleep 0.1; done`)
		e.waitLog(id, "ready")
		start := time.Now()
		e.must("stop", id)
		if el := time.Since(start); el > 8*time.Second { // the timeout is 10 s
			t.Errorf("stop took %s: the stop signal did not end it", el)
		}
		if out := e.must("logs", id); out != "ready\ngot-usr1\n" {
			t.Errorf("logs = %q, want ready and got-usr1", out)
		}
		if got := e.inspect("{{.State.Status}} {{.State.ExitCode}}", id); got != "exited 0" {
			t.Errorf("state after stop = %q, want \"exited 0\"", got)
		}
	})

	t.Run("stop kills after the timeout", func(t *testing.T) {
		e := e.sub(t)
		id := e.runD("mini:1", "sh", "-c", `trap "" TERM; echo ready; while :; do sleep 0.1; done`)
		e.waitLog(id, "ready")
		start := time.Now()
		e.must("stop", "-t", "1", id)
		el := time.Since(start)
		if el < 900*time.Millisecond || el > 8*time.Second { // not the default 10 s
			t.Errorf("stop -t 1 of a container ignoring SIGTERM took %s, want about 1 s", el)
		}
		if got := e.inspect("{{.State.Status}} {{.State.ExitCode}}", id); got != "exited 137" {
			t.Errorf("state after stop = %q, want \"exited 137\"", got)
		}
	})

	t.Run("logs survive restarts", func(t *testing.T) {
		e := e.sub(t)
		id := e.runD("--restart", "on-failure:2", "mini:1", "sh", "-c", "echo run; exit 1")
		for end := time.Now().Add(30 * time.Second); e.inspect("{{.State.Status}} {{.RestartCount}}", id) != "exited 2"; time.Sleep(100 * time.Millisecond) {
			if time.Now().After(end) {
				t.Fatalf("no two restarts: %s", e.inspect("{{.State.Status}} {{.RestartCount}}", id))
			}
		}
		time.Sleep(time.Second) // longer than the next backoff: no fourth run
		if got := e.inspect("{{.State.Status}} {{.RestartCount}} {{.State.ExitCode}}", id); got != "exited 2 1" {
			t.Errorf("state = %q, want \"exited 2 1\"", got)
		}
		if out := e.must("logs", id); out != "run\nrun\nrun\n" {
			t.Errorf("logs = %q, want three runs", out)
		}
	})
}

func testPublishedPortsAndNames(t *testing.T, e *ctrEnv) {

	t.Run("published port answers", func(t *testing.T) {
		e := e.sub(t)
		port := freePort(t)
		id := e.runD("-p", fmt.Sprintf("127.0.0.1:%d:8000", port), "mini:1", httpdScript[0], httpdScript[1], httpdScript[2])
		client := &http.Client{Timeout: 2 * time.Second}
		url := fmt.Sprintf("http://127.0.0.1:%d/", port)
		var body string
		eventually(t, "the published port to answer", func() bool {
			resp, err := client.Get(url)
			if err != nil {
				return false
			}
			defer resp.Body.Close()
			b, err := io.ReadAll(resp.Body)
			body = string(b)
			return err == nil && resp.StatusCode == http.StatusOK
		})
		if body != "hello-web\n" {
			t.Errorf("GET %s = %q", url, body)
		}
		ip := e.inspect("{{.NetworkSettings.IPAddress}}", id)
		if net.ParseIP(ip) == nil {
			t.Fatalf("container IP %q", ip)
		}
		out, errOut, code := e.berth("", "run", "--rm", "mini:1", "busybox", "wget", "-qO-", "http://"+ip+":8000/")
		if code != 0 || out != "hello-web\n" {
			t.Errorf("wget from another container: %d %q %q", code, out, errOut)
		}
	})

	t.Run("names resolve on a user network", func(t *testing.T) {
		e := e.sub(t)
		netName := "testnet-" + randHex(t)
		e.must("network", "create", netName)
		t.Cleanup(func() { e.berth("", "network", "rm", netName) }) // after the containers
		e.runD("--network", netName, "--name", "web", "--network-alias", "www", "mini:1", httpdScript[0], httpdScript[1], httpdScript[2])
		eventually(t, "httpd in web", func() bool {
			out, _, _ := e.berth("", "exec", "web", "busybox", "wget", "-qO-", "http://127.0.0.1:8000/")
			return out == "hello-web\n"
		})
		out, errOut, code := e.berth("", "run", "--rm", "--network", netName, "mini:1", "sh", "-c",
			"busybox wget -qO- http://web:8000/ && busybox wget -qO- http://www:8000/")
		if code != 0 || out != "hello-web\nhello-web\n" {
			t.Errorf("fetch web and www: %d %q %q", code, out, errOut)
		}
	})
}

func randHex(t *testing.T) string {
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// hostState is what a failed run could leave behind on the host.
type hostState struct {
	containers map[string]bool // entries of ROOT/containers
	veths      map[string]bool // veth links
}

func dirNames(t *testing.T, dir string) map[string]bool {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	m := map[string]bool{}
	for _, en := range entries {
		if en.IsDir() {
			m[en.Name()] = true
		}
	}
	return m
}

func vethNames(t *testing.T) map[string]netlink.Link {
	t.Helper()
	links, err := netlink.LinkList()
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]netlink.Link{}
	for _, l := range links {
		if l.Type() == "veth" {
			m[l.Attrs().Name] = l
		}
	}
	return m
}

func (e *ctrEnv) hostState() hostState {
	t := e.t
	t.Helper()
	s := hostState{containers: dirNames(t, filepath.Join(e.root, "containers")), veths: map[string]bool{}}
	for name := range vethNames(t) {
		s.veths[name] = true
	}
	return s
}

// leftovers lists what appeared since before and is this root's: new
// container directories, mounts under the root, veths on this root's
// bridge (or on none), cgroups of the containers ids or of the new
// directories. Other test packages may run containers meanwhile, so what
// belongs to another root is ignored and transient things get 3 s to go
// away.
func (e *ctrEnv) leftovers(before hostState, bridge string, ids []string) (containers, other []string) {
	t := e.t
	t.Helper()
	for name := range dirNames(t, filepath.Join(e.root, "containers")) {
		if !before.containers[name] {
			containers = append(containers, name)
			ids = append(ids, name)
		}
	}
	bridgeIndex := -1
	if l, err := netlink.LinkByName(bridge); err == nil {
		bridgeIndex = l.Attrs().Index
	}
	check := func() []string {
		var found []string
		// /proc/thread-self: a libcontainer goroutine may have left the
		// main thread in another mount namespace.
		mi, err := os.ReadFile("/proc/thread-self/mountinfo")
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range strings.Split(string(mi), "\n") {
			if f := strings.Fields(l); len(f) > 4 && strings.HasPrefix(f[4], e.root+"/") {
				found = append(found, "mount "+f[4])
			}
		}
		for name, l := range vethNames(t) {
			if m := l.Attrs().MasterIndex; !before.veths[name] && (m == 0 || m == bridgeIndex) {
				found = append(found, "veth "+name)
			}
		}
		for _, id := range ids {
			for _, c := range cgroupControllers() {
				if _, err := os.Stat(cgroupDir(c, id)); err == nil {
					found = append(found, "cgroup "+cgroupDir(c, id))
				}
			}
		}
		return found
	}
	for end := time.Now().Add(3 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		other = check()
		if len(other) > 0 {
			t.Logf("not gone yet: %q", other)
		}
		if len(other) == 0 || time.Now().After(end) {
			return containers, other
		}
	}
}

func testBadInputLeavesNothing(t *testing.T, e *ctrEnv) {
	e = e.sub(t)
	e.must("create", "--name", "taken", "mini:1", "true")
	t.Cleanup(func() { e.berth("", "rm", "-f", "taken") })
	bridge := strings.TrimSpace(e.must("network", "inspect", "-f", `{{index .Options "com.docker.network.bridge.name"}}`, "bridge"))
	if bridge == "" {
		t.Fatal("no bridge name for the default network")
	}
	held, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	heldPort := held.Addr().(*net.TCPAddr).Port

	for _, tc := range []struct {
		name string
		args []string
	}{
		{name: "unknown image", args: []string{"localhost:1/nosuch:1", "true"}},
		{name: "host port taken", args: []string{"-p", fmt.Sprintf("127.0.0.1:%d:80", heldPort), "mini:1", "true"}},
		{name: "missing bind source", args: []string{"--mount", "type=bind,src=/nonexistent/berth-src,dst=/x", "mini:1", "true"}},
		{name: "bad memory", args: []string{"--memory", "abc", "mini:1", "true"}},
		{name: "bad port", args: []string{"-p", "99999:80", "mini:1", "true"}},
		{name: "bad restart policy", args: []string{"--restart", "sometimes", "mini:1", "true"}},
		{name: "name in use", args: []string{"--name", "taken", "mini:1", "true"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := e.sub(t)
			before := e.hostState()
			cidfile := filepath.Join(t.TempDir(), "cid")
			out, errOut, code := e.berth("", append([]string{"run", "--cidfile", cidfile}, tc.args...)...)
			errLines := 0
			for _, l := range strings.Split(errOut, "\n") {
				if strings.HasPrefix(l, "Error:") {
					errLines++
				}
			}
			if code != 125 || errLines != 1 || out != "" {
				t.Errorf("run %q: exit %d (want 125), %d Error: lines (want 1), stdout %q; stderr:\n%s", tc.args, code, errLines, out, errOut)
			}
			var ids []string
			if b, err := os.ReadFile(cidfile); err == nil {
				ids = append(ids, strings.TrimSpace(string(b)))
			}
			containers, other := e.leftovers(before, bridge, ids)
			for _, o := range other {
				t.Errorf("left behind: %s", o)
			}
			for _, id := range containers {
				e.berth("", "rm", "-f", id)
			}
			if len(containers) > 0 {
				t.Errorf("container directories left under %s/containers: %q", e.root, containers)
			}
		})
	}
}
