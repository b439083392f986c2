package pyproject

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berthsh/berth/pkg/errdefs"
)

func TestHasDockerfile(t *testing.T) {
	tests := []struct {
		name    string
		setup   func(dir string) error
		want    bool
		wantErr error
	}{
		{"none", func(string) error { return nil }, false, nil},
		{"file", func(dir string) error {
			return os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte("FROM x\n"), 0o644)
		}, true, nil},
		{"directory", func(dir string) error { return os.Mkdir(filepath.Join(dir, "Dockerfile"), 0o755) }, false, errdefs.ErrInvalidArgument},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := tt.setup(dir); err != nil {
				t.Fatal(err)
			}
			got, err := HasDockerfile(dir)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("HasDockerfile = %t, %v; want %t", got, err, tt.want)
			}
		})
	}
}

func TestBuildPlanSummary(t *testing.T) {
	tests := []struct {
		name string
		p    Project
		want string
	}{
		{
			name: "flask web app",
			p: Project{
				Kind: KindWeb, Server: ServerGunicorn, Port: 8000,
				App:    App{Framework: FrameworkFlask, Module: "app", Attr: "app"},
				Python: PythonVersion{Version: "3.11"},
				Deps:   Dependencies{Source: DepsRequirements},
			},
			want: "a Flask web app:app served by gunicorn on port 8000, Python 3.11, dependencies from requirements.txt",
		},
		{
			name: "locked worker",
			p: Project{
				Kind:   KindWorker,
				App:    App{Framework: FrameworkCelery, Module: "tasks", Attr: "celery"},
				Python: PythonVersion{Version: "3.12"},
				Deps:   Dependencies{Source: DepsUV, Lock: "uv.lock"},
			},
			want: "a Celery worker tasks:celery, Python 3.12, dependencies from uv (uv.lock)",
		},
		{
			name: "script without dependencies",
			p:    Project{Kind: KindScript, App: App{Module: "main.py"}, Python: PythonVersion{Version: "3.13"}},
			want: "a script main.py, Python 3.13, no dependencies",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := &BuildPlan{Project: &tt.p}
			if got := b.Summary(); got != tt.want {
				t.Errorf("Summary() =\n%q\nwant\n%q", got, tt.want)
			}
		})
	}
}

func TestPlanBuild(t *testing.T) {
	plan, err := PlanBuild(context.Background(), filepath.Join("testdata", "flask-requirements"), PlanBuildOptions{Base: "pybase:1"})
	if err != nil {
		t.Fatal(err)
	}
	if plan.Project.App.Framework != FrameworkFlask {
		t.Errorf("framework = %q, want flask", plan.Project.App.Framework)
	}
	df := string(plan.Files.Dockerfile)
	if !strings.Contains(df, "ARG BASE=pybase:1") {
		t.Errorf("the Dockerfile does not default BASE to the given base:\n%s", df)
	}
	if len(plan.Files.Dockerignore) == 0 {
		t.Errorf("no .dockerignore generated")
	}
	if s := plan.Summary(); !strings.Contains(s, "Flask") || !strings.Contains(s, "requirements.txt") {
		t.Errorf("Summary() = %q", s)
	}

	_, err = PlanBuild(context.Background(), t.TempDir(), PlanBuildOptions{})
	if !errors.Is(err, errdefs.ErrNotFound) || !strings.Contains(err.Error(), "no Dockerfile in") {
		t.Errorf("empty directory: err = %v, want ErrNotFound naming the missing Dockerfile", err)
	}
}
