package dockerfile

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/linter"
	"github.com/moby/buildkit/frontend/dockerfile/parser"

	"github.com/berthsh/berth/pkg/errdefs"
)

// maxDockerfileSize bounds what Parse reads; real Dockerfiles are far
// smaller.
const maxDockerfileSize = 16 << 20

// File is a parsed Dockerfile.
type File struct {
	// Name is the name errors and warnings use, usually "Dockerfile".
	Name string
	// Stages are the build stages in file order, not yet expanded. Stage
	// names are lower-cased.
	Stages []instructions.Stage
	// MetaArgs are the ARG instructions before the first FROM.
	MetaArgs []instructions.ArgCommand
	// EscapeToken is the escape character (`\` or, with the escape
	// directive, a backtick).
	EscapeToken rune
	// Syntax is the "# syntax=" directive's value, "" if there is none.
	// berth has one built-in frontend and ignores it.
	Syntax string
	// Warnings are the lint warnings found while parsing.
	Warnings []Warning

	ast       *parser.Node
	lintCheck *linter.Config
}

// Warning is a lint warning, with BuildKit's rule names and messages.
type Warning struct {
	Rule        string // e.g. "UndefinedVar"
	Description string // the rule's one-line description
	URL         string // documentation of the rule
	Message     string // the specific message
	Line        int    // 0 when unknown
}

// String formats w the way BuildKit prints it:
// "UndefinedVar: Usage of undefined variable '$X' (line 3)".
func (w Warning) String() string {
	return linter.LintFormatShort(w.Rule, w.Message, w.Line)
}

// Error is a Dockerfile error at a known place. It matches
// errdefs.ErrInvalidArgument with errors.Is.
type Error struct {
	File        string // Dockerfile name
	Line        int    // 1-based; 0 when unknown
	Instruction string // upper-case instruction keyword, "" when unknown
	Err         error
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	b.WriteString(": ")
	msg := e.Err.Error()
	if e.Instruction != "" && !mentions(msg, e.Instruction) {
		b.WriteString(e.Instruction + ": ")
	}
	b.WriteString(msg)
	return b.String()
}

// Unwrap gives both the kind (errdefs.ErrInvalidArgument) and the cause.
func (e *Error) Unwrap() []error { return []error{errdefs.ErrInvalidArgument, e.Err} }

// mentions reports whether msg already names the instruction: BuildKit's
// messages use the upper-case keyword ("COPY requires ...").
func mentions(msg, word string) bool {
	if strings.HasPrefix(msg, "unknown instruction:") {
		return true
	}
	re := regexp.MustCompile(`\b` + regexp.QuoteMeta(word) + `\b`)
	return re.MatchString(msg)
}

// Parse reads a Dockerfile from r. name is used in errors and warnings
// ("Dockerfile", or the -f path). Errors are *Error values naming the file,
// the line and the instruction.
func Parse(r io.Reader, name string) (*File, error) {
	if name == "" {
		name = "Dockerfile"
	}
	dt, err := io.ReadAll(io.LimitReader(r, maxDockerfileSize+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	if len(dt) > maxDockerfileSize {
		return nil, &Error{File: name, Err: fmt.Errorf("file is larger than %d bytes", maxDockerfileSize)}
	}

	f := &File{Name: name}
	f.Syntax, _, _, _ = parser.DetectSyntax(dt)
	f.lintCheck = &linter.Config{}
	if v, _, _, ok := parser.ParseDirective("check", dt); ok {
		c, err := linter.ParseLintOptions(v)
		if err != nil {
			return nil, &Error{File: name, Line: 1, Err: fmt.Errorf("check directive: %w", err)}
		}
		f.lintCheck = c
	}
	lint := f.newLinter(&f.Warnings)

	res, err := parser.Parse(bytes.NewReader(dt))
	if err != nil {
		return nil, f.locate(err, nil)
	}
	f.ast = res.AST
	f.EscapeToken = res.EscapeToken
	for _, w := range res.Warnings {
		if w.URL == linter.RuleNoEmptyContinuation.URL && w.Location != nil {
			lint.Run(&linter.RuleNoEmptyContinuation, []parser.Range{*w.Location}, linter.RuleNoEmptyContinuation.Format())
		}
	}

	stages, metaArgs, err := instructions.Parse(res.AST, lint)
	if err != nil {
		return nil, f.locate(err, res.AST)
	}
	if len(stages) == 0 {
		return nil, &Error{File: name, Err: errors.New("the Dockerfile has no FROM instruction, so no stage to build")}
	}
	f.Stages = stages
	f.MetaArgs = metaArgs
	return f, nil
}

// newLinter returns a linter with the file's check directive applied that
// appends to out.
func (f *File) newLinter(out *[]Warning) *linter.Linter {
	cfg := *f.lintCheck
	cfg.Warn = func(rule, desc, url, msg string, loc []parser.Range) {
		line := 0
		if len(loc) > 0 {
			line = loc[0].Start.Line
		}
		*out = append(*out, Warning{Rule: rule, Description: desc, URL: url, Message: msg, Line: line})
	}
	return linter.New(&cfg)
}

// locate turns a BuildKit error into an *Error with the line and, when the
// AST is known, the instruction.
func (f *File) locate(err error, ast *parser.Node) error {
	e := &Error{File: f.Name, Err: err}
	var le *parser.LocationError
	if errors.As(err, &le) {
		// The LocationError's own message is the cause without BuildKit's
		// "dockerfile parse error on line N:" prefix.
		e.Err = le.Unwrap()
		if len(le.Locations) > 0 && len(le.Locations[0]) > 0 {
			e.Line = le.Locations[0][0].Start.Line
		}
	}
	e.Instruction = instructionAt(ast, e.Line)
	return e
}

func instructionAt(ast *parser.Node, line int) string {
	if ast == nil || line <= 0 {
		return ""
	}
	for _, n := range ast.Children {
		if n.StartLine <= line && line <= n.EndLine {
			return strings.ToUpper(n.Value)
		}
	}
	return ""
}

// lineOf is the first line of a command's location.
func lineOf(loc []parser.Range) int {
	if len(loc) == 0 {
		return 0
	}
	return loc[0].Start.Line
}

// errAt builds an *Error for a location in f.
func (f *File) errAt(loc []parser.Range, instr string, format string, args ...any) error {
	return &Error{File: f.Name, Line: lineOf(loc), Instruction: strings.ToUpper(instr), Err: fmt.Errorf(format, args...)}
}
