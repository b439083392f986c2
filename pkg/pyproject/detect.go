package pyproject

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/berthsh/berth/pkg/errdefs"
)

// Detect reads the Python project in dir and returns its build plan. It
// reads files only and never uses the network. It fails with an error
// matching errdefs.ErrNotFound when dir holds no Python project, with an
// *AmbiguityError when two candidates are equally likely, and with a
// *FileError for a broken pyproject.toml (or other manifest).
func Detect(ctx context.Context, dir string, opts DetectOptions) (*Project, error) {
	st, err := os.Stat(dir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("detect python project: %s does not exist: %w", dir, errdefs.ErrNotFound)
		}
		return nil, fmt.Errorf("detect python project: %w", err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("detect python project: %s is not a directory: %w", dir, errdefs.ErrInvalidArgument)
	}
	d := &detector{ctx: ctx, root: dir, opts: opts, p: &Project{Dir: dir}}
	if err := d.run(); err != nil {
		return nil, fmt.Errorf("detect python project in %s: %w", dir, err)
	}
	return d.p, nil
}

type detector struct {
	ctx  context.Context
	root string
	opts DetectOptions
	p    *Project

	pp       map[string]any // pyproject.toml, nil if absent
	berth    berthConfig
	ppPython string // requires-python
	reqs     []Requirement
	scripts  map[string]string // [project.scripts]
	files    map[string]*pyModule
	order    []string // python files in walk order
	hasMain  map[string]bool
}

func (d *detector) reason(format string, args ...any) {
	d.p.Reasons = append(d.p.Reasons, fmt.Sprintf(format, args...))
}

func (d *detector) warn(format string, args ...any) {
	d.p.Warnings = append(d.p.Warnings, fmt.Sprintf(format, args...))
}

func (d *detector) exists(rel string) bool {
	_, err := os.Stat(filepath.Join(d.root, filepath.FromSlash(rel)))
	return err == nil
}

func (d *detector) run() error {
	pp, found, err := readTOML(d.root, "pyproject.toml")
	if err != nil {
		return err
	}
	if found {
		d.pp = pp
		if d.berth, err = parseBerthConfig(pp); err != nil {
			return err
		}
	}
	if err := d.scanPython(); err != nil {
		return err
	}
	if err := d.detectDeps(); err != nil {
		return err
	}
	if d.p.Deps.Source == DepsNone && len(d.order) == 0 && !found {
		return fmt.Errorf("no Python project found: no requirements.txt, pyproject.toml, Pipfile, setup.py, setup.cfg or *.py file; run berth in the project's root directory: %w", errdefs.ErrNotFound)
	}
	if err := d.detectPython(); err != nil {
		return err
	}
	procs, err := readProcfile(d.root)
	if err != nil {
		return err
	}
	d.p.Procfile = procs
	if err := d.detectApp(); err != nil {
		return err
	}
	return d.plan()
}

// skipDirs are never searched for Python code.
var skipDirs = map[string]bool{
	"venv": true, "env": true, "node_modules": true, "site-packages": true, "tests": true, "test": true,
	"migrations": true, "docs": true, "build": true, "dist": true, "__pycache__": true, "testdata": true,
}

// scanPython parses the project's Python files up to three directories
// deep (src/pkg/mod.py), skipping hidden, virtualenv and test directories.
func (d *detector) scanPython() error {
	d.files = map[string]*pyModule{}
	count := 0
	err := filepath.WalkDir(d.root, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return nil // unreadable entries are skipped
		}
		if err := d.ctx.Err(); err != nil {
			return err
		}
		rel, _ := filepath.Rel(d.root, p)
		rel = filepath.ToSlash(rel)
		if e.IsDir() {
			if rel == "." {
				return nil
			}
			name := e.Name()
			if strings.HasPrefix(name, ".") || skipDirs[name] || strings.Count(rel, "/") >= 2 {
				return filepath.SkipDir
			}
			if d.exists(path.Join(rel, "pyvenv.cfg")) {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(rel, ".py") || strings.HasPrefix(path.Base(rel), "test_") || strings.HasSuffix(rel, "_test.py") || path.Base(rel) == "conftest.py" || path.Base(rel) == "setup.py" {
			return nil
		}
		count++
		if count > 2000 {
			return filepath.SkipAll
		}
		info, err := e.Info()
		if err != nil || info.Size() > 1<<20 {
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return nil
		}
		d.files[rel] = parseModule(string(data))
		d.order = append(d.order, rel)
		return nil
	})
	if err != nil {
		return err
	}
	sort.Strings(d.order)
	if info, err := os.Stat(filepath.Join(d.root, "src")); err == nil && info.IsDir() {
		for _, f := range d.order {
			if strings.HasPrefix(f, "src/") && strings.HasSuffix(f, "/__init__.py") {
				d.p.SrcLayout = true
				break
			}
		}
	}
	return nil
}

// moduleName converts a file path to a module name ("src/pkg/app.py" ->
// "pkg.app", "pkg/__init__.py" -> "pkg").
func moduleName(rel string) string {
	rel = strings.TrimPrefix(rel, "src/")
	rel = strings.TrimSuffix(rel, ".py")
	rel = strings.TrimSuffix(rel, "/__init__")
	return strings.ReplaceAll(rel, "/", ".")
}

// moduleFile finds the file of a module name.
func (d *detector) moduleFile(mod string) string {
	p := strings.ReplaceAll(mod, ".", "/")
	for _, c := range []string{p + ".py", p + "/__init__.py", "src/" + p + ".py", "src/" + p + "/__init__.py"} {
		if _, ok := d.files[c]; ok {
			return c
		}
	}
	return ""
}

// detectDeps finds the dependency source, in order of precedence: a lock
// file (uv.lock, poetry.lock, pdm.lock, Pipfile.lock) with its manifest,
// requirements.txt, pyproject.toml ([project] or [tool.poetry]), Pipfile,
// setup.cfg, setup.py.
func (d *detector) detectDeps() error {
	deps := &d.p.Deps
	var projDeps []Requirement
	project := tomlTable(d.pp, "project")
	if project != nil {
		if l, ok := project["dependencies"]; ok {
			list, ok := tomlStrings(l)
			if !ok {
				return &FileError{File: "pyproject.toml", Msg: "[project] dependencies must be an array of strings"}
			}
			for _, s := range list {
				r, ok := parsePEP508(s, "pyproject.toml [project]")
				if !ok {
					return &FileError{File: "pyproject.toml", Msg: fmt.Sprintf("[project] dependencies: cannot parse %q", s)}
				}
				projDeps = append(projDeps, r)
			}
		}
		if rp, ok := project["requires-python"]; ok {
			s, ok := rp.(string)
			if !ok {
				return &FileError{File: "pyproject.toml", Msg: "[project] requires-python must be a string"}
			}
			d.ppPython = s
		}
		if sc := tomlTable(project, "scripts"); sc != nil {
			d.scripts = map[string]string{}
			for k, v := range sc {
				if s, ok := v.(string); ok {
					d.scripts[k] = s
				}
			}
		}
	}
	poetry := tomlTable(d.pp, "tool", "poetry")
	var poetryReqs []Requirement
	var poetryPython string
	if pd := tomlTable(poetry, "dependencies"); pd != nil {
		poetryReqs, poetryPython = poetryDeps(pd, "pyproject.toml [tool.poetry.dependencies]")
	}
	_ = poetryPython // read again by detectPython, with Poetry syntax
	hasBuild := tomlTable(d.pp, "build-system") != nil
	addManifest := func(files ...string) {
		for _, f := range files {
			if d.exists(f) {
				deps.Manifests = append(deps.Manifests, f)
			}
		}
	}
	lockOf := func(name string) error {
		m, _, err := readTOML(d.root, name)
		if err != nil {
			return err
		}
		deps.Lock = name
		deps.Pinned = lockPins(m)
		return nil
	}
	var why string
	switch {
	case d.exists("uv.lock") && d.pp != nil:
		deps.Source, deps.Requirements = DepsUV, projDeps
		if err := lockOf("uv.lock"); err != nil {
			return err
		}
		addManifest("pyproject.toml", "uv.lock")
		why = "uv.lock next to pyproject.toml"
	case d.exists("poetry.lock") && poetry != nil:
		deps.Source, deps.Requirements = DepsPoetry, append(projDeps, poetryReqs...)
		if err := lockOf("poetry.lock"); err != nil {
			return err
		}
		addManifest("pyproject.toml", "poetry.lock")
		why = "[tool.poetry] in pyproject.toml with poetry.lock"
	case d.exists("pdm.lock") && d.pp != nil:
		deps.Source, deps.Requirements = DepsPDM, projDeps
		if err := lockOf("pdm.lock"); err != nil {
			return err
		}
		addManifest("pyproject.toml", "pdm.lock")
		why = "pdm.lock next to pyproject.toml"
	case d.exists("requirements.txt"):
		rf, err := readRequirements(d.root, "requirements.txt")
		if err != nil {
			return err
		}
		deps.Source, deps.Requirements, deps.Main = DepsRequirements, rf.reqs, "requirements.txt"
		addManifest(rf.files...)
		why = fmt.Sprintf("requirements.txt (%d requirements", len(rf.reqs))
		if len(rf.files) > 1 {
			why += ", including " + strings.Join(rf.files[1:], ", ")
		}
		why += ")"
		// Say why the pyproject.toml's own list is not used.
		var other string
		switch {
		case len(projDeps) > 0:
			other = "[project] dependencies"
		case len(poetryReqs) > 0:
			other = "[tool.poetry.dependencies]"
		}
		if other != "" {
			why += "; it wins over the " + other + " in pyproject.toml because, without a lock file, a requirements file is the more exact (usually pinned) set to deploy; to install from pyproject.toml instead, remove requirements.txt or reduce it to a single `.` line"
		}
	case poetry != nil && tomlTable(poetry, "dependencies") != nil:
		deps.Source, deps.Requirements = DepsPoetry, append(projDeps, poetryReqs...)
		addManifest("pyproject.toml")
		why = "[tool.poetry.dependencies] in pyproject.toml (no poetry.lock: versions are resolved at build time)"
	case project != nil:
		deps.Source, deps.Requirements = DepsPEP621, projDeps
		addManifest("pyproject.toml")
		why = "[project] dependencies in pyproject.toml (no lock file)"
	case d.exists("Pipfile"):
		m, _, err := readTOML(d.root, "Pipfile")
		if err != nil {
			return err
		}
		reqs, _ := pipfileDeps(m)
		deps.Source, deps.Requirements = DepsPipfile, reqs
		addManifest("Pipfile")
		why = "Pipfile"
		if d.exists("Pipfile.lock") {
			pins, _, err := pipfileLock(d.root)
			if err != nil {
				return err
			}
			deps.Lock, deps.Pinned = "Pipfile.lock", pins
			addManifest("Pipfile.lock")
			why += " with Pipfile.lock"
		}
	case d.exists("setup.cfg") || d.exists("setup.py"):
		reqs, _, found, err := setupCfg(d.root)
		if err != nil {
			return err
		}
		if !found || len(reqs) == 0 {
			r2, _, _, err := setupPy(d.root)
			if err != nil {
				return err
			}
			reqs = append(reqs, r2...)
		}
		deps.Source, deps.Requirements = DepsSetup, reqs
		addManifest("setup.py", "setup.cfg")
		why = "install_requires in setup.py/setup.cfg"
		deps.InstallProject = true
	default:
		if d.pp != nil {
			addManifest("pyproject.toml")
		}
	}
	// An installable project is installed only when that matters: it
	// declares console scripts, or its packages live under src/. A flat
	// project runs from /app as it is, without needing its build backend.
	hasScripts := len(d.scripts) > 0 || tomlTable(poetry, "scripts") != nil
	if hasBuild && (hasScripts || d.p.SrcLayout) {
		deps.InstallProject = true
	}
	if why != "" {
		d.reason("dependencies from %s", why)
	} else {
		d.reason("no dependency manifest found: only the standard library is available")
	}
	d.reqs = deps.Requirements
	return nil
}

func joinSpec(a, b string) string {
	switch {
	case a == "":
		return b
	case b == "":
		return a
	}
	return a + "," + b
}

var pyVersionFileRE = regexp.MustCompile(`^(?:python-?|cpython-?)?(\d+(?:\.\d+){0,2})`)

// detectPython gathers every Python version constraint and picks the newest
// known CPython satisfying all of them.
func (d *detector) detectPython() error {
	if v := firstNonEmpty(d.opts.PythonVersion, d.berth.Python); v != "" {
		src := "--python"
		if d.opts.PythonVersion == "" {
			src = "[tool.berth] python in pyproject.toml"
		}
		pv, ok := parseVersion(v)
		if !ok || len(pv) < 2 {
			return fmt.Errorf("python version %q from %s: want major.minor, e.g. 3.12: %w", v, src, errdefs.ErrInvalidArgument)
		}
		d.p.Python = PythonVersion{Version: fmt.Sprintf("%d.%d", pv[0], pv[1]), Reason: "set by " + src}
		d.reason("python %s set by %s", d.p.Python.Version, src)
		return nil
	}
	var cs []versionConstraint
	add := func(origin, spec string, poetry bool) error {
		s, err := ParseSpecifier(spec, poetry)
		if err != nil {
			return fmt.Errorf("%s: %w", origin, err)
		}
		cs = append(cs, versionConstraint{origin: origin, spec: s})
		d.p.Python.Constraints = append(d.p.Python.Constraints, origin+": "+spec)
		return nil
	}
	// Exact version files: .python-version, runtime.txt.
	for _, f := range []string{".python-version", "runtime.txt"} {
		data, err := os.ReadFile(filepath.Join(d.root, f))
		if err != nil {
			continue
		}
		line := ""
		for _, l := range strings.Split(string(data), "\n") {
			if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
				line = l
				break
			}
		}
		m := pyVersionFileRE.FindStringSubmatch(line)
		if m == nil {
			return &FileError{File: f, Line: 1, Msg: fmt.Sprintf("%q is not a CPython version (want e.g. 3.12)", line)}
		}
		spec := "==" + m[1]
		if strings.Count(m[1], ".") < 2 {
			spec += ".*"
		}
		if err := add(f, spec, false); err != nil {
			return err
		}
	}
	if d.ppPython != "" {
		if err := add("pyproject.toml requires-python", d.ppPython, false); err != nil {
			return err
		}
	}
	if pd := tomlTable(d.pp, "tool", "poetry", "dependencies"); pd != nil {
		if py, ok := pd["python"].(string); ok && py != "" {
			if err := add("pyproject.toml [tool.poetry.dependencies] python", py, true); err != nil {
				return err
			}
		}
	}
	if m, found, err := readTOML(d.root, "Pipfile"); err != nil {
		return err
	} else if found {
		if _, py := pipfileDeps(m); py != "" {
			spec := "==" + py
			if strings.Count(py, ".") < 2 {
				spec += ".*"
			}
			if err := add("Pipfile [requires]", spec, false); err != nil {
				return err
			}
		}
	}
	if d.p.Deps.Source == DepsSetup {
		if _, py, _, _ := setupCfg(d.root); py != "" {
			if err := add("setup.cfg python_requires", py, false); err != nil {
				return err
			}
		} else if _, py, _, _ := setupPy(d.root); py != "" {
			if err := add("setup.py python_requires", py, false); err != nil {
				return err
			}
		}
	}
	v, err := pickPython(cs)
	if err != nil {
		return err
	}
	d.p.Python.Version = v
	if len(cs) == 0 {
		d.p.Python.Reason = "no version constraint found: newest known version"
	} else {
		d.p.Python.Reason = "newest known version satisfying " + strings.Join(d.p.Python.Constraints, "; ")
	}
	d.reason("python %s: %s", v, d.p.Python.Reason)
	return nil
}

// overrideSource names where an override came from.
func overrideSource(fromOpts bool, flag, key string) string {
	if fromOpts {
		return flag
	}
	return "[tool.berth] " + key + " in pyproject.toml"
}

func firstNonEmpty(s ...string) string {
	for _, x := range s {
		if x != "" {
			return x
		}
	}
	return ""
}

// hasDist reports whether the project depends on a distribution, directly
// or through a well-known extra (fastapi[standard] brings uvicorn).
func (d *detector) hasDist(name string) bool {
	if hasDep(d.reqs, name) {
		return true
	}
	for _, r := range d.reqs {
		if name == "uvicorn" && (r.Name == "fastapi" || r.Name == "starlette") {
			for _, e := range r.Extras {
				if e == "standard" || e == "all" || e == "full" {
					return true
				}
			}
		}
	}
	for _, pin := range d.p.Deps.Pinned {
		if n, _, _ := strings.Cut(pin, "=="); n == name {
			return true
		}
	}
	return false
}
