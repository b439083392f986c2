// Package reexec runs berth's hidden re-executed modes from a package
// init function: libcontainer re-executes berth as a container's init
// ("/proc/self/exe init"), and Manager.Start as a container's supervisor
// ("berth __supervise ..."); in either mode the process never returns
// from this package's initialisation.
//
// It is a package of its own, and not main's init function, because Go
// initialises packages in dependency order: main's init runs after every
// package berth links (the embedded registry server, the build frontend,
// telemetry), while this one runs once pkg/runtime's dependencies are
// ready. A supervisor and a container's init then skip about a quarter
// of the start-up work of the 46 MB binary, a few milliseconds of every
// container start.
package reexec
