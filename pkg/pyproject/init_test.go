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

func TestInit(t *testing.T) {
	dir := writeTree(t, map[string]string{
		"requirements.txt": "flask>=2.2\ngunicorn\n",
		"app.py":           "from flask import Flask\napp = Flask(__name__)\n",
	})
	ctx := context.Background()

	// Dry run writes nothing.
	res, err := Init(ctx, dir, InitOptions{DryRun: true})
	if err != nil || res.Written != nil || len(res.Files.Dockerfile) == 0 {
		t.Fatalf("dry run: %+v, %v", res, err)
	}
	for _, n := range []string{DockerfileName, DockerignoreName, ComposeName} {
		if _, err := os.Stat(filepath.Join(dir, n)); err == nil {
			t.Errorf("dry run wrote %s", n)
		}
	}

	res, err = Init(ctx, dir, InitOptions{Detect: DetectOptions{Port: 8080}})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Written) != 3 {
		t.Errorf("written %v", res.Written)
	}
	for _, nf := range res.Files.Named() {
		data, err := os.ReadFile(filepath.Join(dir, nf.Name))
		if err != nil || string(data) != string(nf.Data) {
			t.Errorf("%s: %v (content matches: %t)", nf.Name, err, string(data) == string(nf.Data))
		}
	}
	if !strings.Contains(string(res.Files.Dockerfile), "EXPOSE 8080") {
		t.Error("port override not applied")
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.Contains(e.Name(), ".tmp-") {
			t.Errorf("temporary file left behind: %s", e.Name())
		}
	}

	// A second run refuses and names the files; user edits survive.
	if err := os.WriteFile(filepath.Join(dir, DockerfileName), []byte("FROM mine\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = Init(ctx, dir, InitOptions{})
	if !errors.Is(err, errdefs.ErrAlreadyExists) {
		t.Fatalf("second init: %v, want already exists", err)
	}
	for _, n := range []string{DockerfileName, DockerignoreName, ComposeName, "--force"} {
		if !strings.Contains(err.Error(), n) {
			t.Errorf("error %q does not name %s", err, n)
		}
	}
	if data, _ := os.ReadFile(filepath.Join(dir, DockerfileName)); string(data) != "FROM mine\n" {
		t.Error("refused init still changed the Dockerfile")
	}

	// --force overwrites.
	if _, err := Init(ctx, dir, InitOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	if data, _ := os.ReadFile(filepath.Join(dir, DockerfileName)); !strings.HasPrefix(string(data), "# syntax=docker/dockerfile:1") {
		t.Error("--force did not overwrite the Dockerfile")
	}

	// One existing file blocks all: nothing is half-written.
	dir2 := writeTree(t, map[string]string{"main.py": "print(1)\n", ComposeName: "services: {}\n"})
	if _, err := Init(ctx, dir2, InitOptions{}); !errors.Is(err, errdefs.ErrAlreadyExists) || !strings.Contains(err.Error(), ComposeName) {
		t.Fatalf("init with compose.yaml present: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir2, DockerfileName)); err == nil {
		t.Error("Dockerfile written although compose.yaml blocked the init")
	}

	// Detection errors write nothing.
	dir3 := writeTree(t, map[string]string{"README.md": "no python\n"})
	if _, err := Init(ctx, dir3, InitOptions{}); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("init of a non-Python dir: %v", err)
	}
	if entries, _ := os.ReadDir(dir3); len(entries) != 1 {
		t.Errorf("files left in a failed init: %v", entries)
	}
}
