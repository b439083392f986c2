package store

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/berthsh/berth/internal/atomicfile"
	"github.com/berthsh/berth/internal/flock"
	"github.com/berthsh/berth/pkg/errdefs"
)

// GCResult says what garbage collection removed.
type GCResult struct {
	Blobs int
	Bytes int64
}

// GC removes every blob no image in index.json reaches, and abandoned
// partial writes. It waits for writers holding a lease to finish.
func (s *Store) GC(ctx context.Context) (GCResult, error) {
	l, err := flock.Acquire(ctx, s.path(gcLock), true)
	if err != nil {
		return GCResult{}, err
	}
	defer l.Unlock()
	return s.gcLocked(ctx)
}

// tryGC collects garbage if no writer is active, and otherwise leaves it to
// a later GC.
func (s *Store) tryGC(ctx context.Context) (GCResult, error) {
	l, err := flock.TryAcquire(s.path(gcLock), true)
	if err != nil || l == nil {
		return GCResult{}, err
	}
	defer l.Unlock()
	return s.gcLocked(ctx)
}

func (s *Store) gcLocked(ctx context.Context) (GCResult, error) {
	idx, err := s.readIndex()
	if err != nil {
		return GCResult{}, err
	}
	live := map[v1.Hash]bool{}
	for _, d := range idx.Manifests {
		s.mark(ctx, d.Digest, live)
	}
	var res GCResult
	dir := s.path(blobsDir, "sha256")
	entries, err := os.ReadDir(dir)
	if err != nil {
		return res, fmt.Errorf("gc: %w", err)
	}
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		h := v1.Hash{Algorithm: "sha256", Hex: e.Name()}
		if live[h] {
			continue
		}
		info, _ := e.Info()
		if err := os.Remove(filepath.Join(dir, e.Name())); err != nil {
			return res, fmt.Errorf("gc: remove blob %s: %w", h, err)
		}
		res.Blobs++
		if info != nil {
			res.Bytes += info.Size()
		}
	}
	ing, _ := os.ReadDir(s.path(ingestDir))
	for _, e := range ing {
		if info, err := e.Info(); err == nil {
			res.Bytes += info.Size()
		}
		os.RemoveAll(s.path(ingestDir, e.Name()))
	}
	// Temporary index files of killed writers. Every writer of one holds
	// the index lock, so under it they are all abandoned.
	il, err := flock.Acquire(ctx, s.path(indexLock), true)
	if err != nil {
		return res, err
	}
	defer il.Unlock()
	tmps, _ := filepath.Glob(atomicfile.TempPattern(s.path(indexFile)))
	for _, f := range tmps {
		os.Remove(f)
	}
	return res, nil
}

// mark adds d and everything it references to live. Unreadable manifests
// mark only themselves: GC never deletes what it cannot prove unused
// beyond that, and Verify reports the damage.
func (s *Store) mark(ctx context.Context, d v1.Hash, live map[v1.Hash]bool) {
	if live[d] {
		return
	}
	live[d] = true
	raw, err := os.ReadFile(s.blobPath(d))
	if err != nil {
		return
	}
	if idx, err := v1.ParseIndexManifest(bytes.NewReader(raw)); err == nil && idx.MediaType.IsIndex() {
		for _, c := range idx.Manifests {
			s.mark(ctx, c.Digest, live)
		}
		return
	}
	m, err := v1.ParseManifest(bytes.NewReader(raw))
	if err != nil {
		return
	}
	live[m.Config.Digest] = true
	for _, l := range m.Layers {
		live[l.Digest] = true
	}
}

// Problem is one piece of damage Verify found.
type Problem struct {
	// Image names the image (a name, or its manifest digest).
	Image string
	// Blob is the damaged or missing blob.
	Blob v1.Hash
	Err  error
}

func (p Problem) String() string { return fmt.Sprintf("%s: blob %s: %v", p.Image, p.Blob, p.Err) }

// VerifyReport is the outcome of Verify.
type VerifyReport struct {
	Images   int
	Blobs    int
	Problems []Problem
}

// Verify checks that every image's manifest, config and layers are present
// and match their digests and sizes.
func (s *Store) Verify(ctx context.Context) (VerifyReport, error) {
	lease, err := s.Lease(ctx)
	if err != nil {
		return VerifyReport{}, err
	}
	defer lease.Release()
	idx, err := s.readIndex()
	if err != nil {
		return VerifyReport{}, err
	}
	var rep VerifyReport
	checked := map[v1.Hash]error{}
	check := func(d v1.Hash, size int64) error {
		if err, ok := checked[d]; ok {
			return err
		}
		err := s.verifyBlob(ctx, d, size)
		checked[d] = err
		rep.Blobs++
		return err
	}
	for _, img := range groupImages(idx) {
		if err := ctx.Err(); err != nil {
			return rep, err
		}
		rep.Images++
		label := img.Manifest.Digest.String()
		if len(img.Names) > 0 {
			label = img.Names[0].Familiar()
		}
		if err := check(img.Manifest.Digest, img.Manifest.Size); err != nil {
			rep.Problems = append(rep.Problems, Problem{label, img.Manifest.Digest, err})
			continue
		}
		m, err := s.Manifest(ctx, img)
		if err != nil {
			rep.Problems = append(rep.Problems, Problem{label, img.Manifest.Digest, err})
			continue
		}
		for _, d := range append([]v1.Descriptor{m.Config}, m.Layers...) {
			if err := check(d.Digest, d.Size); err != nil {
				rep.Problems = append(rep.Problems, Problem{label, d.Digest, err})
			}
		}
	}
	return rep, nil
}

func (s *Store) verifyBlob(ctx context.Context, d v1.Hash, size int64) error {
	rc, err := s.OpenBlob(ctx, d)
	if err != nil {
		return err
	}
	defer rc.Close()
	n, err := copyCtx(ctx, io.Discard, rc)
	if err != nil {
		return err
	}
	if n != size {
		return fmt.Errorf("size %d, manifest says %d: %w", n, size, errdefs.ErrDataCorrupt)
	}
	return nil
}

// RemoveOptions tune Remove.
type RemoveOptions struct {
	// Force removes an image referenced by names in several repositories
	// when it is given by ID.
	Force bool
	// InUse, if set, reports why an image must not be deleted (a container
	// uses it), or "" when it may be.
	InUse func(Image) string
}

// RemoveResult lists what Remove did, in docker's terms.
type RemoveResult struct {
	// Untagged are the familiar names removed.
	Untagged []string
	// Deleted are the image IDs deleted.
	Deleted []v1.Hash
}

// Remove removes an image by name or ID as "docker rmi" does: a name is
// untagged, and an image left with no name is deleted with the blobs only
// it used. An ID removes every name of the image (with Force when the
// names span several repositories).
func (s *Store) Remove(ctx context.Context, nameOrID string, opts RemoveOptions) (RemoveResult, error) {
	var res RemoveResult
	err := s.updateIndex(ctx, func(idx *v1.IndexManifest) error {
		img, err := s.resolve(ctx, groupImages(idx), nameOrID)
		if err != nil {
			return err
		}
		id, err := s.configDigest(ctx, img)
		if err != nil {
			id = img.Manifest.Digest
		}
		byName := ""
		for _, n := range img.Names {
			if r, err := parseName(nameOrID); err == nil && r == n.String() {
				byName = n.String()
			}
		}
		remaining := len(img.Names)
		if byName != "" {
			remaining--
		} else {
			repos := map[string]bool{}
			for _, n := range img.Names {
				repos[n.Repository()] = true
			}
			if len(repos) > 1 && !opts.Force {
				return fmt.Errorf("unable to delete %s (must be forced): image is referenced in multiple repositories: %w", shortID(id), errdefs.ErrConflict)
			}
			remaining = 0
		}
		if remaining == 0 && opts.InUse != nil {
			if why := opts.InUse(img); why != "" {
				return fmt.Errorf("unable to delete %s: %s: %w", shortID(id), why, errdefs.ErrConflict)
			}
		}
		var kept []v1.Descriptor
		for _, d := range idx.Manifests {
			if d.Digest != img.Manifest.Digest {
				kept = append(kept, d)
				continue
			}
			n := d.Annotations[AnnotationRefName]
			switch {
			case remaining == 0:
				if n != "" {
					res.Untagged = append(res.Untagged, familiar(n))
				}
			case n == byName:
				res.Untagged = append(res.Untagged, familiar(n))
			default:
				kept = append(kept, d)
			}
		}
		if remaining == 0 {
			res.Deleted = append(res.Deleted, id)
		}
		idx.Manifests = kept
		return nil
	})
	if err != nil {
		return RemoveResult{}, fmt.Errorf("remove image %s: %w", nameOrID, err)
	}
	if len(res.Deleted) > 0 {
		if _, err := s.tryGC(ctx); err != nil {
			return res, fmt.Errorf("remove image %s: reclaim space: %w", nameOrID, err)
		}
	}
	return res, nil
}

// PruneOptions tune Prune.
type PruneOptions struct {
	// All removes every image nothing uses, not only those without a name.
	All bool
	// InUse reports whether a container uses the image.
	InUse func(Image) string
}

// PruneResult lists what Prune removed.
type PruneResult struct {
	Deleted []v1.Hash
	GCResult
}

// Prune removes dangling images (with All, every image not in use), then
// collects garbage.
func (s *Store) Prune(ctx context.Context, opts PruneOptions) (PruneResult, error) {
	var res PruneResult
	err := s.updateIndex(ctx, func(idx *v1.IndexManifest) error {
		drop := map[v1.Hash]bool{}
		for _, img := range groupImages(idx) {
			if len(img.Names) > 0 && !opts.All {
				continue
			}
			if opts.InUse != nil && opts.InUse(img) != "" {
				continue
			}
			drop[img.Manifest.Digest] = true
			id, err := s.configDigest(ctx, img)
			if err != nil {
				id = img.Manifest.Digest
			}
			res.Deleted = append(res.Deleted, id)
		}
		var kept []v1.Descriptor
		for _, d := range idx.Manifests {
			if !drop[d.Digest] {
				kept = append(kept, d)
			}
		}
		idx.Manifests = kept
		return nil
	})
	if err != nil {
		return res, fmt.Errorf("prune images: %w", err)
	}
	gc, err := s.GC(ctx)
	res.GCResult = gc
	if err != nil {
		return res, fmt.Errorf("prune images: %w", err)
	}
	return res, nil
}

func shortID(h v1.Hash) string {
	if len(h.Hex) >= 12 {
		return h.Hex[:12]
	}
	return h.String()
}

func parseName(s string) (string, error) { return referenceParse(s) }
