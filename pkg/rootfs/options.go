package rootfs

import (
	"os"
	"time"
)

// ApplyStats summarises what Apply wrote.
type ApplyStats struct {
	// Entries is the number of tar entries processed, whiteouts included.
	Entries int
	// Files is the number of regular files written (hardlinks excluded).
	Files int
	// Bytes is the total size of the regular files written.
	Bytes int64
	// Whiteouts is the number of whiteout and opaque-directory markers
	// applied (deletions in flatten mode, overlay markers otherwise).
	Whiteouts int
	// SkippedDevices is the number of character and block device entries
	// that were not created because the caller lacks the privilege to
	// create device nodes.
	SkippedDevices int
}

// ApplyOption configures Apply and Unpack.
type ApplyOption func(*applyConfig)

type applyConfig struct {
	flatten   bool
	chown     bool
	userXattr bool
}

func newApplyConfig(opts []ApplyOption) applyConfig {
	root := os.Geteuid() == 0
	cfg := applyConfig{chown: root, userXattr: !root}
	for _, o := range opts {
		o(&cfg)
	}
	return cfg
}

// WithFlatten applies the layer onto an existing tree, as when building a
// flattened root filesystem for export or for a builder working directly on
// one tree: a whiteout ".wh.NAME" deletes NAME and an opaque marker
// ".wh..wh..opq" deletes what the directory held before this layer.
//
// Without it (the default) the layer is unpacked in overlay style, for use
// as an overlayfs lower directory: whiteouts become overlay whiteouts
// (character devices 0:0) and opaque markers become the overlay "opaque"
// extended attribute on the directory.
func WithFlatten() ApplyOption {
	return func(c *applyConfig) { c.flatten = true }
}

// WithoutChown keeps files owned by the calling user instead of the owner
// recorded in the layer. This is the default when not running as root.
func WithoutChown() ApplyOption {
	return func(c *applyConfig) { c.chown = false }
}

// WithUserXattr records overlay opaque directories with the
// "user.overlay.opaque" attribute instead of "trusted.overlay.opaque", for
// overlay mounts made with the "userxattr" option (rootless, kernel ≥5.11).
// It is the default when not running as root. WithUserXattr(false) forces
// the trusted namespace.
func WithUserXattr(on bool) ApplyOption {
	return func(c *applyConfig) { c.userXattr = on }
}

// DiffOptions configures Diff and DirToTar.
type DiffOptions struct {
	// SourceDateEpoch, when set, clamps modification times: any entry
	// modified after it is recorded with this time instead. Use it for
	// reproducible layers (SOURCE_DATE_EPOCH).
	SourceDateEpoch *time.Time
}

// MountOption configures MountOverlay.
type MountOption func(*mountConfig)

type mountConfig struct {
	readOnly  bool
	userXattr bool
	extra     []string
}

// WithReadOnly mounts the overlay read-only even when an upper directory
// is given.
func WithReadOnly() MountOption {
	return func(c *mountConfig) { c.readOnly = true }
}

// WithMountUserXattr adds the overlay "userxattr" option, so that overlayfs
// reads and writes user.overlay.* attributes (layers unpacked with
// WithUserXattr, rootless mounts in a user namespace, kernel ≥5.11).
func WithMountUserXattr() MountOption {
	return func(c *mountConfig) { c.userXattr = true }
}

// WithMountOptions appends raw overlay mount options (for example "volatile"
// for a throwaway build container). Values must not contain commas.
func WithMountOptions(opts ...string) MountOption {
	return func(c *mountConfig) { c.extra = append(c.extra, opts...) }
}
