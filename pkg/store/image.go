package store

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"sync"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"golang.org/x/sync/errgroup"

	"github.com/berthsh/berth/internal/atomicfile"
	"github.com/berthsh/berth/pkg/errdefs"
	"github.com/berthsh/berth/pkg/reference"
)

// Image returns the stored image as a go-containerregistry v1.Image. Its
// blobs are read from the store and verified as they are read.
func (s *Store) Image(ctx context.Context, img Image) (v1.Image, error) {
	return s.ImageByDigest(ctx, img.Manifest.Digest)
}

// ImageByDigest returns the image whose manifest has digest d.
func (s *Store) ImageByDigest(ctx context.Context, d v1.Hash) (v1.Image, error) {
	raw, err := s.ReadBlob(ctx, d)
	if err != nil {
		return nil, fmt.Errorf("manifest %s: %w", d, err)
	}
	m, err := v1.ParseManifest(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("manifest %s: %v: %w", d, err, errdefs.ErrDataCorrupt)
	}
	if m.MediaType.IsIndex() {
		return nil, fmt.Errorf("manifest %s is an index, not an image: %w", d, errdefs.ErrInvalidArgument)
	}
	core := &storeImage{s: s, raw: raw, manifest: m}
	return partial.CompressedToImage(core)
}

// ConfigFile returns the image's config and its digest (the image ID).
func (s *Store) ConfigFile(ctx context.Context, img Image) (*v1.ConfigFile, v1.Hash, error) {
	id, err := s.configDigest(ctx, img)
	if err != nil {
		return nil, v1.Hash{}, err
	}
	raw, err := s.ReadBlob(ctx, id)
	if err != nil {
		return nil, v1.Hash{}, fmt.Errorf("config of %s: %w", img.Manifest.Digest, err)
	}
	cf, err := v1.ParseConfigFile(bytes.NewReader(raw))
	if err != nil {
		return nil, v1.Hash{}, fmt.Errorf("config of %s: %v: %w", img.Manifest.Digest, err, errdefs.ErrDataCorrupt)
	}
	return cf, id, nil
}

// Manifest returns the image's parsed manifest.
func (s *Store) Manifest(ctx context.Context, img Image) (*v1.Manifest, error) {
	raw, err := s.ReadBlob(ctx, img.Manifest.Digest)
	if err != nil {
		return nil, fmt.Errorf("manifest %s: %w", img.Manifest.Digest, err)
	}
	m, err := v1.ParseManifest(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("manifest %s: %v: %w", img.Manifest.Digest, err, errdefs.ErrDataCorrupt)
	}
	return m, nil
}

func (s *Store) configDigest(ctx context.Context, img Image) (v1.Hash, error) {
	m, err := s.Manifest(ctx, img)
	if err != nil {
		return v1.Hash{}, err
	}
	return m.Config.Digest, nil
}

// ID returns the image ID: the digest of its config, as docker shows it.
func (s *Store) ID(ctx context.Context, img Image) (v1.Hash, error) {
	return s.configDigest(ctx, img)
}

// Size is the stored size of the image: manifest, config and layer blobs.
func (s *Store) Size(ctx context.Context, img Image) (int64, error) {
	m, err := s.Manifest(ctx, img)
	if err != nil {
		return 0, err
	}
	n := img.Manifest.Size + m.Config.Size
	for _, l := range m.Layers {
		n += l.Size
	}
	return n, nil
}

// storeImage is the minimal core partial.CompressedToImage completes.
type storeImage struct {
	s        *Store
	raw      []byte
	manifest *v1.Manifest
	cfgOnce  sync.Once
	cfg      []byte
	cfgErr   error
}

func (i *storeImage) RawManifest() ([]byte, error) { return i.raw, nil }

func (i *storeImage) MediaType() (types.MediaType, error) {
	if i.manifest.MediaType != "" {
		return i.manifest.MediaType, nil
	}
	return types.OCIManifestSchema1, nil
}

func (i *storeImage) RawConfigFile() ([]byte, error) {
	i.cfgOnce.Do(func() {
		i.cfg, i.cfgErr = i.s.ReadBlob(context.Background(), i.manifest.Config.Digest)
	})
	return i.cfg, i.cfgErr
}

func (i *storeImage) LayerByDigest(h v1.Hash) (partial.CompressedLayer, error) {
	if h == i.manifest.Config.Digest {
		return &storeLayer{s: i.s, desc: i.manifest.Config}, nil
	}
	for _, l := range i.manifest.Layers {
		if l.Digest == h {
			return &storeLayer{s: i.s, desc: l}, nil
		}
	}
	return nil, fmt.Errorf("layer %s not in image: %w", h, errdefs.ErrNotFound)
}

// storeLayer is a compressed layer read from the store.
type storeLayer struct {
	s    *Store
	desc v1.Descriptor
}

func (l *storeLayer) Digest() (v1.Hash, error)            { return l.desc.Digest, nil }
func (l *storeLayer) Size() (int64, error)                { return l.desc.Size, nil }
func (l *storeLayer) MediaType() (types.MediaType, error) { return l.desc.MediaType, nil }
func (l *storeLayer) Compressed() (io.ReadCloser, error) {
	return l.s.OpenBlob(context.Background(), l.desc.Digest)
}

// Layer returns a stored blob as a v1.Layer with the given descriptor and
// diff ID (the digest of its uncompressed content).
func (s *Store) Layer(ctx context.Context, desc v1.Descriptor, diffID v1.Hash) (v1.Layer, error) {
	if _, err := s.BlobInfo(ctx, desc.Digest); err != nil {
		return nil, err
	}
	return partial.CompressedToLayer(&storeLayerWithDiffID{storeLayer{s: s, desc: desc}, diffID})
}

type storeLayerWithDiffID struct {
	storeLayer
	diffID v1.Hash
}

func (l *storeLayerWithDiffID) DiffID() (v1.Hash, error) { return l.diffID, nil }

// Progress reports on one blob of an image being written.
type Progress struct {
	// Digest of the blob; Kind says what it is ("layer", "config", "manifest").
	Digest v1.Hash
	Kind   string
	// Complete of Total bytes are written; Total is -1 when unknown.
	Complete, Total int64
	// Exists is set when the blob was already in the store (nothing to do).
	Exists bool
	// Done is set on the last report for the blob.
	Done bool
}

// WriteOptions tune WriteImage.
type WriteOptions struct {
	// Names the image is stored under. With none, the image is stored
	// without a name (dangling) unless it already has names.
	Names []reference.Reference
	// RepoDigests are "repository@digest" forms to record (for pulls).
	RepoDigests []string
	// Jobs is how many blobs are written in parallel (default 4).
	Jobs int
	// Progress, if set, is called (from several goroutines) as blobs are
	// written.
	Progress func(Progress)
}

// WriteImage stores img: every blob not already present (fetched in
// parallel, verified against its digest), then the names, atomically. On
// any error nothing new is visible under a name; blobs already written stay
// for the next attempt until GC.
func (s *Store) WriteImage(ctx context.Context, img v1.Image, opts WriteOptions) (Image, error) {
	lease, err := s.Lease(ctx)
	if err != nil {
		return Image{}, err
	}
	defer lease.Release()

	raw, err := img.RawManifest()
	if err != nil {
		return Image{}, fmt.Errorf("read manifest: %w", err)
	}
	m, err := v1.ParseManifest(bytes.NewReader(raw))
	if err != nil {
		return Image{}, fmt.Errorf("parse manifest: %v: %w", err, errdefs.ErrInvalidArgument)
	}
	mt, err := img.MediaType()
	if err != nil {
		return Image{}, fmt.Errorf("manifest media type: %w", err)
	}
	mdigest, _, err := v1.SHA256(bytes.NewReader(raw))
	if err != nil {
		return Image{}, err
	}
	report := opts.Progress
	if report == nil {
		report = func(Progress) {}
	}

	jobs := opts.Jobs
	if jobs <= 0 {
		jobs = 4
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(jobs)
	for _, ld := range m.Layers {
		g.Go(func() error {
			return s.writeLayer(gctx, img, ld, report)
		})
	}
	if err := g.Wait(); err != nil {
		return Image{}, err
	}
	rawCfg, err := img.RawConfigFile()
	if err != nil {
		return Image{}, fmt.Errorf("read config: %w", err)
	}
	if _, err := s.WriteBlob(ctx, bytes.NewReader(rawCfg), m.Config.Digest, m.Config.Size); err != nil {
		return Image{}, fmt.Errorf("config %s: %w", m.Config.Digest, err)
	}
	if _, err := s.WriteBlob(ctx, bytes.NewReader(raw), mdigest, int64(len(raw))); err != nil {
		return Image{}, fmt.Errorf("manifest %s: %w", mdigest, err)
	}
	report(Progress{Digest: mdigest, Kind: "manifest", Complete: int64(len(raw)), Total: int64(len(raw)), Done: true})
	if err := atomicfile.SyncDir(s.path(blobsDir, "sha256")); err != nil {
		return Image{}, fmt.Errorf("sync blobs: %w", err)
	}

	desc := v1.Descriptor{MediaType: mt, Size: int64(len(raw)), Digest: mdigest}
	if cf, err := img.ConfigFile(); err == nil && cf.OS != "" {
		desc.Platform = &v1.Platform{OS: cf.OS, Architecture: cf.Architecture, Variant: cf.Variant}
	}
	now := time.Now()
	err = s.updateIndex(ctx, func(idx *v1.IndexManifest) error {
		if len(opts.Names) == 0 {
			addUnnamed(idx, desc, opts.RepoDigests, now)
		}
		for _, n := range opts.Names {
			setName(idx, desc, n, opts.RepoDigests, now)
		}
		return nil
	})
	if err != nil {
		return Image{}, err
	}
	idx, err := s.readIndex()
	if err != nil {
		return Image{}, err
	}
	for _, im := range groupImages(idx) {
		if im.Manifest.Digest == mdigest {
			return im, nil
		}
	}
	return Image{}, fmt.Errorf("image %s vanished after write (removed concurrently): %w", mdigest, errdefs.ErrConflict)
}

func (s *Store) writeLayer(ctx context.Context, img v1.Image, ld v1.Descriptor, report func(Progress)) error {
	if info, err := s.BlobInfo(ctx, ld.Digest); err == nil && info.Size == ld.Size {
		report(Progress{Digest: ld.Digest, Kind: "layer", Complete: ld.Size, Total: ld.Size, Exists: true, Done: true})
		return nil
	}
	l, err := img.LayerByDigest(ld.Digest)
	if err != nil {
		return fmt.Errorf("layer %s: %w", ld.Digest, err)
	}
	rc, err := l.Compressed()
	if err != nil {
		return fmt.Errorf("layer %s: %w", ld.Digest, err)
	}
	defer rc.Close()
	pr := &progressReader{r: rc, fn: func(n int64) {
		report(Progress{Digest: ld.Digest, Kind: "layer", Complete: n, Total: ld.Size})
	}}
	if _, err := s.WriteBlob(ctx, pr, ld.Digest, ld.Size); err != nil {
		return fmt.Errorf("layer %s: %w", ld.Digest, err)
	}
	report(Progress{Digest: ld.Digest, Kind: "layer", Complete: ld.Size, Total: ld.Size, Done: true})
	return nil
}

// progressReader calls fn with the running byte count, at most every 256 KiB.
type progressReader struct {
	r    io.Reader
	n    int64
	last int64
	fn   func(int64)
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	p.n += int64(n)
	if p.n-p.last >= 256<<10 {
		p.last = p.n
		p.fn(p.n)
	}
	return n, err
}
