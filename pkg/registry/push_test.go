package registry

import (
	"errors"
	"net/http"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/berthsh/berth/pkg/errdefs"
	"github.com/berthsh/berth/pkg/reference"
)

// testPush is PushOptions that never read the user's configuration.
func testPush(o PushOptions) PushOptions {
	if o.Keychain == nil {
		o.Keychain = anonymous
	}
	if o.Config == nil {
		o.Config = &Config{}
	}
	return o
}

func TestPushPullRoundTrip(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	for _, reg := range []struct {
		name  string
		start func(t *testing.T) string
	}{
		{"ggcr", func(t *testing.T) string { h, _ := startMem(t, nil); return h }},
		{"distribution", startDistribution},
	} {
		t.Run(reg.name, func(t *testing.T) {
			t.Parallel()
			host := reg.start(t)
			s := newStore(t)
			ref := mustRef(t, host+"/rt/app:v1")
			local := storeRandom(t, s, ref, 3)
			localID, _ := s.ID(ctx, local)

			var prog progressLog
			res, err := Push(ctx, s, ref.Familiar(), ref, testPush(PushOptions{Progress: prog.add}))
			if err != nil {
				t.Fatalf("Push: %v", err)
			}
			if res.Digest != local.Manifest.Digest || res.Size != local.Manifest.Size {
				t.Fatalf("result %+v, want digest %s size %d", res, local.Manifest.Digest, local.Manifest.Size)
			}
			m, _ := s.Manifest(ctx, local)
			fin := prog.final()
			for _, l := range m.Layers {
				if ev, ok := fin[l.Digest]; !ok || ev.Exists || ev.Complete != l.Size {
					t.Errorf("layer %s: final progress %+v", l.Digest, ev)
				}
			}
			// The push recorded the repository digest.
			after, _ := s.Get(ctx, ref.String())
			if want := host + "/rt/app@" + res.Digest.String(); len(after.RepoDigests) != 1 || after.RepoDigests[0] != want {
				t.Errorf("repo digests %v, want [%s]", after.RepoDigests, want)
			}

			s2 := newStore(t)
			pres, err := Pull(ctx, s2, ref, testPull(PullOptions{}))
			if err != nil {
				t.Fatalf("Pull: %v", err)
			}
			if pres.Image.Manifest.Digest != local.Manifest.Digest {
				t.Fatalf("pulled %s, pushed %s", pres.Image.Manifest.Digest, local.Manifest.Digest)
			}
			if id, _ := s2.ID(ctx, pres.Image); id != localID {
				t.Fatalf("pulled image ID %s, want %s", id, localID)
			}
		})
	}
}

func TestPushSkipsExistingBlobs(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	host, rl := startMem(t, nil)
	s := newStore(t)
	ref := mustRef(t, host+"/skip/app:v1")
	local := storeRandom(t, s, ref, 3)
	if _, err := Push(ctx, s, ref.String(), ref, testPush(PushOptions{})); err != nil {
		t.Fatal(err)
	}
	if n := rl.count(isBlobUpload); n == 0 {
		t.Fatalf("first push uploaded nothing:\n%s", rl)
	}
	ref2 := mustRef(t, host+"/skip/app:v2")
	if _, err := s.Tag(ctx, ref.String(), ref2); err != nil {
		t.Fatal(err)
	}
	rl.reset()
	var prog progressLog
	res, err := Push(ctx, s, ref2.String(), ref2, testPush(PushOptions{Progress: prog.add}))
	if err != nil {
		t.Fatal(err)
	}
	if res.Digest != local.Manifest.Digest {
		t.Fatalf("digest %s", res.Digest)
	}
	if n := rl.count(isBlobUpload); n != 0 {
		t.Fatalf("second push uploaded %d blobs:\n%s", n, rl)
	}
	if n := rl.count(func(r *http.Request) bool {
		return r.Method == http.MethodPut && strings.HasSuffix(r.URL.Path, "/manifests/v2")
	}); n != 1 {
		t.Fatalf("manifest PUTs for v2: %d\n%s", n, rl)
	}
	m, _ := s.Manifest(ctx, local)
	fin := prog.final()
	for _, l := range m.Layers {
		if !fin[l.Digest].Exists {
			t.Errorf("layer %s not reported as existing: %+v", l.Digest, fin[l.Digest])
		}
	}
}

func TestPushCrossRepoMount(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	host := startDistribution(t)
	s := newStore(t)
	refA := mustRef(t, host+"/team/a:v1")
	local := storeRandom(t, s, refA, 2)
	if _, err := Push(ctx, s, refA.String(), refA, testPush(PushOptions{})); err != nil {
		t.Fatal(err)
	}
	refB := mustRef(t, host+"/team/b:v1")
	if _, err := s.Tag(ctx, refA.String(), refB); err != nil {
		t.Fatal(err)
	}
	rl := &reqLog{}
	tr := &countingTransport{base: http.DefaultTransport, log: rl}
	if _, err := Push(ctx, s, refB.String(), refB, testPush(PushOptions{Transport: tr})); err != nil {
		t.Fatal(err)
	}
	m, _ := s.Manifest(ctx, local)
	for _, d := range append([]v1.Descriptor{m.Config}, m.Layers...) {
		mounted := rl.count(func(r *http.Request) bool {
			q := r.URL.Query()
			return r.Method == http.MethodPost && q.Get("mount") == d.Digest.String() && q.Get("from") == "team/a"
		})
		if mounted != 1 {
			t.Errorf("blob %s: %d mount requests\n%s", d.Digest, mounted, rl)
		}
	}
	if n := rl.count(isBlobUpload); n != 0 {
		t.Fatalf("%d blob uploads despite mounts:\n%s", n, rl)
	}
	// The mounted image is complete in b.
	s2 := newStore(t)
	res, err := Pull(ctx, s2, refB, testPull(PullOptions{}))
	if err != nil || res.Image.Manifest.Digest != local.Manifest.Digest {
		t.Fatalf("pull b: %+v %v", res, err)
	}
}

func TestPushZstd(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	host, _ := startMem(t, nil)
	s := newStore(t)
	ref := mustRef(t, host+"/z/app:v1")
	local := storeRandom(t, s, ref, 3)
	localCf, localID, err := s.ConfigFile(ctx, local)
	if err != nil {
		t.Fatal(err)
	}
	res, err := Push(ctx, s, ref.String(), ref, testPush(PushOptions{Compression: CompressionZstd}))
	if err != nil {
		t.Fatalf("Push zstd: %v", err)
	}
	if res.Digest == local.Manifest.Digest {
		t.Fatal("zstd push kept the gzip manifest")
	}
	// The local image is unchanged and does not claim the zstd digest.
	after, _ := s.Get(ctx, ref.String())
	if after.Manifest.Digest != local.Manifest.Digest || len(after.RepoDigests) != 0 {
		t.Fatalf("local image changed: %+v", after)
	}

	nref, _ := ref.Name(false)
	rimg, err := remote.Image(nref)
	if err != nil {
		t.Fatal(err)
	}
	m, err := rimg.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	if m.MediaType != types.OCIManifestSchema1 || m.Config.MediaType != types.OCIConfigJSON {
		t.Fatalf("manifest media types %s / %s", m.MediaType, m.Config.MediaType)
	}
	for _, l := range m.Layers {
		if l.MediaType != types.OCILayerZStd {
			t.Errorf("layer %s has media type %s", l.Digest, l.MediaType)
		}
	}
	if d, _ := rimg.Digest(); d != res.Digest {
		t.Fatalf("remote digest %s, push said %s", d, res.Digest)
	}
	if id, _ := rimg.ConfigName(); id != localID {
		t.Fatalf("config digest %s, want %s", id, localID)
	}
	// Diff IDs are unchanged and the zstd layers decompress to them.
	ls, err := rimg.Layers()
	if err != nil {
		t.Fatal(err)
	}
	for i, l := range ls {
		rc, err := l.Uncompressed()
		if err != nil {
			t.Fatal(err)
		}
		h, _, err := v1.SHA256(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		if h != localCf.RootFS.DiffIDs[i] {
			t.Errorf("layer %d decompresses to %s, want diff ID %s", i, h, localCf.RootFS.DiffIDs[i])
		}
	}
	// It pulls back with the same image ID.
	s2 := newStore(t)
	pres, err := Pull(ctx, s2, ref, testPull(PullOptions{}))
	if err != nil {
		t.Fatal(err)
	}
	if id, _ := s2.ID(ctx, pres.Image); id != localID {
		t.Fatalf("pulled ID %s, want %s", id, localID)
	}
	// Compression is deterministic: a second push changes nothing.
	res2, err := Push(ctx, s, ref.String(), ref, testPush(PushOptions{Compression: CompressionZstd}))
	if err != nil || res2.Digest != res.Digest {
		t.Fatalf("second zstd push: %+v %v (first %s)", res2, err, res.Digest)
	}
	// The temporary zstd blobs are garbage once the push is over.
	before := blobCount(t, s)
	if _, err := s.GC(ctx); err != nil {
		t.Fatal(err)
	}
	if after := blobCount(t, s); after != before-len(m.Layers) {
		t.Fatalf("GC left %d of %d blobs, want %d", after, before, before-len(m.Layers))
	}
}

func TestPushErrors(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	host, _ := startMem(t, nil)
	s := newStore(t)
	ref := mustRef(t, host+"/e/app:v1")
	storeRandom(t, s, ref, 1)
	tests := []struct {
		name string
		src  string
		dst  string
		opts PushOptions
		want error
	}{
		{"no such local image", host + "/e/missing:v1", host + "/e/missing:v1", PushOptions{}, errdefs.ErrNotFound},
		{"digest destination", ref.String(), host + "/e/app@sha256:" + strings.Repeat("a", 64), PushOptions{}, errdefs.ErrInvalidArgument},
		{"bad compression", ref.String(), ref.String(), PushOptions{Compression: "lz4"}, errdefs.ErrInvalidArgument},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dst, err := reference.Parse(tt.dst)
			if err != nil {
				t.Fatal(err)
			}
			_, err = Push(ctx, s, tt.src, dst, testPush(tt.opts))
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
}
