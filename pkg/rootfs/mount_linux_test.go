package rootfs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/berthsh/berth/internal/testutil"
	"github.com/berthsh/berth/pkg/errdefs"
)

func unpackLayers(t *testing.T, base string, layers ...[]byte) []string {
	t.Helper()
	var dirs []string
	for i, data := range layers {
		d := filepath.Join(base, fmt.Sprintf("layer%d", i))
		if _, err := Unpack(context.Background(), d, bytes.NewReader(data)); err != nil {
			t.Fatal(err)
		}
		dirs = append(dirs, d)
	}
	return dirs
}

func mkdirs(t *testing.T, dirs ...string) {
	t.Helper()
	for _, d := range dirs {
		must(t, os.MkdirAll(d, 0o755))
	}
}

func mountT(t *testing.T, target string, lowers []string, upper, work string, opts ...MountOption) {
	t.Helper()
	if err := MountOverlay(context.Background(), target, lowers, upper, work, opts...); err != nil {
		t.Fatalf("MountOverlay: %v", err)
	}
	t.Cleanup(func() {
		if err := Unmount(target); err != nil {
			t.Errorf("Unmount: %v", err)
		}
	})
}

func listDir(t *testing.T, d string) []string {
	t.Helper()
	ents, err := os.ReadDir(d)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	return names
}

func TestMountOverlay(t *testing.T) {
	testutil.RequiresRoot(t)
	base := t.TempDir()
	lowers := unpackLayers(t, base,
		layerTar(t, file("a", "0"), file("b", "0"), dir("d/"), file("d/x", "x")),
		layerTar(t, file("a", "1"), file(".wh.b", ""), dir("d/"), file("d/.wh..wh..opq", ""), file("d/y", "y")),
		layerTar(t, file("c", "2")),
	)
	checkMerged := func(t *testing.T, m string) {
		t.Helper()
		if got := readFile(t, filepath.Join(m, "a")); got != "1" {
			t.Errorf("a = %q, want the upper layer's", got)
		}
		if got := strings.Join(listDir(t, m), " "); got != "a c d" {
			t.Errorf("root lists %q", got)
		}
		if got := strings.Join(listDir(t, filepath.Join(m, "d")), " "); got != "y" {
			t.Errorf("opaque d lists %q", got)
		}
	}

	t.Run("read-only", func(t *testing.T) {
		m := filepath.Join(base, "ro")
		mkdirs(t, m)
		mountT(t, m, lowers, "", "")
		checkMerged(t, m)
		if err := os.WriteFile(filepath.Join(m, "new"), nil, 0o644); !errors.Is(err, unix.EROFS) {
			t.Fatalf("write to read-only overlay: %v", err)
		}
	})
	t.Run("writable", func(t *testing.T) {
		m, upper, work := filepath.Join(base, "rw"), filepath.Join(base, "rw-upper"), filepath.Join(base, "rw-work")
		mkdirs(t, m, upper, work)
		mountT(t, m, lowers, upper, work)
		checkMerged(t, m)
		writeFile(t, filepath.Join(m, "new"), "n")
		must(t, os.Remove(filepath.Join(m, "c")))
		if got := readFile(t, filepath.Join(upper, "new")); got != "n" {
			t.Fatalf("upper/new = %q", got)
		}
		var st unix.Stat_t
		if err := unix.Lstat(filepath.Join(upper, "c"), &st); err != nil || !isWhiteoutDev(&st) {
			t.Fatalf("upper/c is not a whiteout: %v", err)
		}
		if _, err := os.Lstat(filepath.Join(lowers[2], "c")); err != nil {
			t.Fatalf("lower layer changed: %v", err)
		}
	})
	t.Run("writable mounted read-only", func(t *testing.T) {
		m, upper, work := filepath.Join(base, "rwro"), filepath.Join(base, "rwro-upper"), filepath.Join(base, "rwro-work")
		mkdirs(t, m, upper, work)
		mountT(t, m, lowers, upper, work, WithReadOnly())
		if err := os.WriteFile(filepath.Join(m, "new"), nil, 0o644); !errors.Is(err, unix.EROFS) {
			t.Fatalf("write: %v", err)
		}
	})
	t.Run("single layer read-only", func(t *testing.T) {
		m := filepath.Join(base, "single")
		mkdirs(t, m)
		mountT(t, m, lowers[:1], "", "")
		if got := readFile(t, filepath.Join(m, "b")); got != "0" {
			t.Fatalf("b = %q", got)
		}
		if err := os.WriteFile(filepath.Join(m, "new"), nil, 0o644); !errors.Is(err, unix.EROFS) {
			t.Fatalf("write to read-only bind mount: %v", err)
		}
	})
}

func TestMountOverlayInvalid(t *testing.T) {
	d := t.TempDir()
	tests := []struct {
		name         string
		lowers       []string
		upper, work  string
		opts         []MountOption
		wantContains string
	}{
		{name: "no layers", wantContains: "no lower layers"},
		{name: "upper without work", lowers: []string{d}, upper: d, wantContains: "together"},
		{name: "too many layers", lowers: make([]string, 501), wantContains: "limit"},
		{name: "comma in option", lowers: []string{d, d}, opts: []MountOption{WithMountOptions("a,b")}, wantContains: "a,b"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := MountOverlay(context.Background(), d, tc.lowers, tc.upper, tc.work, tc.opts...)
			if !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), tc.wantContains) {
				t.Fatalf("MountOverlay: %v", err)
			}
		})
	}
}

func TestUnmountNotMounted(t *testing.T) {
	testutil.RequiresRoot(t)
	d := t.TempDir()
	for _, p := range []string{d, filepath.Join(d, "missing")} {
		if err := Unmount(p); err != nil {
			t.Fatalf("Unmount(%s): %v", p, err)
		}
	}
}

// TestMountManyLayers stacks 130 layers whose paths are far too long for
// one page of mount options, with each way of mounting.
func TestMountManyLayers(t *testing.T) {
	testutil.RequiresRoot(t)
	const n = 130
	base := filepath.Join(t.TempDir(), strings.Repeat("a-rather-long-directory-name-", 3))
	var lowers []string
	for i := range n {
		d := filepath.Join(base, fmt.Sprintf("layer-%03d-%s", i, strings.Repeat("x", 40)), "diff")
		mkdirs(t, d)
		writeFile(t, filepath.Join(d, fmt.Sprintf("f%03d", i)), "")
		writeFile(t, filepath.Join(d, "shared"), fmt.Sprint(i))
		lowers = append(lowers, d)
	}
	if total := len(strings.Join(lowers, ":")); total < 2*os.Getpagesize() {
		t.Fatalf("lowerdir string is only %d bytes", total)
	}
	cwd, err := os.Getwd()
	must(t, err)

	strategies := []struct {
		name string
		s    mountStrategy
	}{{"auto", strategyAuto}, {"links", strategyLinks}, {"fsconfig", strategyFsconfig}, {"data", strategyData}}
	for _, st := range strategies {
		for _, writable := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/writable=%v", st.name, writable), func(t *testing.T) {
				if st.s == strategyFsconfig && !kernelAtLeast(6, 8) {
					t.Skip("fsconfig lowerdir+ needs Linux 6.8")
				}
				forceStrategy = st.s
				defer func() { forceStrategy = strategyAuto }()
				dir := t.TempDir()
				m, upper, work := filepath.Join(dir, "m"), "", ""
				if writable {
					upper, work = filepath.Join(dir, "upper"), filepath.Join(dir, "work")
					mkdirs(t, upper, work)
				}
				mkdirs(t, m)
				if st.s == strategyData {
					err := MountOverlay(context.Background(), m, lowers, upper, work)
					if !errors.Is(err, errdefs.ErrInvalidArgument) {
						t.Fatalf("one-page mount of %d long layers: %v", n, err)
					}
					return
				}
				mountT(t, m, lowers, upper, work)
				names := listDir(t, m)
				if len(names) != n+1 {
					t.Fatalf("merged view has %d entries, want %d", len(names), n+1)
				}
				if got := readFile(t, filepath.Join(m, "shared")); got != fmt.Sprint(n-1) {
					t.Fatalf("shared = %q, want the topmost layer's %d", got, n-1)
				}
				if writable {
					writeFile(t, filepath.Join(m, "shared"), "changed")
					if got := readFile(t, filepath.Join(upper, "shared")); got != "changed" {
						t.Fatalf("upper/shared = %q", got)
					}
				}
				if now, _ := os.Getwd(); now != cwd {
					t.Fatalf("working directory changed to %s", now)
				}
			})
		}
	}
}
