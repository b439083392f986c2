package pyproject

import (
	"fmt"
	"strings"

	"github.com/berthsh/berth/pkg/errdefs"
)

// Kind is what a project's main process is.
type Kind string

const (
	KindWeb    Kind = "web"    // serves HTTP on Project.Port
	KindWorker Kind = "worker" // background worker (Celery, RQ, a package's __main__)
	KindScript Kind = "script" // runs a script to completion or forever, no HTTP port
)

// Framework is a recognised application framework.
type Framework string

const (
	FrameworkNone      Framework = ""
	FrameworkFlask     Framework = "flask"
	FrameworkFastAPI   Framework = "fastapi"
	FrameworkStarlette Framework = "starlette"
	FrameworkDjango    Framework = "django"
	FrameworkCelery    Framework = "celery"
	FrameworkRQ        Framework = "rq"
)

// Server is the program that serves a web app.
type Server string

const (
	ServerNone     Server = ""         // not a web app (worker, script)
	ServerGunicorn Server = "gunicorn" // WSGI (Flask, Django)
	ServerUvicorn  Server = "uvicorn"  // ASGI (FastAPI, Starlette)
	ServerFlask    Server = "flask"    // `flask run`, Flask's development server
	ServerDjango   Server = "django"   // `manage.py runserver`, Django's development server
	ServerPython   Server = "python"   // the app serves itself (app.run(), uvicorn.run())
)

// DepSource is where the project's dependencies are declared.
type DepSource string

const (
	DepsNone         DepSource = ""                 // no dependencies declared
	DepsRequirements DepSource = "requirements.txt" // requirements.txt (+ -r/-c includes)
	DepsPEP621       DepSource = "pyproject"        // [project] dependencies, no lock file
	DepsPoetry       DepSource = "poetry"           // [tool.poetry] (+ poetry.lock)
	DepsUV           DepSource = "uv"               // uv.lock
	DepsPDM          DepSource = "pdm"              // pdm.lock
	DepsPipfile      DepSource = "pipfile"          // Pipfile (+ Pipfile.lock)
	DepsSetup        DepSource = "setup"            // setup.py / setup.cfg install_requires
)

// DetectOptions override what Detect would otherwise find. Zero values mean
// "detect". Options win over [tool.berth] in pyproject.toml, which wins over
// detection.
type DetectOptions struct {
	// App is the application object as "module:attr" (e.g. "api.main:app",
	// "mysite.wsgi:application"); for workers and scripts a module name.
	App string
	// Framework forces the framework (see the Framework constants).
	Framework string
	// Server forces the server: "gunicorn", "uvicorn", "flask", "django"
	// or "python".
	Server string
	// Port is the port a web app listens on.
	Port int
	// PythonVersion forces the Python version ("3.12"); it must be a
	// major.minor version.
	PythonVersion string
	// Kind forces the process kind: "web", "worker" or "script".
	Kind string
	// Command replaces the generated CMD (exec form).
	Command []string
}

// PythonVersion is the chosen CPython version and why.
type PythonVersion struct {
	Version     string   // "3.12" (major.minor; the image tag is python:<Version>-slim)
	Reason      string   // e.g. "requires-python >=3.10 in pyproject.toml: newest known version satisfying it"
	Constraints []string // every constraint found, "file: spec"
}

// Requirement is one dependency, as declared.
type Requirement struct {
	Name     string   // normalised (PEP 503: lower case, runs of -_. as -)
	Spec     string   // version specifier as written, "" if none
	Extras   []string // requested extras, normalised
	Marker   string   // environment marker, "" if none
	Editable bool     // a -e line or a path dependency
	Origin   string   // "requirements.txt:3", "pyproject.toml", ...
}

// Dependencies describes how to install the project's dependencies.
type Dependencies struct {
	Source DepSource
	// Manifests are the files (relative to the project, slash-separated)
	// that determine the installed dependencies: the Dockerfile copies
	// only these before installing, so the dependency layer is keyed by
	// them and app code changes never reinstall dependencies.
	Manifests []string
	// Lock is the lock file in use, "" if none ("uv.lock", "poetry.lock",
	// "pdm.lock", "Pipfile.lock").
	Lock string
	// Requirements are the direct dependencies.
	Requirements []Requirement
	// Pinned are the exact "name==version" pins the lock file holds, in
	// every group (nil without a lock). The build installs the subset
	// reachable from the main dependencies, read from the lock at build
	// time.
	Pinned []string
	// InstallProject is true when the project itself gets installed with
	// pip after its dependencies: a setup.py/setup.cfg project, or a
	// pyproject.toml with a [build-system] that declares console scripts or
	// uses a src/ layout. Other projects run from /app as they are.
	InstallProject bool
	// Main is the requirements file pip installs with -r when Source is
	// DepsRequirements.
	Main string
}

// App is the application entry point.
type App struct {
	Framework Framework
	// Module and Attr name the application object ("app.main", "app"); for
	// Django, the WSGI application; for scripts, Module is the file
	// ("main.py") and Attr is empty.
	Module string
	Attr   string
	// Factory is true when Attr is an application factory
	// (Flask's create_app) to be called.
	Factory bool
	// File and Line locate the definition ("app.py", 3).
	File string
	Line int
	// Django only.
	DjangoSettings  string // settings module, "mysite.settings"
	WSGIApplication string // WSGI_APPLICATION, "mysite.wsgi.application"
	StaticRoot      string // STATIC_ROOT as written, "" if unset
	ManagePy        string // path of manage.py, "manage.py"
}

// Ref returns "module:attr" (with "()" for a factory), or Module alone.
func (a App) Ref() string {
	if a.Attr == "" {
		return a.Module
	}
	if a.Factory {
		return a.Module + ":" + a.Attr + "()"
	}
	return a.Module + ":" + a.Attr
}

// Process is one Procfile line.
type Process struct {
	Name    string // "web", "worker", "release", ...
	Command string // as written
}

// Project is the build plan for a Python project.
type Project struct {
	// Dir is the project directory as given to Detect.
	Dir    string
	Python PythonVersion
	Deps   Dependencies
	App    App
	Kind   Kind
	Server Server
	// Port is the port a web app listens on (0 for workers and scripts).
	Port int
	// Command is the exec-form command the image runs.
	Command []string
	// Release is the exec-form command to run before a new release
	// (Django migrations), nil if none. It is never run at container start.
	Release []string
	// Procfile holds the Procfile's processes, in file order.
	Procfile []Process
	// SrcLayout is true when packages live under src/.
	SrcLayout bool
	// Reasons says what was detected and why, one line per decision.
	Reasons []string
	// Warnings are things the user should know (e.g. a development server
	// is used because no production server is a dependency).
	Warnings []string
}

// Explain returns what was detected and why, for `berth init` and
// `berth build --print-plan`.
func (p *Project) Explain() []string {
	var out []string
	out = append(out, "python: "+p.Python.Version)
	deps := string(p.Deps.Source)
	if deps == "" {
		deps = "none"
	}
	if p.Deps.Lock != "" {
		deps += " with " + p.Deps.Lock
	}
	if len(p.Deps.Manifests) > 0 {
		deps += " (" + strings.Join(p.Deps.Manifests, ", ") + ")"
	}
	out = append(out, "dependencies: "+deps)
	app := string(p.Kind)
	if p.App.Framework != FrameworkNone {
		app = string(p.App.Framework) + " " + app
	}
	if ref := p.App.Ref(); ref != "" {
		app += " " + ref
	}
	out = append(out, "app: "+app)
	if p.Kind == KindWeb {
		out = append(out, fmt.Sprintf("server: %s on port %d", p.Server, p.Port))
	}
	out = append(out, "command: "+strings.Join(p.Command, " "))
	if p.Release != nil {
		out = append(out, "release: "+strings.Join(p.Release, " "))
	}
	if len(p.Reasons) > 0 {
		out = append(out, "why:")
		for _, r := range p.Reasons {
			out = append(out, "  - "+r)
		}
	}
	for _, w := range p.Warnings {
		out = append(out, "warning: "+w)
	}
	return out
}

// GenerateOptions tune Generate.
type GenerateOptions struct {
	// Base is the base image; "" means python:<version>-slim.
	Base string
}

// Files are the generated files' contents.
type Files struct {
	Dockerfile   []byte
	Dockerignore []byte
	Compose      []byte
}

// AmbiguityError reports two or more equally likely candidates. It matches
// errdefs.ErrInvalidArgument with errors.Is.
type AmbiguityError struct {
	What       string   // "application", "framework", ...
	Candidates []string // e.g. "api.py:3 app = Flask(__name__)"
	Flag       string   // the flag that settles it, e.g. "--app"
	Key        string   // the [tool.berth] key, e.g. "app"
	Example    string   // an example value, e.g. "api:app"
}

func (e *AmbiguityError) Error() string {
	ex := e.Example
	if ex == "" {
		ex = "..."
	}
	return fmt.Sprintf("ambiguous %s: found %d equally likely candidates: %s; choose one with %s %s or in pyproject.toml with [tool.berth] %s = %q",
		e.What, len(e.Candidates), strings.Join(e.Candidates, ", "), e.Flag, ex, e.Key, ex)
}

func (e *AmbiguityError) Unwrap() error { return errdefs.ErrInvalidArgument }

// FileError is an error in one of the project's files, at a known line
// (0 when unknown). It matches errdefs.ErrInvalidArgument with errors.Is.
type FileError struct {
	File   string // relative to the project
	Line   int
	Column int
	Msg    string
}

func (e *FileError) Error() string {
	switch {
	case e.Line > 0 && e.Column > 0:
		return fmt.Sprintf("%s:%d:%d: %s", e.File, e.Line, e.Column, e.Msg)
	case e.Line > 0:
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	}
	return e.File + ": " + e.Msg
}

func (e *FileError) Unwrap() error { return errdefs.ErrInvalidArgument }
