package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/berthsh/berth/internal/testutil"
	"github.com/berthsh/berth/internal/testutil/nettest"
)

// TestZeroConfigPythonCLI builds the sample projects of pkg/pyproject
// without a Dockerfile ("berth build" generates one), from a local Python
// base image and a loopback package index of Debian's Python packages,
// runs each and checks that it answers HTTP through a published port, runs
// as non-root with a HEALTHCHECK, and that a code-only change rebuilds
// without reinstalling the dependencies.
func TestZeroConfigPythonCLI(t *testing.T) {
	testutil.RequiresRoot(t)
	if testing.Short() {
		t.Skip("builds three Python images (a few minutes)")
	}
	index := testutil.PythonIndex(t)
	e := &ctrEnv{t: t, root: t.TempDir()}
	nettest.CleanupNetworks(t, e.root)
	if _, errOut, code := slowBerth(e, "import", testutil.BaseTarball(t, testutil.BasePython), "pybase:1"); code != 0 {
		t.Fatalf("import: %d %s", code, errOut)
	}
	t.Cleanup(func() {
		out, _, _ := e.berth("", "ps", "-aq", "--no-trunc")
		for _, id := range strings.Fields(out) {
			e.berth("", "rm", "-f", id)
		}
	})
	samples := []struct {
		name    string // directory under pkg/pyproject/testdata
		code    string // an application file to change
		portEnv bool   // the server follows PORT set at run time (gunicorn)
	}{
		{"flask-requirements", "app.py", true},
		{"fastapi-uv", "app/main.py", false},
		{"django-poetry", "mysite/urls.py", true},
	}
	for _, s := range samples {
		t.Run(s.name, func(t *testing.T) {
			e := &ctrEnv{t: t, root: e.root}
			src := filepath.Join("..", "..", "pkg", "pyproject", "testdata", s.name)
			if _, err := os.Stat(src); err != nil {
				t.Fatalf("sample project: %v", err)
			}
			dir := filepath.Join(t.TempDir(), "app")
			if err := os.CopyFS(dir, os.DirFS(src)); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(filepath.Join(dir, "Dockerfile")); err == nil {
				t.Fatalf("sample %s has a Dockerfile; the test needs a project without one", s.name)
			}
			// The generated .dockerignore keeps secrets out when the
			// project has no ignore file of its own.
			if err := os.WriteFile(filepath.Join(dir, ".env"), []byte("SECRET_TOKEN=do-not-ship\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			tag := "app-" + s.name + ":1"
			build := func() string {
				t.Helper()
				_, errOut, code := slowBerth(e, "build", "--progress", "plain", "--base", "pybase:1",
					"--build-arg", "PIP_INDEX_URL="+index+"/simple", "--build-arg", "PIP_TRUSTED_HOST=127.0.0.1",
					"-t", tag, dir)
				if code != 0 {
					t.Fatalf("zero-config build: exit %d:\n%s", code, errOut)
				}
				return errOut
			}

			// --print-plan shows the detection and the Dockerfile and
			// builds nothing.
			plan, errOut, code := e.berth("", "build", "--print-plan", "--base", "pybase:1", dir)
			if code != 0 || !strings.Contains(plan, "ARG BASE=pybase:1") || !strings.Contains(plan, "HEALTHCHECK") {
				t.Fatalf("--print-plan: exit %d, stdout:\n%s\nstderr:\n%s", code, plan, errOut)
			}
			if _, _, code := e.berth("", "image", "inspect", tag); code == 0 {
				t.Fatalf("--print-plan built %s", tag)
			}

			out := build()
			if !strings.Contains(out, "no Dockerfile in "+dir) {
				t.Errorf("build output lacks the no-Dockerfile note:\n%s", out)
			}
			firstID := strings.TrimSpace(e.must("image", "inspect", "-f", "{{.Id}}", tag))

			var cfg struct {
				User         string
				ExposedPorts map[string]struct{}
				Healthcheck  *struct{ Test []string }
			}
			if err := json.Unmarshal([]byte(e.must("image", "inspect", "-f", "{{json .Config}}", tag)), &cfg); err != nil {
				t.Fatalf("image config: %v", err)
			}
			if cfg.User == "" || cfg.User == "root" || cfg.User == "0" || strings.HasPrefix(cfg.User, "0:") {
				t.Errorf("image runs as %q, want a non-root user", cfg.User)
			}
			if cfg.Healthcheck == nil || len(cfg.Healthcheck.Test) == 0 {
				t.Errorf("image has no HEALTHCHECK")
			}
			if len(cfg.ExposedPorts) != 1 {
				t.Fatalf("image exposes %v, want one port", cfg.ExposedPorts)
			}
			var port string
			for p := range cfg.ExposedPorts {
				port, _, _ = strings.Cut(p, "/")
			}

			name := "zc-" + s.name
			runArgs := []string{"run", "-d", "--name", name}
			if s.portEnv {
				// gunicorn binds $PORT: a port set at run time wins over
				// the one detected at build time.
				port = "8089"
				runArgs = append(runArgs, "-e", "PORT="+port)
			}
			e.must(append(runArgs, "-p", "127.0.0.1::"+port, tag)...)
			defer e.berth("", "rm", "-f", name)
			hostPort := strings.TrimSpace(e.must("port", name, port))
			url := "http://" + hostPort + "/"
			var status int
			var body string
			client := &http.Client{Timeout: 2 * time.Second}
			for end := time.Now().Add(20 * time.Second); time.Now().Before(end); time.Sleep(200 * time.Millisecond) {
				resp, err := client.Get(url)
				if err != nil {
					continue
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				status, body = resp.StatusCode, string(b)
				if status == http.StatusOK {
					break
				}
			}
			if status != http.StatusOK {
				logs, _, _ := e.berth("", "logs", name)
				t.Fatalf("GET %s: status %d %q; container logs:\n%s", url, status, body, logs)
			}
			if uid := strings.TrimSpace(e.must("exec", name, "id", "-u")); uid == "0" || uid == "" {
				t.Errorf("the app's container runs as uid %q, want non-root", uid)
			}
			if _, _, code := e.berth("", "exec", name, "test", "-e", "/app/"+s.code); code != 0 {
				t.Errorf("/app/%s is missing from the image", s.code)
			}
			// The shipped virtualenv has no pip of its own (the builder's
			// pip installed into it).
			if _, _, code := e.berth("", "exec", name, "/opt/venv/bin/python3", "-c", "import pip"); code == 0 {
				t.Errorf("pip is importable from /opt/venv in the runtime image")
			}
			if _, _, code := e.berth("", "exec", name, "test", "-e", "/app/.env"); code == 0 {
				t.Errorf("/app/.env is in the image: the generated .dockerignore was not used")
			}
			e.must("rm", "-f", name)

			// A code-only change reuses the dependency layer.
			codeFile := filepath.Join(dir, s.code)
			f, err := os.OpenFile(codeFile, os.O_APPEND|os.O_WRONLY, 0)
			if err != nil {
				t.Fatalf("change the code: %v", err)
			}
			if _, err := f.WriteString("\n# changed by the test\n"); err != nil {
				t.Fatal(err)
			}
			f.Close()
			out = build()
			step, cached := installStep(out)
			if step == 0 {
				t.Fatalf("no pip install step in the build output:\n%s", out)
			}
			if !cached {
				t.Errorf("the dependency step #%d ran again after a code-only change:\n%s", step, out)
			}
			if id := strings.TrimSpace(e.must("image", "inspect", "-f", "{{.Id}}", tag)); id == firstID {
				t.Errorf("the image did not change after a code change (%s)", id)
			}
		})
	}
}

// slowBerth is e.berth for imports and builds, which take minutes under
// the race detector on a loaded machine.
func slowBerth(e *ctrEnv, args ...string) (string, string, int) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	var out, errOut bytes.Buffer
	code := Main(ctx, append([]string{"--root", e.root}, args...), strings.NewReader(""), &out, &errOut)
	return out.String(), errOut.String(), code
}

// installStep finds the first RUN step installing dependencies in plain
// build progress output and reports whether it was cached.
func installStep(out string) (step int, cached bool) {
	re := regexp.MustCompile(`(?m)^#(\d+) \[[^\]]*\] RUN .*\b(pip|uv) .*\binstall\b`)
	m := re.FindStringSubmatch(out)
	if m == nil {
		return 0, false
	}
	step, _ = strconv.Atoi(m[1])
	return step, strings.Contains(out, "\n#"+m[1]+" CACHED\n")
}
