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

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("read %s: %v", p, err)
	}
	return string(b)
}

func isSymlink(t *testing.T, p, target string) {
	t.Helper()
	got, err := os.Readlink(p)
	if err != nil || got != target {
		t.Fatalf("%s: want symlink to %q, got %q, %v", p, target, got, err)
	}
}

// truncatedTar is a layer whose only file claims 10 GiB but holds one byte.
func truncatedTar(t *testing.T) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Name: "big", Typeflag: tar.TypeReg, Mode: 0o644, Size: 10 << 30}); err != nil {
		t.Fatal(err)
	}
	if _, err := tw.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	tw.Flush() // fails (10 GiB missing); the stream simply ends here
	return buf.Bytes()
}

func TestApplyHostile(t *testing.T) {
	passwd, err := os.ReadFile("/etc/passwd")
	if err != nil {
		t.Fatal(err)
	}
	var passwdSt unix.Stat_t
	if err := unix.Stat("/etc/passwd", &passwdSt); err != nil {
		t.Fatal(err)
	}
	longPath := strings.Repeat("d123456789/", 400) + "f" // 4401 bytes, over PATH_MAX

	tests := []struct {
		name  string
		root  bool
		setup func(t *testing.T, root, parent string) // existing tree
		ents  func(parent string) []ent
		data  func(t *testing.T) []byte // instead of ents
		// wantErr, when set, must match errors.Is and the message must
		// name errEntry.
		wantErr  error
		errEntry string
		check    func(t *testing.T, root, parent string)
	}{
		{
			name:     "dotdot",
			ents:     func(string) []ent { return []ent{file("../../etc/x", "pwned")} },
			wantErr:  errdefs.ErrInvalidArgument,
			errEntry: "../../etc/x",
		},
		{
			name:     "dotdot in the middle",
			ents:     func(string) []ent { return []ent{dir("a/"), file("a/../../x", "pwned")} },
			wantErr:  errdefs.ErrInvalidArgument,
			errEntry: "a/../../x",
		},
		{
			name: "absolute path is relative to the root",
			ents: func(string) []ent { return []ent{file("/abs/path", "in")} },
			check: func(t *testing.T, root, _ string) {
				if got := readFile(t, filepath.Join(root, "abs/path")); got != "in" {
					t.Fatalf("abs/path = %q", got)
				}
			},
		},
		{
			name: "symlink to / then write through it",
			ents: func(string) []ent { return []ent{symlink("a", "/"), file("a/etc/passwd", "pwned")} },
			check: func(t *testing.T, root, _ string) {
				isSymlink(t, filepath.Join(root, "a"), "/")
				if got := readFile(t, filepath.Join(root, "etc/passwd")); got != "pwned" {
					t.Fatalf("etc/passwd inside root = %q", got)
				}
			},
		},
		{
			name: "relative symlink climbing out",
			ents: func(string) []ent { return []ent{symlink("a", "../../.."), file("a/x", "in")} },
			check: func(t *testing.T, root, _ string) {
				if got := readFile(t, filepath.Join(root, "x")); got != "in" {
					t.Fatalf("x = %q", got)
				}
			},
		},
		{
			name: "symlink chain climbing out",
			ents: func(string) []ent {
				return []ent{symlink("a", "b"), symlink("b", "../.."), dir("d/"), symlink("d/c", "../a/../.."), file("d/c/y", "in")}
			},
			check: func(t *testing.T, root, _ string) {
				if got := readFile(t, filepath.Join(root, "y")); got != "in" {
					t.Fatalf("y = %q", got)
				}
			},
		},
		{
			name: "symlink to the parent's absolute path",
			ents: func(parent string) []ent { return []ent{symlink("esc", parent), file("esc/pwned", "in")} },
			check: func(t *testing.T, root, parent string) {
				if got := readFile(t, filepath.Join(root, parent, "pwned")); got != "in" {
					t.Fatalf("pwned = %q", got)
				}
			},
		},
		{
			name:     "hardlink to /etc/passwd",
			ents:     func(string) []ent { return []ent{hardlink("x", "/etc/passwd")} },
			wantErr:  errdefs.ErrInvalidArgument,
			errEntry: `"x"`,
		},
		{
			name: "hardlink to an absolute path inside the layer",
			ents: func(string) []ent { return []ent{file("etc/passwd", "mine"), hardlink("x", "/etc/passwd")} },
			check: func(t *testing.T, root, _ string) {
				var a, b unix.Stat_t
				if err := unix.Lstat(filepath.Join(root, "x"), &a); err != nil {
					t.Fatal(err)
				}
				if err := unix.Lstat(filepath.Join(root, "etc/passwd"), &b); err != nil {
					t.Fatal(err)
				}
				if a.Ino != b.Ino || a.Nlink != 2 {
					t.Fatalf("x is not a hardlink of etc/passwd (ino %d/%d nlink %d)", a.Ino, b.Ino, a.Nlink)
				}
			},
		},
		{
			name:     "hardlink to ../outside",
			ents:     func(string) []ent { return []ent{hardlink("x", "../outside")} },
			wantErr:  errdefs.ErrInvalidArgument,
			errEntry: `"x"`,
		},
		{
			name:     "hardlink through a symlink to /",
			ents:     func(string) []ent { return []ent{symlink("s", "/"), hardlink("x", "s/etc/passwd")} },
			wantErr:  errdefs.ErrInvalidArgument,
			errEntry: `"x"`,
		},
		{
			name: "hardlink to a symlink pointing outside links the symlink",
			ents: func(string) []ent { return []ent{symlink("p", "/etc/passwd"), hardlink("x", "p")} },
			check: func(t *testing.T, root, _ string) {
				isSymlink(t, filepath.Join(root, "x"), "/etc/passwd")
			},
		},
		{
			name: "existing symlinks pointing outside",
			setup: func(t *testing.T, root, parent string) {
				if err := os.Symlink(parent, filepath.Join(root, "abs")); err != nil {
					t.Fatal(err)
				}
				if err := os.Symlink("../..", filepath.Join(root, "rel")); err != nil {
					t.Fatal(err)
				}
			},
			ents: func(string) []ent { return []ent{file("abs/pwned", "1"), file("rel/pwned2", "2")} },
			check: func(t *testing.T, root, parent string) {
				if got := readFile(t, filepath.Join(root, parent, "pwned")); got != "1" {
					t.Fatalf("pwned = %q", got)
				}
				if got := readFile(t, filepath.Join(root, "pwned2")); got != "2" {
					t.Fatalf("pwned2 = %q", got)
				}
			},
		},
		{
			name: "file replaces a symlink instead of writing through it",
			ents: func(parent string) []ent {
				return []ent{symlink("f", filepath.Join(parent, "victim")), file("f", "in")}
			},
			check: func(t *testing.T, root, _ string) {
				fi, err := os.Lstat(filepath.Join(root, "f"))
				if err != nil || !fi.Mode().IsRegular() {
					t.Fatalf("f: %v %v", fi, err)
				}
			},
		},
		{
			name: "directory replaces a symlink to a directory outside",
			ents: func(parent string) []ent { return []ent{symlink("d", parent), dir("d/"), file("d/f", "in")} },
			check: func(t *testing.T, root, _ string) {
				fi, err := os.Lstat(filepath.Join(root, "d"))
				if err != nil || !fi.IsDir() {
					t.Fatalf("d: %v %v", fi, err)
				}
			},
		},
		{
			name: "device node is created inside",
			root: true,
			ents: func(string) []ent {
				return []ent{{name: "dev/null", typ: tar.TypeChar, mode: 0o666, major: 1, minor: 3}}
			},
			check: func(t *testing.T, root, _ string) {
				var st unix.Stat_t
				if err := unix.Lstat(filepath.Join(root, "dev/null"), &st); err != nil {
					t.Fatal(err)
				}
				if st.Mode&unix.S_IFMT != unix.S_IFCHR || unix.Major(st.Rdev) != 1 || unix.Minor(st.Rdev) != 3 || st.Mode&0o777 != 0o666 {
					t.Fatalf("dev/null: mode %o rdev %d:%d", st.Mode, unix.Major(st.Rdev), unix.Minor(st.Rdev))
				}
			},
		},
		{
			name:     "truncated 10 GiB file",
			data:     truncatedTar,
			wantErr:  errdefs.ErrDataCorrupt,
			errEntry: `"big"`,
			check: func(t *testing.T, root, _ string) {
				if _, err := os.Lstat(filepath.Join(root, "big")); !errors.Is(err, os.ErrNotExist) {
					t.Fatalf("partial file left behind: %v", err)
				}
			},
		},
		{
			name:     "truncated header",
			data:     func(t *testing.T) []byte { return layerTar(t, file("a", "hello"), file("b", "x"))[:1024+100] },
			wantErr:  errdefs.ErrDataCorrupt,
			errEntry: `after entry "a"`,
		},
		{
			name:     "very long path",
			ents:     func(string) []ent { return []ent{file(longPath, "x")} },
			wantErr:  unix.ENAMETOOLONG,
			errEntry: longPath[:50],
		},
		{
			name:     "whiteout of ..",
			ents:     func(string) []ent { return []ent{file("a/.wh..", "")} },
			wantErr:  errdefs.ErrInvalidArgument,
			errEntry: "a/.wh..",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.root {
				testutil.RequiresRoot(t)
			}
			parent := t.TempDir()
			root := filepath.Join(parent, "root")
			if err := os.Mkdir(root, 0o755); err != nil {
				t.Fatal(err)
			}
			if tc.setup != nil {
				tc.setup(t, root, parent)
			}
			var data []byte
			if tc.data != nil {
				data = tc.data(t)
			} else {
				data = layerTar(t, tc.ents(parent)...)
			}
			_, err := Apply(context.Background(), root, bytes.NewReader(data))
			if err != nil {
				t.Logf("Apply: %v", err)
			}
			switch {
			case tc.wantErr == nil && err != nil:
				t.Fatalf("Apply: %v", err)
			case tc.wantErr != nil && !errors.Is(err, tc.wantErr):
				t.Fatalf("Apply error = %v, want %v", err, tc.wantErr)
			case tc.wantErr != nil && !strings.Contains(err.Error(), tc.errEntry):
				t.Fatalf("Apply error %q does not name %q", err, tc.errEntry)
			}
			// Nothing may appear next to root.
			ents, err := os.ReadDir(parent)
			if err != nil {
				t.Fatal(err)
			}
			if len(ents) != 1 || ents[0].Name() != "root" {
				var names []string
				for _, e := range ents {
					names = append(names, e.Name())
				}
				t.Fatalf("parent holds %v, want only root", names)
			}
			if got, err := os.ReadFile("/etc/passwd"); err != nil || !bytes.Equal(got, passwd) {
				t.Fatalf("/etc/passwd changed")
			}
			var st unix.Stat_t
			if err := unix.Stat("/etc/passwd", &st); err != nil || st.Nlink != passwdSt.Nlink {
				t.Fatalf("/etc/passwd link count changed")
			}
			if tc.check != nil {
				tc.check(t, root, parent)
			}
		})
	}
}

func TestApplyWhiteouts(t *testing.T) {
	base := layerTar(t,
		dir("a/"), file("a/f1", "1"), file("a/f2", "2"),
		dir("b/"), file("b/x", "x"), dir("b/sub/"), file("b/sub/y", "y"),
		file("c", "c"), dir("d/"), file("d/z", "z"),
	)
	tests := []struct {
		name string
		ents []ent
		// flatten: the resulting tree below the root, as sorted paths.
		flat []string
		// overlay: paths that must be whiteouts, opaque dirs, regular files.
		whiteouts, opaque, files []string
	}{
		{
			name:      "file, dir and opaque dir",
			ents:      []ent{dir("a/"), file("a/.wh.f1", ""), file(".wh.c", ""), file(".wh.d", ""), dir("b/"), file("b/.wh..wh..opq", ""), file("b/new", "n")},
			flat:      []string{"a", "a/f2", "b", "b/new"},
			whiteouts: []string{"a/f1", "c", "d"},
			opaque:    []string{"b"},
			files:     []string{"b/new"},
		},
		{
			name:   "opaque marker after the layer's own entries",
			ents:   []ent{dir("b/"), dir("b/sub/"), file("b/sub/new", "n"), file("b/new", "n"), file("b/.wh..wh..opq", "")},
			flat:   []string{"a", "a/f1", "a/f2", "b", "b/new", "b/sub", "b/sub/new", "c", "d", "d/z"},
			opaque: []string{"b"},
			files:  []string{"b/new", "b/sub/new"},
		},
		{
			name:  "whiteout never removes the same layer's file",
			ents:  []ent{file("c", "new"), file(".wh.c", "")},
			flat:  []string{"a", "a/f1", "a/f2", "b", "b/sub", "b/sub/y", "b/x", "c", "d", "d/z"},
			files: []string{"c"},
		},
		{
			name:      "whiteout of a missing file, implicit parent",
			ents:      []ent{file("nope/.wh.gone", ""), file(".wh.missing", "")},
			flat:      []string{"a", "a/f1", "a/f2", "b", "b/sub", "b/sub/y", "b/x", "c", "d", "d/z"},
			whiteouts: []string{"nope/gone", "missing"},
		},
		{
			name:  "aufs metadata is ignored",
			ents:  []ent{dir(".wh..wh.plnk/"), file(".wh..wh.aufs", "")},
			flat:  []string{"a", "a/f1", "a/f2", "b", "b/sub", "b/sub/y", "b/x", "c", "d", "d/z"},
			files: nil,
		},
	}
	for _, tc := range tests {
		layer := layerTar(t, tc.ents...)
		t.Run(tc.name+"/flatten", func(t *testing.T) {
			root := t.TempDir()
			applyT(t, root, base, WithFlatten())
			applyT(t, root, layer, WithFlatten())
			var got []string
			for p := range snapshot(t, root) {
				got = append(got, p)
			}
			if g, w := strings.Join(sorted(got), " "), strings.Join(tc.flat, " "); g != w {
				t.Fatalf("tree = %s\nwant   %s", g, w)
			}
		})
		t.Run(tc.name+"/overlay", func(t *testing.T) {
			root := t.TempDir()
			stats, err := Apply(context.Background(), root, bytes.NewReader(layer))
			if err != nil {
				t.Fatal(err)
			}
			if stats.Entries != len(tc.ents) {
				t.Fatalf("stats.Entries = %d, want %d", stats.Entries, len(tc.ents))
			}
			for _, p := range tc.whiteouts {
				var st unix.Stat_t
				if err := unix.Lstat(filepath.Join(root, p), &st); err != nil || !isWhiteoutDev(&st) {
					t.Fatalf("%s is not an overlay whiteout (mode %o rdev %d, %v)", p, st.Mode, st.Rdev, err)
				}
			}
			for _, p := range tc.opaque {
				buf := make([]byte, 4)
				attr := "trusted.overlay.opaque"
				if os.Geteuid() != 0 {
					attr = "user.overlay.opaque"
				}
				n, err := unix.Lgetxattr(filepath.Join(root, p), attr, buf)
				if err != nil || string(buf[:n]) != "y" {
					t.Fatalf("%s is not opaque: %q %v", p, buf[:n], err)
				}
			}
			for _, p := range tc.files {
				if fi, err := os.Lstat(filepath.Join(root, p)); err != nil || !fi.Mode().IsRegular() {
					t.Fatalf("%s is not a regular file: %v", p, err)
				}
			}
			// Nothing else is created: no file named like a whiteout.
			for p := range snapshot(t, root) {
				if strings.Contains(p, ".wh.") && !strings.Contains(p, ".wh..wh.plnk") {
					t.Fatalf("whiteout %s written literally", p)
				}
			}
		})
	}
}

func sorted(s []string) []string {
	out := append([]string(nil), s...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}

func TestApplyMetadata(t *testing.T) {
	testutil.RequiresRoot(t)
	old := time.Date(2001, 2, 3, 4, 5, 6, 700, time.UTC)
	ents := []ent{
		{name: "d/", typ: tar.TypeDir, mode: 0o2750, uid: 1000, gid: 2000, mtime: old},
		{name: "d/suid", typ: tar.TypeReg, mode: 0o4755, uid: 1234, gid: 5678, mtime: old, body: "#!/bin/sh\n",
			xattrs: map[string]string{"user.note": "hi", "trusted.overlay.redirect": "/etc", "user.overlay.opaque": "y"}},
		{name: "d/link", typ: tar.TypeSymlink, link: "suid", uid: 42, gid: 43, mtime: old},
		{name: "d/fifo", typ: tar.TypeFifo, mode: 0o640, uid: 7, gid: 8, mtime: old},
		{name: "ro/", typ: tar.TypeDir, mode: 0o555, mtime: old},
		{name: "ro/inner", typ: tar.TypeReg, mode: 0o444, mtime: old, body: "x"},
	}
	data := layerTar(t, ents...)

	t.Run("owners modes times xattrs", func(t *testing.T) {
		root := t.TempDir()
		stats, err := Apply(context.Background(), root, bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		if stats.Files != 2 || stats.Bytes != int64(len("#!/bin/sh\n")+1) {
			t.Fatalf("stats = %+v", stats)
		}
		check := func(rel string, typ, mode uint32, uid, gid int) {
			t.Helper()
			var st unix.Stat_t
			if err := unix.Lstat(filepath.Join(root, rel), &st); err != nil {
				t.Fatal(err)
			}
			if st.Mode&unix.S_IFMT != typ || (typ != unix.S_IFLNK && st.Mode&0o7777 != mode) || int(st.Uid) != uid || int(st.Gid) != gid {
				t.Fatalf("%s: mode %o uid %d gid %d, want %o %o %d %d", rel, st.Mode, st.Uid, st.Gid, typ, mode, uid, gid)
			}
			if sec, nsec := st.Mtim.Unix(); sec != old.Unix() || nsec != 700 {
				t.Fatalf("%s: mtime %v, want %v", rel, time.Unix(st.Mtim.Unix()), old)
			}
		}
		check("d", unix.S_IFDIR, 0o2750, 1000, 2000)
		check("d/suid", unix.S_IFREG, 0o4755, 1234, 5678)
		check("d/link", unix.S_IFLNK, 0, 42, 43)
		check("d/fifo", unix.S_IFIFO, 0o640, 7, 8)
		check("ro", unix.S_IFDIR, 0o555, 0, 0)
		x, err := readXattrs(filepath.Join(root, "d/suid"))
		if err != nil {
			t.Fatal(err)
		}
		if x["user.note"] != "hi" {
			t.Fatalf("user.note = %q", x["user.note"])
		}
		for _, attr := range []string{"trusted.overlay.redirect", "user.overlay.opaque"} {
			if _, err := unix.Lgetxattr(filepath.Join(root, "d/suid"), attr, make([]byte, 64)); !errors.Is(err, unix.ENODATA) {
				t.Fatalf("overlay attribute %s taken from the layer: %v", attr, err)
			}
		}
	})
	t.Run("without chown", func(t *testing.T) {
		root := t.TempDir()
		if _, err := Apply(context.Background(), root, bytes.NewReader(data), WithoutChown()); err != nil {
			t.Fatal(err)
		}
		var st unix.Stat_t
		if err := unix.Lstat(filepath.Join(root, "d/suid"), &st); err != nil {
			t.Fatal(err)
		}
		if st.Uid != 0 || st.Gid != 0 || st.Mode&0o7777 != 0o4755 {
			t.Fatalf("d/suid: uid %d gid %d mode %o", st.Uid, st.Gid, st.Mode)
		}
	})
}

func TestApplyRootEntry(t *testing.T) {
	root := t.TempDir()
	applyT(t, root, layerTar(t, ent{name: "./", typ: tar.TypeDir, mode: 0o711}, file("./a", "a")))
	fi, err := os.Stat(root)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o711 || !fi.ModTime().Equal(testTime) {
		t.Fatalf("root: mode %v mtime %v", fi.Mode(), fi.ModTime())
	}
}

// cancelReader cancels after n bytes have been read.
type cancelReader struct {
	r      *bytes.Reader
	n      int
	cancel context.CancelFunc
}

func (c *cancelReader) Read(p []byte) (int, error) {
	if c.n <= 0 {
		c.cancel()
	}
	p = p[:min(len(p), 4096)]
	n, err := c.r.Read(p)
	c.n -= n
	return n, err
}

func TestApplyCancel(t *testing.T) {
	data := layerTar(t, file("small", "a"), file("big", strings.Repeat("x", 1<<20)))
	tests := []struct {
		name  string
		after int // bytes read before cancelling
	}{
		{name: "before the first entry", after: 0},
		{name: "in the middle of a file", after: 100 << 10},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			root := t.TempDir()
			_, err := Apply(ctx, root, &cancelReader{r: bytes.NewReader(data), n: tc.after, cancel: cancel})
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("Apply: %v, want context.Canceled", err)
			}
			if _, err := os.Lstat(filepath.Join(root, "big")); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("partial file left behind: %v", err)
			}
		})
	}
}

func TestUnpack(t *testing.T) {
	parent := t.TempDir()
	good := layerTar(t, dir("etc/"), file("etc/hostname", "h"))
	tests := []struct {
		name    string
		data    []byte
		exists  bool
		wantErr error
	}{
		{name: "ok", data: good},
		{name: "corrupt", data: truncatedTar(t), wantErr: errdefs.ErrDataCorrupt},
		{name: "hostile", data: layerTar(t, file("ok", "1"), file("../x", "2")), wantErr: errdefs.ErrInvalidArgument},
		{name: "exists", data: good, exists: true, wantErr: errdefs.ErrAlreadyExists},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dst := filepath.Join(parent, tc.name)
			if tc.exists {
				if err := os.Mkdir(dst, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			_, err := Unpack(context.Background(), dst, bytes.NewReader(tc.data))
			if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil) != (err == nil) {
				t.Fatalf("Unpack: %v, want %v", err, tc.wantErr)
			}
			_, statErr := os.Stat(dst)
			if (statErr == nil) != (tc.wantErr == nil || tc.exists) {
				t.Fatalf("after Unpack (err %v): stat %s: %v", err, dst, statErr)
			}
			if tc.wantErr == nil {
				if fi, _ := os.Stat(dst); fi.Mode().Perm() != 0o755 {
					t.Fatalf("layer root mode %v, want 0755", fi.Mode())
				}
				if readFile(t, filepath.Join(dst, "etc/hostname")) != "h" {
					t.Fatal("content missing")
				}
			}
			// No temporary directories left behind.
			ents, _ := os.ReadDir(parent)
			for _, e := range ents {
				if strings.Contains(e.Name(), ".unpack-") {
					t.Fatalf("leftover %s", e.Name())
				}
			}
		})
	}
}

func TestRemoveAllReadOnly(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "tree")
	applyT(t, filepath.Dir(dir), layerTar(t, ent{name: "tree/", typ: tar.TypeDir, mode: 0o555}, ent{name: "tree/ro/", typ: tar.TypeDir, mode: 0o500}, file("tree/ro/f", "x")), WithoutChown())
	if err := RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("still there: %v", err)
	}
	if err := RemoveAll(dir); err != nil {
		t.Fatalf("second RemoveAll: %v", err)
	}
}
