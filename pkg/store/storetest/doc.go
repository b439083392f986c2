// Package storetest is the conformance suite for berth's image store.
//
// Run exercises any implementation of Store: blob writes and verified
// reads, image names and lookups, removal, pruning, garbage collection,
// leases against GC, Verify, and concurrent use. pkg/store runs it against
// store.Open; a second implementation (or a wrapper) runs the same suite.
//
// Tests that damage content on disk need to know where it lives: they run
// when the store has a Dir() string method and keeps its blobs as an OCI
// image layout there (DIR/blobs/sha256/<hex>, DIR/ingest/), and are skipped
// otherwise.
//
// The helpers (Layer, NewImage, CheckConsistent, Referenced, OnDisk) are
// exported for store tests that go beyond the suite, such as the fault
// injection tests of pkg/store.
package storetest
