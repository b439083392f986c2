package testutil

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
)

// BuildBerth builds this module's ./cmd/berth into out, for tests that
// drive the real binary. It takes no *testing.T so a TestMain can call it.
func BuildBerth(out string) error {
	root, err := findModuleRoot()
	if err != nil {
		return err
	}
	goBin := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(goBin); err != nil {
		goBin = "go"
	}
	args := []string{"build", "-o", out}
	// Build with syscall filters like "make build" when libseccomp's
	// development files are there (scripts/deps.sh installs them).
	if exec.Command("pkg-config", "--exists", "libseccomp").Run() == nil {
		args = append(args, "-tags", "seccomp")
	}
	cmd := exec.Command(goBin, append(args, "./cmd/berth")...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=1")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("build berth in %s: %w\n%s", root, err, b)
	}
	return nil
}
