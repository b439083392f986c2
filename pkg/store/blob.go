package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/berthsh/berth/internal/flock"
	"github.com/berthsh/berth/pkg/errdefs"
)

// BlobInfo describes a stored blob.
type BlobInfo struct {
	Digest v1.Hash
	Size   int64
}

// BlobInfo returns the size of the blob with digest d, or an error wrapping
// errdefs.ErrNotFound.
func (s *Store) BlobInfo(ctx context.Context, d v1.Hash) (BlobInfo, error) {
	if err := checkDigest(d); err != nil {
		return BlobInfo{}, err
	}
	fi, err := os.Stat(s.blobPath(d))
	if errors.Is(err, fs.ErrNotExist) {
		return BlobInfo{}, fmt.Errorf("blob %s: %w", d, errdefs.ErrNotFound)
	} else if err != nil {
		return BlobInfo{}, fmt.Errorf("blob %s: %w", d, err)
	}
	return BlobInfo{Digest: d, Size: fi.Size()}, nil
}

// HasBlob reports whether the blob with digest d is stored.
func (s *Store) HasBlob(ctx context.Context, d v1.Hash) bool {
	_, err := s.BlobInfo(ctx, d)
	return err == nil
}

// OpenBlob opens the blob with digest d. The reader verifies the content as
// it is read: a read that reaches the end of damaged content returns an
// error wrapping errdefs.ErrDataCorrupt instead of io.EOF.
func (s *Store) OpenBlob(ctx context.Context, d v1.Hash) (io.ReadCloser, error) {
	if err := checkDigest(d); err != nil {
		return nil, err
	}
	f, err := os.Open(s.blobPath(d))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("blob %s: %w", d, errdefs.ErrNotFound)
	} else if err != nil {
		return nil, fmt.Errorf("blob %s: %w", d, err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("blob %s: %w", d, err)
	}
	return &verifyReader{r: f, c: f, want: d, size: fi.Size(), h: sha256.New()}, nil
}

// ReadBlob reads a whole (small) blob, verified.
func (s *Store) ReadBlob(ctx context.Context, d v1.Hash) ([]byte, error) {
	rc, err := s.OpenBlob(ctx, d)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(rc)
}

// verifyReader hashes what it reads and checks digest and size at EOF.
type verifyReader struct {
	r    io.Reader
	c    io.Closer
	want v1.Hash
	size int64 // -1: unknown
	n    int64
	h    hash.Hash
}

func (v *verifyReader) Read(p []byte) (int, error) {
	n, err := v.r.Read(p)
	v.h.Write(p[:n])
	v.n += int64(n)
	if v.size >= 0 && v.n > v.size {
		return n, fmt.Errorf("blob %s: more than the expected %d bytes: %w", v.want, v.size, errdefs.ErrDataCorrupt)
	}
	if errors.Is(err, io.EOF) {
		if v.size >= 0 && v.n != v.size {
			return n, fmt.Errorf("blob %s: got %d bytes, want %d: %w", v.want, v.n, v.size, errdefs.ErrDataCorrupt)
		}
		if got := hex.EncodeToString(v.h.Sum(nil)); got != v.want.Hex {
			return n, fmt.Errorf("blob %s: content has digest sha256:%s: %w", v.want, got, errdefs.ErrDataCorrupt)
		}
	}
	return n, err
}

func (v *verifyReader) Close() error { return v.c.Close() }

func checkDigest(d v1.Hash) error {
	if d.Algorithm != "sha256" || len(d.Hex) != 64 {
		return fmt.Errorf("unsupported digest %q: %w", d.String(), errdefs.ErrInvalidArgument)
	}
	for _, c := range d.Hex {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return fmt.Errorf("malformed digest %q: %w", d.String(), errdefs.ErrInvalidArgument)
		}
	}
	return nil
}

// Writer writes one blob into the store's ingest area. Commit verifies it
// and moves it into place; Close without Commit discards it.
type Writer struct {
	s    *Store
	f    *os.File
	h    hash.Hash
	n    int64
	done bool
}

// NewWriter starts a new blob. The caller must hold a write lease (see
// WriteImage or Lease) so that GC cannot remove the blob before it is
// referenced; a blob nothing references is removed by the next GC.
func (s *Store) NewWriter(ctx context.Context) (*Writer, error) {
	f, err := os.CreateTemp(s.path(ingestDir), "blob-*")
	if err != nil {
		return nil, fmt.Errorf("start blob: %w", classifyFSError(err))
	}
	return &Writer{s: s, f: f, h: sha256.New()}, nil
}

// Write appends p to the blob.
func (w *Writer) Write(p []byte) (int, error) {
	n, err := w.f.Write(p)
	w.h.Write(p[:n])
	w.n += int64(n)
	return n, err
}

// Digest is the digest of what has been written so far.
func (w *Writer) Digest() v1.Hash {
	return v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(w.h.Sum(nil))}
}

// Size is the number of bytes written so far.
func (w *Writer) Size() int64 { return w.n }

// Commit checks the content against want (digest and size; a zero want
// digest or a negative size skips that check), syncs it and renames it into
// blobs/. It returns the blob's digest and size.
func (w *Writer) Commit(ctx context.Context, want v1.Hash, size int64) (BlobInfo, error) {
	if w.done {
		return BlobInfo{}, errors.New("blob writer already closed")
	}
	got := w.Digest()
	if size >= 0 && w.n != size {
		w.Close()
		return BlobInfo{}, fmt.Errorf("blob %s: got %d bytes, want %d: %w", want, w.n, size, errdefs.ErrDataCorrupt)
	}
	if want != (v1.Hash{}) && got != want {
		w.Close()
		return BlobInfo{}, fmt.Errorf("blob %s: content has digest %s: %w", want, got, errdefs.ErrDataCorrupt)
	}
	if err := ctx.Err(); err != nil {
		w.Close()
		return BlobInfo{}, err
	}
	err := w.f.Sync()
	if cerr := w.f.Close(); err == nil {
		err = cerr
	}
	w.done = true
	if err == nil {
		err = os.Chmod(w.f.Name(), 0o444)
	}
	if err == nil {
		err = os.Rename(w.f.Name(), w.s.blobPath(got))
	}
	if err != nil {
		os.Remove(w.f.Name())
		return BlobInfo{}, fmt.Errorf("commit blob %s: %w", got, classifyFSError(err))
	}
	return BlobInfo{Digest: got, Size: w.n}, nil
}

// Close discards an uncommitted blob.
func (w *Writer) Close() error {
	if w.done {
		return nil
	}
	w.done = true
	w.f.Close()
	return os.Remove(w.f.Name())
}

// WriteBlob stores the content of r, which must have digest want and size
// bytes (size < 0: unknown). A blob already present is not written again
// (r is not read). The caller must hold a Lease.
func (s *Store) WriteBlob(ctx context.Context, r io.Reader, want v1.Hash, size int64) (BlobInfo, error) {
	if err := checkDigest(want); err != nil {
		return BlobInfo{}, err
	}
	// A blob already present is trusted when its size matches; a truncated
	// one (found by Verify) is written again, so a new pull repairs it.
	if info, err := s.BlobInfo(ctx, want); err == nil && (size < 0 || info.Size == size) {
		return info, nil
	}
	w, err := s.NewWriter(ctx)
	if err != nil {
		return BlobInfo{}, err
	}
	defer w.Close()
	if _, err := copyCtx(ctx, w, r); err != nil {
		return BlobInfo{}, fmt.Errorf("write blob %s: %w", want, classifyFSError(err))
	}
	return w.Commit(ctx, want, size)
}

// copyCtx is io.Copy that stops when ctx is done.
func copyCtx(ctx context.Context, dst io.Writer, src io.Reader) (int64, error) {
	buf := make([]byte, 256<<10)
	var n int64
	for {
		if err := ctx.Err(); err != nil {
			return n, err
		}
		m, rerr := src.Read(buf)
		if m > 0 {
			w, werr := dst.Write(buf[:m])
			n += int64(w)
			if werr != nil {
				return n, werr
			}
		}
		if errors.Is(rerr, io.EOF) {
			return n, nil
		}
		if rerr != nil {
			return n, rerr
		}
	}
}

// Lease is held by a writer of new content from its first blob until the
// content is referenced from index.json. While any lease is held, GC waits.
type Lease struct{ l *flock.Lock }

// Lease takes a write lease on the store.
func (s *Store) Lease(ctx context.Context) (*Lease, error) {
	l, err := flock.Acquire(ctx, s.path(gcLock), false)
	if err != nil {
		return nil, err
	}
	return &Lease{l: l}, nil
}

// Release ends the lease.
func (l *Lease) Release() {
	if l != nil {
		l.l.Unlock()
	}
}
