// Package buildctx gives a Dockerfile build access to its build context and
// produces the layers of COPY and ADD instructions.
//
// # Context
//
// Open reads the ignore file of a context directory and nothing else: files
// are read in place, when a COPY or ADD needs them, and the context is never
// copied. As BuildKit does, the ignore file is "<Dockerfile>.dockerignore"
// next to the Dockerfile when that exists, else ".dockerignore" at the root
// of the context; its patterns are those of github.com/moby/patternmatcher
// ("**", "!" exceptions, last match wins). The Dockerfile itself is always
// readable through Context.Dockerfile, even when the ignore file lists it;
// for COPY and ADD, as with BuildKit, whatever the ignore file excludes
// (the Dockerfile and the ignore file included) does not exist.
//
// NewRoot gives the same access to a directory that is not a build context,
// such as the root file system of an earlier stage for COPY --from.
// Inline makes a source of given content (COPY here-documents), FetchURL
// one of a download (ADD <url>). Entries refer to their Context or
// Download, which must stay open until WriteLayer is done.
//
// # Sources
//
// Context.Resolve applies Docker's rules to the source arguments of COPY and
// ADD: paths are relative to the root of the context, and ".." is cleaned
// against it ("../x" is "x"); Go filepath.Match patterns are expanded one
// path segment at a time; a source that matches nothing is an error wrapping
// errdefs.ErrNotFound with Docker's wording. A symbolic link given as a
// source (or met on the way to one) is followed, inside the context: a link
// whose target leaves the context is refused with "forbidden path outside
// the build context" (errdefs.ErrInvalidArgument); a wildcard skips such
// links, as BuildKit finds nothing there. In a root made with
// NewRoot, links are resolved as the container would (an absolute target is
// taken from the root, ".." stops at the root). Symbolic links found inside
// a copied directory are copied as links. All reads go through an os.Root,
// so nothing outside the directory is ever read.
//
// # Destination
//
// Plan turns sources and a destination into the list of entries a layer
// holds. The builder describes the stage's current file system with an
// LstatFunc (DirTarget for a flattened root directory). A destination ending in "/" (or ".", or naming a directory that
// exists in the target file system) is a directory; with more than one
// source argument it must end in "/" (Docker's rule). A directory source copies its contents; a file
// goes inside a directory destination, else becomes the destination. A
// relative destination is relative to the working directory. Symbolic links
// in the target on the way to the destination are followed (inside the
// target), unless CopyOptions.Link is set, when the target is not looked at.
// Missing parent directories are created with mode 0755, owned by root or by
// the --chown owner; existing ones are written with their current metadata
// so that the layer is complete on its own. Files are owned by 0:0 unless
// --chown is given (or KeepOwner, for COPY --from), and keep their mode
// unless --chmod is given (it applies to files and directories, not links).
// Files hard-linked to each other within one COPY are written as tar hard
// links. ADD extracts local tar archives (plain, gzip, bzip2, zstd; detected
// by content, xz refused) into the destination directory, keeping the
// archive's owners unless --chown is given and dropping extended
// attributes; members that climb out of the destination or are named like
// layer whiteouts (".wh.*") are refused. URLs are downloaded (FetchURL) as
// files of mode 0600, verified against --checksum and never extracted.
// --parents keeps each source's path (from the root or from a "/./" pivot)
// and --exclude drops files by pattern, relative to the directory copied.
//
// # Layers and reproducibility
//
// WriteLayer writes the entries as an uncompressed PAX tar, sorted by path
// (entries of an extracted archive follow it in archive order), with no user
// or group names, access or change times. berth is reproducible by default:
// every modification time is LayerOptions.SourceDateEpoch, or the Unix
// epoch when that is zero, so the same context gives the same layer digest
// anywhere. LayerOptions.PreserveTimes keeps source modification times as
// Docker does (clamped to SourceDateEpoch when it is set).
//
// # Cache keys
//
// Checksum digests the entries (destination path, type, mode, owner, link
// target, size and the sha256 of each file's content; never modification
// times), so that only a change of content or metadata changes it. File
// hashes are remembered per Context, keyed by inode, size and modification
// time, so a second Checksum in the same process does not read files again.
package buildctx
