// Package initproc is the init berth runs as PID 1 of a container started
// with --init: the berth binary itself, bind-mounted at /sbin/docker-init.
// It is written in C (initproc.c) and runs as a constructor, before the Go
// runtime starts, so that no signal is lost in the moments after exec.
// Import it for its side effect, in the main package only.
package initproc

// #cgo CFLAGS: -Wall
import "C"

// Name is the basename the binary answers to as init.
const Name = "docker-init"
