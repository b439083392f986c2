// Package loadtest drives HTTP load at a service and measures it: the
// generator behind "berth loadtest".
//
// Two models are offered. A fixed rate (Options.Rate) is an open loop:
// requests are sent on a schedule whether or not the server keeps up, and
// each latency is measured from the request's scheduled time, so a slow
// server is not hidden by the generator waiting for it (coordinated
// omission). A fixed concurrency (Options.Concurrency without a rate) is a
// closed loop: that many workers each send a request as soon as their
// previous one finished, which measures the server's maximum throughput.
//
// Latencies go into a fixed-memory log-linear Histogram (about 0.4%
// relative error), never a list of samples. Each worker keeps one HTTP/1.1
// connection alive and, like wrk, writes a request serialized once and
// parses the answers straight off the connection, allocating nothing per
// request.
//
// Two engines send the load (Options.Engine). On Linux, closed-loop load
// on http:// URLs runs on the epoll engine (epoll_linux.go): a few locked
// OS threads, each with its own epoll instance and share of the
// connections, as wrk does. Everything else (a fixed rate, https://,
// other systems) runs on the goroutines engine (generator.go, client.go):
// a goroutine per connection on Go's net package. Both parse heads with
// parseHead and count failures by the same kinds. When Options.Stats is set, the container behind the service
// is sampled every Options.SampleInterval for its CPU and memory use.
package loadtest
