package archive

import (
	"archive/tar"
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/berthsh/berth/pkg/errdefs"
	"github.com/berthsh/berth/pkg/store"
)

const (
	// maxEntries bounds the index of an archive's entries; image archives
	// hold a few files per layer.
	maxEntries = 1 << 20
	// maxLinkDepth bounds how many in-archive links are followed.
	maxLinkDepth = 8
	// maxJSONSize bounds manifests, indexes and configs read into memory.
	maxJSONSize = 64 << 20
)

// tarEntry is where one archive member's data lies.
type tarEntry struct {
	name     string
	typeflag byte
	linkname string
	offset   int64
	size     int64
}

// tarIndex maps the (normalised) names of an archive's members to their
// data, read through an io.ReaderAt; nothing is ever extracted.
type tarIndex struct {
	ra      io.ReaderAt
	size    int64
	entries map[string]*tarEntry
}

// openArchive makes r readable at random offsets: a plain tar in a regular
// file is used in place; anything else (a pipe, compressed input) is
// spooled, uncompressed, to a temporary file in the store's ingest
// directory. The caller must hold a store lease (so GC leaves the spool
// alone) and call cleanup when done.
func openArchive(ctx context.Context, s *store.Store, r io.Reader) (ra io.ReaderAt, size int64, cleanup func(), err error) {
	nop := func() {}
	if f, ok := r.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() {
			pos, err := f.Seek(0, io.SeekCurrent)
			if err == nil {
				sec := io.NewSectionReader(f, pos, fi.Size()-pos)
				c, err := sniff(bufio.NewReader(io.NewSectionReader(f, pos, fi.Size()-pos)))
				if err != nil {
					return nil, 0, nop, fmt.Errorf("read archive: %w", err)
				}
				if c == compNone {
					return sec, sec.Size(), nop, nil
				}
				r = sec
			}
		}
	}
	src := &sourceReader{r: r}
	br := bufio.NewReaderSize(ctxReader{ctx, src}, 1<<20)
	c, err := sniff(br)
	if err != nil {
		return nil, 0, nop, fmt.Errorf("read archive: %w", err)
	}
	dr, err := decompress(br, c)
	if err != nil {
		return nil, 0, nop, fmt.Errorf("read archive: %w", err)
	}
	defer dr.Close()
	f, err := os.CreateTemp(filepath.Join(s.Dir(), "ingest"), "load-*.tar")
	if err != nil {
		return nil, 0, nop, fmt.Errorf("spool archive: %w", err)
	}
	cleanup = func() {
		f.Close()
		os.Remove(f.Name())
	}
	dst := &sinkWriter{w: f}
	n, err := io.Copy(dst, ctxReader{ctx, dr})
	if err != nil {
		cleanup()
		err = classify(ctx, err, src, dst)
		return nil, 0, nop, fmt.Errorf("read archive (%s): %w", c, err)
	}
	return f, n, cleanup, nil
}

// indexTar reads every member header of the tar in ra once and records
// where each member's data is.
func indexTar(ctx context.Context, ra io.ReaderAt, size int64) (*tarIndex, error) {
	if size == 0 {
		return nil, fmt.Errorf("archive is empty: %w", errdefs.ErrInvalidArgument)
	}
	sec := io.NewSectionReader(ra, 0, size)
	tr := tar.NewReader(sec)
	x := &tarIndex{ra: ra, size: size, entries: map[string]*tarEntry{}}
	for n := 0; ; n++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			if n == 0 {
				return nil, fmt.Errorf("input is not a tar archive (%v): %w", err, errdefs.ErrInvalidArgument)
			}
			return nil, fmt.Errorf("read archive after %d entries: %v: %w", n, err, errdefs.ErrDataCorrupt)
		}
		if n >= maxEntries {
			return nil, fmt.Errorf("archive has more than %d entries: %w", maxEntries, errdefs.ErrInvalidArgument)
		}
		off, err := sec.Seek(0, io.SeekCurrent)
		if err != nil {
			return nil, err
		}
		if hdr.Size < 0 || hdr.Size > size-off {
			return nil, fmt.Errorf("archive entry %q claims %d bytes but only %d remain in the archive: %w",
				hdr.Name, hdr.Size, size-off, errdefs.ErrDataCorrupt)
		}
		name, ok := normalizeName(hdr.Name)
		if !ok || name == "" {
			continue // unreachable by any reference: ignored
		}
		typ := hdr.Typeflag
		if typ == tar.TypeRegA {
			typ = tar.TypeReg
		}
		if isSparse(hdr) {
			typ = tar.TypeGNUSparse // data is not laid out contiguously
		}
		x.entries[name] = &tarEntry{name: hdr.Name, typeflag: typ, linkname: hdr.Linkname, offset: off, size: hdr.Size}
	}
	return x, nil
}

func isSparse(hdr *tar.Header) bool {
	if hdr.Typeflag == tar.TypeGNUSparse {
		return true
	}
	for k := range hdr.PAXRecords {
		if strings.HasPrefix(k, "GNU.sparse.") {
			return true
		}
	}
	return false
}

// normalizeName turns a member name into the key it is looked up by:
// without leading "/" or "./", cleaned. ok is false for names that leave
// the archive's root ("../x").
func normalizeName(name string) (string, bool) {
	name = path.Clean(strings.TrimLeft(name, "/"))
	switch {
	case name == ".":
		return "", true
	case name == ".." || strings.HasPrefix(name, "../"):
		return "", false
	}
	return name, true
}

// cleanRef checks a path named by a manifest inside the archive: it must be
// relative and stay inside the archive.
func cleanRef(ref string) (string, error) {
	if ref == "" || path.IsAbs(ref) {
		return "", fmt.Errorf("path %q is not inside the archive: %w", ref, errdefs.ErrInvalidArgument)
	}
	c := path.Clean(ref)
	if c == ".." || strings.HasPrefix(c, "../") || c == "." {
		return "", fmt.Errorf("path %q is not inside the archive: %w", ref, errdefs.ErrInvalidArgument)
	}
	return c, nil
}

// has reports whether a regular entry (or link to one) named ref exists.
func (x *tarIndex) has(ref string) bool {
	_, err := x.lookup(ref)
	return err == nil
}

// lookup finds the regular member that ref names, following symbolic and
// hard links within the archive (never outside it) up to maxLinkDepth.
func (x *tarIndex) lookup(ref string) (*tarEntry, error) {
	p, err := cleanRef(ref)
	if err != nil {
		return nil, err
	}
	for depth := 0; ; depth++ {
		if depth > maxLinkDepth {
			return nil, fmt.Errorf("archive entry %q: more than %d levels of links: %w", ref, maxLinkDepth, errdefs.ErrInvalidArgument)
		}
		e := x.entries[p]
		if e == nil {
			if p != ref {
				return nil, fmt.Errorf("archive entry %q links to %q, which is not in the archive: %w", ref, p, errdefs.ErrInvalidArgument)
			}
			return nil, fmt.Errorf("archive entry %q is missing: %w", ref, errdefs.ErrInvalidArgument)
		}
		switch e.typeflag {
		case tar.TypeReg:
			return e, nil
		case tar.TypeSymlink:
			if path.IsAbs(e.linkname) {
				return nil, fmt.Errorf("archive entry %q is a symlink to %q, outside the archive: %w", e.name, e.linkname, errdefs.ErrInvalidArgument)
			}
			next := path.Join(path.Dir(p), e.linkname)
			if next == ".." || strings.HasPrefix(next, "../") {
				return nil, fmt.Errorf("archive entry %q is a symlink to %q, outside the archive: %w", e.name, e.linkname, errdefs.ErrInvalidArgument)
			}
			p = next
		case tar.TypeLink:
			next, ok := normalizeName(e.linkname)
			if !ok || next == "" {
				return nil, fmt.Errorf("archive entry %q is a hard link to %q, outside the archive: %w", e.name, e.linkname, errdefs.ErrInvalidArgument)
			}
			p = next
		default:
			return nil, fmt.Errorf("archive entry %q is not a regular file (type %q): %w", e.name, e.typeflag, errdefs.ErrInvalidArgument)
		}
	}
}

// open returns a reader of the data of the member ref names.
func (x *tarIndex) open(ref string) (*io.SectionReader, error) {
	e, err := x.lookup(ref)
	if err != nil {
		return nil, err
	}
	return io.NewSectionReader(x.ra, e.offset, e.size), nil
}

// readJSON decodes the member ref into v.
func (x *tarIndex) readJSON(ref string, v any) ([]byte, error) {
	sec, err := x.open(ref)
	if err != nil {
		return nil, err
	}
	if sec.Size() > maxJSONSize {
		return nil, fmt.Errorf("archive entry %q is %d bytes, more than the %d allowed for JSON: %w", ref, sec.Size(), maxJSONSize, errdefs.ErrInvalidArgument)
	}
	b, err := io.ReadAll(sec)
	if err != nil {
		return nil, fmt.Errorf("read archive entry %q: %w", ref, err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return nil, fmt.Errorf("archive entry %q: malformed JSON: %v: %w", ref, err, errdefs.ErrInvalidArgument)
	}
	return b, nil
}
