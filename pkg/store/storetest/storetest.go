package storetest

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/berthsh/berth/pkg/reference"
	"github.com/berthsh/berth/pkg/store"
)

// Store is what the suite exercises: the methods of *store.Store that make
// up the image store's contract.
type Store interface {
	BlobInfo(ctx context.Context, d v1.Hash) (store.BlobInfo, error)
	HasBlob(ctx context.Context, d v1.Hash) bool
	OpenBlob(ctx context.Context, d v1.Hash) (io.ReadCloser, error)
	ReadBlob(ctx context.Context, d v1.Hash) ([]byte, error)
	NewWriter(ctx context.Context) (*store.Writer, error)
	WriteBlob(ctx context.Context, r io.Reader, want v1.Hash, size int64) (store.BlobInfo, error)
	Lease(ctx context.Context) (*store.Lease, error)

	WriteImage(ctx context.Context, img v1.Image, opts store.WriteOptions) (store.Image, error)
	List(ctx context.Context) ([]store.Image, error)
	Get(ctx context.Context, nameOrID string) (store.Image, error)
	Tag(ctx context.Context, nameOrID string, to reference.Reference) (store.Image, error)
	Remove(ctx context.Context, nameOrID string, opts store.RemoveOptions) (store.RemoveResult, error)
	Prune(ctx context.Context, opts store.PruneOptions) (store.PruneResult, error)
	GC(ctx context.Context) (store.GCResult, error)
	Verify(ctx context.Context) (store.VerifyReport, error)
	Image(ctx context.Context, img store.Image) (v1.Image, error)
}

// dirStore is a Store kept as an OCI image layout in a directory.
type dirStore interface {
	Dir() string
}

// Run runs the conformance suite. open must return a new, empty store each
// time it is called; tests may call it more than once.
func Run(t *testing.T, open func(t *testing.T) Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s Store)
	}{
		{"Blob/RoundTrip", testBlobRoundTrip},
		{"Blob/WrongDigest", testBlobWrongDigest},
		{"Blob/WrongSize", testBlobWrongSize},
		{"Blob/Idempotent", testBlobIdempotent},
		{"Blob/WriterCommitComputesDigest", testWriterCommitComputesDigest},
		{"Blob/WriterCommitChecks", testWriterCommitChecks},
		{"Blob/WriterCloseDiscards", testWriterCloseDiscards},
		{"Blob/DamagedOnDisk", testBlobDamagedOnDisk},
		{"Blob/NotFound", testBlobNotFound},
		{"Blob/MalformedDigest", testBlobMalformedDigest},

		{"Image/WriteNames", testWriteImageNames},
		{"Image/WriteUnnamed", testWriteImageUnnamed},
		{"Image/NameMoves", testNameMoves},
		{"Image/Get", testGet},
		{"Image/GetAmbiguousPrefix", testGetAmbiguousPrefix},
		{"Image/Tag", testTag},
		{"Image/RepoDigests", testRepoDigests},
		{"Image/ListNewestFirst", testListNewestFirst},
		{"Image/Remove", testRemove},
		{"Image/Prune", testPrune},
		{"Image/GC", testGC},
		{"Image/Verify", testVerify},

		{"Concurrency/GCWaitsForLease", testGCWaitsForLease},
		{"Concurrency/RemoveDuringLease", testRemoveDuringLease},
		{"Concurrency/Goroutines", testConcurrentGoroutines},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, open(t))
		})
	}
}

// Bytes returns n pseudo-random bytes, the same for the same seed.
func Bytes(seed uint64, n int) []byte {
	var key [32]byte
	binary.LittleEndian.PutUint64(key[:], seed)
	b := make([]byte, n)
	_, _ = rand.NewChaCha8(key).Read(b)
	return b
}

// Digest is the sha256 digest of b.
func Digest(b []byte) v1.Hash {
	sum := sha256.Sum256(b)
	return v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(sum[:])}
}

// Layer returns a layer of size pseudo-random bytes, the same for the same
// seed (so separate processes build identical layers).
func Layer(seed uint64, size int) v1.Layer {
	return static.NewLayer(Bytes(seed, size), types.OCIUncompressedLayer)
}

// NewImage builds an OCI image of layers whose config carries label, so
// images with the same layers but different labels differ. The result is
// deterministic.
func NewImage(t testing.TB, label string, layers ...v1.Layer) v1.Image {
	t.Helper()
	img, err := newImage(label, layers...)
	if err != nil {
		t.Fatalf("build image %s: %v", label, err)
	}
	return img
}

func newImage(label string, layers ...v1.Layer) (v1.Image, error) {
	base := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	img, err := mutate.AppendLayers(base, layers...)
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", "amd64"
	cf.Config.Labels = map[string]string{"sh.berth.storetest": label}
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		return nil, err
	}
	// Compute digests now so the image is safe to share between goroutines.
	if _, err := img.Digest(); err != nil {
		return nil, err
	}
	return img, nil
}

// Ref parses a reference or fails the test.
func Ref(t testing.TB, s string) reference.Reference {
	t.Helper()
	r, err := reference.Parse(s)
	if err != nil {
		t.Fatalf("parse %q: %v", s, err)
	}
	return r
}

// ImageBlobs returns the manifest, config and layer digests of img.
func ImageBlobs(img v1.Image) ([]v1.Hash, error) {
	md, err := img.Digest()
	if err != nil {
		return nil, err
	}
	m, err := img.Manifest()
	if err != nil {
		return nil, err
	}
	out := []v1.Hash{md, m.Config.Digest}
	for _, l := range m.Layers {
		out = append(out, l.Digest)
	}
	return out, nil
}

func mustBlobs(t testing.TB, img v1.Image) []v1.Hash {
	t.Helper()
	bs, err := ImageBlobs(img)
	if err != nil {
		t.Fatal(err)
	}
	return bs
}

func mustID(t testing.TB, img v1.Image) v1.Hash {
	t.Helper()
	id, err := img.ConfigName()
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func mustDigest(t testing.TB, img v1.Image) v1.Hash {
	t.Helper()
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// Referenced returns every blob the images in s reach: manifests, configs
// and layers.
func Referenced(ctx context.Context, s Store) (map[v1.Hash]bool, error) {
	imgs, err := s.List(ctx)
	if err != nil {
		return nil, err
	}
	out := map[v1.Hash]bool{}
	for _, img := range imgs {
		vi, err := s.Image(ctx, img)
		if err != nil {
			return nil, fmt.Errorf("image %s: %w", img.Digest(), err)
		}
		bs, err := ImageBlobs(vi)
		if err != nil {
			return nil, fmt.Errorf("image %s: %w", img.Digest(), err)
		}
		for _, b := range bs {
			out[b] = true
		}
	}
	return out, nil
}

// OnDisk lists the blobs and the ingest entries of the OCI layout in dir.
func OnDisk(dir string) (blobs map[v1.Hash]bool, ingest []string, err error) {
	entries, err := os.ReadDir(filepath.Join(dir, "blobs", "sha256"))
	if err != nil {
		return nil, nil, err
	}
	blobs = map[v1.Hash]bool{}
	for _, e := range entries {
		blobs[v1.Hash{Algorithm: "sha256", Hex: e.Name()}] = true
	}
	ing, err := os.ReadDir(filepath.Join(dir, "ingest"))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, nil, err
	}
	for _, e := range ing {
		ingest = append(ingest, e.Name())
	}
	return blobs, ingest, nil
}

// CheckNoOrphans fails t unless the blobs in dir are exactly those the
// images of s reference and ingest/ is empty (as after a GC with no writer).
func CheckNoOrphans(t testing.TB, s Store, dir string) {
	t.Helper()
	ctx := context.Background()
	ref, err := Referenced(ctx, s)
	if err != nil {
		t.Fatalf("referenced blobs: %v", err)
	}
	blobs, ingest, err := OnDisk(dir)
	if err != nil {
		t.Fatal(err)
	}
	for b := range blobs {
		if !ref[b] {
			t.Errorf("orphan blob %s left on disk", b)
		}
	}
	for b := range ref {
		if !blobs[b] {
			t.Errorf("referenced blob %s missing on disk", b)
		}
	}
	if len(ingest) != 0 {
		t.Errorf("ingest/ not empty: %v", ingest)
	}
}

// CheckConsistent fails t unless s is whole: Verify finds no problem, each
// name belongs to exactly one image and resolves to it, and every image's
// config and layers read back completely.
func CheckConsistent(t testing.TB, s Store) {
	t.Helper()
	ctx := context.Background()
	rep, err := s.Verify(ctx)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	for _, p := range rep.Problems {
		t.Errorf("Verify: %s", p)
	}
	imgs, err := s.List(ctx)
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	if rep.Images != len(imgs) {
		t.Errorf("Verify checked %d images, List has %d", rep.Images, len(imgs))
	}
	owner := map[string]v1.Hash{}
	for _, img := range imgs {
		for _, n := range img.Names {
			if o, dup := owner[n.String()]; dup {
				t.Errorf("name %s on two images: %s and %s", n, o, img.Digest())
			}
			owner[n.String()] = img.Digest()
			got, err := s.Get(ctx, n.String())
			if err != nil {
				t.Errorf("Get(%s): %v", n, err)
			} else if got.Digest() != img.Digest() {
				t.Errorf("Get(%s) = %s, List says %s", n, got.Digest(), img.Digest())
			}
		}
		if err := readImage(ctx, s, img); err != nil {
			t.Errorf("image %s %v: %v", img.Digest(), img.Names, err)
		}
	}
}

// readImage reads an image's config and every layer to the end.
func readImage(ctx context.Context, s Store, img store.Image) error {
	vi, err := s.Image(ctx, img)
	if err != nil {
		return err
	}
	if got, err := vi.Digest(); err != nil || got != img.Digest() {
		return fmt.Errorf("digest %s (%v), want %s", got, err, img.Digest())
	}
	if _, err := vi.RawConfigFile(); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	layers, err := vi.Layers()
	if err != nil {
		return err
	}
	for _, l := range layers {
		d, _ := l.Digest()
		rc, err := l.Compressed()
		if err != nil {
			return fmt.Errorf("layer %s: %w", d, err)
		}
		_, err = io.Copy(io.Discard, rc)
		rc.Close()
		if err != nil {
			return fmt.Errorf("layer %s: %w", d, err)
		}
	}
	return nil
}

func names(img store.Image) []string {
	out := make([]string, 0, len(img.Names))
	for _, n := range img.Names {
		out = append(out, n.String())
	}
	sort.Strings(out)
	return out
}

func dirOf(t *testing.T, s Store) string {
	t.Helper()
	ds, ok := s.(dirStore)
	if !ok {
		t.Skip("store has no Dir(): cannot reach its files")
	}
	return ds.Dir()
}

func blobPath(dir string, d v1.Hash) string {
	return filepath.Join(dir, "blobs", d.Algorithm, d.Hex)
}

func lease(t *testing.T, s Store) *store.Lease {
	t.Helper()
	l, err := s.Lease(context.Background())
	if err != nil {
		t.Fatalf("Lease: %v", err)
	}
	t.Cleanup(l.Release)
	return l
}

func writeImage(t *testing.T, s Store, img v1.Image, opts store.WriteOptions) store.Image {
	t.Helper()
	got, err := s.WriteImage(context.Background(), img, opts)
	if err != nil {
		t.Fatalf("WriteImage: %v", err)
	}
	return got
}

func named(t *testing.T, refs ...string) store.WriteOptions {
	t.Helper()
	var o store.WriteOptions
	for _, r := range refs {
		o.Names = append(o.Names, Ref(t, r))
	}
	return o
}
