// Package interop holds end-to-end tests that drive the built berth binary
// next to Docker, skopeo and Debian's docker-registry, and check that images
// move between them unchanged: archives (berth save → docker load, docker
// save → berth load) and registries (berth push → docker pull, docker push →
// berth pull, skopeo copy → berth pull) with berth's embedded registry and
// the reference registry.
//
// The tests need root for the private Docker engine (see
// testutil.Docker) and skip when an engine, skopeo or docker-registry is
// missing. Run them with
//
//	go test -race ./test/interop/ -v
package interop
