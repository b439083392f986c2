package runtime

import (
	"os"
	"strconv"
	"strings"
	"testing"
)

// exeRss sums the resident kB of this process's read-only mappings of its
// own executable.
func exeRss(t *testing.T) int {
	t.Helper()
	exe, err := os.Readlink("/proc/self/exe")
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile("/proc/self/smaps")
	if err != nil {
		t.Fatal(err)
	}
	total, inExe := 0, false
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) >= 5 && strings.Contains(f[0], "-") && !strings.HasSuffix(f[0], ":"):
			inExe = len(f) >= 6 && f[5] == exe && !strings.Contains(f[1], "w")
		case inExe && len(f) == 3 && f[0] == "Rss:":
			n, _ := strconv.Atoi(f[1])
			total += n
		}
	}
	return total
}

// touchExe faults in every page of the executable's read-only mappings,
// by reading them through /proc/self/mem.
func touchExe(t *testing.T) {
	t.Helper()
	exe, _ := os.Readlink("/proc/self/exe")
	maps, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		t.Fatal(err)
	}
	mem, err := os.Open("/proc/self/mem")
	if err != nil {
		t.Fatal(err)
	}
	defer mem.Close()
	buf := make([]byte, 1<<20)
	for _, line := range strings.Split(string(maps), "\n") {
		f := strings.Fields(line)
		if len(f) < 6 || f[5] != exe || strings.Contains(f[1], "w") {
			continue
		}
		lo, hi, _ := strings.Cut(f[0], "-")
		start, _ := strconv.ParseInt(lo, 16, 64)
		end, _ := strconv.ParseInt(hi, 16, 64)
		for off := start; off < end; off += int64(len(buf)) {
			n := min(int64(len(buf)), end-off)
			_, _ = mem.ReadAt(buf[:n], off)
		}
	}
}

func TestDropBinaryPages(t *testing.T) {
	touchExe(t)
	before := exeRss(t)
	if before < 1024 {
		t.Skipf("only %d kB of the test binary resident; nothing to measure", before)
	}
	dropBinaryPages()
	after := exeRss(t)
	t.Logf("read-only executable pages resident: %d kB before, %d kB after", before, after)
	// Not all of them: touching one page of a large page-cache folio maps
	// the whole folio again, and this code runs from those pages.
	if after >= before*9/10 {
		t.Errorf("resident executable pages went from %d to %d kB; want at least a tenth dropped", before, after)
	}
	// The process still works: code faults back in.
	if s := strconv.Itoa(42); s != "42" {
		t.Fatal(s)
	}
}
