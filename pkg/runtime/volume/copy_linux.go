package volume

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// seedData copies the contents of the directory src into the empty
// directory data, then gives data src's metadata. volDir, the volume's
// directory, holds the temporary copy when it is on data's file system.
// It reports whether src had any entries.
func seedData(ctx context.Context, src, data, volDir string) (bool, error) {
	var srcSt unix.Stat_t
	if err := unix.Lstat(src, &srcSt); err != nil {
		return false, &os.PathError{Op: "lstat", Path: src, Err: err}
	}
	entries, err := os.ReadDir(src)
	if err != nil {
		return false, err
	}
	c := newCopier(ctx)
	if len(entries) > 0 {
		var dataSt, volSt unix.Stat_t
		if err := unix.Stat(data, &dataSt); err != nil {
			return false, &os.PathError{Op: "stat", Path: data, Err: err}
		}
		if err := unix.Stat(volDir, &volSt); err != nil {
			return false, &os.PathError{Op: "stat", Path: volDir, Err: err}
		}
		if dataSt.Dev == volSt.Dev {
			err = copyThenMove(c, src, data, volDir)
		} else {
			// Something is mounted on data: copy in place, and on failure
			// delete what was copied.
			if err = c.copyContents(src, data); err != nil {
				emptyDir(data)
			}
		}
		if err != nil {
			return false, err
		}
	}
	if err := c.setMeta(src, data, &srcSt); err != nil {
		return false, err
	}
	return len(entries) > 0, nil
}

// copyThenMove copies src's contents into a temporary directory in volDir
// and renames each entry into data.
func copyThenMove(c *copier, src, data, volDir string) error {
	tmp, err := os.MkdirTemp(volDir, seedPrefix)
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if err := c.copyContents(src, tmp); err != nil {
		return err
	}
	names, err := readNames(tmp)
	if err != nil {
		return err
	}
	var moved []string
	for _, n := range names {
		if err := renameNoReplace(filepath.Join(tmp, n), filepath.Join(data, n)); err != nil {
			for _, m := range moved {
				os.RemoveAll(filepath.Join(data, m))
			}
			if errors.Is(err, unix.EEXIST) {
				return fmt.Errorf("%s was written to while it was being seeded: %w", data, err)
			}
			return err
		}
		moved = append(moved, n)
	}
	return nil
}

func readNames(dir string) ([]string, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return f.Readdirnames(-1)
}

// emptyDir deletes everything in dir (best effort).
func emptyDir(dir string) {
	names, _ := readNames(dir)
	for _, n := range names {
		os.RemoveAll(filepath.Join(dir, n))
	}
}

// renameNoReplace renames oldpath to newpath, failing with EEXIST when
// newpath exists.
func renameNoReplace(oldpath, newpath string) error {
	err := unix.Renameat2(unix.AT_FDCWD, oldpath, unix.AT_FDCWD, newpath, unix.RENAME_NOREPLACE)
	if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS) {
		// The file system cannot do RENAME_NOREPLACE.
		if _, lerr := os.Lstat(newpath); lerr == nil {
			return &os.LinkError{Op: "rename", Old: oldpath, New: newpath, Err: unix.EEXIST}
		}
		return os.Rename(oldpath, newpath)
	}
	if err != nil {
		return &os.LinkError{Op: "rename", Old: oldpath, New: newpath, Err: err}
	}
	return nil
}

// fileID identifies an inode, to keep hard links linked.
type fileID struct{ dev, ino uint64 }

// copier copies trees without following symlinks.
type copier struct {
	ctx context.Context
	// links maps a multiply linked source file to its first copy.
	links map[fileID]string
	// lenient: not root, so ownership and privileged extended attributes
	// that cannot be set are left as they come.
	lenient bool
}

func newCopier(ctx context.Context) *copier {
	return &copier{ctx: ctx, links: map[fileID]string{}, lenient: os.Geteuid() != 0}
}

// copyContents copies every entry of the directory src into the existing
// directory dst.
func (c *copier) copyContents(src, dst string) error {
	names, err := readNames(src)
	if err != nil {
		return err
	}
	for _, n := range names {
		if err := c.copyEntry(filepath.Join(src, n), filepath.Join(dst, n)); err != nil {
			return err
		}
	}
	return nil
}

// copyEntry copies src to the new path dst, recursing into directories.
func (c *copier) copyEntry(src, dst string) error {
	if err := c.ctx.Err(); err != nil {
		return err
	}
	var st unix.Stat_t
	if err := unix.Lstat(src, &st); err != nil {
		return &os.PathError{Op: "lstat", Path: src, Err: err}
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		if err := os.Mkdir(dst, 0o700); err != nil {
			return err
		}
		if err := c.copyContents(src, dst); err != nil {
			return err
		}
	case unix.S_IFREG:
		if st.Nlink > 1 {
			id := fileID{uint64(st.Dev), uint64(st.Ino)}
			if first, ok := c.links[id]; ok {
				return os.Link(first, dst)
			}
			c.links[id] = dst
		}
		if err := copyFile(src, dst); err != nil {
			return err
		}
	case unix.S_IFLNK:
		target, err := os.Readlink(src)
		if err != nil {
			return err
		}
		if err := os.Symlink(target, dst); err != nil {
			return err
		}
	case unix.S_IFIFO, unix.S_IFCHR, unix.S_IFBLK:
		if err := unix.Mknod(dst, st.Mode&^0o7777|0o600, int(st.Rdev)); err != nil {
			return &os.PathError{Op: "mknod", Path: dst, Err: err}
		}
	default:
		return nil // sockets belong to a process; docker skips them too
	}
	return c.setMeta(src, dst, &st)
}

// copyFile copies the regular file src's content to the new file dst.
func copyFile(src, dst string) error {
	in, err := os.OpenFile(src, os.O_RDONLY|unix.O_NOFOLLOW, 0)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	_, err = io.Copy(out, in) // copy_file_range where the kernel can
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("copy %s: %w", src, err)
	}
	return nil
}

// setMeta gives dst src's owner, mode, extended attributes and times. The
// order matters: chown clears set-user-ID bits and file capabilities, so
// those are set after it.
func (c *copier) setMeta(src, dst string, st *unix.Stat_t) error {
	isLink := st.Mode&unix.S_IFMT == unix.S_IFLNK
	if err := unix.Lchown(dst, int(st.Uid), int(st.Gid)); err != nil {
		if !c.lenient || !(errors.Is(err, unix.EPERM) || errors.Is(err, unix.EINVAL)) {
			return &os.PathError{Op: "lchown", Path: dst, Err: err}
		}
	}
	if !isLink {
		if err := unix.Fchmodat(unix.AT_FDCWD, dst, st.Mode&0o7777, 0); err != nil {
			return &os.PathError{Op: "chmod", Path: dst, Err: err}
		}
	}
	if err := c.copyXattrs(src, dst); err != nil {
		return err
	}
	ts := []unix.Timespec{st.Atim, st.Mtim}
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, dst, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return &os.PathError{Op: "utimes", Path: dst, Err: err}
	}
	return nil
}

// copyXattrs copies src's extended attributes to dst. Attributes the file
// systems do not support, or (when not root) that need privilege, are
// skipped.
func (c *copier) copyXattrs(src, dst string) error {
	skip := func(err error) bool {
		return errors.Is(err, unix.ENOTSUP) || errors.Is(err, unix.ENODATA) ||
			(c.lenient && (errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES)))
	}
	list, err := getList(func(b []byte) (int, error) { return unix.Llistxattr(src, b) })
	if err != nil {
		if skip(err) {
			return nil
		}
		return &os.PathError{Op: "listxattr", Path: src, Err: err}
	}
	for _, name := range strings.Split(string(list), "\x00") {
		if name == "" {
			continue
		}
		val, err := getList(func(b []byte) (int, error) { return unix.Lgetxattr(src, name, b) })
		if err != nil {
			if skip(err) {
				continue
			}
			return &os.PathError{Op: "getxattr " + name, Path: src, Err: err}
		}
		if err := unix.Lsetxattr(dst, name, val, 0); err != nil {
			// security.selinux may be refused even to root by policy.
			if skip(err) || (name == "security.selinux" && errors.Is(err, unix.EACCES)) {
				continue
			}
			return &os.PathError{Op: "setxattr " + name, Path: dst, Err: err}
		}
	}
	return nil
}

// getList runs a size-probing xattr call: first for the size, then to
// fill a buffer, retrying when the value grew in between.
func getList(call func([]byte) (int, error)) ([]byte, error) {
	for range 4 {
		n, err := call(nil)
		if err != nil {
			return nil, err
		}
		if n == 0 {
			return nil, nil
		}
		buf := make([]byte, n)
		n, err = call(buf)
		if errors.Is(err, unix.ERANGE) {
			continue
		}
		if err != nil {
			return nil, err
		}
		return buf[:n], nil
	}
	return nil, unix.ERANGE
}
