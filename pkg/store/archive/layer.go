package archive

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"github.com/berthsh/berth/pkg/errdefs"
	"github.com/berthsh/berth/pkg/store"
)

// storedLayer describes a layer blob written into the store.
type storedLayer struct {
	Digest    v1.Hash
	Size      int64
	DiffID    v1.Hash
	MediaType types.MediaType
}

// ingestLayer copies the layer r into the store, in one pass over r.
// Uncompressed content is compressed with pgzip (berth's fixed settings)
// when compress is set and stored as is otherwise; gzip- and
// zstd-compressed content is stored as is. Either way the uncompressed
// content must be a tar, and its digest is returned as the diff ID. A
// non-zero want (and wantSize >= 0) is checked against the stored blob.
// The caller must hold a store lease.
func ingestLayer(ctx context.Context, s *store.Store, r io.Reader, compress bool, want v1.Hash, wantSize int64, progress func(int64)) (storedLayer, error) {
	src := &sourceReader{r: &countReader{r: r, fn: progress}}
	br := bufio.NewReaderSize(ctxReader{ctx, src}, 1<<20)
	c, err := sniff(br)
	if err != nil {
		return storedLayer{}, classify(ctx, err, src, nil)
	}
	w, err := s.NewWriter(ctx)
	if err != nil {
		return storedLayer{}, err
	}
	defer w.Close()
	dst := &sinkWriter{w: w}
	diff := sha256.New()
	var mt types.MediaType
	switch c {
	case compNone:
		if compress {
			zw, err := newGzipWriter(dst)
			if err != nil {
				return storedLayer{}, err
			}
			err = readTar(io.TeeReader(br, io.MultiWriter(diff, zw)))
			if cerr := zw.Close(); err == nil {
				err = cerr
			}
			mt = types.OCILayer
			if err != nil {
				return storedLayer{}, classify(ctx, err, src, dst)
			}
		} else {
			if err := readTar(io.TeeReader(br, io.MultiWriter(diff, dst))); err != nil {
				return storedLayer{}, classify(ctx, err, src, dst)
			}
			mt = types.OCIUncompressedLayer
		}
	case compGzip, compZstd:
		tee := io.TeeReader(br, dst)
		var dr io.Reader
		if c == compGzip {
			zr, err := gzip.NewReader(tee)
			if err != nil {
				return storedLayer{}, classify(ctx, fmt.Errorf("gzip: %w", err), src, dst)
			}
			defer zr.Close()
			dr, mt = zr, types.OCILayer
		} else {
			zr, err := zstd.NewReader(tee, zstd.WithDecoderConcurrency(1))
			if err != nil {
				return storedLayer{}, classify(ctx, fmt.Errorf("zstd: %w", err), src, dst)
			}
			defer zr.Close()
			dr, mt = zr, types.OCILayerZStd
		}
		err := readTar(io.TeeReader(dr, diff))
		if err == nil {
			_, err = io.Copy(io.Discard, tee) // bytes after the compressed stream
		}
		if err != nil {
			return storedLayer{}, classify(ctx, err, src, dst)
		}
	default:
		return storedLayer{}, fmt.Errorf("%s-compressed layers are not supported: %w", c, errdefs.ErrNotImplemented)
	}
	info, err := w.Commit(ctx, want, wantSize)
	if err != nil {
		return storedLayer{}, err
	}
	return storedLayer{
		Digest:    info.Digest,
		Size:      info.Size,
		DiffID:    v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(diff.Sum(nil))},
		MediaType: mt,
	}, nil
}
