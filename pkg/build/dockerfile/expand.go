package dockerfile

import (
	"fmt"
	"maps"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/linter"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
	"github.com/moby/buildkit/util/suggest"
)

// expander expands one stage's commands in its scope.
type expander struct {
	pl *planner
	sc *Scope

	cmdSet, entrypointSet, healthSet *instructions.Command
}

// word returns the single-word expander for cmd, which reports undefined
// variables.
func (e *expander) word(cmd instructions.Command, lint *linter.Linter, lex *shell.Lex) instructions.SingleWordExpander {
	return func(w string) (string, error) {
		res, err := lex.ProcessWordWithMatches(w, e.sc)
		e.reportUndefined(cmd, lint, res.Unmatched)
		return res.Result, err
	}
}

func (e *expander) reportUndefined(cmd instructions.Command, lint *linter.Linter, unmatched map[string]struct{}) {
	if !e.sc.baseKnown {
		return
	}
	for _, k := range slices.Sorted(maps.Keys(unmatched)) {
		if e.sc.declared(k) {
			continue
		}
		match, _ := suggest.Search(k, e.sc.Keys(), true)
		lint.Run(&linter.RuleUndefinedVar, cmd.Location(), linter.RuleUndefinedVar.Format(k, match))
	}
}

// command expands one command in place, applies its effect on the scope
// and returns it as a Step.
func (e *expander) command(ci cmdInfo) (Step, error) {
	f := e.pl.f
	cmd := ci.cmd
	lint := e.pl.lint.WithMergedConfigFromComments(cmd.Comments())
	word := e.word(cmd, lint, e.pl.lex)
	fail := func(err error) error {
		return f.errAt(cmd.Location(), cmd.Name(), "%v", err)
	}

	step := Step{
		Instruction:  cmd,
		Original:     commandSource(cmd),
		Line:         ci.line,
		OnBuild:      ci.onbuild,
		From:         ci.from,
		MountSources: ci.mounts,
	}
	if ci.onbuild {
		step.Original = "ONBUILD " + step.Original
	}

	if c, ok := cmd.(*instructions.ArgCommand); ok {
		for i, a := range c.Args {
			r, err := e.arg(a, word)
			if err != nil {
				return Step{}, fail(err)
			}
			c.Args[i] = r
			e.sc.declare(r)
		}
	} else if ex, ok := cmd.(instructions.SupportsSingleWordExpansion); ok {
		if err := ex.Expand(word); err != nil {
			return Step{}, fail(err)
		}
	}
	if ex, ok := cmd.(instructions.SupportsSingleWordExpansionRaw); ok {
		// Heredoc bodies (COPY <<EOF with an unquoted delimiter) keep
		// their quotes; only variables are replaced.
		raw := shell.NewLex('\\')
		raw.SkipProcessQuotes = true
		if err := ex.ExpandRaw(e.word(cmd, lint, raw)); err != nil {
			return Step{}, fail(err)
		}
	}

	switch c := cmd.(type) {
	case *instructions.EnvCommand:
		for _, kv := range c.Env {
			if kv.NoDelim {
				lint.Run(&linter.RuleLegacyKeyValueFormat, c.Location(), linter.RuleLegacyKeyValueFormat.Format(c.Name()))
			}
			e.sc.setEnv(kv.Key, kv.Value)
		}
	case *instructions.LabelCommand:
		for _, kv := range c.Labels {
			if kv.NoDelim {
				lint.Run(&linter.RuleLegacyKeyValueFormat, c.Location(), linter.RuleLegacyKeyValueFormat.Format(c.Name()))
			}
		}
	case *instructions.ExposeCommand:
		var ports []string
		for _, p := range c.Ports {
			words, err := e.pl.lex.ProcessWords(p, e.sc)
			if err != nil {
				return Step{}, fail(err)
			}
			for _, w := range words {
				ps, err := parsePort(w, c, lint)
				if err != nil {
					return Step{}, fail(err)
				}
				ports = append(ports, ps...)
			}
		}
		c.Ports = ports
	case *instructions.WorkdirCommand:
		if !e.sc.workdirSet && !path.IsAbs(c.Path) {
			lint.Run(&linter.RuleWorkdirRelativePath, c.Location(), linter.RuleWorkdirRelativePath.Format(c.Path))
		}
		e.sc.workdirSet = true
		e.sc.workdir = ResolveWorkdir(e.sc.Workdir(), c.Path)
	case *instructions.ShellCommand:
		e.sc.shell = slices.Clone(c.Shell)
	case *instructions.CmdCommand:
		e.usedOnce(c, &e.cmdSet, lint)
		if c.PrependShell && len(e.sc.shell) == 0 {
			lint.Run(&linter.RuleJSONArgsRecommended, c.Location(), linter.RuleJSONArgsRecommended.Format(c.Name()))
		}
	case *instructions.EntrypointCommand:
		e.usedOnce(c, &e.entrypointSet, lint)
		if c.PrependShell && len(e.sc.shell) == 0 {
			lint.Run(&linter.RuleJSONArgsRecommended, c.Location(), linter.RuleJSONArgsRecommended.Format(c.Name()))
		}
	case *instructions.HealthCheckCommand:
		e.usedOnce(c, &e.healthSet, lint)
	}

	step.Env = e.sc.Env()
	step.BuildEnv = e.sc.BuildEnv()
	step.Args = e.sc.Args()
	step.Workdir = e.sc.Workdir()
	step.Shell = e.sc.Shell()
	return step, nil
}

// usedOnce warns about the earlier of two CMD, ENTRYPOINT or HEALTHCHECK
// instructions in a stage: only the last one counts.
func (e *expander) usedOnce(c instructions.Command, prev **instructions.Command, lint *linter.Linter) {
	if *prev != nil {
		lint.Run(&linter.RuleMultipleInstructionsDisallowed, (**prev).Location(), linter.RuleMultipleInstructionsDisallowed.Format(c.Name()))
	}
	*prev = &c
}

// arg resolves one ARG declaration (see Scope).
func (e *expander) arg(a instructions.KeyValuePairOptional, word instructions.SingleWordExpander) (instructions.KeyValuePairOptional, error) {
	bv, hasValue := e.pl.buildArgs[a.Key]
	if hasValue {
		e.pl.consumed[a.Key] = true
		v := bv
		a.Value = &v
		return a, nil
	}
	if a.Value == nil {
		if v, ok := e.pl.globals.Get(a.Key); ok {
			a.Value = &v
		}
		return a, nil
	}
	v, err := word(*a.Value)
	if err != nil {
		return a, err
	}
	a.Value = &v
	return a, nil
}

// ResolveWorkdir is the working directory after "WORKDIR p" when the
// current one is cur: p itself when absolute, else p under cur; cleaned.
func ResolveWorkdir(cur, p string) string {
	if cur == "" {
		cur = "/"
	}
	if !path.IsAbs(p) {
		p = path.Join(cur, p)
	}
	return path.Clean(p)
}

// parsePort turns one EXPOSE word ("80", "53/udp", "8000-8002") into
// "port/proto" entries, as Docker records them.
func parsePort(raw string, c instructions.Command, lint *linter.Linter) ([]string, error) {
	parts := strings.Split(raw, ":")
	if len(parts) > 1 {
		lint.Run(&linter.RuleExposeInvalidFormat, c.Location(), linter.RuleExposeInvalidFormat.Format(raw))
	}
	spec := parts[len(parts)-1]
	port, proto, _ := strings.Cut(spec, "/")
	if port == "" {
		return nil, fmt.Errorf("invalid port %q: no port specified", raw)
	}
	switch strings.ToLower(proto) {
	case "":
		proto = "tcp"
	case "tcp", "udp", "sctp":
		if proto != strings.ToLower(proto) {
			lint.Run(&linter.RuleExposeProtoCasing, c.Location(), linter.RuleExposeProtoCasing.Format(raw))
		}
	default:
		return nil, fmt.Errorf("invalid port %q: invalid proto %q", raw, proto)
	}
	lo, hi, isRange := strings.Cut(port, "-")
	start, err := portNumber(lo)
	if err != nil {
		return nil, fmt.Errorf("invalid port %q: %v", raw, err)
	}
	end := start
	if isRange {
		if end, err = portNumber(hi); err != nil {
			return nil, fmt.Errorf("invalid port %q: %v", raw, err)
		}
		if end < start {
			return nil, fmt.Errorf("invalid port range %q", port)
		}
	}
	out := make([]string, 0, end-start+1)
	for n := start; n <= end; n++ {
		out = append(out, strconv.Itoa(n)+"/"+strings.ToLower(proto))
	}
	return out, nil
}

func portNumber(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a port number", s)
	}
	if n < 0 || n > 65535 {
		return 0, fmt.Errorf("port %d out of range (0-65535)", n)
	}
	return n, nil
}
