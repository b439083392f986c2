package testutil

import (
	"archive/zip"
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestNormalizeDistName(t *testing.T) {
	for in, want := range map[string]string{
		"Flask":             "flask",
		"typing_extensions": "typing-extensions",
		"zope.interface":    "zope-interface",
		"A__B-.c":           "a-b-c",
	} {
		if got := normalizeDistName(in); got != want {
			t.Errorf("normalizeDistName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestEggRequires(t *testing.T) {
	in := "Werkzeug>=2.2.2\nclick>=8.0\n\n[:python_version < \"3.10\"]\nimportlib-metadata>=3.6.0\n\n[async]\nasgiref>=3.2\n\n[standard:sys_platform == \"win32\"]\ncolorama\n"
	got := eggRequires(in)
	want := []string{
		"Werkzeug>=2.2.2",
		"click>=8.0",
		"importlib-metadata>=3.6.0; python_version < \"3.10\"",
		"asgiref>=3.2; extra == 'async'",
		"colorama; extra == 'standard'",
	}
	if !slices.Equal(got, want) {
		t.Errorf("eggRequires = %q\nwant %q", got, want)
	}
}

func TestReadDistRewritesRequirements(t *testing.T) {
	root := t.TempDir()
	info := filepath.Join(root, "Demo_Pkg-1.0.egg-info")
	if err := os.MkdirAll(info, 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(name, data string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(root, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("Demo_Pkg-1.0.egg-info/PKG-INFO", "Metadata-Version: 1.1\nName: Demo_Pkg\nVersion: 1.0\nRequires-Dist: other (>=2)\nProvides-Extra: x\n\nLong text.\n")
	write("Demo_Pkg-1.0.egg-info/requires.txt", "dep[a, b]>=1,<2\n[x]\nextra-dep\n")
	write("Demo_Pkg-1.0.egg-info/top_level.txt", "demo\n")
	if err := os.MkdirAll(filepath.Join(root, "demo", "__pycache__"), 0o755); err != nil {
		t.Fatal(err)
	}
	write("demo/__init__.py", "X = 1\n")
	write("demo/__pycache__/__init__.cpython-311.pyc", "junk")

	dists, err := scanDists(root)
	if err != nil {
		t.Fatal(err)
	}
	d := dists["demo-pkg"]
	if d == nil {
		t.Fatalf("scanDists found %v, want demo-pkg", dists)
	}
	meta := string(d.metadata())
	for _, want := range []string{"Metadata-Version: 2.1\n", "Requires-Dist: other\n", "Requires-Dist: dep[a,b]\n", "\nLong text.\n"} {
		if !strings.Contains(meta, want) {
			t.Errorf("metadata lacks %q:\n%s", want, meta)
		}
	}
	if strings.Contains(meta, "extra-dep") || strings.Contains(meta, "Provides-Extra") {
		t.Errorf("metadata keeps extras:\n%s", meta)
	}

	out := t.TempDir()
	if err := d.writeWheel(out); err != nil {
		t.Fatal(err)
	}
	whl := filepath.Join(out, "demo_pkg-1.0-py3-none-any.whl")
	zr, err := zip.OpenReader(whl)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	contents := map[string][]byte{}
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(rc)
		rc.Close()
		contents[f.Name] = b
	}
	var names []string
	for n := range contents {
		names = append(names, n)
	}
	slices.Sort(names)
	wantNames := []string{
		"demo/__init__.py",
		"demo_pkg-1.0.dist-info/METADATA",
		"demo_pkg-1.0.dist-info/RECORD",
		"demo_pkg-1.0.dist-info/WHEEL",
		"demo_pkg-1.0.dist-info/top_level.txt",
	}
	if !slices.Equal(names, wantNames) {
		t.Fatalf("wheel holds %q, want %q", names, wantNames)
	}
	// Every RECORD entry but RECORD's own carries the file's hash and size.
	for _, line := range strings.Split(strings.TrimSpace(string(contents["demo_pkg-1.0.dist-info/RECORD"])), "\n") {
		parts := strings.Split(line, ",")
		if len(parts) != 3 {
			t.Fatalf("bad RECORD line %q", line)
		}
		if parts[0] == "demo_pkg-1.0.dist-info/RECORD" {
			continue
		}
		sum := sha256.Sum256(contents[parts[0]])
		if want := "sha256=" + base64.RawURLEncoding.EncodeToString(sum[:]); parts[1] != want {
			t.Errorf("RECORD hash of %s = %s, want %s", parts[0], parts[1], want)
		}
	}
	if !strings.Contains(string(contents["demo_pkg-1.0.dist-info/WHEEL"]), "Tag: py3-none-any\n") {
		t.Errorf("WHEEL = %q", contents["demo_pkg-1.0.dist-info/WHEEL"])
	}
}

func TestPyIndexHandler(t *testing.T) {
	dir := t.TempDir()
	data := []byte("not really a zip")
	if err := os.WriteFile(filepath.Join(dir, "typing_extensions-4.4.0-py3-none-any.whl"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	h, err := newPyIndexHandler(dir)
	if err != nil {
		t.Fatal(err)
	}
	srv := newLoopbackServer(t, h)
	get := func(p string) (int, string) {
		t.Helper()
		resp, err := http.Get(srv + p)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get("/simple/"); code != 200 || !strings.Contains(body, `href="typing-extensions/"`) {
		t.Errorf("/simple/ = %d %s", code, body)
	}
	sum := sha256.Sum256(data)
	wantHref := `href="../../files/typing_extensions-4.4.0-py3-none-any.whl#sha256=` + hex.EncodeToString(sum[:]) + `"`
	// The non-normalised name redirects to the normalised page.
	if code, body := get("/simple/Typing_Extensions"); code != 200 || !strings.Contains(body, wantHref) {
		t.Errorf("/simple/Typing_Extensions = %d %s, want link %s", code, body, wantHref)
	}
	if code, body := get("/files/typing_extensions-4.4.0-py3-none-any.whl"); code != 200 || body != string(data) {
		t.Errorf("wheel download = %d %q", code, body)
	}
	if code, _ := get("/simple/nope/"); code != 404 {
		t.Errorf("/simple/nope/ = %d, want 404", code)
	}
	if code, _ := get("/files/..%2fetc"); code != 404 {
		t.Errorf("path escape = %d, want 404", code)
	}
}

func newLoopbackServer(t *testing.T, h http.Handler) string {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}

// TestPythonIndexPipInstall builds the real index from Debian's packages
// and has the host's pip install flask and fastapi from it.
func TestPythonIndexPipInstall(t *testing.T) {
	if testing.Short() {
		t.Skip("repackages installed Python distributions")
	}
	python, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 not found")
	}
	if err := exec.Command(python, "-m", "pip", "--version").Run(); err != nil {
		t.Skip("pip is not available for python3")
	}
	index := PythonIndex(t)
	target := t.TempDir()
	cmd := exec.Command(python, "-m", "pip", "install", "--disable-pip-version-check", "--no-cache-dir",
		"--index-url", index+"/simple", "--trusted-host", "127.0.0.1",
		"--target", target, "flask", "fastapi", "uvicorn", "gunicorn", "django")
	cmd.Env = append(os.Environ(), "PIP_CONFIG_FILE=/dev/null", "PIP_NO_INPUT=1")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("pip install from the index: %v\n%s", err, out.String())
	}
	for _, want := range []string{"flask/app.py", "werkzeug", "jinja2", "markupsafe", "fastapi", "starlette", "pydantic", "uvicorn", "django", "asgiref"} {
		if _, err := os.Stat(filepath.Join(target, want)); err != nil {
			t.Errorf("pip did not install %s: %v", want, err)
		}
	}
	// Entry points become scripts.
	if _, err := os.Stat(filepath.Join(target, "bin", "gunicorn")); err != nil {
		t.Errorf("gunicorn script missing: %v", err)
	}
}

func TestScanDistsPrefersVersionedInfoDir(t *testing.T) {
	root := t.TempDir()
	for name, meta := range map[string]string{
		"x-1.0.dist-info/METADATA": "Metadata-Version: 2.1\nName: x\nVersion: 1.0\n",
		"x.egg-info/PKG-INFO":      "Metadata-Version: 1.1\nName: x\nVersion: 0.9\n",
		"empty.egg-info/README":    "no metadata here",
	} {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(meta), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	dists, err := scanDists(root)
	if err != nil {
		t.Fatal(err)
	}
	if len(dists) != 1 || dists["x"] == nil || dists["x"].version != "1.0" {
		t.Fatalf("scanDists = %v, want only x 1.0", dists)
	}
}
