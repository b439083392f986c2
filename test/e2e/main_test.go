package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"

	"github.com/berthsh/berth/internal/testutil"
)

// berthBin is the berth binary TestMain builds for all tests.
var berthBin string

// commandTimeout bounds one berth invocation, so that a hang fails the
// test instead of blocking it until the go test deadline.
const commandTimeout = 2 * time.Minute

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "berth-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	berthBin = filepath.Join(dir, "berth")
	if err := testutil.BuildBerth(berthBin); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return m.Run()
}

// berth runs the berth binary against its own data directory, with its own
// (initially empty) docker config directory and no berth config file, so
// nothing from the machine running the tests leaks in.
type berth struct {
	root      string
	dockerCfg string
	env       []string
}

func newBerth(t *testing.T) *berth {
	t.Helper()
	dir := t.TempDir()
	b := &berth{root: filepath.Join(dir, "root"), dockerCfg: filepath.Join(dir, "docker")}
	if err := os.MkdirAll(b.dockerCfg, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "BERTH_") || strings.HasPrefix(kv, "DOCKER_") {
			continue
		}
		b.env = append(b.env, kv)
	}
	b.env = append(b.env,
		"DOCKER_CONFIG="+b.dockerCfg,
		"BERTH_CONFIG="+filepath.Join(dir, "berth-config.json"), // missing: defaults
	)
	return b
}

// result is the outcome of one berth invocation.
type result struct {
	args           []string
	stdout, stderr string
	code           int // -1 when killed by a signal
	err            error
}

func (r result) String() string {
	return fmt.Sprintf("berth %s: exit %d (%v)\nstdout:\n%s\nstderr:\n%s", strings.Join(r.args, " "), r.code, r.err, r.stdout, r.stderr)
}

// command returns an unstarted berth command with args (after --root).
func (b *berth) command(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, berthBin, append([]string{"--root", b.root}, args...)...)
	cmd.Env = b.env
	return cmd
}

// run runs berth with args and stdin (nil: empty) and returns what it did.
// It is safe to call from any goroutine; timedOut reports a hang.
func (b *berth) run(ctx context.Context, stdin io.Reader, args ...string) (res result, timedOut bool) {
	ctx, cancel := context.WithTimeout(ctx, commandTimeout)
	defer cancel()
	cmd := b.command(ctx, args...)
	cmd.Stdin = stdin
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	err := cmd.Run()
	res = result{args: args, stdout: stdout.String(), stderr: stderr.String(), err: err}
	res.code = exitCode(cmd, err)
	return res, ctx.Err() != nil
}

// exec runs berth with args and stdin (nil: empty) and returns what it
// did; t fails if berth does not finish within commandTimeout.
func (b *berth) exec(t *testing.T, stdin io.Reader, args ...string) result {
	t.Helper()
	res, timedOut := b.run(t.Context(), stdin, args...)
	if timedOut {
		t.Fatalf("berth %s did not finish within %s\n%s", strings.Join(args, " "), commandTimeout, res)
	}
	return res
}

func exitCode(cmd *exec.Cmd, err error) int {
	if cmd.ProcessState != nil {
		return cmd.ProcessState.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}

// ok runs berth with args, fails t unless it exits 0, and returns stdout.
func (b *berth) ok(t *testing.T, args ...string) string {
	t.Helper()
	res := b.exec(t, nil, args...)
	if res.code != 0 {
		t.Fatalf("want exit 0:\n%s", res)
	}
	return res.stdout
}

// names returns the REPOSITORY:TAG names berth images lists, sorted.
func (b *berth) names(t *testing.T) []string {
	t.Helper()
	out := b.ok(t, "images", "--format", "{{.Repository}}:{{.Tag}}")
	names := strings.Fields(out)
	sort.Strings(names)
	return names
}

// id returns the image ID berth reports for ref.
func (b *berth) id(t *testing.T, ref string) string {
	t.Helper()
	id := strings.TrimSpace(b.ok(t, "inspect", "-f", "{{.Id}}", ref))
	if !strings.HasPrefix(id, "sha256:") || len(id) != len("sha256:")+64 {
		t.Fatalf("berth inspect -f {{.Id}} %s = %q, want sha256:<64 hex>", ref, id)
	}
	return id
}

// verify runs berth image verify and fails t unless the store is sound.
func (b *berth) verify(t *testing.T) {
	t.Helper()
	res := b.exec(t, nil, "image", "verify")
	if res.code != 0 || !strings.HasPrefix(res.stdout, "OK:") {
		t.Fatalf("image verify: want exit 0 and OK:\n%s", res)
	}
}

func (b *berth) storeDir() string { return filepath.Join(b.root, "images") }

// ingestFiles lists what is in the store's ingest directory (nothing if
// the store does not exist).
func (b *berth) ingestFiles(t *testing.T) []string {
	t.Helper()
	return listDir(t, filepath.Join(b.storeDir(), "ingest"))
}

// blobFiles lists the digests stored under blobs/sha256, as "sha256:<hex>".
func (b *berth) blobFiles(t *testing.T) []string {
	t.Helper()
	var out []string
	for _, n := range listDir(t, filepath.Join(b.storeDir(), "blobs", "sha256")) {
		out = append(out, "sha256:"+n)
	}
	return out
}

func listDir(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	return names
}

// referencedBlobs reads the store as the OCI image layout it is (with
// go-containerregistry, not berth) and returns every digest its index
// reaches: manifests, indexes, configs and layers.
func (b *berth) referencedBlobs(t *testing.T) []string {
	t.Helper()
	idx, err := layout.ImageIndexFromPath(b.storeDir())
	if err != nil {
		t.Fatalf("read store as OCI layout: %v", err)
	}
	set := map[string]bool{}
	var walk func(idx v1.ImageIndex)
	walk = func(idx v1.ImageIndex) {
		im, err := idx.IndexManifest()
		if err != nil {
			t.Fatalf("read store index: %v", err)
		}
		for _, d := range im.Manifests {
			set[d.Digest.String()] = true
			switch {
			case d.MediaType.IsIndex():
				child, err := idx.ImageIndex(d.Digest)
				if err != nil {
					t.Fatalf("open index %s: %v", d.Digest, err)
				}
				walk(child)
			case d.MediaType.IsImage():
				img, err := idx.Image(d.Digest)
				if err != nil {
					t.Fatalf("open image %s: %v", d.Digest, err)
				}
				m, err := img.Manifest()
				if err != nil {
					t.Fatalf("read manifest %s: %v", d.Digest, err)
				}
				set[m.Config.Digest.String()] = true
				for _, l := range m.Layers {
					set[l.Digest.String()] = true
				}
			default:
				t.Fatalf("store index entry %s has media type %q", d.Digest, d.MediaType)
			}
		}
	}
	walk(idx)
	return sortedKeys(set)
}

// checkNoOrphans runs image prune -f and checks that afterwards the store
// holds exactly the blobs its images reference and nothing in ingest/.
func (b *berth) checkNoOrphans(t *testing.T) {
	t.Helper()
	b.ok(t, "image", "prune", "-f")
	if ing := b.ingestFiles(t); len(ing) > 0 {
		t.Errorf("after image prune -f, ingest/ still holds %q", ing)
	}
	have, want := b.blobFiles(t), b.referencedBlobs(t)
	if !equalStrings(have, want) {
		t.Errorf("after image prune -f, blobs/sha256 holds %d blobs, images reference %d:\nstored:     %q\nreferenced: %q",
			len(have), len(want), have, want)
	}
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// waitFor polls cond every 10ms until it is true or timeout passes.
func waitFor(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
}
