package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berthsh/berth/pkg/pyproject"
)

// planOutput is what --print-plan should print for dir: the detection's
// explanation, a blank line and the generated Dockerfile.
func planOutput(t *testing.T, dir, base string) string {
	t.Helper()
	plan, err := pyproject.PlanBuild(context.Background(), dir, pyproject.PlanBuildOptions{Base: base})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(plan.Files.Dockerfile, []byte("ARG BASE="+base)) {
		t.Fatalf("the generated Dockerfile does not use the base %s:\n%s", base, plan.Files.Dockerfile)
	}
	return strings.Join(plan.Project.Explain(), "\n") + "\n\n" + string(plan.Files.Dockerfile)
}

func TestBuildZeroConfigFlags(t *testing.T) {
	sample := filepath.Join("..", "..", "pkg", "pyproject", "testdata", "flask-requirements")
	withDockerfile := t.TempDir()
	if err := os.WriteFile(filepath.Join(withDockerfile, "Dockerfile"), []byte("FROM scratch\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantOut  []string // stdout (exactly)
		wantErr  string   // substring of stderr
	}{
		{
			name:     "print-plan shows the detection and the Dockerfile",
			args:     []string{"build", "--print-plan", "--base", "pybase:1", sample},
			wantOut:  []string{planOutput(t, sample, "pybase:1")},
			wantCode: 0,
		},
		{
			name:     "print-plan with a Dockerfile",
			args:     []string{"build", "--print-plan", withDockerfile},
			wantCode: 125,
			wantErr:  "--print-plan applies only",
		},
		{
			name:     "print-plan with -f",
			args:     []string{"build", "--print-plan", "-f", filepath.Join(withDockerfile, "Dockerfile"), sample},
			wantCode: 125,
			wantErr:  "--print-plan applies only",
		},
		{
			name:     "base with a Dockerfile",
			args:     []string{"build", "--base", "x:1", withDockerfile},
			wantCode: 125,
			wantErr:  "--base applies only to a generated Dockerfile",
		},
		{
			name:     "not a Python project",
			args:     []string{"build", "--print-plan", t.TempDir()},
			wantCode: 1,
			wantErr:  "no Dockerfile in",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			code := Main(context.Background(), append([]string{"--root", t.TempDir()}, tt.args...), strings.NewReader(""), &out, &errOut)
			if code != tt.wantCode {
				t.Fatalf("exit %d, want %d; stderr: %s", code, tt.wantCode, errOut.String())
			}
			if want := strings.Join(tt.wantOut, ""); out.String() != want {
				t.Errorf("stdout:\n%s\nwant:\n%s", out.String(), want)
			}
			if !strings.Contains(errOut.String(), tt.wantErr) {
				t.Errorf("stderr %q lacks %q", errOut.String(), tt.wantErr)
			}
		})
	}
}
