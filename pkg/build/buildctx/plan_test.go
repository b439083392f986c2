package buildctx

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/berthsh/berth/pkg/errdefs"
)

func TestPlanDestination(t *testing.T) {
	files := tree{
		"a.txt": "a", "b.txt": "b",
		"dir/x": "x", "dir/sub/y": "y", "dir/ln -> x": "",
		"empty/": "",
	}
	target := t.TempDir()
	writeTree(t, target, tree{"app/": "", "opt/real/": "", "usr/lib -> ../opt/real": "", "etc/file": ""})
	tests := []struct {
		name    string
		srcs    []string
		dest    string
		opts    CopyOptions
		want    []string
		wantErr string
	}{
		{name: "file to new name", srcs: []string{"a.txt"}, dest: "/x/new.txt",
			want: []string{"x/", "x/new.txt"}},
		{name: "file to trailing slash", srcs: []string{"a.txt"}, dest: "/x/",
			want: []string{"x/", "x/a.txt"}},
		{name: "file to existing dir", srcs: []string{"a.txt"}, dest: "/app", opts: CopyOptions{Target: DirTarget(target)},
			want: []string{"app/", "app/a.txt"}},
		{name: "existing dir ignored with --link", srcs: []string{"a.txt"}, dest: "/app", opts: CopyOptions{Target: DirTarget(target), Link: true},
			want: []string{"app"}},
		{name: "relative dest uses workdir", srcs: []string{"a.txt"}, dest: "rel/", opts: CopyOptions{Workdir: "/srv/www"},
			want: []string{"srv/", "srv/www/", "srv/www/rel/", "srv/www/rel/a.txt"}},
		{name: "dot dest is workdir", srcs: []string{"a.txt"}, dest: ".", opts: CopyOptions{Workdir: "/w"},
			want: []string{"w/", "w/a.txt"}},
		{name: "directory copies its contents", srcs: []string{"dir"}, dest: "/d",
			want: []string{"d/", "d/ln", "d/sub/", "d/sub/y", "d/x"}},
		{name: "empty directory", srcs: []string{"empty"}, dest: "/e/",
			want: []string{"e/"}},
		{name: "context root", srcs: []string{"."}, dest: "/c/",
			want: []string{"c/", "c/a.txt", "c/b.txt", "c/dir/", "c/dir/ln", "c/dir/sub/", "c/dir/sub/y", "c/dir/x", "c/empty/"}},
		{name: "multiple sources", srcs: []string{"a.txt", "b.txt"}, dest: "/m/",
			want: []string{"m/", "m/a.txt", "m/b.txt"}},
		{name: "multiple sources need a slash", srcs: []string{"a.txt", "b.txt"}, dest: "/m",
			wantErr: "When using COPY with more than one source file, the destination must be a directory and end with a /"},
		{name: "wildcard with several matches makes a directory", srcs: []string{"*.txt"}, dest: "/m",
			want: []string{"m/", "m/a.txt", "m/b.txt"}},
		{name: "symlink in target followed", srcs: []string{"a.txt"}, dest: "/usr/lib/", opts: CopyOptions{Target: DirTarget(target)},
			want: []string{"opt/", "opt/real/", "opt/real/a.txt"}},
		{name: "file in the way", srcs: []string{"a.txt"}, dest: "/etc/file/x", opts: CopyOptions{Target: DirTarget(target)},
			wantErr: "not a directory"},
		{name: "parents", srcs: []string{"dir/x", "dir/sub"}, dest: "/p/", opts: CopyOptions{Parents: true},
			want: []string{"p/", "p/dir/", "p/dir/sub/", "p/dir/sub/y", "p/dir/x"}},
		{name: "parents with pivot", srcs: []string{"./dir/./sub/y", "a.txt"}, dest: "/p/", opts: CopyOptions{Parents: true},
			want: []string{"p/", "p/a.txt", "p/sub/", "p/sub/y"}},
		{name: "exclude", srcs: []string{"dir", "a.txt", "b.txt"}, dest: "/e/", opts: CopyOptions{Exclude: []string{"sub", "b.*", "ln"}},
			want: []string{"e/", "e/a.txt", "e/x"}},
		{name: "exclude with exception", srcs: []string{"dir"}, dest: "/e/", opts: CopyOptions{Exclude: []string{"**", "!sub/y"}},
			want: []string{"e/", "e/sub/", "e/sub/y"}},
		{name: "bad exclude", srcs: []string{"a.txt"}, dest: "/x", opts: CopyOptions{Exclude: []string{"!"}},
			wantErr: "--exclude"},
		{name: "bad chmod", srcs: []string{"a.txt"}, dest: "/x", opts: CopyOptions{Chmod: "u+x"},
			wantErr: "--chmod=u+x"},
		{name: "chown name without passwd", srcs: []string{"a.txt"}, dest: "/x", opts: CopyOptions{Chown: "app"},
			wantErr: `cannot look up user "app"`},
	}
	c, _ := openCtx(t, files)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srcs, err := c.Resolve(tt.srcs)
			if err != nil {
				t.Fatal(err)
			}
			es, err := Plan(context.Background(), srcs, tt.dest, tt.opts)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				if !errors.Is(err, errdefs.ErrInvalidArgument) {
					t.Errorf("err = %v is not ErrInvalidArgument", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := entryPaths(es); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestPlanExistingParentKeepsMetadata(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to own files as another user")
	}
	target := t.TempDir()
	writeTree(t, target, tree{"home/app/": ""})
	if err := os.Chown(filepath.Join(target, "home/app"), 1000, 1000); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(target, "home/app"), 0o700); err != nil {
		t.Fatal(err)
	}
	c, _ := openCtx(t, tree{"a": "a"})
	srcs, _ := c.Resolve([]string{"a"})
	es, err := Plan(context.Background(), srcs, "/home/app/", CopyOptions{Target: DirTarget(target)})
	if err != nil {
		t.Fatal(err)
	}
	if e := es[1]; e.Path != "home/app" || e.Mode != 0o700 || e.UID != 1000 {
		t.Errorf("parent = %+v", e)
	}
}

func TestPlanExcludedDirWithException(t *testing.T) {
	c, _ := openCtx(t, tree{
		"pkg/a.py": "", "pkg/cache/x": "", "pkg/cache/keep/k": "", "pkg/other/o": "",
		".dockerignore": "pkg/cache\npkg/other\n!pkg/cache/keep\n",
	})
	srcs, err := c.Resolve([]string{"pkg"})
	if err != nil {
		t.Fatal(err)
	}
	es, err := Plan(context.Background(), srcs, "/p", CopyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"p/", "p/a.py", "p/cache/", "p/cache/keep/", "p/cache/keep/k"}
	if got := entryPaths(es); !reflect.DeepEqual(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestChownChmod(t *testing.T) {
	c, _ := openCtx(t, tree{"d/f": "x", "d/l -> f": ""})
	users := map[string]int{"app": 1000}
	groups := map[string]int{"staff": 50}
	lookup := func(m map[string]int) func(string) (int, error) {
		return func(n string) (int, error) {
			if id, ok := m[n]; ok {
				return id, nil
			}
			return 0, fmt.Errorf("no such name: %w", errdefs.ErrNotFound)
		}
	}
	tests := []struct {
		chown, chmod       string
		uid, gid           int
		fileMode, linkMode int64
		err                string
	}{
		{uid: 0, gid: 0, fileMode: 0o644, linkMode: 0o777},
		{chown: "10", uid: 10, gid: 10, fileMode: 0o644, linkMode: 0o777},
		{chown: "10:20", uid: 10, gid: 20, fileMode: 0o644, linkMode: 0o777},
		{chown: "app:staff", uid: 1000, gid: 50, fileMode: 0o644, linkMode: 0o777},
		{chown: "app", uid: 1000, gid: 1000, fileMode: 0o644, linkMode: 0o777},
		{chown: "app:7", chmod: "4750", uid: 1000, gid: 7, fileMode: 0o4750, linkMode: 0o777},
		{chmod: "600", fileMode: 0o600, linkMode: 0o777},
		{chown: "nobody", err: `unknown user "nobody"`},
		{chmod: "999", err: "--chmod=999"},
	}
	for _, tt := range tests {
		t.Run(tt.chown+"/"+tt.chmod, func(t *testing.T) {
			srcs, err := c.Resolve([]string{"d"})
			if err != nil {
				t.Fatal(err)
			}
			opts := CopyOptions{Chown: tt.chown, Chmod: tt.chmod, LookupUser: lookup(users), LookupGroup: lookup(groups)}
			es, err := Plan(context.Background(), srcs, "/out", opts)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var b bytes.Buffer
			if err := WriteLayer(context.Background(), es, &b, LayerOptions{}); err != nil {
				t.Fatal(err)
			}
			got := readTar(t, b.Bytes())
			if want := []string{"out/", "out/f", "out/l"}; !reflect.DeepEqual(names(got), want) {
				t.Fatalf("names = %q", names(got))
			}
			for _, e := range got {
				if e.hdr.Uid != tt.uid || e.hdr.Gid != tt.gid {
					t.Errorf("%s owned by %d:%d, want %d:%d", e.hdr.Name, e.hdr.Uid, e.hdr.Gid, tt.uid, tt.gid)
				}
			}
			if got[1].hdr.Mode != tt.fileMode || got[2].hdr.Mode != tt.linkMode {
				t.Errorf("modes %o %o, want %o %o", got[1].hdr.Mode, got[2].hdr.Mode, tt.fileMode, tt.linkMode)
			}
			if got[2].hdr.Typeflag != tar.TypeSymlink || got[2].hdr.Linkname != "f" {
				t.Errorf("link = %+v", got[2].hdr)
			}
		})
	}
}

func TestCopyFromKeepsOwner(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to own files as another user")
	}
	dir := t.TempDir()
	writeTree(t, dir, tree{"opt/app/bin": "b", "opt/app/lib/": ""})
	for _, p := range []string{"opt/app/bin", "opt/app/lib"} {
		if err := os.Chown(filepath.Join(dir, p), 1000, 1001); err != nil {
			t.Fatal(err)
		}
	}
	r, err := NewRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	srcs, err := r.Resolve([]string{"/opt/app"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		opts     CopyOptions
		uid, gid int
	}{
		{CopyOptions{KeepOwner: true}, 1000, 1001},
		{CopyOptions{KeepOwner: true, Chown: "5:6"}, 5, 6},
		{CopyOptions{}, 0, 0},
	}
	for _, tt := range tests {
		es, err := Plan(context.Background(), srcs, "/app", tt.opts)
		if err != nil {
			t.Fatal(err)
		}
		if got := entryPaths(es); !reflect.DeepEqual(got, []string{"app/", "app/bin", "app/lib/"}) {
			t.Fatalf("entries %q", got)
		}
		for _, e := range es[1:] {
			if e.UID != tt.uid || e.GID != tt.gid {
				t.Errorf("%+v: %s owned by %d:%d, want %d:%d", tt.opts, e.Path, e.UID, e.GID, tt.uid, tt.gid)
			}
		}
	}
}

func TestSymlinkInsideDirectoryIsCopiedAsLink(t *testing.T) {
	outside := t.TempDir()
	writeTree(t, outside, tree{"secret": "s"})
	c, _ := openCtx(t, tree{"d/esc -> " + filepath.Join(outside, "secret"): "", "d/rel -> ../../x": ""})
	_, b := copyLayer(t, c, []string{"d"}, "/d", CopyOptions{}, LayerOptions{})
	got := readTar(t, b)
	if want := []string{"d/", "d/esc", "d/rel"}; !reflect.DeepEqual(names(got), want) {
		t.Fatalf("names %q", names(got))
	}
	for _, e := range got[1:] {
		if e.hdr.Typeflag != tar.TypeSymlink || e.body != "" {
			t.Errorf("%s: type %c body %q", e.hdr.Name, e.hdr.Typeflag, e.body)
		}
	}
}

func TestCancelled(t *testing.T) {
	c, _ := openCtx(t, tree{"d/a": "a"})
	srcs, _ := c.Resolve([]string{"d"})
	ctx, cancel := context.WithCancel(context.Background())
	es, err := Plan(ctx, srcs, "/x", CopyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	if _, err := Plan(ctx, srcs, "/x", CopyOptions{}); !errors.Is(err, context.Canceled) {
		t.Errorf("Plan: %v", err)
	}
	if _, err := Checksum(ctx, es); !errors.Is(err, context.Canceled) {
		t.Errorf("Checksum: %v", err)
	}
	if err := WriteLayer(ctx, es, &bytes.Buffer{}, LayerOptions{}); !errors.Is(err, context.Canceled) {
		t.Errorf("WriteLayer: %v", err)
	}
}
