package runtime

import (
	"bufio"
	"context"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// trimMemory keeps a long-lived supervisor small: once its container has
// started, and every few minutes after, it returns freed heap to the
// kernel and drops its mappings of the berth binary (see
// dropBinaryPages). It returns when ctx is done.
func trimMemory(ctx context.Context) {
	delay := 2 * time.Second
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay):
		}
		debug.FreeOSMemory()
		dropBinaryPages()
		delay = 5 * time.Minute
	}
}

// dropBinaryPages releases this process's mappings of its own executable's
// read-only segments (code and constants) so they stop counting in its
// resident set. A supervisor runs for as long as its container and mostly
// waits: the pages it needed to start stay in the page cache, shared with
// every other berth process, and come back with a minor fault if it needs
// them again. Writable segments are left alone (MADV_DONTNEED would throw
// away their changes).
func dropBinaryPages() {
	exe, err := os.Readlink("/proc/self/exe")
	if err != nil {
		return
	}
	f, err := os.Open("/proc/self/maps")
	if err != nil {
		return
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// start-end perms offset dev inode path
		fields := strings.Fields(sc.Text())
		if len(fields) < 6 || fields[5] != exe || strings.Contains(fields[1], "w") {
			continue
		}
		lo, hi, ok := strings.Cut(fields[0], "-")
		if !ok {
			continue
		}
		start, err1 := strconv.ParseUint(lo, 16, 64)
		end, err2 := strconv.ParseUint(hi, 16, 64)
		if err1 != nil || err2 != nil || end <= start {
			continue
		}
		// By address: these pages are not Go memory.
		_, _, _ = unix.Syscall(unix.SYS_MADVISE, uintptr(start), uintptr(end-start), unix.MADV_DONTNEED)
	}
}
