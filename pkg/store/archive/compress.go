package archive

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/bzip2"
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"

	"github.com/klauspost/compress/zstd"
	"github.com/klauspost/pgzip"

	"github.com/berthsh/berth/pkg/errdefs"
)

// compression is what a stream's magic bytes say it is.
type compression int

const (
	compNone compression = iota
	compGzip
	compZstd
	compBzip2
	compXz
)

func (c compression) String() string {
	return [...]string{"uncompressed", "gzip", "zstd", "bzip2", "xz"}[c]
}

// sniff peeks at the first bytes of br.
func sniff(br *bufio.Reader) (compression, error) {
	head, err := br.Peek(6)
	if err != nil && !errors.Is(err, io.EOF) {
		return compNone, err
	}
	switch {
	case bytes.HasPrefix(head, []byte{0x1f, 0x8b}):
		return compGzip, nil
	case bytes.HasPrefix(head, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		return compZstd, nil
	case bytes.HasPrefix(head, []byte("BZh")):
		return compBzip2, nil
	case bytes.HasPrefix(head, []byte{0xfd, '7', 'z', 'X', 'Z', 0x00}):
		return compXz, nil
	}
	return compNone, nil
}

// decompress returns the uncompressed content of br, compressed as c.
// Close releases the decompressor (not br).
func decompress(br *bufio.Reader, c compression) (io.ReadCloser, error) {
	switch c {
	case compNone:
		return io.NopCloser(br), nil
	case compGzip:
		zr, err := pgzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("gzip: %v: %w", err, errdefs.ErrDataCorrupt)
		}
		return zr, nil
	case compZstd:
		zr, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1))
		if err != nil {
			return nil, fmt.Errorf("zstd: %v: %w", err, errdefs.ErrDataCorrupt)
		}
		return zstdCloser{zr}, nil
	case compBzip2:
		return io.NopCloser(bzip2.NewReader(br)), nil
	}
	return nil, fmt.Errorf("%s-compressed input is not supported; decompress it first (xz -d): %w", c, errdefs.ErrNotImplemented)
}

type zstdCloser struct{ d *zstd.Decoder }

func (z zstdCloser) Read(p []byte) (int, error) { return z.d.Read(p) }
func (z zstdCloser) Close() error               { z.d.Close(); return nil }

// gzipBlockSize is pgzip's block size for layers berth writes. pgzip's
// output depends on the block size and level but not on how many blocks
// are compressed in parallel, so fixing both makes layer digests the same
// on every machine whatever its core count. Changing either changes the
// digest of every layer Load and Import write.
const (
	gzipBlockSize = 1 << 20
	gzipLevel     = pgzip.DefaultCompression
)

// newGzipWriter compresses into w with berth's fixed settings, using all
// cores.
func newGzipWriter(w io.Writer) (*pgzip.Writer, error) {
	return newGzipWriterBlocks(w, runtime.GOMAXPROCS(0))
}

func newGzipWriterBlocks(w io.Writer, blocks int) (*pgzip.Writer, error) {
	zw, err := pgzip.NewWriterLevel(w, gzipLevel)
	if err != nil {
		return nil, err
	}
	if blocks < 1 {
		blocks = 1
	}
	if err := zw.SetConcurrency(gzipBlockSize, blocks); err != nil {
		return nil, err
	}
	return zw, nil
}

// ctxReader fails reads once ctx is done, so long copies stop promptly.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// countReader calls fn with the running byte count at most every 256 KiB.
type countReader struct {
	r    io.Reader
	n    int64
	last int64
	fn   func(int64)
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	if c.fn != nil && c.n-c.last >= 256<<10 {
		c.last = c.n
		c.fn(c.n)
	}
	return n, err
}

// errNotTar marks input that is not a tar stream.
var errNotTar = errors.New("not a tar archive")

// readTar reads the tar stream r to its end, and then whatever follows
// the end-of-archive marker, so that everything r holds is consumed (and
// hashed by any tee in front of it). It fails if r is not a valid tar.
func readTar(r io.Reader) error {
	tr := tar.NewReader(r)
	for {
		_, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return tarError(err)
		}
		if _, err := io.Copy(io.Discard, tr); err != nil {
			return tarError(err)
		}
	}
	_, err := io.Copy(io.Discard, r)
	return err
}

// tarError classifies an error from archive/tar: a malformed header means
// the input is no tar; a short read means it is truncated. Other errors
// (I/O, a cancelled context, a decompressor's complaint) pass through.
func tarError(err error) error {
	switch {
	case errors.Is(err, tar.ErrHeader), errors.Is(err, tar.ErrFieldTooLong), errors.Is(err, tar.ErrInsecurePath):
		return fmt.Errorf("%w: %v", errNotTar, err)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Errorf("truncated tar: %w", errdefs.ErrDataCorrupt)
	}
	return err
}

// sourceReader remembers the first error of the reader it wraps, so that a
// failure further down a pipeline (decompressor, tar parser) can be told
// apart from a failure to read the input. pgzip reads from another
// goroutine, hence the lock.
type sourceReader struct {
	r   io.Reader
	mu  sync.Mutex
	err error
}

func (s *sourceReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if err != nil && !errors.Is(err, io.EOF) {
		s.mu.Lock()
		if s.err == nil {
			s.err = err
		}
		s.mu.Unlock()
	}
	return n, err
}

func (s *sourceReader) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// sinkWriter remembers the first error of the writer it wraps.
type sinkWriter struct {
	w   io.Writer
	mu  sync.Mutex
	err error
}

func (s *sinkWriter) Write(p []byte) (int, error) {
	n, err := s.w.Write(p)
	if err != nil {
		s.mu.Lock()
		if s.err == nil {
			s.err = err
		}
		s.mu.Unlock()
	}
	return n, err
}

func (s *sinkWriter) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// classify turns an error from a read-decode-write pipeline into what the
// caller should see: a cancelled context or a failure to read the input or
// to write the output as it is; anything else happened while decoding the
// content, so the content is bad (kind: errdefs.ErrDataCorrupt, or
// errdefs.ErrInvalidArgument when it is not a tar at all).
func classify(ctx context.Context, err error, src *sourceReader, dst *sinkWriter) error {
	if err == nil {
		return nil
	}
	if cerr := ctx.Err(); cerr != nil {
		return cerr
	}
	if src != nil {
		if serr := src.Err(); serr != nil {
			return serr
		}
	}
	if dst != nil {
		if derr := dst.Err(); derr != nil {
			return derr
		}
	}
	switch {
	case errors.Is(err, errNotTar):
		return fmt.Errorf("%w: %w", err, errdefs.ErrInvalidArgument)
	case errors.Is(err, errdefs.ErrDataCorrupt), errors.Is(err, errdefs.ErrInvalidArgument),
		errors.Is(err, errdefs.ErrNotImplemented):
		return err
	}
	return fmt.Errorf("%v: %w", err, errdefs.ErrDataCorrupt)
}
