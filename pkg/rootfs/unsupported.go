//go:build !linux

package rootfs

import (
	"context"
	"fmt"
	"io"

	"github.com/berthsh/berth/pkg/errdefs"
)

var errUnsupported = fmt.Errorf("root file systems need Linux: %w", errdefs.ErrNotImplemented)

// Apply is only implemented on Linux.
func Apply(ctx context.Context, dir string, r io.Reader, opts ...ApplyOption) (ApplyStats, error) {
	return ApplyStats{}, errUnsupported
}

// Unpack is only implemented on Linux.
func Unpack(ctx context.Context, dir string, r io.Reader, opts ...ApplyOption) (ApplyStats, error) {
	return ApplyStats{}, errUnsupported
}

// RemoveAll is only implemented on Linux.
func RemoveAll(p string) error { return errUnsupported }

// Diff is only implemented on Linux.
func Diff(ctx context.Context, upper string, w io.Writer, opts DiffOptions) error {
	return errUnsupported
}

// DirToTar is only implemented on Linux.
func DirToTar(ctx context.Context, dir string, w io.Writer, opts DiffOptions) error {
	return errUnsupported
}

// MountOverlay is only implemented on Linux.
func MountOverlay(ctx context.Context, target string, lowers []string, upper, work string, opts ...MountOption) error {
	return errUnsupported
}

// BindMount is only implemented on Linux.
func BindMount(ctx context.Context, source, target string, readOnly bool) error {
	return errUnsupported
}

// Unmount is only implemented on Linux.
func Unmount(target string) error { return errUnsupported }
