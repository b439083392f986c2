package runtime

import (
	"bufio"
	"bytes"
	"os"
	goruntime "runtime"
	"sync"

	"github.com/opencontainers/runc/libcontainer/seccomp"
	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// SeccompSupported says whether this binary can apply syscall filters:
// the embedded libcontainer was built with the "seccomp" tag (and so
// linked against libseccomp). Containers get Docker's default profile
// only then.
const SeccompSupported = seccomp.Enabled

// kernelRelease is the running kernel's release ("6.1.0-18-amd64"), for
// profile rules that need a minimum kernel.
var kernelRelease = sync.OnceValue(func() string {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return ""
	}
	return unix.ByteSliceToString(u.Release[:])
})

// unsupportedArches lists the subarchitectures of the seccomp profile this
// kernel cannot run, for seccomp.Target.Unsupported: x32 on an x86_64
// kernel without it (most distributions build or boot without x32). x32
// syscalls are x86_64 numbers with bit 30 set, and such a kernel fails
// them with ENOSYS, so one getpid tells. The probe runs only when this
// process has no syscall filter of its own: under a filter without x32
// (berth inside a container started by berth) it could kill the process.
var unsupportedArches = sync.OnceValue(func() []specs.Arch {
	if goruntime.GOARCH != "amd64" || seccompFiltered() {
		return nil
	}
	const x32SyscallBit = 0x40000000
	if _, _, errno := unix.RawSyscall(x32SyscallBit|unix.SYS_GETPID, 0, 0, 0); errno == unix.ENOSYS {
		return []specs.Arch{specs.ArchX32}
	}
	return nil
})

// seccompFiltered says whether this process runs under a syscall filter
// (or cannot tell).
func seccompFiltered() bool {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return true
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		if v, ok := bytes.CutPrefix(sc.Bytes(), []byte("Seccomp:")); ok {
			return string(bytes.TrimSpace(v)) != "0"
		}
	}
	return true
}
