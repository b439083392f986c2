package archive

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"path"
	"runtime"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/berthsh/berth/pkg/errdefs"
	"github.com/berthsh/berth/pkg/reference"
	"github.com/berthsh/berth/pkg/store"
)

// LoadOptions tune Load.
type LoadOptions struct {
	// Progress, if set, is called as layers are copied into the store
	// (Kind "layer"; Digest is the layer's digest in the archive, or its
	// diff ID for docker archives with uncompressed layers).
	Progress func(store.Progress)
}

// dockerManifestEntry is one image in a "docker save" manifest.json.
type dockerManifestEntry struct {
	Config   string
	RepoTags []string
	Layers   []string
}

// loadPlan is one image to load and the names to give it.
type loadPlan struct {
	what  string // how errors name the image
	names []reference.Reference
	// Exactly one of docker and oci is set: a docker manifest.json entry
	// (layers are re-packed and a manifest written), or an OCI manifest
	// descriptor whose manifest is stored verbatim.
	docker *dockerManifestEntry
	oci    *v1.Descriptor
	// key identifies the image for de-duplication (its config digest, or
	// manifest digest).
	key string
	// manifest is the digest of the stored manifest, once loaded.
	manifest v1.Hash
}

// Load reads an image archive from r and stores every image in it: the
// output of "docker save" (docker before 25 with <id>/layer.tar entries,
// and 25 or later with an OCI layout inside), and OCI image-layout
// archives, optionally compressed with gzip, zstd or bzip2.
//
// Uncompressed layers are compressed with pgzip as they are stored (with
// fixed settings, so loading the same archive twice gives the same
// manifest); compressed layers are stored as they are. Every layer's diff
// ID is checked against its config, every blob of an OCI manifest against
// its descriptor. Input that is not seekable is spooled to the store's
// ingest directory first and removed afterwards.
//
// The images are named only once all of their content is stored: on error
// no new name exists, and the blobs already written are left to GC. The
// returned images carry the names given to them from the archive (none for
// an image saved without a name), not every name they have in the store.
func Load(ctx context.Context, s *store.Store, r io.Reader, opts LoadOptions) ([]store.Image, error) {
	lease, err := s.Lease(ctx)
	if err != nil {
		return nil, fmt.Errorf("load: %w", err)
	}
	defer lease.Release()

	ra, size, cleanup, err := openArchive(ctx, s, r)
	if err != nil {
		return nil, fmt.Errorf("load: %w", err)
	}
	defer cleanup()
	x, err := indexTar(ctx, ra, size)
	if err != nil {
		return nil, fmt.Errorf("load: %w", err)
	}
	l := &loader{s: s, x: x, opts: opts, layers: map[*tarEntry]storedLayer{}}

	var plans []*loadPlan
	switch {
	case x.has("manifest.json"):
		plans, err = l.planDocker(ctx)
	case x.has("index.json"):
		plans, err = l.planOCI(ctx)
	case x.has("repositories"):
		err = fmt.Errorf("archive has no manifest.json: archives from docker before 1.10 are not supported: %w", errdefs.ErrNotImplemented)
	default:
		err = fmt.Errorf("archive has neither manifest.json nor index.json: not a docker save or OCI image archive: %w", errdefs.ErrInvalidArgument)
	}
	if err != nil {
		return nil, fmt.Errorf("load: %w", err)
	}

	for _, p := range plans {
		if p.docker != nil {
			err = l.loadDocker(ctx, p)
		} else {
			err = l.loadOCI(ctx, p)
		}
		if err != nil {
			return nil, fmt.Errorf("load %s: %w", p.what, err)
		}
	}
	// Everything is stored; only now are names recorded.
	out := make([]store.Image, 0, len(plans))
	for _, p := range plans {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("load: %w", err)
		}
		img, err := s.ImageByDigest(ctx, p.manifest)
		if err != nil {
			return nil, fmt.Errorf("load %s: %w", p.what, err)
		}
		stored, err := s.WriteImage(ctx, img, store.WriteOptions{Names: p.names})
		if err != nil {
			return nil, fmt.Errorf("load %s: %w", p.what, err)
		}
		stored.Names = p.names
		out = append(out, stored)
	}
	return out, nil
}

type loader struct {
	s      *store.Store
	x      *tarIndex
	opts   LoadOptions
	layers map[*tarEntry]storedLayer // layers already stored, by entry
}

// addPlan adds p to plans, or merges its names into an earlier plan for
// the same image.
func addPlan(plans []*loadPlan, p *loadPlan) []*loadPlan {
	for _, q := range plans {
		if q.key == p.key {
			for _, n := range p.names {
				if !hasName(q.names, n) {
					q.names = append(q.names, n)
				}
			}
			return plans
		}
	}
	return append(plans, p)
}

func hasName(list []reference.Reference, n reference.Reference) bool {
	for _, x := range list {
		if x.String() == n.String() {
			return true
		}
	}
	return false
}

// planDocker reads manifest.json. Where the archive also holds an OCI
// layout (docker 25 and later, berth save) with a manifest for the same
// config whose layers are compressed and present, that manifest is loaded
// verbatim, so its digest is kept; otherwise the layers are re-packed.
func (l *loader) planDocker(ctx context.Context) ([]*loadPlan, error) {
	var entries []dockerManifestEntry
	if _, err := l.x.readJSON("manifest.json", &entries); err != nil {
		return nil, err
	}
	if len(entries) == 0 {
		return nil, fmt.Errorf("manifest.json lists no images: %w", errdefs.ErrInvalidArgument)
	}
	var byConfig map[v1.Hash]v1.Descriptor
	if l.x.has("index.json") {
		byConfig = l.ociManifestsByConfig(ctx)
	}
	var plans []*loadPlan
	for i := range entries {
		e := &entries[i]
		what := fmt.Sprintf("image %d of manifest.json", i+1)
		if e.Config == "" {
			return nil, fmt.Errorf("%s has no Config: %w", what, errdefs.ErrInvalidArgument)
		}
		raw, err := l.readEntry(e.Config)
		if err != nil {
			return nil, fmt.Errorf("%s: config: %w", what, err)
		}
		cfgDigest := sha256Hash(raw)
		p := &loadPlan{what: what, docker: e, key: cfgDigest.String()}
		for _, t := range e.RepoTags {
			ref, err := reference.Parse(t)
			if err != nil || ref.Tag() == "" || ref.Digest() != "" {
				return nil, fmt.Errorf("%s: invalid RepoTag %q: %w", what, t, errdefs.ErrInvalidArgument)
			}
			if !hasName(p.names, ref) {
				p.names = append(p.names, ref)
			}
		}
		if len(p.names) > 0 {
			p.what = p.names[0].Familiar()
		}
		if d, ok := byConfig[cfgDigest]; ok {
			p.oci, p.docker = &d, nil
		}
		plans = addPlan(plans, p)
	}
	return plans, nil
}

// ociManifestsByConfig maps config digests to the image manifests of the
// archive's OCI layout that can be loaded verbatim: every blob present,
// every layer compressed. Anything unreadable is left out (the docker
// manifest is used instead).
func (l *loader) ociManifestsByConfig(ctx context.Context) map[v1.Hash]v1.Descriptor {
	out := map[v1.Hash]v1.Descriptor{}
	var idx v1.IndexManifest
	if _, err := l.x.readJSON("index.json", &idx); err != nil {
		return out
	}
	for _, d := range idx.Manifests {
		d, err := l.resolveImage(d)
		if err != nil {
			continue
		}
		raw, err := l.readBlob(d)
		if err != nil {
			continue
		}
		m, err := v1.ParseManifest(bytes.NewReader(raw))
		if err != nil || !l.x.has(blobPath(m.Config.Digest)) {
			continue
		}
		ok := true
		for _, ld := range m.Layers {
			switch ld.MediaType {
			case types.OCILayer, types.OCILayerZStd, types.DockerLayer:
			default:
				ok = false
			}
			if !l.x.has(blobPath(ld.Digest)) {
				ok = false
			}
		}
		if ok {
			out[m.Config.Digest] = d
		}
	}
	return out
}

// planOCI reads index.json of an OCI image layout.
func (l *loader) planOCI(ctx context.Context) ([]*loadPlan, error) {
	var idx v1.IndexManifest
	if _, err := l.x.readJSON("index.json", &idx); err != nil {
		return nil, err
	}
	if len(idx.Manifests) == 0 {
		return nil, fmt.Errorf("index.json lists no images: %w", errdefs.ErrInvalidArgument)
	}
	var plans []*loadPlan
	for _, d := range idx.Manifests {
		names, err := ociNames(d.Annotations)
		if err != nil {
			return nil, fmt.Errorf("index.json: %w", err)
		}
		target, err := l.resolveImage(d)
		if err != nil {
			return nil, fmt.Errorf("index.json: %w", err)
		}
		what := "image " + target.Digest.String()
		if len(names) > 0 {
			what = names[0].Familiar()
		}
		plans = addPlan(plans, &loadPlan{what: what, names: names, oci: &target, key: target.Digest.String()})
	}
	return plans, nil
}

// ociNames reads an image's names from index.json annotations:
// io.containerd.image.name (a full name, as docker and containerd write
// it) when present, else org.opencontainers.image.ref.name when it is a
// name rather than a bare tag ("3.11", which names no repository).
func ociNames(a map[string]string) ([]reference.Reference, error) {
	if n := a[store.AnnotationContainerdName]; n != "" {
		ref, err := reference.Parse(n)
		if err != nil || ref.Digest() != "" {
			return nil, fmt.Errorf("invalid image name %q in annotation %s: %w", n, store.AnnotationContainerdName, errdefs.ErrInvalidArgument)
		}
		return []reference.Reference{ref}, nil
	}
	if n := a[store.AnnotationRefName]; strings.ContainsAny(n, ":/") {
		if ref, err := reference.Parse(n); err == nil && ref.Digest() == "" {
			return []reference.Reference{ref}, nil
		}
	}
	return nil, nil
}

// resolveImage returns the image manifest descriptor d stands for: d
// itself, or, for an index, the entry for this machine's platform whose
// manifest the archive holds.
func (l *loader) resolveImage(d v1.Descriptor) (v1.Descriptor, error) {
	mt := d.MediaType
	if mt == "" {
		raw, err := l.readBlob(d)
		if err != nil {
			return v1.Descriptor{}, err
		}
		var probe struct {
			MediaType types.MediaType `json:"mediaType"`
			Manifests json.RawMessage `json:"manifests"`
		}
		if err := json.Unmarshal(raw, &probe); err != nil {
			return v1.Descriptor{}, fmt.Errorf("manifest %s: malformed JSON: %v: %w", d.Digest, err, errdefs.ErrInvalidArgument)
		}
		switch {
		case probe.MediaType != "":
			mt = probe.MediaType
		case probe.Manifests != nil:
			mt = types.OCIImageIndex
		default:
			mt = types.OCIManifestSchema1
		}
		d.MediaType = mt
	}
	switch {
	case mt.IsImage():
		return d, nil
	case mt.IsIndex():
		raw, err := l.readBlob(d)
		if err != nil {
			return v1.Descriptor{}, err
		}
		idx, err := v1.ParseIndexManifest(bytes.NewReader(raw))
		if err != nil {
			return v1.Descriptor{}, fmt.Errorf("index %s: malformed JSON: %v: %w", d.Digest, err, errdefs.ErrInvalidArgument)
		}
		want := v1.Platform{OS: "linux", Architecture: runtime.GOARCH}
		var found *v1.Descriptor
		for i, c := range idx.Manifests {
			if !c.MediaType.IsImage() || c.Platform == nil || !l.x.has(blobPath(c.Digest)) {
				continue
			}
			if c.Platform.OS == want.OS && c.Platform.Architecture == want.Architecture {
				found = &idx.Manifests[i]
				break
			}
		}
		if found == nil {
			return v1.Descriptor{}, fmt.Errorf("index %s has no image for %s in the archive: %w", d.Digest, want.String(), errdefs.ErrNotFound)
		}
		return *found, nil
	}
	return v1.Descriptor{}, fmt.Errorf("manifest %s has media type %q, not an image: %w", d.Digest, mt, errdefs.ErrInvalidArgument)
}

// loadDocker stores an image from a manifest.json entry: its config as it
// is, its layers (compressed if they are not), and a new OCI manifest.
func (l *loader) loadDocker(ctx context.Context, p *loadPlan) error {
	e := p.docker
	rawCfg, err := l.readEntry(e.Config)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	cfgDigest := sha256Hash(rawCfg)
	if base := strings.TrimSuffix(path.Base(e.Config), ".json"); isHex64(base) && base != cfgDigest.Hex {
		return fmt.Errorf("config %q has digest %s: %w", e.Config, cfgDigest, errdefs.ErrDataCorrupt)
	}
	cf, err := parseConfig(rawCfg, e.Config)
	if err != nil {
		return err
	}
	diffIDs := cf.RootFS.DiffIDs
	if len(diffIDs) != len(e.Layers) {
		return fmt.Errorf("manifest.json lists %d layers but config %q has %d diff IDs: %w", len(e.Layers), e.Config, len(diffIDs), errdefs.ErrInvalidArgument)
	}
	layers := make([]v1.Descriptor, len(e.Layers))
	for i, lp := range e.Layers {
		ent, err := l.x.lookup(lp)
		if err != nil {
			return fmt.Errorf("layer %d: %w", i+1, err)
		}
		res, ok := l.layers[ent]
		if !ok {
			res, err = l.ingest(ctx, ent, true, v1.Descriptor{Digest: diffIDs[i], Size: -1})
			if err != nil {
				return fmt.Errorf("layer %q: %w", lp, err)
			}
			l.layers[ent] = res
		}
		if res.DiffID != diffIDs[i] {
			return fmt.Errorf("layer %q has diff ID %s but config %q says %s: %w", lp, res.DiffID, e.Config, diffIDs[i], errdefs.ErrDataCorrupt)
		}
		layers[i] = v1.Descriptor{MediaType: res.MediaType, Size: res.Size, Digest: res.Digest}
	}
	m := v1.Manifest{
		SchemaVersion: 2,
		MediaType:     types.OCIManifestSchema1,
		Config:        v1.Descriptor{MediaType: types.OCIConfigJSON, Size: int64(len(rawCfg)), Digest: cfgDigest},
		Layers:        layers,
	}
	rawManifest, err := json.Marshal(m)
	if err != nil {
		return err
	}
	if _, err := l.s.WriteBlob(ctx, bytes.NewReader(rawCfg), cfgDigest, int64(len(rawCfg))); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	md := sha256Hash(rawManifest)
	if _, err := l.s.WriteBlob(ctx, bytes.NewReader(rawManifest), md, int64(len(rawManifest))); err != nil {
		return fmt.Errorf("manifest: %w", err)
	}
	p.manifest = md
	return nil
}

// loadOCI stores an image from the archive's OCI layout verbatim, checking
// every blob against its descriptor and every layer's diff ID.
func (l *loader) loadOCI(ctx context.Context, p *loadPlan) error {
	d := *p.oci
	rawManifest, err := l.readBlob(d)
	if err != nil {
		return err
	}
	m, err := v1.ParseManifest(bytes.NewReader(rawManifest))
	if err != nil {
		return fmt.Errorf("manifest %s: malformed JSON: %v: %w", d.Digest, err, errdefs.ErrInvalidArgument)
	}
	if m.MediaType != "" && !m.MediaType.IsImage() {
		return fmt.Errorf("manifest %s has media type %q, not an image: %w", d.Digest, m.MediaType, errdefs.ErrInvalidArgument)
	}
	switch m.Config.MediaType {
	case types.OCIConfigJSON, types.DockerConfigJSON:
	default:
		return fmt.Errorf("manifest %s: config media type %q is not an image config: %w", d.Digest, m.Config.MediaType, errdefs.ErrInvalidArgument)
	}
	rawCfg, err := l.readBlob(m.Config)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	cf, err := parseConfig(rawCfg, blobPath(m.Config.Digest))
	if err != nil {
		return err
	}
	if len(cf.RootFS.DiffIDs) != len(m.Layers) {
		return fmt.Errorf("manifest %s has %d layers but its config has %d diff IDs: %w", d.Digest, len(m.Layers), len(cf.RootFS.DiffIDs), errdefs.ErrInvalidArgument)
	}
	for i, ld := range m.Layers {
		if err := checkDescriptor(ld); err != nil {
			return fmt.Errorf("layer %d: %w", i+1, err)
		}
		bp := blobPath(ld.Digest)
		ent, err := l.x.lookup(bp)
		if err != nil {
			return fmt.Errorf("layer %d: %w", i+1, err)
		}
		if ent.size != ld.Size {
			return fmt.Errorf("layer %q is %d bytes, its descriptor says %d: %w", bp, ent.size, ld.Size, errdefs.ErrDataCorrupt)
		}
		res, ok := l.layers[ent]
		if !ok {
			res, err = l.ingest(ctx, ent, false, ld)
			if err != nil {
				return fmt.Errorf("layer %q: %w", bp, err)
			}
			l.layers[ent] = res
		}
		if res.Digest != ld.Digest {
			return fmt.Errorf("layer %q has digest %s: %w", bp, res.Digest, errdefs.ErrDataCorrupt)
		}
		if res.DiffID != cf.RootFS.DiffIDs[i] {
			return fmt.Errorf("layer %q has diff ID %s but its config says %s: %w", bp, res.DiffID, cf.RootFS.DiffIDs[i], errdefs.ErrDataCorrupt)
		}
	}
	if _, err := l.s.WriteBlob(ctx, bytes.NewReader(rawCfg), m.Config.Digest, m.Config.Size); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	if _, err := l.s.WriteBlob(ctx, bytes.NewReader(rawManifest), d.Digest, d.Size); err != nil {
		return fmt.Errorf("manifest: %w", err)
	}
	p.manifest = d.Digest
	return nil
}

// ingest copies the layer entry into the store, reporting progress under
// d.Digest. A d.Size >= 0 with compress unset means d is the blob's
// descriptor, which the stored blob must match.
func (l *loader) ingest(ctx context.Context, ent *tarEntry, compress bool, d v1.Descriptor) (storedLayer, error) {
	report := l.opts.Progress
	if report == nil {
		report = func(store.Progress) {}
	}
	want, wantSize := v1.Hash{}, int64(-1)
	if !compress {
		want, wantSize = d.Digest, d.Size
	}
	total := ent.size
	res, err := ingestLayer(ctx, l.s, io.NewSectionReader(l.x.ra, ent.offset, ent.size), compress, want, wantSize, func(n int64) {
		report(store.Progress{Digest: d.Digest, Kind: "layer", Complete: n, Total: total})
	})
	if err != nil {
		return storedLayer{}, err
	}
	report(store.Progress{Digest: d.Digest, Kind: "layer", Complete: total, Total: total, Done: true})
	return res, nil
}

// readEntry reads a (small) member named by a docker manifest.
func (l *loader) readEntry(ref string) ([]byte, error) {
	sec, err := l.x.open(ref)
	if err != nil {
		return nil, err
	}
	if sec.Size() > maxJSONSize {
		return nil, fmt.Errorf("archive entry %q is %d bytes, more than the %d allowed: %w", ref, sec.Size(), maxJSONSize, errdefs.ErrInvalidArgument)
	}
	b, err := io.ReadAll(sec)
	if err != nil {
		return nil, fmt.Errorf("read archive entry %q: %w", ref, err)
	}
	return b, nil
}

// readBlob reads the (small) blob d describes from blobs/, verified.
func (l *loader) readBlob(d v1.Descriptor) ([]byte, error) {
	if err := checkDescriptor(d); err != nil {
		return nil, err
	}
	bp := blobPath(d.Digest)
	sec, err := l.x.open(bp)
	if err != nil {
		return nil, err
	}
	if sec.Size() != d.Size {
		return nil, fmt.Errorf("blob %q is %d bytes, its descriptor says %d: %w", bp, sec.Size(), d.Size, errdefs.ErrDataCorrupt)
	}
	if sec.Size() > maxJSONSize {
		return nil, fmt.Errorf("blob %q is %d bytes, more than the %d allowed: %w", bp, sec.Size(), maxJSONSize, errdefs.ErrInvalidArgument)
	}
	b, err := io.ReadAll(sec)
	if err != nil {
		return nil, fmt.Errorf("read archive entry %q: %w", bp, err)
	}
	if got := sha256Hash(b); got != d.Digest {
		return nil, fmt.Errorf("blob %q has digest %s: %w", bp, got, errdefs.ErrDataCorrupt)
	}
	return b, nil
}

func checkDescriptor(d v1.Descriptor) error {
	if d.Digest.Algorithm != "sha256" || !isHex64(d.Digest.Hex) {
		return fmt.Errorf("unsupported digest %q: %w", d.Digest.String(), errdefs.ErrInvalidArgument)
	}
	if d.Size < 0 {
		return fmt.Errorf("descriptor of %s has negative size %d: %w", d.Digest, d.Size, errdefs.ErrInvalidArgument)
	}
	return nil
}

func parseConfig(raw []byte, name string) (*v1.ConfigFile, error) {
	cf, err := v1.ParseConfigFile(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("config %q: malformed JSON: %v: %w", name, err, errdefs.ErrInvalidArgument)
	}
	if cf.RootFS.Type != "layers" {
		return nil, fmt.Errorf("config %q: rootfs type %q, want \"layers\": not an image config: %w", name, cf.RootFS.Type, errdefs.ErrInvalidArgument)
	}
	return cf, nil
}

func blobPath(h v1.Hash) string { return "blobs/" + h.Algorithm + "/" + h.Hex }

func sha256Hash(b []byte) v1.Hash {
	sum := sha256.Sum256(b)
	return v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(sum[:])}
}

func isHex64(s string) bool {
	if len(s) != 64 {
		return false
	}
	for _, c := range s {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
