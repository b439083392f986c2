package runtime

import (
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestTopProcessesSelf(t *testing.T) {
	pid := os.Getpid()
	procs, err := topProcesses("/proc", []int{pid, 1 << 30}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if len(procs) != 1 {
		t.Fatalf("got %d processes, want 1 (a vanished pid is skipped): %+v", len(procs), procs)
	}
	p := procs[0]
	if p.PID != strconv.Itoa(pid) || p.PPID != strconv.Itoa(os.Getppid()) {
		t.Errorf("PID/PPID = %s/%s, want %d/%d", p.PID, p.PPID, pid, os.Getppid())
	}
	if !strings.Contains(p.CMD, os.Args[0]) {
		t.Errorf("CMD = %q, want it to contain %q", p.CMD, os.Args[0])
	}
	if len(p.TIME) != 8 || p.STIME == "" || p.UID == "" || p.UID == "?" {
		t.Errorf("process = %+v", p)
	}
}

func TestTopFormatting(t *testing.T) {
	for secs, want := range map[int64]string{0: "00:00:00", 61: "00:01:01", 3661: "01:01:01", 90061: "1-01:01:01"} {
		if got := psCPUTime(secs); got != want {
			t.Errorf("psCPUTime(%d) = %q, want %q", secs, got, want)
		}
	}
	for nr, want := range map[int64]string{0: "?", 136<<8 | 3: "pts/3", 4<<8 | 1: "tty1", 5<<8 | 1: "?"} {
		if got := ttyName(nr); got != want {
			t.Errorf("ttyName(%#x) = %q, want %q", nr, got, want)
		}
	}
	now := time.Date(2026, 3, 4, 12, 0, 0, 0, time.Local)
	if got := psStartTime(now.Add(-time.Hour), now); got != "11:00" {
		t.Errorf("start today = %q", got)
	}
	if got := psStartTime(now.AddDate(0, 0, -2), now); got != "Mar02" {
		t.Errorf("start earlier = %q", got)
	}
}

func TestCgroupPids(t *testing.T) {
	dir := t.TempDir()
	old := cgroupRoot
	cgroupRoot = dir
	defer func() { cgroupRoot = old }()
	if err := os.MkdirAll(dir+"/pids/berth/x", 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dir+"/pids/berth/x/cgroup.procs", []byte("30\n4\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if pids, err := cgroupPids("/berth/x"); err != nil || len(pids) != 2 || pids[0] != 4 || pids[1] != 30 {
		t.Errorf("v1 pids = %v, %v", pids, err)
	}
	if _, err := cgroupPids("/berth/missing"); err == nil {
		t.Error("missing cgroup: no error")
	}
}
