package buildctx

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/berthsh/berth/pkg/errdefs"
)

func TestWriteLayerDeterministic(t *testing.T) {
	files := tree{"src/b.py": "b", "src/a.py": "a", "src/z/": "", "src/A.py": "A", "src/a-b/c": "c", "src/l -> a.py": ""}
	build := func(mtime time.Time) []byte {
		dir := t.TempDir()
		writeTree(t, dir, files)
		filepath.Walk(dir, func(p string, _ os.FileInfo, _ error) error {
			os.Chtimes(p, mtime, mtime)
			return nil
		})
		c, err := Open(dir, "")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_, b := copyLayer(t, c, []string{"src"}, "/app/", CopyOptions{}, LayerOptions{})
		return b
	}
	one := build(time.Now())
	two := build(time.Date(2001, 2, 3, 4, 5, 6, 7, time.UTC))
	if !bytes.Equal(one, two) {
		t.Fatal("layers of the same files in two directories with different mtimes differ")
	}
	got := readTar(t, one)
	n := names(got)
	if !sort.StringsAreSorted(n) {
		t.Errorf("entries not sorted: %q", n)
	}
	want := []string{"app/", "app/A.py", "app/a-b/", "app/a-b/c", "app/a.py", "app/b.py", "app/l", "app/z/"}
	if !reflect.DeepEqual(n, want) {
		t.Errorf("names = %q, want %q", n, want)
	}
	for _, e := range got {
		h := e.hdr
		if !h.ModTime.Equal(time.Unix(0, 0)) || h.Uname != "" || h.Gname != "" || !h.AccessTime.IsZero() || !h.ChangeTime.IsZero() || h.Uid != 0 || h.Gid != 0 {
			t.Errorf("%s: mtime %v uname %q gname %q atime %v ctime %v owner %d:%d", h.Name, h.ModTime, h.Uname, h.Gname, h.AccessTime, h.ChangeTime, h.Uid, h.Gid)
		}
	}
	if got[1].body != "A" {
		t.Errorf("app/A.py content %q", got[1].body)
	}
}

func TestLayerTimes(t *testing.T) {
	old := time.Date(2010, 1, 1, 0, 0, 0, 0, time.UTC)
	recent := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	sde := time.Date(2020, 6, 1, 0, 0, 0, 0, time.UTC)
	c, dir := openCtx(t, tree{"old": "o", "new": "n"})
	os.Chtimes(filepath.Join(dir, "old"), old, old)
	os.Chtimes(filepath.Join(dir, "new"), recent, recent)
	tests := []struct {
		name     string
		opts     LayerOptions
		old, new time.Time
	}{
		{"default is the epoch", LayerOptions{}, time.Unix(0, 0), time.Unix(0, 0)},
		{"SOURCE_DATE_EPOCH", LayerOptions{SourceDateEpoch: sde}, sde, sde},
		{"preserve, clamped", LayerOptions{SourceDateEpoch: sde, PreserveTimes: true}, old, sde},
		{"preserve", LayerOptions{PreserveTimes: true}, old, recent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, b := copyLayer(t, c, []string{"old", "new"}, "/d/", CopyOptions{}, tt.opts)
			got := readTar(t, b)
			if names(got)[1] != "d/new" {
				t.Fatalf("names %q", names(got))
			}
			if !got[1].hdr.ModTime.Equal(tt.new) || !got[2].hdr.ModTime.Equal(tt.old) {
				t.Errorf("times new=%v old=%v, want %v %v", got[1].hdr.ModTime, got[2].hdr.ModTime, tt.new, tt.old)
			}
		})
	}
}

func TestHardlinks(t *testing.T) {
	c, dir := openCtx(t, tree{"d/a": "same", "d/other": "x"})
	if err := os.Link(filepath.Join(dir, "d/a"), filepath.Join(dir, "d/b")); err != nil {
		t.Fatal(err)
	}
	_, b := copyLayer(t, c, []string{"d"}, "/h", CopyOptions{}, LayerOptions{})
	got := readTar(t, b)
	if want := []string{"h/", "h/a", "h/b", "h/other"}; !reflect.DeepEqual(names(got), want) {
		t.Fatalf("names %q", names(got))
	}
	if got[1].hdr.Typeflag != tar.TypeReg || got[1].body != "same" {
		t.Errorf("first link: %+v", got[1].hdr)
	}
	if got[2].hdr.Typeflag != tar.TypeLink || got[2].hdr.Linkname != "h/a" || got[2].hdr.Size != 0 {
		t.Errorf("second link: %+v", got[2].hdr)
	}
}

func tarBytes(t *testing.T, hdrs []*tar.Header, bodies []string) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for i, h := range hdrs {
		if h.Typeflag == tar.TypeReg {
			h.Size = int64(len(bodies[i]))
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			tw.Write([]byte(bodies[i]))
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func gz(t *testing.T, b []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(b)
	zw.Close()
	return buf.Bytes()
}

func TestAddArchive(t *testing.T) {
	good := tarBytes(t, []*tar.Header{
		{Name: "./", Typeflag: tar.TypeDir, Mode: 0o755},
		{Name: "pkg/mod.py", Typeflag: tar.TypeReg, Mode: 0o640, Uid: 7, Gid: 8, ModTime: time.Now()},
		{Name: "/abs.txt", Typeflag: tar.TypeReg, Mode: 0o644},
		{Name: "pkg/hl", Typeflag: tar.TypeLink, Linkname: "pkg/mod.py"},
		{Name: "pkg/sl", Typeflag: tar.TypeSymlink, Linkname: "/etc/passwd"},
	}, []string{"", "print()", "abs", "", ""})
	escape := tarBytes(t, []*tar.Header{{Name: "a/../../evil", Typeflag: tar.TypeReg, Mode: 0o644}}, []string{"evil"})
	escapeLink := tarBytes(t, []*tar.Header{{Name: "x", Typeflag: tar.TypeLink, Linkname: "../../etc/shadow"}}, []string{""})
	whiteout := tarBytes(t, []*tar.Header{{Name: "d/.wh.x", Typeflag: tar.TypeReg}}, []string{""})
	wantGood := []string{"opt/", "opt/x/", "opt/x/pkg/", "opt/x/pkg/mod.py", "opt/x/abs.txt", "opt/x/pkg/hl", "opt/x/pkg/sl"}
	tests := []struct {
		name    string
		file    []byte
		extract bool
		want    []string
		err     error
	}{
		{name: "plain tar", file: good, extract: true, want: wantGood},
		{name: "gzip tar", file: gz(t, good), extract: true, want: wantGood},
		{name: "COPY does not extract", file: good, want: []string{"opt/", "opt/x"}},
		{name: "not an archive", file: []byte("just text"), extract: true, want: []string{"opt/", "opt/x"}},
		{name: "gzip but not tar", file: gz(t, []byte("text")), extract: true, want: []string{"opt/", "opt/x"}},
		{name: "escaping entry", file: escape, extract: true, err: errdefs.ErrInvalidArgument},
		{name: "escaping hard link", file: escapeLink, extract: true, err: errdefs.ErrInvalidArgument},
		{name: "whiteout name", file: whiteout, extract: true, err: errdefs.ErrInvalidArgument},
		{name: "xz", file: []byte{0xfd, '7', 'z', 'X', 'Z', 0, 1, 2}, extract: true, err: errdefs.ErrNotImplemented},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "a.tar.weird"), tt.file, 0o644); err != nil {
				t.Fatal(err)
			}
			c, err := Open(dir, "")
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			ctx := context.Background()
			srcs, err := c.Resolve([]string{"a.tar.weird"})
			if err != nil {
				t.Fatal(err)
			}
			es, err := Plan(ctx, srcs, "/opt/x", CopyOptions{Extract: tt.extract})
			var buf bytes.Buffer
			if err == nil {
				err = WriteLayer(ctx, es, &buf, LayerOptions{})
			}
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("err = %v, want %v", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := readTar(t, buf.Bytes())
			if !reflect.DeepEqual(names(got), tt.want) {
				t.Fatalf("names = %q, want %q", names(got), tt.want)
			}
			if tt.extract && len(got) > 3 {
				m := got[3].hdr
				if got[3].body != "print()" || m.Mode != 0o640 || m.Uid != 7 || m.Gid != 8 || !m.ModTime.Equal(time.Unix(0, 0)) {
					t.Errorf("mod.py: %+v %q", m, got[3].body)
				}
				if got[5].hdr.Linkname != "opt/x/pkg/mod.py" || got[6].hdr.Linkname != "/etc/passwd" {
					t.Errorf("links: %q %q", got[5].hdr.Linkname, got[6].hdr.Linkname)
				}
			}
		})
	}
}

func TestAddArchiveChown(t *testing.T) {
	c, dir := openCtx(t, nil)
	os.WriteFile(filepath.Join(dir, "a.tgz"), gz(t, tarBytes(t, []*tar.Header{{Name: "d/f", Typeflag: tar.TypeReg, Mode: 0o600, Uid: 5}}, []string{"f"})), 0o644)
	_, b := copyLayer(t, c, []string{"a.tgz"}, "/", CopyOptions{Extract: true, Chown: "1:2", Chmod: "444"}, LayerOptions{})
	got := readTar(t, b)
	if want := []string{"d/", "d/f"}; !reflect.DeepEqual(names(got), want) {
		t.Fatalf("names %q", names(got))
	}
	for _, e := range got {
		if e.hdr.Uid != 1 || e.hdr.Gid != 2 {
			t.Errorf("%s owner %d:%d", e.hdr.Name, e.hdr.Uid, e.hdr.Gid)
		}
	}
	if got[1].hdr.Mode != 0o444 {
		t.Errorf("mode %o", got[1].hdr.Mode)
	}
}

func TestFetchURL(t *testing.T) {
	body := "downloaded content"
	sum := sha256.Sum256([]byte(body))
	good := "sha256:" + hex.EncodeToString(sum[:])
	bad := "sha256:" + strings.Repeat("0", 64)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/files/tool.tar.gz", "/files/":
			w.Header().Set("Last-Modified", "Wed, 21 Oct 2015 07:28:00 GMT")
			w.Write([]byte(body))
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	tests := []struct {
		name, path, checksum, dest string
		wantName                   string
		err                        error
	}{
		{name: "good checksum", path: "/files/tool.tar.gz", checksum: good, dest: "/dl/", wantName: "dl/tool.tar.gz"},
		{name: "no checksum, file dest", path: "/files/tool.tar.gz", dest: "/bin/tool", wantName: "bin/tool"},
		{name: "bad checksum", path: "/files/tool.tar.gz", checksum: bad, err: errdefs.ErrDataCorrupt},
		{name: "malformed checksum", path: "/files/tool.tar.gz", checksum: "md5:abc", err: errdefs.ErrInvalidArgument},
		{name: "not found", path: "/nope", err: errdefs.ErrNotFound},
		{name: "no file name", path: "/files/", dest: "/dl/", err: errdefs.ErrInvalidArgument},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			d, err := FetchURL(ctx, srv.URL+tt.path, FetchOptions{Checksum: tt.checksum, TempDir: t.TempDir()})
			var es []Entry
			if err == nil {
				defer d.Close()
				es, err = Plan(ctx, []Source{d.Source}, tt.dest, CopyOptions{Extract: true})
			}
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("err = %v, want %v", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d.Digest != good {
				t.Errorf("digest %s", d.Digest)
			}
			for _, lo := range []LayerOptions{{}, {PreserveTimes: true}} {
				var buf bytes.Buffer
				if err := WriteLayer(ctx, es, &buf, lo); err != nil {
					t.Fatal(err)
				}
				got := readTar(t, buf.Bytes())
				f := got[len(got)-1]
				wantTime := time.Unix(0, 0)
				if lo.PreserveTimes {
					wantTime = time.Date(2015, 10, 21, 7, 28, 0, 0, time.UTC)
				}
				if f.hdr.Name != tt.wantName || f.hdr.Mode != 0o600 || f.body != body || f.hdr.Typeflag != tar.TypeReg || !f.hdr.ModTime.Equal(wantTime) {
					t.Errorf("got %+v %q", f.hdr, f.body)
				}
			}
		})
	}
	if _, err := FetchURL(context.Background(), "ftp://x/y", FetchOptions{}); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("ftp: %v", err)
	}
}

func TestChecksum(t *testing.T) {
	c, dir := openCtx(t, tree{"d/a": "a", "d/b": "b", "d/l -> a": ""})
	ctx := context.Background()
	sum := func(opts CopyOptions) string {
		t.Helper()
		srcs, err := c.Resolve([]string{"d"})
		if err != nil {
			t.Fatal(err)
		}
		es, err := Plan(ctx, srcs, "/x/", opts)
		if err != nil {
			t.Fatal(err)
		}
		s, err := Checksum(ctx, es)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	base := sum(CopyOptions{})
	if !strings.HasPrefix(base, "sha256:") || len(base) != 71 {
		t.Fatalf("checksum %q", base)
	}
	reads := c.hashReads
	if again := sum(CopyOptions{}); again != base {
		t.Error("checksum not stable")
	}
	if c.hashReads != reads {
		t.Errorf("second checksum read %d files again", c.hashReads-reads)
	}
	later := time.Now().Add(time.Hour)
	os.Chtimes(filepath.Join(dir, "d/a"), later, later)
	if s := sum(CopyOptions{}); s != base {
		t.Error("checksum changed with the mtime only")
	}
	if c.hashReads != reads+1 {
		t.Errorf("touched file not re-hashed (%d reads)", c.hashReads-reads)
	}
	steps := []struct {
		name   string
		change func()
		opts   CopyOptions
	}{
		{"content", func() { os.WriteFile(filepath.Join(dir, "d/a"), []byte("A"), 0o644) }, CopyOptions{}},
		{"mode", func() { os.Chmod(filepath.Join(dir, "d/b"), 0o755) }, CopyOptions{}},
		{"link target", func() { os.Remove(filepath.Join(dir, "d/l")); os.Symlink("b", filepath.Join(dir, "d/l")) }, CopyOptions{}},
		{"new file", func() { os.WriteFile(filepath.Join(dir, "d/c"), nil, 0o644) }, CopyOptions{}},
		{"chown", func() {}, CopyOptions{Chown: "1:1"}},
		{"chmod", func() {}, CopyOptions{Chown: "1:1", Chmod: "700"}},
	}
	seen := map[string]string{base: "base"}
	for _, st := range steps {
		st.change()
		s := sum(st.opts)
		if prev, ok := seen[s]; ok {
			t.Errorf("after %s change the checksum equals the one after %s", st.name, prev)
		}
		seen[s] = st.name
	}

	// The same files elsewhere give the same checksum.
	c2, _ := openCtx(t, tree{"d/a": "a", "d/b": "b", "d/l -> a": ""})
	srcs, _ := c2.Resolve([]string{"d"})
	es, _ := Plan(ctx, srcs, "/x/", CopyOptions{})
	if s, _ := Checksum(ctx, es); s != base {
		t.Error("checksum differs between two copies of the same files")
	}
}

func TestInline(t *testing.T) {
	ctx := context.Background()
	tarball := tarBytes(t, []*tar.Header{{Name: "f", Typeflag: tar.TypeReg}}, []string{"x"})
	tests := []struct {
		name, dest string
		data       []byte
		opts       CopyOptions
		want       string
		mode       int64
	}{
		{name: "run.sh", dest: "/usr/local/bin/", data: []byte("#!/bin/sh\necho hi\n"), opts: CopyOptions{Chmod: "755"}, want: "usr/local/bin/run.sh", mode: 0o755},
		{name: "conf", dest: "etc/app.conf", data: []byte("a=1\n"), opts: CopyOptions{Workdir: "/srv"}, want: "srv/etc/app.conf", mode: 0o644},
		{name: "t.tar", dest: "/x/", data: tarball, opts: CopyOptions{Extract: true}, want: "x/t.tar", mode: 0o644},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			es, err := Plan(ctx, []Source{Inline(tt.name, tt.data)}, tt.dest, tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			var buf bytes.Buffer
			if err := WriteLayer(ctx, es, &buf, LayerOptions{}); err != nil {
				t.Fatal(err)
			}
			got := readTar(t, buf.Bytes())
			f := got[len(got)-1]
			if f.hdr.Name != tt.want || f.body != string(tt.data) || f.hdr.Mode != tt.mode {
				t.Errorf("got %s mode %o body %q", f.hdr.Name, f.hdr.Mode, f.body)
			}
			s1, err := Checksum(ctx, es)
			if err != nil {
				t.Fatal(err)
			}
			es2, _ := Plan(ctx, []Source{Inline(tt.name, append(tt.data, '\n'))}, tt.dest, tt.opts)
			if s2, _ := Checksum(ctx, es2); s1 == s2 {
				t.Error("checksum ignores inline content")
			}
		})
	}
}
