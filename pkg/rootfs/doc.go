// Package rootfs turns image layers into root file systems and root file
// system changes back into layers: safe layer unpacking (Apply, Unpack),
// overlay mounts (MountOverlay, Unmount, BindMount) and layer creation
// (Diff for an overlay upper directory, DirToTar for a plain directory).
//
// # Layout
//
// Each image layer is unpacked once, in overlay style, into a directory of
// its own and shared by every container and build step that uses it. A
// container's root file system is an overlay of those directories (lowers,
// in image order) with a per-container upper and work directory:
//
//	layers/<diffID>/          Unpack(ctx, dir, layerTar)  — read-only once unpacked
//	containers/<id>/upper/    changes made by the container
//	containers/<id>/work/     overlayfs scratch space (same file system as upper)
//	containers/<id>/rootfs/   MountOverlay(ctx, rootfs, layerDirs, upper, work)
//
// A Dockerfile RUN step runs in such a container; its new layer is
// Diff(ctx, upper, w, opts). WithFlatten applies layers onto one ordinary
// tree instead, for export or for a builder without overlayfs.
//
// # Whiteouts
//
// Layers record deletions with OCI whiteouts: an empty ".wh.NAME" deletes
// NAME from lower layers, and "DIR/.wh..wh..opq" hides everything lower
// layers had in DIR. In overlay style (the default) Apply turns them into
// what overlayfs understands: a character device 0:0 named NAME, and the
// attribute trusted.overlay.opaque=y (user.overlay.opaque with
// WithUserXattr, the default when not root) on DIR. With WithFlatten they
// delete from the tree being applied to. A whiteout never removes what the
// same layer wrote, whatever the entry order. Diff does the reverse.
//
// # Safety of Apply
//
// Layers are untrusted input. Apply guarantees that nothing is created,
// changed or removed outside dir:
//
//   - Entry names are cleaned; absolute names are taken relative to dir,
//     and names that climb out of it with ".." are refused with an error
//     naming the entry (errdefs.ErrInvalidArgument).
//   - Every parent directory is resolved as if dir were "/" (openat2
//     RESOLVE_IN_ROOT semantics, through filepath-securejoin's pathrs-lite,
//     with a safe fallback on kernels without openat2): symbolic links,
//     whether from this layer or already in dir, and ".." never lead out
//     of dir. The final component is never followed: a symlink in the way
//     is replaced, not written through.
//   - Symlink targets are stored as they are, absolute ones included,
//     because they are resolved later inside the container.
//   - Hardlink targets must be inside dir (absolute ones relative to it)
//     and already extracted; escaping targets are refused.
//   - All operations are relative to directory handles (mkdirat, openat
//     with O_NOFOLLOW|O_EXCL, linkat, mknodat, fchownat ...), so a path
//     checked is the path used.
//   - Attributes that overlayfs interprets (trusted.overlay.*,
//     user.overlay.*) are never taken from a layer.
//
// Apply assumes nothing else modifies dir while it runs. Owners are
// applied when running as root (WithoutChown to keep the caller's);
// set-user-ID and set-group-ID bits are applied after chown; directory
// modes and times are applied last. Device nodes that cannot be created
// for lack of privilege are skipped and counted in ApplyStats. Truncated
// or malformed archives fail with errdefs.ErrDataCorrupt naming the entry,
// and cancelling ctx stops Apply between reads.
//
// # Mounts
//
// overlayfs takes its layers in one option string limited to a page. With
// many layers or long paths MountOverlay passes each layer separately
// through the new mount API (fsconfig "lowerdir+", Linux ≥6.8), or else
// mounts through a temporary directory of short symbolic links from a
// thread with its own working directory (the process's is left alone).
package rootfs
