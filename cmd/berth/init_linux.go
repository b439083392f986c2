package main

import (
	// The C part of libcontainer's init: it joins the container's
	// namespaces before the Go runtime starts when berth is re-executed
	// as a container's init.
	_ "github.com/opencontainers/runc/libcontainer/nsenter"

	// As a container's /sbin/docker-init (--init), initproc's C
	// constructor takes over before Go starts.
	_ "github.com/berthsh/berth/pkg/runtime/initproc"

	// The container-init and supervisor modes (see the package's doc):
	// they take over during package initialisation, before main.
	_ "github.com/berthsh/berth/internal/reexec"
)
