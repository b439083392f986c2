package buildctx

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
	"time"

	"github.com/berthsh/berth/pkg/errdefs"
	"github.com/berthsh/berth/pkg/rootfs"
)

// LayerOptions configures WriteLayer.
type LayerOptions struct {
	// SourceDateEpoch is the time written for every entry (zero: the Unix
	// epoch, 1970-01-01T00:00:00Z). With PreserveTimes it is the latest
	// time written instead.
	SourceDateEpoch time.Time
	// PreserveTimes keeps source modification times, as Docker does,
	// instead of the fixed time. Layers then differ between checkouts.
	PreserveTimes bool
}

func (o LayerOptions) mtime(t time.Time) time.Time {
	epoch := o.SourceDateEpoch
	if epoch.IsZero() {
		epoch = time.Unix(0, 0)
	}
	if !o.PreserveTimes {
		return epoch.UTC().Truncate(time.Second)
	}
	if t.IsZero() || (!o.SourceDateEpoch.IsZero() && t.After(o.SourceDateEpoch)) {
		t = epoch
	}
	return t.UTC().Truncate(time.Second)
}

// WriteLayer writes entries, as returned by Plan, to w as an uncompressed
// tar layer, reading file contents from their sources. Archive entries are
// extracted in place. The output depends only on the entries, the file
// contents and opts.
func WriteLayer(ctx context.Context, entries []Entry, w io.Writer, opts LayerOptions) error {
	lw := &layerWriter{ctx: ctx, tw: tar.NewWriter(w), opts: opts, dirs: map[string]bool{}, buf: make([]byte, 128<<10)}
	for i := range entries {
		if err := ctx.Err(); err != nil {
			return err
		}
		e := &entries[i]
		var err error
		if e.Archive {
			err = lw.extract(e)
		} else {
			err = lw.write(e)
		}
		if err != nil {
			return err
		}
	}
	if err := lw.tw.Close(); err != nil {
		return fmt.Errorf("write layer: %w", err)
	}
	return nil
}

type layerWriter struct {
	ctx  context.Context
	tw   *tar.Writer
	opts LayerOptions
	dirs map[string]bool // directories written
	buf  []byte
}

func (lw *layerWriter) header(e *Entry) *tar.Header {
	hdr := &tar.Header{
		Typeflag: e.Type,
		Name:     e.Path,
		Linkname: e.Linkname,
		Mode:     e.Mode,
		Uid:      e.UID,
		Gid:      e.GID,
		ModTime:  lw.opts.mtime(e.ModTime),
		Devmajor: e.devMajor,
		Devminor: e.devMinor,
		Format:   tar.FormatPAX,
	}
	if e.Type == tar.TypeDir {
		hdr.Name += "/"
		lw.dirs[e.Path] = true
	}
	return hdr
}

func (lw *layerWriter) write(e *Entry) error {
	hdr := lw.header(e)
	if e.Type != tar.TypeReg {
		if err := lw.tw.WriteHeader(hdr); err != nil {
			return fmt.Errorf("write layer: %s: %w", e.Path, err)
		}
		return nil
	}
	if e.inline {
		hdr.Size = int64(len(e.data))
		if err := lw.tw.WriteHeader(hdr); err != nil {
			return fmt.Errorf("write layer: %s: %w", e.Path, err)
		}
		if _, err := lw.tw.Write(e.data); err != nil {
			return fmt.Errorf("write layer: %s: %w", e.Path, err)
		}
		return nil
	}
	f, err := e.ctx.root.Open(e.rel)
	if err != nil {
		return fmt.Errorf("copy %s: %w", e.rel, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("copy %s: %w", e.rel, err)
	}
	dev, ino, _, _, _ := statOf(fi)
	if !fi.Mode().IsRegular() || (e.ino != 0 && (dev != e.dev || ino != e.ino)) {
		return fmt.Errorf("copy %s: replaced while building; build again: %w", e.rel, errdefs.ErrConflict)
	}
	hdr.Size = fi.Size()
	if err := lw.tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("write layer: %s: %w", e.Path, err)
	}
	n, err := io.CopyBuffer(struct{ io.Writer }{lw.tw}, &ctxReader{ctx: lw.ctx, r: io.LimitReader(f, hdr.Size)}, lw.buf)
	if err != nil {
		return fmt.Errorf("copy %s: %w", e.rel, err)
	}
	if n != hdr.Size {
		return fmt.Errorf("copy %s: file shrank from %d to %d bytes while building; build again: %w", e.rel, hdr.Size, n, errdefs.ErrConflict)
	}
	return nil
}

// extract writes the entries of the tar archive of e under e.Path.
func (lw *layerWriter) extract(e *Entry) error {
	f, err := e.ctx.root.Open(e.rel)
	if err != nil {
		return fmt.Errorf("ADD %s: %w", e.rel, err)
	}
	defer f.Close()
	d, err := rootfs.Decompress(f)
	if err != nil {
		return fmt.Errorf("ADD %s: %w", e.rel, err)
	}
	defer d.Close()
	tr := tar.NewReader(&ctxReader{ctx: lw.ctx, r: d})
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("ADD %s: read archive: %w: %w", e.rel, errdefs.ErrDataCorrupt, err)
		}
		name, err := archivePath(e, h.Name)
		if err != nil {
			return err
		}
		if name == "" {
			continue // the archive's root directory
		}
		if strings.HasPrefix(path.Base(name), ".wh.") {
			return fmt.Errorf("ADD %s: archive entry %q: names starting with .wh. are reserved for layer whiteouts: %w", e.rel, h.Name, errdefs.ErrInvalidArgument)
		}
		hdr := &tar.Header{
			Typeflag: h.Typeflag,
			Name:     name,
			Mode:     h.Mode & 0o7777,
			Uid:      h.Uid,
			Gid:      h.Gid,
			ModTime:  lw.opts.mtime(h.ModTime),
			Devmajor: h.Devmajor,
			Devminor: h.Devminor,
			Format:   tar.FormatPAX,
		}
		if e.ownerSet {
			hdr.Uid, hdr.Gid = e.UID, e.GID
		}
		switch h.Typeflag {
		case tar.TypeReg, tar.TypeRegA:
			hdr.Typeflag, hdr.Size = tar.TypeReg, h.Size
		case tar.TypeDir:
			hdr.Name += "/"
		case tar.TypeSymlink:
			hdr.Linkname = h.Linkname
		case tar.TypeLink:
			if hdr.Linkname, err = archivePath(e, h.Linkname); err != nil || hdr.Linkname == "" {
				return fmt.Errorf("ADD %s: hard link %q to %q points outside the destination: %w", e.rel, h.Name, h.Linkname, errdefs.ErrInvalidArgument)
			}
		case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		default:
			continue
		}
		if e.modeSet && hdr.Typeflag != tar.TypeSymlink {
			hdr.Mode = e.Mode
		}
		if err := lw.parents(e, path.Dir(name)); err != nil {
			return err
		}
		if hdr.Typeflag == tar.TypeDir {
			lw.dirs[name] = true
		}
		if err := lw.tw.WriteHeader(hdr); err != nil {
			return fmt.Errorf("write layer: %s: %w", name, err)
		}
		if hdr.Typeflag == tar.TypeReg {
			if _, err := io.CopyBuffer(struct{ io.Writer }{lw.tw}, tr, lw.buf); err != nil {
				return fmt.Errorf("ADD %s: %s: %w", e.rel, h.Name, err)
			}
		}
	}
}

// archivePath places an archive member name under e.Path. Absolute names
// are taken relative to the destination; names that climb out of it are
// refused. "" is the destination itself.
func archivePath(e *Entry, name string) (string, error) {
	clean := path.Clean(strings.TrimLeft(name, "/"))
	if clean == ".." || strings.HasPrefix(clean, "../") {
		return "", fmt.Errorf("ADD %s: archive entry %q points outside the destination: %w", e.rel, name, errdefs.ErrInvalidArgument)
	}
	if clean == "." {
		return "", nil
	}
	return strings.TrimPrefix(path.Join(e.Path, clean), "/"), nil
}

// parents writes the missing directories between an archive's destination
// and dir.
func (lw *layerWriter) parents(e *Entry, dir string) error {
	if dir == "." || dir == "" || lw.dirs[dir] || dir == e.Path {
		return nil
	}
	if err := lw.parents(e, path.Dir(dir)); err != nil {
		return err
	}
	hdr := &tar.Header{Typeflag: tar.TypeDir, Name: dir + "/", Mode: 0o755, ModTime: lw.opts.mtime(time.Time{}), Format: tar.FormatPAX}
	if e.ownerSet {
		hdr.Uid, hdr.Gid = e.UID, e.GID
	}
	lw.dirs[dir] = true
	if err := lw.tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("write layer: %s: %w", dir, err)
	}
	return nil
}
