package store_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sys/unix"

	"github.com/berthsh/berth/pkg/errdefs"
	"github.com/berthsh/berth/pkg/reference"
	"github.com/berthsh/berth/pkg/store"
	"github.com/berthsh/berth/pkg/store/storetest"
)

const (
	bigLayers    = 3
	bigLayerSize = 2 << 20
	blockEnv     = "BERTH_STORETEST_BLOCK_AFTER" // bytes of layer 1 before its source stalls
	throttleEnv  = "BERTH_STORETEST_THROTTLE"    // pause per 64 KiB read of every layer
)

// bigLayer is layer i of the image bigImage builds from seed; every process
// builds the same bytes.
func bigLayer(seed uint64, i int) v1.Layer {
	return storetest.Layer(seed*10+uint64(i), bigLayerSize)
}

// bigImage is an image of three 2 MiB layers.
func bigImage(t testing.TB, seed uint64) v1.Image {
	var ls []v1.Layer
	for i := range bigLayers {
		ls = append(ls, bigLayer(seed, i))
	}
	return storetest.NewImage(t, fmt.Sprintf("big-%d", seed), ls...)
}

// sourceImage wraps an image so the content of its layers comes through
// wrap, standing in for a registry that stalls, fails or lies.
type sourceImage struct {
	v1.Image
	wrap func(layer int, r io.Reader) io.Reader
}

func (i sourceImage) LayerByDigest(h v1.Hash) (v1.Layer, error) {
	l, err := i.Image.LayerByDigest(h)
	if err != nil {
		return nil, err
	}
	m, err := i.Image.Manifest()
	if err != nil {
		return nil, err
	}
	n := -1
	for j, d := range m.Layers {
		if d.Digest == h {
			n = j
		}
	}
	return sourceLayer{l, func(r io.Reader) io.Reader { return i.wrap(n, r) }}, nil
}

type sourceLayer struct {
	v1.Layer
	wrap func(io.Reader) io.Reader
}

func (l sourceLayer) Compressed() (io.ReadCloser, error) {
	rc, err := l.Layer.Compressed()
	if err != nil {
		return nil, err
	}
	return struct {
		io.Reader
		io.Closer
	}{l.wrap(rc), rc}, nil
}

// afterReader passes through n bytes of r, then calls at once and, if
// at returns an error, fails with it from then on.
type afterReader struct {
	r  io.Reader
	n  int64
	at func(p []byte) error
}

func (a *afterReader) Read(p []byte) (int, error) {
	if a.n <= 0 {
		if err := a.at(p); err != nil {
			return 0, err
		}
		return a.r.Read(p)
	}
	if int64(len(p)) > a.n {
		p = p[:a.n]
	}
	m, err := a.r.Read(p)
	a.n -= int64(m)
	return m, err
}

// flipReader inverts the byte at offset at of r.
type flipReader struct {
	r       io.Reader
	off, at int64
}

func (f *flipReader) Read(p []byte) (int, error) {
	n, err := f.r.Read(p)
	if f.at >= f.off && f.at < f.off+int64(n) {
		p[f.at-f.off] ^= 0xff
	}
	f.off += int64(n)
	return n, err
}

// throttledReader reads at most 64 KiB at a time, pausing before each.
type throttledReader struct {
	r     io.Reader
	pause time.Duration
}

func (t throttledReader) Read(p []byte) (int, error) {
	time.Sleep(t.pause)
	if len(p) > 64<<10 {
		p = p[:64<<10]
	}
	return t.r.Read(p)
}

// helperWrite writes bigImage(seed) as BERTH_STORETEST_NAME, its layer 1
// stalling for good after blockEnv bytes, or every layer throttled.
func helperWrite(ctx context.Context, s *store.Store, seed uint64) error {
	img := bigImage(helperTB{}, seed)
	block, _ := strconv.ParseInt(os.Getenv(blockEnv), 10, 64)
	pause, _ := time.ParseDuration(os.Getenv(throttleEnv))
	src := sourceImage{img, func(layer int, r io.Reader) io.Reader {
		if pause > 0 {
			r = throttledReader{r, pause}
		}
		if block > 0 && layer == 1 {
			r = &afterReader{r: r, n: block, at: func([]byte) error {
				for {
					time.Sleep(time.Hour) // a stalled connection; the parent kills us
				}
			}}
		}
		return r
	}}
	name, err := reference.Parse(os.Getenv("BERTH_STORETEST_NAME"))
	if err != nil {
		return err
	}
	_, err = s.WriteImage(ctx, src, store.WriteOptions{Names: []reference.Reference{name}})
	return err
}

// helperTagLoop moves names between the images in the store until killed.
func helperTagLoop(ctx context.Context, s *store.Store) error {
	for i := 0; ; i++ {
		to, err := reference.Parse(fmt.Sprintf("loop:%d", i%5))
		if err != nil {
			return err
		}
		if _, err := s.Tag(ctx, "base:v1", to); err != nil {
			return err
		}
		if _, err := s.Remove(ctx, to.String(), store.RemoveOptions{}); err != nil {
			return err
		}
	}
}

// helperTB lets helper processes use storetest's builders.
type helperTB struct{ testing.TB }

func (helperTB) Helper() {}
func (helperTB) Fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, format+"\n", args...)
	os.Exit(1)
}

// child is a running helper process.
type child struct {
	cmd  *exec.Cmd
	out  *bytes.Buffer
	done chan error
}

func startChild(t *testing.T, mode, dir string, env ...string) *child {
	t.Helper()
	c := &child{cmd: helperCmd(t, mode, dir, env...), out: &bytes.Buffer{}, done: make(chan error, 1)}
	c.cmd.Stdout, c.cmd.Stderr = c.out, c.out
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { c.done <- c.cmd.Wait() }()
	t.Cleanup(func() { c.kill() })
	return c
}

// kill SIGKILLs the child and waits for it. It reports whether the child
// had already exited, and how.
func (c *child) kill() (exited bool, err error) {
	select {
	case err := <-c.done:
		c.done <- err
		return true, err
	default:
	}
	c.cmd.Process.Signal(syscall.SIGKILL)
	err = <-c.done
	c.done <- err
	return false, err
}

func (c *child) exited() bool {
	select {
	case err := <-c.done:
		c.done <- err
		return true
	default:
		return false
	}
}

// waitFor polls cond until it holds, failing t if the child dies first or
// 30 s pass.
func waitFor(t *testing.T, c *child, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if c.exited() {
			_, err := c.kill()
			t.Fatalf("helper exited (%v) before %s: %s", err, what, c.out)
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s: %s", what, c.out)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func fileSize(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return -1
	}
	return fi.Size()
}

func hasBlobFile(dir string, d v1.Hash) bool {
	return fileSize(filepath.Join(dir, "blobs", d.Algorithm, d.Hex)) >= 0
}

func indexTemps(t *testing.T, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, ".index.json.tmp-*"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// baseStore creates a store holding base:v1, which shares layer 0 with
// bigImage(seed).
func baseStore(t *testing.T, seed uint64) (string, v1.Image) {
	t.Helper()
	dir := t.TempDir()
	s := openStore(t, dir)
	base := storetest.NewImage(t, "base", bigLayer(seed, 0), storetest.Layer(seed*10+9, 1000))
	if _, err := s.WriteImage(context.Background(), base, store.WriteOptions{Names: []reference.Reference{storetest.Ref(t, "base:v1")}}); err != nil {
		t.Fatal(err)
	}
	return dir, base
}

// checkRecovered checks a store after a writer of big as name died: it
// opens, is consistent, has name absent or complete, collects every
// leftover, and takes a second write of big.
func checkRecovered(t *testing.T, dir, name string, big, base v1.Image) (present bool) {
	t.Helper()
	ctx := context.Background()
	s := openStore(t, dir)
	if _, ingest, err := storetest.OnDisk(dir); err != nil || len(ingest) != 0 {
		t.Errorf("Open left ingest/ with %v (%v); no writer is active", ingest, err)
	}
	storetest.CheckConsistent(t, s)
	got, err := s.Get(ctx, name)
	switch {
	case errors.Is(err, errdefs.ErrNotFound):
	case err != nil:
		t.Fatalf("Get(%s): %v", name, err)
	default:
		present = true
		if want, _ := big.Digest(); got.Digest() != want {
			t.Errorf("%s is %s, want %s", name, got.Digest(), want)
		}
	}
	if b, err := s.Get(ctx, "base:v1"); err != nil || b.Digest() != mustDigest(t, base) {
		t.Errorf("base:v1 after the kill: %v", err)
	}
	if _, err := s.GC(ctx); err != nil {
		t.Fatalf("GC: %v", err)
	}
	storetest.CheckNoOrphans(t, s, dir)
	if tmp := indexTemps(t, dir); len(tmp) != 0 {
		t.Errorf("GC left temporary index files: %v", tmp)
	}
	storetest.CheckConsistent(t, s)

	if _, err := s.WriteImage(ctx, big, store.WriteOptions{Names: []reference.Reference{storetest.Ref(t, name)}}); err != nil {
		t.Fatalf("second WriteImage: %v", err)
	}
	if got, err := s.Get(ctx, name); err != nil || got.Digest() != mustDigest(t, big) {
		t.Errorf("after the second write Get(%s): %v", name, err)
	}
	if _, err := s.GC(ctx); err != nil {
		t.Fatal(err)
	}
	storetest.CheckConsistent(t, s)
	storetest.CheckNoOrphans(t, s, dir)
	return present
}

func mustDigest(t testing.TB, img v1.Image) v1.Hash {
	t.Helper()
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func writeEnv(seed uint64, name string, env ...string) []string {
	return append([]string{seedEnv + "=" + strconv.FormatUint(seed, 10), "BERTH_STORETEST_NAME=" + name}, env...)
}

// TestKillWriter SIGKILLs a process writing an image into the store at
// chosen points, then checks the store recovers.
func TestKillWriter(t *testing.T) {
	t.Parallel()

	t.Run("MidLayer", func(t *testing.T) {
		const seed, name = 1, "big:v1"
		dir, base := baseStore(t, seed)
		big := bigImage(t, seed)
		const stall = 1 << 20
		c := startChild(t, "write", dir, writeEnv(seed, name, fmt.Sprintf("%s=%d", blockEnv, stall))...)
		l2, _ := bigLayer(seed, 2).Digest()
		waitFor(t, c, "layer 2 stored and layer 1 half written", func() bool {
			if !hasBlobFile(dir, l2) {
				return false
			}
			_, ingest, _ := storetest.OnDisk(dir)
			for _, f := range ingest {
				if fileSize(filepath.Join(dir, "ingest", f)) >= stall {
					return true
				}
			}
			return false
		})
		if exited, err := c.kill(); exited {
			t.Fatalf("helper finished (%v) instead of stalling: %s", err, c.out)
		}
		if _, ingest, _ := storetest.OnDisk(dir); len(ingest) == 0 {
			t.Fatal("no partial write left in ingest/ by the killed writer")
		}
		if l1, _ := bigLayer(seed, 1).Digest(); hasBlobFile(dir, l1) {
			t.Fatal("stalled layer stored")
		}
		if checkRecovered(t, dir, name, big, base) {
			t.Errorf("%s present after its writer was killed mid-layer", name)
		}
	})

	t.Run("BeforeIndex", func(t *testing.T) {
		const seed, name = 2, "big:v2"
		dir, base := baseStore(t, seed)
		big := bigImage(t, seed)
		// Hold the index lock: the writer stores every blob, then waits
		// to record the name.
		lock, err := os.OpenFile(filepath.Join(dir, "index.lock"), os.O_RDWR|os.O_CREATE, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		defer lock.Close()
		if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX); err != nil {
			t.Fatal(err)
		}
		c := startChild(t, "write", dir, writeEnv(seed, name)...)
		md := mustDigest(t, big)
		waitFor(t, c, "manifest stored", func() bool { return hasBlobFile(dir, md) })
		time.Sleep(20 * time.Millisecond) // into the wait for the lock
		if exited, err := c.kill(); exited {
			t.Fatalf("helper finished (%v) while the index was locked: %s", err, c.out)
		}
		unix.Flock(int(lock.Fd()), unix.LOCK_UN)
		for _, b := range mustImageBlobs(t, big) {
			if !hasBlobFile(dir, b) {
				t.Errorf("blob %s not stored before the index update", b)
			}
		}
		if checkRecovered(t, dir, name, big, base) {
			t.Errorf("%s present although its writer was killed before recording it", name)
		}
	})

	t.Run("Finished", func(t *testing.T) {
		const seed, name = 3, "big:v3"
		dir, base := baseStore(t, seed)
		big := bigImage(t, seed)
		c := startChild(t, "write", dir, writeEnv(seed, name)...)
		if err := <-c.done; err != nil {
			t.Fatalf("helper: %v: %s", err, c.out)
		}
		c.done <- nil
		if !checkRecovered(t, dir, name, big, base) {
			t.Errorf("%s absent after its writer finished", name)
		}
	})

	// Kill a throttled writer at moments spread over its run: whatever
	// it was doing, the image is absent or complete.
	for i, delay := range []time.Duration{10 * time.Millisecond, 80 * time.Millisecond, 160 * time.Millisecond, 600 * time.Millisecond} {
		t.Run(fmt.Sprintf("After%s", delay), func(t *testing.T) {
			seed := uint64(10 + i)
			name := fmt.Sprintf("big:t%d", i)
			dir, base := baseStore(t, seed)
			big := bigImage(t, seed)
			c := startChild(t, "write", dir, writeEnv(seed, name, throttleEnv+"=5ms")...)
			time.Sleep(delay)
			exited, err := c.kill()
			if exited && err != nil {
				t.Fatalf("helper failed: %v: %s", err, c.out)
			}
			_, ingest, _ := storetest.OnDisk(dir)
			present := checkRecovered(t, dir, name, big, base)
			t.Logf("killed after %s: finished %v, partial blobs %d, image present %v", delay, exited, len(ingest), present)
			if exited && !present {
				t.Errorf("helper finished but %s is absent", name)
			}
		})
	}

	// Kill a process that rewrites index.json as fast as it can.
	t.Run("IndexUpdates", func(t *testing.T) {
		dir, base := baseStore(t, 4)
		big := bigImage(t, 4)
		for i := range 3 {
			c := startChild(t, "tagloop", dir)
			time.Sleep(time.Duration(50+60*i) * time.Millisecond)
			if exited, err := c.kill(); exited {
				t.Fatalf("tag loop exited: %v: %s", err, c.out)
			}
			s := openStore(t, dir)
			if _, err := s.List(context.Background()); err != nil {
				t.Fatalf("List after a kill during index updates: %v", err)
			}
		}
		checkRecovered(t, dir, "big:v4", big, base)
	})

	// Kill processes running the mixed workload.
	t.Run("Churn", func(t *testing.T) {
		dir := t.TempDir()
		openStore(t, dir)
		var cs []*child
		for i := range 3 {
			cs = append(cs, startChild(t, "churn", dir, seedEnv+"="+strconv.Itoa(200+i), "BERTH_STORETEST_ITERS=100000"))
		}
		time.Sleep(400 * time.Millisecond)
		for _, c := range cs {
			if exited, err := c.kill(); exited && err != nil {
				t.Fatalf("churn helper failed: %v: %s", err, c.out)
			}
		}
		s := openStore(t, dir)
		storetest.CheckConsistent(t, s)
		if _, err := s.GC(context.Background()); err != nil {
			t.Fatal(err)
		}
		storetest.CheckConsistent(t, s)
		storetest.CheckNoOrphans(t, s, dir)
		if tmp := indexTemps(t, dir); len(tmp) != 0 {
			t.Errorf("GC left temporary index files: %v", tmp)
		}
	})
}

func mustImageBlobs(t testing.TB, img v1.Image) []v1.Hash {
	t.Helper()
	bs, err := storetest.ImageBlobs(img)
	if err != nil {
		t.Fatal(err)
	}
	return bs
}

// TestInterruptedWrite fails a write part-way in process: cancelled, the
// source failing, or the source sending the wrong bytes.
func TestInterruptedWrite(t *testing.T) {
	t.Parallel()
	errSource := errors.New("connection reset by registry")
	tests := []struct {
		name    string
		wrap    func(cancel func(), layer int, r io.Reader) io.Reader
		wantErr error
	}{
		{"Cancel", func(cancel func(), layer int, r io.Reader) io.Reader {
			if layer != 1 {
				return r
			}
			return &afterReader{r: r, n: 512 << 10, at: func([]byte) error { cancel(); return nil }}
		}, context.Canceled},
		{"SourceError", func(_ func(), layer int, r io.Reader) io.Reader {
			if layer != 1 {
				return r
			}
			return &afterReader{r: r, n: 512 << 10, at: func([]byte) error { return errSource }}
		}, errSource},
		{"SourceLies", func(_ func(), layer int, r io.Reader) io.Reader {
			if layer != 1 {
				return r
			}
			return &flipReader{r: r, at: 512 << 10}
		}, errdefs.ErrDataCorrupt},
		{"SourceShort", func(_ func(), layer int, r io.Reader) io.Reader {
			if layer != 1 {
				return r
			}
			return io.LimitReader(r, 512<<10)
		}, errdefs.ErrDataCorrupt},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			seed := uint64(20 + i)
			dir, base := baseStore(t, seed)
			big := bigImage(t, seed)
			s := openStore(t, dir)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			src := sourceImage{big, func(layer int, r io.Reader) io.Reader { return tc.wrap(cancel, layer, r) }}
			_, err := s.WriteImage(ctx, src, store.WriteOptions{Names: []reference.Reference{storetest.Ref(t, "big:v1")}})
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("WriteImage: %v, want %v", err, tc.wantErr)
			}
			if l1, _ := bigLayer(seed, 1).Digest(); s.HasBlob(context.Background(), l1) {
				t.Error("the interrupted layer was stored")
			}
			if checkRecovered(t, dir, "big:v1", big, base) {
				t.Error("name recorded for a failed write")
			}
		})
	}
}

// TestAbandonedWriter: a blob writer whose owner went away without closing
// it is cleaned up by the next GC, and cannot commit afterwards.
func TestAbandonedWriter(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	s := openStore(t, dir)
	l, err := s.Lease(ctx)
	if err != nil {
		t.Fatal(err)
	}
	w, err := s.NewWriter(ctx)
	if err != nil {
		t.Fatal(err)
	}
	data := storetest.Bytes(30, 100000)
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	l.Release()
	if _, ingest, _ := storetest.OnDisk(dir); len(ingest) != 1 {
		t.Fatalf("ingest/ = %v, want the partial blob", ingest)
	}
	if _, err := s.GC(ctx); err != nil {
		t.Fatal(err)
	}
	if _, ingest, _ := storetest.OnDisk(dir); len(ingest) != 0 {
		t.Errorf("GC left ingest/ = %v", ingest)
	}
	if _, err := w.Commit(ctx, storetest.Digest(data), int64(len(data))); err == nil {
		t.Error("Commit of a writer whose file GC removed succeeded")
	}
	if s.HasBlob(ctx, storetest.Digest(data)) {
		t.Error("blob stored from a collected writer")
	}
	w.Close()
}

// TestFullDisk puts the store on a 2 MiB tmpfs and writes more than fits.
func TestFullDisk(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a tmpfs")
	}
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size=2m"); err != nil {
		t.Skipf("cannot mount a tmpfs here: %v", err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	s := openStore(t, dir)
	small := storetest.NewImage(t, "small", storetest.Layer(40, 100<<10), storetest.Layer(41, 100<<10))
	if _, err := s.WriteImage(ctx, small, store.WriteOptions{Names: []reference.Reference{storetest.Ref(t, "small:v1")}}); err != nil {
		t.Fatal(err)
	}

	big := storetest.NewImage(t, "toobig", storetest.Layer(42, 1<<20), storetest.Layer(43, 1<<20), storetest.Layer(44, 1<<20))
	_, err := s.WriteImage(ctx, big, store.WriteOptions{Names: []reference.Reference{storetest.Ref(t, "big:v1")}})
	if !errors.Is(err, syscall.ENOSPC) || !strings.Contains(err.Error(), "no space left") {
		t.Fatalf("WriteImage bigger than the disk: %v, want ENOSPC saying no space is left", err)
	}
	if _, err := s.Get(ctx, "big:v1"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("Get(big:v1) after a failed write: %v, want ErrNotFound", err)
	}
	storetest.CheckConsistent(t, s)
	if _, err := s.GC(ctx); err != nil {
		t.Fatal(err)
	}
	storetest.CheckNoOrphans(t, s, dir)
	// The space came back.
	small2 := storetest.NewImage(t, "small2", storetest.Layer(45, 300<<10))
	if _, err := s.WriteImage(ctx, small2, store.WriteOptions{Names: []reference.Reference{storetest.Ref(t, "small:v2")}}); err != nil {
		t.Fatalf("write after GC: %v", err)
	}

	// Fill the disk to the last byte: an index update fails and leaves
	// index.json as it was.
	before, err := os.ReadFile(filepath.Join(dir, "index.json"))
	if err != nil {
		t.Fatal(err)
	}
	fill(t, filepath.Join(dir, "filler"))
	if _, err := s.Tag(ctx, "small:v1", storetest.Ref(t, "small:v3")); !errors.Is(err, syscall.ENOSPC) {
		t.Errorf("Tag on a full disk: %v, want ENOSPC", err)
	}
	if after, _ := os.ReadFile(filepath.Join(dir, "index.json")); !bytes.Equal(before, after) {
		t.Error("index.json changed by a failed update")
	}
	if tmp := indexTemps(t, dir); len(tmp) != 0 {
		t.Errorf("failed index update left %v", tmp)
	}
	if _, err := s.Get(ctx, "small:v3"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("name from a failed Tag: %v", err)
	}
	storetest.CheckConsistent(t, s)
	if err := os.Remove(filepath.Join(dir, "filler")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Tag(ctx, "small:v1", storetest.Ref(t, "small:v3")); err != nil {
		t.Errorf("Tag with space again: %v", err)
	}
}

// fill writes path until the file system is full.
func fill(t *testing.T, path string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 4096)
	for {
		if _, err := f.Write(buf); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatal(err)
			}
			break
		}
	}
	// A partial page may still take a few bytes.
	for {
		if _, err := f.Write(buf[:1]); err != nil {
			break
		}
	}
}

// TestCorruptIndex: a damaged index.json is reported as such, naming the
// file, and no operation panics, rewrites it or deletes blobs because of
// it.
func TestCorruptIndex(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		content string
	}{
		{"garbage", "this is not json\x00\x01"},
		{"empty", ""},
		{"zeros", strings.Repeat("\x00", 512)},
		{"truncated", `{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:`},
		{"wrong type", `{"schemaVersion":2,"manifests":"none"}`},
		{"bad digest", `{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","size":1,"digest":"nonsense"}]}`},
		{"null", "null"},
		{"empty object", "{}"},
		{"array", "[]"},
		{"wrong schema version", `{"schemaVersion":1,"manifests":[]}`},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			dir := t.TempDir()
			s := openStore(t, dir)
			img := storetest.NewImage(t, "corrupt-index", storetest.Layer(uint64(50+i), 1000))
			if _, err := s.WriteImage(ctx, img, store.WriteOptions{Names: []reference.Reference{storetest.Ref(t, "app:v1")}}); err != nil {
				t.Fatal(err)
			}
			index := filepath.Join(dir, "index.json")
			if err := os.WriteFile(index, []byte(tc.content), 0o644); err != nil {
				t.Fatal(err)
			}
			blobsBefore, _, _ := storetest.OnDisk(dir)

			s = openStore(t, dir)
			_, err := s.List(ctx)
			if !errors.Is(err, errdefs.ErrDataCorrupt) {
				t.Errorf("List: %v, want ErrDataCorrupt", err)
			} else if !strings.Contains(err.Error(), index) {
				t.Errorf("List error %q does not name %s", err, index)
			}
			other := storetest.NewImage(t, "other", storetest.Layer(uint64(60+i), 1000))
			ops := map[string]func() error{
				"Get":        func() error { _, err := s.Get(ctx, "app:v1"); return err },
				"Tag":        func() error { _, err := s.Tag(ctx, "app:v1", storetest.Ref(t, "app:v2")); return err },
				"Remove":     func() error { _, err := s.Remove(ctx, "app:v1", store.RemoveOptions{Force: true}); return err },
				"WriteImage": func() error { _, err := s.WriteImage(ctx, other, store.WriteOptions{}); return err },
				"Verify":     func() error { _, err := s.Verify(ctx); return err },
				"GC":         func() error { _, err := s.GC(ctx); return err },
				"Prune":      func() error { _, err := s.Prune(ctx, store.PruneOptions{All: true}); return err },
			}
			for name, op := range ops {
				if err := op(); !errors.Is(err, errdefs.ErrDataCorrupt) {
					t.Errorf("%s: %v, want ErrDataCorrupt", name, err)
				}
			}
			if got, _ := os.ReadFile(index); string(got) != tc.content {
				t.Errorf("index.json rewritten: %q", got)
			}
			blobsAfter, _, _ := storetest.OnDisk(dir)
			for b := range blobsBefore {
				if !blobsAfter[b] {
					t.Errorf("blob %s deleted while the index was unreadable", b)
				}
			}
		})
	}
}

// TestGCRemovesStaleIndexTemp: the temporary file of an index update that
// was killed before its rename is collected by GC, and only that.
func TestGCRemovesStaleIndexTemp(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	s := openStore(t, dir)
	stale := filepath.Join(dir, ".index.json.tmp-123456")
	if err := os.WriteFile(stale, []byte(`{"schemaVersion":2,"manifests":[`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := s.List(ctx); err != nil {
		t.Fatalf("List with a stale temporary index: %v", err)
	}
	if _, err := s.GC(ctx); err != nil {
		t.Fatal(err)
	}
	if tmp := indexTemps(t, dir); len(tmp) != 0 {
		t.Errorf("GC left %v", tmp)
	}
	for _, f := range []string{"index.json", "oci-layout"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("GC removed %s: %v", f, err)
		}
	}
}
