package dockerfile

import (
	"errors"
	"fmt"
	"maps"
	"runtime"
	"slices"
	"strconv"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/linter"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
	"github.com/moby/buildkit/util/suggest"

	"github.com/berthsh/berth/pkg/errdefs"
	"github.com/berthsh/berth/pkg/reference"
)

// PlanOptions are the inputs of Plan besides the Dockerfile.
type PlanOptions struct {
	// BuildArgs are the --build-arg values. An ARG only takes one when
	// it is declared (in the stage, or before the first FROM for FROM
	// lines). Proxy variables (HTTP_PROXY, https_proxy, NO_PROXY, ...) need
	// no declaration: they go to RUN's environment (BuildPlan.ProxyEnv)
	// but are kept out of the image and its history.
	BuildArgs map[string]string
	// Target is the stage to build (case-insensitive); "" means the last.
	Target string
	// BuildPlatform is the platform the build runs on; nil means
	// linux/<GOARCH>. It sets BUILDPLATFORM, BUILDOS, BUILDARCH, ...
	BuildPlatform *v1.Platform
	// TargetPlatform is the platform of the image; nil means the build
	// platform. It sets TARGETPLATFORM, TARGETOS, TARGETARCH, ...
	TargetPlatform *v1.Platform
	// BaseConfigs are the configs of external base images, keyed by the
	// normalised reference (Base.Image). A stage whose base image is not
	// here starts with only PATH in its environment, the default shell and
	// working directory, and reports no undefined variables.
	BaseConfigs map[string]BaseConfig
}

// BaseConfig is what planning uses from a base image's config.
type BaseConfig struct {
	Env        []string // "K=V"
	Shell      []string
	WorkingDir string
	OnBuild    []string // ONBUILD triggers, run at the start of the stage
}

// BaseKind says what a stage starts from.
type BaseKind int

const (
	// BaseScratch is the empty image.
	BaseScratch BaseKind = iota
	// BaseStage is an earlier stage of the same Dockerfile.
	BaseStage
	// BaseImage is an image reference, to be pulled or found locally.
	BaseImage
)

func (k BaseKind) String() string {
	switch k {
	case BaseScratch:
		return "scratch"
	case BaseStage:
		return "stage"
	case BaseImage:
		return "image"
	}
	return "unknown"
}

// Base is what a stage starts from.
type Base struct {
	Kind  BaseKind
	Name  string // the FROM argument after expansion
	Stage int    // BaseStage: index of the stage
	Image string // BaseImage: normalised reference, e.g. docker.io/library/python:3.12
}

// SourceKind says where COPY --from or a RUN mount takes files from.
type SourceKind int

const (
	// SourceContext is the build context (or, for cache, tmpfs and secret
	// mounts, nothing).
	SourceContext SourceKind = iota
	// SourceStage is a stage of the Dockerfile.
	SourceStage
	// SourceImage is an image reference.
	SourceImage
)

// Source is where COPY --from or a RUN --mount takes files from.
type Source struct {
	Kind  SourceKind
	Stage int    // SourceStage: index of the stage
	Image string // SourceImage: normalised reference
}

// Stage is one stage of a BuildPlan.
type Stage struct {
	Index    int
	Name     string // lower-cased; "" for an unnamed stage
	Base     Base
	Platform string // --platform after expansion; "" when not given
	Line     int    // line of the FROM instruction
	// Needed reports whether the target needs this stage. Only needed
	// stages have Steps and Scope.
	Needed bool
	// Steps are the stage's instructions, expanded, in order (ONBUILD
	// triggers of a base stage or image first).
	Steps []Step
	// DependsOn are the stages this one needs: its base, COPY --from and
	// RUN --mount from= sources. Sorted.
	DependsOn []int
	// Images are external images used by COPY --from or RUN --mount
	// from=, normalised and sorted (the base image is in Base).
	Images []string
	// Scope is the variable scope at the end of the stage.
	Scope *Scope
}

// DisplayName is the stage's name, or "stage-N" for an unnamed one.
func (s *Stage) DisplayName() string {
	if s.Name != "" {
		return s.Name
	}
	return fmt.Sprintf("stage-%d", s.Index)
}

// BuildPlan is what to build and in which order.
type BuildPlan struct {
	File *File
	// Stages are all stages in file order; Stages[i].Index == i.
	Stages []*Stage
	// Target is the index of the stage to build.
	Target int
	// Waves group the needed stages: every stage depends only on stages
	// in earlier waves, so the stages of one wave can run in parallel.
	Waves [][]int
	// GlobalArgs are the predefined and meta ARG values FROM lines see.
	GlobalArgs []string
	// ProxyEnv are the proxy build args ("K=V"), for RUN only.
	ProxyEnv []string
	// UnusedBuildArgs are build args that no needed ARG declared. Sorted.
	UnusedBuildArgs []string
	// Warnings are the file's parse warnings followed by the plan's.
	Warnings []Warning
}

// TargetStage is the stage to build.
func (p *BuildPlan) TargetStage() *Stage { return p.Stages[p.Target] }

// UnusedBuildArgsWarning is Docker's warning for unused build args, or ""
// when all were used.
func (p *BuildPlan) UnusedBuildArgsWarning() string {
	if len(p.UnusedBuildArgs) == 0 {
		return ""
	}
	return fmt.Sprintf("[Warning] One or more build-args [%s] were not consumed", strings.Join(p.UnusedBuildArgs, " "))
}

// proxyArgs are build args every build accepts without an ARG.
var proxyArgs = []string{"HTTP_PROXY", "HTTPS_PROXY", "FTP_PROXY", "NO_PROXY", "ALL_PROXY"}

func isProxyArg(k string) bool {
	return slices.ContainsFunc(proxyArgs, func(p string) bool { return strings.EqualFold(p, k) })
}

// builtinArg reports build args that are never reported as unused.
func builtinArg(k string) bool {
	return isProxyArg(k) || k == "SOURCE_DATE_EPOCH" || strings.HasPrefix(k, "BUILDKIT_")
}

// cmdInfo is a command of a stage with its resolved sources.
type cmdInfo struct {
	cmd     instructions.Command
	onbuild bool
	line    int
	from    Source   // COPY --from
	mounts  []Source // RUN --mount from=, one per mount
}

type planner struct {
	f         *File
	opts      PlanOptions
	lex       *shell.Lex
	lint      *linter.Linter
	p         *BuildPlan
	stages    []instructions.Stage
	byName    map[string]int
	globals   vars
	allArgs   map[string]bool // meta ARG keys
	buildArgs map[string]string
	consumed  map[string]bool
	cmds      [][]cmdInfo
	deps      []map[int]instructions.Command // dependency -> command causing it (nil for FROM)
}

// Plan resolves f for opts: the FROM lines, the target and the stages it
// needs, the order they can run in, and every needed stage's expanded
// steps. f is not modified, so one File can be planned many times. Errors
// are *Error values (errdefs.ErrInvalidArgument).
func Plan(f *File, opts PlanOptions) (*BuildPlan, error) {
	if f == nil || f.ast == nil {
		return nil, fmt.Errorf("plan: no parsed Dockerfile: %w", errdefs.ErrInvalidArgument)
	}
	// Expansion works in place, so plan on fresh copies of the commands.
	// The warnings of this parse are already in f.Warnings; the linter
	// must not be nil (BuildKit dereferences it for "# check=" comments).
	stages, metaArgs, err := instructions.Parse(f.ast, linter.New(&linter.Config{}))
	if err != nil {
		return nil, f.locate(err, f.ast)
	}
	pl := &planner{
		f:         f,
		opts:      opts,
		lex:       shell.NewLex(f.EscapeToken),
		p:         &BuildPlan{File: f, Warnings: slices.Clone(f.Warnings)},
		stages:    stages,
		byName:    map[string]int{},
		allArgs:   map[string]bool{},
		buildArgs: maps.Clone(opts.BuildArgs),
		consumed:  map[string]bool{},
	}
	if pl.buildArgs == nil {
		pl.buildArgs = map[string]string{}
	}
	pl.lint = f.newLinter(&pl.p.Warnings)

	if err := pl.globalArgs(metaArgs); err != nil {
		return nil, err
	}
	if err := pl.resolveStages(); err != nil {
		return nil, err
	}
	if err := pl.resolveTarget(); err != nil {
		return nil, err
	}
	if err := pl.resolveDeps(); err != nil {
		return nil, err
	}
	if err := pl.checkCycles(); err != nil {
		return nil, err
	}
	if err := pl.prune(); err != nil {
		return nil, err
	}
	if err := pl.expand(); err != nil {
		return nil, err
	}
	pl.finish()
	if f.lintCheck.ReturnAsError && len(pl.p.Warnings) > 0 {
		rules := make([]string, 0, len(pl.p.Warnings))
		for _, w := range pl.p.Warnings {
			if !slices.Contains(rules, w.Rule) {
				rules = append(rules, w.Rule)
			}
		}
		return nil, &Error{File: f.Name, Err: fmt.Errorf("lint violation found for rules: %s (the check directive sets error=true)", strings.Join(rules, ", "))}
	}
	return pl.p, nil
}

func defaultPlatform() v1.Platform {
	p := v1.Platform{OS: "linux", Architecture: runtime.GOARCH}
	if runtime.GOARCH == "arm" {
		p.Variant = "v7"
	}
	return p
}

// globalArgs sets the predefined ARGs and the meta ARGs.
func (pl *planner) globalArgs(metaArgs []instructions.ArgCommand) error {
	bp := defaultPlatform()
	if pl.opts.BuildPlatform != nil {
		bp = *pl.opts.BuildPlatform
	}
	tp := bp
	if pl.opts.TargetPlatform != nil {
		tp = *pl.opts.TargetPlatform
	}
	target := pl.opts.Target
	if target == "" {
		target = pl.stages[len(pl.stages)-1].Name
	}
	if target == "" {
		target = "default"
	}
	platformString := func(p v1.Platform) string {
		q := p
		q.OSVersion = ""
		return q.String()
	}
	for _, kv := range [][2]string{
		{"BUILDPLATFORM", platformString(bp)},
		{"BUILDOS", bp.OS},
		{"BUILDOSVERSION", bp.OSVersion},
		{"BUILDARCH", bp.Architecture},
		{"BUILDVARIANT", bp.Variant},
		{"TARGETPLATFORM", tp.String()},
		{"TARGETOS", tp.OS},
		{"TARGETOSVERSION", tp.OSVersion},
		{"TARGETARCH", tp.Architecture},
		{"TARGETVARIANT", tp.Variant},
		{"TARGETSTAGE", target},
	} {
		v := kv[1]
		if ov, ok := pl.buildArgs[kv[0]]; ok {
			v = ov
			pl.consumed[kv[0]] = true
		}
		pl.globals.set(kv[0], v)
	}

	for _, c := range metaArgs {
		for _, kp := range c.Args {
			if v, ok := pl.buildArgs[kp.Key]; ok {
				pl.consumed[kp.Key] = true
				kp.Value = &v
			} else if kp.Value != nil {
				v, _, err := pl.lex.ProcessWord(*kp.Value, &pl.globals)
				if err != nil {
					return pl.f.errAt(c.Location(), "ARG", "%v", err)
				}
				kp.Value = &v
			}
			if kp.Value != nil {
				pl.globals.set(kp.Key, *kp.Value)
			}
			pl.allArgs[kp.Key] = true
		}
	}
	pl.p.GlobalArgs = pl.globals.slice()
	return nil
}

// resolveStages expands every FROM line and finds each stage's base.
func (pl *planner) resolveStages() error {
	reserved := map[string]bool{"context": true, "scratch": true}
	for i := range pl.stages {
		st := &pl.stages[i]
		lint := pl.lint.WithMergedConfigFromComments(st.Comments)
		ps := &Stage{Index: i, Name: st.Name, Line: lineOf(st.Location)}

		res, err := pl.lex.ProcessWordWithMatches(st.BaseName, &pl.globals)
		if err != nil {
			return pl.f.errAt(st.Location, "FROM", "%v", err)
		}
		pl.reportUnusedFromArgs(res.Unmatched, st.Location, lint)
		if res.Result == "" {
			return pl.f.errAt(st.Location, "FROM", "base name (%s) should not be blank", st.BaseName)
		}
		ps.Base.Name = res.Result

		if st.Platform != "" {
			pr, err := pl.lex.ProcessWordWithMatches(st.Platform, &pl.globals)
			if err != nil {
				return pl.f.errAt(st.Location, "FROM", "--platform: %v", err)
			}
			pl.reportUnusedFromArgs(pr.Unmatched, st.Location, lint)
			if pr.Result == "" {
				return pl.f.errAt(st.Location, "FROM", "empty platform value from expression %s", st.Platform)
			}
			p, err := v1.ParsePlatform(pr.Result)
			if err != nil || p.OS == "" || p.Architecture == "" {
				return pl.f.errAt(st.Location, "FROM", "--platform=%s: invalid platform %q: want os/arch[/variant]", st.Platform, pr.Result)
			}
			ps.Platform = pr.Result
		}

		switch j, ok := pl.byName[strings.ToLower(res.Result)]; {
		case res.Result == "scratch":
			ps.Base.Kind = BaseScratch
		case ok:
			ps.Base.Kind = BaseStage
			ps.Base.Stage = j
		default:
			ref, err := reference.Parse(res.Result)
			if err != nil {
				err := fmt.Errorf("%q is neither a stage defined before this one nor a valid image reference", res.Result)
				return pl.f.errAt(st.Location, "FROM", "%v", suggest.WrapError(err, res.Result, slices.Collect(maps.Keys(pl.byName)), false))
			}
			ps.Base.Kind = BaseImage
			ps.Base.Image = ref.String()
		}

		if st.Name != "" {
			if reserved[st.Name] {
				lint.Run(&linter.RuleReservedStageName, st.Location, linter.RuleReservedStageName.Format(st.Name))
			}
			if _, dup := pl.byName[st.Name]; dup {
				lint.Run(&linter.RuleDuplicateStageName, st.Location, linter.RuleDuplicateStageName.Format(st.Name))
			}
			pl.byName[st.Name] = i
		}
		pl.p.Stages = append(pl.p.Stages, ps)
	}
	return nil
}

func (pl *planner) reportUnusedFromArgs(unmatched map[string]struct{}, loc []parser.Range, lint *linter.Linter) {
	known := slices.Collect(maps.Keys(pl.allArgs))
	known = append(known, pl.globals.Keys()...)
	for _, k := range slices.Sorted(maps.Keys(unmatched)) {
		if slices.Contains(known, k) {
			continue
		}
		match, _ := suggest.Search(k, known, true)
		lint.Run(&linter.RuleUndefinedArgInFrom, loc, linter.RuleUndefinedArgInFrom.Format(k, match))
	}
}

func (pl *planner) stageNames() []string {
	var names []string
	for _, s := range pl.p.Stages {
		if s.Name != "" {
			names = append(names, s.Name)
		}
	}
	return names
}

func (pl *planner) resolveTarget() error {
	pl.p.Target = len(pl.stages) - 1
	if pl.opts.Target == "" {
		return nil
	}
	i, ok := pl.byName[strings.ToLower(pl.opts.Target)]
	if !ok {
		names := pl.stageNames()
		list := "the Dockerfile names no stages"
		if len(names) > 0 {
			list = "stages: " + strings.Join(names, ", ")
		}
		err := suggest.WrapError(fmt.Errorf("target stage %q could not be found", pl.opts.Target), pl.opts.Target, names, false)
		return &Error{File: pl.f.Name, Err: fmt.Errorf("%w (%s)", err, list)}
	}
	pl.p.Target = i
	return nil
}

// source resolves a COPY --from or mount from= value: a stage name, a
// stage index (allowIndex) or an image reference.
func (pl *planner) source(v string, allowIndex bool) (Source, error) {
	if allowIndex {
		if n, err := strconv.Atoi(v); err == nil {
			if n < 0 || n >= len(pl.stages) {
				return Source{}, fmt.Errorf("invalid stage index %d: the Dockerfile has %d stages", n, len(pl.stages))
			}
			return Source{Kind: SourceStage, Stage: n}, nil
		}
	}
	if i, ok := pl.byName[strings.ToLower(v)]; ok {
		return Source{Kind: SourceStage, Stage: i}, nil
	}
	ref, err := reference.Parse(v)
	if err != nil {
		err := fmt.Errorf("%q is neither a stage name nor a valid image reference", v)
		return Source{}, suggest.WrapError(err, v, slices.Collect(maps.Keys(pl.byName)), false)
	}
	return Source{Kind: SourceImage, Image: ref.String()}, nil
}

// onbuildTriggers are the ONBUILD instructions stage i inherits from its
// base, parsed.
func (pl *planner) onbuildTriggers(i int) ([]cmdInfo, error) {
	ps := pl.p.Stages[i]
	var exprs []string
	switch ps.Base.Kind {
	case BaseStage:
		for _, c := range pl.stages[ps.Base.Stage].Commands {
			if ob, ok := c.(*instructions.OnbuildCommand); ok {
				exprs = append(exprs, ob.Expression)
			}
		}
	case BaseImage:
		exprs = pl.opts.BaseConfigs[ps.Base.Image].OnBuild
	}
	var out []cmdInfo
	for _, expr := range exprs {
		res, err := parser.Parse(strings.NewReader(expr))
		if err != nil {
			return nil, pl.f.errAt(pl.stages[i].Location, "FROM", "ONBUILD trigger %q of the base: %v", expr, err)
		}
		for _, n := range res.AST.Children {
			v, err := instructions.ParseInstructionWithLinter(n, linter.New(&linter.Config{}))
			if err != nil {
				return nil, pl.f.errAt(pl.stages[i].Location, "FROM", "ONBUILD trigger %q of the base: %v", expr, err)
			}
			c, ok := v.(instructions.Command)
			if !ok {
				return nil, pl.f.errAt(pl.stages[i].Location, "FROM", "ONBUILD trigger %q of the base is not an instruction a stage can run", expr)
			}
			out = append(out, cmdInfo{cmd: c, onbuild: true, line: ps.Line})
		}
	}
	return out, nil
}

// resolveDeps finds every stage's commands and what they depend on.
func (pl *planner) resolveDeps() error {
	pl.cmds = make([][]cmdInfo, len(pl.stages))
	pl.deps = make([]map[int]instructions.Command, len(pl.stages))
	for i := range pl.stages {
		ps := pl.p.Stages[i]
		deps := map[int]instructions.Command{}
		images := map[string]bool{}
		if ps.Base.Kind == BaseStage {
			deps[ps.Base.Stage] = nil
		}
		cmds, err := pl.onbuildTriggers(i)
		if err != nil {
			return err
		}
		for _, c := range pl.stages[i].Commands {
			cmds = append(cmds, cmdInfo{cmd: c, line: lineOf(c.Location())})
		}
		for k := range cmds {
			ci := &cmds[k]
			switch c := ci.cmd.(type) {
			case *instructions.CopyCommand:
				if c.From == "" {
					break
				}
				res, err := pl.lex.ProcessWordWithMatches(c.From, &vars{})
				if err != nil || res.Result != c.From {
					return pl.f.errAt(c.Location(), "COPY", "variable expansion is not supported for --from, define a new stage with FROM using ARG from global scope as a workaround")
				}
				src, err := pl.source(c.From, true)
				if err != nil {
					return pl.f.errAt(c.Location(), "COPY", "--from=%s: %v", c.From, err)
				}
				ci.from = src
			case *instructions.RunCommand:
				for _, m := range instructions.GetMounts(c) {
					src := Source{Kind: SourceContext}
					if m.From != "" {
						src, err = pl.source(m.From, false)
						if err != nil {
							return pl.f.errAt(c.Location(), "RUN", "--mount from=%s: %v", m.From, err)
						}
					}
					ci.mounts = append(ci.mounts, src)
				}
			}
			for _, s := range append([]Source{ci.from}, ci.mounts...) {
				switch s.Kind {
				case SourceStage:
					if _, ok := deps[s.Stage]; !ok {
						deps[s.Stage] = ci.cmd
					}
				case SourceImage:
					images[s.Image] = true
				}
			}
		}
		pl.cmds[i] = cmds
		pl.deps[i] = deps
		ps.DependsOn = slices.Sorted(maps.Keys(deps))
		ps.Images = slices.Sorted(maps.Keys(images))
	}
	return nil
}

// checkCycles reports a dependency cycle among all stages, as BuildKit
// does, naming the stages on it.
func (pl *planner) checkCycles() error {
	const (
		unseen = iota
		onPath
		done
	)
	state := make([]int, len(pl.stages))
	var path []int
	var visit func(i int) []int
	visit = func(i int) []int {
		state[i] = onPath
		path = append(path, i)
		for _, d := range pl.p.Stages[i].DependsOn {
			switch state[d] {
			case onPath:
				start := slices.Index(path, d)
				return append(slices.Clone(path[start:]), d)
			case unseen:
				if c := visit(d); c != nil {
					return c
				}
			}
		}
		path = path[:len(path)-1]
		state[i] = done
		return nil
	}
	for i := range pl.stages {
		if state[i] != unseen {
			continue
		}
		if cycle := visit(i); cycle != nil {
			names := make([]string, len(cycle))
			for k, s := range cycle {
				names[k] = pl.p.Stages[s].DisplayName()
			}
			first := pl.p.Stages[cycle[0]]
			loc := pl.stages[cycle[0]].Location
			instr := "FROM"
			if c := pl.deps[cycle[0]][cycle[1]]; c != nil {
				loc, instr = c.Location(), c.Name()
			}
			return pl.f.errAt(loc, instr, "circular dependency detected on stage: %s (%s)", first.DisplayName(), strings.Join(names, " -> "))
		}
	}
	return nil
}

// prune marks the stages the target needs and groups them into waves.
func (pl *planner) prune() error {
	var mark func(i int)
	mark = func(i int) {
		ps := pl.p.Stages[i]
		if ps.Needed {
			return
		}
		ps.Needed = true
		for _, d := range ps.DependsOn {
			mark(d)
		}
	}
	mark(pl.p.Target)

	level := make([]int, len(pl.stages))
	for i, ps := range pl.p.Stages {
		if !ps.Needed {
			continue
		}
		for _, d := range ps.DependsOn {
			if d > i {
				// Docker builds stages in file order, so a stage can only
				// copy from stages defined before it.
				c := pl.deps[i][d]
				return pl.f.errAt(c.Location(), c.Name(), "cannot copy from stage %q, it needs to be defined before current stage %q", pl.p.Stages[d].DisplayName(), ps.DisplayName())
			}
			level[i] = max(level[i], level[d]+1)
		}
		for len(pl.p.Waves) <= level[i] {
			pl.p.Waves = append(pl.p.Waves, nil)
		}
		pl.p.Waves[level[i]] = append(pl.p.Waves[level[i]], i)
	}
	return nil
}

// expand expands the needed stages in file order, each from its base's
// scope.
func (pl *planner) expand() error {
	for i, ps := range pl.p.Stages {
		if !ps.Needed {
			continue
		}
		var sc *Scope
		switch ps.Base.Kind {
		case BaseScratch:
			sc = newScope(nil, true)
		case BaseStage:
			parent := pl.p.Stages[ps.Base.Stage].Scope
			if parent == nil {
				return errors.New("internal error: base stage not expanded")
			}
			sc = parent.clone()
		case BaseImage:
			cfg, ok := pl.opts.BaseConfigs[ps.Base.Image]
			sc = newScope(cfg.Env, ok)
			sc.shell = slices.Clone(cfg.Shell)
			sc.workdir = cfg.WorkingDir
		}
		ex := &expander{pl: pl, sc: sc}
		for _, ci := range pl.cmds[i] {
			step, err := ex.command(ci)
			if err != nil {
				return err
			}
			ps.Steps = append(ps.Steps, step)
		}
		ps.Scope = sc
	}
	return nil
}

func (pl *planner) finish() {
	var unused, proxy []string
	for _, k := range slices.Sorted(maps.Keys(pl.buildArgs)) {
		if isProxyArg(k) {
			proxy = append(proxy, k+"="+pl.buildArgs[k])
		}
		if !pl.consumed[k] && !builtinArg(k) {
			unused = append(unused, k)
		}
	}
	pl.p.UnusedBuildArgs = unused
	pl.p.ProxyEnv = proxy
}
