package e2e

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// startTimeout bounds how long a test waits for a berth process to get to
// the point where it is killed.
const startTimeout = 30 * time.Second

// TestKillDuringPull kills a pull while layers are still arriving and
// checks that the store stays sound, names nothing, and that the next pull
// completes and leaves exactly the image's blobs once garbage is collected.
func TestKillDuringPull(t *testing.T) {
	t.Parallel()
	reg := startFaultRegistry(t, "", "")
	img := imageOf(t, randomLayer(t, 4<<20), randomLayer(t, 4<<20), randomLayer(t, 3<<20))
	ref := reg.push(t, "e2e/killpull:1", img)
	want := imageBlobs(t, img)

	b := newBerth(t)
	reg.throttle.Store(true)
	cmd, out := b.start(t, "pull", ref)
	b.killWhen(t, cmd, out, "a partial blob in ingest/", func() bool { return b.ingestHolds(256 << 10) })
	t.Logf("killed pull after %d blob requests; ingest/ held %q", reg.blobGets.Load(), b.ingestFiles(t))

	if names := b.names(t); len(names) > 0 {
		t.Errorf("after a killed pull, berth images lists %q, want nothing", names)
	}
	if ids := strings.TrimSpace(b.ok(t, "images", "-q")); ids != "" {
		t.Errorf("after a killed pull, berth images -q prints %q, want nothing", ids)
	}
	b.verify(t)

	reg.throttle.Store(false)
	b.ok(t, "pull", ref)
	b.verify(t)
	if names := b.names(t); !equalStrings(names, []string{ref}) {
		t.Errorf("after the second pull, berth images lists %q, want [%s]", names, ref)
	}
	b.checkNoOrphans(t)
	if have := b.blobFiles(t); !equalStrings(have, want) {
		t.Errorf("store holds blobs %q, want exactly the image's manifest, config and layers %q", have, want)
	}
}

// TestKillDuringLoad kills a load that reads an archive from a pipe fed
// slowly, then checks the store as TestKillDuringPull does and that loading
// the whole archive gives the image the ID it had where it was saved.
func TestKillDuringLoad(t *testing.T) {
	t.Parallel()
	src := newBerth(t)
	rootfs := randomRootfsTar(t, 6<<20)
	if res := src.exec(t, bytes.NewReader(rootfs), "import", "-", "e2e/load:1"); res.code != 0 {
		t.Fatalf("import: want exit 0:\n%s", res)
	}
	wantID := src.id(t, "e2e/load:1")
	archivePath := filepath.Join(t.TempDir(), "load.tar")
	src.ok(t, "save", "-o", archivePath, "e2e/load:1")
	archive, err := os.ReadFile(archivePath)
	if err != nil {
		t.Fatal(err)
	}
	if len(archive) < 6<<20 {
		t.Fatalf("berth save wrote %d bytes, want at least the 6 MiB of random content", len(archive))
	}

	b := newBerth(t)
	cmd, out, stdin := b.startWithStdin(t, "load")
	half := len(archive) / 2
	var fed atomic.Bool
	go func() {
		// Only the first half, slowly: the load cannot finish before it
		// is killed.
		for off := 0; off < half; off += 64 << 10 {
			if _, err := stdin.Write(archive[off:min(off+64<<10, half)]); err != nil {
				return
			}
			time.Sleep(time.Millisecond)
		}
		fed.Store(true)
	}()
	b.killWhen(t, cmd, out, "half the archive spooled into ingest/", func() bool {
		return fed.Load() && b.ingestHolds(int64(half)/2)
	})
	t.Logf("killed load; ingest/ held %q", b.ingestFiles(t))

	if names := b.names(t); len(names) > 0 {
		t.Errorf("after a killed load, berth images lists %q, want nothing", names)
	}
	if ids := strings.TrimSpace(b.ok(t, "images", "-q")); ids != "" {
		t.Errorf("after a killed load, berth images -q prints %q, want nothing", ids)
	}
	b.verify(t)

	res := b.exec(t, bytes.NewReader(archive), "load")
	if res.code != 0 || !strings.Contains(res.stdout, "Loaded image: e2e/load:1") {
		t.Fatalf("second load: want exit 0 and 'Loaded image: e2e/load:1':\n%s", res)
	}
	b.verify(t)
	if names := b.names(t); !equalStrings(names, []string{"e2e/load:1"}) {
		t.Errorf("after the second load, berth images lists %q, want [e2e/load:1]", names)
	}
	if id := b.id(t, "e2e/load:1"); id != wantID {
		t.Errorf("loaded image has ID %s, want %s (its ID in the store it was saved from)", id, wantID)
	}
	b.checkNoOrphans(t)
	if n := len(b.blobFiles(t)); n != 3 {
		t.Errorf("store holds %d blobs after loading a one-layer image, want 3 (manifest, config, layer)", n)
	}
}

// TestConcurrentProcesses runs eight berth processes at a time on one
// store, mixing pulls of images that share a base layer with tag, rmi and
// image prune, and checks that no process crashes or sees damage and that
// every image left afterwards is whole.
func TestConcurrentProcesses(t *testing.T) {
	t.Parallel()
	const workers, rounds = 8, 6
	reg := startFaultRegistry(t, "", "")
	base := randomLayer(t, 1<<20)
	var refs []string
	for i := range 3 {
		refs = append(refs, reg.push(t, fmt.Sprintf("e2e/app%d:1", i), imageOf(t, base, randomLayer(t, 256<<10))))
	}
	b := newBerth(t)

	// op returns worker i's command in round r; every round runs each of
	// the eight kinds once.
	op := func(i, r int) []string {
		alias := func(k int) string { return fmt.Sprintf("e2e/alias:a%d", k%2) }
		switch (i + r) % workers {
		case 0:
			return []string{"pull", "-q", refs[(i+r)%3]}
		case 1:
			return []string{"pull", "-q", refs[(i+r+1)%3]}
		case 2:
			return []string{"tag", refs[(i+r)%3], alias(i + r)}
		case 3:
			return []string{"rmi", refs[(i+r+2)%3]}
		case 4:
			return []string{"rmi", alias(i + r + 1)}
		case 5:
			return []string{"image", "prune", "-f"}
		case 6:
			return []string{"pull", "-q", refs[(i+r+2)%3]}
		default:
			return []string{"rmi", refs[(i+r)%3]}
		}
	}
	noSuchImage := regexp.MustCompile(`^Error: No such image: \S+$`)
	var succeeded, lostRace int
	for r := range rounds {
		results := make([]result, workers)
		hung := make([]bool, workers)
		var wg sync.WaitGroup
		for i := range workers {
			wg.Go(func() { results[i], hung[i] = b.run(t.Context(), nil, op(i, r)...) })
		}
		wg.Wait()
		for i, res := range results {
			switch {
			case hung[i]:
				t.Errorf("round %d: hung:\n%s", r, res)
			case crashed(res):
				t.Errorf("round %d: crash or damage reported:\n%s", r, res)
			case res.code == 0:
				succeeded++
			case res.code == 1 && allLinesMatch(res.stderr, noSuchImage):
				// Lost a race against an rmi or prune: acceptable.
				lostRace++
			default:
				t.Errorf("round %d: failed with something other than 'No such image':\n%s", r, res)
			}
		}
	}
	t.Logf("%d commands succeeded, %d found their image gone", succeeded, lostRace)
	if t.Failed() {
		t.FailNow()
	}

	b.verify(t)
	checkWhole := func(when string) int {
		n := 0
		for _, name := range b.names(t) {
			if strings.Contains(name, "<none>") {
				continue
			}
			n++
			b.id(t, name)
			out := filepath.Join(t.TempDir(), "save.tar")
			if res := b.exec(t, nil, "save", "-o", out, name); res.code != 0 {
				t.Errorf("%s: save %s: want exit 0 (all blobs present and intact):\n%s", when, name, res)
			}
		}
		return n
	}
	t.Logf("after %d rounds: %d names, all whole", rounds, checkWhole("after the concurrent rounds"))

	// Pulls after the chaos must restore every image, downloading whatever
	// the others removed.
	for _, ref := range refs {
		b.ok(t, "pull", "-q", ref)
	}
	b.verify(t)
	if n := checkWhole("after pulling every image again"); n < len(refs) {
		t.Errorf("berth images lists %d names after pulling %d images, want at least %d", n, len(refs), len(refs))
	}
	b.checkNoOrphans(t)
}

// crashed reports whether a berth process died abnormally or reported
// damage in the store.
func crashed(res result) bool {
	if res.code != 0 && res.code != 1 {
		return true
	}
	s := strings.ToLower(res.stderr + res.stdout)
	for _, bad := range []string{"panic", "goroutine ", "fatal error", "corrupt", "data race"} {
		if strings.Contains(s, bad) {
			return true
		}
	}
	return false
}

// allLinesMatch reports whether s has at least one line and every
// non-empty line matches re.
func allLinesMatch(s string, re *regexp.Regexp) bool {
	lines := nonEmptyLines(s)
	for _, l := range lines {
		if !re.MatchString(l) {
			return false
		}
	}
	return len(lines) > 0
}

func nonEmptyLines(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.TrimSpace(l) != "" {
			out = append(out, l)
		}
	}
	return out
}

// TestBadInput checks that pulls which cannot work fail with one clear
// error line, the right exit code, and nothing left in the store.
func TestBadInput(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		// setup returns the pull argument and a string the error must
		// mention (the thing that is wrong).
		setup    func(t *testing.T, b *berth) (arg, mention string)
		wantCode int
	}{
		{
			name: "wrong credentials",
			setup: func(t *testing.T, b *berth) (string, string) {
				reg := startFaultRegistry(t, "alice", "s3cret")
				ref := reg.push(t, "e2e/private:1", imageOf(t, randomLayer(t, 64<<10)))
				b.writeDockerAuth(t, reg.host, "alice", "wrong")
				return ref, "e2e/private"
			},
			wantCode: 1,
		},
		{
			name: "no credentials",
			setup: func(t *testing.T, b *berth) (string, string) {
				reg := startFaultRegistry(t, "alice", "s3cret")
				ref := reg.push(t, "e2e/private:1", imageOf(t, randomLayer(t, 64<<10)))
				return ref, "e2e/private"
			},
			wantCode: 1,
		},
		{
			name: "unreachable registry",
			setup: func(t *testing.T, b *berth) (string, string) {
				host := closedPort(t)
				return host + "/e2e/x:1", host
			},
			wantCode: 1,
		},
		{
			name: "unknown tag",
			setup: func(t *testing.T, b *berth) (string, string) {
				reg := startFaultRegistry(t, "", "")
				reg.push(t, "e2e/known:1", imageOf(t, randomLayer(t, 64<<10)))
				return reg.host + "/e2e/known:nope", "nope"
			},
			wantCode: 1,
		},
		{
			name: "unknown repository",
			setup: func(t *testing.T, b *berth) (string, string) {
				reg := startFaultRegistry(t, "", "")
				return reg.host + "/e2e/nothing:1", "e2e/nothing"
			},
			wantCode: 1,
		},
		{
			name: "corrupt layer download",
			setup: func(t *testing.T, b *berth) (string, string) {
				reg := startFaultRegistry(t, "", "")
				ref := reg.push(t, "e2e/damaged:1", imageOf(t, randomLayer(t, 64<<10), randomLayer(t, 512<<10)))
				reg.corrupt.Store(true)
				return ref, "corrupt"
			},
			wantCode: 1,
		},
		{
			name: "malformed reference",
			setup: func(t *testing.T, b *berth) (string, string) {
				return "UPPER CASE", "UPPER CASE"
			},
			wantCode: 125,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := newBerth(t)
			arg, mention := tt.setup(t, b)
			start := time.Now()
			res := b.exec(t, nil, "pull", arg)
			if d := time.Since(start); d > 30*time.Second {
				t.Errorf("pull took %s to fail, want a prompt error", d.Round(time.Second))
			}
			b.checkCleanFailure(t, res, tt.wantCode, mention)
		})
	}
}

// seeHelp is the line docker (and berth) add to usage errors.
var seeHelp = regexp.MustCompile(`^See 'berth [a-z ]+ --help'\.$`)

// checkCleanFailure checks that res failed with wantCode, one "Error:" line
// mentioning mention (plus an optional "Hint:" line and, for usage errors,
// docker's "See 'berth … --help'." line) and nothing else on stderr, and
// that it left nothing in the store.
func (b *berth) checkCleanFailure(t *testing.T, res result, wantCode int, mention string) {
	t.Helper()
	// Before any other berth command: opening the store clears ingest/.
	ingest := b.ingestFiles(t)

	if res.code != wantCode {
		t.Errorf("want exit %d:\n%s", wantCode, res)
	}
	var errLines, hintLines int
	for _, l := range nonEmptyLines(res.stderr) {
		switch {
		case strings.HasPrefix(l, "Error: "):
			errLines++
			if !strings.Contains(l, mention) {
				t.Errorf("error line %q does not mention %q", l, mention)
			}
		case strings.HasPrefix(l, "Hint: "):
			hintLines++
		case wantCode == 125 && seeHelp.MatchString(l):
		default:
			t.Errorf("unexpected stderr line %q", l)
		}
	}
	if errLines != 1 || hintLines > 1 {
		t.Errorf("stderr has %d Error: and %d Hint: lines, want 1 and at most 1:\n%s", errLines, hintLines, res.stderr)
	}
	t.Logf("berth %s -> exit %d\n%s", strings.Join(res.args, " "), res.code, res.stderr)

	if len(ingest) > 0 {
		t.Errorf("failed pull left %q in ingest/", ingest)
	}
	if ids := strings.TrimSpace(b.ok(t, "images", "-q")); ids != "" {
		t.Errorf("after a failed pull, berth images -q prints %q, want nothing", ids)
	}
	b.ok(t, "image", "prune", "-f")
	if blobs := b.blobFiles(t); len(blobs) > 0 {
		t.Errorf("after a failed pull and image prune -f, the store holds blobs %q", blobs)
	}
	if ing := b.ingestFiles(t); len(ing) > 0 {
		t.Errorf("after image prune -f, ingest/ holds %q", ing)
	}
}

// closedPort returns a loopback "127.0.0.1:PORT" nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}

// start starts berth with args in the background, its output collected in
// the returned buffer (safe to read only after the process has exited).
func (b *berth) start(t *testing.T, args ...string) (*exec.Cmd, *bytes.Buffer) {
	t.Helper()
	cmd, out, _ := b.startCmd(t, false, args...)
	return cmd, out
}

// startWithStdin is start with a pipe to berth's standard input.
func (b *berth) startWithStdin(t *testing.T, args ...string) (*exec.Cmd, *bytes.Buffer, io.WriteCloser) {
	t.Helper()
	return b.startCmd(t, true, args...)
}

func (b *berth) startCmd(t *testing.T, withStdin bool, args ...string) (*exec.Cmd, *bytes.Buffer, io.WriteCloser) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	t.Cleanup(cancel)
	cmd := b.command(ctx, args...)
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	var stdin io.WriteCloser
	if withStdin {
		var err error
		if stdin, err = cmd.StdinPipe(); err != nil {
			t.Fatal(err)
		}
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd, &out, stdin
}

// killWhen waits for cond, then kills cmd with SIGKILL. t fails if the
// process ends by itself first (too early to test anything) or cond does
// not hold within startTimeout.
func (b *berth) killWhen(t *testing.T, cmd *exec.Cmd, out *bytes.Buffer, what string, cond func() bool) {
	t.Helper()
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	deadline := time.After(startTimeout)
	for !cond() {
		select {
		case err := <-exited:
			t.Fatalf("berth %s ended (%v) before %s; want it killed midway\n%s",
				strings.Join(cmd.Args[1:], " "), err, what, out)
		case <-deadline:
			_ = cmd.Process.Kill()
			<-exited
			t.Fatalf("no %s within %s\n%s", what, startTimeout, out)
		case <-time.After(10 * time.Millisecond):
		}
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-exited
	ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus)
	if !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("berth %s finished (%s) before SIGKILL reached it\n%s", strings.Join(cmd.Args[1:], " "), cmd.ProcessState, out)
	}
}

// ingestHolds reports whether some file in ingest/ has at least n bytes.
func (b *berth) ingestHolds(n int64) bool {
	dir := filepath.Join(b.storeDir(), "ingest")
	entries, err := os.ReadDir(dir)
	if err != nil {
		return false
	}
	for _, e := range entries {
		if fi, err := e.Info(); err == nil && fi.Mode().IsRegular() && fi.Size() >= n {
			return true
		}
	}
	return false
}

// randomRootfsTar returns a tar of a small root filesystem whose one big
// file holds size bytes of random data (so the layer does not compress).
func randomRootfsTar(t *testing.T, size int) []byte {
	t.Helper()
	var seed [32]byte
	for i := range seed {
		seed[i] = byte(rand.Uint32())
	}
	data := make([]byte, size)
	if _, err := rand.NewChaCha8(seed).Read(data); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	mtime := time.Unix(1700000000, 0)
	for _, h := range []*tar.Header{
		{Name: "etc/", Typeflag: tar.TypeDir, Mode: 0o755, ModTime: mtime},
		{Name: "etc/hostname", Typeflag: tar.TypeReg, Mode: 0o644, Size: 4, ModTime: mtime},
		{Name: "data/", Typeflag: tar.TypeDir, Mode: 0o755, ModTime: mtime},
		{Name: "data/random.bin", Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(size), ModTime: mtime},
	} {
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		switch h.Name {
		case "etc/hostname":
			_, _ = tw.Write([]byte("e2e\n"))
		case "data/random.bin":
			_, _ = tw.Write(data)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
