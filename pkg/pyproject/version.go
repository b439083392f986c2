package pyproject

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/berthsh/berth/pkg/errdefs"
)

// knownPythons are the CPython minor series berth picks from, newest first,
// with the newest patch release known for each (patches are only used to
// evaluate constraints such as "<3.11.4"; the image tag is the minor).
var knownPythons = []struct {
	minor     string
	lastPatch int
}{
	{"3.13", 11},
	{"3.12", 12},
	{"3.11", 14},
	{"3.10", 19},
	{"3.9", 24},
}

// pyVersion is a release version: its numeric components. Pre-, post- and
// dev-release suffixes are dropped (CPython final releases only).
type pyVersion []int

func parseVersion(s string) (pyVersion, bool) {
	s = strings.TrimSpace(s)
	s = strings.TrimPrefix(strings.TrimPrefix(s, "v"), "V")
	if s == "" {
		return nil, false
	}
	var v pyVersion
	for _, part := range strings.Split(s, ".") {
		// Keep the leading digits (3.12.0rc1 -> 3.12.0).
		i := 0
		for i < len(part) && part[i] >= '0' && part[i] <= '9' {
			i++
		}
		if i == 0 {
			return nil, false
		}
		n, err := strconv.Atoi(part[:i])
		if err != nil {
			return nil, false
		}
		v = append(v, n)
		if i < len(part) {
			break
		}
	}
	return v, true
}

func cmpVersion(a, b pyVersion) int {
	n := max(len(a), len(b))
	for i := range n {
		var x, y int
		if i < len(a) {
			x = a[i]
		}
		if i < len(b) {
			y = b[i]
		}
		if x != y {
			if x < y {
				return -1
			}
			return 1
		}
	}
	return 0
}

// prefixMatch reports whether v starts with prefix (wildcard matching,
// "==3.11.*").
func prefixMatch(v, prefix pyVersion) bool {
	for i, p := range prefix {
		x := 0
		if i < len(v) {
			x = v[i]
		}
		if x != p {
			return false
		}
	}
	return true
}

// clause is one "op version" comparison.
type clause struct {
	op       string
	v        pyVersion
	wildcard bool
}

func (c clause) match(v pyVersion) bool {
	switch c.op {
	case "==", "===":
		if c.wildcard {
			return prefixMatch(v, c.v)
		}
		return cmpVersion(v, c.v) == 0
	case "!=":
		if c.wildcard {
			return !prefixMatch(v, c.v)
		}
		return cmpVersion(v, c.v) != 0
	case ">=":
		return cmpVersion(v, c.v) >= 0
	case "<=":
		return cmpVersion(v, c.v) <= 0
	case ">":
		return cmpVersion(v, c.v) > 0
	case "<":
		return cmpVersion(v, c.v) < 0
	}
	return false
}

// Specifier is a parsed version constraint: a disjunction ("||", Poetry) of
// conjunctions ("," or whitespace) of comparisons.
type Specifier struct {
	text string
	any  [][]clause
}

// String returns the specifier as written.
func (s Specifier) String() string { return s.text }

// ParseSpecifier parses a PEP 440 version specifier (==, !=, >=, <=, >, <,
// ~=, ===, wildcards) or a Poetry constraint (^, ~, bare versions, "*",
// "||"). Poetry forms are accepted only when poetry is true; a bare version
// then means "==version".
func ParseSpecifier(text string, poetry bool) (Specifier, error) {
	s := Specifier{text: text}
	bad := func(why string) (Specifier, error) {
		return Specifier{}, fmt.Errorf("version constraint %q: %s: %w", text, why, errdefs.ErrInvalidArgument)
	}
	alts := []string{text}
	if poetry {
		alts = strings.Split(text, "||")
	}
	for _, alt := range alts {
		alt = strings.TrimSpace(alt)
		var conj []clause
		// Split on commas; with poetry also on whitespace between
		// clauses (">=3.9 <3.13").
		var parts []string
		for _, p := range strings.Split(alt, ",") {
			p = strings.TrimSpace(p)
			if poetry {
				parts = append(parts, splitPoetryClauses(p)...)
			} else if p != "" {
				parts = append(parts, p)
			}
		}
		if len(parts) == 0 {
			if alt == "" && len(alts) == 1 && strings.TrimSpace(text) == "" {
				return bad("empty")
			}
			if alt == "" {
				return bad("empty alternative")
			}
		}
		for _, p := range parts {
			cs, err := parseClause(p, poetry)
			if err != nil {
				return bad(err.Error())
			}
			conj = append(conj, cs...)
		}
		s.any = append(s.any, conj)
	}
	return s, nil
}

// splitPoetryClauses splits ">=3.9 <3.13" into its clauses while keeping
// ">= 3.9" together.
func splitPoetryClauses(p string) []string {
	fields := strings.Fields(p)
	var out []string
	for i := 0; i < len(fields); i++ {
		f := fields[i]
		if strings.Trim(f, "<>=!~^") == "" && i+1 < len(fields) { // a lone operator
			f += fields[i+1]
			i++
		}
		out = append(out, f)
	}
	return out
}

func parseClause(p string, poetry bool) ([]clause, error) {
	p = strings.TrimSpace(p)
	if p == "*" && poetry {
		return nil, nil
	}
	var op string
	for _, o := range []string{"===", "~=", "==", "!=", ">=", "<=", ">", "<", "^", "~", "="} {
		if strings.HasPrefix(p, o) {
			op = o
			break
		}
	}
	rest := strings.TrimSpace(p[len(op):])
	if op == "" || op == "=" {
		if !poetry && op == "" {
			return nil, fmt.Errorf("%q has no operator (use ==%s)", p, p)
		}
		if !poetry {
			return nil, fmt.Errorf("%q: unknown operator \"=\" (use ==)", p)
		}
		op = "=="
	}
	if (op == "^" || op == "~") && !poetry {
		return nil, fmt.Errorf("%q: %s is Poetry syntax, not PEP 440 (use ~= or >=,<)", p, op)
	}
	wildcard := false
	if strings.HasSuffix(rest, ".*") {
		if op != "==" && op != "!=" {
			return nil, fmt.Errorf("%q: wildcards only work with == and !=", p)
		}
		wildcard = true
		rest = strings.TrimSuffix(rest, ".*")
	} else if rest == "*" && poetry {
		return nil, nil
	}
	v, ok := parseVersion(rest)
	if !ok {
		return nil, fmt.Errorf("%q: %q is not a version", p, rest)
	}
	switch op {
	case "~=":
		if len(v) < 2 {
			return nil, fmt.Errorf("%q: ~= needs at least two version components", p)
		}
		return []clause{{op: ">=", v: v}, {op: "==", v: v[:len(v)-1], wildcard: true}}, nil
	case "^":
		// ^3.10 -> >=3.10,<4; ^0.2 -> >=0.2,<0.3; ^0.0.3 -> >=0.0.3,<0.0.4
		i := 0
		for i < len(v)-1 && v[i] == 0 {
			i++
		}
		upper := append(pyVersion{}, v[:i+1]...)
		upper[i]++
		return []clause{{op: ">=", v: v}, {op: "<", v: upper}}, nil
	case "~":
		// ~3.10 -> >=3.10,<3.11; ~3 -> >=3,<4; ~3.10.2 -> >=3.10.2,<3.11
		var upper pyVersion
		if len(v) == 1 {
			upper = pyVersion{v[0] + 1}
		} else {
			upper = pyVersion{v[0], v[1] + 1}
		}
		return []clause{{op: ">=", v: v}, {op: "<", v: upper}}, nil
	}
	return []clause{{op: op, v: v, wildcard: wildcard}}, nil
}

// Match reports whether version (e.g. "3.11.4") satisfies s.
func (s Specifier) Match(version string) bool {
	v, ok := parseVersion(version)
	if !ok {
		return false
	}
	return s.match(v)
}

func (s Specifier) match(v pyVersion) bool {
	if len(s.any) == 0 {
		return true
	}
	for _, conj := range s.any {
		ok := true
		for _, c := range conj {
			if !c.match(v) {
				ok = false
				break
			}
		}
		if ok {
			return true
		}
	}
	return false
}

// versionConstraint is a Python version constraint and where it came from.
type versionConstraint struct {
	origin string // "pyproject.toml requires-python"
	spec   Specifier
}

// pickPython returns the newest known CPython minor series with a release
// satisfying every constraint.
func pickPython(cs []versionConstraint) (string, error) {
	for _, k := range knownPythons {
		base, _ := parseVersion(k.minor)
		for patch := k.lastPatch; patch >= 0; patch-- {
			v := append(append(pyVersion{}, base...), patch)
			ok := true
			for _, c := range cs {
				if !c.spec.match(v) {
					ok = false
					break
				}
			}
			if ok {
				return k.minor, nil
			}
		}
	}
	var list []string
	for _, c := range cs {
		list = append(list, fmt.Sprintf("%s %q", c.origin, c.spec.text))
	}
	var known []string
	for _, k := range knownPythons {
		known = append(known, k.minor)
	}
	return "", fmt.Errorf("no known Python version (%s) satisfies %s; set one with --python or [tool.berth] python = \"3.12\" in pyproject.toml: %w",
		strings.Join(known, ", "), strings.Join(list, " and "), errdefs.ErrInvalidArgument)
}
