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

// Generated file names, in the order Init writes them.
const (
	DockerfileName   = "Dockerfile"
	DockerignoreName = ".dockerignore"
	ComposeName      = "compose.yaml"
)

// InitOptions tune Init.
type InitOptions struct {
	Detect   DetectOptions
	Generate GenerateOptions
	// Force overwrites existing files.
	Force bool
	// DryRun detects and generates but writes nothing.
	DryRun bool
}

// InitResult is what Init detected, generated and wrote.
type InitResult struct {
	Project *Project
	Files   Files
	// Written are the paths written (nil for a dry run).
	Written []string
}

// Named returns the generated files with their names, in writing order.
func (f Files) Named() []struct {
	Name string
	Data []byte
} {
	return []struct {
		Name string
		Data []byte
	}{{DockerfileName, f.Dockerfile}, {DockerignoreName, f.Dockerignore}, {ComposeName, f.Compose}}
}

// Init detects the project in dir, generates its Dockerfile, .dockerignore
// and compose.yaml and writes them into dir. Existing files are an error
// matching errdefs.ErrAlreadyExists (naming them) unless opts.Force. Either
// all files are written or none: each is written to a temporary file and
// synced first, then the temporary files are renamed into place.
func Init(ctx context.Context, dir string, opts InitOptions) (*InitResult, error) {
	p, err := Detect(ctx, dir, opts.Detect)
	if err != nil {
		return nil, err
	}
	files, err := Generate(p, opts.Generate)
	if err != nil {
		return nil, err
	}
	res := &InitResult{Project: p, Files: files}
	if opts.DryRun {
		return res, nil
	}
	var exist []string
	for _, f := range files.Named() {
		fi, err := os.Lstat(filepath.Join(dir, f.Name))
		switch {
		case errors.Is(err, fs.ErrNotExist):
		case err != nil:
			return nil, fmt.Errorf("init %s: %w", dir, err)
		case fi.IsDir():
			return nil, fmt.Errorf("init %s: %s is a directory: %w", dir, f.Name, errdefs.ErrConflict)
		default:
			exist = append(exist, f.Name)
		}
	}
	if len(exist) > 0 && !opts.Force {
		return nil, fmt.Errorf("init %s: %s already exist%s; use --force to overwrite: %w",
			dir, strings.Join(exist, ", "), map[bool]string{true: "s", false: ""}[len(exist) == 1], errdefs.ErrAlreadyExists)
	}
	// Stage every file, then rename: a failure leaves nothing half-written.
	var temps []string
	cleanup := func() {
		for _, t := range temps {
			os.Remove(t)
		}
	}
	for _, f := range files.Named() {
		t, err := writeTemp(dir, f.Name, f.Data)
		if err != nil {
			cleanup()
			return nil, fmt.Errorf("init %s: %w", dir, err)
		}
		temps = append(temps, t)
	}
	for i, f := range files.Named() {
		dst := filepath.Join(dir, f.Name)
		if err := os.Rename(temps[i], dst); err != nil {
			cleanup()
			return nil, fmt.Errorf("init %s: %w", dir, err)
		}
		res.Written = append(res.Written, dst)
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return res, nil
}

func writeTemp(dir, name string, data []byte) (string, error) {
	f, err := os.CreateTemp(dir, "."+name+".tmp-*")
	if err != nil {
		return "", err
	}
	if _, err := f.Write(data); err == nil {
		err = f.Sync()
	}
	if err == nil {
		err = f.Chmod(0o644)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return "", fmt.Errorf("write %s: %w", name, err)
	}
	return f.Name(), nil
}
