package rootfs

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berthsh/berth/internal/testutil"
	"github.com/berthsh/berth/pkg/errdefs"
)

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func writeFile(t *testing.T, p, body string) {
	t.Helper()
	must(t, os.MkdirAll(filepath.Dir(p), 0o755))
	must(t, os.WriteFile(p, []byte(body), 0o644))
}

func diffBytes(t *testing.T, upper string, opts DiffOptions) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := Diff(context.Background(), upper, &buf, opts); err != nil {
		t.Fatalf("Diff: %v", err)
	}
	return buf.Bytes()
}

// TestDiffTranslation builds an upper directory by hand, the way overlayfs
// leaves it, and checks the layer Diff makes of it.
func TestDiffTranslation(t *testing.T) {
	testutil.RequiresRoot(t) // trusted.* attributes
	upper := t.TempDir()
	must(t, unix.Mknod(filepath.Join(upper, "del"), unix.S_IFCHR, 0))
	must(t, os.Mkdir(filepath.Join(upper, "dir"), 0o755))
	must(t, unix.Setxattr(filepath.Join(upper, "dir"), "trusted.overlay.opaque", []byte("y"), 0))
	writeFile(t, filepath.Join(upper, "dir/new"), "new")
	must(t, unix.Mknod(filepath.Join(upper, "dir/gone"), unix.S_IFCHR, 0))
	must(t, os.Mkdir(filepath.Join(upper, "udir"), 0o700))
	must(t, unix.Setxattr(filepath.Join(upper, "udir"), "user.overlay.opaque", []byte("y"), 0))
	must(t, os.Mkdir(filepath.Join(upper, "notopaque"), 0o755))
	must(t, unix.Setxattr(filepath.Join(upper, "notopaque"), "trusted.overlay.opaque", []byte("x"), 0))
	writeFile(t, filepath.Join(upper, "a"), "same inode")
	must(t, os.Link(filepath.Join(upper, "a"), filepath.Join(upper, "b")))
	must(t, os.Symlink("/usr/bin/python3", filepath.Join(upper, "sym")))
	writeFile(t, filepath.Join(upper, "f"), "xattrs")
	must(t, os.Chown(filepath.Join(upper, "f"), 1000, 1001)) // before the capability, which chown clears
	must(t, unix.Setxattr(filepath.Join(upper, "f"), "user.keep", []byte("1"), 0))
	must(t, unix.Setxattr(filepath.Join(upper, "f"), "trusted.overlay.origin", []byte("zz"), 0))
	must(t, unix.Setxattr(filepath.Join(upper, "f"), "security.capability", []byte("\x01\x00\x00\x02\x00\x20\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"), 0))
	must(t, unix.Mkfifo(filepath.Join(upper, "fifo"), 0o600))
	must(t, unix.Mknod(filepath.Join(upper, "tty"), unix.S_IFCHR|0o620, int(unix.Mkdev(5, 0))))
	must(t, os.Chmod(filepath.Join(upper, "tty"), 0o620))

	hdrs := readTar(t, diffBytes(t, upper, DiffOptions{}))
	want := []string{
		".wh.del", "a", "b", "dir/", "dir/.wh..wh..opq", "dir/.wh.gone", "dir/new",
		"f", "fifo", "notopaque/", "sym", "tty", "udir/", "udir/.wh..wh..opq",
	}
	if got := tarNames(hdrs); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("entries:\n got %q\nwant %q", got, want)
	}
	byName := map[string]*tar.Header{}
	for _, h := range hdrs {
		byName[h.Name] = h
		if h.Uname != "" || h.Gname != "" || !h.AccessTime.IsZero() || !h.ChangeTime.IsZero() || h.ModTime.Nanosecond() != 0 {
			t.Errorf("%s: non-reproducible fields: %+v", h.Name, h)
		}
		if strings.Contains(h.Name, ".wh.") && (h.Typeflag != tar.TypeReg || h.Size != 0) {
			t.Errorf("%s: whiteout is not an empty file", h.Name)
		}
	}
	if h := byName["b"]; h.Typeflag != tar.TypeLink || h.Linkname != "a" {
		t.Errorf("b: want hardlink to a, got type %q link %q", h.Typeflag, h.Linkname)
	}
	if h := byName["sym"]; h.Typeflag != tar.TypeSymlink || h.Linkname != "/usr/bin/python3" {
		t.Errorf("sym: %+v", h)
	}
	if h := byName["tty"]; h.Typeflag != tar.TypeChar || h.Devmajor != 5 || h.Devminor != 0 || h.Mode != 0o620 {
		t.Errorf("tty: %+v", h)
	}
	f := byName["f"]
	if f.Uid != 1000 || f.Gid != 1001 || f.PAXRecords["SCHILY.xattr.user.keep"] != "1" || f.PAXRecords["SCHILY.xattr.security.capability"] == "" {
		t.Errorf("f: %+v", f)
	}
	for k := range f.PAXRecords {
		if strings.Contains(k, "overlay") {
			t.Errorf("f: overlay attribute %s exported", k)
		}
	}
	for _, h := range hdrs {
		for k := range h.PAXRecords {
			if strings.Contains(k, "overlay") {
				t.Errorf("%s: overlay attribute %s exported", h.Name, k)
			}
		}
	}

	// The same tree as a plain directory keeps devices and drops markers.
	var buf bytes.Buffer
	must(t, DirToTar(context.Background(), upper, &buf, DiffOptions{}))
	plain := readTar(t, buf.Bytes())
	want = []string{"a", "b", "del", "dir/", "dir/gone", "dir/new", "f", "fifo", "notopaque/", "sym", "tty", "udir/"}
	if got := tarNames(plain); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("DirToTar entries:\n got %q\nwant %q", got, want)
	}
	if plain[2].Typeflag != tar.TypeChar {
		t.Fatalf("DirToTar: del is %q, want a character device", plain[2].Typeflag)
	}
}

func TestDiffReservedName(t *testing.T) {
	upper := t.TempDir()
	writeFile(t, filepath.Join(upper, "d/.wh.sneaky"), "")
	err := Diff(context.Background(), upper, &bytes.Buffer{}, DiffOptions{})
	if !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), "d/.wh.sneaky") {
		t.Fatalf("Diff: %v", err)
	}
}

func TestDiffSourceDateEpoch(t *testing.T) {
	dir := t.TempDir()
	old := time.Date(2000, 1, 1, 0, 0, 0, 500, time.UTC)
	epoch := time.Date(2010, 6, 1, 12, 0, 0, 0, time.UTC)
	writeFile(t, filepath.Join(dir, "old"), "o")
	writeFile(t, filepath.Join(dir, "sub/new"), "n")
	must(t, os.Symlink("old", filepath.Join(dir, "link")))
	must(t, os.Chtimes(filepath.Join(dir, "old"), old, old))

	tests := []struct {
		name  string
		epoch *time.Time
		want  map[string]time.Time // nil value: "about now"
	}{
		{name: "clamped", epoch: &epoch, want: map[string]time.Time{"old": old.Truncate(time.Second), "sub/new": epoch, "sub/": epoch, "link": epoch}},
		{name: "unclamped", want: map[string]time.Time{"old": old.Truncate(time.Second), "sub/new": {}, "sub/": {}, "link": {}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			must(t, DirToTar(context.Background(), dir, &buf, DiffOptions{SourceDateEpoch: tc.epoch}))
			for _, h := range readTar(t, buf.Bytes()) {
				w, ok := tc.want[h.Name]
				if !ok {
					t.Fatalf("unexpected %s", h.Name)
				}
				if w.IsZero() {
					if time.Since(h.ModTime) > time.Hour {
						t.Errorf("%s: mtime %v, want about now", h.Name, h.ModTime)
					}
				} else if !h.ModTime.Equal(w) {
					t.Errorf("%s: mtime %v, want %v", h.Name, h.ModTime, w)
				}
			}
		})
	}
}

func TestDirToTarRoundTrip(t *testing.T) {
	src := t.TempDir()
	layer := layerTar(t,
		ent{name: "etc/", typ: tar.TypeDir, mode: 0o755},
		ent{name: "etc/app.conf", typ: tar.TypeReg, mode: 0o640, body: "conf", xattrs: map[string]string{"user.a": "b"}},
		ent{name: "usr/bin/", typ: tar.TypeDir, mode: 0o755},
		ent{name: "usr/bin/tool", typ: tar.TypeReg, mode: 0o4755, body: strings.Repeat("x", 100000)},
		hardlink("usr/bin/tool2", "usr/bin/tool"),
		symlink("bin", "usr/bin"),
		ent{name: "tmp/", typ: tar.TypeDir, mode: 0o1777},
		ent{name: "pipe", typ: tar.TypeFifo, mode: 0o600},
		ent{name: strings.Repeat("long-name/", 20) + "f", typ: tar.TypeReg, mode: 0o600, body: "deep"},
	)
	applyT(t, src, layer, WithFlatten())

	var first, second bytes.Buffer
	must(t, DirToTar(context.Background(), src, &first, DiffOptions{}))
	must(t, DirToTar(context.Background(), src, &second, DiffOptions{}))
	if !bytes.Equal(first.Bytes(), second.Bytes()) {
		t.Fatal("DirToTar is not deterministic")
	}
	dst := t.TempDir()
	applyT(t, dst, first.Bytes(), WithFlatten())
	if d := diffSnapshots(snapshot(t, src), snapshot(t, dst)); d != "" {
		t.Fatalf("round trip differs:\n%s", d)
	}
}

// TestOverlayDiffRoundTrip changes files through a real overlay mount and
// checks that base layers plus Diff of the upper directory, applied
// flat, give the merged view.
func TestOverlayDiffRoundTrip(t *testing.T) {
	testutil.RequiresRoot(t)
	base := t.TempDir()
	l0 := layerTar(t,
		dir("etc/"), file("etc/conf", "v1"), file("etc/keep", "k"),
		dir("app/"), file("app/a.py", "print(1)"), dir("app/old/"), file("app/old/x", "x"),
		dir("lib/"), file("lib/lib.so", "elf"), file("lib/other.so", "elf2"),
		dir("usr/"), dir("usr/bin/"), ent{name: "usr/bin/tool", typ: tar.TypeReg, mode: 0o755, body: "tool"},
		symlink("bin", "usr/bin"),
		dir("data/"), file("data/1", "1"), file("data/2", "2"),
	)
	l1 := layerTar(t,
		dir("app/"), file("app/a.py", "print(2)"),
		dir("lib/"), file("lib/.wh.lib.so", ""),
		dir("data/"), file("data/.wh..wh..opq", ""), file("data/3", "3"), file("data/4", "4"),
	)
	layers := []string{filepath.Join(base, "l0"), filepath.Join(base, "l1")}
	for i, data := range [][]byte{l0, l1} {
		if _, err := Unpack(context.Background(), layers[i], bytes.NewReader(data)); err != nil {
			t.Fatal(err)
		}
	}
	upper, work, merged := filepath.Join(base, "upper"), filepath.Join(base, "work"), filepath.Join(base, "merged")
	for _, d := range []string{upper, work, merged} {
		must(t, os.Mkdir(d, 0o755))
	}
	must(t, MountOverlay(context.Background(), merged, layers, upper, work))
	t.Cleanup(func() { _ = Unmount(merged) })

	// The merged view of the two layers.
	if got := readFile(t, filepath.Join(merged, "app/a.py")); got != "print(2)" {
		t.Fatalf("app/a.py = %q", got)
	}
	if _, err := os.Lstat(filepath.Join(merged, "lib/lib.so")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("lib/lib.so not whited out: %v", err)
	}
	if ents, _ := os.ReadDir(filepath.Join(merged, "data")); len(ents) != 2 {
		t.Fatalf("opaque data/ shows %d entries", len(ents))
	}

	// What a RUN step might do.
	m := func(p string) string { return filepath.Join(merged, p) }
	writeFile(t, m("app/new.py"), "new")
	writeFile(t, m("etc/conf"), "v2")
	must(t, os.Remove(m("etc/keep")))
	must(t, os.RemoveAll(m("app/old")))
	writeFile(t, m("app/old/y"), "y")
	writeFile(t, m("app/h1"), "linked")
	must(t, os.Link(m("app/h1"), m("app/h2")))
	must(t, os.Chmod(m("usr/bin/tool"), 0o4755))
	must(t, os.Chown(m("usr/bin/tool"), 1000, 1000))
	must(t, os.Symlink("../lib/other.so", m("app/lib.so")))
	must(t, os.Remove(m("data/3")))
	must(t, unix.Setxattr(m("app/new.py"), "user.origin", []byte("run"), 0))
	must(t, os.RemoveAll(m("lib")))
	must(t, os.Mkdir(m("lib"), 0o700))
	want := snapshot(t, merged)

	d1 := diffBytes(t, upper, DiffOptions{})
	d2 := diffBytes(t, upper, DiffOptions{})
	if !bytes.Equal(d1, d2) {
		t.Fatal("Diff is not deterministic")
	}
	names := strings.Join(tarNames(readTar(t, d1)), " ")
	for _, n := range []string{"etc/.wh.keep", "app/old/.wh..wh..opq", "data/.wh.3", "lib/.wh..wh..opq", "app/new.py"} {
		if !strings.Contains(" "+names+" ", " "+n+" ") {
			t.Errorf("diff lacks %s: %s", n, names)
		}
	}
	for _, n := range []string{"app/a.py", "data/4", "etc/keep", "lib/other.so"} {
		if strings.Contains(" "+names+" ", " "+n+" ") {
			t.Errorf("diff has unchanged %s", n)
		}
	}

	flat := t.TempDir()
	for _, data := range [][]byte{l0, l1, d1} {
		applyT(t, flat, data, WithFlatten())
	}
	if d := diffSnapshots(want, snapshot(t, flat)); d != "" {
		t.Fatalf("flattened layers + diff differ from the merged view:\n%s", d)
	}
}
