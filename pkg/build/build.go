package build

import (
	"fmt"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/berthsh/berth/pkg/reference"
	"github.com/berthsh/berth/pkg/store"
)

// Options are the inputs of Build (the flags of "berth build").
type Options struct {
	// ContextDir is the build context directory.
	ContextDir string
	// Dockerfile is the Dockerfile's path ("" means ContextDir/Dockerfile).
	// DockerfileContent, when set, is used instead of reading a file
	// ("-f -"); Dockerfile then only names it in messages.
	Dockerfile        string
	DockerfileContent []byte
	// DefaultDockerignore, when not nil, is the .dockerignore used when the
	// context has no ignore file (for generated Dockerfiles).
	DefaultDockerignore []byte
	// Tags name the image. Without tags it is stored without a name.
	Tags []reference.Reference
	// BuildArgs are the --build-arg values.
	BuildArgs map[string]string
	// Target is the stage to build; "" means the last.
	Target string
	// NoCache runs every step again (the cache is still updated).
	NoCache bool
	// Pull pulls base images even when the store has them.
	Pull bool
	// Network is RUN's network: "host" (default, as BuildKit) or "none"
	// (a namespace with only loopback).
	Network string
	// Labels are added to the image's labels.
	Labels map[string]string
	// Secrets are the files of RUN --mount=type=secret, by id.
	Secrets map[string]string
	// Platform is the image's platform; zero means linux/<GOARCH>. RUN
	// steps can only run for this machine's architecture.
	Platform v1.Platform
	// SourceDateEpoch is the time written in layers, history and the
	// config; nil means the Unix epoch, so builds are reproducible.
	SourceDateEpoch *time.Time
	// Progress, if set, is told about each step. It is called from the
	// goroutines of stages built in parallel, so it must be safe for
	// concurrent use.
	Progress func(Event)
	// Root is berth's state root: unpacked layers go to ROOT/layers, the
	// build cache to ROOT/build.
	Root string
}

// Event reports progress of one step.
type Event struct {
	// Step is the step's number (1-based, over all stages built) and Total
	// the number of steps.
	Step, Total int
	// Stage is the stage's name ("stage-N" for an unnamed one).
	Stage string
	// Instruction is the step as written in the Dockerfile, variables
	// not expanded (e.g. "RUN pip install -r requirements.txt").
	Instruction string
	// Cached is set on the Done event of a step whose result came from the
	// cache.
	Cached bool
	// Started is set when the step starts, Done when it ends; events with
	// neither carry Output.
	Started, Done bool
	// Duration is how long the step took (Done events).
	Duration time.Duration
	// Output is a line of RUN's output, with its newline.
	Output []byte
	// Err is the step's error (Done events).
	Err error
}

// Result is a built image.
type Result struct {
	// Image is the image as stored.
	Image store.Image
	// ID is the image ID (the digest of its config).
	ID v1.Hash
	// Warnings are the Dockerfile's lint warnings and unused build args.
	Warnings []string
}

// RunError is a RUN step that exited with a non-zero code.
type RunError struct {
	// Command is the command line that ran ("/bin/sh -c ...").
	Command string
	// ExitCode is the exit code (128+N when killed by signal N).
	ExitCode int
	// Output is the last lines of the step's output.
	Output []string
}

func (e *RunError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "process %q did not complete successfully: exit code: %d", e.Command, e.ExitCode)
	if len(e.Output) > 0 {
		b.WriteString("\noutput (last lines):")
		for _, l := range e.Output {
			b.WriteString("\n  " + strings.TrimRight(l, "\n"))
		}
	}
	return b.String()
}
