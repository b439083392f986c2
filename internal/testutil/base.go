package testutil

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Base image variants that BaseTarball can build.
const (
	// BaseMinimal is Debian bookworm minbase plus busybox (~28 MB).
	BaseMinimal = "minimal"
	// BasePython is minbase plus python3, flask, pip, venv and
	// ca-certificates (~55 MB).
	BasePython = "python"
)

// mkbaseScript is the builder script, relative to the module root.
const mkbaseScript = "scripts/mkbase.sh"

// baseBuildTimeout bounds one run of mkbase.sh.
const baseBuildTimeout = 30 * time.Minute

// BaseTarball returns the path of a gzip-compressed tarball holding a Debian
// bookworm root filesystem of the given variant (BaseMinimal or BasePython),
// for use as a base image layer. The tarball is built with scripts/mkbase.sh
// on first use (which needs root and the Debian mirror, and takes about a
// minute) and cached across test runs in $BERTH_TEST_CACHE, else
// /var/cache/berth-test for root or <user cache dir>/berth-test otherwise.
// The cache file name carries a hash of the script, so editing the script
// causes a rebuild.
//
// Test binaries running in parallel share the cache through a lock file, so
// only one of them builds. A cached tarball is used by any user; building
// one requires root, and t is skipped when that is missing. The caller must
// not modify the returned file.
func BaseTarball(t testing.TB, variant string) string {
	t.Helper()
	if err := checkBaseVariant(variant); err != nil {
		t.Fatal(err)
	}
	root, err := findModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	script := filepath.Join(root, mkbaseScript)
	content, err := os.ReadFile(script)
	if err != nil {
		t.Fatalf("base tarball: read builder script: %v", err)
	}
	dir, err := baseCacheDir()
	if err != nil {
		t.Fatalf("base tarball: %v", err)
	}
	path := filepath.Join(dir, baseCacheName(variant, content))

	// Files only appear in the cache through a rename, so one that exists is
	// complete and can be used without the lock (and without root).
	if _, err := os.Stat(path); err == nil {
		return path
	}
	if os.Geteuid() != 0 {
		t.Logf("base tarball %s is not cached in %s and building it needs root", variant, dir)
	}
	RequiresRoot(t)

	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("base tarball: create cache directory: %v", err)
	}
	err = withFileLock(filepath.Join(dir, "base.lock"), func() error {
		// Another process may have built it while we waited for the lock.
		if _, err := os.Stat(path); err == nil {
			return nil
		}
		removeStaleBaseFiles(dir, variant)
		start := time.Now()
		t.Logf("building %s base tarball with %s (takes a minute or two; cached in %s)", variant, mkbaseScript, dir)
		if err := runMkbase(t.Context(), script, variant, path); err != nil {
			return err
		}
		t.Logf("built %s in %s", path, time.Since(start).Round(time.Second))
		removeOldBaseTarballs(dir, variant, filepath.Base(path))
		return nil
	})
	if err != nil {
		t.Fatalf("base tarball %s: %v", variant, err)
	}
	return path
}

// checkBaseVariant reports whether variant names a buildable base image.
func checkBaseVariant(variant string) error {
	switch variant {
	case BaseMinimal, BasePython:
		return nil
	}
	return fmt.Errorf("base tarball: unknown variant %q: use %q or %q", variant, BaseMinimal, BasePython)
}

// baseCacheName is the cache file name of variant built by a builder script
// with the given content.
func baseCacheName(variant string, script []byte) string {
	sum := sha256.Sum256(script)
	return "base-" + variant + "-" + hex.EncodeToString(sum[:6]) + ".tar.gz"
}

// baseCacheDir returns the directory holding cached base tarballs.
func baseCacheDir() (string, error) {
	if d := os.Getenv("BERTH_TEST_CACHE"); d != "" {
		return filepath.Abs(d)
	}
	if os.Geteuid() == 0 {
		return "/var/cache/berth-test", nil
	}
	d, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("find cache directory (set BERTH_TEST_CACHE): %w", err)
	}
	return filepath.Join(d, "berth-test"), nil
}

// findModuleRoot walks up from the working directory to the directory
// holding go.mod.
func findModuleRoot() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("find module root: %w", err)
	}
	return moduleRootFrom(wd)
}

func moduleRootFrom(dir string) (string, error) {
	for d := filepath.Clean(dir); ; {
		if fi, err := os.Stat(filepath.Join(d, "go.mod")); err == nil && fi.Mode().IsRegular() {
			return d, nil
		}
		parent := filepath.Dir(d)
		if parent == d {
			return "", fmt.Errorf("find module root: no go.mod in %s or any parent directory", dir)
		}
		d = parent
	}
}

// withFileLock runs fn while holding an exclusive flock on path, creating the
// file if needed. The lock belongs to the open file, so it also excludes other
// goroutines of this process that call withFileLock.
func withFileLock(path string, fn func() error) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("open lock file: %w", err)
	}
	defer f.Close()
	for {
		err = unix.Flock(int(f.Fd()), unix.LOCK_EX)
		if !errors.Is(err, unix.EINTR) {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("lock %s: %w", path, err)
	}
	defer unix.Flock(int(f.Fd()), unix.LOCK_UN) //nolint:errcheck // closing drops the lock anyway
	return fn()
}

// runMkbase runs the builder script for variant, writing the tarball to out.
func runMkbase(ctx context.Context, script, variant, out string) error {
	ctx, cancel := context.WithTimeout(ctx, baseBuildTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", script, "--variant", variant, out)
	var output bytes.Buffer
	cmd.Stdout = &output
	cmd.Stderr = &output
	// On cancellation, send SIGTERM to the whole process group so that
	// mmdebstrap unmounts and removes its temporary chroot; kill after a
	// grace period.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return unix.Kill(-cmd.Process.Pid, unix.SIGTERM) }
	cmd.WaitDelay = time.Minute
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s --variant %s failed: %w\n%s", script, variant, err, tail(output.String(), 40))
	}
	if _, err := os.Stat(out); err != nil {
		return fmt.Errorf("%s --variant %s succeeded but wrote no tarball: %w", script, variant, err)
	}
	return nil
}

// removeStaleBaseFiles deletes temporary files a killed build left behind.
// Callers hold the cache lock, so no build is writing them.
func removeStaleBaseFiles(dir, variant string) {
	matches, _ := filepath.Glob(filepath.Join(dir, ".base-"+variant+"-*.tar.gz.*"))
	for _, m := range matches {
		_ = os.Remove(m)
	}
}

// removeOldBaseTarballs deletes tarballs of variant built by other versions
// of the script more than a week ago, keeping the file named keep. (Recent
// ones may still serve another checkout sharing the cache.) Callers hold the
// cache lock.
func removeOldBaseTarballs(dir, variant, keep string) {
	matches, _ := filepath.Glob(filepath.Join(dir, "base-"+variant+"-*.tar.gz"))
	for _, m := range matches {
		if filepath.Base(m) == keep {
			continue
		}
		if fi, err := os.Stat(m); err == nil && time.Since(fi.ModTime()) > 7*24*time.Hour {
			_ = os.Remove(m)
		}
	}
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
