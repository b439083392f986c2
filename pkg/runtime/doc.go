// Package runtime runs containers: it prepares a container's root file
// system from an image in the store, turns the image config and the user's
// options into an OCI runtime spec, and runs that spec with runc's
// libcontainer embedded in the berth binary.
//
// # Layout
//
// Everything lives under one root directory (the engine's state root):
//
//	ROOT/layers/sha256/<hex>/     one image layer, unpacked once in overlay
//	                              style and keyed by its diff ID, shared
//	                              read-only by every container
//	ROOT/containers/<id>/         one container (the caller owns this
//	                              directory; see PrepareRootfs)
//	    upper/ work/ rootfs/      overlay upper, work and mount point
//	    hosts hostname resolv.conf
//	                              files the caller writes and CreateSpec
//	                              bind-mounts into the container
//	ROOT/libcontainer/<id>/       libcontainer's state (Create's stateRoot)
//
// # Running a container
//
//	cache, _ := OpenLayerCache(ROOT + "/layers")
//	lowers, _ := PrepareRootfs(ctx, cache, store, img, cdir)  // cdir exists
//	rootfs, _ := MountRootfs(ctx, cdir, lowers)
//	spec, _ := CreateSpec(&imageConfig.Config, rootfs, opts) // after writing hosts etc.
//	_ = SaveSpec(cdir, spec)                                 // for exec from other processes
//	c, _ := Create(ctx, ROOT+"/libcontainer", id, spec)
//	_ = c.Start(ctx, Stdio{...})                             // or StartTerminal
//	status, _ := c.Wait(ctx)                                 // only in the starting process
//	_ = c.Destroy(ctx)                                       // cgroups and state
//	_ = UnmountRootfs(cdir)
//
// Other processes Load the container to Signal, Pause, Resume, Exec in
// or Destroy it.
//
// # Managed containers
//
// Manager does all of the above for docker-style containers, without a
// daemon. Create records ROOT/containers/<id>/config.json and state.json;
// Start re-executes the binary as the container's supervisor ("berth
// __supervise", detached in its own session), which holds
// supervisor.lock (flock) for its whole life, prepares the environment
// (PrepareEnvironment), runs the container, writes its output to the
// json-file log, records exits, applies the restart policy and answers
// supervisor.sock (attach, wait, stop, kill, exec, resize). Every read
// (Get, List) checks that lock: a container whose supervisor died is
// marked exited and cleaned up. libcontainer's state of the containers of
// one root is in /run/berth/runc/<hash of ROOT>.
//
// # Re-exec init
//
// libcontainer starts a container by running /proc/self/exe with the
// single argument "init". Every binary that calls Create or Exec — berth
// itself and test binaries of packages that start containers — must
// therefore call InitIfRequested first thing (from an init function or
// TestMain), before flag parsing or any other work; binaries that use
// Manager.Start call SuperviseIfRequested right after it. This package links
// libcontainer's nsenter (a C constructor that joins the container's
// namespaces before the Go runtime starts), so the binary must be built
// with cgo.
package runtime
