// Package events is berth's event journal: container, image, network and
// volume events appended by whichever process causes them (the CLI, a
// container's supervisor, a build) to one file under the data directory,
// and read back by "berth events" with docker's filters. With no daemon,
// the journal on disk is the event bus.
//
// The journal is ROOT/events/events.jsonl, one JSON object a line, each
// appended with a single O_APPEND write under a shared flock of
// ROOT/events/events.lock. When the file passes half the size bound it is
// renamed to events.jsonl.1 (replacing the previous one) under the
// exclusive lock, so the journal keeps about the newest 10 MB. Readers
// take the shared lock while they read, skip lines that do not parse (a
// torn write after a crash), and Follow tails the file across rotations.
package events
