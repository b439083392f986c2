package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func runInit(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = Main(context.Background(), append([]string{"--root", t.TempDir(), "init"}, args...), strings.NewReader(""), &out, &errOut)
	return out.String(), errOut.String(), code
}

func TestInitCommand(t *testing.T) {
	dir := t.TempDir()
	for name, data := range map[string]string{
		"requirements.txt": "flask>=2.2\ngunicorn>=20.1\n",
		"app.py":           "from flask import Flask\n\napp = Flask(__name__)\n",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	generated := []string{"Dockerfile", ".dockerignore", "compose.yaml"}
	exists := func(name string) bool {
		_, err := os.Stat(filepath.Join(dir, name))
		return err == nil
	}

	tests := []struct {
		name    string
		args    []string
		code    int
		stdout  []string // substrings
		stderr  []string
		written bool   // files exist afterwards
		check   string // in the Dockerfile afterwards
	}{
		{name: "dry run prints the files", args: []string{"--dry-run", "--port", "9090", dir}, code: 0,
			stdout: []string{"# ---- Dockerfile ----", "ARG BASE=python:", "EXPOSE 9090", "# ---- compose.yaml ----", "# ---- .dockerignore ----"},
			stderr: []string{"found flask app app = Flask(__name__) in app.py:3", "port 9090 set by --port"}},
		{name: "writes and explains", args: []string{"--python", "3.11", "--base", "pybase:1", dir}, code: 0,
			stdout:  []string{"python: 3.11", "server: gunicorn on port 8000", "command: gunicorn --graceful-timeout 8 app:app", "wrote Dockerfile, .dockerignore, compose.yaml"},
			written: true, check: "ARG BASE=pybase:1"},
		{name: "refuses to overwrite", args: []string{dir}, code: 1,
			stderr: []string{"Dockerfile, .dockerignore, compose.yaml already exist", "--force"}, written: true},
		{name: "force overwrites", args: []string{"--force", "--server", "uvicorn", dir}, code: 0,
			stdout: []string{"server uvicorn set by --server"}, written: true},
		{name: "bad port is a usage error", args: []string{"--port", "70000", dir}, code: 125, written: true},
		{name: "too many args", args: []string{dir, dir}, code: 125, written: true},
		{name: "not a python project", args: []string{t.TempDir()}, code: 1, stderr: []string{"no Python project"}, written: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, errOut, code := runInit(t, tt.args...)
			if code != tt.code {
				t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tt.code, out, errOut)
			}
			for _, s := range tt.stdout {
				if !strings.Contains(out, s) {
					t.Errorf("stdout lacks %q:\n%s", s, out)
				}
			}
			for _, s := range tt.stderr {
				if !strings.Contains(errOut, s) {
					t.Errorf("stderr lacks %q:\n%s", s, errOut)
				}
			}
			if tt.check != "" {
				if df, _ := os.ReadFile(filepath.Join(dir, "Dockerfile")); !strings.Contains(string(df), tt.check) {
					t.Errorf("Dockerfile lacks %q:\n%s", tt.check, df)
				}
			}
			for _, n := range generated {
				if exists(n) != tt.written {
					t.Errorf("%s exists = %t, want %t", n, exists(n), tt.written)
				}
			}
		})
	}
	df, err := os.ReadFile(filepath.Join(dir, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"ARG BASE=python:3.13-slim", `CMD ["python3", "-m", "uvicorn", "app:app", "--host", "0.0.0.0", "--port", "8000", "--interface", "wsgi"]`} {
		if !strings.Contains(string(df), want) {
			t.Errorf("Dockerfile after --force lacks %q:\n%s", want, df)
		}
	}
}
