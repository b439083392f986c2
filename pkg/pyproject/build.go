package pyproject

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/berthsh/berth/pkg/errdefs"
)

// BuildPlan is what `berth build` builds for a context without a
// Dockerfile: the detected project and the files generated for it.
type BuildPlan struct {
	Project *Project
	Files   Files
}

// PlanBuildOptions tune PlanBuild.
type PlanBuildOptions struct {
	Detect DetectOptions
	// Base is the base image the generated Dockerfile defaults to ("" for
	// python:<version>-slim); the BASE build argument overrides it.
	Base string
}

// HasDockerfile reports whether dir holds a Dockerfile, the file `docker
// build` uses when not given -f.
func HasDockerfile(dir string) (bool, error) {
	fi, err := os.Stat(filepath.Join(dir, "Dockerfile"))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("look for a Dockerfile in %s: %w", dir, err)
	case fi.IsDir():
		return false, fmt.Errorf("%s is a directory, not a Dockerfile: %w", filepath.Join(dir, "Dockerfile"), errdefs.ErrInvalidArgument)
	}
	return true, nil
}

// PlanBuild detects the Python project in dir and generates its Dockerfile
// and .dockerignore, for building a project that has no Dockerfile. It
// fails with an error matching errdefs.ErrNotFound, naming what to do, when
// dir is not a Python project.
func PlanBuild(ctx context.Context, dir string, opts PlanBuildOptions) (*BuildPlan, error) {
	p, err := Detect(ctx, dir, opts.Detect)
	if err != nil {
		if errors.Is(err, errdefs.ErrNotFound) {
			return nil, fmt.Errorf("no Dockerfile in %s and no Python project detected (add a Dockerfile, or give one with -f): %w", dir, err)
		}
		return nil, err
	}
	files, err := Generate(p, GenerateOptions{Base: opts.Base})
	if err != nil {
		return nil, err
	}
	return &BuildPlan{Project: p, Files: files}, nil
}

// Summary describes the plan in one line, e.g. "Flask web app
// app:app served by gunicorn on port 8000, Python 3.11, dependencies from
// requirements.txt".
func (b *BuildPlan) Summary() string {
	p := b.Project
	var parts []string
	what := string(p.Kind)
	if what == "" {
		what = "application"
	}
	if name := frameworkName(p.App.Framework); name != "" {
		what = name + " " + what
	}
	what = "a " + what
	if ref := p.App.Ref(); ref != "" {
		what += " " + ref
	}
	if p.Kind == KindWeb {
		if p.Server != ServerNone {
			what += " served by " + string(p.Server)
		}
		if p.Port > 0 {
			what += fmt.Sprintf(" on port %d", p.Port)
		}
	}
	parts = append(parts, what)
	if p.Python.Version != "" {
		parts = append(parts, "Python "+p.Python.Version)
	}
	deps := "no dependencies"
	if p.Deps.Source != DepsNone {
		deps = "dependencies from " + string(p.Deps.Source)
		if p.Deps.Lock != "" {
			deps += " (" + p.Deps.Lock + ")"
		}
	}
	parts = append(parts, deps)
	return strings.Join(parts, ", ")
}

func frameworkName(f Framework) string {
	switch f {
	case FrameworkFlask:
		return "Flask"
	case FrameworkFastAPI:
		return "FastAPI"
	case FrameworkStarlette:
		return "Starlette"
	case FrameworkDjango:
		return "Django"
	case FrameworkCelery:
		return "Celery"
	case FrameworkRQ:
		return "RQ"
	}
	return string(f)
}
