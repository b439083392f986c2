package runtime

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"

	"github.com/berthsh/berth/pkg/errdefs"
	"github.com/berthsh/berth/pkg/rootfs"
)

// Export writes the file system of the container idOrName to w as an
// uncompressed tar archive (docker export). A running container's mounted
// root file system is read as it is; for a stopped one the image layers
// and the container's changes are mounted read-only for the duration.
// Volumes and other mounts are not included.
func Export(ctx context.Context, m *Manager, idOrName string, w io.Writer) error {
	c, err := m.Get(ctx, idOrName)
	if err != nil {
		return err
	}
	err = withRootfs(ctx, m, c, false, func(root string) error {
		return rootfs.DirToTar(ctx, root, w, rootfs.DiffOptions{})
	})
	if err != nil {
		return fmt.Errorf("export %s: %w", idOrName, err)
	}
	return nil
}

// isMountPoint reports whether dir is on another file system than its
// parent (the container's overlay is mounted there).
func isMountPoint(dir string) bool {
	var st, parent syscall.Stat_t
	if syscall.Lstat(dir, &st) != nil || syscall.Lstat(filepath.Dir(dir), &parent) != nil {
		return false
	}
	return st.Dev != parent.Dev
}

// withRootfs calls fn with the host path of the container's root file
// system: the mounted rootfs of a running container, else a temporary
// mount of the image layers and the container's upper directory —
// read-only (the upper directory as the top lower layer), or writable
// with the upper directory and a private work directory.
func withRootfs(ctx context.Context, m *Manager, c Container, writable bool, fn func(root string) error) (err error) {
	mounted := filepath.Join(c.Dir, RootfsDir)
	if c.State.Running && isMountPoint(mounted) {
		return fn(mounted)
	}
	img, err := envImage(ctx, EnvParams{Store: m.store, Config: &c.Config})
	if err != nil {
		return err
	}
	lowers, err := m.layers.Unpack(ctx, m.store, img)
	if err != nil {
		return err
	}
	upper := filepath.Join(c.Dir, UpperDir)
	target, err := os.MkdirTemp(c.Dir, ".mnt-")
	if err != nil {
		return fmt.Errorf("mount the container's file system: %w", classifyFS(err))
	}
	defer os.Remove(target)
	if writable {
		if err := os.MkdirAll(upper, 0o755); err != nil {
			return fmt.Errorf("mount the container's file system: %w", classifyFS(err))
		}
		work, err := os.MkdirTemp(c.Dir, ".work-")
		if err != nil {
			return fmt.Errorf("mount the container's file system: %w", classifyFS(err))
		}
		defer rootfs.RemoveAll(work)
		if err := rootfs.MountOverlay(ctx, target, lowers, upper, work); err != nil {
			return err
		}
	} else {
		if _, err := os.Stat(upper); err == nil {
			lowers = append(lowers, upper)
		}
		if err := rootfs.MountOverlay(ctx, target, lowers, "", ""); err != nil {
			return err
		}
	}
	defer func() {
		if uerr := rootfs.Unmount(target); uerr != nil && err == nil {
			err = uerr
		}
	}()
	return fn(target)
}

// errNotRunning is the error for an operation that needs a running
// container.
func errNotRunning(name string) error {
	return fmt.Errorf("container %s is not running: %w", name, errdefs.ErrConflict)
}
