package runtime

import (
	"sync"

	"github.com/opencontainers/runc/libcontainer/seccomp"
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
