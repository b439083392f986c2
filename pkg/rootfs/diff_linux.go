package rootfs

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berthsh/berth/pkg/errdefs"
)

// Diff writes the overlay upper directory upper to w as an uncompressed
// OCI layer tar: overlay whiteouts (character devices 0:0) become
// ".wh.NAME" entries and opaque directories (trusted.overlay.opaque or
// user.overlay.opaque set to "y") get a "DIR/.wh..wh..opq" entry. Only
// upper is read; lower layers are not scanned.
//
// The output is deterministic: entries are written depth first with the
// names of each directory sorted, times are whole seconds (clamped to
// opts.SourceDateEpoch when set), and access/change times and user and
// group names are left out. Diff does not close w.
func Diff(ctx context.Context, upper string, w io.Writer, opts DiffOptions) error {
	if err := writeTree(ctx, upper, w, opts, true); err != nil {
		return fmt.Errorf("diff %s: %w", upper, err)
	}
	return nil
}

// DirToTar writes the plain directory dir to w as an uncompressed layer
// tar, with the same format and determinism as Diff but without whiteout
// translation (a character device 0:0 is written as a device). Use it for
// COPY layers and for exporting a flattened root file system. DirToTar
// does not close w.
func DirToTar(ctx context.Context, dir string, w io.Writer, opts DiffOptions) error {
	if err := writeTree(ctx, dir, w, opts, false); err != nil {
		return fmt.Errorf("tar %s: %w", dir, err)
	}
	return nil
}

type inodeKey struct{ dev, ino uint64 }

type treeWriter struct {
	ctx     context.Context
	root    string
	tw      *tar.Writer
	opts    DiffOptions
	overlay bool
	links   map[inodeKey]string
	buf     []byte
}

func writeTree(ctx context.Context, root string, w io.Writer, opts DiffOptions, overlay bool) error {
	fi, err := os.Lstat(root)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return fmt.Errorf("not a directory: %w", errdefs.ErrInvalidArgument)
	}
	t := &treeWriter{
		ctx:     ctx,
		root:    root,
		tw:      tar.NewWriter(w),
		opts:    opts,
		overlay: overlay,
		links:   make(map[inodeKey]string),
		buf:     make([]byte, 256<<10),
	}
	if err := t.walk(""); err != nil {
		return err
	}
	return t.tw.Close()
}

type child struct {
	name string
	st   unix.Stat_t
}

// walk writes the entries of directory rel ("" for the root). The
// directory's own header has already been written by its parent.
func (t *treeWriter) walk(rel string) error {
	abs := filepath.Join(t.root, rel)
	d, err := os.OpenFile(abs, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	names, err := d.Readdirnames(-1)
	if err != nil {
		_ = d.Close()
		return err
	}
	dfd := int(d.Fd())
	sort.Strings(names)
	var whiteouts, entries []child
	for _, n := range names {
		c := child{name: n}
		if err := unix.Fstatat(dfd, n, &c.st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			_ = d.Close()
			return &os.PathError{Op: "lstat", Path: path.Join(rel, n), Err: err}
		}
		if t.overlay && isWhiteoutDev(&c.st) {
			whiteouts = append(whiteouts, c)
			continue
		}
		if strings.HasPrefix(n, whiteoutPrefix) {
			_ = d.Close()
			return fmt.Errorf("%s: file name uses the reserved whiteout prefix %q: %w", path.Join(rel, n), whiteoutPrefix, errdefs.ErrInvalidArgument)
		}
		entries = append(entries, c)
	}
	opaque := t.overlay && rel != "" && isOpaque(dfd)
	_ = d.Close()

	// OCI: whiteouts should come before their siblings.
	if opaque {
		var st unix.Stat_t
		if err := unix.Lstat(abs, &st); err != nil {
			return err
		}
		if err := t.writeMarker(path.Join(rel, opaqueMarker), &st); err != nil {
			return err
		}
	}
	for _, c := range whiteouts {
		if err := t.writeMarker(path.Join(rel, whiteoutPrefix+c.name), &c.st); err != nil {
			return err
		}
	}
	for _, c := range entries {
		if err := t.ctx.Err(); err != nil {
			return err
		}
		crel := path.Join(rel, c.name)
		if err := t.writeEntry(crel, &c.st); err != nil {
			return err
		}
		if c.st.Mode&unix.S_IFMT == unix.S_IFDIR {
			if err := t.walk(crel); err != nil {
				return err
			}
		}
	}
	return nil
}

func isWhiteoutDev(st *unix.Stat_t) bool {
	return st.Mode&unix.S_IFMT == unix.S_IFCHR && st.Rdev == 0
}

func isOpaque(dfd int) bool {
	buf := make([]byte, 8)
	for _, attr := range []string{"trusted.overlay.opaque", "user.overlay.opaque"} {
		n, err := unix.Fgetxattr(dfd, attr, buf)
		if err == nil && string(buf[:n]) == "y" {
			return true
		}
	}
	return false
}

func (t *treeWriter) mtime(ts unix.Timespec) time.Time {
	m := time.Unix(ts.Unix())
	if e := t.opts.SourceDateEpoch; e != nil && m.After(*e) {
		m = *e
	}
	return m.Truncate(time.Second)
}

// writeMarker writes an empty whiteout or opaque marker, owned by root,
// timed like the thing it stands for.
func (t *treeWriter) writeMarker(name string, st *unix.Stat_t) error {
	return t.tw.WriteHeader(&tar.Header{
		Typeflag: tar.TypeReg,
		Name:     name,
		Mode:     0o600,
		ModTime:  t.mtime(st.Mtim),
		Format:   tar.FormatPAX,
	})
}

func (t *treeWriter) writeEntry(rel string, st *unix.Stat_t) error {
	abs := filepath.Join(t.root, rel)
	hdr := &tar.Header{
		Name:    rel,
		Mode:    int64(st.Mode & 0o7777),
		Uid:     int(st.Uid),
		Gid:     int(st.Gid),
		ModTime: t.mtime(st.Mtim),
		Format:  tar.FormatPAX,
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		hdr.Typeflag = tar.TypeDir
		hdr.Name += "/"
	case unix.S_IFREG:
		hdr.Typeflag = tar.TypeReg
		if st.Nlink > 1 {
			key := inodeKey{dev: st.Dev, ino: st.Ino}
			if first, ok := t.links[key]; ok {
				hdr.Typeflag = tar.TypeLink
				hdr.Linkname = first
			} else {
				t.links[key] = rel
			}
		}
	case unix.S_IFLNK:
		target, err := os.Readlink(abs)
		if err != nil {
			return err
		}
		hdr.Typeflag = tar.TypeSymlink
		hdr.Linkname = target
	case unix.S_IFCHR, unix.S_IFBLK:
		hdr.Typeflag = tar.TypeChar
		if st.Mode&unix.S_IFMT == unix.S_IFBLK {
			hdr.Typeflag = tar.TypeBlock
		}
		hdr.Devmajor = int64(unix.Major(uint64(st.Rdev)))
		hdr.Devminor = int64(unix.Minor(uint64(st.Rdev)))
	case unix.S_IFIFO:
		hdr.Typeflag = tar.TypeFifo
	default:
		return nil // sockets are not archived
	}
	if hdr.Typeflag != tar.TypeLink {
		x, err := readXattrs(abs)
		if err != nil {
			return fmt.Errorf("%s: %w", rel, err)
		}
		for k, v := range x {
			if hdr.PAXRecords == nil {
				hdr.PAXRecords = make(map[string]string, len(x))
			}
			hdr.PAXRecords[paxXattr+k] = v
		}
	}
	if hdr.Typeflag != tar.TypeReg {
		return t.tw.WriteHeader(hdr)
	}

	f, err := os.OpenFile(abs, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	var fst unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &fst); err != nil {
		return err
	}
	if fst.Ino != st.Ino || fst.Dev != st.Dev {
		return fmt.Errorf("%s: replaced while being archived", rel)
	}
	hdr.Size = fst.Size
	if err := t.tw.WriteHeader(hdr); err != nil {
		return err
	}
	n, err := io.CopyBuffer(struct{ io.Writer }{t.tw}, io.LimitReader(f, hdr.Size), t.buf)
	if err != nil {
		return fmt.Errorf("%s: %w", rel, err)
	}
	if n != hdr.Size {
		return fmt.Errorf("%s: file shrank from %d to %d bytes while being archived", rel, hdr.Size, n)
	}
	return nil
}

// readXattrs returns the extended attributes of p (not following a
// symlink), without those that overlayfs owns and without SELinux labels,
// which belong to the host that made them.
func readXattrs(p string) (map[string]string, error) {
	names, err := listXattr(p)
	if err != nil || len(names) == 0 {
		return nil, err
	}
	out := make(map[string]string, len(names))
	for _, name := range names {
		if isOverlayXattr(name) || name == "security.selinux" {
			continue
		}
		val, err := getXattr(p, name)
		if errors.Is(err, unix.ENODATA) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read xattr %s: %w", name, err)
		}
		out[name] = string(val)
	}
	return out, nil
}

func listXattr(p string) ([]string, error) {
	for {
		size, err := unix.Llistxattr(p, nil)
		if err != nil {
			if errors.Is(err, unix.ENOTSUP) || errors.Is(err, unix.EOPNOTSUPP) {
				return nil, nil
			}
			return nil, fmt.Errorf("list xattrs: %w", err)
		}
		if size == 0 {
			return nil, nil
		}
		buf := make([]byte, size)
		n, err := unix.Llistxattr(p, buf)
		if errors.Is(err, unix.ERANGE) {
			continue // grew in between
		}
		if err != nil {
			return nil, fmt.Errorf("list xattrs: %w", err)
		}
		var names []string
		for _, b := range bytes.Split(buf[:n], []byte{0}) {
			if len(b) > 0 {
				names = append(names, string(b))
			}
		}
		return names, nil
	}
}

func getXattr(p, name string) ([]byte, error) {
	for {
		size, err := unix.Lgetxattr(p, name, nil)
		if err != nil {
			return nil, err
		}
		buf := make([]byte, size)
		n, err := unix.Lgetxattr(p, name, buf)
		if errors.Is(err, unix.ERANGE) {
			continue
		}
		if err != nil {
			return nil, err
		}
		return buf[:n], nil
	}
}
