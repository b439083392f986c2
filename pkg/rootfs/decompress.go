package rootfs

import (
	"bufio"
	"bytes"
	"compress/bzip2"
	"errors"
	"fmt"
	"io"
	"sync/atomic"

	"github.com/berthsh/berth/pkg/errdefs"
	"github.com/klauspost/compress/zstd"
	"github.com/klauspost/pgzip"
)

var (
	magicGzip  = []byte{0x1f, 0x8b}
	magicZstd  = []byte{0x28, 0xb5, 0x2f, 0xfd}
	magicBzip2 = []byte{'B', 'Z', 'h'}
	magicXz    = []byte{0xfd, '7', 'z', 'X', 'Z', 0x00}
)

// Decompress returns a reader of the uncompressed contents of r, detecting
// gzip, zstd and bzip2 by their magic bytes; anything else (a plain tar) is
// passed through unchanged. The caller must Close the result; closing does
// not close r. xz is recognised and refused with errdefs.ErrNotImplemented.
//
// Errors produced by the decompressor itself (bad checksum, truncated
// stream) are wrapped with errdefs.ErrDataCorrupt; errors from r are passed
// through unchanged.
func Decompress(r io.Reader) (io.ReadCloser, error) {
	src := &sourceReader{r: r}
	br := bufio.NewReaderSize(src, 64<<10)
	head, err := br.Peek(6)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("decompress: read header: %w", err)
	}
	switch {
	case bytes.HasPrefix(head, magicGzip):
		zr, err := pgzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("decompress: gzip: %w: %w", errdefs.ErrDataCorrupt, err)
		}
		return &corruptReader{rc: zr, src: src}, nil
	case bytes.HasPrefix(head, magicZstd):
		zr, err := zstd.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("decompress: zstd: %w: %w", errdefs.ErrDataCorrupt, err)
		}
		return &corruptReader{rc: zstdReadCloser{zr}, src: src}, nil
	case bytes.HasPrefix(head, magicBzip2):
		return &corruptReader{rc: io.NopCloser(bzip2.NewReader(br)), src: src}, nil
	case bytes.HasPrefix(head, magicXz):
		return nil, fmt.Errorf("decompress: xz-compressed layers are not supported: %w", errdefs.ErrNotImplemented)
	default:
		return io.NopCloser(br), nil
	}
}

type zstdReadCloser struct{ d *zstd.Decoder }

func (z zstdReadCloser) Read(p []byte) (int, error) { return z.d.Read(p) }

func (z zstdReadCloser) Close() error {
	z.d.Close()
	return nil
}

// sourceReader remembers whether the underlying reader failed, so that
// corruptReader can tell I/O errors from corrupt compressed data. pgzip
// reads from another goroutine, hence the atomic.
type sourceReader struct {
	r      io.Reader
	failed atomic.Bool
}

func (s *sourceReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if err != nil && !errors.Is(err, io.EOF) {
		s.failed.Store(true)
	}
	return n, err
}

type corruptReader struct {
	rc  io.ReadCloser
	src *sourceReader
}

func (c *corruptReader) Read(p []byte) (int, error) {
	n, err := c.rc.Read(p)
	if err != nil && !errors.Is(err, io.EOF) && !c.src.failed.Load() && !errors.Is(err, errdefs.ErrDataCorrupt) {
		err = fmt.Errorf("decompress: %w: %w", errdefs.ErrDataCorrupt, err)
	}
	return n, err
}

func (c *corruptReader) Close() error { return c.rc.Close() }
