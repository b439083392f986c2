package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berthsh/berth/pkg/runtime"
)

// TestSeccomp checks that containers get Docker's default syscall filter,
// that unconfined and privileged containers get none, and that a custom
// profile is enforced.
func TestSeccomp(t *testing.T) {
	if !runtime.SeccompSupported {
		t.Skip("built without the seccomp tag (make test builds with it)")
	}
	e := newCtrEnv(t)
	profile := filepath.Join(t.TempDir(), "nomkdir.json")
	if err := os.WriteFile(profile, []byte(`{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir","mkdirat"],"action":"SCMP_ACT_ERRNO"}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	mode := func(args ...string) string {
		t.Helper()
		out := e.must(append(append([]string{"run", "--rm"}, args...), "mini:1", "sh", "-c", "grep ^Seccomp: /proc/self/status")...)
		return strings.Join(strings.Fields(out), " ")
	}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"default profile", nil, "Seccomp: 2"},
		{"unconfined", []string{"--security-opt", "seccomp=unconfined"}, "Seccomp: 0"},
		{"privileged", []string{"--privileged"}, "Seccomp: 0"},
		{"custom profile", []string{"--security-opt", "seccomp=" + profile}, "Seccomp: 2"},
	} {
		if got := mode(tc.args...); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}

	// The default profile denies what Docker's denies though capabilities
	// allow it: creating a user namespace (unshare without CAP_SYS_ADMIN).
	if _, errOut, code := e.berth("", "run", "--rm", "--security-opt", "seccomp=unconfined", "mini:1", "unshare", "-U", "true"); code != 0 {
		t.Fatalf("unshare -U unconfined: exit %d: %s (the kernel must allow user namespaces for this test)", code, errOut)
	}
	if _, _, code := e.berth("", "run", "--rm", "mini:1", "unshare", "-U", "true"); code == 0 {
		t.Errorf("unshare -U succeeded under the default profile")
	}
	// ...and the custom profile's rule holds.
	out, errOut, code := e.berth("", "run", "--rm", "--security-opt", "seccomp="+profile, "mini:1", "sh", "-c", "mkdir /tmp/x 2>&1; echo rc=$?")
	if code != 0 || !strings.Contains(out, "rc=1") {
		t.Errorf("mkdir under a profile denying it: exit %d, %q (%s)", code, out, errOut)
	}
	if _, errOut, code := e.berth("", "run", "--rm", "--security-opt", "seccomp=/nonexistent.json", "mini:1", "true"); code != 125 || !strings.Contains(errOut, "seccomp") {
		t.Errorf("missing profile: exit %d, %q", code, errOut)
	}
}

// TestPrivilegedDevices checks that --privileged containers see the host's
// devices and others only the default set.
func TestPrivilegedDevices(t *testing.T) {
	e := newCtrEnv(t)
	var dev string
	for _, d := range []string{"/dev/kmsg", "/dev/loop-control", "/dev/fuse", "/dev/tty0"} {
		if _, err := os.Stat(d); err == nil {
			dev = d
			break
		}
	}
	if dev == "" {
		t.Skip("the host has none of the devices this test looks for")
	}
	if _, errOut, code := e.berth("", "run", "--rm", "--privileged", "mini:1", "test", "-e", dev); code != 0 {
		t.Errorf("--privileged: %s missing (exit %d: %s)", dev, code, errOut)
	}
	if _, _, code := e.berth("", "run", "--rm", "mini:1", "test", "-e", dev); code == 0 {
		t.Errorf("an unprivileged container sees the host's %s", dev)
	}
}
