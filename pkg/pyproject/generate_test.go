package pyproject

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"

	"github.com/berthsh/berth/pkg/build/dockerfile"
)

var barePythonRE = regexp.MustCompile(`(^|[\s"'])python([\s"']|$)`)

// planGenerated parses and plans a generated Dockerfile the way berth build
// does, with the package-index build args.
func planGenerated(t *testing.T, df []byte, args map[string]string) (*dockerfile.File, *dockerfile.BuildPlan) {
	t.Helper()
	f, err := dockerfile.Parse(bytes.NewReader(df), "Dockerfile")
	if err != nil {
		t.Fatalf("Parse: %v\n%s", err, df)
	}
	plan, err := dockerfile.Plan(f, dockerfile.PlanOptions{BuildArgs: args})
	if err != nil {
		t.Fatalf("Plan: %v", err)
	}
	return f, plan
}

func runtimeConfig(plan *dockerfile.BuildPlan) v1.Config {
	cb := dockerfile.NewConfigBuilder(v1.Config{})
	for _, s := range plan.TargetStage().Steps {
		cb.Apply(s)
	}
	return cb.Config
}

func TestGenerateCorpus(t *testing.T) {
	indexArgs := map[string]string{
		"PIP_INDEX_URL":       "http://127.0.0.1:3141/simple",
		"PIP_EXTRA_INDEX_URL": "http://127.0.0.1:3142/simple",
		"PIP_TRUSTED_HOST":    "127.0.0.1",
	}
	tests := []struct {
		dir        string
		manifests  []string // the COPY before the dependency install
		port       string   // exposed port, "" for none
		djangoStat bool
		lockScript bool
		install    bool // pip install --no-deps .
	}{
		{dir: "flask-requirements", manifests: []string{"requirements.txt", "requirements/base.txt"}, port: "5000"},
		{dir: "fastapi-uv", manifests: []string{"pyproject.toml", "uv.lock"}, port: "8000", lockScript: true},
		{dir: "django-poetry", manifests: []string{"pyproject.toml", "poetry.lock"}, port: "8000", djangoStat: true, lockScript: true},
		{dir: "procfile-worker", manifests: []string{"requirements.txt"}},
		{dir: "plain-script"},
		{dir: "src-layout", manifests: []string{"pyproject.toml"}, port: "8000", lockScript: true, install: true},
	}
	for _, tt := range tests {
		t.Run(tt.dir, func(t *testing.T) {
			p, err := Detect(context.Background(), filepath.Join("testdata", tt.dir), DetectOptions{})
			if err != nil {
				t.Fatal(err)
			}
			files, err := Generate(p, GenerateOptions{})
			if err != nil {
				t.Fatal(err)
			}
			f, plan := planGenerated(t, files.Dockerfile, indexArgs)
			if f.Syntax != "docker/dockerfile:1" {
				t.Errorf("syntax directive %q", f.Syntax)
			}
			for _, w := range append(f.Warnings, plan.Warnings...) {
				t.Errorf("lint warning: %s", w)
			}
			if len(plan.UnusedBuildArgs) != 0 {
				t.Errorf("unused build args %v: the builder must declare the PIP_* ARGs", plan.UnusedBuildArgs)
			}
			if len(f.MetaArgs) != 1 || f.MetaArgs[0].Args[0].Key != "BASE" || *f.MetaArgs[0].Args[0].Value != "python:"+p.Python.Version+"-slim" {
				t.Errorf("meta args %+v, want ARG BASE=python:%s-slim", f.MetaArgs, p.Python.Version)
			}
			if len(plan.Stages) != 2 || plan.Stages[0].Name != "builder" || plan.Target != 1 {
				t.Fatalf("stages: %d, first %q, target %d", len(plan.Stages), plan.Stages[0].Name, plan.Target)
			}
			wantBase := "docker.io/library/python:" + p.Python.Version + "-slim"
			for _, st := range plan.Stages {
				if st.Base.Image != wantBase {
					t.Errorf("stage %s base %q, want %q", st.DisplayName(), st.Base.Image, wantBase)
				}
			}

			// Builder: venv with python3, manifests copied alone before the
			// cached pip install, the rest of the context after it.
			var copies [][]string
			installAt, contextAt := -1, -1
			builder := plan.Stages[0].Steps
			for i, s := range builder {
				switch c := s.Instruction.(type) {
				case *instructions.CopyCommand:
					copies = append(copies, c.SourcePaths)
					if slices.Equal(c.SourcePaths, []string{"."}) {
						contextAt = i
					}
				case *instructions.RunCommand:
					text := strings.Join(c.CmdLine, " ")
					if strings.Contains(text, "pip install --no-compile -r") && installAt < 0 {
						installAt = i
						mounts := s.Mounts()
						if len(mounts) != 1 || mounts[0].Type != instructions.MountTypeCache || mounts[0].Target != "/root/.cache/pip" {
							t.Errorf("pip install step lacks the pip cache mount: %+v", mounts)
						}
						for _, k := range []string{"PIP_INDEX_URL", "PIP_TRUSTED_HOST", "PIP_EXTRA_INDEX_URL"} {
							if !slices.Contains(s.BuildEnv, k+"="+indexArgs[k]) && !slices.Contains(s.Env, k+"="+indexArgs[k]) {
								t.Errorf("pip install does not see %s: env %v build env %v", k, s.Env, s.BuildEnv)
							}
						}
					}
					if strings.Contains(text, "python3 -m venv --without-pip /opt/venv") && len(copies) > 0 {
						t.Errorf("venv created after a COPY (step %d): it would be rebuilt needlessly", i)
					}
				}
			}
			if contextAt < 0 {
				t.Fatal("builder never copies the context")
			}
			if tt.manifests != nil {
				if installAt < 0 || installAt > contextAt {
					t.Errorf("dependencies installed at step %d, context copied at %d: deps must come first", installAt, contextAt)
				}
				var got []string
				for _, c := range copies[:len(copies)-1] {
					got = append(got, c...)
				}
				if !slices.Equal(got, tt.manifests) {
					t.Errorf("copied before install: %q, want %q", got, tt.manifests)
				}
			}
			text := string(files.Dockerfile)
			for _, want := range []string{"python3 -m venv --without-pip /opt/venv", "PIP_PYTHON=/opt/venv/bin/python3", "COPY --from=builder /opt/venv /opt/venv", "COPY --from=builder /app /app"} {
				if !strings.Contains(text, want) {
					t.Errorf("Dockerfile lacks %q", want)
				}
			}
			// Bytecode: pip compiles nothing; the venv is compiled once,
			// reproducibly, when it has dependencies; the app's code is not
			// compiled at build time (a step on every code change).
			if n := strings.Count(text, "pip install ") - strings.Count(text, "pip install --no-compile ") - strings.Count(text, "pip install -q 'pip>=22.3'"); n != 0 {
				t.Errorf("%d pip install(s) without --no-compile", n)
			}
			compiles := strings.Count(text, "python3 -m compileall -q -f --invalidation-mode unchecked-hash -x "+buildToolsRE+" /opt/venv")
			if want := min(len(tt.manifests)+btoi(tt.install), 1); compiles != want || strings.Count(text, "compileall") != want {
				t.Errorf("compileall of /opt/venv %d times (%d compileall in all), want %d", compiles, strings.Count(text, "compileall"), want)
			}
			inHeredoc := false
			for _, line := range strings.Split(text, "\n") {
				switch {
				case strings.HasPrefix(line, "RUN <<'EOF'"):
					inHeredoc = true
				case line == "EOF":
					inHeredoc = false
				case !inHeredoc && !strings.HasPrefix(line, "#") && barePythonRE.MatchString(line):
					t.Errorf("Dockerfile runs python instead of python3: %s", line)
				}
			}
			if got := strings.Contains(text, "RUN <<'EOF'"); got != tt.lockScript {
				t.Errorf("lock script present = %t, want %t", got, tt.lockScript)
			}
			if got := strings.Contains(text, "pip install --no-compile --no-deps ."); got != tt.install {
				t.Errorf("project install = %t, want %t", got, tt.install)
			}
			if got := strings.Contains(text, "collectstatic --noinput"); got != tt.djangoStat {
				t.Errorf("collectstatic = %t, want %t", got, tt.djangoStat)
			}

			// Runtime config.
			cfg := runtimeConfig(plan)
			if cfg.User != "10001:10001" {
				t.Errorf("USER %q", cfg.User)
			}
			if !slices.Equal(cfg.Cmd, p.Command) || len(cfg.Entrypoint) != 0 {
				t.Errorf("CMD %q ENTRYPOINT %q, want exec form %q", cfg.Cmd, cfg.Entrypoint, p.Command)
			}
			if cfg.WorkingDir != "/app" {
				t.Errorf("WORKDIR %q", cfg.WorkingDir)
			}
			for _, want := range []string{"PYTHONUNBUFFERED=1", "PYTHONDONTWRITEBYTECODE=1"} {
				if !slices.Contains(cfg.Env, want) {
					t.Errorf("env %v lacks %s", cfg.Env, want)
				}
			}
			if !slices.ContainsFunc(cfg.Env, func(e string) bool { return strings.HasPrefix(e, "PATH=/opt/venv/bin:") }) {
				t.Errorf("env %v: PATH does not start with the venv", cfg.Env)
			}
			if tt.port == "" {
				if len(cfg.ExposedPorts) != 0 || cfg.Healthcheck != nil {
					t.Errorf("non-web image exposes %v with healthcheck %+v", cfg.ExposedPorts, cfg.Healthcheck)
				}
			} else {
				if _, ok := cfg.ExposedPorts[tt.port+"/tcp"]; !ok || len(cfg.ExposedPorts) != 1 {
					t.Errorf("exposed %v, want %s", cfg.ExposedPorts, tt.port)
				}
				h := cfg.Healthcheck
				if h == nil || len(h.Test) < 3 || h.Test[0] != "CMD" || h.Test[1] != "python3" || !strings.Contains(h.Test[3], "os.environ.get('PORT') or "+tt.port+")") {
					t.Errorf("healthcheck %+v", h)
				}
				if !strings.Contains(string(files.Compose), `"`+tt.port+":"+tt.port+`"`) || !strings.Contains(string(files.Compose), "healthcheck:") {
					t.Errorf("compose.yaml lacks the port or healthcheck:\n%s", files.Compose)
				}
			}
			if !strings.Contains(string(files.Compose), "build: .") {
				t.Errorf("compose.yaml:\n%s", files.Compose)
			}
			if got := strings.Contains(string(files.Compose), "release:"); got != (p.Release != nil) {
				t.Errorf("compose release service = %t, want %t:\n%s", got, p.Release != nil, files.Compose)
			}
			for _, want := range []string{".git", "__pycache__", ".venv", ".env", "node_modules", "Dockerfile"} {
				if !strings.Contains(string(files.Dockerignore), "\n"+want) && !strings.Contains(string(files.Dockerignore), "/"+want) {
					t.Errorf(".dockerignore lacks %s", want)
				}
			}
		})
	}
}

func TestGenerateBaseAndGolden(t *testing.T) {
	p, err := Detect(context.Background(), "testdata/flask-requirements", DetectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	files, err := Generate(p, GenerateOptions{Base: "localhost:5000/debian-python:bookworm"})
	if err != nil {
		t.Fatal(err)
	}
	_, plan := planGenerated(t, files.Dockerfile, nil)
	if got := plan.TargetStage().Base.Image; got != "localhost:5000/debian-python:bookworm" {
		t.Errorf("runtime base %q", got)
	}
	// --build-arg BASE still overrides the default.
	f, err := dockerfile.Parse(bytes.NewReader(files.Dockerfile), "Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	plan, err = dockerfile.Plan(f, dockerfile.PlanOptions{BuildArgs: map[string]string{"BASE": "pybase:1"}})
	if err != nil || plan.Stages[0].Base.Image != "docker.io/library/pybase:1" {
		t.Errorf("BASE build arg: %v %+v", err, plan.Stages[0].Base)
	}

	golden := filepath.Join("testdata", "golden", "flask-requirements.Dockerfile")
	files, _ = Generate(p, GenerateOptions{})
	if os.Getenv("UPDATE_GOLDEN") != "" {
		if err := os.MkdirAll(filepath.Dir(golden), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(golden, files.Dockerfile, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("golden file (regenerate with UPDATE_GOLDEN=1): %v", err)
	}
	if !bytes.Equal(files.Dockerfile, want) {
		t.Errorf("generated Dockerfile differs from %s (regenerate with UPDATE_GOLDEN=1 after checking):\n%s", golden, files.Dockerfile)
	}
}

func TestGenerateRejects(t *testing.T) {
	if _, err := Generate(&Project{}, GenerateOptions{}); err == nil {
		t.Error("empty project accepted")
	}
	p, err := Detect(context.Background(), "testdata/plain-script", DetectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Generate(p, GenerateOptions{Base: "bad base"}); err == nil {
		t.Error("base with a space accepted")
	}
}

// TestLockScript runs the lock-export script embedded in generated
// Dockerfiles with the host's python3 against lock files.
func TestLockScript(t *testing.T) {
	py, err := exec.LookPath("python3")
	if err == nil {
		if exec.Command(py, "-c", "import tomllib").Run() != nil {
			err = exec.ErrNotFound
		}
	}
	if err != nil {
		t.Skip("needs python3 >= 3.11 (Debian package python3)")
	}
	tests := []struct {
		name   string
		dir    string
		files  map[string]string
		source string
		want   []string
	}{
		{name: "uv", dir: "testdata/fastapi-uv", source: "uv", want: []string{
			"anyio==3.6.2", "asgiref==3.6.0", "click==8.1.3", "colorama==0.4.6 ; (sys_platform == 'win32')",
			"fastapi==0.92.0", "h11==0.14.0", "idna==3.3", "pydantic==1.10.4", "sniffio==1.2.0",
			"starlette==0.26.1", "typing-extensions==4.4.0", "uvicorn==0.17.6"}},
		{name: "poetry", dir: "testdata/django-poetry", source: "poetry", want: []string{
			"asgiref==3.6.0", "django==3.2.25", "gunicorn==20.1.0", "pytz==2022.7.1", "setuptools==66.1.1", "sqlparse==0.4.2"}},
		{name: "pyproject", dir: "testdata/src-layout", source: "pyproject", want: []string{"flask>=2.2", "gunicorn>=20.1"}},
		{name: "poetry without lock", source: "pyproject", files: map[string]string{
			"pyproject.toml": "[tool.poetry.dependencies]\npython = \"^3.9\"\nflask = \"^2.2\"\nrequests = {version = \"~2.28\", extras = [\"socks\"]}\nlegacy = \"1.0\"\nanything = \"*\"\n",
		}, want: []string{"flask>=2.2,<3", "requests[socks]>=2.28,<2.29", "legacy==1.0", "anything"}},
		{name: "pdm", source: "pdm", files: map[string]string{
			"pdm.lock": "[[package]]\nname = \"Flask\"\nversion = \"2.2.2\"\ngroups = [\"default\"]\n\n[[package]]\nname = \"pytest\"\nversion = \"7.2.1\"\ngroups = [\"dev\"]\n\n[[package]]\nname = \"colorama\"\nversion = \"0.4.6\"\ngroups = [\"default\"]\nmarker = \"sys_platform == 'win32'\"\n",
		}, want: []string{"colorama==0.4.6 ; sys_platform == 'win32'", "flask==2.2.2"}},
		{name: "pipfile.lock", source: "pipfile.lock", files: map[string]string{
			"Pipfile.lock": `{"default": {"Flask": {"version": "==2.2.2"}, "local": {"path": "."}, "lib": {"git": "https://example.com/lib.git", "ref": "abc"}}, "develop": {"pytest": {"version": "==7.2.1"}}}`,
		}, want: []string{"flask==2.2.2", "lib @ git+https://example.com/lib.git@abc"}},
		{name: "pipfile", source: "pipfile", files: map[string]string{
			"Pipfile": "[packages]\nflask = \"*\"\ngunicorn = {version = \">=20\", extras = [\"gevent\"]}\n",
		}, want: []string{"flask", "gunicorn[gevent]>=20"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := tt.dir
			if tt.files != nil {
				dir = writeTree(t, tt.files)
			}
			out := filepath.Join(t.TempDir(), "req.txt")
			cmd := exec.Command(py, "-", out)
			cmd.Dir = dir
			cmd.Stdin = strings.NewReader(lockScriptFor(tt.source))
			if b, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("script: %v\n%s", err, b)
			}
			data, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			got := strings.Split(strings.TrimSpace(string(data)), "\n")
			if !slices.Equal(got, tt.want) {
				t.Errorf("pins:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

// Detection notes quoting multi-line code stay on one comment line.
func TestGenerateMultilineNotes(t *testing.T) {
	dir := writeTree(t, map[string]string{
		"requirements.txt": "flask\ngunicorn\n",
		"app.py":           "from flask import Flask\napp = Flask(\n    __name__,\n    static_folder='''\nstatic''',\n)\n",
		"Procfile":         "worker: python3 -m jobs\n",
	})
	p, err := Detect(context.Background(), dir, DetectOptions{Kind: "web"})
	if err != nil {
		t.Fatal(err)
	}
	files, err := Generate(p, GenerateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	_, plan := planGenerated(t, files.Dockerfile, nil)
	if cfg := runtimeConfig(plan); !slices.Equal(cfg.Cmd, p.Command) {
		t.Errorf("CMD %q, want %q", cfg.Cmd, p.Command)
	}
	if !strings.Contains(string(files.Dockerfile), "#   - found flask app app = Flask(__name__,static_folder=''' static''',) in app.py:2") {
		t.Errorf("note not on one line:\n%s", files.Dockerfile)
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
