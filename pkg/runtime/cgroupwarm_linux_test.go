package runtime

import (
	"os"
	goruntime "runtime"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/berthsh/berth/internal/testutil"
	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// ownCgroupProcs names the cgroup.procs file that lists this process, and
// WarmCgroupAttach leaves the process where it was.
func TestWarmCgroupAttach(t *testing.T) {
	path := ownCgroupProcs()
	if path == "" {
		t.Skip("no cgroup file system here")
	}
	procs := func() []string {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		return strings.Fields(string(data))
	}
	if !slices.Contains(procs(), strconv.Itoa(os.Getpid())) {
		t.Fatalf("%s does not list this process (%d)", path, os.Getpid())
	}
	testutil.RequiresRoot(t)
	before, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	WarmCgroupAttach()
	after, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	if string(before) != string(after) {
		t.Errorf("WarmCgroupAttach moved the process:\nbefore %s\nafter %s", before, after)
	}
	if !slices.Contains(procs(), strconv.Itoa(os.Getpid())) {
		t.Errorf("%s no longer lists this process", path)
	}
}

// The x32 subarchitecture is dropped from filters exactly when this kernel
// cannot run x32 syscalls; nothing else is ever dropped.
func TestUnsupportedArches(t *testing.T) {
	got := unsupportedArches()
	for _, a := range got {
		if a != specs.ArchX32 {
			t.Errorf("unexpected unsupported architecture %s", a)
		}
	}
	if seccompFiltered() {
		if len(got) != 0 {
			t.Errorf("under a syscall filter the probe must not run, got %v", got)
		}
		return
	}
	if goruntime.GOARCH != "amd64" {
		return
	}
	_, _, errno := unix.RawSyscall(0x40000000|unix.SYS_GETTID, 0, 0, 0)
	if want := errno == unix.ENOSYS; slices.Contains(got, specs.ArchX32) != want {
		t.Errorf("x32 dropped = %v, but the kernel runs x32 syscalls = %v", !want, errno == 0)
	}
}
