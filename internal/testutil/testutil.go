// Package testutil holds helpers shared by berth's tests: gating of tests
// that need root, and fixtures (random images, temporary stores, base
// images built from Debian packages).
package testutil

import (
	"os"
	"testing"
)

// RequiresRoot skips t unless the test runs as root. Tests that create
// namespaces, mounts, cgroups or network devices call it first, so that
// "go test ./..." still passes for an unprivileged user.
func RequiresRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("test requires root")
	}
}
