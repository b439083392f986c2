package e2e

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"golang.org/x/crypto/bcrypt"

	"github.com/berthsh/berth/pkg/registry"
)

// Throttling of blob downloads: throttleChunk bytes, then throttlePause.
// A 4 MiB layer then takes about 2.5 s.
const (
	throttleChunk = 64 << 10
	throttlePause = 40 * time.Millisecond
)

// faultRegistry is berth's embedded registry (pkg/registry) behind a
// middleware that can slow down or damage blob downloads.
type faultRegistry struct {
	host string // 127.0.0.1:PORT
	auth authn.Authenticator

	throttle atomic.Bool // serve blob GETs slowly
	corrupt  atomic.Bool // flip a byte in large blob GETs
	blobGets atomic.Int64
}

// startFaultRegistry serves an embedded registry with storage in a
// t.TempDir() on a loopback port until the test ends. With user set, the
// registry checks basic-auth credentials against an htpasswd file holding
// user:password.
func startFaultRegistry(t *testing.T, user, password string) *faultRegistry {
	t.Helper()
	dir := t.TempDir()
	opts := registry.ServerOptions{Root: filepath.Join(dir, "data")}
	r := &faultRegistry{auth: authn.Anonymous}
	if user != "" {
		hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		opts.HtpasswdPath = filepath.Join(dir, "htpasswd")
		if err := os.WriteFile(opts.HtpasswdPath, []byte(user+":"+string(hash)+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		r.auth = &authn.Basic{Username: user, Password: password}
	}
	srv, err := registry.NewServer(t.Context(), opts)
	if err != nil {
		t.Fatalf("embedded registry: %v", err)
	}
	t.Cleanup(func() { srv.Close() })
	next := srv.Handler()
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Method == http.MethodGet && strings.Contains(req.URL.Path, "/blobs/sha256:") {
			r.blobGets.Add(1)
			switch {
			case r.throttle.Load():
				w = &slowWriter{ResponseWriter: w, done: req.Context().Done()}
			case r.corrupt.Load():
				w = &corruptWriter{ResponseWriter: w}
			}
		}
		next.ServeHTTP(w, req)
	}))
	t.Cleanup(ts.Close)
	r.host = strings.TrimPrefix(ts.URL, "http://")
	return r
}

// push uploads img to the registry as host/repoTag.
func (r *faultRegistry) push(t *testing.T, repoTag string, img v1.Image) string {
	t.Helper()
	ref, err := name.ParseReference(r.host + "/" + repoTag)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	if err := remote.Write(ref, img, remote.WithContext(ctx), remote.WithAuth(r.auth)); err != nil {
		t.Fatalf("push %s: %v", ref, err)
	}
	return ref.String()
}

// slowWriter writes a response in throttleChunk pieces with a pause after
// each, and gives up when the client goes away.
type slowWriter struct {
	http.ResponseWriter
	done <-chan struct{}
}

func (w *slowWriter) Write(p []byte) (int, error) {
	written := 0
	for len(p) > 0 {
		n := min(len(p), throttleChunk)
		m, err := w.ResponseWriter.Write(p[:n])
		written += m
		if err != nil {
			return written, err
		}
		if f, ok := w.ResponseWriter.(http.Flusher); ok {
			f.Flush()
		}
		p = p[n:]
		select {
		case <-w.done:
			return written, io.ErrClosedPipe
		case <-time.After(throttlePause):
		}
	}
	return written, nil
}

// corruptWriter flips one bit in the first chunk of a blob of at least
// 64 KiB (layers, not configs), keeping its length.
type corruptWriter struct {
	http.ResponseWriter
	done bool
}

func (w *corruptWriter) Write(p []byte) (int, error) {
	if !w.done && len(p) > 0 {
		w.done = true
		if n, _ := strconv.ParseInt(w.Header().Get("Content-Length"), 10, 64); n >= 64<<10 {
			q := append([]byte(nil), p...)
			q[len(q)/2] ^= 0x01
			return w.ResponseWriter.Write(q)
		}
	}
	return w.ResponseWriter.Write(p)
}

// randomLayer returns a gzip layer holding size bytes of random content.
func randomLayer(t *testing.T, size int64) v1.Layer {
	t.Helper()
	l, err := random.Layer(size, types.DockerLayer)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// imageOf builds a linux image for this machine's architecture from layers.
func imageOf(t *testing.T, layers ...v1.Layer) v1.Image {
	t.Helper()
	img, err := mutate.AppendLayers(empty.Image, layers...)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", runtime.GOARCH
	cf.Config.Cmd = []string{"/bin/true"}
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// imageBlobs returns the digests of img's manifest, config and layers.
func imageBlobs(t *testing.T, img v1.Image) []string {
	t.Helper()
	set := map[string]bool{}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	set[d.String()] = true
	c, err := img.ConfigName()
	if err != nil {
		t.Fatal(err)
	}
	set[c.String()] = true
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range layers {
		ld, err := l.Digest()
		if err != nil {
			t.Fatal(err)
		}
		set[ld.String()] = true
	}
	return sortedKeys(set)
}

// writeDockerAuth stores user:password for host in b's docker config file,
// as 'docker login' would.
func (b *berth) writeDockerAuth(t *testing.T, host, user, password string) {
	t.Helper()
	cfg := map[string]any{"auths": map[string]any{
		host: map[string]string{"auth": base64.StdEncoding.EncodeToString([]byte(user + ":" + password))},
	}}
	data, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(b.dockerCfg, "config.json"), data, 0o600); err != nil {
		t.Fatal(err)
	}
}
