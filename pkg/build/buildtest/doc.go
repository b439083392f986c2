// Package buildtest holds what the builder's tests share with the
// differential tests against Docker (test/interop): the Dockerfile corpus
// in pkg/build/testdata/corpus, its expectations, and a reader that merges
// image layers (OCI whiteouts applied) into one file tree to compare.
//
// Each corpus case is a directory NN-name holding a Dockerfile, the files of
// its build context and expect.json (see Expect). WriteContext copies a case
// into a fresh context directory with normalized permissions, so that what
// git checked out (and the umask) does not change the result.
package buildtest
