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
// # Re-exec init
//
// libcontainer starts a container by running /proc/self/exe with the
// single argument "init". Every binary that calls Create or Exec — berth
// itself and test binaries of packages that start containers — must
// therefore call InitIfRequested first thing (from an init function or
// TestMain), before flag parsing or any other work. This package links
// libcontainer's nsenter (a C constructor that joins the container's
// namespaces before the Go runtime starts), so the binary must be built
// with cgo.
package runtime
