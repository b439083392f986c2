// Package store is berth's content-addressed image store on disk.
//
// The store is an OCI image layout (https://github.com/opencontainers/image-spec/blob/main/image-layout.md),
// so skopeo, umoci or any OCI tool can read it:
//
//	DIR/oci-layout            {"imageLayoutVersion":"1.0.0"}
//	DIR/index.json            one manifest descriptor per (image, name); an
//	                          image without a name has one descriptor with none
//	DIR/blobs/sha256/<hex>    manifests, configs and layers, by digest
//	DIR/ingest/               blobs being written (not part of the layout)
//	DIR/index.lock, gc.lock   lock files
//
// Names are full normalised references ("docker.io/library/python:3.11")
// kept in the org.opencontainers.image.ref.name annotation (and
// io.containerd.image.name, for containerd's tools).
//
// Guarantees:
//   - Every blob is verified against its digest (and size) before it is
//     renamed into blobs/; a reader of a stored blob verifies again as it
//     reads and fails at EOF if the bytes were damaged on disk.
//   - Writes are atomic: blobs and index.json are written to a temporary
//     file, fsynced and renamed. A name is added to index.json only after
//     every blob of its image is in place, so a crash or kill at any point
//     leaves either the old image or the new one under a name, never half.
//   - Parallel berth processes may share a store. index.json changes are
//     serialised by an exclusive flock on index.lock. Writers of new
//     content hold a shared flock on gc.lock from their first blob until
//     the name is recorded; garbage collection takes it exclusively, so it
//     never deletes a blob an unfinished pull or load is about to reference.
//   - Leftovers of killed writers (files in ingest/, temporary index files,
//     blobs no name reaches) are harmless and are removed by GC.
package store
