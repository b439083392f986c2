package build

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/berthsh/berth/internal/atomicfile"
	"github.com/berthsh/berth/internal/flock"
)

// cacheVersion changes when keys or entries change meaning; a file of
// another version is ignored.
const cacheVersion = 1

// maxCacheEntries bounds the cache file; the oldest entries go first.
const maxCacheEntries = 20000

// cacheEntry is what a step produced: a layer, or none (a WORKDIR that
// found its directory).
type cacheEntry struct {
	Layer  *v1.Descriptor `json:"layer,omitempty"`
	DiffID v1.Hash        `json:"diff_id,omitzero"`
	// Seq orders entries by age for trimming.
	Seq uint64 `json:"seq"`
	// Created is when the entry was made (Unix seconds; 0 in caches
	// written before it was recorded).
	Created int64 `json:"created,omitempty"`
	// Alias, when set, makes the entry a shortcut to the entry of another
	// key: a COPY --from step keyed by its inputs' cache keys rather than
	// by the checksum of the files it copies (see builder.copyAlias).
	Alias string `json:"alias,omitempty"`
}

type cacheFile struct {
	Version int                    `json:"version"`
	Seq     uint64                 `json:"seq"`
	Entries map[string]*cacheEntry `json:"entries"`
}

// buildCache maps step keys to their results. It is loaded once per build,
// updated in memory and merged into the file at the end, under a lock, so
// that parallel builds lose nothing.
type buildCache struct {
	path string
	mu   sync.Mutex
	old  map[string]*cacheEntry
	new  map[string]*cacheEntry
}

func openCache(dir string) (*buildCache, error) {
	c := &buildCache{path: filepath.Join(dir, "cache.json"), new: map[string]*cacheEntry{}}
	f, err := c.read()
	if err != nil {
		return nil, err
	}
	c.old = f.Entries
	return c, nil
}

func (c *buildCache) read() (*cacheFile, error) {
	data, err := os.ReadFile(c.path)
	if errors.Is(err, fs.ErrNotExist) {
		return &cacheFile{Version: cacheVersion, Entries: map[string]*cacheEntry{}}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("build cache: %w", err)
	}
	var f cacheFile
	if err := json.Unmarshal(data, &f); err != nil || f.Version != cacheVersion || f.Entries == nil {
		// A damaged or foreign cache only costs a rebuild.
		return &cacheFile{Version: cacheVersion, Entries: map[string]*cacheEntry{}}, nil
	}
	return &f, nil
}

func (c *buildCache) get(key string) (*cacheEntry, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.new[key]; ok {
		return e, true
	}
	e, ok := c.old[key]
	return e, ok
}

func (c *buildCache) put(key string, e cacheEntry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e.Created == 0 {
		e.Created = time.Now().Unix()
	}
	c.new[key] = &e
}

// save merges the new entries into the file.
func (c *buildCache) save(ctx context.Context) error {
	c.mu.Lock()
	added := maps.Clone(c.new)
	c.mu.Unlock()
	if len(added) == 0 {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(c.path), 0o700); err != nil {
		return fmt.Errorf("build cache: %w", err)
	}
	lock, err := flock.Acquire(ctx, c.path+".lock", true)
	if err != nil {
		return fmt.Errorf("build cache: %w", err)
	}
	defer lock.Unlock()
	f, err := c.read()
	if err != nil {
		return err
	}
	for k, e := range added {
		f.Seq++
		e.Seq = f.Seq
		f.Entries[k] = e
	}
	if len(f.Entries) > maxCacheEntries {
		trimCache(f.Entries, maxCacheEntries)
	}
	data, err := json.Marshal(f)
	if err != nil {
		return fmt.Errorf("build cache: %w", err)
	}
	// Unsynced: the cache is derived data, and a file that a crash left
	// empty, damaged or old only costs a rebuild of some steps (read takes
	// it for an empty cache; hits are checked against the store).
	if err := atomicfile.WriteFileNoSync(c.path, data, 0o600); err != nil {
		return fmt.Errorf("build cache: %w", err)
	}
	return nil
}

// trimCache drops the oldest entries until n are left.
func trimCache(entries map[string]*cacheEntry, n int) {
	seqs := make([]uint64, 0, len(entries))
	for _, e := range entries {
		seqs = append(seqs, e.Seq)
	}
	// The n-th newest sequence number is the cut.
	slices.Sort(seqs)
	cut := seqs[len(seqs)-n]
	for k, e := range entries {
		if e.Seq < cut {
			delete(entries, k)
		}
	}
}

// cacheKey chains a step's key from its parent's and the step's inputs.
// Fields are length-prefixed so that no two inputs encode alike.
func cacheKey(parent string, fields ...string) string {
	h := sha256.New()
	for _, f := range append([]string{parent}, fields...) {
		fmt.Fprintf(h, "%d:%s", len(f), f)
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}
