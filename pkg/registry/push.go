package registry

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"sync"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/klauspost/compress/zstd"
	"golang.org/x/sync/errgroup"

	"github.com/berthsh/berth/pkg/errdefs"
	"github.com/berthsh/berth/pkg/reference"
	"github.com/berthsh/berth/pkg/store"
)

// Compression is how pushed layers are compressed.
type Compression string

const (
	// CompressionGzip pushes the stored layers as they are (normally
	// gzip), without recompressing them. It is the default.
	CompressionGzip Compression = "gzip"
	// CompressionZstd recompresses every layer with zstd and pushes an OCI
	// manifest with application/vnd.oci.image.layer.v1.tar+zstd layers.
	// The image config (and so the image ID and diff IDs) is unchanged;
	// the manifest digest differs from the local one.
	CompressionZstd Compression = "zstd"
)

// ParseCompression checks a --compression value ("" means gzip).
func ParseCompression(s string) (Compression, error) {
	switch Compression(s) {
	case "", CompressionGzip:
		return CompressionGzip, nil
	case CompressionZstd:
		return CompressionZstd, nil
	}
	return "", fmt.Errorf("unknown compression %q (use gzip or zstd): %w", s, errdefs.ErrInvalidArgument)
}

// PushOptions tune Push.
type PushOptions struct {
	// Insecure allows plain HTTP and unverified TLS for the registry.
	Insecure bool
	// Keychain finds credentials; nil means authn.DefaultKeychain.
	Keychain authn.Keychain
	// Jobs is how many blobs are uploaded (and, with zstd, layers
	// compressed) at once (default 4).
	Jobs int
	// Progress, if set, is called (from several goroutines) as layers are
	// uploaded; layers the registry already had (or mounted from another
	// repository) are reported with Exists at the end.
	Progress func(store.Progress)
	// Compression is gzip (default: layers pushed as stored) or zstd.
	Compression Compression
	// Transport replaces the HTTP transport (tests).
	Transport http.RoundTripper
	// Config is berth's config file; nil reads it with LoadConfig.
	Config *Config
}

// PushResult describes a finished push.
type PushResult struct {
	// Reference is where the image was pushed (with its tag).
	Reference reference.Reference
	// Digest and Size are those of the pushed manifest.
	Digest v1.Hash
	Size   int64
}

// Push uploads the local image src (a name or an ID) to the registry and
// tag dst names. Blobs the registry has are skipped; blobs it has in
// another repository the image was pulled from or pushed to are mounted
// from there instead of uploaded. After a push of the stored manifest the
// image records dst's repository digest, as docker does.
func Push(ctx context.Context, s *store.Store, src string, dst reference.Reference, opts PushOptions) (PushResult, error) {
	res, err := push(ctx, s, src, dst, opts)
	if err != nil && !isComplete(err) {
		return PushResult{}, fmt.Errorf("push %s: %w", dst.Familiar(), err)
	}
	if err != nil {
		return PushResult{}, err
	}
	return res, nil
}

func push(ctx context.Context, s *store.Store, src string, dst reference.Reference, opts PushOptions) (PushResult, error) {
	if dst.Digest() != "" {
		return PushResult{}, fmt.Errorf("cannot push to a reference with a digest; give a tag: %w", errdefs.ErrInvalidArgument)
	}
	if dst.Tag() == "" {
		var err error
		if dst, err = dst.WithTag(reference.DefaultTag); err != nil {
			return PushResult{}, err
		}
	}
	comp, err := ParseCompression(string(opts.Compression))
	if err != nil {
		return PushResult{}, err
	}
	jobs := opts.Jobs
	if jobs <= 0 {
		jobs = defaultJobs
	}
	report := opts.Progress
	if report == nil {
		report = func(store.Progress) {}
	}
	host := dst.Domain()
	ep, err := connOptions{Insecure: opts.Insecure, Keychain: opts.Keychain, Transport: opts.Transport, Config: opts.Config}.resolve(ctx, host)
	if err != nil {
		return PushResult{}, err
	}
	nref, err := ep.name(dst)
	if err != nil {
		return PushResult{}, err
	}

	local, err := s.Get(ctx, src)
	if err != nil {
		return PushResult{}, err
	}
	// The lease keeps GC away from the blobs read (and, with zstd,
	// written) until the push is over.
	lease, err := s.Lease(ctx)
	if err != nil {
		return PushResult{}, err
	}
	defer lease.Release()
	img, err := s.Image(ctx, local)
	if err != nil {
		return PushResult{}, err
	}
	var mount name.Reference
	if comp == CompressionZstd {
		if img, err = toZstd(ctx, s, img, jobs); err != nil {
			return PushResult{}, err
		}
	} else {
		mount = mountSource(local.RepoDigests, dst, ep)
	}
	raw, err := img.RawManifest()
	if err != nil {
		return PushResult{}, err
	}
	digest, size, err := v1.SHA256(bytes.NewReader(raw))
	if err != nil {
		return PushResult{}, err
	}
	m, err := img.Manifest()
	if err != nil {
		return PushResult{}, err
	}

	tr := &pushTracker{report: report, done: map[v1.Hash]bool{}}
	pimg := &pushImage{Image: img, mount: mount, tr: tr}
	if err := remote.Write(nref, pimg, ep.remoteOptions(ctx, jobs)...); err != nil {
		err = classify(err, host)
		if errors.Is(err, errdefs.ErrUnauthorized) {
			return PushResult{}, completeError(err, "push access denied for %s (log in with 'berth login %s')", dst.FamiliarRepository(), host)
		}
		return PushResult{}, err
	}
	for _, l := range m.Layers {
		tr.finish(l)
	}

	if comp == CompressionGzip {
		for _, n := range local.Names {
			if n.String() == dst.String() {
				// Best effort: the push succeeded even if recording fails.
				_, _ = s.WriteImage(ctx, img, store.WriteOptions{
					Names:       []reference.Reference{dst},
					RepoDigests: []string{dst.Repository() + "@" + digest.String()},
				})
				break
			}
		}
	}
	return PushResult{Reference: dst, Digest: digest, Size: size}, nil
}

// mountSource returns a repository on dst's registry that the image is
// known to be in (from its RepoDigests), to mount blobs from, or nil.
func mountSource(repoDigests []string, dst reference.Reference, ep endpoint) name.Reference {
	for _, rd := range repoDigests {
		r, err := reference.Parse(rd)
		if err != nil || r.Domain() != dst.Domain() || r.Repository() == dst.Repository() {
			continue
		}
		if n, err := ep.name(r); err == nil {
			return n
		}
	}
	return nil
}

// pushImage wraps the image being pushed: its layers report progress and,
// with a mount source, are offered to the registry for a cross-repository
// mount.
type pushImage struct {
	v1.Image
	mount name.Reference
	tr    *pushTracker
}

func (p *pushImage) wrap(l v1.Layer) v1.Layer {
	pl := &progressLayer{Layer: l, tr: p.tr}
	if p.mount != nil {
		return &remote.MountableLayer{Layer: pl, Reference: p.mount}
	}
	return pl
}

func (p *pushImage) Layers() ([]v1.Layer, error) {
	ls, err := p.Image.Layers()
	if err != nil {
		return nil, err
	}
	out := make([]v1.Layer, len(ls))
	for i, l := range ls {
		out[i] = p.wrap(l)
	}
	return out, nil
}

func (p *pushImage) LayerByDigest(h v1.Hash) (v1.Layer, error) {
	l, err := p.Image.LayerByDigest(h)
	if err != nil {
		return nil, err
	}
	return p.wrap(l), nil
}

func (p *pushImage) ConfigLayer() (v1.Layer, error) {
	l, err := partial.ConfigLayer(p.Image)
	if err != nil {
		return nil, err
	}
	if p.mount != nil {
		return &remote.MountableLayer{Layer: l, Reference: p.mount}, nil
	}
	return l, nil
}

// pushTracker reports per-layer push progress.
type pushTracker struct {
	report func(store.Progress)
	mu     sync.Mutex
	done   map[v1.Hash]bool
}

// finish reports a layer that was never uploaded as already present.
func (t *pushTracker) finish(d v1.Descriptor) {
	t.mu.Lock()
	done := t.done[d.Digest]
	t.done[d.Digest] = true
	t.mu.Unlock()
	if !done {
		t.report(store.Progress{Digest: d.Digest, Kind: "layer", Complete: d.Size, Total: d.Size, Exists: true, Done: true})
	}
}

type progressLayer struct {
	v1.Layer
	tr *pushTracker
}

func (l *progressLayer) Compressed() (io.ReadCloser, error) {
	d, err := l.Digest()
	if err != nil {
		return nil, err
	}
	size, err := l.Size()
	if err != nil {
		return nil, err
	}
	rc, err := l.Layer.Compressed()
	if err != nil {
		return nil, err
	}
	l.tr.report(store.Progress{Digest: d, Kind: "layer", Total: size})
	return &pushReader{rc: rc, d: d, size: size, tr: l.tr}, nil
}

// pushReader reports bytes read by the uploader, at most every 256 KiB.
type pushReader struct {
	rc      io.ReadCloser
	d       v1.Hash
	size    int64
	n, last int64
	tr      *pushTracker
}

func (r *pushReader) Read(p []byte) (int, error) {
	n, err := r.rc.Read(p)
	r.n += int64(n)
	if errors.Is(err, io.EOF) {
		r.tr.mu.Lock()
		r.tr.done[r.d] = true
		r.tr.mu.Unlock()
		r.tr.report(store.Progress{Digest: r.d, Kind: "layer", Complete: r.n, Total: r.size, Done: true})
	} else if r.n-r.last >= 256<<10 {
		r.last = r.n
		r.tr.report(store.Progress{Digest: r.d, Kind: "layer", Complete: r.n, Total: r.size})
	}
	return n, err
}

func (r *pushReader) Close() error { return r.rc.Close() }

// toZstd returns img with every gzip or uncompressed layer recompressed
// with zstd (in parallel), under an OCI manifest. The zstd blobs are
// written to the store (the caller holds a lease); nothing references
// them, so the next GC removes them.
func toZstd(ctx context.Context, s *store.Store, img v1.Image, jobs int) (v1.Image, error) {
	m, err := img.Manifest()
	if err != nil {
		return nil, err
	}
	rawCfg, err := img.RawConfigFile()
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	if len(cf.RootFS.DiffIDs) != len(m.Layers) {
		return nil, fmt.Errorf("image config lists %d diff IDs for %d layers: %w", len(cf.RootFS.DiffIDs), len(m.Layers), errdefs.ErrDataCorrupt)
	}
	descs := make([]v1.Descriptor, len(m.Layers))
	layers := make([]v1.Layer, len(m.Layers))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(jobs)
	for i, ld := range m.Layers {
		g.Go(func() error {
			l, err := img.LayerByDigest(ld.Digest)
			if err != nil {
				return err
			}
			switch ld.MediaType {
			case types.DockerLayer, types.OCILayer, types.DockerUncompressedLayer, types.OCIUncompressedLayer:
			default:
				// Already zstd, foreign or not a layer: pushed as is.
				descs[i], layers[i] = ld, l
				return nil
			}
			nd, err := compressZstd(gctx, s, l, cf.RootFS.DiffIDs[i])
			if err != nil {
				return fmt.Errorf("compress layer %s with zstd: %w", ld.Digest, err)
			}
			nd.Annotations = ld.Annotations
			nl, err := s.Layer(gctx, nd, cf.RootFS.DiffIDs[i])
			if err != nil {
				return err
			}
			descs[i], layers[i] = nd, nl
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	cfgDesc := m.Config
	if cfgDesc.MediaType == types.DockerConfigJSON {
		cfgDesc.MediaType = types.OCIConfigJSON
	}
	nm := v1.Manifest{
		SchemaVersion: 2,
		MediaType:     types.OCIManifestSchema1,
		Config:        cfgDesc,
		Layers:        descs,
		Annotations:   m.Annotations,
		Subject:       m.Subject,
	}
	raw, err := json.Marshal(nm)
	if err != nil {
		return nil, err
	}
	core := &builtImage{raw: raw, cfg: rawCfg, layers: map[v1.Hash]v1.Layer{}}
	for i, d := range descs {
		core.layers[d.Digest] = layers[i]
	}
	return partial.CompressedToImage(core)
}

// compressZstd writes l's uncompressed content, zstd-compressed, as a new
// blob and checks the content against diffID.
func compressZstd(ctx context.Context, s *store.Store, l v1.Layer, diffID v1.Hash) (v1.Descriptor, error) {
	rc, err := l.Uncompressed()
	if err != nil {
		return v1.Descriptor{}, err
	}
	defer rc.Close()
	w, err := s.NewWriter(ctx)
	if err != nil {
		return v1.Descriptor{}, err
	}
	defer w.Close()
	enc, err := zstd.NewWriter(w, zstd.WithEncoderConcurrency(runtime.NumCPU()))
	if err != nil {
		return v1.Descriptor{}, err
	}
	h := sha256.New()
	buf := make([]byte, 1<<20)
	for {
		if err := ctx.Err(); err != nil {
			enc.Close()
			return v1.Descriptor{}, err
		}
		n, rerr := rc.Read(buf)
		if n > 0 {
			h.Write(buf[:n])
			if _, err := enc.Write(buf[:n]); err != nil {
				enc.Close()
				return v1.Descriptor{}, err
			}
		}
		if errors.Is(rerr, io.EOF) {
			break
		}
		if rerr != nil {
			enc.Close()
			return v1.Descriptor{}, rerr
		}
	}
	if err := enc.Close(); err != nil {
		return v1.Descriptor{}, err
	}
	if got := "sha256:" + hex.EncodeToString(h.Sum(nil)); got != diffID.String() {
		return v1.Descriptor{}, fmt.Errorf("uncompressed content has digest %s, config says %s: %w", got, diffID, errdefs.ErrDataCorrupt)
	}
	info, err := w.Commit(ctx, v1.Hash{}, -1)
	if err != nil {
		return v1.Descriptor{}, err
	}
	return v1.Descriptor{MediaType: types.OCILayerZStd, Digest: info.Digest, Size: info.Size}, nil
}

// builtImage is an image assembled from a manifest, a config and layers.
type builtImage struct {
	raw, cfg []byte
	layers   map[v1.Hash]v1.Layer
}

func (b *builtImage) RawManifest() ([]byte, error)        { return b.raw, nil }
func (b *builtImage) RawConfigFile() ([]byte, error)      { return b.cfg, nil }
func (b *builtImage) MediaType() (types.MediaType, error) { return types.OCIManifestSchema1, nil }
func (b *builtImage) LayerByDigest(h v1.Hash) (partial.CompressedLayer, error) {
	if l, ok := b.layers[h]; ok {
		return l, nil
	}
	return nil, fmt.Errorf("layer %s not in image: %w", h, errdefs.ErrNotFound)
}
