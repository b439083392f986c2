package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berthsh/berth/internal/testutil"
)

func TestBuildFlagsOptions(t *testing.T) {
	t.Setenv("FROM_ENV", "env-value")
	f := buildFlags{
		tags:      []string{"app:1", "registry.example.com/team/app"},
		buildArgs: []string{"A=1", "FROM_ENV", "UNSET_ARG_XYZ"},
		labels:    []string{"team=web"},
		secrets:   []string{"id=tok,src=/run/tok"},
		network:   "none",
		progress:  "plain",
		target:    "test",
		file:      "docker/Dockerfile",
	}
	opts, err := f.options("ctx", nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(opts.Tags) != 2 || opts.Tags[0].String() != "docker.io/library/app:1" || opts.Tags[1].Tag() != "latest" {
		t.Errorf("tags: %v", opts.Tags)
	}
	if opts.BuildArgs["A"] != "1" || opts.BuildArgs["FROM_ENV"] != "env-value" {
		t.Errorf("build args: %v", opts.BuildArgs)
	}
	if _, ok := opts.BuildArgs["UNSET_ARG_XYZ"]; ok {
		t.Error("a bare unset build arg was kept")
	}
	if opts.Labels["team"] != "web" || opts.Secrets["tok"] != "/run/tok" || opts.Network != "none" ||
		opts.Target != "test" || opts.Dockerfile != "docker/Dockerfile" || opts.ContextDir != "ctx" {
		t.Errorf("options: %+v", opts)
	}

	stdin := strings.NewReader("FROM scratch\n")
	opts, err = buildFlags{network: "host", progress: "auto"}.options("-", stdin)
	if err != nil || string(opts.DockerfileContent) != "FROM scratch\n" {
		t.Fatalf("stdin Dockerfile: %q %v", opts.DockerfileContent, err)
	}

	bad := []buildFlags{
		{tags: []string{"Bad Tag"}, network: "host", progress: "auto"},
		{network: "bridge", progress: "auto"},
		{network: "host", progress: "fancy"},
		{network: "host", progress: "auto", secrets: []string{"id=x"}},
		{network: "host", progress: "auto", labels: []string{"=v"}},
	}
	for _, b := range bad {
		if _, err := b.options(".", nil); err == nil {
			t.Errorf("%+v: no error", b)
		}
	}
	for _, o := range []string{"type=tar,dest=x", "type=oci", "dest=x", "type=oci,dest=x,extra=1"} {
		if _, _, err := parseOutput(o); err == nil {
			t.Errorf("--output %q: no error", o)
		}
	}
	if f, d, err := parseOutput("type=docker,dest=/tmp/x.tar"); err != nil || f != "docker" || d != "/tmp/x.tar" {
		t.Errorf("parseOutput: %s %s %v", f, d, err)
	}
}

// TestBuildCommand builds a small image through the CLI: scratch plus a
// COPY, then checks the image exists, the iidfile, the OCI output, and that
// a second build is all cached and gives the same ID.
func TestBuildCommand(t *testing.T) {
	testutil.RequiresRoot(t)
	root := t.TempDir()
	dir := t.TempDir()
	write := func(name, content string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("Dockerfile", "FROM scratch\nCOPY hello.txt /hello.txt\nCMD [\"/hello\"]\n")
	write("hello.txt", "hello\n")
	iid := filepath.Join(t.TempDir(), "iid")
	oci := filepath.Join(t.TempDir(), "img.oci.tar")
	run := func(args ...string) (string, string, int) {
		var out, errOut bytes.Buffer
		code := Main(context.Background(), append([]string{"--root", root}, args...), strings.NewReader(""), &out, &errOut)
		return out.String(), errOut.String(), code
	}
	_, errOut, code := run("build", "-t", "hello:1", "--iidfile", iid, "--output", "type=oci,dest="+oci, dir)
	if code != 0 {
		t.Fatalf("build: exit %d\n%s", code, errOut)
	}
	if !strings.Contains(errOut, "#1 [1/2] COPY hello.txt /hello.txt") || !strings.Contains(errOut, "naming to docker.io/library/hello:1 done") {
		t.Errorf("progress output:\n%s", errOut)
	}
	id, err := os.ReadFile(iid)
	if err != nil || !strings.HasPrefix(string(id), "sha256:") {
		t.Fatalf("iidfile: %q %v", id, err)
	}
	if fi, err := os.Stat(oci); err != nil || fi.Size() == 0 {
		t.Fatalf("--output file: %v", err)
	}
	out, _, code := run("inspect", "-f", "{{.Id}} {{json .Config.Cmd}}", "hello:1")
	if code != 0 || strings.TrimSpace(out) != string(id)+` ["/hello"]` {
		t.Fatalf("inspect: %q (exit %d)", out, code)
	}
	out, errOut, code = run("build", "-q", "-t", "hello:1", dir)
	if code != 0 || strings.TrimSpace(out) != string(id) {
		t.Fatalf("second build -q: %q exit %d %s", out, code, errOut)
	}
	_, errOut, code = run("build", dir+"/nonexistent")
	if code == 0 || !strings.Contains(errOut, "Error:") {
		t.Fatalf("missing context: exit %d %s", code, errOut)
	}
}
