package runtime

import (
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
// them again.
//
// Only mappings with no private (anonymous) pages are dropped: a writable
// segment, or a read-only one that was written before it was protected
// (the RELRO segment, where the dynamic loader or a static binary's
// start-up code relocated pointers), would lose those changes and fault
// back the file's unrelocated bytes.
func dropBinaryPages() {
	exe, err := os.Readlink("/proc/self/exe")
	if err != nil {
		return
	}
	data, err := os.ReadFile("/proc/self/smaps")
	if err != nil {
		return
	}
	type mapping struct {
		start, end uint64
		ok         bool // the executable's, read-only
		anon       bool // has private pages
	}
	var maps []mapping
	for _, line := range strings.Split(string(data), "\n") {
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		if lo, hi, found := strings.Cut(fields[0], "-"); found && !strings.HasSuffix(fields[0], ":") && len(fields) >= 5 {
			// start-end perms offset dev inode [path]
			start, err1 := strconv.ParseUint(lo, 16, 64)
			end, err2 := strconv.ParseUint(hi, 16, 64)
			maps = append(maps, mapping{
				start: start, end: end,
				ok: err1 == nil && err2 == nil && end > start && len(fields) >= 6 && fields[5] == exe && !strings.Contains(fields[1], "w"),
			})
			continue
		}
		if len(maps) > 0 && len(fields) >= 2 && fields[0] == "Anonymous:" && fields[1] != "0" {
			maps[len(maps)-1].anon = true
		}
	}
	for _, m := range maps {
		if m.ok && !m.anon {
			// By address: these pages are not Go memory.
			_, _, _ = unix.Syscall(unix.SYS_MADVISE, uintptr(m.start), uintptr(m.end-m.start), unix.MADV_DONTNEED)
		}
	}
}
