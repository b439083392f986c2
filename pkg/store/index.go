package store

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/berthsh/berth/internal/atomicfile"
	"github.com/berthsh/berth/internal/flock"
	"github.com/berthsh/berth/pkg/errdefs"
	"github.com/berthsh/berth/pkg/reference"
)

const (
	indexMediaType = types.OCIImageIndex

	// AnnotationRefName holds an image's full name in index.json.
	AnnotationRefName = "org.opencontainers.image.ref.name"
	// AnnotationContainerdName is containerd's name annotation, kept equal
	// to AnnotationRefName so containerd's import tools see the same name.
	AnnotationContainerdName = "io.containerd.image.name"
	// AnnotationRepoDigests lists "repository@digest" forms of the image as
	// known to registries, comma separated.
	AnnotationRepoDigests = "sh.berth.image.repo-digests"
	// AnnotationAdded is when the image (under this name) was stored.
	AnnotationAdded = "sh.berth.image.added"
)

// Image is one image in the store: a manifest and every name that points
// at it.
type Image struct {
	// Manifest is the descriptor of the image manifest.
	Manifest v1.Descriptor
	// Names are full references ("docker.io/library/python:3.11"), sorted.
	Names []reference.Reference
	// RepoDigests are "repository@sha256:…" forms known from registries.
	RepoDigests []string
	// Added is when the image was first stored.
	Added time.Time
}

// Digest is the manifest digest.
func (i Image) Digest() v1.Hash { return i.Manifest.Digest }

// inRepository reports whether the image has a name or a repo digest in
// the repository repo, or has no name at all (a digest then finds it, as
// docker finds "repo@digest" for an image it pulled by digest).
func (i Image) inRepository(repo string) bool {
	if len(i.Names) == 0 && len(i.RepoDigests) == 0 {
		return true
	}
	for _, n := range i.Names {
		if n.Repository() == repo {
			return true
		}
	}
	for _, rd := range i.RepoDigests {
		if strings.HasPrefix(rd, repo+"@") {
			return true
		}
	}
	return false
}

func (s *Store) readIndex() (*v1.IndexManifest, error) {
	b, err := os.ReadFile(s.path(indexFile))
	if err != nil {
		return nil, fmt.Errorf("read index: %w", classifyFSError(err))
	}
	var idx v1.IndexManifest
	if err := json.Unmarshal(b, &idx); err != nil {
		return nil, fmt.Errorf("read index %s: %v: %w", s.path(indexFile), err, errdefs.ErrDataCorrupt)
	}
	// JSON such as "null" or "{}" parses as an empty index; taking it for
	// one would let GC delete every blob.
	if idx.SchemaVersion != 2 {
		return nil, fmt.Errorf("read index %s: schemaVersion %d, want 2: %w", s.path(indexFile), idx.SchemaVersion, errdefs.ErrDataCorrupt)
	}
	return &idx, nil
}

func (s *Store) writeIndex(idx *v1.IndexManifest) error {
	if idx.Manifests == nil {
		idx.Manifests = []v1.Descriptor{}
	}
	sort.SliceStable(idx.Manifests, func(i, j int) bool {
		a, b := idx.Manifests[i], idx.Manifests[j]
		if an, bn := a.Annotations[AnnotationRefName], b.Annotations[AnnotationRefName]; an != bn {
			return an < bn
		}
		return a.Digest.String() < b.Digest.String()
	})
	b, err := json.MarshalIndent(idx, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(s.path(indexFile), append(b, '\n'), 0o644)
}

// updateIndex runs fn on index.json under the index lock and writes the
// result if fn returns nil.
func (s *Store) updateIndex(ctx context.Context, fn func(idx *v1.IndexManifest) error) error {
	l, err := flock.Acquire(ctx, s.path(indexLock), true)
	if err != nil {
		return err
	}
	defer l.Unlock()
	idx, err := s.readIndex()
	if err != nil {
		return err
	}
	if err := fn(idx); err != nil {
		return err
	}
	if err := s.writeIndex(idx); err != nil {
		return fmt.Errorf("write index: %w", classifyFSError(err))
	}
	return nil
}

// groupImages turns index descriptors into images, one per manifest digest.
func groupImages(idx *v1.IndexManifest) []Image {
	byDigest := map[v1.Hash]*Image{}
	var order []v1.Hash
	for _, d := range idx.Manifests {
		img, ok := byDigest[d.Digest]
		if !ok {
			md := d
			md.Annotations = nil
			img = &Image{Manifest: md}
			byDigest[d.Digest] = img
			order = append(order, d.Digest)
		}
		if n := d.Annotations[AnnotationRefName]; n != "" {
			if r, err := reference.Parse(n); err == nil {
				img.Names = append(img.Names, r)
			}
		}
		for _, rd := range strings.Split(d.Annotations[AnnotationRepoDigests], ",") {
			if rd != "" && !contains(img.RepoDigests, rd) {
				img.RepoDigests = append(img.RepoDigests, rd)
			}
		}
		if t, err := time.Parse(time.RFC3339Nano, d.Annotations[AnnotationAdded]); err == nil {
			if img.Added.IsZero() || t.Before(img.Added) {
				img.Added = t
			}
		}
	}
	out := make([]Image, 0, len(order))
	for _, h := range order {
		img := byDigest[h]
		sort.Slice(img.Names, func(i, j int) bool { return img.Names[i].String() < img.Names[j].String() })
		sort.Strings(img.RepoDigests)
		out = append(out, *img)
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// List returns every image in the store, newest first.
func (s *Store) List(ctx context.Context) ([]Image, error) {
	idx, err := s.readIndex()
	if err != nil {
		return nil, err
	}
	imgs := groupImages(idx)
	sort.SliceStable(imgs, func(i, j int) bool { return imgs[i].Added.After(imgs[j].Added) })
	return imgs, nil
}

// Get finds an image by name ("python:3.11"), by name and digest, by
// manifest digest, or by image ID (the config digest) or a unique prefix of
// it, trying them in the order docker does.
func (s *Store) Get(ctx context.Context, nameOrID string) (Image, error) {
	idx, err := s.readIndex()
	if err != nil {
		return Image{}, err
	}
	return s.resolve(ctx, groupImages(idx), nameOrID)
}

func (s *Store) resolve(ctx context.Context, imgs []Image, nameOrID string) (Image, error) {
	if ref, err := reference.Parse(nameOrID); err == nil {
		for _, img := range imgs {
			for _, n := range img.Names {
				if n.String() == ref.String() {
					return img, nil
				}
			}
		}
		if d := ref.Digest(); d != "" {
			for _, img := range imgs {
				if img.Manifest.Digest.String() == d && img.inRepository(ref.Repository()) {
					return img, nil
				}
				for _, rd := range img.RepoDigests {
					if rd == ref.Repository()+"@"+d {
						return img, nil
					}
				}
			}
		}
	}
	id := strings.TrimPrefix(nameOrID, "sha256:")
	if id != "" && len(id) <= 64 && isHex(id) {
		var found []Image
		for _, img := range imgs {
			cfg, err := s.configDigest(ctx, img)
			if err != nil {
				continue
			}
			if strings.HasPrefix(cfg.Hex, id) || (strings.HasPrefix(nameOrID, "sha256:") && img.Manifest.Digest.Hex == id) {
				found = append(found, img)
			}
		}
		switch {
		case len(found) == 1:
			return found[0], nil
		case len(found) > 1:
			return Image{}, fmt.Errorf("image ID prefix %q is ambiguous (%d images): %w", nameOrID, len(found), errdefs.ErrInvalidArgument)
		}
	}
	return Image{}, fmt.Errorf("no such image: %s: %w", nameOrID, errdefs.ErrNotFound)
}

func isHex(s string) bool {
	for _, c := range s {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// Tag gives the image found by nameOrID the name to. A name points at one
// image: if it pointed elsewhere, that image loses it.
func (s *Store) Tag(ctx context.Context, nameOrID string, to reference.Reference) (Image, error) {
	if to.Digest() != "" {
		return Image{}, fmt.Errorf("tag %s: a name with a digest cannot be a tag: %w", to.Familiar(), errdefs.ErrInvalidArgument)
	}
	var out Image
	err := s.updateIndex(ctx, func(idx *v1.IndexManifest) error {
		img, err := s.resolve(ctx, groupImages(idx), nameOrID)
		if err != nil {
			return err
		}
		setName(idx, img.Manifest, to, nil, time.Now())
		out = img
		return nil
	})
	if err != nil {
		return Image{}, fmt.Errorf("tag %s as %s: %w", nameOrID, to.Familiar(), err)
	}
	return out, nil
}

// setName points name at the manifest m in idx. An image left with no name
// keeps one unnamed descriptor (it becomes dangling, as in docker).
func setName(idx *v1.IndexManifest, m v1.Descriptor, name reference.Reference, repoDigests []string, now time.Time) {
	added := now.UTC().Format(time.RFC3339Nano)
	var kept []v1.Descriptor
	var inheritedRD []string
	for _, d := range idx.Manifests {
		n := d.Annotations[AnnotationRefName]
		if d.Digest == m.Digest {
			if a := d.Annotations[AnnotationAdded]; a != "" && a < added {
				added = a
			}
			for _, rd := range strings.Split(d.Annotations[AnnotationRepoDigests], ",") {
				if rd != "" && !contains(inheritedRD, rd) {
					inheritedRD = append(inheritedRD, rd)
				}
			}
			if n == "" || n == name.String() {
				continue // replaced below
			}
		} else if n == name.String() {
			if !hasOtherEntry(idx.Manifests, d) {
				d.Annotations = withoutName(d.Annotations)
				kept = append(kept, d)
			}
			continue
		}
		kept = append(kept, d)
	}
	for _, rd := range repoDigests {
		if !contains(inheritedRD, rd) {
			inheritedRD = append(inheritedRD, rd)
		}
	}
	sort.Strings(inheritedRD)
	desc := v1.Descriptor{MediaType: m.MediaType, Size: m.Size, Digest: m.Digest, Platform: m.Platform}
	desc.Annotations = map[string]string{
		AnnotationRefName:        name.String(),
		AnnotationContainerdName: name.String(),
		AnnotationAdded:          added,
	}
	if len(inheritedRD) > 0 {
		desc.Annotations[AnnotationRepoDigests] = strings.Join(inheritedRD, ",")
	}
	// Every descriptor of one image carries the same repo digests.
	for i := range kept {
		if kept[i].Digest == m.Digest && len(inheritedRD) > 0 {
			kept[i].Annotations[AnnotationRepoDigests] = desc.Annotations[AnnotationRepoDigests]
		}
	}
	idx.Manifests = append(kept, desc)
}

// hasOtherEntry reports whether another descriptor (a name) still points at
// d's manifest.
func hasOtherEntry(all []v1.Descriptor, d v1.Descriptor) bool {
	for _, o := range all {
		if o.Digest == d.Digest && o.Annotations[AnnotationRefName] != d.Annotations[AnnotationRefName] {
			return true
		}
	}
	return false
}

func withoutName(a map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range a {
		if k != AnnotationRefName && k != AnnotationContainerdName {
			out[k] = v
		}
	}
	return out
}

// addUnnamed records m in idx without a name unless it is there already.
func addUnnamed(idx *v1.IndexManifest, m v1.Descriptor, repoDigests []string, now time.Time) {
	for _, d := range idx.Manifests {
		if d.Digest == m.Digest {
			return
		}
	}
	desc := v1.Descriptor{MediaType: m.MediaType, Size: m.Size, Digest: m.Digest, Platform: m.Platform}
	desc.Annotations = map[string]string{AnnotationAdded: now.UTC().Format(time.RFC3339Nano)}
	if len(repoDigests) > 0 {
		desc.Annotations[AnnotationRepoDigests] = strings.Join(repoDigests, ",")
	}
	idx.Manifests = append(idx.Manifests, desc)
}

func referenceParse(s string) (string, error) {
	r, err := reference.Parse(s)
	if err != nil {
		return "", err
	}
	return r.String(), nil
}

func familiar(full string) string {
	r, err := reference.Parse(full)
	if err != nil {
		return full
	}
	return r.Familiar()
}
