package buildctx

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"strconv"
)

// fileKey identifies a file's content for the hash cache.
type fileKey struct {
	dev, ino uint64
	size     int64
	mtime    int64
	rel      string
}

// Checksum returns the cache key of entries, "sha256:<hex>": a digest of
// each entry's destination path, type, mode, owner, link target, size and
// content, never of modification times. It is the same on every machine
// for the same files and flags.
func Checksum(ctx context.Context, entries []Entry) (string, error) {
	h := sha256.New()
	for i := range entries {
		if err := ctx.Err(); err != nil {
			return "", err
		}
		e := &entries[i]
		content := ""
		switch {
		case e.inline:
			sum := sha256.Sum256(e.data)
			content = hex.EncodeToString(sum[:])
		case e.Type == tar.TypeReg:
			d, err := e.ctx.fileHash(ctx, e)
			if err != nil {
				return "", err
			}
			content = d
		}
		// Fields are length-prefixed so that no two entry lists encode
		// alike.
		for _, f := range []string{
			e.Path, string(e.Type), strconv.FormatInt(e.Mode, 8),
			strconv.Itoa(e.UID), strconv.Itoa(e.GID), e.Linkname,
			strconv.FormatInt(e.Size, 10), strconv.FormatBool(e.Archive),
			strconv.FormatBool(e.ownerSet), strconv.FormatBool(e.modeSet),
			strconv.FormatInt(e.devMajor, 10), strconv.FormatInt(e.devMinor, 10),
			content,
		} {
			fmt.Fprintf(h, "%d:%s", len(f), f)
		}
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), nil
}

// fileHash returns the sha256 of the file of e, from the cache when its
// inode, size and modification time are unchanged.
func (c *Context) fileHash(ctx context.Context, e *Entry) (string, error) {
	f, err := c.root.Open(e.rel)
	if err != nil {
		return "", fmt.Errorf("%s: %w", e.rel, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "", fmt.Errorf("%s: %w", e.rel, err)
	}
	if !fi.Mode().IsRegular() {
		return "", fmt.Errorf("%s: no longer a regular file", e.rel)
	}
	dev, ino, _, _, _ := statOf(fi)
	key := fileKey{dev: dev, ino: ino, size: fi.Size(), mtime: fi.ModTime().UnixNano(), rel: e.rel}
	c.mu.Lock()
	d, ok := c.hashes[key]
	c.mu.Unlock()
	if ok {
		return d, nil
	}
	h := sha256.New()
	if _, err := io.Copy(h, &ctxReader{ctx: ctx, r: f}); err != nil {
		return "", fmt.Errorf("%s: %w", e.rel, err)
	}
	d = hex.EncodeToString(h.Sum(nil))
	c.mu.Lock()
	c.hashes[key] = d
	c.hashReads++
	c.mu.Unlock()
	return d, nil
}

// ctxReader stops reading when ctx is cancelled.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (r *ctxReader) Read(p []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	return r.r.Read(p)
}
