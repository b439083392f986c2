package rootfs

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berthsh/berth/pkg/errdefs"
)

// maxLowers is overlayfs's limit on stacked lower layers (OVL_MAX_STACK).
const maxLowers = 500

type mountStrategy int

const (
	strategyAuto     mountStrategy = iota
	strategyData                   // mount(2) with absolute paths in the data page
	strategyFsconfig               // new mount API, one "lowerdir+" per layer (Linux ≥6.8)
	strategyLinks                  // mount(2) with short symlink names, relative to a private cwd
)

// forceStrategy lets tests exercise each way of mounting.
var forceStrategy = strategyAuto

// errFsconfigUnsupported: the kernel lacks the new mount API or
// "lowerdir+"; fall back to short links.
var errFsconfigUnsupported = errors.New("fsconfig lowerdir+ not supported")

// MountOverlay mounts an overlay file system on target.
//
// lowers are the layer directories in image order: lowers[0] is the base
// layer and the last element the topmost one, whose files win. With upper
// and work (both or neither; on the same file system, work empty) the
// mount is writable and changes land in upper, ready for Diff. Without
// them the mount is read-only; a single read-only layer is bind-mounted.
//
// Any number of layers up to overlayfs's limit of 500 works regardless of
// path lengths: when the option string would overflow the one-page mount
// data limit, MountOverlay passes each layer separately through the new
// mount API (Linux ≥6.8) or else mounts through short symbolic links.
//
// Writable mounts are made with index, redirect_dir and metacopy off, so
// that upper holds plain copies that Diff can turn into a layer.
func MountOverlay(ctx context.Context, target string, lowers []string, upper, work string, opts ...MountOption) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	var cfg mountConfig
	for _, o := range opts {
		o(&cfg)
	}
	if err := mountOverlay(target, lowers, upper, work, cfg); err != nil {
		return fmt.Errorf("mount overlay on %s (%d layers): %w", target, len(lowers), err)
	}
	return nil
}

func mountOverlay(target string, lowers []string, upper, work string, cfg mountConfig) error {
	switch {
	case len(lowers) == 0:
		return fmt.Errorf("no lower layers: %w", errdefs.ErrInvalidArgument)
	case len(lowers) > maxLowers:
		return fmt.Errorf("%d layers exceed the overlayfs limit of %d: %w", len(lowers), maxLowers, errdefs.ErrInvalidArgument)
	case (upper == "") != (work == ""):
		return fmt.Errorf("upper and work directories must be given together: %w", errdefs.ErrInvalidArgument)
	}
	var err error
	if target, err = filepath.Abs(target); err != nil {
		return err
	}
	// Topmost first, as overlayfs wants them.
	layers := make([]string, len(lowers))
	for i, l := range lowers {
		if l == "" {
			return fmt.Errorf("empty lower layer path: %w", errdefs.ErrInvalidArgument)
		}
		if layers[len(lowers)-1-i], err = filepath.Abs(l); err != nil {
			return err
		}
	}
	if upper == "" && len(layers) == 1 {
		return bindMount(layers[0], target, true)
	}
	if upper != "" {
		if upper, err = filepath.Abs(upper); err != nil {
			return err
		}
		if work, err = filepath.Abs(work); err != nil {
			return err
		}
	}

	var flags uintptr
	if cfg.readOnly || upper == "" {
		flags |= unix.MS_RDONLY
	}
	var common []string
	if upper != "" {
		common = append(common, "index=off", "redirect_dir=off", "metacopy=off")
	}
	if cfg.userXattr {
		common = append(common, "userxattr")
	}
	for _, o := range cfg.extra {
		if o == "" || strings.ContainsRune(o, ',') {
			return fmt.Errorf("invalid mount option %q: %w", o, errdefs.ErrInvalidArgument)
		}
		common = append(common, o)
	}

	data := overlayData(layers, upper, work, common)
	plain := !needsEscape(upper) && !needsEscape(work)
	for _, l := range layers {
		plain = plain && !needsEscape(l)
	}
	switch forceStrategy {
	case strategyData:
		return mountData(target, flags, data)
	case strategyFsconfig:
		return mountFsconfig(target, layers, upper, work, common, flags)
	case strategyLinks:
		return mountLinks(target, layers, upper, work, common, flags)
	}
	if plain && len(data) < os.Getpagesize() {
		return mountData(target, flags, data)
	}
	if kernelAtLeast(6, 8) {
		if err := mountFsconfig(target, layers, upper, work, common, flags); !errors.Is(err, errFsconfigUnsupported) {
			return err
		}
	}
	return mountLinks(target, layers, upper, work, common, flags)
}

// kernelAtLeast reports whether the running kernel is at least
// major.minor. Before 6.5 overlayfs took fsconfig parameters through the
// legacy path, which accepts "lowerdir+" blindly and then fails on the
// page limit, so the kernel version decides rather than trial and error.
func kernelAtLeast(major, minor int) bool {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return false
	}
	rel := unix.ByteSliceToString(u.Release[:])
	parts := strings.SplitN(rel, ".", 3)
	if len(parts) < 2 {
		return false
	}
	maj, err1 := strconv.Atoi(parts[0])
	minStr := parts[1]
	if i := strings.IndexFunc(minStr, func(r rune) bool { return r < '0' || r > '9' }); i >= 0 {
		minStr = minStr[:i]
	}
	mnr, err2 := strconv.Atoi(minStr)
	if err1 != nil || err2 != nil {
		return false
	}
	return maj > major || (maj == major && mnr >= minor)
}

// needsEscape reports paths that the mount(2) option parser would split
// or unescape.
func needsEscape(p string) bool {
	return strings.ContainsAny(p, ",:\\")
}

func overlayData(layers []string, upper, work string, common []string) string {
	opts := []string{"lowerdir=" + strings.Join(layers, ":")}
	if upper != "" {
		opts = append(opts, "upperdir="+upper, "workdir="+work)
	}
	return strings.Join(append(opts, common...), ",")
}

func mountData(target string, flags uintptr, data string) error {
	if len(data) >= os.Getpagesize() {
		return fmt.Errorf("overlay options are %d bytes, more than a page: %w", len(data), errdefs.ErrInvalidArgument)
	}
	if err := unix.Mount("overlay", target, "overlay", flags, data); err != nil {
		return &os.PathError{Op: "mount", Path: target, Err: err}
	}
	return nil
}

// mountFsconfig mounts with the new mount API, passing each layer in its
// own "lowerdir+" parameter, so there is no length limit.
func mountFsconfig(target string, layers []string, upper, work string, common []string, flags uintptr) error {
	fsfd, err := unix.Fsopen("overlay", unix.FSOPEN_CLOEXEC)
	if err != nil {
		if errors.Is(err, unix.ENOSYS) {
			return errFsconfigUnsupported
		}
		return fmt.Errorf("fsopen overlay: %w", err)
	}
	defer unix.Close(fsfd)
	fail := func(what string, err error) error {
		if msg := fsLog(fsfd); msg != "" {
			return fmt.Errorf("%s: %w (%s)", what, err, msg)
		}
		return fmt.Errorf("%s: %w", what, err)
	}
	// As mount(2) would show it in /proc/self/mountinfo.
	_ = unix.FsconfigSetString(fsfd, "source", "overlay")
	for i, l := range layers {
		if err := unix.FsconfigSetString(fsfd, "lowerdir+", l); err != nil {
			if i == 0 && errors.Is(err, unix.EINVAL) && forceStrategy != strategyFsconfig {
				return errFsconfigUnsupported
			}
			return fail("lower layer "+l, err)
		}
	}
	if upper != "" {
		if err := unix.FsconfigSetString(fsfd, "upperdir", upper); err != nil {
			return fail("upper directory "+upper, err)
		}
		if err := unix.FsconfigSetString(fsfd, "workdir", work); err != nil {
			return fail("work directory "+work, err)
		}
	}
	for _, o := range common {
		k, v, hasValue := strings.Cut(o, "=")
		if hasValue {
			err = unix.FsconfigSetString(fsfd, k, v)
		} else {
			err = unix.FsconfigSetFlag(fsfd, k)
		}
		if err != nil {
			return fail("option "+o, err)
		}
	}
	if err := unix.FsconfigCreate(fsfd); err != nil {
		return fail("create overlay", err)
	}
	var attrs int
	if flags&unix.MS_RDONLY != 0 {
		attrs |= unix.MOUNT_ATTR_RDONLY
	}
	mfd, err := unix.Fsmount(fsfd, unix.FSMOUNT_CLOEXEC, attrs)
	if err != nil {
		return fail("fsmount", err)
	}
	defer unix.Close(mfd)
	if err := unix.MoveMount(mfd, "", unix.AT_FDCWD, target, unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
		return &os.PathError{Op: "move_mount", Path: target, Err: err}
	}
	return nil
}

// fsLog drains the messages the kernel left on an fs context.
func fsLog(fsfd int) string {
	var msgs []string
	buf := make([]byte, 1024)
	for len(msgs) < 16 {
		n, err := unix.Read(fsfd, buf)
		if err != nil || n <= 0 {
			break
		}
		msgs = append(msgs, strings.TrimSpace(string(buf[:n])))
	}
	return strings.Join(msgs, "; ")
}

// mountLinks makes a private directory of short symlinks to the layers
// ("0", "1", … in base 36; "U" and "W" for upper and work) and mounts with
// those relative names from a thread whose working directory is that
// directory. The thread unshares its file system attributes first, so the
// process's working directory is never changed. overlayfs resolves the
// paths at mount time, so the links are removed right after.
func mountLinks(target string, layers []string, upper, work string, common []string, flags uintptr) error {
	dir, err := os.MkdirTemp("", "berth-overlay-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	names := make([]string, len(layers))
	for i, l := range layers {
		names[i] = strconv.FormatInt(int64(i), 36)
		if err := os.Symlink(l, filepath.Join(dir, names[i])); err != nil {
			return err
		}
	}
	if upper != "" {
		if err := os.Symlink(upper, filepath.Join(dir, "U")); err != nil {
			return err
		}
		if err := os.Symlink(work, filepath.Join(dir, "W")); err != nil {
			return err
		}
		upper, work = "U", "W"
	}
	data := overlayData(names, upper, work, common)
	if len(data) >= os.Getpagesize() {
		return fmt.Errorf("overlay options are %d bytes even with short links: %w", len(data), errdefs.ErrInvalidArgument)
	}
	errc := make(chan error, 1)
	go func() {
		// Never unlocked: the thread's working directory differs from the
		// process's, so the runtime must discard the thread when this
		// goroutine ends.
		runtime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_FS); err != nil {
			errc <- fmt.Errorf("unshare file system attributes: %w", err)
			return
		}
		if err := unix.Chdir(dir); err != nil {
			errc <- fmt.Errorf("chdir %s: %w", dir, err)
			return
		}
		if err := unix.Mount("overlay", target, "overlay", flags, data); err != nil {
			errc <- &os.PathError{Op: "mount", Path: target, Err: err}
			return
		}
		errc <- nil
	}()
	return <-errc
}

// BindMount bind-mounts source on target (not recursively), read-only if
// asked.
func BindMount(ctx context.Context, source, target string, readOnly bool) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := bindMount(source, target, readOnly); err != nil {
		return fmt.Errorf("bind mount %s on %s: %w", source, target, err)
	}
	return nil
}

func bindMount(source, target string, readOnly bool) error {
	if err := unix.Mount(source, target, "", unix.MS_BIND, ""); err != nil {
		return &os.PathError{Op: "mount", Path: target, Err: err}
	}
	if !readOnly {
		return nil
	}
	// A bind mount inherits the source's flags but not read-only; the
	// remount must repeat the flags that are locked in a user namespace.
	var st unix.Statfs_t
	if err := unix.Statfs(target, &st); err != nil {
		_ = unix.Unmount(target, unix.MNT_DETACH)
		return err
	}
	flags := uintptr(unix.MS_BIND | unix.MS_REMOUNT | unix.MS_RDONLY)
	for _, f := range []struct{ st, ms uintptr }{
		{unix.ST_NOSUID, unix.MS_NOSUID},
		{unix.ST_NODEV, unix.MS_NODEV},
		{unix.ST_NOEXEC, unix.MS_NOEXEC},
		{unix.ST_NOATIME, unix.MS_NOATIME},
		{unix.ST_NODIRATIME, unix.MS_NODIRATIME},
		{unix.ST_RELATIME, unix.MS_RELATIME},
	} {
		if uintptr(st.Flags)&f.st != 0 {
			flags |= f.ms
		}
	}
	if err := unix.Mount("", target, "", flags, ""); err != nil {
		_ = unix.Unmount(target, unix.MNT_DETACH)
		return &os.PathError{Op: "remount read-only", Path: target, Err: err}
	}
	return nil
}

// Unmount unmounts target. A target that is not mounted (or does not
// exist) is not an error. If target stays busy for about a second it is
// detached lazily, to be released when its last user goes away.
func Unmount(target string) error {
	for i := 0; ; i++ {
		err := unix.Unmount(target, 0)
		switch {
		case err == nil, errors.Is(err, unix.EINVAL), errors.Is(err, unix.ENOENT):
			return nil
		case errors.Is(err, unix.EBUSY) && i < 10:
			time.Sleep(time.Duration(i+1) * 20 * time.Millisecond)
		case errors.Is(err, unix.EBUSY):
			if err := unix.Unmount(target, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) {
				return fmt.Errorf("unmount %s: %w", target, err)
			}
			return nil
		default:
			return fmt.Errorf("unmount %s: %w", target, err)
		}
	}
}
