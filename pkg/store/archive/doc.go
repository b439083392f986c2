// Package archive moves images between berth's store and tar archives:
// Save writes "docker save" and OCI image-layout archives, Load reads them
// back (including archives written by docker and by other OCI tools), and
// Import turns a root filesystem tarball into a one-layer image.
//
// Archives are untrusted input. Load never extracts anything: it indexes
// the tar once (entry name → offset and size) and reads the entries the
// manifests name through io.SectionReader, so hostile entry names, links
// and device nodes cannot write anywhere. Everything is verified (digests,
// sizes, diff IDs) while it is copied into the store under a store.Lease,
// and names are recorded last: a failed or interrupted load leaves no name
// behind, and the blobs it wrote are removed by the next GC.
//
// Output is reproducible: Save writes the same bytes for the same images,
// and Load and Import compress layers with fixed pgzip settings, so the
// same input always gives the same image.
package archive
