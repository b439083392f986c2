package store

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/berthsh/berth/internal/atomicfile"
	"github.com/berthsh/berth/internal/flock"
	"github.com/berthsh/berth/pkg/errdefs"
)

const (
	layoutFile  = "oci-layout"
	indexFile   = "index.json"
	blobsDir    = "blobs"
	ingestDir   = "ingest"
	indexLock   = "index.lock"
	gcLock      = "gc.lock"
	layoutValue = `{"imageLayoutVersion":"1.0.0"}`
)

// Store is an image store in one directory. It is safe for concurrent use
// by goroutines and by other processes opening the same directory.
type Store struct {
	dir string
}

// Open opens the store in dir, creating an empty OCI layout if dir does
// not hold one yet. It removes what killed writers left in ingest/ when no
// other process is writing.
func Open(ctx context.Context, dir string) (*Store, error) {
	s := &Store{dir: dir}
	for _, d := range []string{dir, filepath.Join(dir, blobsDir, "sha256"), filepath.Join(dir, ingestDir)} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("open store %s: %w", dir, classifyFSError(err))
		}
	}
	if _, err := os.Stat(filepath.Join(dir, layoutFile)); errors.Is(err, fs.ErrNotExist) {
		if err := atomicfile.WriteFile(filepath.Join(dir, layoutFile), []byte(layoutValue), 0o644); err != nil {
			return nil, fmt.Errorf("open store %s: %w", dir, classifyFSError(err))
		}
	} else if err != nil {
		return nil, fmt.Errorf("open store %s: %w", dir, classifyFSError(err))
	}
	if _, err := os.Stat(filepath.Join(dir, indexFile)); errors.Is(err, fs.ErrNotExist) {
		l, err := flock.Acquire(ctx, s.path(indexLock), true)
		if err != nil {
			return nil, err
		}
		if _, err := os.Stat(filepath.Join(dir, indexFile)); errors.Is(err, fs.ErrNotExist) {
			err = s.writeIndex(&v1.IndexManifest{SchemaVersion: 2, MediaType: indexMediaType})
		}
		l.Unlock()
		if err != nil {
			return nil, fmt.Errorf("open store %s: %w", dir, classifyFSError(err))
		}
	}
	s.cleanIngest()
	return s, nil
}

// Dir is the store's directory.
func (s *Store) Dir() string { return s.dir }

func (s *Store) path(elem ...string) string {
	return filepath.Join(append([]string{s.dir}, elem...)...)
}

func (s *Store) blobPath(h v1.Hash) string {
	return filepath.Join(s.dir, blobsDir, h.Algorithm, h.Hex)
}

// cleanIngest removes abandoned partial writes if no writer holds gc.lock.
func (s *Store) cleanIngest() {
	l, err := flock.TryAcquire(s.path(gcLock), true)
	if err != nil || l == nil {
		return
	}
	defer l.Unlock()
	entries, _ := os.ReadDir(s.path(ingestDir))
	for _, e := range entries {
		os.RemoveAll(s.path(ingestDir, e.Name()))
	}
}

// classifyFSError marks permission and space errors so the CLI can say
// what to do about them.
func classifyFSError(err error) error {
	if errors.Is(err, fs.ErrPermission) {
		return fmt.Errorf("%w: %w", err, errdefs.ErrPermission)
	}
	return err
}
