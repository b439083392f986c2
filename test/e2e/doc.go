// Package e2e holds end-to-end fault tests that drive the built berth
// binary as a user would: processes killed in the middle of a pull or a
// load, several processes sharing one image store, and bad input (wrong
// credentials, unreachable or damaging registries, unknown tags, malformed
// names). Each test checks that the store stays sound ('berth image
// verify'), that nothing half-done is named, and that garbage collection
// leaves exactly the blobs the images reference.
//
// The tests need no root and no network beyond loopback: registries are
// berth's embedded one (pkg/registry), served in the test process. Run them
// with
//
//	go test -race ./test/e2e/ -v
package e2e
