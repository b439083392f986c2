// Package events is berth's event journal: container, image, network and
// volume events appended by whichever process causes them (the CLI, a
// container's supervisor, a build) to one file under the data directory,
// and read back by "berth events" with docker's filters. With no daemon,
// the journal on disk is the event bus.
package events
