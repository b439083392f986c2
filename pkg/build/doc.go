// Package build is berth's image builder: it turns a Dockerfile and a build
// context into an image, without a daemon.
//
// The work is split into sub-packages:
//
//   - dockerfile parses a Dockerfile (with BuildKit's parser) and plans the
//     build: it expands variables with Docker's ARG/ENV scoping, resolves
//     stages and their dependencies, prunes the stages the target does not
//     need and orders the rest into waves that can run in parallel.
//   - buildctx gives the build access to its context directory (honouring
//     .dockerignore), applies Docker's COPY/ADD source and destination rules
//     and writes their layers.
//
// # Executor
//
// Build (Linux only) runs a plan: it finds the base images in the store
// (pulling those that are missing, or all with Options.Pull), plans again
// with their configs, then builds the needed stages wave by wave, the
// stages of one wave in parallel, and stores the target stage's image as an
// OCI image (OCI media types, os/architecture set, one history entry per
// step) under Options.Tags. Nothing is named unless the whole build
// succeeds; mounts, containers and temporary files are removed whatever
// happens, cancellation included.
//
// Each stage is a list of layers, unpacked once into the shared layer cache
// (ROOT/layers, see runtime.LayerCache). COPY and ADD look at the stage's
// file system through a read-only overlay of those layers; COPY --from
// reads another stage's (or an image's) the same way. RUN mounts a
// writable overlay of them, runs the command in a libcontainer container
// (host network by default as BuildKit does, or a namespace with only
// loopback for "none"; hostname "buildkitsandbox"; the build's environment
// with ARG and proxy values; RUN --mount of type cache, tmpfs, bind and
// secret, as a file or a variable) and turns the overlay's upper directory
// into the step's layer.
// Mount points the container needed in the root file system are removed
// before that, so they do not end up in the image. WORKDIR creates its
// directory (owned by the current USER) in a layer of its own when the
// stage lacks it. Other instructions only change the config.
//
// # Reproducibility
//
// Every time written (file times in layers, history and config "created")
// is Options.SourceDateEpoch, or the Unix epoch, and layers are written
// with sorted entries and compressed with fixed settings, so the same
// Dockerfile and context give the same image digest.
//
// # Cache
//
// Layer steps are cached in ROOT/build/cache.json by a key chained from the
// stage's base (image ID, or "scratch", with platform and epoch), each
// earlier step and the layer each produced: for COPY and ADD the
// instruction and buildctx.Checksum of the files (content and metadata,
// never modification times); for RUN the command, its environment,
// network, user, working directory and mounts; for WORKDIR the directory
// and user. A hit reuses the stored layer blob when it is still in the
// store. Since keys follow the layers produced, changing a source file
// re-runs its COPY and every later step of the stage, and a re-run that
// produces the same layer lets later steps hit again. A COPY --from step is
// also recorded under a shortcut key made of its source's key (stage key or
// image ID) and the stage's key, leading to its content key, so a rebuild
// whose stages are unchanged skips mounting and checksumming the files.
// The cache file is replaced atomically without fsync: it is derived data,
// and a file a crash damaged reads as empty. RUN --mount=type=cache
// directories persist in ROOT/build/cache/. Prune empties the cache (and
// Usage measures it); it holds ROOT/build/prune.lock exclusively while
// every build holds it shared, so neither runs while the other does.
//
// # Docker compatibility
//
// As BuildKit, every stage's config has PATH (appended when the base sets
// none) and a FROM scratch stage starts with working directory "/"; a
// stage's platform is its FROM --platform, its base stage's, or
// Options.Platform, and selects the base image's platform; RUN secrets are
// copies with mode 0400 (or mode=) owned by uid/gid; context bind mounts
// show the context as filtered by the ignore file. The corpus in
// testdata/corpus and test/interop's differential test against docker
// build keep these honest (see docs/building.md).
package build
