package cli

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"

	"github.com/berthsh/berth/internal/testutil"
	"github.com/berthsh/berth/pkg/reference"
	"github.com/berthsh/berth/pkg/store"
)

// rcEnv is a berth data directory for registry-client CLI tests.
type rcEnv struct {
	t    *testing.T
	root string
	st   *store.Store
}

func newRCEnv(t *testing.T) *rcEnv {
	t.Helper()
	root := t.TempDir()
	st, err := store.Open(context.Background(), filepath.Join(root, "images"))
	if err != nil {
		t.Fatal(err)
	}
	return &rcEnv{t: t, root: root, st: st}
}

// berth runs the CLI against the env's root.
func (e *rcEnv) berth(stdin string, args ...string) (string, string, int) {
	e.t.Helper()
	var out, errOut bytes.Buffer
	code := Main(context.Background(), append([]string{"--root", e.root}, args...), strings.NewReader(stdin), &out, &errOut)
	return out.String(), errOut.String(), code
}

func (e *rcEnv) mustBerth(args ...string) string {
	e.t.Helper()
	out, errOut, code := e.berth("", args...)
	if code != 0 {
		e.t.Fatalf("berth %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

// putRandom stores a random linux/amd64 image with three layers under
// name and returns it.
func (e *rcEnv) putRandom(name string) store.Image {
	e.t.Helper()
	img, err := random.Image(2048, 3)
	if err != nil {
		e.t.Fatal(err)
	}
	cf, _ := img.ConfigFile()
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", "amd64"
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		e.t.Fatal(err)
	}
	ref, err := reference.Parse(name)
	if err != nil {
		e.t.Fatal(err)
	}
	st, err := e.st.WriteImage(context.Background(), img, store.WriteOptions{Names: []reference.Reference{ref}})
	if err != nil {
		e.t.Fatal(err)
	}
	return st
}

func (e *rcEnv) id(nameOrID string) v1.Hash {
	e.t.Helper()
	img, err := e.st.Get(context.Background(), nameOrID)
	if err != nil {
		e.t.Fatalf("get %s: %v", nameOrID, err)
	}
	id, err := e.st.ID(context.Background(), img)
	if err != nil {
		e.t.Fatal(err)
	}
	return id
}

// assertEmpty checks that the store has no image and, after GC, no blob.
func (e *rcEnv) assertEmpty() {
	e.t.Helper()
	ctx := context.Background()
	if imgs, err := e.st.List(ctx); err != nil || len(imgs) != 0 {
		e.t.Fatalf("store has images: %v %v", imgs, err)
	}
	if _, err := e.st.GC(ctx); err != nil {
		e.t.Fatal(err)
	}
	entries, _ := os.ReadDir(filepath.Join(e.root, "images", "blobs", "sha256"))
	if len(entries) != 0 {
		e.t.Fatalf("%d blobs left after GC", len(entries))
	}
}

func outLines(s string) []string {
	return strings.Split(strings.TrimRight(s, "\n"), "\n")
}

func TestPushPullCLI(t *testing.T) {
	t.Parallel()
	for _, reg := range []struct {
		name  string
		start func(testing.TB) string
	}{
		{"embedded", testutil.StartRegistry},
		{"docker-registry", testutil.StartDockerRegistry},
	} {
		t.Run(reg.name, func(t *testing.T) {
			t.Parallel()
			host := reg.start(t)
			name := host + "/cli/app:v1"
			a := newRCEnv(t)
			local := a.putRandom(name)
			localID := a.id(name)

			out := a.mustBerth("push", name)
			lines := outLines(out)
			if lines[0] != "The push refers to repository ["+host+"/cli/app]" {
				t.Errorf("first line %q", lines[0])
			}
			if want := "v1: digest: " + local.Manifest.Digest.String() + " size: " + itoa(local.Manifest.Size); lines[len(lines)-1] != want {
				t.Errorf("last line %q, want %q", lines[len(lines)-1], want)
			}
			if n := strings.Count(out, ": Pushed\n"); n != 3 {
				t.Errorf("%d layers reported pushed:\n%s", n, out)
			}
			// Pushing again uploads nothing.
			if out := a.mustBerth("push", name); strings.Contains(out, ": Pushed\n") {
				t.Errorf("second push uploaded layers:\n%s", out)
			}
			if out := a.mustBerth("push", "-q", name); out != name+"\n" {
				t.Errorf("push -q printed %q", out)
			}

			b := newRCEnv(t)
			out = b.mustBerth("pull", name)
			lines = outLines(out)
			want := []string{"v1: Pulling from cli/app"}
			if lines[0] != want[0] {
				t.Errorf("first line %q, want %q", lines[0], want[0])
			}
			tail := lines[len(lines)-3:]
			wantTail := []string{"Digest: " + local.Manifest.Digest.String(), "Status: Downloaded newer image for " + name, name}
			if strings.Join(tail, "\n") != strings.Join(wantTail, "\n") {
				t.Errorf("pull output ends with %q, want %q", tail, wantTail)
			}
			if n := strings.Count(out, ": Pull complete\n"); n != 3 {
				t.Errorf("%d layers reported pulled:\n%s", n, out)
			}
			if id := b.id(name); id != localID {
				t.Fatalf("pulled image ID %s, pushed %s", id, localID)
			}
			out = b.mustBerth("pull", name)
			if !strings.Contains(out, "Status: Image is up to date for "+name+"\n") {
				t.Errorf("second pull:\n%s", out)
			}
			if out := b.mustBerth("pull", "-q", name); out != name+"\n" {
				t.Errorf("pull -q printed %q", out)
			}

			// By digest, into a fresh store.
			c := newRCEnv(t)
			byDigest := host + "/cli/app@" + local.Manifest.Digest.String()
			out = c.mustBerth("image", "pull", byDigest)
			if !strings.HasPrefix(out, local.Manifest.Digest.String()+": Pulling from cli/app\n") || !strings.HasSuffix(out, "\n"+byDigest+"\n") {
				t.Errorf("pull by digest:\n%s", out)
			}
			if id := c.id(byDigest); id != localID {
				t.Fatalf("pulled by digest: ID %s", id)
			}

			// zstd: another tag; same image ID once pulled back.
			zname := host + "/cli/app:zstd"
			a.mustBerth("tag", name, zname)
			out = a.mustBerth("image", "push", "--compression", "zstd", zname)
			m := regexp.MustCompile(`(?m)^zstd: digest: (sha256:[0-9a-f]{64}) size: \d+$`).FindStringSubmatch(out)
			if m == nil || m[1] == local.Manifest.Digest.String() {
				t.Fatalf("zstd push output:\n%s", out)
			}
			d := newRCEnv(t)
			d.mustBerth("pull", zname)
			if id := d.id(zname); id != localID {
				t.Fatalf("zstd image pulled with ID %s, want %s", id, localID)
			}
			dimg, _ := d.st.Get(context.Background(), zname)
			dm, err := d.st.Manifest(context.Background(), dimg)
			if err != nil {
				t.Fatal(err)
			}
			for _, l := range dm.Layers {
				if l.MediaType != "application/vnd.oci.image.layer.v1.tar+zstd" {
					t.Errorf("pulled layer media type %s", l.MediaType)
				}
			}
		})
	}
}

func itoa(n int64) string {
	b, _ := json.Marshal(n)
	return string(b)
}

func TestPullPushFailuresCLI(t *testing.T) {
	t.Parallel()
	host := testutil.StartRegistry(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()

	tests := []struct {
		name     string
		args     []string
		code     int
		contains string
		hint     bool
	}{
		{"malformed reference", []string{"pull", "Bad Name"}, 125, "invalid reference", false},
		{"bad platform", []string{"pull", "--platform", "linux", host + "/x:v1"}, 125, "--platform", false},
		{"unknown tag", []string{"pull", host + "/cli/none:nope"}, 1, "manifest for " + host + "/cli/none:nope not found", false},
		{"unreachable", []string{"pull", closed + "/x/app:v1"}, 1, "cannot reach registry " + closed, true},
		{"default tag missing", []string{"pull", host + "/cli/none"}, 1, "manifest for " + host + "/cli/none:latest not found", false},
		{"push missing local image", []string{"push", host + "/cli/none:v1"}, 1, "no such image", false},
		{"push bad compression", []string{"push", "--compression", "lz4", host + "/cli/none:v1"}, 125, "unknown compression", false},
		{"push digest", []string{"push", host + "/cli/none@sha256:" + strings.Repeat("a", 64)}, 125, "digest", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newRCEnv(t)
			out, errOut, code := e.berth("", tt.args...)
			if code != tt.code {
				t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tt.code, out, errOut)
			}
			if n := strings.Count(errOut, "Error:"); n != 1 || !strings.HasPrefix(errOut, "Error: ") {
				t.Errorf("stderr should start with one Error line:\n%s", errOut)
			}
			if !strings.Contains(errOut, tt.contains) {
				t.Errorf("stderr does not mention %q:\n%s", tt.contains, errOut)
			}
			if tt.hint && !strings.Contains(errOut, "\nHint: ") {
				t.Errorf("no hint:\n%s", errOut)
			}
			e.assertEmpty()
		})
	}

	t.Run("push unreachable", func(t *testing.T) {
		t.Parallel()
		e := newRCEnv(t)
		name := closed + "/x/app:v1"
		local := e.putRandom(name)
		_, errOut, code := e.berth("", "push", name)
		if code != 1 || !strings.HasPrefix(errOut, "Error: push "+name+": cannot reach registry "+closed) || !strings.Contains(errOut, "\nHint: ") {
			t.Fatalf("exit %d\n%s", code, errOut)
		}
		// The local image is untouched.
		if img, err := e.st.Get(context.Background(), name); err != nil || img.Manifest.Digest != local.Manifest.Digest || len(img.RepoDigests) != 0 {
			t.Fatalf("local image changed: %+v %v", img, err)
		}
	})
}

// startAuthRegistry serves an in-memory registry that requires basic auth
// with user:pass.
func startAuthRegistry(t *testing.T, user, pass string) string {
	t.Helper()
	mem := ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0)))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != user || p != pass {
			w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			w.Write([]byte(`{"errors":[{"code":"UNAUTHORIZED","message":"incorrect username or password"}]}`))
			return
		}
		mem.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

func TestLoginLogoutCLI(t *testing.T) {
	dockerDir := t.TempDir()
	t.Setenv("HOME", t.TempDir())
	t.Setenv("DOCKER_CONFIG", dockerDir)
	t.Setenv("PATH", t.TempDir()) // no credential helper to detect
	t.Setenv("BERTH_CONFIG", filepath.Join(t.TempDir(), "none.json"))
	host := startAuthRegistry(t, "alice", "s3cret")
	e := newRCEnv(t)
	name := host + "/auth/app:v1"
	local := e.putRandom(name)

	// Without credentials push and pull are refused.
	_, errOut, code := e.berth("", "push", name)
	if code != 1 || !strings.Contains(errOut, "push access denied") || !strings.Contains(errOut, "Hint: ") {
		t.Fatalf("push without login: exit %d\n%s", code, errOut)
	}

	_, errOut, code = e.berth("wrong\n", "login", "-u", "alice", "--password-stdin", host)
	if code != 1 || !strings.HasPrefix(errOut, "Error: login to "+host+": ") || !strings.Contains(errOut, "Hint: ") {
		t.Fatalf("wrong password: exit %d\n%s", code, errOut)
	}
	if _, err := os.Stat(filepath.Join(dockerDir, "config.json")); err == nil {
		t.Fatal("config.json written after a failed login")
	}

	out, errOut, code := e.berth("s3cret\n", "login", "-u", "alice", "--password-stdin", host)
	if code != 0 || out != "Login Succeeded\n" {
		t.Fatalf("login: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	if !strings.Contains(errOut, "stored unencrypted in "+filepath.Join(dockerDir, "config.json")) {
		t.Errorf("no unencrypted-storage warning:\n%s", errOut)
	}
	var cf struct {
		Auths map[string]struct{ Auth string } `json:"auths"`
	}
	b, err := os.ReadFile(filepath.Join(dockerDir, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &cf); err != nil {
		t.Fatal(err)
	}
	if got := cf.Auths[host].Auth; got != base64.StdEncoding.EncodeToString([]byte("alice:s3cret")) {
		t.Fatalf("stored auth %q\n%s", got, b)
	}

	// -p works and warns.
	out, errOut, code = e.berth("", "login", "-u", "alice", "-p", "s3cret", host)
	if code != 0 || !strings.Contains(errOut, "WARNING! Using --password via the CLI is insecure") {
		t.Fatalf("login -p: exit %d\n%s%s", code, out, errOut)
	}

	e.mustBerth("push", name)
	other := newRCEnv(t)
	other.mustBerth("pull", name)
	if other.id(name) != e.id(name) {
		t.Fatal("pulled a different image")
	}
	_ = local

	if out := e.mustBerth("logout", host); out != "Removing login credentials for "+host+"\n" {
		t.Fatalf("logout printed %q", out)
	}
	if out := e.mustBerth("logout", host); out != "Not logged in to "+host+"\n" {
		t.Fatalf("second logout printed %q", out)
	}
	third := newRCEnv(t)
	_, errOut, code = third.berth("", "pull", name)
	if code != 1 || !strings.Contains(errOut, "pull access denied") {
		t.Fatalf("pull after logout: exit %d\n%s", code, errOut)
	}
	third.assertEmpty()

	// Usage errors.
	for _, args := range [][]string{
		{"login", "--password-stdin", host},
		{"login", "-u", "alice", "-p", "x", "--password-stdin", host},
		{"login", host}, // stdin is not a terminal
		{"login", "a", "b"},
	} {
		if _, errOut, code := e.berth("", args...); code != 125 {
			t.Errorf("berth %v: exit %d, want 125\n%s", args, code, errOut)
		}
	}
}
