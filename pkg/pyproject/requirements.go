package pyproject

import (
	"fmt"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"
)

// normName normalises a distribution name (PEP 503).
func normName(s string) string {
	return strings.ToLower(nameSepRE.ReplaceAllString(strings.TrimSpace(s), "-"))
}

var (
	nameSepRE = regexp.MustCompile(`[-_.]+`)
	// PEP 508 name with optional extras at the start of a requirement.
	reqNameRE = regexp.MustCompile(`^([A-Za-z0-9][A-Za-z0-9._-]*)\s*(\[[^\]]*\])?`)
	eggRE     = regexp.MustCompile(`#egg=([A-Za-z0-9][A-Za-z0-9._-]*)`)
)

// parsePEP508 parses one PEP 508 requirement ("flask[async]>=2.2 ; python_version>'3.8'").
func parsePEP508(s, origin string) (Requirement, bool) {
	s = strings.TrimSpace(s)
	var marker string
	sep := ";"
	if strings.Contains(s, "://") {
		sep = " ;" // in URL requirements the marker needs a space before ";"
	}
	if i := strings.Index(s, sep); i >= 0 {
		marker = strings.TrimSpace(s[i+len(sep):])
		s = strings.TrimSpace(s[:i])
	}
	m := reqNameRE.FindStringSubmatch(s)
	if m == nil {
		return Requirement{}, false
	}
	r := Requirement{Name: normName(m[1]), Marker: marker, Origin: origin}
	rest := strings.TrimSpace(s[len(m[0]):])
	if strings.HasPrefix(rest, "@") {
		r.Spec = rest
	} else {
		r.Spec = strings.Trim(rest, "() ")
	}
	if m[2] != "" {
		r.Extras = splitList(strings.Trim(m[2], "[]"))
	}
	return r, true
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, normName(f))
		}
	}
	return out
}

// reqFiles is the result of reading a requirements file and its includes.
type reqFiles struct {
	reqs  []Requirement
	files []string // every file read (slash paths relative to the project), in order
}

// readRequirements reads the requirements file rel (relative to root),
// following -r and -c includes. Constraint files contribute no
// requirements. An include cycle or an include outside root is an error.
func readRequirements(root, rel string) (*reqFiles, error) {
	out := &reqFiles{}
	seen := map[string]bool{}
	if err := readReqFile(root, rel, false, nil, seen, out); err != nil {
		return nil, err
	}
	return out, nil
}

func readReqFile(root, rel string, constraints bool, stack []string, seen map[string]bool, out *reqFiles) error {
	for i, s := range stack {
		if s == rel {
			chain := append(append([]string{}, stack[i:]...), rel)
			return &FileError{File: stack[len(stack)-1], Msg: "requirements include cycle: " + strings.Join(chain, " -> ") + "; remove one of the -r/-c lines"}
		}
	}
	if seen[rel] {
		return nil // included twice (diamond), not a cycle
	}
	seen[rel] = true
	data, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(rel)))
	if err != nil {
		if len(stack) > 0 {
			return &FileError{File: stack[len(stack)-1], Msg: fmt.Sprintf("includes %s, which cannot be read: %v", rel, err)}
		}
		return fmt.Errorf("read %s: %w", rel, err)
	}
	out.files = append(out.files, rel)
	stack = append(stack, rel)
	lines := strings.Split(strings.ReplaceAll(string(data), "\r\n", "\n"), "\n")
	for i := 0; i < len(lines); i++ {
		lineNo := i + 1
		line := lines[i]
		for strings.HasSuffix(line, `\`) && i+1 < len(lines) {
			i++
			line = strings.TrimSuffix(line, `\`) + lines[i]
		}
		line = stripReqComment(line)
		if line == "" {
			continue
		}
		origin := fmt.Sprintf("%s:%d", rel, lineNo)
		if strings.HasPrefix(line, "-") {
			opt, arg := splitOption(line)
			switch opt {
			case "-r", "--requirement", "-c", "--constraint":
				if arg == "" {
					return &FileError{File: rel, Line: lineNo, Msg: opt + " needs a file name"}
				}
				if strings.Contains(arg, "://") {
					return &FileError{File: rel, Line: lineNo, Msg: "remote include " + arg + " is not supported; download it into the project"}
				}
				inc := path.Clean(path.Join(path.Dir(rel), filepath.ToSlash(arg)))
				if inc == ".." || strings.HasPrefix(inc, "../") || path.IsAbs(inc) {
					return &FileError{File: rel, Line: lineNo, Msg: "includes " + arg + ", which is outside the project (the build context)"}
				}
				isC := constraints || opt == "-c" || opt == "--constraint"
				if err := readReqFile(root, inc, isC, stack, seen, out); err != nil {
					return err
				}
			case "-e", "--editable":
				if constraints {
					continue
				}
				r := Requirement{Editable: true, Spec: arg, Origin: origin}
				if m := eggRE.FindStringSubmatch(arg); m != nil {
					r.Name = normName(m[1])
				} else if !strings.Contains(arg, "://") {
					r.Name = normName(path.Base(strings.TrimSuffix(filepath.ToSlash(arg), "/")))
					if arg == "." || arg == "./" {
						r.Name = "."
					}
				}
				out.reqs = append(out.reqs, r)
			default:
				// -i/--index-url, --extra-index-url, -f, --hash,
				// --pre, ...: pip options that select no package.
			}
			continue
		}
		if constraints {
			continue
		}
		// Strip per-requirement options ("pkg==1 --hash=sha256:...").
		if j := strings.Index(line, " --"); j >= 0 {
			line = strings.TrimSpace(line[:j])
		}
		if isPathOrURL(line) {
			r := Requirement{Spec: line, Origin: origin, Editable: !strings.Contains(line, "://")}
			if m := eggRE.FindStringSubmatch(line); m != nil {
				r.Name = normName(m[1])
			}
			out.reqs = append(out.reqs, r)
			continue
		}
		r, ok := parsePEP508(line, origin)
		if !ok {
			return &FileError{File: rel, Line: lineNo, Msg: fmt.Sprintf("cannot parse requirement %q", line)}
		}
		out.reqs = append(out.reqs, r)
	}
	return nil
}

// isPathOrURL reports a requirement given as a local path or a bare URL
// ("./pkg", "/src/pkg", "git+https://host/repo@v1#egg=name", "file:..."),
// as opposed to a PEP 508 "name @ url".
func isPathOrURL(s string) bool {
	return strings.HasPrefix(s, ".") || strings.HasPrefix(s, "/") || strings.HasPrefix(s, "file:") || urlSchemeRE.MatchString(s)
}

var urlSchemeRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9+.-]*://`)

// stripReqComment removes a comment: "#" at the start or after whitespace.
func stripReqComment(line string) string {
	for i := 0; i < len(line); i++ {
		if line[i] == '#' && (i == 0 || line[i-1] == ' ' || line[i-1] == '\t') {
			line = line[:i]
			break
		}
	}
	return strings.TrimSpace(line)
}

// splitOption splits "-r file", "-rfile", "--requirement=file".
func splitOption(line string) (opt, arg string) {
	if strings.HasPrefix(line, "--") {
		if i := strings.IndexAny(line, "= \t"); i >= 0 {
			return line[:i], strings.TrimSpace(line[i+1:])
		}
		return line, ""
	}
	if len(line) < 2 {
		return line, ""
	}
	return line[:2], strings.TrimSpace(line[2:])
}

// hasDep reports whether reqs name the distribution (normalised) or one of
// them requests extra of it providing name (e.g. fastapi[standard] ->
// uvicorn is handled by the caller).
func hasDep(reqs []Requirement, name string) bool {
	for _, r := range reqs {
		if r.Name == name {
			return true
		}
	}
	return false
}
