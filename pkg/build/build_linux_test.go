package build

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/berthsh/berth/internal/flock"
	"github.com/berthsh/berth/internal/testutil"
	"github.com/berthsh/berth/pkg/build/buildtest"
	"github.com/berthsh/berth/pkg/errdefs"
	"github.com/berthsh/berth/pkg/reference"
	"github.com/berthsh/berth/pkg/rootfs"
	"github.com/berthsh/berth/pkg/runtime"
	"github.com/berthsh/berth/pkg/store"
	"github.com/berthsh/berth/pkg/store/archive"
)

func TestMain(m *testing.M) {
	// libcontainer starts RUN containers by re-executing this binary.
	runtime.InitIfRequested()
	code := m.Run()
	if shared.root != "" {
		// Never remove through a mount a failed test left behind.
		if left := mountsUnder(shared.root); len(left) > 0 {
			fmt.Fprintf(os.Stderr, "left %s in place: still mounted: %v\n", shared.root, left)
		} else {
			os.RemoveAll(shared.root)
		}
	}
	os.Exit(code)
}

const baseName = "test/base:1"

// corpusBase is the same base under the name the corpus uses.
const corpusBase = buildtest.BaseImage

// shared is a store with the base image imported, used by every test.
var shared struct {
	once sync.Once
	root string
	s    *store.Store
	err  error
}

// slimBase makes the small base image every test uses (see
// buildtest.SlimBase).
func slimBase(tarball, dir string) (string, error) { return buildtest.SlimBase(tarball, dir) }

type testEnv struct {
	root string
	s    *store.Store
}

func newEnv(t *testing.T) *testEnv {
	t.Helper()
	testutil.RequiresRoot(t)
	tarball := testutil.BaseTarball(t, testutil.BaseMinimal)
	shared.once.Do(func() {
		ctx := context.Background()
		shared.root, shared.err = os.MkdirTemp("", "berth-build-test-")
		if shared.err != nil {
			return
		}
		shared.s, shared.err = store.Open(ctx, filepath.Join(shared.root, "store"))
		if shared.err != nil {
			return
		}
		src, err := slimBase(tarball, shared.root)
		if err != nil {
			shared.err = err
			return
		}
		f, err := os.Open(src)
		if err != nil {
			shared.err = err
			return
		}
		defer f.Close()
		ref, _ := reference.Parse(baseName)
		if _, shared.err = archive.Import(ctx, shared.s, f, archive.ImportOptions{Ref: &ref, Changes: []string{`CMD ["/bin/sh"]`}}); shared.err != nil {
			return
		}
		cref, _ := reference.Parse(corpusBase)
		_, shared.err = shared.s.Tag(ctx, baseName, cref)
	})
	if shared.err != nil {
		t.Fatalf("set up: %v", shared.err)
	}
	// Each test gets its own state root (layer cache, build cache, cache
	// mounts); the store with the base image is shared.
	root, err := os.MkdirTemp(shared.root, "root-")
	if err != nil {
		t.Fatal(err)
	}
	e := &testEnv{root: root, s: shared.s}
	t.Cleanup(func() {
		e.checkClean(t)
		if len(mountsUnder(root)) == 0 {
			if err := rootfs.RemoveAll(root); err != nil {
				t.Error(err)
			}
		}
	})
	return e
}

// checkClean fails t if a build left mounts, containers, cgroups or
// temporary files behind.
func (e *testEnv) checkClean(t *testing.T) {
	t.Helper()
	// thread-self: the main thread may be in another mount namespace (see
	// mountsUnder).
	f, err := os.Open("/proc/thread-self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 4 && strings.HasPrefix(fields[4], e.root+"/") {
			t.Errorf("still mounted: %s", fields[4])
		}
	}
	tmp, _ := os.ReadDir(filepath.Join(e.root, "build", "tmp"))
	for _, d := range tmp {
		t.Errorf("build directory left: %s", d.Name())
	}
	for _, dir := range []string{"/sys/fs/cgroup/berth", "/sys/fs/cgroup/memory/berth"} {
		cg, _ := os.ReadDir(dir)
		for _, d := range cg {
			if !strings.HasPrefix(d.Name(), "berth-build-") {
				continue
			}
			// Other builds on this machine (other test binaries, people)
			// have processes in theirs; a cgroup a build of this test left
			// behind is empty, its processes killed.
			if procs, err := os.ReadFile(filepath.Join(dir, d.Name(), "cgroup.procs")); err == nil && len(strings.TrimSpace(string(procs))) > 0 {
				continue
			}
			t.Errorf("cgroup left: %s/%s", dir, d.Name())
		}
	}
}

// writeContext makes a build context from name → content; a name ending
// in "@" followed by a target makes a symbolic link ("link@target").
func writeContext(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		if n, target, ok := strings.Cut(name, "@"); ok {
			p := filepath.Join(dir, n)
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(target, p); err != nil {
				t.Fatal(err)
			}
			continue
		}
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		mode := os.FileMode(0o644)
		if strings.HasSuffix(name, ".sh") {
			mode = 0o755
		}
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

type recorder struct {
	mu     sync.Mutex
	events []Event
}

func (r *recorder) add(ev Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, ev)
}

func (r *recorder) done() []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []Event
	for _, ev := range r.events {
		if ev.Done {
			out = append(out, ev)
		}
	}
	return out
}

func (r *recorder) output() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var b strings.Builder
	for _, ev := range r.events {
		b.Write(ev.Output)
	}
	return b.String()
}

func (e *testEnv) build(t *testing.T, ctxDir string, opts Options) (Result, *recorder, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	return e.buildCtx(ctx, t, ctxDir, opts)
}

func (e *testEnv) buildCtx(ctx context.Context, t *testing.T, ctxDir string, opts Options) (Result, *recorder, error) {
	t.Helper()
	rec := &recorder{}
	opts.ContextDir = ctxDir
	opts.Root = e.root
	prev := opts.Progress
	opts.Progress = func(ev Event) {
		rec.add(ev)
		if prev != nil {
			prev(ev)
		}
	}
	res, err := Build(ctx, e.s, opts)
	return res, rec, err
}

func tag(t *testing.T, s string) []reference.Reference {
	t.Helper()
	r, err := reference.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return []reference.Reference{r}
}

// tarFile is one entry of a layer.
type tarFile struct {
	hdr  *tar.Header
	data string
}

// readLayers returns the entries of each layer of img, checking that each
// diff ID is the digest of the uncompressed layer.
func (e *testEnv) readLayers(t *testing.T, img store.Image) ([]map[string]tarFile, *v1.ConfigFile, *v1.Manifest) {
	t.Helper()
	ctx := t.Context()
	m, err := e.s.Manifest(ctx, img)
	if err != nil {
		t.Fatal(err)
	}
	cf, _, err := e.s.ConfigFile(ctx, img)
	if err != nil {
		t.Fatal(err)
	}
	if len(cf.RootFS.DiffIDs) != len(m.Layers) {
		t.Fatalf("%d diff IDs for %d layers", len(cf.RootFS.DiffIDs), len(m.Layers))
	}
	var out []map[string]tarFile
	for i, l := range m.Layers {
		rc, err := e.s.OpenBlob(ctx, l.Digest)
		if err != nil {
			t.Fatal(err)
		}
		zr, err := gzip.NewReader(rc)
		if err != nil {
			t.Fatal(err)
		}
		raw, err := io.ReadAll(zr)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(raw)
		if got := "sha256:" + hex.EncodeToString(sum[:]); got != cf.RootFS.DiffIDs[i].String() {
			t.Errorf("layer %d: diff ID %s, content %s", i, cf.RootFS.DiffIDs[i], got)
		}
		files := map[string]tarFile{}
		tr := tar.NewReader(bytes.NewReader(raw))
		for {
			h, err := tr.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			data, _ := io.ReadAll(tr)
			files[strings.TrimSuffix(h.Name, "/")] = tarFile{hdr: h, data: string(data)}
		}
		out = append(out, files)
	}
	return out, cf, m
}

func TestScratchCopy(t *testing.T) {
	e := newEnv(t)
	dir := writeContext(t, map[string]string{
		"Dockerfile": `FROM scratch
COPY app /app
COPY --chown=1000:1001 --chmod=600 secret.txt /etc/
ENV A=b
CMD ["/app/run.sh"]
`,
		"app/main.py":          "print('hi')\n",
		"app/run.sh":           "#!/bin/sh\n",
		"app/sub/data.txt":     "data",
		"app/link@main.py":     "",
		"secret.txt":           "s3cret",
		"ignored.txt":          "x",
		".dockerignore":        "ignored.txt\n",
		"app/sub/.hidden.conf": "h",
	})
	res, rec, err := e.build(t, dir, Options{Tags: tag(t, "test/scratch:1")})
	if err != nil {
		t.Fatal(err)
	}
	got, err := e.s.Get(t.Context(), "test/scratch:1")
	if err != nil || got.Digest() != res.Image.Digest() {
		t.Fatalf("tag: %v %v", got.Digest(), err)
	}
	layers, cf, m := e.readLayers(t, res.Image)
	if len(layers) != 2 {
		t.Fatalf("%d layers, want 2", len(layers))
	}
	want := map[string]struct {
		typ      byte
		mode     int64
		uid, gid int
		data     string
	}{
		"app":                  {tar.TypeDir, 0o755, 0, 0, ""},
		"app/main.py":          {tar.TypeReg, 0o644, 0, 0, "print('hi')\n"},
		"app/run.sh":           {tar.TypeReg, 0o755, 0, 0, "#!/bin/sh\n"},
		"app/sub/data.txt":     {tar.TypeReg, 0o644, 0, 0, "data"},
		"app/sub/.hidden.conf": {tar.TypeReg, 0o644, 0, 0, "h"},
		"app/link":             {tar.TypeSymlink, 0o777, 0, 0, ""},
	}
	for name, w := range want {
		f, ok := layers[0][name]
		if !ok {
			t.Errorf("layer 1 lacks %s (has %v)", name, keys(layers[0]))
			continue
		}
		h := f.hdr
		if h.Typeflag != w.typ || h.Mode&0o7777 != w.mode || h.Uid != w.uid || h.Gid != w.gid || f.data != w.data {
			t.Errorf("%s: type %c mode %o owner %d:%d data %q; want %c %o %d:%d %q", name, h.Typeflag, h.Mode, h.Uid, h.Gid, f.data, w.typ, w.mode, w.uid, w.gid, w.data)
		}
		if !h.ModTime.Equal(time.Unix(0, 0)) {
			t.Errorf("%s: mtime %v, want the epoch", name, h.ModTime)
		}
	}
	if l := layers[0]["app/link"].hdr; l == nil || l.Linkname != "main.py" {
		t.Errorf("app/link: %+v", l)
	}
	if _, ok := layers[0]["ignored.txt"]; ok {
		t.Error("ignored file copied")
	}
	s := layers[1]["etc/secret.txt"]
	if s.hdr == nil || s.hdr.Mode&0o7777 != 0o600 || s.hdr.Uid != 1000 || s.hdr.Gid != 1001 || s.data != "s3cret" {
		t.Errorf("etc/secret.txt: %+v %q (layer: %v)", s.hdr, s.data, keys(layers[1]))
	}

	if m.MediaType != types.OCIManifestSchema1 || m.Config.MediaType != types.OCIConfigJSON {
		t.Errorf("media types %s, %s", m.MediaType, m.Config.MediaType)
	}
	for _, l := range m.Layers {
		if l.MediaType != types.OCILayer {
			t.Errorf("layer media type %s", l.MediaType)
		}
	}
	if cf.OS != "linux" || cf.Architecture == "" {
		t.Errorf("platform %s/%s", cf.OS, cf.Architecture)
	}
	if !cf.Created.Time.Equal(time.Unix(0, 0)) {
		t.Errorf("created %v", cf.Created)
	}
	if !slices.Equal(cf.Config.Cmd, []string{"/app/run.sh"}) || !slices.Contains(cf.Config.Env, "A=b") {
		t.Errorf("config %+v", cf.Config)
	}
	var hist []string
	for _, h := range cf.History {
		hist = append(hist, h.CreatedBy)
		if !h.Created.Time.Equal(time.Unix(0, 0)) {
			t.Errorf("history time %v", h.Created)
		}
	}
	wantHist := []string{"COPY app /app # buildkit", "COPY --chown=1000:1001 --chmod=600 secret.txt /etc/ # buildkit", "ENV A=b", `CMD ["/app/run.sh"]`}
	if !slices.Equal(hist, wantHist) {
		t.Errorf("history %q, want %q", hist, wantHist)
	}
	if cf.History[0].EmptyLayer || !cf.History[2].EmptyLayer || !cf.History[3].EmptyLayer {
		t.Errorf("empty_layer flags wrong: %+v", cf.History)
	}
	if res.ID.String() == "" {
		t.Error("no image ID")
	}
	if d := rec.done(); len(d) != 4 || d[0].Step != 1 || d[0].Total != 4 || d[3].Step != 4 {
		t.Errorf("events %+v", d)
	}
}

func TestRunAndConfig(t *testing.T) {
	e := newEnv(t)
	dir := writeContext(t, map[string]string{
		"Dockerfile": `FROM ` + baseName + `
ARG VERSION=1.2
ENV GREETING=hello
WORKDIR /srv/app
RUN echo "$GREETING $VERSION" > out.txt && echo to-stdout && echo to-stderr >&2
EXPOSE 8080
LABEL org.example.name=demo
USER nobody
RUN id -u > /tmp/uid
ENTRYPOINT ["python3"]
CMD ["app.py"]
STOPSIGNAL SIGINT
`,
	})
	res, rec, err := e.build(t, dir, Options{Tags: tag(t, "test/run:1"), Labels: map[string]string{"extra": "yes"}})
	if err != nil {
		t.Fatal(err)
	}
	layers, cf, _ := e.readLayers(t, res.Image)
	if len(layers) != 4 { // base, WORKDIR, two RUNs
		t.Fatalf("%d layers, want 4", len(layers))
	}
	if wd := layers[1]["srv/app"].hdr; wd == nil || wd.Typeflag != tar.TypeDir {
		t.Errorf("WORKDIR layer: %v", keys(layers[1]))
	}
	if f := layers[2]["srv/app/out.txt"]; f.data != "hello 1.2\n" {
		t.Errorf("out.txt = %q (layer: %v)", f.data, keys(layers[2]))
	}
	for name := range layers[2] {
		if strings.HasPrefix(name, "etc/host") || name == "etc/resolv.conf" || strings.HasPrefix(name, "proc") {
			t.Errorf("RUN layer holds runtime file %s", name)
		}
	}
	if f := layers[3]["tmp/uid"]; f.data != "65534\n" {
		t.Errorf("uid = %q", f.data)
	}
	// Only what the command wrote: no mount points and no directories
	// copied up to hold them.
	if got := keys(layers[3]); !slices.Equal(got, []string{"tmp", "tmp/uid"}) {
		t.Errorf("RUN layer holds %q, want tmp and tmp/uid", got)
	}
	out := rec.output()
	if !strings.Contains(out, "to-stdout\n") || !strings.Contains(out, "to-stderr\n") {
		t.Errorf("output %q", out)
	}
	c := cf.Config
	if c.WorkingDir != "/srv/app" || c.User != "nobody" || c.StopSignal != "SIGINT" {
		t.Errorf("config %+v", c)
	}
	if _, ok := c.ExposedPorts["8080/tcp"]; !ok {
		t.Errorf("exposed %v", c.ExposedPorts)
	}
	if c.Labels["org.example.name"] != "demo" || c.Labels["extra"] != "yes" {
		t.Errorf("labels %v", c.Labels)
	}
	if !slices.Equal(c.Entrypoint, []string{"python3"}) || !slices.Equal(c.Cmd, []string{"app.py"}) {
		t.Errorf("entrypoint %q cmd %q", c.Entrypoint, c.Cmd)
	}
	if !slices.Contains(c.Env, "GREETING=hello") || slices.ContainsFunc(c.Env, func(s string) bool { return strings.HasPrefix(s, "VERSION=") }) {
		t.Errorf("env %q", c.Env)
	}
	last := cf.History[len(cf.History)-1]
	if last.CreatedBy != "STOPSIGNAL SIGINT" || !last.EmptyLayer {
		t.Errorf("last history %+v", last)
	}
	nonEmpty := 0
	for _, h := range cf.History {
		if !h.EmptyLayer {
			nonEmpty++
		}
	}
	if nonEmpty != len(layers) {
		t.Errorf("%d history entries with layers for %d layers", nonEmpty, len(layers))
	}
}

func TestRunFails(t *testing.T) {
	e := newEnv(t)
	dir := writeContext(t, map[string]string{
		"Dockerfile": "FROM " + baseName + "\nRUN echo boom-line && exit 3\n",
	})
	_, _, err := e.build(t, dir, Options{Tags: tag(t, "test/fails:1")})
	var re *RunError
	if !errors.As(err, &re) {
		t.Fatalf("error %v, want a RunError", err)
	}
	if re.ExitCode != 3 || !slices.Contains(re.Output, "boom-line\n") {
		t.Errorf("run error %+v", re)
	}
	for _, s := range []string{"echo boom-line && exit 3", "exit code: 3", "boom-line", "line 2"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q lacks %q", err, s)
		}
	}
	if _, err := e.s.Get(t.Context(), "test/fails:1"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("image named after a failed build: %v", err)
	}
}

func TestCache(t *testing.T) {
	e := newEnv(t)
	dir := writeContext(t, map[string]string{
		"Dockerfile": `FROM ` + baseName + `
COPY a.txt /a.txt
RUN cat /a.txt > /b.txt
COPY c.txt /c.txt
RUN cat /c.txt > /d.txt
ENV X=1
`,
		"a.txt": "a-" + t.Name(),
		"c.txt": "c1",
	})
	cachedSteps := func(rec *recorder) []bool {
		var out []bool
		for _, ev := range rec.done() {
			out = append(out, ev.Cached)
		}
		return out
	}
	res1, rec, err := e.build(t, dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := cachedSteps(rec); slices.Contains(got[:4], true) {
		t.Errorf("first build cached %v", got)
	}
	res2, rec, err := e.build(t, dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := cachedSteps(rec); !slices.Equal(got[:4], []bool{true, true, true, true}) {
		t.Errorf("second build cached %v, want all layer steps", got)
	}
	if res1.Image.Digest() != res2.Image.Digest() {
		t.Errorf("cached build gave another image")
	}
	if err := os.WriteFile(filepath.Join(dir, "c.txt"), []byte("c2"), 0o644); err != nil {
		t.Fatal(err)
	}
	res3, rec, err := e.build(t, dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := cachedSteps(rec); !slices.Equal(got[:4], []bool{true, true, false, false}) {
		t.Errorf("after changing c.txt cached %v, want [true true false false]", got)
	}
	layers, _, _ := e.readLayers(t, res3.Image)
	if f := layers[len(layers)-1]["d.txt"]; f.data != "c2" {
		t.Errorf("d.txt = %q", f.data)
	}
	// NoCache runs everything again.
	_, rec, err = e.build(t, dir, Options{NoCache: true})
	if err != nil {
		t.Fatal(err)
	}
	if got := cachedSteps(rec); slices.Contains(got, true) {
		t.Errorf("NoCache build cached %v", got)
	}
}

func TestReproducible(t *testing.T) {
	e := newEnv(t)
	dir := writeContext(t, map[string]string{
		"Dockerfile": `FROM ` + baseName + `
COPY app.py /app/
RUN mkdir -p /y/z && echo x > /y/z/f && touch /y/empty && rm /etc/issue && ln -s /y/z/f /y/link
RUN --mount=type=tmpfs,target=/scratch echo t > /scratch/f && cat /scratch/f > /t
CMD ["python3", "/app/app.py"]
`,
		"app.py": "print(1)\n",
	})
	epoch := time.Unix(1700000000, 0)
	var digests []v1.Hash
	for range 2 {
		res, _, err := e.build(t, dir, Options{NoCache: true, SourceDateEpoch: &epoch})
		if err != nil {
			t.Fatal(err)
		}
		digests = append(digests, res.Image.Digest())
	}
	if digests[0] != digests[1] {
		t.Fatalf("two builds gave %s and %s", digests[0], digests[1])
	}
	img, err := e.s.Get(t.Context(), digests[0].String())
	if err != nil {
		t.Fatal(err)
	}
	layers, cf, _ := e.readLayers(t, img)
	if !cf.Created.Time.Equal(epoch) {
		t.Errorf("created %v", cf.Created)
	}
	run := layers[2]
	if f := run["y/z/f"]; f.data != "x\n" || f.hdr.ModTime.After(epoch) {
		t.Errorf("y/z/f: %+v %q", f.hdr, f.data)
	}
	if _, ok := run["etc/.wh.issue"]; !ok {
		t.Errorf("no whiteout for /etc/issue: %v", keys(run))
	}
	tmpfsRun := layers[3]
	if tmpfsRun["t"].data != "t\n" {
		t.Errorf("t = %q", tmpfsRun["t"].data)
	}
	for name := range tmpfsRun {
		if strings.HasPrefix(name, "scratch") {
			t.Errorf("tmpfs mount point in layer: %s", name)
		}
	}
}

func TestMultiStage(t *testing.T) {
	e := newEnv(t)
	dir := writeContext(t, map[string]string{
		"Dockerfile": `FROM ` + baseName + ` AS builder
RUN sleep 1 && mkdir /out && echo built > /out/artifact
FROM ` + baseName + ` AS unused
RUN exit 1
FROM ` + baseName + ` AS other
RUN sleep 1 && echo other > /o
FROM scratch
COPY --from=builder /out/artifact /artifact
COPY --from=other /o /o
`,
	})
	res, rec, err := e.build(t, dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range rec.done() {
		if ev.Stage == "unused" {
			t.Errorf("unneeded stage built: %+v", ev)
		}
	}
	if n := len(rec.done()); n != 4 {
		t.Errorf("%d steps, want 4", n)
	}
	// builder and other run in parallel: both start before either ends.
	var order []string
	for _, ev := range rec.events {
		if ev.Started || ev.Done {
			order = append(order, fmt.Sprintf("%s:%v", ev.Stage, ev.Done))
		}
	}
	if len(order) < 4 || !slices.Contains(order[:2], "builder:false") || !slices.Contains(order[:2], "other:false") {
		t.Errorf("stages did not run in parallel: %v", order)
	}
	layers, _, _ := e.readLayers(t, res.Image)
	if len(layers) != 2 || layers[0]["artifact"].data != "built\n" || layers[1]["o"].data != "other\n" {
		t.Errorf("layers %v", layers)
	}

	// --target builds the named stage and what it needs only.
	res, rec, err = e.build(t, dir, Options{Target: "builder"})
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range rec.done() {
		if ev.Stage != "builder" || !ev.Cached {
			t.Errorf("target builder: step %+v", ev)
		}
	}
	layers, _, _ = e.readLayers(t, res.Image)
	if f := layers[len(layers)-1]["out/artifact"]; f.data != "built\n" {
		t.Errorf("target image lacks the artifact: %v", keys(layers[len(layers)-1]))
	}
}

func TestNetworkNoneAndCacheMount(t *testing.T) {
	e := newEnv(t)
	dir := writeContext(t, map[string]string{
		"Dockerfile": `FROM ` + baseName + `
RUN ls /sys/class/net > /net.txt
RUN --mount=type=cache,target=/cache,id=` + t.Name() + ` echo x >> /cache/log && cat /cache/log > /count
`,
	})
	var counts []string
	for range 2 {
		res, _, err := e.build(t, dir, Options{Network: "none", NoCache: true})
		if err != nil {
			t.Fatal(err)
		}
		layers, _, _ := e.readLayers(t, res.Image)
		if got := layers[1]["net.txt"].data; got != "lo\n" {
			t.Errorf("interfaces with --network none: %q", got)
		}
		for name := range layers[2] {
			if strings.HasPrefix(name, "cache") {
				t.Errorf("cache mount point in layer: %s", name)
			}
		}
		counts = append(counts, layers[2]["count"].data)
	}
	if counts[0] != "x\n" || counts[1] != "x\nx\n" {
		t.Errorf("cache mount contents %q: not kept between builds", counts)
	}
}

func TestCancelDuringRun(t *testing.T) {
	e := newEnv(t)
	dir := writeContext(t, map[string]string{
		"Dockerfile": "FROM " + baseName + "\nRUN echo started && sleep 30\n",
	})
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var once sync.Once
	start := time.Now()
	_, _, err := e.buildCtx(ctx, t, dir, Options{Tags: tag(t, "test/cancel:1"), Progress: func(ev Event) {
		if string(ev.Output) == "started\n" {
			once.Do(cancel)
		}
	}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v, want context.Canceled", err)
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("cancel took %v", d)
	}
	if _, err := e.s.Get(t.Context(), "test/cancel:1"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("image named after a cancelled build: %v", err)
	}
}

func TestMissingBase(t *testing.T) {
	e := newEnv(t)
	dir := writeContext(t, map[string]string{"Dockerfile": "FROM 127.0.0.1:1/nope:1\nRUN true\n"})
	_, _, err := e.build(t, dir, Options{})
	if err == nil || !strings.Contains(err.Error(), "is not in the store and could not be pulled") {
		t.Fatalf("error %v", err)
	}
}

// tarball returns a tar archive of name → content.
func tarball(t *testing.T, files map[string]string) string {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, name := range keys(files) {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o640, Size: int64(len(files[name])), Uid: 7, Gid: 8}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(files[name])); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}

func TestMoreInstructions(t *testing.T) {
	e := newEnv(t)
	secret := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(secret, []byte("tok3n"), 0o600); err != nil {
		t.Fatal(err)
	}
	dir := writeContext(t, map[string]string{
		"archive.tar": tarball(t, map[string]string{"pkg/a.txt": "A", "pkg/b.txt": "B"}),
		"src/in.txt":  "from-context",
		"onb.txt":     "onbuild",
	})
	dockerfile := `FROM scratch AS trig
ONBUILD COPY onb.txt /onb.txt
FROM trig AS fromtrig
FROM ` + baseName + ` AS tools
RUN echo tool > /tool.txt
FROM ` + baseName + `
WORKDIR /etc
ADD archive.tar /opt/
COPY <<EOF /etc/motd
hello heredoc
EOF
RUN --mount=type=bind,source=src,target=/mnt/src --mount=type=bind,from=tools,source=/tool.txt,target=/mnt/tool.txt --mount=type=secret,id=token cat /mnt/src/in.txt /mnt/tool.txt /run/secrets/token > /result
COPY --from=fromtrig /onb.txt /onb.txt
COPY --from=` + baseName + ` /etc/issue /issue.copy
RUN <<EOT
#!/bin/sh
echo "script $0" > /script.out
EOT
RUN <<EOT
echo plain > /plain.out
EOT
RUN --mount=type=secret,id=token,env=TOKEN echo "[$TOKEN]" > /envsecret
`
	res, _, err := e.build(t, dir, Options{DockerfileContent: []byte(dockerfile), Dockerfile: "-", Secrets: map[string]string{"token": secret}})
	if err != nil {
		t.Fatal(err)
	}
	layers, cf, _ := e.readLayers(t, res.Image)
	// base, ADD, COPY heredoc, RUN, COPY --from=fromtrig, COPY --from=image:
	// WORKDIR /etc exists and adds no layer.
	// the two heredoc RUNs and the secret in a variable.
	if len(layers) != 9 {
		t.Fatalf("%d layers, want 9", len(layers))
	}
	if h := cf.History[len(cf.History)-9]; h.CreatedBy != "WORKDIR /etc" || !h.EmptyLayer {
		t.Errorf("WORKDIR history %+v", h)
	}
	if f := layers[1]["opt/pkg/a.txt"]; f.data != "A" || f.hdr.Uid != 7 || f.hdr.Mode&0o777 != 0o640 {
		t.Errorf("extracted a.txt: %+v %q (layer %v)", f.hdr, f.data, keys(layers[1]))
	}
	if f := layers[2]["etc/motd"]; f.data != "hello heredoc\n" {
		t.Errorf("motd %q", f.data)
	}
	if f := layers[3]["result"]; f.data != "from-contexttool\ntok3n" {
		t.Errorf("result %q", f.data)
	}
	for name := range layers[3] {
		if strings.HasPrefix(name, "mnt") || name == "run" || strings.HasPrefix(name, "run/") {
			t.Errorf("mount point in layer: %s", name)
		}
	}
	if f := layers[4]["onb.txt"]; f.data != "onbuild" {
		t.Errorf("ONBUILD trigger: %v", keys(layers[4]))
	}
	if f := layers[5]["issue.copy"]; !strings.Contains(f.data, "Debian") {
		t.Errorf("COPY --from image: %q", f.data)
	}
	if f := layers[6]["script.out"]; !strings.HasPrefix(f.data, "script /dev/pipes/") {
		t.Errorf("heredoc script: %q (layer %v)", f.data, keys(layers[6]))
	}
	if f := layers[7]["plain.out"]; f.data != "plain\n" {
		t.Errorf("heredoc: %q", f.data)
	}
	if f := layers[8]["envsecret"]; f.data != "[tok3n]\n" {
		t.Errorf("secret variable: %q", f.data)
	}
	for _, h := range cf.History {
		if strings.Contains(h.CreatedBy, "tok3n") {
			t.Errorf("secret in history: %q", h.CreatedBy)
		}
	}
	if slices.ContainsFunc(cf.Config.Env, func(kv string) bool { return strings.Contains(kv, "tok3n") }) {
		t.Errorf("secret in the image environment: %q", cf.Config.Env)
	}
}

func TestCacheWithMounts(t *testing.T) {
	e := newEnv(t)
	dir := writeContext(t, map[string]string{
		"Dockerfile": `FROM ` + baseName + `
RUN --mount=type=bind,source=req.txt,target=/req.txt --mount=type=cache,target=/c,uid=1000,mode=0700 cat /req.txt > /out
`,
		"req.txt": "v1-" + t.Name(),
	})
	runCached := func() (bool, string) {
		t.Helper()
		res, rec, err := e.build(t, dir, Options{})
		if err != nil {
			t.Fatal(err)
		}
		layers, _, _ := e.readLayers(t, res.Image)
		return rec.done()[0].Cached, layers[len(layers)-1]["out"].data
	}
	if cached, out := runCached(); cached || out != "v1-"+t.Name() {
		t.Errorf("first build: cached %v, out %q", cached, out)
	}
	if cached, _ := runCached(); !cached {
		t.Error("second build not cached")
	}
	if err := os.WriteFile(filepath.Join(dir, "req.txt"), []byte("v2"), 0o644); err != nil {
		t.Fatal(err)
	}
	if cached, out := runCached(); cached || out != "v2" {
		t.Errorf("after changing the bind-mounted file: cached %v, out %q", cached, out)
	}
}

func TestBuildErrors(t *testing.T) {
	e := newEnv(t)
	digestRef, err := reference.Parse("test/x@sha256:" + strings.Repeat("a", 64))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name       string
		dockerfile string
		opts       Options
		kind       error
		msg        string
	}{
		{"missing source", "FROM scratch\nCOPY nope.txt /\n", Options{}, errdefs.ErrNotFound, "nope.txt"},
		{"unknown target", "FROM scratch AS a\n", Options{Target: "b"}, errdefs.ErrInvalidArgument, `target stage "b"`},
		{"unknown user", "FROM " + baseName + "\nUSER nosuchuser\nRUN true\n", Options{}, nil, "nosuchuser"},
		{"bad network", "FROM scratch\n", Options{Network: "bridge"}, errdefs.ErrInvalidArgument, "network"},
		{"digest tag", "FROM scratch\n", Options{Tags: []reference.Reference{digestRef}}, errdefs.ErrInvalidArgument, "digest"},
		{"parse error", "FROM scratch\nNOPE x\n", Options{}, errdefs.ErrInvalidArgument, "NOPE"},
		{"required secret", "FROM " + baseName + "\nRUN --mount=type=secret,id=s,required=true true\n", Options{}, errdefs.ErrInvalidArgument, "secret s"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := writeContext(t, map[string]string{"Dockerfile": tc.dockerfile})
			_, _, err := e.build(t, dir, tc.opts)
			if err == nil {
				t.Fatal("no error")
			}
			if tc.kind != nil && !errors.Is(err, tc.kind) {
				t.Errorf("error %v is not %v", err, tc.kind)
			}
			if !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("error %q does not mention %q", err, tc.msg)
			}
		})
	}
	if _, _, err := e.build(t, t.TempDir(), Options{}); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("missing Dockerfile: %v", err)
	}
}

func TestSweepStale(t *testing.T) {
	e := newEnv(t)
	tmpRoot := filepath.Join(e.root, "build", "tmp")
	// A build that died: a directory with a mount in it and no lock held.
	stale := filepath.Join(tmpRoot, "build-stale"+t.Name())
	mp := filepath.Join(stale, "view-1")
	if err := os.MkdirAll(mp, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := rootfs.BindMount(t.Context(), t.TempDir(), mp, true); err != nil {
		t.Fatal(err)
	}
	// A build that runs: its lock is held.
	live := filepath.Join(tmpRoot, "build-live"+t.Name())
	if err := os.MkdirAll(live, 0o700); err != nil {
		t.Fatal(err)
	}
	lock, err := flock.Acquire(t.Context(), live+".lock", true)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		lock.Unlock()
		os.Remove(live + ".lock")
		os.RemoveAll(live)
	}()
	dir := writeContext(t, map[string]string{"Dockerfile": "FROM scratch\nENV A=1\n"})
	if _, _, err := e.build(t, dir, Options{}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(stale); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("stale build directory kept: %v", err)
	}
	if _, err := os.Stat(live); err != nil {
		t.Errorf("running build's directory removed: %v", err)
	}
}

// TestCopyFromShortcut checks the shortcut key of COPY --from: a rebuild
// with the source stage unchanged follows it (without planning the files
// again), and a change in the source stage misses it.
func TestCopyFromShortcut(t *testing.T) {
	e := newEnv(t)
	dir := writeContext(t, map[string]string{
		"Dockerfile": `FROM ` + baseName + ` AS src
COPY src.txt /src.txt
FROM scratch
COPY --from=src /src.txt /copied.txt
`,
		"src.txt": "v1-" + t.Name(),
	})
	copied := func(res Result) string {
		t.Helper()
		layers, _, _ := e.readLayers(t, res.Image)
		return layers[len(layers)-1]["copied.txt"].data
	}
	res1, _, err := e.build(t, dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := copied(res1); got != "v1-"+t.Name() {
		t.Fatalf("copied.txt = %q", got)
	}

	// The cache holds one shortcut, leading to the COPY --from entry.
	cachePath := filepath.Join(e.root, "build", "cache.json")
	data, err := os.ReadFile(cachePath)
	if err != nil {
		t.Fatal(err)
	}
	var cf cacheFile
	if err := json.Unmarshal(data, &cf); err != nil {
		t.Fatal(err)
	}
	var aliasKey, target, other string
	for k, en := range cf.Entries {
		if en.Alias != "" {
			if aliasKey != "" {
				t.Fatalf("two shortcuts in the cache: %s, %s", aliasKey, k)
			}
			aliasKey, target = k, en.Alias
		}
	}
	if aliasKey == "" || cf.Entries[target] == nil || cf.Entries[target].Layer == nil {
		t.Fatalf("no shortcut leading to a layer entry in %s", data)
	}
	for k, en := range cf.Entries {
		if k != target && en.Alias == "" && en.Layer != nil && en.Layer.Digest != cf.Entries[target].Layer.Digest {
			other = k // the layer of "COPY src.txt"
		}
	}
	if other == "" {
		t.Fatalf("no other layer entry in %s", data)
	}

	// Point the shortcut at the other layer: a rebuild that follows it
	// (rather than checksumming the files) gives that layer.
	cf.Entries[aliasKey].Alias = other
	if data, err = json.Marshal(&cf); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cachePath, data, 0o600); err != nil {
		t.Fatal(err)
	}
	res2, rec, err := e.build(t, dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if done := rec.done(); !done[len(done)-1].Cached {
		t.Errorf("COPY --from was not cached: %+v", done[len(done)-1])
	}
	layers, _, m := e.readLayers(t, res2.Image)
	if want := cf.Entries[other].Layer.Digest; m.Layers[len(m.Layers)-1].Digest != want {
		t.Errorf("rebuild did not follow the shortcut: last layer %s (%v), want %s", m.Layers[len(m.Layers)-1].Digest, keys(layers[len(layers)-1]), want)
	}

	// A change in the source stage changes its key: no shortcut, and the
	// new content is copied.
	if err := os.WriteFile(filepath.Join(dir, "src.txt"), []byte("v2"), 0o644); err != nil {
		t.Fatal(err)
	}
	res3, rec, err := e.build(t, dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if done := rec.done(); done[len(done)-1].Cached {
		t.Errorf("COPY --from cached after its source changed")
	}
	if got := copied(res3); got != "v2" {
		t.Errorf("copied.txt = %q after the change, want v2", got)
	}
}
