// Package seccomp turns a Docker-format seccomp profile into the OCI
// runtime spec's syscall filter for one container.
//
// The default profile (default.json) is Docker's, from
// github.com/moby/profiles/seccomp v0.2.3 (Apache License 2.0): berth uses
// the same policy so that what runs under Docker runs under berth. It is
// embedded as data; the profile format is Docker's, so a user's own
// profile (--security-opt seccomp=FILE) written for Docker works as is.
//
// A profile entry applies to a container when its "includes" all hold
// (every listed capability is in the container's bounding set, the
// machine's architecture is listed, the kernel is at least minKernel) and
// none of its "excludes" does.
package seccomp
