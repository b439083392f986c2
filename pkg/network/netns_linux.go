package network

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/berthsh/berth/pkg/errdefs"
)

// NetNSDir is where NewNetNS pins network namespaces.
const NetNSDir = "/run/berth/netns"

// NewNetNS creates a network namespace with its loopback up and pins it by
// a bind mount at NetNSDir/name, returning that path. The namespace lives
// until RemoveNetNS, even without processes in it.
func NewNetNS(ctx context.Context, name string) (string, error) {
	if name == "" || name == "." || name == ".." || strings.ContainsRune(name, '/') {
		return "", fmt.Errorf("network namespace name %q: must be a non-empty file name: %w", name, errdefs.ErrInvalidArgument)
	}
	if err := ensureNetNSDir(ctx); err != nil {
		return "", err
	}
	path := filepath.Join(NetNSDir, name)
	f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE|os.O_EXCL, 0o444)
	if errors.Is(err, os.ErrExist) {
		return "", fmt.Errorf("network namespace %s: %w", path, errdefs.ErrAlreadyExists)
	}
	if err != nil {
		return "", fmt.Errorf("create network namespace %s: %w", name, err)
	}
	f.Close()

	// unshare changes only the calling thread: do it on a locked thread
	// and move that thread back afterwards. If that fails the thread
	// stays locked and the runtime discards it when the goroutine exits.
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("open current network namespace: %w", err)
			return
		}
		defer orig.Close()
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("unshare: %w", err)
			return
		}
		src := fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid())
		err = unix.Mount(src, path, "none", unix.MS_BIND, "")
		if rerr := netns.Set(orig); rerr == nil {
			runtime.UnlockOSThread()
		}
		if err != nil {
			err = fmt.Errorf("bind mount %s: %w", src, err)
		}
		errc <- err
	}()
	if err := <-errc; err != nil {
		_ = os.Remove(path)
		return "", fmt.Errorf("create network namespace %s: %w", name, err)
	}
	if err := setLoopbackUp(path); err != nil {
		_ = RemoveNetNS(path)
		return "", fmt.Errorf("create network namespace %s: %w", name, err)
	}
	return path, nil
}

// RemoveNetNS unpins a namespace made by NewNetNS; the kernel frees it
// once no process is left in it. A missing path is not an error.
func RemoveNetNS(path string) error {
	if err := unix.Unmount(path, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("remove network namespace %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove network namespace %s: %w", path, err)
	}
	return nil
}

// ensureNetNSDir makes NetNSDir a shared mount point, as ip-netns does
// for /run/netns: namespaces pinned there are then unpinned in mount
// namespaces created later (containers) too, instead of living on in
// their copies of the mount.
func ensureNetNSDir(ctx context.Context) error {
	if err := os.MkdirAll(NetNSDir, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", NetNSDir, err)
	}
	unlock, err := lockFile(ctx, filepath.Join(filepath.Dir(NetNSDir), "netns.lock"))
	if err != nil {
		return err
	}
	defer unlock()
	err = unix.Mount("", NetNSDir, "none", unix.MS_SHARED|unix.MS_REC, "")
	if errors.Is(err, unix.EINVAL) { // not a mount point yet
		if err := unix.Mount(NetNSDir, NetNSDir, "none", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			return fmt.Errorf("bind mount %s: %w", NetNSDir, err)
		}
		err = unix.Mount("", NetNSDir, "none", unix.MS_SHARED|unix.MS_REC, "")
	}
	if err != nil {
		return fmt.Errorf("make %s a shared mount: %w", NetNSDir, err)
	}
	return nil
}

// setLoopbackUp brings up lo in the namespace at path.
func setLoopbackUp(path string) error {
	return withNetNSHandle(path, func(h *netlink.Handle) error {
		lo, err := h.LinkByName("lo")
		if err != nil {
			return fmt.Errorf("find lo: %w", err)
		}
		if err := h.LinkSetUp(lo); err != nil {
			return fmt.Errorf("set lo up: %w", err)
		}
		return nil
	})
}

// withNetNSHandle runs fn with a netlink handle bound to the network
// namespace at path; the calling thread never changes namespace.
func withNetNSHandle(path string, fn func(*netlink.Handle) error) error {
	ns, err := netns.GetFromPath(path)
	if err != nil {
		return fmt.Errorf("open network namespace %s: %w", path, err)
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return fmt.Errorf("netlink in namespace %s: %w", path, err)
	}
	defer h.Close()
	return fn(h)
}
