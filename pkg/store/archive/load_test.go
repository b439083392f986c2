package archive

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/klauspost/compress/gzip"

	"github.com/berthsh/berth/pkg/errdefs"
	"github.com/berthsh/berth/pkg/store"
)

// onlyReader hides every method of r but Read, as a pipe would.
type onlyReader struct{ r io.Reader }

func (o onlyReader) Read(p []byte) (int, error) { return o.r.Read(p) }

func load(t *testing.T, s testStore, data []byte) []store.Image {
	t.Helper()
	imgs, err := Load(context.Background(), s.Store, onlyReader{bytes.NewReader(data)}, LoadOptions{})
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if left := s.ingestFiles(t); len(left) != 0 {
		t.Errorf("Load left %v in ingest/", left)
	}
	return imgs
}

// checkImage checks an image's ID and diff IDs, and that every blob of it
// is stored and verifies.
func checkImage(t *testing.T, s testStore, img store.Image, wantID v1.Hash, wantDiffIDs []v1.Hash) {
	t.Helper()
	ctx := context.Background()
	cf, id, err := s.ConfigFile(ctx, img)
	if err != nil {
		t.Fatal(err)
	}
	if id != wantID {
		t.Errorf("image ID %s, want %s", id, wantID)
	}
	if !reflect.DeepEqual(cf.RootFS.DiffIDs, wantDiffIDs) {
		t.Errorf("diff IDs %v, want %v", cf.RootFS.DiffIDs, wantDiffIDs)
	}
	rep, err := s.Verify(ctx)
	if err != nil || len(rep.Problems) != 0 {
		t.Errorf("Verify: %+v %v", rep.Problems, err)
	}
}

func TestLoadLegacyDockerArchive(t *testing.T) {
	t.Parallel()
	layer := layerTar(t, "usr/bin/python3", "etc/os-release")
	data, id := legacyDockerArchive(t, "python:3.11", layer)

	s1 := newTestStore(t)
	imgs := load(t, s1, data)
	if got := names(imgs); !reflect.DeepEqual(got, []string{"docker.io/library/python:3.11"}) {
		t.Fatalf("names %v", got)
	}
	checkImage(t, s1, imgs[0], id, []v1.Hash{digestOf(layer), digestOf(layer)})
	m, err := s1.Manifest(context.Background(), imgs[0])
	if err != nil {
		t.Fatal(err)
	}
	if m.MediaType != types.OCIManifestSchema1 || m.Layers[0].MediaType != types.OCILayer {
		t.Errorf("media types %s, %s; want OCI manifest with gzip layers", m.MediaType, m.Layers[0].MediaType)
	}
	if m.Layers[0].Digest != m.Layers[1].Digest {
		t.Errorf("duplicate layer stored under two digests")
	}
	got, err := s1.Get(context.Background(), "python:3.11")
	if err != nil || got.Digest() != imgs[0].Digest() {
		t.Fatalf("Get python:3.11: %v", err)
	}

	// Reproducible: another store, loaded from a seekable file this time,
	// gives the same manifest.
	s2 := newTestStore(t)
	f := filepath.Join(t.TempDir(), "a.tar")
	if err := os.WriteFile(f, data, 0o644); err != nil {
		t.Fatal(err)
	}
	fh, err := os.Open(f)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	imgs2, err := Load(context.Background(), s2.Store, fh, LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if imgs2[0].Digest() != imgs[0].Digest() {
		t.Errorf("second load: manifest %s, first %s", imgs2[0].Digest(), imgs[0].Digest())
	}
	// Loading again into the same store changes nothing.
	imgs3 := load(t, s1, data)
	if imgs3[0].Digest() != imgs[0].Digest() {
		t.Errorf("reload: manifest %s, first %s", imgs3[0].Digest(), imgs[0].Digest())
	}
}

func TestLoadCompressedArchive(t *testing.T) {
	t.Parallel()
	data, id := legacyDockerArchive(t, "app:gz", layerTar(t, "a"))
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(data)
	zw.Close()
	s := newTestStore(t)
	imgs := load(t, s, gz.Bytes())
	if len(imgs) != 1 {
		t.Fatalf("%d images", len(imgs))
	}
	if _, gotID, _ := s.ConfigFile(context.Background(), imgs[0]); gotID != id {
		t.Errorf("ID %s, want %s", gotID, id)
	}
}

// docker25Archive builds what docker 25 and later "docker save" writes: an
// OCI layout with uncompressed layers plus manifest.json.
func docker25Archive(t *testing.T, layers ...[]byte) (data []byte, id v1.Hash, diffIDs []v1.Hash) {
	t.Helper()
	blobs := ociBlobs{}
	var lds []v1.Descriptor
	var paths []string
	for _, l := range layers {
		d := blobs.add(l)
		d.MediaType = types.OCIUncompressedLayer
		lds = append(lds, d)
		diffIDs = append(diffIDs, d.Digest)
		paths = append(paths, "blobs/sha256/"+d.Digest.Hex)
	}
	cfg := imageConfig(t, "d25", diffIDs...)
	cd := blobs.add(cfg)
	cd.MediaType = types.OCIConfigJSON
	man := mustJSON(t, v1.Manifest{SchemaVersion: 2, MediaType: types.OCIManifestSchema1, Config: cd, Layers: lds})
	md := blobs.add(man)
	md.MediaType = types.OCIManifestSchema1
	md.Annotations = map[string]string{
		"io.containerd.image.name":          "docker.io/library/web:25",
		"org.opencontainers.image.ref.name": "25",
	}
	idx := mustJSON(t, v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex, Manifests: []v1.Descriptor{md}})
	dm := mustJSON(t, []map[string]any{{"Config": "blobs/sha256/" + cd.Digest.Hex, "RepoTags": []string{"web:25"}, "Layers": paths}})
	es := append(blobs.entries(), reg("index.json", idx), reg("manifest.json", dm),
		reg("repositories", []byte(`{"web":{"25":"`+diffIDs[len(diffIDs)-1].Hex+`"}}`)))
	return mkTar(t, es...), cd.Digest, diffIDs
}

func TestLoadDocker25Archive(t *testing.T) {
	t.Parallel()
	l1, l2 := layerTar(t, "bin/sh"), layerTar(t, "app/main.py")
	data, id, diffIDs := docker25Archive(t, l1, l2)
	s := newTestStore(t)
	imgs := load(t, s, data)
	if got := names(imgs); !reflect.DeepEqual(got, []string{"docker.io/library/web:25"}) {
		t.Fatalf("names %v", got)
	}
	checkImage(t, s, imgs[0], id, diffIDs)
	m, _ := s.Manifest(context.Background(), imgs[0])
	for _, l := range m.Layers {
		if l.MediaType != types.OCILayer {
			t.Errorf("layer %s stored as %s, want compressed", l.Digest, l.MediaType)
		}
	}
}

func TestLoadOCIArchiveNames(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name        string
		annotations map[string]string
		want        []string
	}{
		{"full ref.name", map[string]string{"org.opencontainers.image.ref.name": "ghcr.io/org/app:v2"}, []string{"ghcr.io/org/app:v2"}},
		{"familiar ref.name", map[string]string{"org.opencontainers.image.ref.name": "app:v2"}, []string{"docker.io/library/app:v2"}},
		{"containerd name preferred", map[string]string{
			"org.opencontainers.image.ref.name": "v2",
			"io.containerd.image.name":          "docker.io/me/app:v2",
		}, []string{"docker.io/me/app:v2"}},
		{"bare tag is no name", map[string]string{"org.opencontainers.image.ref.name": "v2"}, nil},
		{"no annotations", nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			blobs := ociBlobs{}
			var gz bytes.Buffer
			zw := gzip.NewWriter(&gz)
			layer := layerTar(t, "x")
			zw.Write(layer)
			zw.Close()
			ld := blobs.add(gz.Bytes())
			ld.MediaType = types.OCILayer
			cfg := imageConfig(t, tc.name, digestOf(layer))
			cd := blobs.add(cfg)
			cd.MediaType = types.OCIConfigJSON
			md := blobs.add(mustJSON(t, v1.Manifest{SchemaVersion: 2, MediaType: types.OCIManifestSchema1, Config: cd, Layers: []v1.Descriptor{ld}}))
			md.MediaType = types.OCIManifestSchema1
			md.Annotations = tc.annotations
			idx := mustJSON(t, v1.IndexManifest{SchemaVersion: 2, Manifests: []v1.Descriptor{md}})
			s := newTestStore(t)
			imgs := load(t, s, mkTar(t, append(blobs.entries(), reg("index.json", idx))...))
			if got := names(imgs); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("names %v, want %v", got, tc.want)
			}
			if imgs[0].Digest() != md.Digest {
				t.Errorf("manifest %s, want the archive's %s", imgs[0].Digest(), md.Digest)
			}
			checkImage(t, s, imgs[0], cd.Digest, []v1.Hash{digestOf(layer)})
		})
	}
}

func TestLoadMultiPlatformIndex(t *testing.T) {
	t.Parallel()
	blobs := ociBlobs{}
	layer := layerTar(t, "x")
	ld := blobs.add(layer)
	ld.MediaType = types.OCIUncompressedLayer
	cd := blobs.add(imageConfig(t, "multi", digestOf(layer)))
	cd.MediaType = types.OCIConfigJSON
	md := blobs.add(mustJSON(t, v1.Manifest{SchemaVersion: 2, MediaType: types.OCIManifestSchema1, Config: cd, Layers: []v1.Descriptor{ld}}))
	md.MediaType = types.OCIManifestSchema1
	md.Platform = &v1.Platform{OS: "linux", Architecture: hostArch()}
	other := v1.Descriptor{MediaType: types.OCIManifestSchema1, Size: 500, Digest: digestOf([]byte("absent")),
		Platform: &v1.Platform{OS: "linux", Architecture: "s390x"}}
	ix := blobs.add(mustJSON(t, v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex, Manifests: []v1.Descriptor{other, md}}))
	ix.MediaType = types.OCIImageIndex
	ix.Annotations = map[string]string{"io.containerd.image.name": "docker.io/library/multi:1"}
	idx := mustJSON(t, v1.IndexManifest{SchemaVersion: 2, Manifests: []v1.Descriptor{ix}})
	s := newTestStore(t)
	imgs := load(t, s, mkTar(t, append(blobs.entries(), reg("index.json", idx))...))
	if len(imgs) != 1 || imgs[0].Digest() != md.Digest {
		t.Fatalf("loaded %+v, want the %s manifest %s", imgs, hostArch(), md.Digest)
	}
	if got := names(imgs); !reflect.DeepEqual(got, []string{"docker.io/library/multi:1"}) {
		t.Errorf("names %v", got)
	}
}

func TestLoadMultiImage(t *testing.T) {
	t.Parallel()
	shared := layerTar(t, "shared")
	blobs := map[string][]byte{}
	var man []map[string]any
	var ids []v1.Hash
	for i, tag := range []string{"one:1", "two:2"} {
		own := layerTar(t, tag)
		cfg := imageConfig(t, tag, digestOf(shared), digestOf(own))
		ids = append(ids, digestOf(cfg))
		blobs["shared/layer.tar"] = shared
		blobs[tag+"/layer.tar"] = own
		blobs[digestOf(cfg).Hex+".json"] = cfg
		man = append(man, map[string]any{"Config": digestOf(cfg).Hex + ".json", "RepoTags": []string{tag}, "Layers": []string{"shared/layer.tar", tag + "/layer.tar"}})
		_ = i
	}
	var es []entry
	for _, k := range []string{"shared/layer.tar", "one:1/layer.tar", "two:2/layer.tar", ids[0].Hex + ".json", ids[1].Hex + ".json"} {
		es = append(es, reg(k, blobs[k]))
	}
	es = append(es, reg("manifest.json", mustJSON(t, man)))
	s := newTestStore(t)
	imgs := load(t, s, mkTar(t, es...))
	if got := names(imgs); !reflect.DeepEqual(got, []string{"docker.io/library/one:1", "docker.io/library/two:2"}) {
		t.Fatalf("names %v", got)
	}
	for i, img := range imgs {
		if _, id, _ := s.ConfigFile(context.Background(), img); id != ids[i] {
			t.Errorf("image %d: ID %s, want %s", i, id, ids[i])
		}
	}
}

// TestLoadHostile feeds Load archives built to escape or exhaust, and
// checks each is refused (or contained), leaves no image, and leaves
// nothing GC does not remove.
func TestLoadHostile(t *testing.T) {
	t.Parallel()
	layer := layerTar(t, "ok")
	good := imageConfig(t, "evil", digestOf(layer))
	goodName := digestOf(good).Hex + ".json"
	manifest := func(cfg string, layers ...string) entry {
		if layers == nil {
			layers = []string{}
		}
		return reg("manifest.json", mustJSON(t, []map[string]any{{"Config": cfg, "RepoTags": []string{"evil:1"}, "Layers": layers}}))
	}
	cwd, _ := os.Getwd()
	cwdBefore, _ := os.ReadDir(cwd)

	for _, tc := range []struct {
		name    string
		entries []entry
		raw     []byte // used instead of entries when set
		kind    error
		msg     string // in the error
	}{
		{"manifest names ../../etc/passwd", []entry{manifest("../../etc/passwd")}, nil, errdefs.ErrInvalidArgument, "../../etc/passwd"},
		{"manifest names absolute path", []entry{manifest("/etc/passwd")}, nil, errdefs.ErrInvalidArgument, "/etc/passwd"},
		{"layer is symlink to /etc/passwd", []entry{
			reg(goodName, good), {name: "x", typ: tar.TypeSymlink, link: "/etc/passwd"}, manifest(goodName, "x"),
		}, nil, errdefs.ErrInvalidArgument, "outside the archive"},
		{"layer is symlink escaping upwards", []entry{
			reg(goodName, good), {name: "d/x", typ: tar.TypeSymlink, link: "../../../etc/passwd"}, manifest(goodName, "d/x"),
		}, nil, errdefs.ErrInvalidArgument, "outside the archive"},
		{"layer is hardlink to ../../outside", []entry{
			reg(goodName, good), {name: "x", typ: tar.TypeLink, link: "../../outside"}, manifest(goodName, "x"),
		}, nil, errdefs.ErrInvalidArgument, "outside the archive"},
		{"symlink loop", []entry{
			reg(goodName, good), {name: "a", typ: tar.TypeSymlink, link: "b"}, {name: "b", typ: tar.TypeSymlink, link: "a"}, manifest(goodName, "a"),
		}, nil, errdefs.ErrInvalidArgument, "levels of links"},
		{"entries named ../../etc/x and referenced so", []entry{
			reg(goodName, good), reg("../../etc/x", layer), manifest(goodName, "../../etc/x"),
		}, nil, errdefs.ErrInvalidArgument, "not inside the archive"},
		{"layer is a device node", []entry{
			reg(goodName, good), {name: "x", typ: tar.TypeChar}, manifest(goodName, "x"),
		}, nil, errdefs.ErrInvalidArgument, "not a regular file"},
		{"missing layer", []entry{reg(goodName, good), manifest(goodName, "nope/layer.tar")}, nil, errdefs.ErrInvalidArgument, "nope/layer.tar"},
		{"layer is not a tar", []entry{
			reg(goodName, good), reg("x", bytes.Repeat([]byte("not a tar "), 200)), manifest(goodName, "x"),
		}, nil, errdefs.ErrInvalidArgument, "not a tar"},
		{"diff ID mismatch", []entry{
			reg(goodName, good), reg("x", layerTar(t, "other")), manifest(goodName, "x"),
		}, nil, errdefs.ErrDataCorrupt, `layer "x" has diff ID`},
		{"config digest does not match its name", []entry{
			reg(strings.Repeat("a", 64)+".json", good), reg("x", layer), manifest(strings.Repeat("a", 64)+".json", "x"),
		}, nil, errdefs.ErrDataCorrupt, "has digest"},
		{"header claims 1 TiB", []entry{reg(goodName, good), {name: "x", claim: 1 << 40}}, nil, errdefs.ErrDataCorrupt, "1099511627776"},
		{"malformed manifest.json", []entry{reg("manifest.json", []byte(`[{"Config": `))}, nil, errdefs.ErrInvalidArgument, "manifest.json"},
		{"malformed config", []entry{reg("c.json", []byte("{nope")), manifest("c.json")}, nil, errdefs.ErrInvalidArgument, "c.json"},
		{"invalid RepoTag", []entry{reg(goodName, good), reg("x", layer),
			reg("manifest.json", mustJSON(t, []map[string]any{{"Config": goodName, "RepoTags": []string{"UPPER:case"}, "Layers": []string{"x"}}}))},
			nil, errdefs.ErrInvalidArgument, "UPPER:case"},
		{"not a tar at all", nil, bytes.Repeat([]byte{0xab}, 5000), errdefs.ErrInvalidArgument, "not a tar"},
		{"empty input", nil, []byte{}, errdefs.ErrInvalidArgument, "empty"},
		{"no manifest", []entry{reg("hello", []byte("x"))}, nil, errdefs.ErrInvalidArgument, "neither manifest.json nor index.json"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			data := tc.raw
			if data == nil {
				data = mkTar(t, tc.entries...)
			}
			for _, seekable := range []bool{false, true} {
				s := newTestStore(t)
				var r io.Reader = onlyReader{bytes.NewReader(data)}
				if seekable {
					f := filepath.Join(t.TempDir(), "in.tar")
					if err := os.WriteFile(f, data, 0o644); err != nil {
						t.Fatal(err)
					}
					fh, err := os.Open(f)
					if err != nil {
						t.Fatal(err)
					}
					defer fh.Close()
					r = fh
				}
				_, err := Load(context.Background(), s.Store, r, LoadOptions{})
				if err == nil {
					t.Fatalf("seekable=%v: Load accepted the archive", seekable)
				}
				if !errors.Is(err, tc.kind) {
					t.Errorf("seekable=%v: error %q is not %v", seekable, err, tc.kind)
				}
				if testing.Verbose() && !seekable {
					t.Log(err)
				}
				if !strings.Contains(err.Error(), tc.msg) {
					t.Errorf("seekable=%v: error %q does not mention %q", seekable, err, tc.msg)
				}
				s.checkNoImages(t)
				s.checkGCEmpty(t)
			}
		})
	}
	t.Cleanup(func() {
		cwdAfter, _ := os.ReadDir(cwd)
		if len(cwdAfter) != len(cwdBefore) {
			t.Errorf("the working directory changed: %d entries before, %d after", len(cwdBefore), len(cwdAfter))
		}
	})
}

// TestLoadContainsHostileNames loads an archive whose unused entries have
// hostile names: it works, and nothing lands where the names point.
func TestLoadContainsHostileNames(t *testing.T) {
	t.Parallel()
	layer := layerTar(t, "ok")
	cfg := imageConfig(t, "contained", digestOf(layer))
	s := newTestStore(t)
	outside := filepath.Join(s.parent, "outside")
	data := mkTar(t,
		reg("../../outside", []byte("x")),
		reg("../store/escape", []byte("x")),
		reg(outside, []byte("x")),
		entry{name: "dev", typ: tar.TypeBlock},
		entry{name: "lnk", typ: tar.TypeSymlink, link: "/etc/passwd"},
		entry{name: "hard", typ: tar.TypeLink, link: "../../outside"},
		reg("/abs/c.json", cfg), // leading "/" is stripped: named "abs/c.json"
		reg("./l.tar", layer),
		reg("manifest.json", mustJSON(t, []map[string]any{{"Config": "abs/c.json", "RepoTags": []string{"ok:1"}, "Layers": []string{"l.tar"}}})),
	)
	imgs := load(t, s, data)
	checkImage(t, s, imgs[0], digestOf(cfg), []v1.Hash{digestOf(layer)})
	for _, p := range []string{outside, filepath.Join(s.Dir(), "escape"), "/abs"} {
		if _, err := os.Lstat(p); err == nil {
			t.Errorf("%s exists", p)
		}
	}
}

// TestLoadAtomicMultiImage: when the second image of an archive is bad,
// the first gets no name either.
func TestLoadAtomicMultiImage(t *testing.T) {
	t.Parallel()
	good := layerTar(t, "good")
	cfg1 := imageConfig(t, "one", digestOf(good))
	cfg2 := imageConfig(t, "two", digestOf(good), digestOf([]byte("other")))
	data := mkTar(t,
		reg("good.tar", good),
		reg("c1.json", cfg1),
		reg("c2.json", cfg2),
		reg("manifest.json", mustJSON(t, []map[string]any{
			{"Config": "c1.json", "RepoTags": []string{"one:1"}, "Layers": []string{"good.tar"}},
			{"Config": "c2.json", "RepoTags": []string{"two:1"}, "Layers": []string{"good.tar", "missing.tar"}},
		})),
	)
	s := newTestStore(t)
	_, err := Load(context.Background(), s.Store, bytes.NewReader(data), LoadOptions{})
	if !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), "missing.tar") {
		t.Fatalf("Load: %v, want a missing entry error", err)
	}
	s.checkNoImages(t)
	s.checkGCEmpty(t)
}

func TestLoadOCIBlobMismatch(t *testing.T) {
	t.Parallel()
	layer := layerTar(t, "x")
	for _, tc := range []struct {
		name   string
		break_ func(blobs ociBlobs, ld v1.Descriptor) v1.Descriptor
		msg    string
	}{
		{"content differs", func(b ociBlobs, ld v1.Descriptor) v1.Descriptor {
			b[ld.Digest] = layerTar(t, "y")[:ld.Size]
			return ld
		}, "digest"},
		{"size differs", func(b ociBlobs, ld v1.Descriptor) v1.Descriptor {
			ld.Size = 1 << 40
			return ld
		}, "descriptor says 1099511627776"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			blobs := ociBlobs{}
			ld := blobs.add(layer)
			ld.MediaType = types.OCIUncompressedLayer
			ld = tc.break_(blobs, ld)
			cd := blobs.add(imageConfig(t, "m", digestOf(layer)))
			cd.MediaType = types.OCIConfigJSON
			md := blobs.add(mustJSON(t, v1.Manifest{SchemaVersion: 2, MediaType: types.OCIManifestSchema1, Config: cd, Layers: []v1.Descriptor{ld}}))
			md.MediaType = types.OCIManifestSchema1
			md.Annotations = map[string]string{"org.opencontainers.image.ref.name": "bad:1"}
			idx := mustJSON(t, v1.IndexManifest{SchemaVersion: 2, Manifests: []v1.Descriptor{md}})
			s := newTestStore(t)
			_, err := Load(context.Background(), s.Store, bytes.NewReader(mkTar(t, append(blobs.entries(), reg("index.json", idx))...)), LoadOptions{})
			if !errors.Is(err, errdefs.ErrDataCorrupt) || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("Load: %v, want data corrupt mentioning %q", err, tc.msg)
			}
			s.checkNoImages(t)
			s.checkGCEmpty(t)
		})
	}
}

// TestLoadInterrupted cancels a load while it reads the archive (being
// spooled from a pipe) and while it stores a layer: no name, no spool
// file, and GC leaves nothing.
func TestLoadInterrupted(t *testing.T) {
	t.Parallel()
	big := make([]byte, 6<<20)
	rand.NewChaCha8([32]byte{1}).Read(big)
	layer := mkTar(t, reg("big.bin", big))
	data, _ := legacyDockerArchive(t, "big:1", layer)

	t.Run("while spooling", func(t *testing.T) {
		t.Parallel()
		s := newTestStore(t)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		r := &cancelAfter{r: bytes.NewReader(data), n: 2 << 20, cancel: cancel}
		_, err := Load(ctx, s.Store, r, LoadOptions{})
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Load: %v, want context.Canceled", err)
		}
		if left := s.ingestFiles(t); len(left) != 0 {
			t.Errorf("ingest/ holds %v after the load returned", left)
		}
		s.checkNoImages(t)
		s.checkGCEmpty(t)
	})
	t.Run("while storing a layer", func(t *testing.T) {
		t.Parallel()
		s := newTestStore(t)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		progress := func(p store.Progress) {
			if p.Complete > 1<<20 {
				cancel()
			}
		}
		_, err := Load(ctx, s.Store, onlyReader{bytes.NewReader(data)}, LoadOptions{Progress: progress})
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Load: %v, want context.Canceled", err)
		}
		if left := s.ingestFiles(t); len(left) != 0 {
			t.Errorf("ingest/ holds %v after the load returned", left)
		}
		s.checkNoImages(t)
		s.checkGCEmpty(t)
	})
}

// cancelAfter cancels a context once n bytes have been read.
type cancelAfter struct {
	r      io.Reader
	n      int
	read   int
	cancel func()
}

func (c *cancelAfter) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.read += n
	if c.read >= c.n {
		c.cancel()
	}
	return n, err
}

// TestGzipDeterministic: the layer compressor's output does not depend on
// how many blocks run in parallel, so digests match across machines.
func TestGzipDeterministic(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(3, 4))
	data := make([]byte, 2<<20+12345)
	rand.NewChaCha8([32]byte{3}).Read(data)
	for i := range data {
		data[i] &= 0x0f // compressible
	}
	var outs [][]byte
	for _, blocks := range []int{1, 4} {
		var buf bytes.Buffer
		zw, err := newGzipWriterBlocks(&buf, blocks)
		if err != nil {
			t.Fatal(err)
		}
		// Uneven writes, as a tar writer makes them.
		for off := 0; off < len(data); {
			n := min(len(data)-off, 1+rng.IntN(200000))
			if _, err := zw.Write(data[off : off+n]); err != nil {
				t.Fatal(err)
			}
			off += n
		}
		if err := zw.Close(); err != nil {
			t.Fatal(err)
		}
		outs = append(outs, buf.Bytes())
	}
	for i := 1; i < len(outs); i++ {
		if !bytes.Equal(outs[0], outs[i]) {
			t.Fatalf("output with concurrency setting %d differs from the first", i)
		}
	}
	zr, err := gzip.NewReader(bytes.NewReader(outs[0]))
	if err != nil {
		t.Fatal(err)
	}
	back, err := io.ReadAll(zr)
	if err != nil || !bytes.Equal(back, data) {
		t.Fatalf("round trip failed: %v", err)
	}
}
