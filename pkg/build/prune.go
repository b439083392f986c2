package build

import (
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/berthsh/berth/internal/atomicfile"
	"github.com/berthsh/berth/internal/flock"
	"github.com/berthsh/berth/pkg/store"
)

// pruneLockName is the lock (in ROOT/build) that builds hold shared while
// they run and Prune holds exclusively.
const pruneLockName = "prune.lock"

// PruneOptions say what Prune removes.
type PruneOptions struct {
	// All removes every cache entry; without it, entries whose layer an
	// image in the store still uses are kept (as docker keeps cache that is
	// not dangling).
	All bool
	// Until, when set, keeps what was made at or after it.
	Until time.Time
}

// PruneResult is what Prune removed.
type PruneResult struct {
	// Deleted are the IDs of the removed entries: step keys (hex, without
	// "sha256:") and the names of RUN --mount=type=cache directories.
	Deleted []string
	// Reclaimed is the space freed, in bytes: layer blobs no image uses any
	// more and cache mount directories.
	Reclaimed int64
}

// CacheUsage is the build cache's size.
type CacheUsage struct {
	// Entries is the number of cached steps and cache mount directories.
	Entries int
	// Size is the bytes of the layer blobs only the cache uses and of the
	// cache mount directories; Reclaimable is the part Prune without All
	// would free.
	Size, Reclaimable int64
}

// Prune empties the persistent build cache of state root root (the step
// cache ROOT/build/cache.json, the layer blobs only it kept, and the RUN
// --mount=type=cache directories ROOT/build/cache/). It waits for running
// builds to finish, and builds started meanwhile wait for it. Layer blobs
// that no image uses are removed with the store's garbage collection,
// which also frees those of entries the filter kept: they are then
// forgotten too.
func Prune(ctx context.Context, s *store.Store, root string, opts PruneOptions) (PruneResult, error) {
	buildDir := filepath.Join(root, "build")
	if _, err := os.Stat(buildDir); os.IsNotExist(err) {
		return PruneResult{}, nil
	}
	lock, err := flock.Acquire(ctx, filepath.Join(buildDir, pruneLockName), true)
	if err != nil {
		return PruneResult{}, fmt.Errorf("builder prune: %w", err)
	}
	defer lock.Unlock()
	var res PruneResult

	// Cache mount directories; no build is running, so none is in use.
	mounts, err := os.ReadDir(filepath.Join(buildDir, "cache"))
	if err != nil && !os.IsNotExist(err) {
		return res, fmt.Errorf("builder prune: %w", err)
	}
	for _, m := range mounts {
		p := filepath.Join(buildDir, "cache", m.Name())
		if !opts.Until.IsZero() {
			if fi, err := os.Lstat(p); err == nil && !fi.ModTime().Before(opts.Until) {
				continue
			}
		}
		size := dirSize(p)
		if err := os.RemoveAll(p); err != nil {
			return res, fmt.Errorf("builder prune: remove cache mount %s: %w", m.Name(), err)
		}
		res.Deleted = append(res.Deleted, m.Name())
		res.Reclaimed += size
	}

	// Step entries, under the lock that saving a build's entries takes.
	c := &buildCache{path: filepath.Join(buildDir, "cache.json")}
	flk, err := flock.Acquire(ctx, c.path+".lock", true)
	if err != nil {
		return res, fmt.Errorf("builder prune: %w", err)
	}
	defer flk.Unlock()
	f, err := c.read()
	if err != nil {
		return res, err
	}
	inUse, err := imageLayers(ctx, s)
	if err != nil {
		return res, err
	}
	removed := 0
	for k, e := range f.Entries {
		if !opts.Until.IsZero() && !time.Unix(e.Created, 0).Before(opts.Until) {
			continue
		}
		if !opts.All && e.Layer != nil && inUse[e.Layer.Digest] {
			continue
		}
		delete(f.Entries, k)
		res.Deleted = append(res.Deleted, strings.TrimPrefix(k, "sha256:"))
		removed++
	}
	if removed > 0 {
		data, err := json.Marshal(f)
		if err != nil {
			return res, fmt.Errorf("builder prune: %w", err)
		}
		if err := atomicfile.WriteFile(c.path, data, 0o600); err != nil {
			return res, fmt.Errorf("builder prune: %w", err)
		}
	}
	gc, err := s.GC(ctx)
	if err != nil {
		return res, fmt.Errorf("builder prune: %w", err)
	}
	res.Reclaimed += gc.Bytes
	slices.Sort(res.Deleted)
	return res, nil
}

// Usage reports the build cache's size.
func Usage(ctx context.Context, s *store.Store, root string) (CacheUsage, error) {
	var u CacheUsage
	buildDir := filepath.Join(root, "build")
	mounts, _ := os.ReadDir(filepath.Join(buildDir, "cache"))
	for _, m := range mounts {
		size := dirSize(filepath.Join(buildDir, "cache", m.Name()))
		u.Entries++
		u.Size += size
		u.Reclaimable += size
	}
	c := &buildCache{path: filepath.Join(buildDir, "cache.json")}
	f, err := c.read()
	if err != nil {
		return u, err
	}
	inUse, err := imageLayers(ctx, s)
	if err != nil {
		return u, err
	}
	seen := map[v1.Hash]bool{}
	for _, e := range f.Entries {
		if e.Alias != "" {
			continue // a shortcut to another entry, not a step of its own
		}
		u.Entries++
		if e.Layer == nil || inUse[e.Layer.Digest] || seen[e.Layer.Digest] {
			continue
		}
		seen[e.Layer.Digest] = true
		if info, err := s.BlobInfo(ctx, e.Layer.Digest); err == nil {
			u.Size += info.Size
			u.Reclaimable += info.Size
		}
	}
	return u, nil
}

// imageLayers are the layer blobs of the store's images.
func imageLayers(ctx context.Context, s *store.Store) (map[v1.Hash]bool, error) {
	imgs, err := s.List(ctx)
	if err != nil {
		return nil, fmt.Errorf("build cache: %w", err)
	}
	out := map[v1.Hash]bool{}
	for _, img := range imgs {
		m, err := s.Manifest(ctx, img)
		if err != nil {
			continue // an index or a damaged image: keeps nothing alive here
		}
		for _, l := range m.Layers {
			out[l.Digest] = true
		}
	}
	return out, nil
}

// dirSize is the bytes of the regular files under p.
func dirSize(p string) int64 {
	var n int64
	_ = filepath.WalkDir(p, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}
