package pyproject

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/berthsh/berth/pkg/errdefs"
)

func TestDetectCorpus(t *testing.T) {
	tests := []struct {
		dir         string
		kind        Kind
		framework   Framework
		app         string
		python      string
		pyReason    string // substring of Python.Reason
		deps        DepSource
		lock        string
		manifests   []string
		server      Server
		port        int
		command     []string
		release     []string
		installProj bool
		reason      string // substring of one of Reasons
	}{
		{
			dir: "flask-requirements", kind: KindWeb, framework: FrameworkFlask, app: "app:app",
			python: "3.11", pyReason: ".python-version", deps: DepsRequirements,
			manifests: []string{"requirements.txt", "requirements/base.txt"},
			server:    ServerGunicorn, port: 5000,
			command: []string{"gunicorn", "--graceful-timeout", "8", "app:app"},
			reason:  "found flask app app = Flask(__name__) in app.py:4",
		},
		{
			dir: "fastapi-uv", kind: KindWeb, framework: FrameworkFastAPI, app: "app.main:app",
			python: "3.13", pyReason: "requires-python: >=3.10", deps: DepsUV, lock: "uv.lock",
			manifests: []string{"pyproject.toml", "uv.lock"},
			server:    ServerUvicorn, port: 8000,
			command: []string{"uvicorn", "app.main:app", "--host", "0.0.0.0", "--port", "8000"},
			reason:  "app/main.py:3",
		},
		{
			dir: "django-poetry", kind: KindWeb, framework: FrameworkDjango, app: "mysite.wsgi:application",
			python: "3.13", pyReason: "[tool.poetry.dependencies] python: ^3.9", deps: DepsPoetry, lock: "poetry.lock",
			manifests: []string{"pyproject.toml", "poetry.lock"},
			server:    ServerGunicorn, port: 8000,
			command: []string{"gunicorn", "--graceful-timeout", "8", "mysite.wsgi:application"},
			release: []string{"python3", "manage.py", "migrate", "--noinput"},
			reason:  `WSGI_APPLICATION = "mysite.wsgi.application" in mysite/settings.py`,
		},
		{
			dir: "procfile-worker", kind: KindWorker, framework: FrameworkCelery, app: "tasks:app",
			python: "3.13", pyReason: "no version constraint", deps: DepsRequirements,
			manifests: []string{"requirements.txt"},
			command:   []string{"celery", "-A", "tasks", "worker", "--loglevel=INFO"},
			reason:    "Procfile worker process",
		},
		{
			dir: "plain-script", kind: KindScript, app: "main.py",
			python: "3.12", pyReason: "runtime.txt: ==3.12.4", deps: DepsNone,
			command: []string{"python3", "main.py"},
			reason:  `if __name__ == "__main__" in main.py:11`,
		},
		{
			dir: "src-layout", kind: KindWeb, framework: FrameworkFlask, app: "hello.web:create_app()",
			python: "3.11", pyReason: "~=3.11.0", deps: DepsPEP621,
			manifests: []string{"pyproject.toml"},
			server:    ServerGunicorn, port: 8000, installProj: true,
			command: []string{"gunicorn", "--graceful-timeout", "8", "hello.web:create_app()"},
			reason:  "src/hello/web.py:4",
		},
	}
	for _, tt := range tests {
		t.Run(tt.dir, func(t *testing.T) {
			p, err := Detect(context.Background(), filepath.Join("testdata", tt.dir), DetectOptions{})
			if err != nil {
				t.Fatalf("Detect: %v", err)
			}
			check := func(what string, got, want any) {
				t.Helper()
				if got != want {
					t.Errorf("%s = %v, want %v", what, got, want)
				}
			}
			check("kind", p.Kind, tt.kind)
			check("framework", p.App.Framework, tt.framework)
			check("app", p.App.Ref(), tt.app)
			check("python", p.Python.Version, tt.python)
			check("deps", p.Deps.Source, tt.deps)
			check("lock", p.Deps.Lock, tt.lock)
			check("server", p.Server, tt.server)
			check("port", p.Port, tt.port)
			check("install project", p.Deps.InstallProject, tt.installProj)
			if !strings.Contains(p.Python.Reason, tt.pyReason) {
				t.Errorf("python reason %q lacks %q", p.Python.Reason, tt.pyReason)
			}
			if !slices.Equal(p.Deps.Manifests, tt.manifests) {
				t.Errorf("manifests = %q, want %q", p.Deps.Manifests, tt.manifests)
			}
			if !slices.Equal(p.Command, tt.command) {
				t.Errorf("command = %q, want %q", p.Command, tt.command)
			}
			if !slices.Equal(p.Release, tt.release) {
				t.Errorf("release = %q, want %q", p.Release, tt.release)
			}
			if !slices.ContainsFunc(p.Reasons, func(r string) bool { return strings.Contains(r, tt.reason) }) {
				t.Errorf("no reason mentions %q:\n%s", tt.reason, strings.Join(p.Reasons, "\n"))
			}
			explain := strings.Join(p.Explain(), "\n")
			if !strings.Contains(explain, "command: "+strings.Join(tt.command, " ")) {
				t.Errorf("Explain lacks the command:\n%s", explain)
			}
		})
	}
}

func TestDetectDjangoDetails(t *testing.T) {
	p, err := Detect(context.Background(), "testdata/django-poetry", DetectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if p.App.DjangoSettings != "mysite.settings" || p.App.WSGIApplication != "mysite.wsgi.application" || p.App.StaticRoot == "" || p.App.ManagePy != "manage.py" {
		t.Errorf("django app = %+v", p.App)
	}
	// The dev group (pytest) is in the lock but not a direct dependency.
	if hasDep(p.Deps.Requirements, "pytest") || !hasDep(p.Deps.Requirements, "django") {
		t.Errorf("requirements = %+v", p.Deps.Requirements)
	}
}

func TestDetectErrors(t *testing.T) {
	tests := []struct {
		name  string
		dir   string
		files map[string]string
		is    error
		want  []string // substrings of the message
	}{
		{name: "ambiguous corpus", dir: "testdata/ambiguous", is: errdefs.ErrInvalidArgument,
			want: []string{"api:app", "admin:app", "api.py:3", "admin.py:3", "--app", "[tool.berth] app ="}},
		{name: "broken pyproject", dir: "testdata/broken-pyproject", is: errdefs.ErrInvalidArgument,
			want: []string{"pyproject.toml:5:", "invalid TOML"}},
		{name: "empty dir", files: map[string]string{"README.md": "hi"}, is: errdefs.ErrNotFound,
			want: []string{"no Python project", "requirements.txt"}},
		{name: "missing dir", dir: "testdata/does-not-exist", is: errdefs.ErrNotFound},
		{name: "two fastapi apps", files: map[string]string{
			"requirements.txt": "fastapi\nuvicorn\n",
			"a/main.py":        "from fastapi import FastAPI\napp = FastAPI()\n",
			"b/main.py":        "import fastapi\napp = fastapi.FastAPI()\n",
		}, is: errdefs.ErrInvalidArgument, want: []string{"a.main:app", "b.main:app", `app = "a.main:app"`}},
		{name: "two scripts", files: map[string]string{
			"one.py": "if __name__ == '__main__':\n    print(1)\n",
			"two.py": "if '__main__' == __name__:\n    print(2)\n",
		}, is: errdefs.ErrInvalidArgument, want: []string{"one.py:1", "two.py:1", "--app"}},
		{name: "no satisfiable python", files: map[string]string{
			"pyproject.toml":  "[project]\nname='x'\nrequires-python='>=3.12'\n",
			".python-version": "3.10\n",
			"main.py":         "print(1)\n",
		}, is: errdefs.ErrInvalidArgument, want: []string{".python-version", "requires-python", "[tool.berth] python"}},
		{name: "bad tool.berth key", files: map[string]string{
			"pyproject.toml": "[tool.berth]\nprot = 80\n",
			"main.py":        "print(1)\n",
		}, is: errdefs.ErrInvalidArgument, want: []string{`unknown key "prot"`}},
		{name: "requirements cycle", files: map[string]string{
			"requirements.txt": "-r a.txt\n",
			"a.txt":            "flask\n-r b.txt\n",
			"b.txt":            "-r a.txt\n",
			"app.py":           "print(1)\n",
		}, is: errdefs.ErrInvalidArgument, want: []string{"cycle", "a.txt -> b.txt -> a.txt"}},
		{name: "bad requirement", files: map[string]string{
			"requirements.txt": "flask\n!!nope\n",
			"app.py":           "print(1)\n",
		}, is: errdefs.ErrInvalidArgument, want: []string{"requirements.txt:2"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := tt.dir
			if tt.files != nil {
				dir = writeTree(t, tt.files)
			}
			_, err := Detect(context.Background(), dir, DetectOptions{})
			if err == nil {
				t.Fatal("Detect succeeded")
			}
			if !errors.Is(err, tt.is) {
				t.Errorf("error %v is not %v", err, tt.is)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
	var ae *AmbiguityError
	_, err := Detect(context.Background(), "testdata/ambiguous", DetectOptions{})
	if !errors.As(err, &ae) || len(ae.Candidates) != 2 || ae.Key != "app" {
		t.Errorf("ambiguity error = %#v", err)
	}
	// The ambiguity is settled by the option and by [tool.berth].
	p, err := Detect(context.Background(), "testdata/ambiguous", DetectOptions{App: "api:app"})
	if err != nil || p.App.Ref() != "api:app" || p.App.Framework != FrameworkFlask || p.App.File != "api.py" {
		t.Errorf("--app api:app: %+v, %v", p, err)
	}
}

// writeTree writes files (slash paths) into a new temporary directory.
func writeTree(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, data := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestDetectOverridesAndRules(t *testing.T) {
	tests := []struct {
		name    string
		files   map[string]string
		opts    DetectOptions
		check   func(p *Project) bool
		explain string
	}{
		{name: "tool.berth settles app, port, python, server",
			files: map[string]string{
				"pyproject.toml": "[project]\nname='x'\ndependencies=['flask>=2.2','uvicorn']\n[tool.berth]\napp = \"api:app\"\nport = 9000\npython = \"3.10\"\nserver = \"gunicorn\"\n",
				"api.py":         "from flask import Flask\napp = Flask(__name__)\n",
				"admin.py":       "from flask import Flask\napp = Flask(__name__)\n",
			},
			check: func(p *Project) bool {
				return p.App.Ref() == "api:app" && p.Port == 9000 && p.Python.Version == "3.10" && p.Server == ServerGunicorn &&
					slices.Equal(p.Command, []string{"gunicorn", "--graceful-timeout", "8", "api:app"})
			}, explain: "[tool.berth] python"},
		{name: "options win over tool.berth",
			files: map[string]string{
				"pyproject.toml": "[project]\nname='x'\ndependencies=['flask']\n[tool.berth]\nport = 9000\n",
				"app.py":         "from flask import Flask\napp = Flask(__name__)\n",
			},
			opts:  DetectOptions{Port: 7000, PythonVersion: "3.9"},
			check: func(p *Project) bool { return p.Port == 7000 && p.Python.Version == "3.9" }, explain: "--port"},
		{name: "flask without gunicorn uses flask run",
			files: map[string]string{
				"requirements.txt": "Flask==2.2.2\n",
				"web.py":           "import flask\nserver = flask.Flask(__name__)\n",
			},
			check: func(p *Project) bool {
				return p.Server == ServerFlask && slices.Equal(p.Command, []string{"python3", "-m", "flask", "--app", "web:server", "run", "--host", "0.0.0.0", "--port", "8000"}) && len(p.Warnings) == 1
			}, explain: "development server"},
		{name: "fastapi without uvicorn says so",
			files: map[string]string{
				"requirements.txt": "fastapi\n",
				"main.py":          "from fastapi import FastAPI as F\napi = F()\n",
			},
			check: func(p *Project) bool {
				return p.Server == ServerUvicorn && p.Command[0] == "python3" && p.Command[2] == "uvicorn" && p.App.Ref() == "main:api"
			}, explain: "uvicorn is not a declared dependency"},
		{name: "fastapi[standard] brings uvicorn",
			files: map[string]string{
				"requirements.txt": "fastapi[standard]>=0.110\n",
				"main.py":          "from fastapi import FastAPI\napp = FastAPI()\nif __name__ == '__main__':\n    import uvicorn\n    uvicorn.run(app, host='0.0.0.0', port=8080)\n",
			},
			check: func(p *Project) bool { return p.Command[0] == "uvicorn" && p.Port == 8080 }, explain: "uvicorn.run(port=8080)"},
		{name: "procfile web wins with PORT from env",
			files: map[string]string{
				"Procfile":         "web: gunicorn app:app --bind 0.0.0.0:$PORT\nworker: python -m jobs\nrelease: python manage.py migrate\n",
				"requirements.txt": "flask\ngunicorn\n",
				"app.py":           "from flask import Flask\napp = Flask(__name__)\n",
				".env":             "PORT=5050\n",
			},
			check: func(p *Project) bool {
				return p.Kind == KindWeb && p.Port == 5050 && p.App.Ref() == "app:app" && p.Server == ServerGunicorn &&
					slices.Equal(p.Command, []string{"/bin/sh", "-c", "exec gunicorn app:app --bind 0.0.0.0:$PORT"}) &&
					slices.Equal(p.Release, []string{"python", "manage.py", "migrate"})
			}, explain: "PORT in .env:1"},
		{name: "package __main__ is a worker",
			files: map[string]string{
				"requirements.txt":   "rq\n",
				"jobs/__init__.py":   "",
				"jobs/__main__.py":   "print('working')\n",
				"tests/test_jobs.py": "if __name__ == '__main__':\n    pass\n",
			},
			check: func(p *Project) bool {
				return p.Kind == KindWorker && p.App.Framework == FrameworkRQ
			}, explain: "rq"},
		{name: "package __main__ without rq",
			files: map[string]string{
				"pyproject.toml":   "[project]\nname='jobs'\ndependencies=[]\n",
				"jobs/__init__.py": "",
				"jobs/__main__.py": "print('working')\n",
			},
			check: func(p *Project) bool {
				return p.Kind == KindWorker && slices.Equal(p.Command, []string{"python3", "-m", "jobs"})
			}, explain: "python -m jobs"},
		{name: "pipfile with lock",
			files: map[string]string{
				"Pipfile":      "[packages]\nflask = \"*\"\ngunicorn = {version = \">=20\"}\n[requires]\npython_version = \"3.10\"\n",
				"Pipfile.lock": `{"_meta": {"requires": {"python_version": "3.10"}}, "default": {"flask": {"version": "==2.2.2"}, "gunicorn": {"version": "==20.1.0"}}}`,
				"wsgi.py":      "from flask import Flask\napplication = Flask(__name__)\n",
			},
			check: func(p *Project) bool {
				return p.Deps.Source == DepsPipfile && p.Deps.Lock == "Pipfile.lock" && p.Python.Version == "3.10" &&
					slices.Equal(p.Deps.Pinned, []string{"flask==2.2.2", "gunicorn==20.1.0"}) && p.App.Ref() == "wsgi:application" && p.Server == ServerGunicorn
			}, explain: "Pipfile [requires]"},
		{name: "setup.py install_requires",
			files: map[string]string{
				"setup.py": "from setuptools import setup\nREQS = ['starlette>=0.26', 'uvicorn']\nsetup(name='x', install_requires=REQS, python_requires='>=3.9,<3.12')\n",
				"srv.py":   "from starlette.applications import Starlette\napp = Starlette()\n",
			},
			check: func(p *Project) bool {
				return p.Deps.Source == DepsSetup && p.Python.Version == "3.11" && p.App.Framework == FrameworkStarlette &&
					hasDep(p.Deps.Requirements, "starlette") && p.Server == ServerUvicorn
			}, explain: "setup.py python_requires"},
		{name: "setup.cfg install_requires",
			files: map[string]string{
				"setup.cfg": "[metadata]\nname = x\n\n[options]\npython_requires = >=3.9\ninstall_requires =\n    celery>=5\n    redis\n",
				"setup.py":  "from setuptools import setup\nsetup()\n",
				"worker.py": "from celery import Celery\ncelery = Celery('w')\n",
			},
			check: func(p *Project) bool {
				return p.Deps.Source == DepsSetup && p.Kind == KindWorker && hasDep(p.Deps.Requirements, "redis") &&
					slices.Equal(p.Command, []string{"celery", "-A", "worker", "worker", "--loglevel=INFO"})
			}, explain: "Celery app"},
		{name: "pdm lock",
			files: map[string]string{
				"pyproject.toml": "[project]\nname='x'\nrequires-python='>=3.9,!=3.13.*'\ndependencies=['flask','gunicorn']\n",
				"pdm.lock":       "[metadata]\ngroups = [\"default\"]\n\n[[package]]\nname = \"flask\"\nversion = \"2.2.2\"\ngroups = [\"default\"]\n",
				"app.py":         "from flask import Flask\ndef create_app():\n    return Flask(__name__)\n",
			},
			check: func(p *Project) bool {
				return p.Deps.Source == DepsPDM && p.Python.Version == "3.12" && p.App.Ref() == "app:create_app()"
			}, explain: "pdm.lock"},
		{name: "poetry without lock",
			files: map[string]string{
				"pyproject.toml": "[tool.poetry]\nname='x'\n[tool.poetry.dependencies]\npython = \">=3.9,<3.11\"\nflask = \"^2.2\"\n",
				"app.py":         "from flask import Flask\napp = Flask(__name__)\n",
			},
			check: func(p *Project) bool {
				return p.Deps.Source == DepsPoetry && p.Deps.Lock == "" && p.Python.Version == "3.10"
			}, explain: "no poetry.lock"},
		{name: "editable requirements and markers",
			files: map[string]string{
				"requirements.txt": "-e .\n--index-url https://example.com/simple\nrequests[socks] >= 2.0 ; python_version >= '3.8' --hash=sha256:abc\n-c constraints.txt\n",
				"constraints.txt":  "urllib3<2\n",
				"main.py":          "if __name__ == '__main__':\n    pass\n",
			},
			check: func(p *Project) bool {
				r := p.Deps.Requirements
				return len(r) == 2 && r[0].Editable && r[1].Name == "requests" && r[1].Spec == ">= 2.0" &&
					r[1].Marker == "python_version >= '3.8'" && slices.Equal(r[1].Extras, []string{"socks"}) &&
					slices.Equal(p.Deps.Manifests, []string{"requirements.txt", "constraints.txt"})
			}, explain: "requirements.txt"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := writeTree(t, tt.files)
			p, err := Detect(context.Background(), dir, tt.opts)
			if err != nil {
				t.Fatalf("Detect: %v", err)
			}
			explain := strings.Join(p.Explain(), "\n")
			if !tt.check(p) {
				t.Errorf("unexpected plan: %+v\n%s", p, explain)
			}
			if !strings.Contains(explain, tt.explain) {
				t.Errorf("Explain lacks %q:\n%s", tt.explain, explain)
			}
		})
	}
}

func TestDetectDjangoSplitSettings(t *testing.T) {
	dir := writeTree(t, map[string]string{
		"requirements.txt":              "django>=3.2\ngunicorn\n",
		"manage.py":                     "import os\nos.environ.setdefault('DJANGO_SETTINGS_MODULE', 'config.settings.production')\n",
		"config/__init__.py":            "",
		"config/wsgi.py":                "from django.core.wsgi import get_wsgi_application\napplication = get_wsgi_application()\n",
		"config/settings/__init__.py":   "",
		"config/settings/base.py":       "STATIC_ROOT = '/srv/static'\n",
		"config/settings/production.py": "from .base import *\nDEBUG = False\n",
	})
	p, err := Detect(context.Background(), dir, DetectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if p.App.Ref() != "config.wsgi:application" || p.App.StaticRoot != "'/srv/static'" || p.App.DjangoSettings != "config.settings.production" {
		t.Errorf("app = %+v", p.App)
	}
}

// TestDetectEdgeCases covers layouts real projects use that the sample
// corpus does not: both requirements.txt and pyproject.toml, an app
// factory, a FastAPI app inside a package with relative imports, Django
// settings in a module named unlike the project directory, and a Procfile
// binding $PORT.
func TestDetectEdgeCases(t *testing.T) {
	tests := []struct {
		name     string
		files    map[string]string
		deps     DepSource
		app      string // App.Ref()
		server   Server
		port     int
		command  []string
		settings string // Django settings module
		explain  string // substring of Explain
	}{
		{name: "requirements.txt wins over pyproject dependencies",
			files: map[string]string{
				"requirements.txt": "flask==2.2.2\ngunicorn==20.1.0\n",
				"pyproject.toml":   "[project]\nname = 'x'\nversion = '1'\ndependencies = ['flask>=2']\n",
				"app.py":           "from flask import Flask\napp = Flask(__name__)\n",
			},
			deps: DepsRequirements, app: "app:app", server: ServerGunicorn, port: 8000,
			command: []string{"gunicorn", "--graceful-timeout", "8", "app:app"},
			explain: "it wins over the [project] dependencies in pyproject.toml"},
		{name: "flask factory create_app",
			files: map[string]string{
				"requirements.txt":  "flask\ngunicorn\n",
				"wsgi.py":           "from myapp import create_app\n",
				"myapp/__init__.py": "from flask import Flask\n\n\ndef create_app(config=None):\n    app = Flask(__name__)\n    return app\n",
				"myapp/views.py":    "from flask import Blueprint\nbp = Blueprint('v', __name__)\n",
			},
			deps: DepsRequirements, app: "myapp:create_app()", server: ServerGunicorn, port: 8000,
			command: []string{"gunicorn", "--graceful-timeout", "8", "myapp:create_app()"},
			explain: "create_app"},
		{name: "fastapi in a package with relative imports",
			files: map[string]string{
				"requirements.txt": "fastapi\nuvicorn\n",
				"app/__init__.py":  "",
				"app/main.py":      "from fastapi import FastAPI\n\nfrom .routes import router\n\napp = FastAPI()\napp.include_router(router)\n",
				"app/routes.py":    "from fastapi import APIRouter\nrouter = APIRouter()\n",
			},
			deps: DepsRequirements, app: "app.main:app", server: ServerUvicorn, port: 8000,
			command: []string{"uvicorn", "app.main:app", "--host", "0.0.0.0", "--port", "8000"},
			explain: "app/main.py"},
		{name: "django settings module unlike the project dir",
			files: map[string]string{
				"requirements.txt":      "django\ngunicorn\n",
				"manage.py":             "import os\nos.environ.setdefault('DJANGO_SETTINGS_MODULE', 'shop.conf.prod')\n",
				"shop/__init__.py":      "",
				"shop/conf/__init__.py": "",
				"shop/conf/prod.py":     "WSGI_APPLICATION = 'shop.server.application'\n",
				"shop/server.py":        "from django.core.wsgi import get_wsgi_application\napplication = get_wsgi_application()\n",
			},
			deps: DepsRequirements, app: "shop.server:application", server: ServerGunicorn, port: 8000,
			command:  []string{"gunicorn", "--graceful-timeout", "8", "shop.server:application"},
			settings: "shop.conf.prod", explain: "WSGI_APPLICATION"},
		{name: "procfile gunicorn binding $PORT",
			files: map[string]string{
				"requirements.txt": "flask\ngunicorn\n",
				"Procfile":         "web: gunicorn app:app --bind 0.0.0.0:$PORT\n",
				"app.py":           "from flask import Flask\napp = Flask(__name__)\n",
			},
			deps: DepsRequirements, app: "app:app", server: ServerGunicorn, port: 8000,
			command: []string{"/bin/sh", "-c", "exec gunicorn app:app --bind 0.0.0.0:$PORT"},
			explain: "Procfile web process"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Detect(context.Background(), writeTree(t, tt.files), DetectOptions{})
			if err != nil {
				t.Fatalf("Detect: %v", err)
			}
			explain := strings.Join(p.Explain(), "\n")
			if p.Deps.Source != tt.deps || p.App.Ref() != tt.app || p.Server != tt.server || p.Port != tt.port || p.Kind != KindWeb {
				t.Errorf("deps %s app %q server %s port %d kind %s, want %s %q %s %d web\n%s",
					p.Deps.Source, p.App.Ref(), p.Server, p.Port, p.Kind, tt.deps, tt.app, tt.server, tt.port, explain)
			}
			if !slices.Equal(p.Command, tt.command) {
				t.Errorf("command %q, want %q", p.Command, tt.command)
			}
			if p.App.DjangoSettings != tt.settings {
				t.Errorf("Django settings %q, want %q", p.App.DjangoSettings, tt.settings)
			}
			if !strings.Contains(explain, tt.explain) {
				t.Errorf("Explain lacks %q:\n%s", tt.explain, explain)
			}
		})
	}
}
