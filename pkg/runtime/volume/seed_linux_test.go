package volume

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berthsh/berth/pkg/errdefs"
)

var past = time.Date(2020, 1, 2, 3, 4, 5, 600000000, time.UTC)

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// seedSource builds the tree an image would have at a VOLUME path, next
// to a directory outside it that must never be copied. It reports whether
// the file system took a user extended attribute.
func seedSource(t *testing.T) (src string, xattrs bool) {
	t.Helper()
	base := t.TempDir()
	src = filepath.Join(base, "rootfs", "var", "lib", "app")
	outside := filepath.Join(base, "outside")
	must(t, os.MkdirAll(filepath.Join(src, "sub"), 0o755))
	must(t, os.MkdirAll(outside, 0o755))
	must(t, os.WriteFile(filepath.Join(outside, "secret"), []byte("host secret"), 0o600))

	must(t, os.WriteFile(filepath.Join(src, "a.txt"), []byte("hello"), 0o644))
	must(t, os.Chmod(filepath.Join(src, "a.txt"), 0o640))
	must(t, os.WriteFile(filepath.Join(src, "sub", "tool"), []byte("#!/bin/sh\n"), 0o755))
	must(t, unix.Chmod(filepath.Join(src, "sub", "tool"), 0o4755))
	must(t, os.Link(filepath.Join(src, "a.txt"), filepath.Join(src, "sub", "a-link")))
	must(t, os.Symlink("../../../outside", filepath.Join(src, "escape")))
	must(t, os.Symlink(filepath.Join(outside, "secret"), filepath.Join(src, "abs-escape")))
	must(t, os.Symlink("a.txt", filepath.Join(src, "rel")))
	must(t, unix.Mkfifo(filepath.Join(src, "fifo"), 0o600))
	must(t, unix.Chmod(filepath.Join(src, "fifo"), 0o620))
	xattrs = unix.Lsetxattr(filepath.Join(src, "a.txt"), "user.berth", []byte("v"), 0) == nil

	if os.Geteuid() == 0 {
		must(t, os.Lchown(filepath.Join(src, "a.txt"), 1234, 5678))
		must(t, os.Lchown(filepath.Join(src, "rel"), 4321, 8765))
		must(t, os.Lchown(filepath.Join(src, "sub"), 1000, 1000))
		must(t, os.Lchown(src, 999, 998))
		// chown cleared the set-user-ID bit.
		must(t, os.Lchown(filepath.Join(src, "sub", "tool"), 0, 0))
		must(t, unix.Chmod(filepath.Join(src, "sub", "tool"), 0o4755))
	}
	must(t, os.Chmod(src, 0o751))
	ts := []unix.Timespec{unix.NsecToTimespec(past.UnixNano()), unix.NsecToTimespec(past.UnixNano())}
	for _, p := range []string{"a.txt", "rel", "sub", "."} {
		must(t, unix.UtimesNanoAt(unix.AT_FDCWD, filepath.Join(src, p), ts, unix.AT_SYMLINK_NOFOLLOW))
	}
	return src, xattrs
}

func lstat(t *testing.T, p string) *unix.Stat_t {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		t.Fatal(err)
	}
	return &st
}

func TestSeed(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	v := mustCreate(t, s, "appdata", CreateOptions{})
	src, xattrs := seedSource(t)
	// A leftover of a killed Seed is cleaned up.
	must(t, os.Mkdir(filepath.Join(s.Dir(), "appdata", seedPrefix+"killed"), 0o700))

	seeded, err := s.Seed(ctx, "appdata", src)
	if err != nil || !seeded {
		t.Fatalf("Seed = %v, %v; want true", seeded, err)
	}
	d := v.Mountpoint

	if b, err := os.ReadFile(filepath.Join(d, "a.txt")); err != nil || string(b) != "hello" {
		t.Errorf("a.txt = %q, %v", b, err)
	}
	// Symlinks are copied as symlinks and never followed.
	for _, name := range []string{"escape", "abs-escape", "rel"} {
		target, err := os.Readlink(filepath.Join(src, name))
		must(t, err)
		fi, err := os.Lstat(filepath.Join(d, name))
		if err != nil || fi.Mode()&os.ModeSymlink == 0 {
			t.Errorf("%s: %v, %v; want a symlink", name, fi, err)
			continue
		}
		if got, _ := os.Readlink(filepath.Join(d, name)); got != target {
			t.Errorf("%s -> %q, want %q", name, got, target)
		}
	}
	// Modes, including set-user-ID.
	for name, want := range map[string]uint32{"a.txt": 0o640, "sub/tool": 0o4755, "fifo": 0o620, "sub": 0o755, ".": 0o751} {
		if got := lstat(t, filepath.Join(d, name)).Mode & 0o7777; got != want {
			t.Errorf("%s mode %o, want %o", name, got, want)
		}
	}
	if st := lstat(t, filepath.Join(d, "fifo")); st.Mode&unix.S_IFMT != unix.S_IFIFO {
		t.Errorf("fifo copied as mode %o", st.Mode)
	}
	// Hard links stay linked.
	a, link := lstat(t, filepath.Join(d, "a.txt")), lstat(t, filepath.Join(d, "sub", "a-link"))
	if a.Ino != link.Ino || a.Nlink != 2 {
		t.Errorf("hard link lost: inodes %d and %d, nlink %d", a.Ino, link.Ino, a.Nlink)
	}
	// Timestamps, directories' too.
	for _, name := range []string{"a.txt", "rel", "sub", "."} {
		if got := time.Unix(lstat(t, filepath.Join(d, name)).Mtim.Unix()); !got.Equal(past) {
			t.Errorf("%s mtime %v, want %v", name, got, past)
		}
	}
	if xattrs {
		buf := make([]byte, 16)
		n, err := unix.Lgetxattr(filepath.Join(d, "a.txt"), "user.berth", buf)
		if err != nil || string(buf[:n]) != "v" {
			t.Errorf("xattr user.berth = %q, %v", buf[:n], err)
		}
	}
	if os.Geteuid() == 0 {
		for name, want := range map[string][2]uint32{"a.txt": {1234, 5678}, "rel": {4321, 8765}, "sub": {1000, 1000}, ".": {999, 998}} {
			if st := lstat(t, filepath.Join(d, name)); st.Uid != want[0] || st.Gid != want[1] {
				t.Errorf("%s owned by %d:%d, want %d:%d", name, st.Uid, st.Gid, want[0], want[1])
			}
		}
	}
	// Nothing but the data and metadata is left in the volume directory.
	if got := dirNames(t, filepath.Join(s.Dir(), "appdata")); len(got) != 2 || got[0] != dataDir || got[1] != metaFile {
		t.Errorf("volume directory holds %v", got)
	}
	if v, err := s.Get(ctx, "appdata"); err != nil || !v.Seeded {
		t.Errorf("Get after Seed = %+v, %v; want Seeded", v, err)
	}

	// Seeding happens once: emptied, the volume is not seeded again.
	emptyDir(d)
	if seeded, err := s.Seed(ctx, "appdata", src); err != nil || seeded {
		t.Errorf("second Seed = %v, %v; want false", seeded, err)
	}
	if names := dirNames(t, d); len(names) != 0 {
		t.Errorf("second Seed copied %v", names)
	}
}

func TestSeedSkips(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	src, _ := seedSource(t)

	// A volume that already has data is left alone, and not marked.
	full := mustCreate(t, s, "full", CreateOptions{})
	must(t, os.WriteFile(filepath.Join(full.Mountpoint, "mine"), []byte("keep"), 0o600))
	if seeded, err := s.Seed(ctx, "full", src); err != nil || seeded {
		t.Errorf("Seed of a non-empty volume = %v, %v; want false", seeded, err)
	}
	if names := dirNames(t, full.Mountpoint); len(names) != 1 || names[0] != "mine" {
		t.Errorf("non-empty volume now holds %v", names)
	}
	if v, _ := s.Get(ctx, "full"); v.Seeded {
		t.Error("non-empty volume marked seeded")
	}

	vol := mustCreate(t, s, "vol", CreateOptions{})
	link := filepath.Join(t.TempDir(), "link")
	must(t, os.Symlink(src, link))
	emptySrc := t.TempDir()
	must(t, os.Chmod(emptySrc, 0o700))
	tests := []struct {
		desc string
		src  string
	}{
		{"missing source", filepath.Join(src, "nope")},
		{"source is a file", filepath.Join(src, "a.txt")},
		{"source is a symlink", link},
		{"empty source", emptySrc},
	}
	for _, tt := range tests {
		if seeded, err := s.Seed(ctx, "vol", tt.src); err != nil || seeded {
			t.Errorf("%s: Seed = %v, %v; want false", tt.desc, seeded, err)
		}
	}
	if names := dirNames(t, vol.Mountpoint); len(names) != 0 {
		t.Errorf("volume now holds %v", names)
	}
	// The empty source still lent its mode to the data directory.
	if got := lstat(t, vol.Mountpoint).Mode & 0o7777; got != 0o700 {
		t.Errorf("data directory mode %o, want 0700 from the empty source", got)
	}
	// An unseeded volume still takes content later.
	if seeded, err := s.Seed(ctx, "vol", src); err != nil || !seeded {
		t.Errorf("Seed after the skips = %v, %v; want true", seeded, err)
	}

	if _, err := s.Seed(ctx, "nope", src); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("Seed of a missing volume = %v, want ErrNotFound", err)
	}
}

func TestSeedConcurrent(t *testing.T) {
	s := openStore(t)
	src, _ := seedSource(t)
	mustCreate(t, s, "shared", CreateOptions{})
	const n = 4
	var wg sync.WaitGroup
	seeded := make([]bool, n)
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			seeded[i], errs[i] = s.Seed(context.Background(), "shared", src)
		}()
	}
	wg.Wait()
	count := 0
	for i := range n {
		if errs[i] != nil {
			t.Errorf("Seed %d: %v", i, errs[i])
		}
		if seeded[i] {
			count++
		}
	}
	if count != 1 {
		t.Errorf("%d Seeds copied, want exactly 1", count)
	}
}

// countdownCtx is a context that reports itself cancelled after its Err
// method has been called n times: a copy interrupted half way.
type countdownCtx struct {
	context.Context
	mu sync.Mutex
	n  int
}

func (c *countdownCtx) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n <= 0 {
		return context.Canceled
	}
	c.n--
	return nil
}

// TestSeedFailureLeavesEmpty: a copy that fails half way leaves the volume
// empty and unseeded, and a later Seed still works.
func TestSeedFailureLeavesEmpty(t *testing.T) {
	s := openStore(t)
	src, _ := seedSource(t)
	v := mustCreate(t, s, "vol", CreateOptions{})
	ctx := &countdownCtx{Context: context.Background(), n: 4}
	if seeded, err := s.Seed(ctx, "vol", src); !errors.Is(err, context.Canceled) || seeded {
		t.Fatalf("Seed = %v, %v; want context.Canceled", seeded, err)
	}
	if names := dirNames(t, v.Mountpoint); len(names) != 0 {
		t.Errorf("failed Seed left %v", names)
	}
	if got := dirNames(t, filepath.Join(s.Dir(), "vol")); len(got) != 2 {
		t.Errorf("failed Seed left %v in the volume directory", got)
	}
	if v, _ := s.Get(context.Background(), "vol"); v.Seeded {
		t.Error("failed Seed marked the volume seeded")
	}
	if seeded, err := s.Seed(context.Background(), "vol", src); err != nil || !seeded {
		t.Errorf("Seed after a failed one = %v, %v; want true", seeded, err)
	}
}

func TestRemoveWaitsForSeed(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	mustCreate(t, s, "v1", CreateOptions{})
	held, err := lockDir(ctx, filepath.Join(s.Dir(), "v1"))
	must(t, err)
	done := make(chan error, 1)
	go func() { done <- s.Remove(ctx, "v1", RemoveOptions{}) }()
	select {
	case err := <-done:
		t.Fatalf("Remove finished (%v) while the volume was locked by a Seed", err)
	case <-time.After(100 * time.Millisecond):
	}
	held.Unlock()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// A Seed that waited for the lock finds the volume gone.
	if _, err := s.Seed(ctx, "v1", t.TempDir()); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("Seed of a removed volume = %v, want ErrNotFound", err)
	}
}
