package pyproject

import (
	"strconv"
	"strings"
)

// A small tokenizer and statement parser for the parts of Python berth
// needs: imports, "name = Call(...)" and "name = 'string'" assignments,
// "def name(", "if __name__ == '__main__':" and calls used as statements
// (app.run(port=5000)). It never executes anything and tolerates code it
// does not understand by skipping it.

type tokKind int

const (
	tName tokKind = iota
	tNumber
	tString
	tOp
)

type token struct {
	kind tokKind
	text string // for strings, the decoded value (escapes are kept as written)
	raw  string
}

// pyLine is one logical line: its tokens, its first physical line number
// and its indentation (columns, tabs to multiples of 8).
type pyLine struct {
	line   int
	indent int
	toks   []token
}

// tokenize splits src into logical lines.
func tokenize(src string) []pyLine {
	var lines []pyLine
	var cur pyLine
	depth := 0
	lineNo := 1
	atLineStart := true
	col := 0
	flush := func() {
		if len(cur.toks) > 0 {
			lines = append(lines, cur)
		}
		cur = pyLine{}
	}
	i := 0
	for i < len(src) {
		c := src[i]
		if atLineStart {
			col = 0
			for i < len(src) && (src[i] == ' ' || src[i] == '\t' || src[i] == '\f') {
				if src[i] == '\t' {
					col = (col/8 + 1) * 8
				} else {
					col++
				}
				i++
			}
			atLineStart = false
			continue
		}
		switch {
		case c == '\n':
			lineNo++
			i++
			if depth == 0 {
				flush()
			}
			atLineStart = depth == 0
			if depth > 0 {
				atLineStart = false
			}
		case c == '\\' && i+1 < len(src) && src[i+1] == '\n':
			i += 2
			lineNo++
		case c == '\\' && i+2 < len(src) && src[i+1] == '\r' && src[i+2] == '\n':
			i += 3
			lineNo++
		case c == ' ' || c == '\t' || c == '\r' || c == '\f':
			i++
		case c == '#':
			for i < len(src) && src[i] != '\n' {
				i++
			}
		case isStringStart(src, i):
			start := i
			startLine := lineNo
			val, n, nl := scanString(src, i)
			i += n
			lineNo += nl
			if len(cur.toks) == 0 {
				cur.line, cur.indent = startLine, col
			}
			cur.toks = append(cur.toks, token{kind: tString, text: val, raw: src[start:i]})
		case isNameStart(c):
			j := i
			for j < len(src) && isNameChar(src[j]) {
				j++
			}
			add(&cur, lineNo, col, token{kind: tName, text: src[i:j], raw: src[i:j]})
			i = j
		case c >= '0' && c <= '9':
			j := i
			for j < len(src) && (isNameChar(src[j]) || src[j] == '.') {
				j++
			}
			add(&cur, lineNo, col, token{kind: tNumber, text: src[i:j], raw: src[i:j]})
			i = j
		default:
			op := string(c)
			if i+1 < len(src) {
				two := src[i : i+2]
				switch two {
				case "==", "!=", "<=", ">=", "**", "//", "->", ":=", "+=", "-=", "*=", "/=", "|=", "&=":
					op = two
				}
			}
			switch op {
			case "(", "[", "{":
				depth++
			case ")", "]", "}":
				if depth > 0 {
					depth--
				}
			}
			if op == ";" && depth == 0 {
				// "a = 1; b = 2": separate statements, same indent.
				ind := cur.indent
				flush()
				cur.indent = ind
				cur.line = lineNo
				i++
				continue
			}
			add(&cur, lineNo, col, token{kind: tOp, text: op, raw: op})
			i += len(op)
		}
	}
	flush()
	return lines
}

func add(cur *pyLine, line, col int, t token) {
	if len(cur.toks) == 0 {
		cur.line, cur.indent = line, col
	}
	cur.toks = append(cur.toks, t)
}

func isNameStart(c byte) bool {
	return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c >= 0x80
}

func isNameChar(c byte) bool { return isNameStart(c) || (c >= '0' && c <= '9') }

// isStringStart reports whether a string literal (with optional r/b/u/f
// prefixes) starts at i.
func isStringStart(src string, i int) bool {
	j := i
	for j < len(src) && j-i < 2 && strings.ContainsRune("rRbBuUfF", rune(src[j])) {
		j++
	}
	if j < len(src) && (src[j] == '\'' || src[j] == '"') {
		// A prefix must not be the tail of a longer name.
		return j == i || i == 0 || !isNameChar(src[i-1])
	}
	return false
}

// scanString scans a string literal at i; it returns its value, its length
// and the newlines it spans.
func scanString(src string, i int) (string, int, int) {
	start := i
	raw := false
	for src[i] != '\'' && src[i] != '"' {
		if src[i] == 'r' || src[i] == 'R' {
			raw = true
		}
		i++
	}
	q := src[i]
	triple := i+2 < len(src) && src[i+1] == q && src[i+2] == q
	var b strings.Builder
	nl := 0
	if triple {
		i += 3
		for i < len(src) {
			if src[i] == '\\' && !raw && i+1 < len(src) {
				if src[i+1] == '\n' {
					nl++
				}
				b.WriteByte(src[i+1])
				i += 2
				continue
			}
			if i+2 < len(src) && src[i] == q && src[i+1] == q && src[i+2] == q {
				return b.String(), i + 3 - start, nl
			}
			if src[i] == '\n' {
				nl++
			}
			b.WriteByte(src[i])
			i++
		}
		return b.String(), len(src) - start, nl
	}
	i++
	for i < len(src) && src[i] != '\n' {
		if src[i] == '\\' && i+1 < len(src) {
			if raw {
				b.WriteByte(src[i])
			}
			b.WriteByte(src[i+1])
			if src[i+1] == '\n' {
				nl++
			}
			i += 2
			continue
		}
		if src[i] == q {
			return b.String(), i + 1 - start, nl
		}
		b.WriteByte(src[i])
		i++
	}
	return b.String(), i - start, nl // unterminated: stop at the line end
}

// pyModule is what berth extracts from one Python file.
type pyModule struct {
	imports     map[string]string // local name -> qualified name ("Flask" -> "flask.Flask")
	assigns     []pyAssign        // module-level "name = ..." assignments
	defs        map[string]int    // module-level function names -> line
	calls       []pyCall          // calls used as statements, at any level
	mainGuard   int               // line of `if __name__ == "__main__":`, 0 if none
	mainCalls   []pyCall          // calls inside the main guard
	importsAny  map[string]bool   // top-level packages imported anywhere
	lines       []pyLine
	hasMainCall bool
}

// pyAssign is "target = value" at module level.
type pyAssign struct {
	target string
	line   int
	call   *pyCall // value is a call
	str    *string // value is a string literal
	expr   string  // value as source text (tokens joined)
}

// pyCall is a call expression.
type pyCall struct {
	fn     string // dotted callee as written ("app.run", "Flask")
	args   []string
	kwargs map[string][]token
	pos    [][]token
	line   int
}

// kwInt returns an integer keyword argument.
func (c *pyCall) kwInt(name string) (int, bool) {
	t := c.kwargs[name]
	if len(t) == 1 && t[0].kind == tNumber {
		n, err := strconv.Atoi(t[0].text)
		return n, err == nil
	}
	return 0, false
}

// parseModule parses Python source.
func parseModule(src string) *pyModule {
	m := &pyModule{imports: map[string]string{}, defs: map[string]int{}, importsAny: map[string]bool{}}
	m.lines = tokenize(src)
	guardIndent := -1
	for _, ln := range m.lines {
		t := ln.toks
		if guardIndent >= 0 && ln.indent <= guardIndent {
			guardIndent = -1
		}
		inGuard := guardIndent >= 0
		switch {
		case isName(t, 0, "import"):
			for _, part := range splitTop(t[1:], ",") {
				name, alias := dottedAlias(part)
				if name == "" {
					continue
				}
				m.importsAny[strings.Split(name, ".")[0]] = true
				if ln.indent != 0 {
					continue
				}
				if alias != "" {
					m.imports[alias] = name
				} else {
					m.imports[strings.Split(name, ".")[0]] = strings.Split(name, ".")[0]
				}
			}
			continue
		case isName(t, 0, "from"):
			idx := -1
			for i, tk := range t {
				if tk.kind == tName && tk.text == "import" {
					idx = i
					break
				}
			}
			if idx < 0 {
				continue
			}
			mod := joinTokens(t[1:idx])
			if !strings.HasPrefix(mod, ".") {
				m.importsAny[strings.Split(mod, ".")[0]] = true
			}
			if ln.indent != 0 {
				continue
			}
			rest := t[idx+1:]
			if len(rest) > 0 && rest[0].text == "(" {
				rest = rest[1:]
				if len(rest) > 0 && rest[len(rest)-1].text == ")" {
					rest = rest[:len(rest)-1]
				}
			}
			for _, part := range splitTop(rest, ",") {
				name, alias := dottedAlias(part)
				if name == "" || name == "*" {
					continue
				}
				if alias == "" {
					alias = name
				}
				m.imports[alias] = mod + "." + name
			}
			continue
		case isName(t, 0, "def") && len(t) > 1 && ln.indent == 0:
			m.defs[t[1].text] = ln.line
			continue
		case isName(t, 0, "async") && isName(t, 1, "def") && len(t) > 2 && ln.indent == 0:
			m.defs[t[2].text] = ln.line
			continue
		case isName(t, 0, "if") && ln.indent == 0 && isMainGuard(t[1:]):
			m.mainGuard = ln.line
			guardIndent = ln.indent
			continue
		}
		// name = value
		if len(t) >= 3 && t[0].kind == tName && t[1].text == "=" {
			if ln.indent == 0 {
				a := pyAssign{target: t[0].text, line: ln.line, expr: joinTokens(t[2:])}
				if c, ok := parseCall(t[2:]); ok {
					c.line = ln.line
					a.call = c
				} else if s, ok := stringValue(t[2:]); ok {
					a.str = &s
				}
				m.assigns = append(m.assigns, a)
			} else if c, ok := parseCall(t[2:]); ok {
				c.line = ln.line
				m.calls = append(m.calls, *c)
			}
			continue
		}
		if c, ok := parseCall(t); ok {
			c.line = ln.line
			m.calls = append(m.calls, *c)
			if inGuard {
				m.mainCalls = append(m.mainCalls, *c)
			}
		}
	}
	return m
}

func isName(t []token, i int, name string) bool {
	return i < len(t) && t[i].kind == tName && t[i].text == name
}

// isMainGuard matches `__name__ == "__main__" :` (either order).
func isMainGuard(t []token) bool {
	if len(t) != 4 || t[1].text != "==" || t[3].text != ":" {
		return false
	}
	a, b := t[0], t[2]
	return (a.kind == tName && a.text == "__name__" && b.kind == tString && b.text == "__main__") ||
		(b.kind == tName && b.text == "__name__" && a.kind == tString && a.text == "__main__")
}

// splitTop splits tokens on sep at bracket depth 0.
func splitTop(t []token, sep string) [][]token {
	var out [][]token
	depth := 0
	start := 0
	for i, tk := range t {
		if tk.kind == tOp {
			switch tk.text {
			case "(", "[", "{":
				depth++
			case ")", "]", "}":
				depth--
			}
			if depth == 0 && tk.text == sep {
				out = append(out, t[start:i])
				start = i + 1
			}
		}
	}
	if start < len(t) {
		out = append(out, t[start:])
	}
	return out
}

// dottedAlias parses "a.b.c as d".
func dottedAlias(t []token) (name, alias string) {
	for i, tk := range t {
		if tk.kind == tName && tk.text == "as" {
			if i+1 < len(t) {
				alias = t[i+1].text
			}
			return joinTokens(t[:i]), alias
		}
	}
	return joinTokens(t), ""
}

func joinTokens(t []token) string {
	var b strings.Builder
	for i, tk := range t {
		if i > 0 && tk.kind != tOp && t[i-1].kind != tOp {
			b.WriteByte(' ')
		}
		b.WriteString(tk.raw)
	}
	return b.String()
}

// dotted reads a dotted name at the start of t: "a.b.c" and its length.
func dotted(t []token) (string, int) {
	if len(t) == 0 || t[0].kind != tName {
		return "", 0
	}
	parts := []string{t[0].text}
	i := 1
	for i+1 < len(t) && t[i].text == "." && t[i+1].kind == tName {
		parts = append(parts, t[i+1].text)
		i += 2
	}
	return strings.Join(parts, "."), i
}

// parseCall parses `dotted(args)` spanning all of t.
func parseCall(t []token) (*pyCall, bool) {
	name, n := dotted(t)
	if n == 0 || n >= len(t) || t[n].text != "(" || t[len(t)-1].text != ")" {
		return nil, false
	}
	// The "(" at n must close at the last token.
	depth := 0
	for i := n; i < len(t); i++ {
		if t[i].kind != tOp {
			continue
		}
		switch t[i].text {
		case "(", "[", "{":
			depth++
		case ")", "]", "}":
			depth--
			if depth == 0 && i != len(t)-1 {
				return nil, false
			}
		}
	}
	c := &pyCall{fn: name, kwargs: map[string][]token{}}
	for _, arg := range splitTop(t[n+1:len(t)-1], ",") {
		if len(arg) >= 2 && arg[0].kind == tName && arg[1].text == "=" {
			c.kwargs[arg[0].text] = arg[2:]
			continue
		}
		c.pos = append(c.pos, arg)
		c.args = append(c.args, joinTokens(arg))
	}
	return c, true
}

// stringValue returns the value of a string literal expression
// (adjacent literals are concatenated).
func stringValue(t []token) (string, bool) {
	if len(t) == 0 {
		return "", false
	}
	var b strings.Builder
	for _, tk := range t {
		if tk.kind != tString || strings.ContainsAny(strings.ToLower(prefixOf(tk.raw)), "fb") {
			return "", false
		}
		b.WriteString(tk.text)
	}
	return b.String(), true
}

func prefixOf(raw string) string {
	i := strings.IndexAny(raw, `'"`)
	if i < 0 {
		return ""
	}
	return raw[:i]
}

// resolve returns the qualified name of a dotted reference using the
// module's imports ("Flask" -> "flask.Flask", "fastapi.FastAPI" stays).
func (m *pyModule) resolve(name string) string {
	head, rest, _ := strings.Cut(name, ".")
	if q, ok := m.imports[head]; ok {
		if rest != "" {
			return q + "." + rest
		}
		return q
	}
	return name
}
