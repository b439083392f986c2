package main

import (
	// The C part of libcontainer's init: it joins the container's
	// namespaces before the Go runtime starts when berth is re-executed
	// as a container's init.
	_ "github.com/opencontainers/runc/libcontainer/nsenter"

	_ "github.com/berthsh/berth/pkg/runtime/initproc"

	berthruntime "github.com/berthsh/berth/pkg/runtime"
)

// init runs before main and before anything else berth sets up: when
// libcontainer re-executes berth ("/proc/self/exe init") to become a
// container's init, InitIfRequested never returns; when berth is
// re-executed as a container's supervisor ("berth __supervise ...", a
// hidden mode cobra never sees), SuperviseIfRequested never returns. As a
// container's /sbin/docker-init (--init), initproc's C constructor takes
// over before Go starts.
func init() {
	berthruntime.InitIfRequested()
	berthruntime.SuperviseIfRequested()
}
