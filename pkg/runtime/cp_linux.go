package runtime

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	securejoin "github.com/cyphar/filepath-securejoin"

	"github.com/berthsh/berth/pkg/errdefs"
	"github.com/berthsh/berth/pkg/rootfs"
)

// resolveInRoot turns containerPath into a host path inside root,
// resolving symbolic links as the container would see them (never
// leaving root).
func resolveInRoot(root, containerPath string) (string, error) {
	if !path.IsAbs(containerPath) {
		containerPath = "/" + containerPath
	}
	p, err := securejoin.SecureJoin(root, containerPath)
	if err != nil {
		return "", fmt.Errorf("resolve %s in the container: %w", containerPath, err)
	}
	return p, nil
}

// PathInfo describes the file at containerPath in the container idOrName
// (symbolic links followed inside the container). A missing file wraps
// errdefs.ErrNotFound.
func PathInfo(ctx context.Context, m *Manager, idOrName, containerPath string) (fs.FileInfo, error) {
	c, err := m.Get(ctx, idOrName)
	if err != nil {
		return nil, err
	}
	var fi fs.FileInfo
	err = withRootfs(ctx, m, c, false, func(root string) error {
		p, err := resolveInRoot(root, containerPath)
		if err != nil {
			return err
		}
		fi, err = os.Stat(p)
		if err != nil {
			return fmt.Errorf("could not find the file %s in container %s: %w", containerPath, idOrName, classifyFS(err))
		}
		return nil
	})
	return fi, err
}

// CopyFrom writes containerPath of the container idOrName to w as an
// uncompressed tar archive, as docker cp does: a file as one entry named
// after it, a directory as its base name followed by its contents.
func CopyFrom(ctx context.Context, m *Manager, idOrName, containerPath string, w io.Writer) error {
	c, err := m.Get(ctx, idOrName)
	if err != nil {
		return err
	}
	return withRootfs(ctx, m, c, false, func(root string) error {
		p, err := resolveInRoot(root, containerPath)
		if err != nil {
			return err
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return fmt.Errorf("could not find the file %s in container %s: %w", containerPath, idOrName, classifyFS(err))
		}
		name := path.Base(path.Clean("/" + containerPath))
		if name == "/" {
			name = "."
		}
		return TarPath(ctx, p, fi, name, w)
	})
}

// TarPath writes the host file or directory p (described by fi) to w as
// a tar archive whose entries are under name. w is not closed.
func TarPath(ctx context.Context, p string, fi fs.FileInfo, name string, w io.Writer) error {
	tw := tar.NewWriter(w)
	if !fi.IsDir() {
		if err := writeFileEntry(tw, p, fi, name); err != nil {
			return err
		}
		return tw.Close()
	}
	hdr, err := tar.FileInfoHeader(fi, "")
	if err != nil {
		return err
	}
	hdr.Name = name + "/"
	hdr.Uname, hdr.Gname = "", ""
	hdr.Format = tar.FormatPAX
	if name != "." {
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
	}
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		err := rootfs.DirToTar(ctx, p, pw, rootfs.DiffOptions{})
		pw.CloseWithError(err)
		done <- err
	}()
	tr := tar.NewReader(pr)
	var copyErr error
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			copyErr = err
			break
		}
		h.Name = path.Join(name, h.Name)
		if h.Typeflag == tar.TypeDir {
			h.Name += "/"
		}
		if h.Typeflag == tar.TypeLink {
			h.Linkname = path.Join(name, h.Linkname)
		}
		if err := tw.WriteHeader(h); err != nil {
			copyErr = err
			break
		}
		if _, err := io.Copy(tw, tr); err != nil {
			copyErr = err
			break
		}
	}
	pr.CloseWithError(io.ErrClosedPipe)
	if err := <-done; err != nil && copyErr == nil {
		copyErr = err
	}
	if copyErr != nil {
		return copyErr
	}
	return tw.Close()
}

func writeFileEntry(tw *tar.Writer, p string, fi fs.FileInfo, name string) error {
	link := ""
	if fi.Mode()&fs.ModeSymlink != 0 {
		l, err := os.Readlink(p)
		if err != nil {
			return err
		}
		link = l
	}
	hdr, err := tar.FileInfoHeader(fi, link)
	if err != nil {
		return fmt.Errorf("%s: %v: %w", name, err, errdefs.ErrNotImplemented)
	}
	hdr.Name = name
	hdr.Uname, hdr.Gname = "", ""
	hdr.Format = tar.FormatPAX
	if err := tw.WriteHeader(hdr); err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return nil
	}
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(tw, f)
	return err
}

// CopyTo extracts the uncompressed tar archive r into the directory
// containerDir of the container idOrName (docker cp to a container). The
// directory must exist; every entry stays inside the container's root
// file system whatever its name or the symbolic links on the way.
func CopyTo(ctx context.Context, m *Manager, idOrName string, r io.Reader, containerDir string) error {
	c, err := m.Get(ctx, idOrName)
	if err != nil {
		return err
	}
	return withRootfs(ctx, m, c, true, func(root string) error {
		p, err := resolveInRoot(root, containerDir)
		if err != nil {
			return err
		}
		fi, err := os.Stat(p)
		if err != nil {
			return fmt.Errorf("could not find the directory %s in container %s: %w", containerDir, idOrName, classifyFS(err))
		}
		if !fi.IsDir() {
			return fmt.Errorf("%s in container %s is not a directory: %w", containerDir, idOrName, errdefs.ErrInvalidArgument)
		}
		if _, err := rootfs.Apply(ctx, p, r, rootfs.WithFlatten()); err != nil {
			if strings.Contains(err.Error(), "read-only file system") {
				return fmt.Errorf("copy to %s: %w: %w", containerDir, errdefs.ErrPermission, err)
			}
			return err
		}
		return nil
	})
}

var _ = filepath.Join
