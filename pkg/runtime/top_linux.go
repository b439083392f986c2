package runtime

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// TopProcess is one line of "top": docker's default ps -ef columns.
type TopProcess struct {
	UID, PID, PPID, C, STIME, TTY, TIME, CMD string
}

// clockTicks is USER_HZ, 100 on every Linux architecture berth runs on.
const clockTicks = 100

// cgroupRoot is where the cgroup file systems are mounted (a variable for
// tests).
var cgroupRoot = "/sys/fs/cgroup"

// Top lists the processes of the running container idOrName, read from
// its cgroup and /proc, as docker top shows them.
func Top(ctx context.Context, m *Manager, idOrName string) ([]TopProcess, error) {
	c, err := m.Get(ctx, idOrName)
	if err != nil {
		return nil, err
	}
	if !c.State.Running {
		return nil, errNotRunning(idOrName)
	}
	cg := c.Config.Create.CgroupsPath
	if cg == "" {
		cg = DefaultCgroupsPath(c.Config.ID)
	}
	pids, err := cgroupPids(cg)
	if err != nil {
		return nil, fmt.Errorf("top %s: %w", idOrName, err)
	}
	return topProcesses("/proc", pids, time.Now())
}

// cgroupPids reads the pids in the cgroup at path cg (as in the OCI
// spec), from the unified hierarchy or a v1 controller.
func cgroupPids(cg string) ([]int, error) {
	var firstErr error
	for _, dir := range []string{"", "pids", "memory", "cpu", "freezer", "devices"} {
		data, err := os.ReadFile(filepath.Join(cgroupRoot, dir, cg, "cgroup.procs"))
		if err != nil {
			if firstErr == nil {
				firstErr = classifyFS(err)
			}
			continue
		}
		var pids []int
		for _, f := range strings.Fields(string(data)) {
			if n, err := strconv.Atoi(f); err == nil {
				pids = append(pids, n)
			}
		}
		sort.Ints(pids)
		return pids, nil
	}
	return nil, fmt.Errorf("read the processes of cgroup %s: %w", cg, firstErr)
}

// topProcesses describes pids from procDir at time now. Processes that
// exited meanwhile are skipped.
func topProcesses(procDir string, pids []int, now time.Time) ([]TopProcess, error) {
	boot, err := bootTime(procDir)
	if err != nil {
		return nil, err
	}
	out := make([]TopProcess, 0, len(pids))
	for _, pid := range pids {
		p, err := topProcess(procDir, pid, boot, now)
		if err != nil {
			if os.IsNotExist(err) {
				continue
			}
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

func bootTime(procDir string) (time.Time, error) {
	data, err := os.ReadFile(filepath.Join(procDir, "stat"))
	if err != nil {
		return time.Time{}, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "btime "); ok {
			n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if err != nil {
				break
			}
			return time.Unix(n, 0), nil
		}
	}
	return time.Time{}, fmt.Errorf("no btime in %s/stat", procDir)
}

func topProcess(procDir string, pid int, boot, now time.Time) (TopProcess, error) {
	dir := filepath.Join(procDir, strconv.Itoa(pid))
	stat, err := os.ReadFile(filepath.Join(dir, "stat"))
	if err != nil {
		return TopProcess{}, err
	}
	// pid (comm) state ppid pgrp session tty_nr tpgid flags minflt
	// cminflt majflt cmajflt utime stime cutime cstime priority nice
	// num_threads itrealvalue starttime ...
	s := string(stat)
	open, end := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if open < 0 || end < open {
		return TopProcess{}, fmt.Errorf("malformed %s/stat", dir)
	}
	comm := s[open+1 : end]
	f := strings.Fields(s[end+1:])
	if len(f) < 20 {
		return TopProcess{}, fmt.Errorf("malformed %s/stat", dir)
	}
	num := func(i int) int64 { n, _ := strconv.ParseInt(f[i], 10, 64); return n }
	ppid, tty := num(1), num(4)
	cpuTicks := num(11) + num(12)
	start := boot.Add(time.Duration(num(19)) * time.Second / clockTicks)

	uid := "?"
	if status, err := os.ReadFile(filepath.Join(dir, "status")); err == nil {
		for _, line := range strings.Split(string(status), "\n") {
			if v, ok := strings.CutPrefix(line, "Uid:"); ok {
				if fs := strings.Fields(v); len(fs) > 0 {
					uid = fs[0]
					if u, err := user.LookupId(uid); err == nil {
						uid = u.Username
					}
				}
				break
			}
		}
	}
	cmd := "[" + comm + "]"
	if cl, err := os.ReadFile(filepath.Join(dir, "cmdline")); err == nil && len(cl) > 0 {
		cmd = string(bytes.Join(bytes.Split(bytes.TrimRight(cl, "\x00"), []byte{0}), []byte{' '}))
	}
	c := "0"
	if elapsed := now.Sub(start).Seconds(); elapsed > 0 {
		c = strconv.Itoa(int(float64(cpuTicks) / clockTicks / elapsed * 100))
	}
	return TopProcess{
		UID:   uid,
		PID:   strconv.Itoa(pid),
		PPID:  strconv.FormatInt(ppid, 10),
		C:     c,
		STIME: psStartTime(start, now),
		TTY:   ttyName(tty),
		TIME:  psCPUTime(cpuTicks / clockTicks),
		CMD:   cmd,
	}, nil
}

// psStartTime is ps's STIME: HH:MM today, else MonDD.
func psStartTime(start, now time.Time) string {
	start, now = start.Local(), now.Local()
	if start.YearDay() == now.YearDay() && start.Year() == now.Year() {
		return start.Format("15:04")
	}
	return start.Format("Jan02")
}

// psCPUTime is ps's TIME: [DD-]HH:MM:SS.
func psCPUTime(secs int64) string {
	d, h, m, s := secs/86400, secs/3600%24, secs/60%60, secs%60
	if d > 0 {
		return fmt.Sprintf("%d-%02d:%02d:%02d", d, h, m, s)
	}
	return fmt.Sprintf("%02d:%02d:%02d", h, m, s)
}

// ttyName decodes a tty_nr: "pts/N", "ttyN" or "?".
func ttyName(nr int64) string {
	if nr == 0 {
		return "?"
	}
	major, minor := (nr>>8)&0xfff, (nr&0xff)|((nr>>12)&0xfff00)
	switch {
	case major >= 136 && major <= 143:
		return fmt.Sprintf("pts/%d", (major-136)*256+minor)
	case major == 4 && minor < 64:
		return fmt.Sprintf("tty%d", minor)
	}
	return "?"
}
