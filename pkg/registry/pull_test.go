package registry

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/berthsh/berth/pkg/errdefs"
	"github.com/berthsh/berth/pkg/reference"
	"github.com/berthsh/berth/pkg/store"
)

// testPull is PullOptions that never read the user's configuration.
func testPull(o PullOptions) PullOptions {
	if o.Keychain == nil {
		o.Keychain = anonymous
	}
	if o.Config == nil {
		o.Config = &Config{}
	}
	return o
}

func rndImage(t *testing.T, layers int64) v1.Image {
	t.Helper()
	img, err := random.Image(1024, layers)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func platformImage(t *testing.T, p v1.Platform) v1.Image {
	t.Helper()
	img := rndImage(t, 2)
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture, cf.Variant = p.OS, p.Architecture, p.Variant
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func digestOf(t *testing.T, d interface{ Digest() (v1.Hash, error) }) v1.Hash {
	t.Helper()
	h, err := d.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestPullSingleImage(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	host, rl := startMem(t, nil)
	img := rndImage(t, 3)
	upload(t, host+"/team/app:v1", img)
	upload(t, host+"/team/app:v2", img)
	s := newStore(t)
	ref := mustRef(t, host+"/team/app:v1")

	var prog progressLog
	res, err := Pull(ctx, s, ref, testPull(PullOptions{Progress: prog.add}))
	if err != nil {
		t.Fatalf("Pull: %v", err)
	}
	want := digestOf(t, img)
	if res.Digest != want || res.Image.Manifest.Digest != want || res.UpToDate || res.Platform != nil {
		t.Fatalf("result %+v, want digest %s, not up to date", res, want)
	}
	if len(res.Image.Names) != 1 || res.Image.Names[0].String() != ref.String() {
		t.Fatalf("names %v", res.Image.Names)
	}
	if wantRD := host + "/team/app@" + want.String(); len(res.Image.RepoDigests) != 1 || res.Image.RepoDigests[0] != wantRD {
		t.Fatalf("repo digests %v, want %s", res.Image.RepoDigests, wantRD)
	}
	m, _ := img.Manifest()
	fin := prog.final()
	for _, l := range m.Layers {
		ev, ok := fin[l.Digest]
		if !ok || ev.Exists || ev.Complete != l.Size {
			t.Errorf("layer %s: final progress %+v (present %v)", l.Digest, ev, ok)
		}
	}
	// The stored image reads back, verified, with the same ID.
	got, err := s.Get(ctx, ref.Familiar())
	if err != nil {
		t.Fatal(err)
	}
	id, err := s.ID(ctx, got)
	if err != nil {
		t.Fatal(err)
	}
	if wantID, _ := img.ConfigName(); id != wantID {
		t.Fatalf("image ID %s, want %s", id, wantID)
	}
	stored, err := s.Image(ctx, got)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range m.Layers {
		sl, err := stored.LayerByDigest(l.Digest)
		if err != nil {
			t.Fatal(err)
		}
		rc, err := sl.Compressed()
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := v1.SHA256(rc); err != nil {
			t.Fatalf("read stored layer: %v", err)
		}
		rc.Close()
	}

	// Pulling again downloads nothing.
	rl.reset()
	res2, err := Pull(ctx, s, ref, testPull(PullOptions{}))
	if err != nil {
		t.Fatal(err)
	}
	if !res2.UpToDate || res2.Image.Manifest.Digest != want {
		t.Fatalf("second pull: %+v, want up to date", res2)
	}
	if n := rl.count(isBlobGet); n != 0 {
		t.Fatalf("second pull fetched %d blobs:\n%s", n, rl)
	}

	// Another tag of the same image: every layer is already there.
	var prog2 progressLog
	rl.reset()
	res3, err := Pull(ctx, s, mustRef(t, host+"/team/app:v2"), testPull(PullOptions{Progress: prog2.add}))
	if err != nil {
		t.Fatal(err)
	}
	if res3.UpToDate || len(res3.Image.Names) != 2 {
		t.Fatalf("pull v2: %+v", res3)
	}
	fin = prog2.final()
	for _, l := range m.Layers {
		if ev := fin[l.Digest]; !ev.Exists {
			t.Errorf("layer %s: want Exists, got %+v", l.Digest, ev)
		}
	}
	for _, r := range rl.reqs {
		if isBlobGet(r) && !strings.HasSuffix(r.URL.Path, digestOfConfig(t, img)) {
			t.Errorf("pull v2 fetched layer blob %s", r.URL.Path)
		}
	}
}

func digestOfConfig(t *testing.T, img v1.Image) string {
	t.Helper()
	h, err := img.ConfigName()
	if err != nil {
		t.Fatal(err)
	}
	return h.String()
}

func TestPullIndexSelectsPlatform(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	host, _ := startMem(t, nil)
	amd := platformImage(t, v1.Platform{OS: "linux", Architecture: "amd64"})
	arm := platformImage(t, v1.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"})
	idx := mutate.AppendManifests(empty.Index,
		mutate.IndexAddendum{Add: amd, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}},
		mutate.IndexAddendum{Add: arm, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}}},
	)
	ref := mustRef(t, host+"/multi/app:1")
	r, _ := ref.Name(false)
	if err := remoteWriteIndex(r, idx); err != nil {
		t.Fatal(err)
	}
	idxDigest := digestOf(t, idx)

	tests := []struct {
		name     string
		platform *v1.Platform
		want     v1.Image
	}{
		{"explicit amd64", &v1.Platform{OS: "linux", Architecture: "amd64"}, amd},
		{"arm64", &v1.Platform{OS: "linux", Architecture: "arm64"}, arm},
	}
	if dp := DefaultPlatform(); dp.OS == "linux" && (dp.Architecture == "amd64" || dp.Architecture == "arm64") {
		want := amd
		if dp.Architecture == "arm64" {
			want = arm
		}
		tests = append(tests, struct {
			name     string
			platform *v1.Platform
			want     v1.Image
		}{"host default", nil, want})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStore(t)
			res, err := Pull(ctx, s, ref, testPull(PullOptions{Platform: tt.platform}))
			if err != nil {
				t.Fatalf("Pull: %v", err)
			}
			if res.Digest != idxDigest {
				t.Errorf("digest %s, want index digest %s", res.Digest, idxDigest)
			}
			if want := digestOf(t, tt.want); res.Image.Manifest.Digest != want {
				t.Errorf("manifest %s, want %s", res.Image.Manifest.Digest, want)
			}
			if wantRD := host + "/multi/app@" + idxDigest.String(); len(res.Image.RepoDigests) != 1 || res.Image.RepoDigests[0] != wantRD {
				t.Errorf("repo digests %v, want [%s]", res.Image.RepoDigests, wantRD)
			}
			cf, _, err := s.ConfigFile(ctx, res.Image)
			if err != nil {
				t.Fatal(err)
			}
			wantCf, _ := tt.want.ConfigFile()
			if cf.Architecture != wantCf.Architecture {
				t.Errorf("stored arch %s, want %s", cf.Architecture, wantCf.Architecture)
			}
		})
	}

	t.Run("no match", func(t *testing.T) {
		s := newStore(t)
		_, err := Pull(ctx, s, ref, testPull(PullOptions{Platform: &v1.Platform{OS: "linux", Architecture: "s390x"}}))
		if !errors.Is(err, errdefs.ErrNotFound) {
			t.Fatalf("err = %v, want ErrNotFound", err)
		}
		t.Log(err)
		for _, want := range []string{"linux/s390x", "linux/amd64", "linux/arm64/v8"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not mention %s", err, want)
			}
		}
		if imgs, _ := s.List(ctx); len(imgs) != 0 {
			t.Errorf("store has %d images", len(imgs))
		}
	})

	t.Run("by index digest", func(t *testing.T) {
		s := newStore(t)
		dref := mustRef(t, host+"/multi/app@"+idxDigest.String())
		res, err := Pull(ctx, s, dref, testPull(PullOptions{Platform: &v1.Platform{OS: "linux", Architecture: "arm64"}}))
		if err != nil {
			t.Fatal(err)
		}
		if res.Image.Manifest.Digest != digestOf(t, arm) || len(res.Image.Names) != 0 {
			t.Fatalf("result %+v", res)
		}
	})
}

func TestPlatformScore(t *testing.T) {
	t.Parallel()
	tests := []struct {
		want, have v1.Platform
		ok         bool
	}{
		{v1.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}, v1.Platform{OS: "linux", Architecture: "arm64"}, true},
		{v1.Platform{OS: "linux", Architecture: "arm64"}, v1.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}, true},
		{v1.Platform{OS: "linux", Architecture: "arm", Variant: "v7"}, v1.Platform{OS: "linux", Architecture: "arm", Variant: "v6"}, true},
		{v1.Platform{OS: "linux", Architecture: "arm", Variant: "v6"}, v1.Platform{OS: "linux", Architecture: "arm", Variant: "v7"}, false},
		{v1.Platform{OS: "linux", Architecture: "amd64"}, v1.Platform{OS: "linux", Architecture: "arm64"}, false},
		{v1.Platform{OS: "linux", Architecture: "amd64"}, v1.Platform{OS: "windows", Architecture: "amd64"}, false},
	}
	for _, tt := range tests {
		if got := platformScore(tt.want, &tt.have) > 0; got != tt.ok {
			t.Errorf("platformScore(%v, %v) > 0 = %v, want %v", tt.want, tt.have, got, tt.ok)
		}
	}
	// An exact variant beats an older one.
	im := &v1.IndexManifest{Manifests: []v1.Descriptor{
		{Digest: v1.Hash{Algorithm: "sha256", Hex: "a"}, Platform: &v1.Platform{OS: "linux", Architecture: "arm", Variant: "v6"}},
		{Digest: v1.Hash{Algorithm: "sha256", Hex: "b"}, Platform: &v1.Platform{OS: "linux", Architecture: "arm", Variant: "v7"}},
	}}
	d, err := selectPlatform(im, v1.Platform{OS: "linux", Architecture: "arm", Variant: "v7"})
	if err != nil || d.Digest.Hex != "b" {
		t.Fatalf("selectPlatform = %v, %v", d, err)
	}
	// An entry without a platform is the fallback.
	im.Manifests = append(im.Manifests, v1.Descriptor{Digest: v1.Hash{Algorithm: "sha256", Hex: "c"}})
	if d, err := selectPlatform(im, v1.Platform{OS: "linux", Architecture: "arm", Variant: "v7"}); err != nil || d.Digest.Hex != "b" {
		t.Fatalf("with a platform-less entry: %v, %v", d, err)
	}
	if d, err := selectPlatform(im, v1.Platform{OS: "linux", Architecture: "riscv64"}); err != nil || d.Digest.Hex != "c" {
		t.Fatalf("fallback to the platform-less entry: %v, %v", d, err)
	}
}

func TestPullByDigest(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	host, _ := startMem(t, nil)
	img := rndImage(t, 1)
	upload(t, host+"/d/app:v1", img)
	d := digestOf(t, img)
	s := newStore(t)
	ref := mustRef(t, host+"/d/app@"+d.String())
	res, err := Pull(ctx, s, ref, testPull(PullOptions{}))
	if err != nil {
		t.Fatal(err)
	}
	if res.Image.Manifest.Digest != d || len(res.Image.Names) != 0 || res.UpToDate {
		t.Fatalf("result %+v", res)
	}
	if got, err := s.Get(ctx, ref.String()); err != nil || got.Manifest.Digest != d {
		t.Fatalf("Get by digest: %v %v", got, err)
	}
	res, err = Pull(ctx, s, ref, testPull(PullOptions{}))
	if err != nil || !res.UpToDate {
		t.Fatalf("second pull by digest: %+v %v", res, err)
	}
}

// corruptBlob serves the blob with the given digest with one byte changed.
func corruptBlob(digest string) func(http.Handler) http.Handler {
	return func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method != http.MethodGet || !strings.HasSuffix(r.URL.Path, "/blobs/"+digest) {
				h.ServeHTTP(w, r)
				return
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, r)
			body := rec.Body.Bytes()
			if len(body) > 0 {
				body[len(body)/2] ^= 0xff
			}
			for k, v := range rec.Header() {
				w.Header()[k] = v
			}
			w.WriteHeader(rec.Code)
			w.Write(body)
		})
	}
}

func TestPullCorruptLayer(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	img := rndImage(t, 3)
	m, _ := img.Manifest()
	bad := m.Layers[1].Digest
	host, _ := startMem(t, corruptBlob(bad.String()))
	upload(t, host+"/c/app:v1", img)
	s := newStore(t)

	_, err := Pull(ctx, s, mustRef(t, host+"/c/app:v1"), testPull(PullOptions{}))
	if !errors.Is(err, errdefs.ErrDataCorrupt) {
		t.Fatalf("err = %v, want ErrDataCorrupt", err)
	}
	t.Log(err)
	if !strings.Contains(err.Error(), bad.String()) {
		t.Fatalf("error %q does not name layer %s", err, bad)
	}
	if imgs, _ := s.List(ctx); len(imgs) != 0 {
		t.Fatalf("store has images after failed pull: %v", imgs)
	}
	if _, err := s.GC(ctx); err != nil {
		t.Fatal(err)
	}
	if n := blobCount(t, s); n != 0 {
		t.Fatalf("%d blobs left after GC", n)
	}
}

func TestPullNotFound(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	host, _ := startMem(t, nil)
	upload(t, host+"/n/app:v1", rndImage(t, 1))
	for _, r := range []string{host + "/n/app:nope", host + "/n/other:v1"} {
		s := newStore(t)
		_, err := Pull(ctx, s, mustRef(t, r), testPull(PullOptions{}))
		if !errors.Is(err, errdefs.ErrNotFound) {
			t.Fatalf("%s: err = %v, want ErrNotFound", r, err)
		}
		t.Log(err)
		if !strings.Contains(err.Error(), "manifest for "+r+" not found") {
			t.Errorf("%s: message %q", r, err)
		}
		if imgs, _ := s.List(ctx); len(imgs) != 0 || blobCount(t, s) != 0 {
			t.Errorf("%s: store changed", r)
		}
	}
}

func TestPullUnreachable(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	host := ln.Addr().String()
	ln.Close()
	s := newStore(t)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	start := time.Now()
	_, err = Pull(ctx, s, mustRef(t, host+"/x/app:v1"), testPull(PullOptions{}))
	if !errors.Is(err, errdefs.ErrUnavailable) {
		t.Fatalf("err = %v, want ErrUnavailable", err)
	}
	t.Log(err)
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("failing took %s", d)
	}
	if !strings.Contains(err.Error(), host) {
		t.Errorf("error %q does not name the registry", err)
	}
}

// requireBasic answers 401 unless the request carries user:pass.
func requireBasic(user, pass string) func(http.Handler) http.Handler {
	return func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			u, p, ok := r.BasicAuth()
			if !ok || u != user || p != pass {
				w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusUnauthorized)
				w.Write([]byte(`{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`))
				return
			}
			h.ServeHTTP(w, r)
		})
	}
}

func TestPullUnauthorized(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	host, _ := startMem(t, requireBasic("alice", "s3cret"))
	ref := mustRef(t, host+"/private/app:v1")
	s := newStore(t)
	// Upload with the right credentials through Push.
	local := storeRandom(t, s, ref, 1)

	if _, err := Push(ctx, s, ref.String(), ref, testPush(PushOptions{Keychain: staticKeychain{"alice", "s3cret"}})); err != nil {
		t.Fatalf("push with credentials: %v", err)
	}
	for _, kc := range []struct {
		name string
		opts PullOptions
	}{
		{"anonymous", PullOptions{}},
		{"wrong password", PullOptions{Keychain: staticKeychain{"alice", "nope"}}},
	} {
		s2 := newStore(t)
		_, err := Pull(ctx, s2, ref, testPull(kc.opts))
		if !errors.Is(err, errdefs.ErrUnauthorized) {
			t.Fatalf("%s: err = %v, want ErrUnauthorized", kc.name, err)
		}
		t.Log(err)
		if imgs, _ := s2.List(ctx); len(imgs) != 0 {
			t.Fatalf("%s: store changed", kc.name)
		}
	}
	s3 := newStore(t)
	res, err := Pull(ctx, s3, ref, testPull(PullOptions{Keychain: staticKeychain{"alice", "s3cret"}}))
	if err != nil {
		t.Fatalf("pull with credentials: %v", err)
	}
	if res.Image.Manifest.Digest != local.Manifest.Digest {
		t.Fatalf("digest %s, want %s", res.Image.Manifest.Digest, local.Manifest.Digest)
	}
}

func TestPullInsecureTLS(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	memHost, _ := startMem(t, nil)
	img := rndImage(t, 1)
	upload(t, memHost+"/tls/app:v1", img)
	// A TLS front with a self-signed certificate, proxying to it.
	ts := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r2 := r.Clone(r.Context())
		r2.URL.Scheme, r2.URL.Host, r2.RequestURI = "http", memHost, ""
		resp, err := http.DefaultTransport.RoundTrip(r2)
		if err != nil {
			w.WriteHeader(http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		for k, v := range resp.Header {
			w.Header()[k] = v
		}
		w.WriteHeader(resp.StatusCode)
		buf := make([]byte, 32<<10)
		for {
			n, err := resp.Body.Read(buf)
			w.Write(buf[:n])
			if err != nil {
				return
			}
		}
	}))
	t.Cleanup(ts.Close)
	// Reach it by a non-loopback-looking name so no plain-HTTP fallback
	// applies: "localhost" is loopback, so use the IP via a config entry.
	host := strings.TrimPrefix(ts.URL, "https://")
	ref := mustRef(t, host+"/tls/app:v1")

	_, err := Pull(ctx, newStore(t), ref, testPull(PullOptions{}))
	if !errors.Is(err, errdefs.ErrUnavailable) {
		t.Fatalf("untrusted certificate: err = %v, want ErrUnavailable", err)
	}
	t.Log(err)
	res, err := Pull(ctx, newStore(t), ref, testPull(PullOptions{Config: &Config{InsecureRegistries: []string{host}}}))
	if err != nil {
		t.Fatalf("insecure-registries: %v", err)
	}
	if res.Image.Manifest.Digest != digestOf(t, img) {
		t.Fatal("wrong image")
	}
	if _, err := Pull(ctx, newStore(t), ref, testPull(PullOptions{Insecure: true})); err != nil {
		t.Fatalf("--insecure: %v", err)
	}
}

// storeRandom writes a random image into s under ref.
func storeRandom(t *testing.T, s *store.Store, ref reference.Reference, layers int64) store.Image {
	t.Helper()
	st, err := s.WriteImage(t.Context(), rndImage(t, layers), store.WriteOptions{Names: []reference.Reference{ref}})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func remoteWriteIndex(r name.Reference, idx v1.ImageIndex) error {
	return remote.WriteIndex(r, idx)
}

func TestPullSilentRegistry(t *testing.T) {
	// Not parallel: it shortens the package's read timeout.
	old := readTimeout
	readTimeout = 300 * time.Millisecond
	t.Cleanup(func() { readTimeout = old })

	// A registry that accepts connections and never answers.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
		for _, c := range conns {
			c.Close()
		}
	})
	start := time.Now()
	_, err = Pull(t.Context(), newStore(t), mustRef(t, ln.Addr().String()+"/x/app:v1"), testPull(PullOptions{}))
	if !errors.Is(err, errdefs.ErrUnavailable) {
		t.Fatalf("err = %v, want ErrUnavailable", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("failing took %s", d)
	}
	t.Log(err)
}
