package testutil

import (
	"archive/tar"
	"compress/gzip"
	"errors"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestBaseTarballMinimal(t *testing.T) {
	RequiresRoot(t)
	p := BaseTarball(t, BaseMinimal)

	hdrs := readTarHeaders(t, p)
	if len(hdrs) < 1000 {
		t.Fatalf("%s has %d entries, want a full root filesystem", p, len(hdrs))
	}
	for _, name := range []string{"bin/sh", "etc/os-release", "usr/bin/busybox"} {
		if _, err := resolveTarPath(hdrs, name); err != nil {
			t.Errorf("%s: %v", p, err)
		}
	}
	osRelease, err := resolveTarPath(hdrs, "etc/os-release")
	if err != nil {
		t.Fatalf("%s: %v", p, err)
	}
	content := readTarFile(t, p, osRelease)
	if !strings.Contains(content, "VERSION_CODENAME=bookworm") {
		t.Errorf("%s: %s does not name bookworm:\n%s", p, osRelease, content)
	}

	for name, h := range hdrs {
		switch {
		case h.Typeflag == tar.TypeChar || h.Typeflag == tar.TypeBlock:
			t.Errorf("%s: device node %s", p, name)
		case strings.HasPrefix(name, "dev/"):
			t.Errorf("%s: /dev is not empty: %s", p, name)
		case strings.HasPrefix(name, "var/lib/apt/lists/") && h.Typeflag == tar.TypeReg:
			t.Errorf("%s: apt list left behind: %s", p, name)
		case strings.HasSuffix(name, ".deb"):
			t.Errorf("%s: package archive left behind: %s", p, name)
		case h.Uid >= 1000 || h.Gid >= 1000:
			t.Errorf("%s: %s is owned by %d:%d, want system ids", p, name, h.Uid, h.Gid)
		}
	}
	if h, ok := hdrs["dev"]; !ok || h.Typeflag != tar.TypeDir {
		t.Errorf("%s: no /dev directory", p)
	}
	if h := hdrs["usr/bin/dash"]; h == nil || h.Uid != 0 || h.Gid != 0 || h.Mode&0o111 == 0 {
		t.Errorf("%s: usr/bin/dash = %+v, want an executable owned by root:root", p, h)
	}

	before, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	again := BaseTarball(t, BaseMinimal)
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("second BaseTarball call took %s, want a cache hit", d)
	}
	if again != p {
		t.Errorf("second BaseTarball call returned %s, want %s", again, p)
	}
	after, err := os.Stat(again)
	if err != nil {
		t.Fatal(err)
	}
	if !after.ModTime().Equal(before.ModTime()) || !os.SameFile(before, after) {
		t.Errorf("cached tarball was rebuilt (mtime %s -> %s)", before.ModTime(), after.ModTime())
	}
}

func TestBaseCacheName(t *testing.T) {
	a := baseCacheName(BaseMinimal, []byte("echo one\n"))
	tests := []struct {
		variant string
		script  string
		same    bool
	}{
		{BaseMinimal, "echo one\n", true},
		{BaseMinimal, "echo two\n", false},
		{BasePython, "echo one\n", false},
	}
	for _, tt := range tests {
		got := baseCacheName(tt.variant, []byte(tt.script))
		if (got == a) != tt.same {
			t.Errorf("baseCacheName(%q, %q) = %q; equal to %q: %v, want %v", tt.variant, tt.script, got, a, got == a, tt.same)
		}
		if !strings.HasPrefix(got, "base-"+tt.variant+"-") || !strings.HasSuffix(got, ".tar.gz") {
			t.Errorf("baseCacheName(%q, ...) = %q, want base-%s-<hash>.tar.gz", tt.variant, got, tt.variant)
		}
	}
}

func TestCheckBaseVariant(t *testing.T) {
	for _, tt := range []struct {
		variant string
		ok      bool
	}{
		{"minimal", true},
		{"python", true},
		{"", false},
		{"alpine", false},
		{"Python", false},
	} {
		if err := checkBaseVariant(tt.variant); (err == nil) != tt.ok {
			t.Errorf("checkBaseVariant(%q) = %v, want ok=%v", tt.variant, err, tt.ok)
		}
	}
}

func TestModuleRootFrom(t *testing.T) {
	root := t.TempDir()
	if err := os.WriteFile(filepath.Join(root, "go.mod"), []byte("module example.com/x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	deep := filepath.Join(root, "a", "b", "c")
	if err := os.MkdirAll(deep, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{root, deep} {
		got, err := moduleRootFrom(dir)
		if err != nil || got != root {
			t.Errorf("moduleRootFrom(%s) = %q, %v; want %q", dir, got, err, root)
		}
	}

	// The real module root holds the builder script.
	got, err := findModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(got, mkbaseScript)); err != nil {
		t.Errorf("module root %s: %v", got, err)
	}
}

func TestWithFileLockExcludes(t *testing.T) {
	lock := filepath.Join(t.TempDir(), "lock")
	var inside, most atomic.Int32
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := withFileLock(lock, func() error {
				n := inside.Add(1)
				for {
					m := most.Load()
					if n <= m || most.CompareAndSwap(m, n) {
						break
					}
				}
				time.Sleep(5 * time.Millisecond)
				inside.Add(-1)
				return nil
			})
			if err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if m := most.Load(); m != 1 {
		t.Errorf("%d holders of the lock at once, want 1", m)
	}

	want := errors.New("boom")
	if err := withFileLock(lock, func() error { return want }); !errors.Is(err, want) {
		t.Errorf("withFileLock returned %v, want fn's error", err)
	}
	if err := withFileLock(filepath.Join(t.TempDir(), "missing", "lock"), func() error { return nil }); err == nil {
		t.Error("withFileLock in a missing directory succeeded")
	}
}

// readTarHeaders returns the headers of the gzip-compressed tarball at p,
// keyed by cleaned relative name ("./etc/" -> "etc").
func readTarHeaders(t *testing.T, p string) map[string]*tar.Header {
	t.Helper()
	hdrs := make(map[string]*tar.Header)
	walkTar(t, p, func(name string, h *tar.Header, _ io.Reader) bool {
		if _, dup := hdrs[name]; dup && name != "" {
			t.Errorf("%s: duplicate entry %s", p, name)
		}
		hdrs[name] = h
		return true
	})
	return hdrs
}

// readTarFile returns the content of the regular file name in the tarball.
func readTarFile(t *testing.T, p, name string) string {
	t.Helper()
	var content string
	found := false
	walkTar(t, p, func(n string, h *tar.Header, r io.Reader) bool {
		if n != name {
			return true
		}
		b, err := io.ReadAll(r)
		if err != nil {
			t.Fatalf("%s: read %s: %v", p, name, err)
		}
		content, found = string(b), true
		return false
	})
	if !found {
		t.Fatalf("%s: no file %s", p, name)
	}
	return content
}

func walkTar(t *testing.T, p string, fn func(name string, h *tar.Header, r io.Reader) bool) {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatalf("%s is not gzip-compressed: %v", p, err)
	}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return
		}
		if err != nil {
			t.Fatalf("%s: bad tar stream: %v", p, err)
		}
		name := strings.TrimPrefix(path.Clean("/"+h.Name), "/")
		if !fn(name, h, tr) {
			return
		}
	}
}

// resolveTarPath follows symbolic links (in any component) within the
// tarball's tree and returns the name of the regular file name refers to.
func resolveTarPath(hdrs map[string]*tar.Header, name string) (string, error) {
	rest := strings.Split(name, "/")
	cur := ""
	for hops := 0; len(rest) > 0; {
		next := path.Join(cur, rest[0])
		rest = rest[1:]
		h, ok := hdrs[next]
		if !ok {
			return "", errors.New(name + ": no entry " + next)
		}
		if h.Typeflag == tar.TypeSymlink {
			if hops++; hops > 40 {
				return "", errors.New(name + ": too many symbolic links")
			}
			target := h.Linkname
			if !path.IsAbs(target) {
				target = path.Join("/", cur, target)
			}
			rest = append(strings.Split(strings.TrimPrefix(path.Clean(target), "/"), "/"), rest...)
			cur = ""
			continue
		}
		cur = next
		if len(rest) == 0 {
			if h.Typeflag != tar.TypeReg {
				return "", errors.New(name + ": " + next + " is not a regular file")
			}
			return next, nil
		}
		if h.Typeflag != tar.TypeDir {
			return "", errors.New(name + ": " + next + " is not a directory")
		}
	}
	return "", errors.New(name + ": empty path")
}
