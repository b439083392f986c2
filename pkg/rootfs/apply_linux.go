package rootfs

import (
	"archive/tar"
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

	securejoin "github.com/cyphar/filepath-securejoin"
	pathrs "github.com/cyphar/filepath-securejoin/pathrs-lite"
	"golang.org/x/sys/unix"

	"github.com/berthsh/berth/pkg/errdefs"
)

const (
	whiteoutPrefix = ".wh."
	whiteoutMeta   = ".wh..wh."
	opaqueMarker   = ".wh..wh..opq"

	// maxDirCache bounds the number of directory handles Apply keeps open.
	maxDirCache = 128
)

// Apply unpacks one uncompressed layer tar stream from r into dir, which
// must exist. See the package documentation for the safety guarantees and
// for the overlay (default) and flatten (WithFlatten) modes.
//
// Apply is not atomic: on error dir holds part of the layer. To unpack a
// layer into a directory of its own, use Unpack, which removes partial
// output.
func Apply(ctx context.Context, dir string, r io.Reader, opts ...ApplyOption) (ApplyStats, error) {
	stats, err := apply(ctx, dir, r, newApplyConfig(opts))
	if err != nil {
		return stats, fmt.Errorf("apply layer to %s: %w", dir, err)
	}
	return stats, nil
}

// Unpack unpacks a layer into dir, which must not exist yet, in overlay
// style unless WithFlatten is given. It extracts into a temporary sibling
// directory, flushes the file system and renames the result into place, so
// that dir either holds the complete layer or does not exist.
func Unpack(ctx context.Context, dir string, r io.Reader, opts ...ApplyOption) (ApplyStats, error) {
	dir = filepath.Clean(dir)
	if _, err := os.Lstat(dir); err == nil {
		return ApplyStats{}, fmt.Errorf("unpack layer to %s: %w", dir, errdefs.ErrAlreadyExists)
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), "."+filepath.Base(dir)+".unpack-")
	if err != nil {
		return ApplyStats{}, fmt.Errorf("unpack layer to %s: %w", dir, err)
	}
	stats, err := unpackInto(ctx, tmp, dir, r, newApplyConfig(opts))
	if err != nil {
		_ = RemoveAll(tmp)
		return stats, fmt.Errorf("unpack layer to %s: %w", dir, err)
	}
	return stats, nil
}

func unpackInto(ctx context.Context, tmp, dir string, r io.Reader, cfg applyConfig) (ApplyStats, error) {
	// MkdirTemp creates 0700; the layer root is the container's "/" when
	// the layer has no "./" entry of its own.
	if err := os.Chmod(tmp, 0o755); err != nil {
		return ApplyStats{}, err
	}
	stats, err := apply(ctx, tmp, r, cfg)
	if err != nil {
		return stats, err
	}
	if err := syncDir(tmp, true); err != nil {
		return stats, err
	}
	if err := os.Rename(tmp, dir); err != nil {
		if errors.Is(err, unix.EEXIST) || errors.Is(err, unix.ENOTEMPTY) {
			return stats, fmt.Errorf("%w: %w", errdefs.ErrAlreadyExists, err)
		}
		return stats, err
	}
	return stats, syncDir(filepath.Dir(dir), false)
}

// syncDir flushes the file system holding dir (syncfs) or just dir itself.
func syncDir(dir string, wholeFS bool) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	if wholeFS {
		return unix.Syncfs(int(f.Fd()))
	}
	return f.Sync()
}

// RemoveAll removes path and everything below it without following
// symbolic links. Unlike os.RemoveAll it first makes read-only directories
// writable, so that trees unpacked without root privileges (where a layer
// may contain mode 0555 directories) can be removed. A missing path is not
// an error.
func RemoveAll(p string) error {
	p = filepath.Clean(p)
	parent, err := os.Open(filepath.Dir(p))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("remove %s: %w", p, err)
	}
	defer parent.Close()
	if err := removeAllAt(int(parent.Fd()), filepath.Base(p)); err != nil {
		return fmt.Errorf("remove %s: %w", p, err)
	}
	return nil
}

// removeAllAt removes name in the directory dirfd, recursively, never
// following symbolic links.
func removeAllAt(dirfd int, name string) error {
	err := unix.Unlinkat(dirfd, name, 0)
	if err == nil || errors.Is(err, unix.ENOENT) {
		return nil
	}
	if !errors.Is(err, unix.EISDIR) && !errors.Is(err, unix.EPERM) {
		return &os.PathError{Op: "unlinkat", Path: name, Err: err}
	}
	fd, oerr := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if oerr != nil {
		// Not a directory after all: report the unlink failure.
		return &os.PathError{Op: "unlinkat", Path: name, Err: err}
	}
	d := os.NewFile(uintptr(fd), name)
	defer d.Close()
	_ = unix.Fchmod(fd, 0o700) // so that its entries can be removed without root
	names, err := d.Readdirnames(-1)
	if err != nil {
		return err
	}
	for _, n := range names {
		if err := removeAllAt(fd, n); err != nil {
			return fmt.Errorf("%s/%w", name, err)
		}
	}
	if err := unix.Unlinkat(dirfd, name, unix.AT_REMOVEDIR); err != nil && !errors.Is(err, unix.ENOENT) {
		return &os.PathError{Op: "rmdir", Path: name, Err: err}
	}
	return nil
}

type dirMeta struct {
	rel  string
	mode uint32
	ts   []unix.Timespec
}

type applier struct {
	cfg      applyConfig
	root     *os.File
	rootPath string
	// dirs caches handles of parent directories, keyed by cleaned path
	// relative to root. stale is set when a directory or symlink is
	// removed, since cached handles may then no longer match their path;
	// the cache is dropped before the next entry.
	dirs    map[string]*os.File
	stale   bool
	written map[string]struct{}
	dirMeta []dirMeta
	dirIdx  map[string]int // index in dirMeta by path
	stats   ApplyStats
	buf     []byte
	opaque  string
}

func apply(ctx context.Context, dir string, r io.Reader, cfg applyConfig) (ApplyStats, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return ApplyStats{}, err
	}
	root, err := os.OpenFile(abs, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return ApplyStats{}, err
	}
	a := &applier{
		cfg:      cfg,
		root:     root,
		rootPath: abs,
		dirs:     make(map[string]*os.File),
		written:  make(map[string]struct{}),
		dirIdx:   make(map[string]int),
		buf:      make([]byte, 256<<10),
		opaque:   "trusted.overlay.opaque",
	}
	if cfg.userXattr {
		a.opaque = "user.overlay.opaque"
	}
	defer a.close()
	err = a.run(ctx, r)
	return a.stats, err
}

func (a *applier) close() {
	a.dropCache()
	_ = a.root.Close()
}

func (a *applier) dropCache() {
	for _, f := range a.dirs {
		_ = f.Close()
	}
	clear(a.dirs)
	a.stale = false
}

// ctxReader fails reads once ctx is done, so that cancellation also stops
// the copy of a large file.
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

func (a *applier) run(ctx context.Context, r io.Reader) error {
	tr := tar.NewReader(ctxReader{ctx, r})
	var last *tar.Header
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			// Drain what follows the end-of-archive marker, so that a
			// caller verifying the digest of the stream sees all of it.
			if _, err := io.Copy(io.Discard, ctxReader{ctx, r}); err != nil {
				return a.readErr(ctx, "read past the end of the archive", err)
			}
			break
		}
		if err != nil && !(errors.Is(err, tar.ErrInsecurePath) && hdr != nil) {
			// Names are checked by cleanName; anything else is fatal.
			what := "read first tar header"
			if last != nil {
				what = fmt.Sprintf("read tar header after entry %q", shorten(last.Name))
			}
			return a.readErr(ctx, what, err)
		}
		if a.stale {
			a.dropCache()
		}
		a.stats.Entries++
		if err := a.entry(ctx, hdr, tr); err != nil {
			return fmt.Errorf("entry %q: %w", shorten(hdr.Name), err)
		}
		last = hdr
	}
	if a.stale {
		a.dropCache()
	}
	return a.finish()
}

// shorten keeps error messages readable for absurdly long names.
func shorten(name string) string {
	if len(name) <= 256 {
		return name
	}
	return name[:160] + "…" + name[len(name)-80:]
}

// readErr classifies an error from the tar stream: truncation and
// malformed headers are corrupt data.
func (a *applier) readErr(ctx context.Context, what string, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, tar.ErrHeader) {
		return fmt.Errorf("%s: truncated or malformed archive: %w: %w", what, errdefs.ErrDataCorrupt, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// cleanName turns a tar entry name into a clean path relative to the
// layer root. Absolute names are taken relative to the root; names that
// climb out of it with ".." are refused.
func cleanName(name string) (string, error) {
	if name == "" {
		return "", fmt.Errorf("empty path: %w", errdefs.ErrInvalidArgument)
	}
	if strings.IndexByte(name, 0) >= 0 {
		return "", fmt.Errorf("path %q contains a NUL byte: %w", name, errdefs.ErrInvalidArgument)
	}
	p := path.Clean(strings.TrimLeft(name, "/"))
	if p == ".." || strings.HasPrefix(p, "../") {
		return "", fmt.Errorf("path %q escapes the layer root: %w", shorten(name), errdefs.ErrInvalidArgument)
	}
	return p, nil
}

// dir returns a handle on the directory rel (relative to the root),
// resolving symbolic links as if the root were "/" so that resolution can
// never leave it. With create, missing directories are created (mode 0755).
// The handle belongs to the cache; callers must not close it.
func (a *applier) dir(rel string, create bool) (*os.File, error) {
	if rel == "." {
		return a.root, nil
	}
	if f, ok := a.dirs[rel]; ok {
		return f, nil
	}
	var f *os.File
	if create {
		h, err := pathrs.MkdirAllHandle(a.root, rel, 0o755)
		if errors.Is(err, unix.ENOTDIR) {
			// A dangling symlink on the way (MkdirAllHandle will not create
			// through one): resolve it lexically inside the root, as the
			// container would see it, and create the target. MkdirAllHandle
			// still resolves the result safely.
			if resolved, jerr := securejoin.SecureJoin(a.rootPath, rel); jerr == nil {
				if r, rerr := filepath.Rel(a.rootPath, resolved); rerr == nil && r != rel && r != "." && !strings.HasPrefix(r, "..") {
					h, err = pathrs.MkdirAllHandle(a.root, r, 0o755)
				}
			}
		}
		if errors.Is(err, unix.ENAMETOOLONG) {
			return nil, fmt.Errorf("create parent directory: path or name too long: %w", unix.ENAMETOOLONG)
		}
		if err != nil {
			return nil, fmt.Errorf("create parent directory %q: %w", shorten(rel), err)
		}
		f = h
	} else {
		h, err := pathrs.OpenatInRoot(a.root, rel)
		if err != nil {
			return nil, err
		}
		// OpenatInRoot gives an O_PATH handle; reopen the directory itself
		// for reading (fails with ENOTDIR for anything else).
		fd, err := unix.Openat(int(h.Fd()), ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		_ = h.Close()
		if err != nil {
			return nil, &os.PathError{Op: "open", Path: rel, Err: err}
		}
		f = os.NewFile(uintptr(fd), rel)
	}
	if len(a.dirs) >= maxDirCache {
		a.dropCache()
	}
	a.dirs[rel] = f
	return f, nil
}

func (a *applier) entry(ctx context.Context, hdr *tar.Header, tr *tar.Reader) error {
	switch hdr.Typeflag {
	case tar.TypeXGlobalHeader, tar.TypeXHeader, tar.TypeGNULongName, tar.TypeGNULongLink:
		return nil // metadata records; archive/tar applies them itself
	}
	rel, err := cleanName(hdr.Name)
	if err != nil {
		return err
	}
	if rel == "." {
		return a.rootEntry(hdr)
	}
	dirRel, base := path.Split(rel)
	dirRel = path.Clean(dirRel)
	if strings.HasPrefix(base, whiteoutPrefix) {
		return a.whiteout(dirRel, base)
	}
	if hdr.Uid < 0 || hdr.Gid < 0 || int64(hdr.Uid) > 1<<32-2 || int64(hdr.Gid) > 1<<32-2 {
		return fmt.Errorf("invalid owner %d:%d: %w", hdr.Uid, hdr.Gid, errdefs.ErrInvalidArgument)
	}

	parent, err := a.dir(dirRel, true)
	if err != nil {
		return err
	}
	pfd := int(parent.Fd())
	isDir := hdr.Typeflag == tar.TypeDir
	exists, err := a.prepare(pfd, base, isDir)
	if err != nil {
		return err
	}
	mode := uint32(hdr.Mode) & 0o7777

	switch hdr.Typeflag {
	case tar.TypeDir:
		if !exists {
			if err := unix.Mkdirat(pfd, base, 0o755); err != nil {
				return &os.PathError{Op: "mkdir", Path: rel, Err: err}
			}
		}
		fd, err := unix.Openat(pfd, base, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return &os.PathError{Op: "open", Path: rel, Err: err}
		}
		f := os.NewFile(uintptr(fd), rel)
		err = a.setMeta(pfd, base, f, hdr, false)
		_ = f.Close()
		if err != nil {
			return err
		}
		// Mode and times are set at the end: children change the mtime, and
		// a read-only directory would stop an unprivileged caller from
		// writing them.
		a.setDirMeta(dirMeta{rel: rel, mode: mode, ts: timespecs(hdr)})

	case tar.TypeReg, tar.TypeRegA, tar.TypeGNUSparse:
		if err := a.writeFile(ctx, pfd, base, hdr, tr); err != nil {
			return err
		}

	case tar.TypeSymlink:
		if hdr.Linkname == "" {
			return fmt.Errorf("symlink with empty target: %w", errdefs.ErrInvalidArgument)
		}
		// The target is stored as is: it is interpreted later, inside the
		// container. Resolution during extraction is always contained.
		if err := unix.Symlinkat(hdr.Linkname, pfd, base); err != nil {
			return &os.PathError{Op: "symlink", Path: rel, Err: err}
		}
		if err := a.setMeta(pfd, base, nil, hdr, true); err != nil {
			return err
		}

	case tar.TypeLink:
		if err := a.hardlink(pfd, base, rel, hdr.Linkname); err != nil {
			return err
		}

	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		typ := uint32(unix.S_IFIFO)
		switch hdr.Typeflag {
		case tar.TypeChar:
			typ = unix.S_IFCHR
		case tar.TypeBlock:
			typ = unix.S_IFBLK
		}
		if hdr.Devmajor < 0 || hdr.Devminor < 0 || hdr.Devmajor > 1<<32-1 || hdr.Devminor > 1<<32-1 {
			return fmt.Errorf("invalid device number %d:%d: %w", hdr.Devmajor, hdr.Devminor, errdefs.ErrInvalidArgument)
		}
		dev := unix.Mkdev(uint32(hdr.Devmajor), uint32(hdr.Devminor))
		if err := unix.Mknodat(pfd, base, typ|0o600, int(dev)); err != nil {
			if typ != unix.S_IFIFO && errors.Is(err, unix.EPERM) {
				// No CAP_MKNOD (not root, or in a user namespace): the
				// runtime provides /dev itself, so skipping is harmless.
				a.stats.SkippedDevices++
				return nil
			}
			return &os.PathError{Op: "mknod", Path: rel, Err: err}
		}
		if err := a.setMeta(pfd, base, nil, hdr, false); err != nil {
			return err
		}

	default:
		return fmt.Errorf("unsupported tar entry type %q: %w", hdr.Typeflag, errdefs.ErrInvalidArgument)
	}
	a.written[rel] = struct{}{}
	return nil
}

// prepare makes room for a new entry called name in the directory pfd:
// anything already there is removed, except a directory when the new entry
// is a directory too (then exists is true and the directory is reused).
func (a *applier) prepare(pfd int, name string, isDir bool) (exists bool, err error) {
	var st unix.Stat_t
	if err := unix.Fstatat(pfd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return false, nil
		}
		return false, &os.PathError{Op: "lstat", Path: name, Err: err}
	}
	if isDir && st.Mode&unix.S_IFMT == unix.S_IFDIR {
		return true, nil
	}
	return false, a.remove(pfd, name, &st)
}

func (a *applier) remove(pfd int, name string, st *unix.Stat_t) error {
	if t := st.Mode & unix.S_IFMT; t == unix.S_IFDIR || t == unix.S_IFLNK {
		a.stale = true
	}
	return removeAllAt(pfd, name)
}

func (a *applier) writeFile(ctx context.Context, pfd int, name string, hdr *tar.Header, tr *tar.Reader) error {
	fd, err := unix.Openat(pfd, name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return &os.PathError{Op: "create", Path: name, Err: err}
	}
	f := os.NewFile(uintptr(fd), name)
	// Hide os.File's ReadFrom so the copy uses a.buf.
	n, err := io.CopyBuffer(struct{ io.Writer }{f}, io.LimitReader(tr, hdr.Size), a.buf)
	if err == nil && n != hdr.Size {
		err = io.ErrUnexpectedEOF
	}
	if err == nil {
		err = a.setMeta(pfd, name, f, hdr, false)
	}
	if cerr := f.Close(); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		_ = unix.Unlinkat(pfd, name, 0)
		if n != hdr.Size {
			return a.readErr(ctx, fmt.Sprintf("read content (%d of %d bytes)", n, hdr.Size), err)
		}
		return err
	}
	a.stats.Files++
	a.stats.Bytes += n
	return nil
}

func (a *applier) hardlink(pfd int, name, rel, linkname string) error {
	target, err := cleanName(linkname)
	if err != nil {
		return fmt.Errorf("hardlink target: %w", err)
	}
	if target == "." || target == rel {
		return fmt.Errorf("invalid hardlink target %q: %w", linkname, errdefs.ErrInvalidArgument)
	}
	tdir, tbase := path.Split(target)
	tparent, err := a.dir(path.Clean(tdir), false)
	if err == nil {
		// Flags 0: a symlink target is linked itself, never followed.
		err = unix.Linkat(int(tparent.Fd()), tbase, pfd, name, 0)
	}
	switch {
	case err == nil:
		return nil
	case errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR):
		return fmt.Errorf("hardlink target %q is not in this layer: %w", linkname, errdefs.ErrInvalidArgument)
	case errors.Is(err, unix.EPERM):
		return fmt.Errorf("hardlink target %q is a directory: %w", linkname, errdefs.ErrInvalidArgument)
	default:
		return fmt.Errorf("hardlink to %q: %w", linkname, err)
	}
}

func (a *applier) rootEntry(hdr *tar.Header) error {
	if hdr.Typeflag != tar.TypeDir {
		return fmt.Errorf("layer root must be a directory, got type %q: %w", hdr.Typeflag, errdefs.ErrInvalidArgument)
	}
	if err := a.setMeta(int(a.root.Fd()), ".", a.root, hdr, false); err != nil {
		return err
	}
	a.setDirMeta(dirMeta{rel: ".", mode: uint32(hdr.Mode) & 0o7777, ts: timespecs(hdr)})
	return nil
}

// whiteout handles ".wh.NAME" and ".wh..wh..opq" entries in dirRel.
func (a *applier) whiteout(dirRel, base string) error {
	if base == opaqueMarker {
		a.stats.Whiteouts++
		if a.cfg.flatten {
			d, err := a.dir(dirRel, false)
			if errors.Is(err, unix.ENOENT) {
				return nil
			} else if err != nil {
				return err
			}
			return a.clearUnwritten(d, dirRel)
		}
		d, err := a.dir(dirRel, true)
		if err != nil {
			return err
		}
		if err := unix.Fsetxattr(int(d.Fd()), a.opaque, []byte("y"), 0); err != nil {
			return a.privErr(fmt.Sprintf("mark %q opaque (%s)", dirRel, a.opaque), err)
		}
		return nil
	}
	if strings.HasPrefix(base, whiteoutMeta) {
		return nil // other AUFS metadata (.wh..wh.plnk and friends): ignored
	}
	name := strings.TrimPrefix(base, whiteoutPrefix)
	if name == "" || name == "." || name == ".." {
		return fmt.Errorf("invalid whiteout name %q: %w", base, errdefs.ErrInvalidArgument)
	}
	a.stats.Whiteouts++
	target := path.Join(dirRel, name)
	if _, ok := a.written[target]; ok {
		return nil // a whiteout only hides lower layers, never this one
	}
	if a.cfg.flatten {
		d, err := a.dir(dirRel, false)
		if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) {
			return nil
		} else if err != nil {
			return err
		}
		var st unix.Stat_t
		if err := unix.Fstatat(int(d.Fd()), name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			if errors.Is(err, unix.ENOENT) {
				return nil
			}
			return &os.PathError{Op: "lstat", Path: target, Err: err}
		}
		return a.remove(int(d.Fd()), name, &st)
	}
	d, err := a.dir(dirRel, true)
	if err != nil {
		return err
	}
	if _, err := a.prepare(int(d.Fd()), name, false); err != nil {
		return err
	}
	if err := unix.Mknodat(int(d.Fd()), name, unix.S_IFCHR, 0); err != nil {
		return a.privErr(fmt.Sprintf("create overlay whiteout %q", target), err)
	}
	return nil
}

func (a *applier) privErr(what string, err error) error {
	if errors.Is(err, unix.EPERM) {
		return fmt.Errorf("%s: %w: %w (needs root, or kernel ≥5.8 and WithUserXattr for rootless use)", what, errdefs.ErrPermission, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// clearUnwritten implements an opaque marker when flattening: everything in
// the directory that this layer did not write is removed.
func (a *applier) clearUnwritten(d *os.File, dirRel string) error {
	fd, err := unix.Openat(int(d.Fd()), ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: dirRel, Err: err}
	}
	f := os.NewFile(uintptr(fd), dirRel)
	defer f.Close()
	names, err := f.Readdirnames(-1)
	if err != nil {
		return err
	}
	for _, n := range names {
		child := path.Join(dirRel, n)
		var st unix.Stat_t
		if err := unix.Fstatat(fd, n, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return &os.PathError{Op: "lstat", Path: child, Err: err}
		}
		if _, ok := a.written[child]; !ok {
			if err := a.remove(fd, n, &st); err != nil {
				return err
			}
			continue
		}
		if st.Mode&unix.S_IFMT == unix.S_IFDIR {
			cfd, err := unix.Openat(fd, n, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
			if err != nil {
				return &os.PathError{Op: "open", Path: child, Err: err}
			}
			cf := os.NewFile(uintptr(cfd), child)
			err = a.clearUnwritten(cf, child)
			_ = cf.Close()
			if err != nil {
				return err
			}
		}
	}
	return nil
}

// setMeta applies owner, extended attributes, mode (not for directories
// and symlinks) and times (not for directories) to name in pfd. f, when
// not nil, is an open handle on the same file. Ownership comes first:
// chown clears set-user-ID and set-group-ID bits and file capabilities.
func (a *applier) setMeta(pfd int, name string, f *os.File, hdr *tar.Header, symlink bool) error {
	if a.cfg.chown {
		if err := unix.Fchownat(pfd, name, hdr.Uid, hdr.Gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return &os.PathError{Op: "chown", Path: name, Err: err}
		}
	}
	if err := a.setXattrs(pfd, name, f, hdr); err != nil {
		return err
	}
	if hdr.Typeflag == tar.TypeDir || symlink {
		if symlink {
			return utimes(pfd, name, timespecs(hdr))
		}
		return nil
	}
	mode := uint32(hdr.Mode) & 0o7777
	var err error
	if f != nil {
		err = unix.Fchmod(int(f.Fd()), mode)
	} else {
		// Not a symlink (we just created it), so following is harmless.
		err = unix.Fchmodat(pfd, name, mode, 0)
	}
	if err != nil {
		return &os.PathError{Op: "chmod", Path: name, Err: err}
	}
	return utimes(pfd, name, timespecs(hdr))
}

func utimes(pfd int, name string, ts []unix.Timespec) error {
	if err := unix.UtimesNanoAt(pfd, name, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return &os.PathError{Op: "utimes", Path: name, Err: err}
	}
	return nil
}

func timespecs(hdr *tar.Header) []unix.Timespec {
	atime := hdr.AccessTime
	if atime.IsZero() {
		atime = hdr.ModTime
	}
	return []unix.Timespec{toTimespec(atime), toTimespec(hdr.ModTime)}
}

func toTimespec(t time.Time) unix.Timespec {
	ts, err := unix.TimeToTimespec(t)
	if err != nil { // beyond 2038 on 32-bit systems
		ts, _ = unix.TimeToTimespec(time.Unix(1<<31-1, 0))
	}
	return ts
}

const paxXattr = "SCHILY.xattr."

// isOverlayXattr reports attributes that overlayfs interprets. A layer
// must never set them: they could redirect lookups or fake whiteouts.
func isOverlayXattr(name string) bool {
	return strings.HasPrefix(name, "trusted.overlay.") || strings.HasPrefix(name, "user.overlay.")
}

func (a *applier) setXattrs(pfd int, name string, f *os.File, hdr *tar.Header) error {
	var keys []string
	for k := range hdr.PAXRecords {
		if strings.HasPrefix(k, paxXattr) && !isOverlayXattr(k[len(paxXattr):]) {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		attr, val := k[len(paxXattr):], []byte(hdr.PAXRecords[k])
		var err error
		if f != nil {
			err = unix.Fsetxattr(int(f.Fd()), attr, val, 0)
		} else {
			// No lsetxattrat before Linux 6.13: go through the directory's
			// /proc/self/fd link; the final component is not followed.
			err = unix.Lsetxattr(fmt.Sprintf("/proc/self/fd/%d/%s", pfd, name), attr, val, 0)
		}
		if err != nil && !ignorableXattrErr(attr, err, hdr.Typeflag) {
			return fmt.Errorf("set xattr %s on %s: %w", attr, name, err)
		}
	}
	return nil
}

// ignorableXattrErr: attributes in the security, trusted and system
// namespaces need privileges or file system support that an unprivileged
// caller or some file systems lack (security.selinux, security.capability,
// ACLs); user attributes are not allowed on symlinks and device nodes.
func ignorableXattrErr(attr string, err error, typ byte) bool {
	perm := errors.Is(err, unix.EPERM)
	unsupported := errors.Is(err, unix.ENOTSUP) || errors.Is(err, unix.EOPNOTSUPP)
	switch {
	case strings.HasPrefix(attr, "security."), strings.HasPrefix(attr, "trusted."), strings.HasPrefix(attr, "system."):
		return perm || unsupported
	case strings.HasPrefix(attr, "user."):
		special := typ != tar.TypeReg && typ != tar.TypeRegA && typ != tar.TypeDir && typ != tar.TypeGNUSparse
		return special && perm
	}
	return false
}

// setDirMeta records a directory's final mode and times; a later entry for
// the same directory replaces an earlier one.
func (a *applier) setDirMeta(m dirMeta) {
	if i, ok := a.dirIdx[m.rel]; ok {
		a.dirMeta[i] = m
		return
	}
	a.dirIdx[m.rel] = len(a.dirMeta)
	a.dirMeta = append(a.dirMeta, m)
}

// finish applies directory modes and times now that no more children will
// be written, in reverse order so that (tar order being parents first)
// children are done before their parents may become unsearchable.
func (a *applier) finish() error {
	for i := len(a.dirMeta) - 1; i >= 0; i-- {
		m := a.dirMeta[i]
		parent, name := a.root, "."
		if m.rel != "." {
			dirRel, base := path.Split(m.rel)
			p, err := a.dir(path.Clean(dirRel), false)
			if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) {
				continue // removed later in the layer
			} else if err != nil {
				return fmt.Errorf("entry %q: %w", m.rel, err)
			}
			parent, name = p, base
		}
		pfd := int(parent.Fd())
		var st unix.Stat_t
		if err := unix.Fstatat(pfd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil || st.Mode&unix.S_IFMT != unix.S_IFDIR {
			continue // removed or replaced later in the layer
		}
		// Not a symlink (checked above), so following is harmless.
		if err := unix.Fchmodat(pfd, name, m.mode, 0); err != nil {
			return fmt.Errorf("entry %q: %w", m.rel, &os.PathError{Op: "chmod", Path: m.rel, Err: err})
		}
		if err := utimes(pfd, name, m.ts); err != nil {
			return fmt.Errorf("entry %q: %w", m.rel, err)
		}
	}
	return nil
}
