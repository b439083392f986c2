// Package build is berth's image builder: it turns a Dockerfile and a build
// context into an image, without a daemon.
//
// The work is split into sub-packages:
//
//   - dockerfile parses a Dockerfile (with BuildKit's parser) and plans the
//     build: it expands variables with Docker's ARG/ENV scoping, resolves
//     stages and their dependencies, prunes the stages the target does not
//     need and orders the rest into waves that can run in parallel.
//   - buildctx gives the build access to its context directory (honouring
//     .dockerignore), applies Docker's COPY/ADD source and destination rules
//     and writes their layers.
//
// The executor runs a plan's steps stage by stage on top of these.
package build
