package cli

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/berthsh/berth/internal/atomicfile"
	"github.com/berthsh/berth/pkg/build"
	"github.com/berthsh/berth/pkg/pyproject"
	"github.com/berthsh/berth/pkg/reference"
	"github.com/berthsh/berth/pkg/registry"
	"github.com/berthsh/berth/pkg/store/archive"
)

type buildFlags struct {
	tags      []string
	file      string
	buildArgs []string
	target    string
	noCache   bool
	pull      bool
	network   string
	labels    []string
	secrets   []string
	push      bool
	output    string
	iidfile   string
	progress  string
	quiet     bool
	printPlan bool
	base      string
}

func newBuildCmd(g *globals) *cobra.Command {
	var f buildFlags
	cmd := &cobra.Command{
		Use:   "build [OPTIONS] CONTEXT",
		Short: "Build an image from a Dockerfile",
		Long: `Build an image from the Dockerfile in CONTEXT (a directory, or "-" to read
a Dockerfile from standard input with an empty context).

RUN steps execute in a sandbox over the stage's layers with the host's network
(--network none to cut it). Every step's result is cached by its instruction and,
for COPY and ADD, the content and metadata of its sources (never mtimes), so
changing one file re-runs only the steps from its COPY on. Images are
reproducible: timestamps are SOURCE_DATE_EPOCH, or 1970-01-01 when unset.

Without a Dockerfile (no -f and no CONTEXT/Dockerfile), a Python project is
detected and built with a generated multi-stage Dockerfile (see berth init);
--print-plan shows what was detected and the Dockerfile without building, and
--base sets its base image.`,
		Example: `  berth build -t app:1.0 .
  berth build -t app --build-arg PIP_INDEX_URL=http://127.0.0.1:8080/simple .
  berth build --target test -f docker/Dockerfile .
  berth build --print-plan .
  berth build --base python:3.12-slim -t app .`,
		Args: argsBetween(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runBuild(cmd, g, f, args[0])
		},
	}
	fl := cmd.Flags()
	fl.StringArrayVarP(&f.tags, "tag", "t", nil, "name and optionally a tag (name:tag); repeatable")
	fl.StringVarP(&f.file, "file", "f", "", "Dockerfile (default CONTEXT/Dockerfile; \"-\" for stdin)")
	fl.StringArrayVar(&f.buildArgs, "build-arg", nil, "build-time variable KEY=VALUE (KEY alone takes it from the environment)")
	fl.StringVar(&f.target, "target", "", "build this stage (default: the last)")
	fl.BoolVar(&f.noCache, "no-cache", false, "do not use the build cache")
	fl.BoolVar(&f.pull, "pull", false, "always pull base images")
	fl.StringVar(&f.network, "network", "host", "network for RUN steps: host or none")
	fl.StringArrayVar(&f.labels, "label", nil, "image label KEY=VALUE")
	fl.StringArrayVar(&f.secrets, "secret", nil, "secret for RUN --mount=type=secret: id=ID,src=FILE")
	fl.BoolVar(&f.push, "push", false, "push the image to its registry after building")
	fl.StringVarP(&f.output, "output", "o", "", "also write the image to a file: type=oci|docker,dest=FILE")
	fl.StringVar(&f.iidfile, "iidfile", "", "write the image ID to this file")
	fl.StringVar(&f.progress, "progress", "auto", "progress output: auto (live view on a terminal, else plain), plain, tty or quiet")
	fl.BoolVarP(&f.quiet, "quiet", "q", false, "print only the image ID")
	fl.BoolVar(&f.printPlan, "print-plan", false, "without a Dockerfile: print what was detected and the generated Dockerfile, and exit")
	fl.StringVar(&f.base, "base", "", "without a Dockerfile: base image of the generated Dockerfile (sets the BASE build arg)")
	return cmd
}

// buildOptions turns the flags into build.Options (the parts that need no I/O).
func (f buildFlags) options(contextArg string, stdin io.Reader) (build.Options, error) {
	var opts build.Options
	for _, t := range f.tags {
		r, err := reference.Parse(t)
		if err != nil {
			return opts, usageErrorf("invalid tag %q: %v", t, err)
		}
		opts.Tags = append(opts.Tags, r)
	}
	opts.BuildArgs = map[string]string{}
	for _, a := range f.buildArgs {
		k, v, ok := strings.Cut(a, "=")
		if !ok {
			val, set := os.LookupEnv(k)
			if !set {
				continue // docker drops a bare KEY that is not set
			}
			v = val
		}
		if k == "" {
			return opts, usageErrorf("invalid --build-arg %q: want KEY=VALUE", a)
		}
		opts.BuildArgs[k] = v
	}
	if len(f.labels) > 0 {
		opts.Labels = map[string]string{}
		for _, l := range f.labels {
			k, v, _ := strings.Cut(l, "=")
			if k == "" {
				return opts, usageErrorf("invalid --label %q: want KEY=VALUE", l)
			}
			opts.Labels[k] = v
		}
	}
	if len(f.secrets) > 0 {
		opts.Secrets = map[string]string{}
		for _, s := range f.secrets {
			var id, src string
			for _, kv := range strings.Split(s, ",") {
				k, v, _ := strings.Cut(kv, "=")
				switch k {
				case "id":
					id = v
				case "src", "source":
					src = v
				case "type":
					if v != "file" {
						return opts, usageErrorf("invalid --secret %q: only type=file is supported", s)
					}
				default:
					return opts, usageErrorf("invalid --secret %q: unknown key %q", s, k)
				}
			}
			if id == "" || src == "" {
				return opts, usageErrorf("invalid --secret %q: want id=ID,src=FILE", s)
			}
			opts.Secrets[id] = src
		}
	}
	switch f.network {
	case "host", "default", "":
		opts.Network = "host"
	case "none":
		opts.Network = "none"
	default:
		return opts, usageErrorf("invalid --network %q: use host or none", f.network)
	}
	switch f.progress {
	case "auto", "plain", "tty", "quiet":
	default:
		return opts, usageErrorf("invalid --progress %q: use auto, plain or quiet", f.progress)
	}
	opts.Target, opts.NoCache, opts.Pull = f.target, f.noCache, f.pull
	if contextArg == "-" {
		if f.file != "" && f.file != "-" {
			return opts, usageErrorf("with CONTEXT \"-\" the Dockerfile comes from stdin; drop -f")
		}
		b, err := io.ReadAll(stdin)
		if err != nil {
			return opts, fmt.Errorf("read Dockerfile from stdin: %w", err)
		}
		opts.DockerfileContent = b
		return opts, nil
	}
	opts.ContextDir = contextArg
	switch {
	case f.file == "-":
		b, err := io.ReadAll(stdin)
		if err != nil {
			return opts, fmt.Errorf("read Dockerfile from stdin: %w", err)
		}
		opts.DockerfileContent = b
	case f.file != "":
		opts.Dockerfile = f.file
	}
	return opts, nil
}

// parseOutput parses --output type=oci|docker,dest=FILE.
func parseOutput(s string) (format, dest string, err error) {
	for _, kv := range strings.Split(s, ",") {
		k, v, _ := strings.Cut(kv, "=")
		switch k {
		case "type":
			format = v
		case "dest":
			dest = v
		default:
			return "", "", usageErrorf("invalid --output %q: unknown key %q", s, k)
		}
	}
	if format != archive.FormatOCI && format != archive.FormatDocker {
		return "", "", usageErrorf("invalid --output %q: type must be oci or docker", s)
	}
	if dest == "" {
		return "", "", usageErrorf("invalid --output %q: dest=FILE is required", s)
	}
	return format, dest, nil
}

func runBuild(cmd *cobra.Command, g *globals, f buildFlags, contextArg string) error {
	ctx := cmd.Context()
	opts, err := f.options(contextArg, g.In)
	if err != nil {
		return err
	}
	var outFormat, outDest string
	if f.output != "" {
		if outFormat, outDest, err = parseOutput(f.output); err != nil {
			return err
		}
	}
	if contextArg == "-" {
		dir, err := os.MkdirTemp("", "berth-build-context-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		opts.ContextDir = dir
	}
	if f.push && len(opts.Tags) == 0 {
		return usageErrorf("--push needs a name: add -t NAME")
	}
	opts.Root = g.Root
	quiet := f.quiet || f.progress == "quiet"
	if done, err := f.generateDockerfile(cmd, g, contextArg, quiet, &opts); err != nil || done {
		return err
	}
	pp := &buildProgress{w: g.Err}
	var live *ttyProgress
	if !quiet {
		opts.Progress = pp.event
		// The live view on a terminal (or asked for); plain text otherwise.
		if f.progress == "tty" || f.progress == "auto" && isTerminal(g.Err) {
			live = newTTYProgress(g.Err, terminalWidth(g.Err), nil)
			live.run()
			opts.Progress = live.event
		}
	}
	s, err := g.openStore(ctx)
	if err != nil {
		return err
	}
	start := time.Now()
	res, err := build.Build(ctx, s, opts)
	if live != nil {
		live.finish()
	}
	if err != nil {
		return err
	}
	g.emitImageEvent("build", res.ID.String(), buildEventName(opts.Tags))
	if !quiet {
		for _, w := range res.Warnings {
			fmt.Fprintln(g.Err, "WARNING:", w)
		}
		fmt.Fprintf(g.Err, "writing image %s done (%.1fs)\n", res.ID, time.Since(start).Seconds())
		for _, t := range opts.Tags {
			fmt.Fprintf(g.Err, "naming to %s done\n", t.String())
		}
	}
	if f.iidfile != "" {
		if err := atomicfile.WriteFile(f.iidfile, []byte(res.ID.String()), 0o644); err != nil {
			return fmt.Errorf("write --iidfile: %w", err)
		}
	}
	if outDest != "" {
		names := []string{res.ID.String()}
		if len(opts.Tags) > 0 {
			names = names[:0]
			for _, t := range opts.Tags {
				names = append(names, t.String())
			}
		}
		if err := archive.SaveToFile(ctx, s, names, outDest, archive.SaveOptions{Format: outFormat}); err != nil {
			return err
		}
	}
	if f.push {
		for _, t := range opts.Tags {
			r, err := registry.Push(ctx, s, t.String(), t, registry.PushOptions{})
			if err != nil {
				return err
			}
			if !quiet {
				fmt.Fprintf(g.Err, "pushed %s: digest: %s size: %d\n", t.Familiar(), r.Digest, r.Size)
			}
		}
	}
	if quiet {
		fmt.Fprintln(g.Out, res.ID)
	}
	return nil
}

// generateDockerfile switches opts to a generated Dockerfile when the
// context has none (zero-config build of a Python project), printing a note
// on stderr. With --print-plan it prints the plan instead and reports done.
func (f buildFlags) generateDockerfile(cmd *cobra.Command, g *globals, contextArg string, quiet bool, opts *build.Options) (done bool, err error) {
	generated := contextArg != "-" && f.file == ""
	if generated {
		has, err := pyproject.HasDockerfile(contextArg)
		if err != nil {
			return false, err
		}
		generated = !has
	}
	if !generated {
		if f.printPlan {
			return false, usageErrorf("--print-plan applies only to a context without a Dockerfile (and no -f)")
		}
		if f.base != "" {
			return false, usageErrorf("--base applies only to a generated Dockerfile; for your Dockerfile use --build-arg")
		}
		return false, nil
	}
	plan, err := pyproject.PlanBuild(cmd.Context(), contextArg, pyproject.PlanBuildOptions{Base: f.base})
	if err != nil {
		return false, err
	}
	if f.printPlan {
		for _, l := range plan.Project.Explain() {
			fmt.Fprintln(g.Out, l)
		}
		fmt.Fprintln(g.Out)
		_, err := g.Out.Write(plan.Files.Dockerfile)
		return true, err
	}
	if !quiet {
		fmt.Fprintf(g.Err, "no Dockerfile in %s: building a generated one for %s (see --print-plan)\n", contextArg, plan.Summary())
		for _, w := range plan.Project.Warnings {
			fmt.Fprintln(g.Err, "WARNING:", w)
		}
	}
	opts.DockerfileContent = plan.Files.Dockerfile
	opts.DefaultDockerignore = plan.Files.Dockerignore
	if _, set := opts.BuildArgs["BASE"]; f.base != "" && !set {
		opts.BuildArgs["BASE"] = f.base
	}
	return false, nil
}

// buildProgress prints build events in BuildKit's plain style:
//
//	#3 [2/5] COPY requirements.txt .
//	#3 DONE 0.0s
//	#4 [3/5] RUN pip install -r requirements.txt
//	#4 0.412 Collecting flask
//	#4 CACHED
type buildProgress struct {
	mu    sync.Mutex
	w     io.Writer
	start time.Time
	began map[int]time.Time
}

func (p *buildProgress) event(ev build.Event) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.began == nil {
		p.began = map[int]time.Time{}
		p.start = time.Now()
	}
	n := ev.Step
	switch {
	case ev.Started:
		p.began[n] = time.Now()
		stage := ""
		if ev.Stage != "" && !strings.HasPrefix(ev.Stage, "stage-") {
			stage = ev.Stage + " "
		}
		fmt.Fprintf(p.w, "#%d [%s%d/%d] %s\n", n, stage, ev.Step, ev.Total, ev.Instruction)
	case ev.Done && ev.Err != nil:
		fmt.Fprintf(p.w, "#%d ERROR: %v\n", n, ev.Err)
	case ev.Done && ev.Cached:
		fmt.Fprintf(p.w, "#%d CACHED\n", n)
	case ev.Done:
		fmt.Fprintf(p.w, "#%d DONE %.1fs\n", n, ev.Duration.Seconds())
	case len(ev.Output) > 0:
		t := time.Since(p.began[n]).Seconds()
		for _, line := range bytes.Split(bytes.TrimRight(ev.Output, "\n"), []byte("\n")) {
			fmt.Fprintf(p.w, "#%d %.3f %s\n", n, t, line)
		}
	}
}
