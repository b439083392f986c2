package registry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/berthsh/berth/pkg/errdefs"
	"github.com/berthsh/berth/pkg/reference"
	"github.com/berthsh/berth/pkg/store"
)

// reqLog records the requests a test registry saw.
type reqLog struct {
	mu   sync.Mutex
	reqs []*http.Request
}

func (l *reqLog) record(r *http.Request) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.reqs = append(l.reqs, r.Clone(context.Background()))
}

func (l *reqLog) count(pred func(r *http.Request) bool) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, r := range l.reqs {
		if pred(r) {
			n++
		}
	}
	return n
}

func (l *reqLog) reset() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.reqs = nil
}

func (l *reqLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var b strings.Builder
	for _, r := range l.reqs {
		fmt.Fprintf(&b, "%s %s\n", r.Method, r.URL.RequestURI())
	}
	return b.String()
}

// countingTransport records every request a client sends.
type countingTransport struct {
	base http.RoundTripper
	log  *reqLog
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.log.record(r)
	return c.base.RoundTrip(r)
}

func isBlobGet(r *http.Request) bool {
	return r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/blobs/sha256:")
}

func isBlobUpload(r *http.Request) bool {
	return (r.Method == http.MethodPatch || r.Method == http.MethodPut) && strings.Contains(r.URL.Path, "/blobs/uploads/")
}

// startMem serves go-containerregistry's in-memory registry on loopback,
// optionally behind wrap, and returns its host:port and request log.
func startMem(t *testing.T, wrap func(http.Handler) http.Handler) (string, *reqLog) {
	t.Helper()
	var h http.Handler = ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0)))
	if wrap != nil {
		h = wrap(h)
	}
	rl := &reqLog{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rl.record(r)
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://"), rl
}

// startDistribution serves berth's embedded (distribution v3) registry
// on loopback.
func startDistribution(t *testing.T) string {
	t.Helper()
	srv, err := NewServer(t.Context(), ServerOptions{Root: filepath.Join(t.TempDir(), "registry")})
	if err != nil {
		t.Fatalf("NewServer: %v", err)
	}
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(func() {
		ts.Close()
		srv.Close()
	})
	return strings.TrimPrefix(ts.URL, "http://")
}

func mustRef(t *testing.T, s string) reference.Reference {
	t.Helper()
	r, err := reference.Parse(s)
	if err != nil {
		t.Fatalf("parse %q: %v", s, err)
	}
	return r
}

// upload writes img to the registry with ggcr directly (test setup).
func upload(t *testing.T, ref string, img v1.Image) {
	t.Helper()
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(r, img); err != nil {
		t.Fatalf("upload %s: %v", ref, err)
	}
}

func newStore(t *testing.T) *store.Store {
	t.Helper()
	s, err := store.Open(t.Context(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func blobCount(t *testing.T, s *store.Store) int {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(s.Dir(), "blobs", "sha256"))
	if err != nil {
		t.Fatal(err)
	}
	return len(entries)
}

// anonymous is a keychain with no credentials, so tests never read the
// user's docker config.
var anonymous = authn.NewMultiKeychain()

// staticKeychain returns the same credentials for every registry.
type staticKeychain struct{ user, pass string }

func (k staticKeychain) Resolve(authn.Resource) (authn.Authenticator, error) {
	return &authn.Basic{Username: k.user, Password: k.pass}, nil
}

// progressLog collects progress reports.
type progressLog struct {
	mu  sync.Mutex
	evs []store.Progress
}

func (p *progressLog) add(ev store.Progress) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.evs = append(p.evs, ev)
}

// final returns the last report of each layer that was marked Done.
func (p *progressLog) final() map[v1.Hash]store.Progress {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := map[v1.Hash]store.Progress{}
	for _, ev := range p.evs {
		if ev.Kind == "layer" && ev.Done {
			out[ev.Digest] = ev
		}
	}
	return out
}

func TestClassify(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		err  error
		want error
	}{
		{"401", &transport.Error{StatusCode: 401}, errdefs.ErrUnauthorized},
		{"403", &transport.Error{StatusCode: 403}, errdefs.ErrUnauthorized},
		{"denied code", &transport.Error{StatusCode: 400, Errors: []transport.Diagnostic{{Code: transport.DeniedErrorCode}}}, errdefs.ErrUnauthorized},
		{"404", &transport.Error{StatusCode: 404}, errdefs.ErrNotFound},
		{"manifest unknown", &transport.Error{StatusCode: 400, Errors: []transport.Diagnostic{{Code: transport.ManifestUnknownErrorCode}}}, errdefs.ErrNotFound},
		{"name unknown", &transport.Error{StatusCode: 400, Errors: []transport.Diagnostic{{Code: transport.NameUnknownErrorCode}}}, errdefs.ErrNotFound},
		{"503", &transport.Error{StatusCode: 503}, errdefs.ErrUnavailable},
		{"429", &transport.Error{StatusCode: 429}, errdefs.ErrUnavailable},
		{"digest invalid", &transport.Error{StatusCode: 400, Errors: []transport.Diagnostic{{Code: transport.DigestInvalidErrorCode}}}, errdefs.ErrDataCorrupt},
		{"manifest invalid", &transport.Error{StatusCode: 400, Errors: []transport.Diagnostic{{Code: transport.ManifestInvalidErrorCode}}}, errdefs.ErrInvalidArgument},
		{"wrapped", fmt.Errorf("GET x: %w", &transport.Error{StatusCode: 404}), errdefs.ErrNotFound},
		{"http to https", errors.New(`Get "https://x/v2/": http: server gave HTTP response to HTTPS client`), errdefs.ErrUnavailable},
		{"deadline", context.DeadlineExceeded, errdefs.ErrUnavailable},
		{"verify", errors.New("error verifying sha256 checksum after reading 10 bytes"), errdefs.ErrDataCorrupt},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := classify(tt.err, "reg.example")
			if !errors.Is(got, tt.want) {
				t.Fatalf("classify(%v) = %v, want %v", tt.err, got, tt.want)
			}
			if !errors.Is(got, tt.err) && !errors.Is(tt.err, context.DeadlineExceeded) {
				var terr *transport.Error
				if errors.As(tt.err, &terr) && !errors.As(got, &terr) {
					t.Fatalf("classify lost the cause: %v", got)
				}
			}
		})
	}
	plain := errors.New("something else")
	if got := classify(plain, "r"); got != plain {
		t.Fatalf("unknown error changed: %v", got)
	}
	already := fmt.Errorf("x: %w", errdefs.ErrPermission)
	if got := classify(already, "r"); got != already {
		t.Fatalf("classified error changed: %v", got)
	}
}
