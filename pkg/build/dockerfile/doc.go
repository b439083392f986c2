// Package dockerfile parses Dockerfiles and plans their build.
//
// Parse reads a Dockerfile with BuildKit's parser and instructions packages
// and returns its stages, the ARGs declared before the first FROM (meta
// ARGs), the escape token and lint warnings. Plan takes a parsed File and the
// build options (build args, target, platforms) and returns a BuildPlan:
// the stages the target needs, each with its base (scratch, an earlier
// stage or an image reference) and its steps, every instruction expanded
// with Docker's ARG/ENV scoping, plus the order in which stages can run
// (waves of independent stages) and the build args nothing consumed.
//
// Each Step carries what the executor needs: the typed instruction, its
// sources (build context, stage or image), the environment it runs with,
// the shell and working directory, RunArgs for RUN, CreatedBy for the
// image history, and ConfigBuilder applies steps to an image config (CMD
// and ENTRYPOINT combined as Docker does).
//
// Nothing here touches the network or the file system: base images are
// named, not resolved. Their configuration (environment, shell, working
// directory, ONBUILD triggers) can be passed to Plan once known, so that
// expansion sees the same variables Docker would.
package dockerfile
