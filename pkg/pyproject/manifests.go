package pyproject

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/pelletier/go-toml/v2"
)

// readTOML decodes a TOML file into a generic map; a syntax error becomes a
// *FileError with the line and column.
func readTOML(root, rel string) (map[string]any, bool, error) {
	data, err := os.ReadFile(filepath.Join(root, rel))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, false, nil
		}
		return nil, false, fmt.Errorf("read %s: %w", rel, err)
	}
	m := map[string]any{}
	if err := toml.Unmarshal(data, &m); err != nil {
		var de *toml.DecodeError
		if errors.As(err, &de) {
			line, col := de.Position()
			msg := strings.TrimPrefix(de.Error(), "toml: ")
			return nil, true, &FileError{File: rel, Line: line, Column: col, Msg: "invalid TOML: " + msg}
		}
		return nil, true, &FileError{File: rel, Msg: "invalid TOML: " + err.Error()}
	}
	return m, true, nil
}

// tomlTable returns m[key] as a table.
func tomlTable(m map[string]any, keys ...string) map[string]any {
	cur := m
	for _, k := range keys {
		next, ok := cur[k].(map[string]any)
		if !ok {
			return nil
		}
		cur = next
	}
	return cur
}

func tomlString(m map[string]any, key string) (string, bool) {
	s, ok := m[key].(string)
	return s, ok
}

func tomlStrings(v any) ([]string, bool) {
	list, ok := v.([]any)
	if !ok {
		return nil, false
	}
	out := make([]string, 0, len(list))
	for _, e := range list {
		s, ok := e.(string)
		if !ok {
			return nil, false
		}
		out = append(out, s)
	}
	return out, true
}

// berthConfig is [tool.berth] in pyproject.toml.
type berthConfig struct {
	App, Framework, Server, Python, Kind string
	Port                                 int
	Command                              []string
}

func parseBerthConfig(pp map[string]any) (berthConfig, error) {
	var c berthConfig
	t := tomlTable(pp, "tool", "berth")
	if t == nil {
		if _, ok := tomlTable(pp, "tool")["berth"]; ok {
			return c, &FileError{File: "pyproject.toml", Msg: "[tool.berth] must be a table"}
		}
		return c, nil
	}
	bad := func(key, want string) error {
		return &FileError{File: "pyproject.toml", Msg: fmt.Sprintf("[tool.berth] %s must be %s", key, want)}
	}
	for k, v := range t {
		switch k {
		case "app", "framework", "server", "python", "kind":
			s, ok := v.(string)
			if !ok {
				return c, bad(k, "a string")
			}
			switch k {
			case "app":
				c.App = s
			case "framework":
				c.Framework = s
			case "server":
				c.Server = s
			case "python":
				c.Python = s
			case "kind":
				c.Kind = s
			}
		case "port":
			n, ok := v.(int64)
			if !ok || n < 1 || n > 65535 {
				return c, bad(k, "an integer from 1 to 65535")
			}
			c.Port = int(n)
		case "command":
			if s, ok := v.(string); ok {
				f, err := shellFields(s)
				if err != nil || len(f) == 0 {
					return c, bad(k, "a command (a string or an array of strings)")
				}
				c.Command = f
			} else if l, ok := tomlStrings(v); ok && len(l) > 0 {
				c.Command = l
			} else {
				return c, bad(k, "a string or an array of strings")
			}
		default:
			return c, &FileError{File: "pyproject.toml", Msg: fmt.Sprintf("[tool.berth] has unknown key %q (known: app, command, framework, kind, port, python, server)", k)}
		}
	}
	return c, nil
}

// poetryDeps converts [tool.poetry.dependencies] into requirements and
// returns the python constraint.
func poetryDeps(t map[string]any, origin string) ([]Requirement, string) {
	var reqs []Requirement
	var python string
	names := make([]string, 0, len(t))
	for k := range t {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, name := range names {
		v := t[name]
		if strings.EqualFold(name, "python") {
			python, _ = v.(string)
			continue
		}
		r := Requirement{Name: normName(name), Origin: origin}
		switch x := v.(type) {
		case string:
			r.Spec = x
		case map[string]any:
			r.Spec, _ = tomlString(x, "version")
			if l, ok := tomlStrings(x["extras"]); ok {
				for _, e := range l {
					r.Extras = append(r.Extras, normName(e))
				}
			}
			if _, ok := x["path"]; ok {
				r.Editable = true
			}
			if opt, _ := x["optional"].(bool); opt {
				continue
			}
		case []any: // multiple constraints
		}
		reqs = append(reqs, r)
	}
	return reqs, python
}

// pipfile reads Pipfile: [packages] and [requires] python_version.
func pipfileDeps(m map[string]any) ([]Requirement, string) {
	var reqs []Requirement
	pk := tomlTable(m, "packages")
	names := make([]string, 0, len(pk))
	for k := range pk {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, name := range names {
		r := Requirement{Name: normName(name), Origin: "Pipfile"}
		switch x := pk[name].(type) {
		case string:
			if x != "*" {
				r.Spec = x
			}
		case map[string]any:
			r.Spec, _ = tomlString(x, "version")
			if r.Spec == "*" {
				r.Spec = ""
			}
			if l, ok := tomlStrings(x["extras"]); ok {
				for _, e := range l {
					r.Extras = append(r.Extras, normName(e))
				}
			}
			if _, ok := x["path"]; ok {
				r.Editable = true
			}
		}
		reqs = append(reqs, r)
	}
	req := tomlTable(m, "requires")
	py, _ := tomlString(req, "python_full_version")
	if py == "" {
		py, _ = tomlString(req, "python_version")
	}
	return reqs, py
}

// pipfileLock reads Pipfile.lock (JSON).
func pipfileLock(root string) (pins []string, python string, err error) {
	data, err := os.ReadFile(filepath.Join(root, "Pipfile.lock"))
	if err != nil {
		return nil, "", err
	}
	var lock struct {
		Meta struct {
			Requires struct {
				PythonVersion     string `json:"python_version"`
				PythonFullVersion string `json:"python_full_version"`
			} `json:"requires"`
		} `json:"_meta"`
		Default map[string]struct {
			Version string `json:"version"`
		} `json:"default"`
	}
	if err := json.Unmarshal(data, &lock); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			line := 1 + strings.Count(string(data[:min(int(se.Offset), len(data))]), "\n")
			return nil, "", &FileError{File: "Pipfile.lock", Line: line, Msg: "invalid JSON: " + se.Error()}
		}
		return nil, "", &FileError{File: "Pipfile.lock", Msg: "invalid: " + err.Error()}
	}
	for name, p := range lock.Default {
		if strings.HasPrefix(p.Version, "==") {
			pins = append(pins, normName(name)+p.Version)
		}
	}
	sort.Strings(pins)
	python = lock.Meta.Requires.PythonFullVersion
	if python == "" {
		python = lock.Meta.Requires.PythonVersion
	}
	return pins, python, nil
}

// lockPins lists the name==version pins of a TOML lock file with
// [[package]] entries (uv.lock, poetry.lock, pdm.lock), skipping the
// project itself and path/directory packages.
func lockPins(m map[string]any) []string {
	list, _ := m["package"].([]any)
	var pins []string
	for _, e := range list {
		p, ok := e.(map[string]any)
		if !ok {
			continue
		}
		name, _ := tomlString(p, "name")
		ver, _ := tomlString(p, "version")
		if name == "" || ver == "" {
			continue
		}
		if src, ok := p["source"].(map[string]any); ok {
			if _, ok := src["editable"]; ok {
				continue
			}
			if _, ok := src["virtual"]; ok {
				continue
			}
			if t, _ := tomlString(src, "type"); t == "directory" {
				continue
			}
		}
		pins = append(pins, normName(name)+"=="+ver)
	}
	sort.Strings(pins)
	return pins
}

// setupCfg reads [options] install_requires and python_requires.
func setupCfg(root string) (reqs []Requirement, python string, found bool, err error) {
	f, err := os.Open(filepath.Join(root, "setup.cfg"))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, "", false, nil
		}
		return nil, "", false, err
	}
	defer f.Close()
	section, key := "", ""
	sc := bufio.NewScanner(f)
	lineNo := 0
	for sc.Scan() {
		lineNo++
		raw := sc.Text()
		line := strings.TrimSpace(raw)
		if line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";") {
			continue
		}
		if strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]") {
			section, key = strings.TrimSpace(line[1:len(line)-1]), ""
			continue
		}
		cont := raw[0] == ' ' || raw[0] == '\t'
		var val string
		if cont && key != "" {
			val = line
		} else {
			k, v, ok := strings.Cut(line, "=")
			if !ok {
				k, v, ok = strings.Cut(line, ":")
			}
			if !ok {
				key = ""
				continue
			}
			key, val = strings.TrimSpace(k), strings.TrimSpace(v)
		}
		if section != "options" || val == "" {
			continue
		}
		switch key {
		case "install_requires":
			for _, item := range strings.Split(val, ";;") {
				if r, ok := parsePEP508(item, fmt.Sprintf("setup.cfg:%d", lineNo)); ok {
					reqs = append(reqs, r)
				}
			}
		case "python_requires":
			python = val
		}
	}
	return reqs, python, true, sc.Err()
}

// setupPy reads setup(install_requires=[...], python_requires=...) from
// setup.py by parsing, not executing, it.
func setupPy(root string) (reqs []Requirement, python string, found bool, err error) {
	data, err := os.ReadFile(filepath.Join(root, "setup.py"))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, "", false, nil
		}
		return nil, "", false, err
	}
	m := parseModule(string(data))
	consts := map[string][]token{}
	for _, ln := range m.lines {
		if ln.indent == 0 && len(ln.toks) > 2 && ln.toks[0].kind == tName && ln.toks[1].text == "=" {
			consts[ln.toks[0].text] = ln.toks[2:]
		}
	}
	for _, c := range m.calls {
		if q := m.resolve(c.fn); q != "setuptools.setup" && q != "distutils.core.setup" && c.fn != "setup" {
			continue
		}
		ir := c.kwargs["install_requires"]
		if len(ir) == 1 && ir[0].kind == tName {
			ir = consts[ir[0].text]
		}
		for _, t := range ir {
			if t.kind == tString {
				if r, ok := parsePEP508(t.text, fmt.Sprintf("setup.py:%d", c.line)); ok {
					reqs = append(reqs, r)
				}
			}
		}
		if s, ok := stringValue(c.kwargs["python_requires"]); ok {
			python = s
		}
	}
	return reqs, python, true, nil
}

// procfile reads a Procfile.
func readProcfile(root string) ([]Process, error) {
	data, err := os.ReadFile(filepath.Join(root, "Procfile"))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return nil, err
	}
	var out []Process
	for i, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, cmd, ok := strings.Cut(line, ":")
		if !ok || strings.TrimSpace(cmd) == "" || !procNameRE.MatchString(strings.TrimSpace(name)) {
			return nil, &FileError{File: "Procfile", Line: i + 1, Msg: "expected \"name: command\""}
		}
		out = append(out, Process{Name: strings.TrimSpace(name), Command: strings.TrimSpace(cmd)})
	}
	return out, nil
}

var procNameRE = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// envPort returns PORT from .env or .flaskenv.
func envPort(root string) (int, string) {
	for _, name := range []string{".env", ".flaskenv"} {
		data, err := os.ReadFile(filepath.Join(root, name))
		if err != nil {
			continue
		}
		for i, line := range strings.Split(string(data), "\n") {
			line = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(line), "export "))
			k, v, ok := strings.Cut(line, "=")
			if !ok || strings.TrimSpace(k) != "PORT" {
				continue
			}
			v = strings.Trim(strings.TrimSpace(v), `"'`)
			if n, err := strconv.Atoi(v); err == nil && n > 0 && n < 65536 {
				return n, fmt.Sprintf("%s:%d", name, i+1)
			}
		}
	}
	return 0, ""
}

// shellFields splits a command line the way a POSIX shell splits words
// (quotes and backslashes), without expansion.
func shellFields(s string) ([]string, error) {
	var out []string
	var cur strings.Builder
	in := false
	var q byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case q != 0:
			if c == q {
				q = 0
			} else if c == '\\' && q == '"' && i+1 < len(s) && strings.IndexByte(`"\$`+"`", s[i+1]) >= 0 {
				i++
				cur.WriteByte(s[i])
			} else {
				cur.WriteByte(c)
			}
		case c == '\'' || c == '"':
			q, in = c, true
		case c == '\\' && i+1 < len(s):
			i++
			cur.WriteByte(s[i])
			in = true
		case c == ' ' || c == '\t':
			if in {
				out = append(out, cur.String())
				cur.Reset()
				in = false
			}
		default:
			cur.WriteByte(c)
			in = true
		}
	}
	if q != 0 {
		return nil, fmt.Errorf("unterminated quote in %q", s)
	}
	if in {
		out = append(out, cur.String())
	}
	return out, nil
}
