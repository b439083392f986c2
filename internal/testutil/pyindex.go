package testutil

import (
	"archive/zip"
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"html"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
)

// PythonIndexDebianPackages are the Debian packages whose installed Python
// distributions PythonIndex repackages. scripts/deps.sh installs them.
var PythonIndexDebianPackages = []string{
	"python3-flask", "python3-gunicorn", "python3-fastapi", "python3-uvicorn",
	"python3-django", "python3-setuptools", "python3-wheel",
}

// pyIndexRoots are the distributions PythonIndex serves, together with
// everything they require (transitively).
var pyIndexRoots = []string{
	"flask", "gunicorn", "fastapi", "uvicorn", "django", "setuptools", "wheel",
}

// pyIndexFormat changes whenever the wheels PythonIndex builds change, so
// that cached ones are rebuilt.
const pyIndexFormat = "pyindex-v2"

// pyDistPackages is where Debian installs Python distributions.
const pyDistPackages = "/usr/lib/python3/dist-packages"

// PythonIndex serves a PEP 503 "simple" package index on a loopback port
// for the life of t and returns its base URL (http://127.0.0.1:PORT, no
// trailing slash; pip's index URL is that plus "/simple").
//
// The index holds wheels of flask, gunicorn, fastapi, uvicorn, django,
// setuptools and wheel and everything they require, one version each,
// made by repackaging the distributions Debian installed under
// /usr/lib/python3/dist-packages (see PythonIndexDebianPackages). Pure
// Python distributions are tagged py3-none-any, those with extension
// modules cp311-cp311-linux_x86_64 (bookworm's Python). Because the index
// holds exactly the set Debian made work together, the wheels' Requires-Dist
// entries lose their version specifiers (Debian patches some: bookworm's
// fastapi 0.92 asks for starlette<0.26 but ships with 0.26.1) and
// requirements of extras are dropped.
//
// The wheels are built once and cached (see BaseTarball for the cache
// directory), keyed by the installed distributions. t is skipped when the
// Debian packages are missing.
func PythonIndex(t testing.TB) string {
	t.Helper()
	dir, err := pythonWheels(t)
	if err != nil {
		t.Fatalf("python index: %v", err)
	}
	h, err := newPyIndexHandler(dir)
	if err != nil {
		t.Fatalf("python index: %v", err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}

// pythonWheels returns the cache directory holding the index's wheels,
// building them first when needed.
func pythonWheels(t testing.TB) (string, error) {
	t.Helper()
	dists, err := scanDists(pyDistPackages)
	if err != nil {
		return "", err
	}
	var missing []string
	for _, r := range pyIndexRoots {
		if _, ok := dists[normalizeDistName(r)]; !ok {
			missing = append(missing, r)
		}
	}
	if len(missing) > 0 {
		t.Skipf("python index: distributions %s are not installed in %s; install the Debian packages %s",
			strings.Join(missing, ", "), pyDistPackages, strings.Join(PythonIndexDebianPackages, " "))
	}
	addDebianRequires(dists)
	closure, err := distClosure(t, dists, pyIndexRoots)
	if err != nil {
		return "", err
	}
	key := sha256.New()
	fmt.Fprintln(key, pyIndexFormat)
	for _, d := range closure {
		fmt.Fprintln(key, d.infoDir)
	}
	cache, err := baseCacheDir()
	if err != nil {
		return "", err
	}
	dir := filepath.Join(cache, "pyindex-"+hex.EncodeToString(key.Sum(nil)[:6]))
	if _, err := os.Stat(dir); err == nil {
		return dir, nil
	}
	if err := os.MkdirAll(cache, 0o755); err != nil {
		return "", fmt.Errorf("create cache directory: %w", err)
	}
	err = withFileLock(filepath.Join(cache, "pyindex.lock"), func() error {
		if _, err := os.Stat(dir); err == nil {
			return nil
		}
		tmp, err := os.MkdirTemp(cache, ".pyindex-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		for _, d := range closure {
			if err := d.writeWheel(tmp); err != nil {
				return fmt.Errorf("repackage %s: %w", d.infoDir, err)
			}
		}
		if err := syncDir(tmp); err != nil {
			return err
		}
		if err := os.Chmod(tmp, 0o755); err != nil {
			return err
		}
		return os.Rename(tmp, dir)
	})
	if err != nil {
		return "", err
	}
	t.Logf("python index: built %d wheels in %s", len(closure), dir)
	return dir, nil
}

func syncDir(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range append(entries, nil) {
		p := dir
		if e != nil {
			p = filepath.Join(dir, e.Name())
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		err = f.Sync()
		f.Close()
		if err != nil {
			return fmt.Errorf("sync %s: %w", p, err)
		}
	}
	return nil
}

// pyDist is one installed distribution.
type pyDist struct {
	root    string // dist-packages directory
	infoDir string // e.g. Flask-2.2.2.egg-info or fastapi-0.92.0.dist-info
	egg     bool   // infoDir is an .egg-info directory
	name    string // as in the metadata
	version string
	headers []string // metadata header lines (continuations joined), without Requires-Dist and Provides-Extra
	body    string   // metadata body (the description), may be empty
	reqs    []pyReq  // requirements that apply without extras
}

// pyReq is one requirement of a distribution.
type pyReq struct {
	name   string // as written
	extras string // "[a,b]" or ""
	marker string // environment marker without "extra", or ""
}

var (
	reqNameRe   = regexp.MustCompile(`^\s*([A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)\s*(\[[^\]]*\])?`)
	extraMarkRe = regexp.MustCompile(`\bextra\s*==`)
	distNameRe  = regexp.MustCompile(`[-_.]+`)
)

// normalizeDistName normalises a project name as PEP 503 says.
func normalizeDistName(s string) string {
	return strings.ToLower(distNameRe.ReplaceAllString(s, "-"))
}

// scanDists reads the metadata of every distribution installed in root,
// keyed by normalised name.
func scanDists(root string) (map[string]*pyDist, error) {
	entries, err := os.ReadDir(root)
	if errors.Is(err, fs.ErrNotExist) {
		return map[string]*pyDist{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list installed distributions: %w", err)
	}
	dists := map[string]*pyDist{}
	for _, e := range entries {
		n := e.Name()
		egg := strings.HasSuffix(n, ".egg-info")
		if !egg && !strings.HasSuffix(n, ".dist-info") || !e.IsDir() {
			continue
		}
		d, err := readDist(root, n, egg)
		if err != nil {
			return nil, err
		}
		// Keep the first of duplicates ("x-1.0.dist-info" sorts before a
		// version-less "x.egg-info").
		if d == nil {
			continue
		}
		if k := normalizeDistName(d.name); dists[k] == nil {
			dists[k] = d
		}
	}
	return dists, nil
}

// readDist reads one distribution's metadata; it returns nil for an info
// directory without metadata.
func readDist(root, infoDir string, egg bool) (*pyDist, error) {
	metaName := "METADATA"
	if egg {
		metaName = "PKG-INFO"
	}
	meta, err := os.ReadFile(filepath.Join(root, infoDir, metaName))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read metadata of %s: %w", infoDir, err)
	}
	d := &pyDist{root: root, infoDir: infoDir, egg: egg}
	head, body, _ := strings.Cut(strings.ReplaceAll(string(meta), "\r\n", "\n"), "\n\n")
	d.body = body
	var reqLines []string
	for _, line := range strings.Split(head, "\n") {
		if (strings.HasPrefix(line, " ") || strings.HasPrefix(line, "\t")) && len(d.headers) > 0 {
			d.headers[len(d.headers)-1] += "\n" + line
			continue
		}
		k, v, _ := strings.Cut(line, ":")
		v = strings.TrimSpace(v)
		switch strings.ToLower(k) {
		case "name":
			d.name = v
		case "version":
			d.version = v
		case "requires-dist":
			reqLines = append(reqLines, v)
			continue
		case "provides-extra":
			continue
		case "metadata-version":
			if v < "2.1" {
				line = "Metadata-Version: 2.1"
			}
		}
		d.headers = append(d.headers, line)
	}
	if d.name == "" || d.version == "" {
		return nil, fmt.Errorf("metadata of %s: no Name or Version", infoDir)
	}
	if egg {
		b, err := os.ReadFile(filepath.Join(root, infoDir, "requires.txt"))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("read %s/requires.txt: %w", infoDir, err)
		}
		reqLines = append(reqLines, eggRequires(string(b))...)
	}
	for _, l := range reqLines {
		spec, marker, _ := strings.Cut(l, ";")
		marker = strings.TrimSpace(marker)
		if extraMarkRe.MatchString(marker) {
			continue
		}
		m := reqNameRe.FindStringSubmatch(spec)
		if m == nil {
			return nil, fmt.Errorf("metadata of %s: cannot parse requirement %q", infoDir, l)
		}
		d.reqs = append(d.reqs, pyReq{name: m[1], extras: strings.ReplaceAll(m[2], " ", ""), marker: marker})
	}
	return d, nil
}

// eggRequires converts an egg-info requires.txt to Requires-Dist values.
// Sections are "[extra]", "[:marker]" or "[extra:marker]".
func eggRequires(s string) []string {
	var out []string
	extra, marker := "", ""
	for _, line := range strings.Split(s, "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			extra, marker, _ = strings.Cut(line[1:len(line)-1], ":")
		default:
			m := marker
			if extra != "" {
				m = "extra == '" + extra + "'" // dropped by readDist
			}
			if m != "" {
				line += "; " + m
			}
			out = append(out, line)
		}
	}
	return out
}

// addDebianRequires adds to each distribution the requirements its Debian
// package declares as dependencies on other packages' distributions:
// Debian strips install_requires from the egg-info requires.txt files it
// ships (Flask's lists only its extras). Without dpkg it does nothing.
func addDebianRequires(dists map[string]*pyDist) {
	var paths []string
	byPath := map[string]*pyDist{}
	for _, d := range dists {
		p := filepath.Join(d.root, d.infoDir)
		paths = append(paths, p)
		byPath[p] = d
	}
	sort.Strings(paths)
	if len(paths) == 0 {
		return
	}
	// dpkg -S fails for paths no package owns but still reports the rest.
	out, _ := exec.Command("dpkg-query", append([]string{"-S"}, paths...)...).Output()
	pkgDists := map[string][]*pyDist{}
	var pkgs []string
	for _, line := range strings.Split(string(out), "\n") {
		pkg, p, ok := strings.Cut(line, ": ")
		if !ok || byPath[p] == nil || strings.Contains(pkg, ",") {
			continue
		}
		pkg, _, _ = strings.Cut(pkg, ":") // drop an architecture qualifier
		if pkgDists[pkg] == nil {
			pkgs = append(pkgs, pkg)
		}
		pkgDists[pkg] = append(pkgDists[pkg], byPath[p])
	}
	if len(pkgs) == 0 {
		return
	}
	out, _ = exec.Command("dpkg-query", append([]string{"-W", "-f", "${Package}\t${Depends}\n"}, pkgs...)...).Output()
	for _, line := range strings.Split(string(out), "\n") {
		pkg, deps, ok := strings.Cut(line, "\t")
		if !ok {
			continue
		}
		for _, group := range strings.Split(deps, ",") {
			for _, alt := range strings.Split(group, "|") {
				name, _, _ := strings.Cut(strings.TrimSpace(alt), " ")
				name, _, _ = strings.Cut(name, ":")
				targets := pkgDists[name]
				if len(targets) == 0 {
					continue
				}
				for _, d := range pkgDists[pkg] {
					for _, dep := range targets {
						d.addReq(dep.name)
					}
				}
				break
			}
		}
	}
}

// addReq adds an unconditional requirement on name unless d already has
// one.
func (d *pyDist) addReq(name string) {
	n := normalizeDistName(name)
	if n == normalizeDistName(d.name) {
		return
	}
	for _, r := range d.reqs {
		if normalizeDistName(r.name) == n && r.marker == "" {
			return
		}
	}
	d.reqs = append(d.reqs, pyReq{name: name})
}

// distClosure returns the distributions roots require, transitively, in
// name order. A requirement that is not installed is skipped when it has a
// marker (it is for another Python or platform) and logged otherwise.
func distClosure(t testing.TB, dists map[string]*pyDist, roots []string) ([]*pyDist, error) {
	seen := map[string]bool{}
	var out []*pyDist
	queue := slices.Clone(roots)
	for len(queue) > 0 {
		n := normalizeDistName(queue[0])
		queue = queue[1:]
		if seen[n] {
			continue
		}
		seen[n] = true
		d := dists[n]
		if d == nil {
			return nil, fmt.Errorf("distribution %s is not installed", n)
		}
		out = append(out, d)
		for _, r := range d.reqs {
			rn := normalizeDistName(r.name)
			if dists[rn] == nil {
				if r.marker == "" {
					t.Logf("python index: %s requires %s, which is not installed; leaving it out", d.name, r.name)
				}
				continue
			}
			queue = append(queue, rn)
		}
	}
	sort.Slice(out, func(i, j int) bool { return normalizeDistName(out[i].name) < normalizeDistName(out[j].name) })
	return out, nil
}

// wheelName returns the distribution name as wheel file names spell it.
func (d *pyDist) wheelName() string {
	return strings.ReplaceAll(normalizeDistName(d.name), "-", "_")
}

// files returns the distribution's files as paths relative to its root
// directory, excluding its metadata and byte code.
func (d *pyDist) files() ([]string, error) {
	var files []string
	if rec, err := os.ReadFile(filepath.Join(d.root, d.infoDir, "RECORD")); err == nil && !d.egg {
		for _, line := range strings.Split(string(rec), "\n") {
			p, _, _ := strings.Cut(line, ",")
			p = strings.Trim(p, "\"")
			if p == "" || strings.HasPrefix(p, "../") || strings.HasPrefix(p, "/") ||
				strings.HasPrefix(p, d.infoDir+"/") || skipPyFile(p) {
				continue
			}
			if _, err := os.Stat(filepath.Join(d.root, p)); err != nil {
				continue // Debian moved or dropped it
			}
			files = append(files, p)
		}
		return files, nil
	}
	var tops []string
	if b, err := os.ReadFile(filepath.Join(d.root, d.infoDir, "top_level.txt")); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if l = strings.TrimSpace(l); l != "" && !strings.Contains(l, "/") {
				tops = append(tops, l)
			}
		}
	} else {
		tops = []string{d.wheelName()}
	}
	for _, top := range tops {
		if fi, err := os.Stat(filepath.Join(d.root, top)); err == nil && fi.IsDir() {
			if err := walkFollow(d.root, top, &files, 0); err != nil {
				return nil, err
			}
			continue
		}
		// A single-file module, pure or compiled.
		matches, _ := filepath.Glob(filepath.Join(d.root, top+".py"))
		so, _ := filepath.Glob(filepath.Join(d.root, top+".*.so"))
		for _, m := range append(matches, so...) {
			files = append(files, filepath.Base(m))
		}
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("no files found for modules %v", tops)
	}
	return files, nil
}

// walkFollow appends the files under root/rel to files, following symbolic
// links (Debian links bundled JavaScript to /usr/share/javascript).
func walkFollow(root, rel string, files *[]string, depth int) error {
	if depth > 40 {
		return fmt.Errorf("%s: directories nested too deep", rel)
	}
	entries, err := os.ReadDir(filepath.Join(root, rel))
	if err != nil {
		return err
	}
	for _, e := range entries {
		p := path.Join(rel, e.Name())
		if skipPyFile(p) {
			continue
		}
		fi, err := os.Stat(filepath.Join(root, p))
		if err != nil {
			continue // dangling link
		}
		switch {
		case fi.IsDir():
			if err := walkFollow(root, p, files, depth+1); err != nil {
				return err
			}
		case fi.Mode().IsRegular():
			*files = append(*files, p)
		}
	}
	return nil
}

func skipPyFile(p string) bool {
	return strings.Contains(p, "__pycache__") || strings.HasSuffix(p, ".pyc")
}

// writeWheel writes the distribution as a wheel into dir.
func (d *pyDist) writeWheel(dir string) error {
	files, err := d.files()
	if err != nil {
		return err
	}
	sort.Strings(files)
	pure := true
	for _, f := range files {
		if strings.HasSuffix(f, ".so") {
			pure = false
		}
	}
	tag := "py3-none-any"
	if !pure {
		tag = "cp311-cp311-linux_x86_64"
	}
	infoDir := d.wheelName() + "-" + d.version + ".dist-info"
	name := d.wheelName() + "-" + d.version + "-" + tag + ".whl"

	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	var record strings.Builder
	add := func(name string, data []byte) error {
		w, err := zw.CreateHeader(&zip.FileHeader{Name: name, Method: zip.Deflate})
		if err != nil {
			return err
		}
		if _, err := w.Write(data); err != nil {
			return err
		}
		sum := sha256.Sum256(data)
		fmt.Fprintf(&record, "%s,sha256=%s,%d\n", name, base64.RawURLEncoding.EncodeToString(sum[:]), len(data))
		return nil
	}
	for _, f := range files {
		data, err := os.ReadFile(filepath.Join(d.root, f))
		if err != nil {
			return err
		}
		if err := add(f, data); err != nil {
			return err
		}
	}
	if err := add(infoDir+"/METADATA", d.metadata()); err != nil {
		return err
	}
	wheel := fmt.Sprintf("Wheel-Version: 1.0\nGenerator: berth-testutil\nRoot-Is-Purelib: %t\nTag: %s\n", pure, tag)
	if err := add(infoDir+"/WHEEL", []byte(wheel)); err != nil {
		return err
	}
	for _, extra := range []string{"entry_points.txt", "top_level.txt"} {
		b, err := os.ReadFile(filepath.Join(d.root, d.infoDir, extra))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return err
		}
		if err := add(infoDir+"/"+extra, b); err != nil {
			return err
		}
	}
	w, err := zw.Create(infoDir + "/RECORD")
	if err != nil {
		return err
	}
	if _, err := io.WriteString(w, record.String()+infoDir+"/RECORD,,\n"); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, name), buf.Bytes(), 0o644)
}

// metadata returns the wheel's METADATA: the installed metadata with the
// requirements rewritten (see PythonIndex).
func (d *pyDist) metadata() []byte {
	var b strings.Builder
	for _, h := range d.headers {
		b.WriteString(h + "\n")
	}
	for _, r := range d.reqs {
		b.WriteString("Requires-Dist: " + r.name + r.extras)
		if r.marker != "" {
			b.WriteString("; " + r.marker)
		}
		b.WriteString("\n")
	}
	if d.body != "" {
		b.WriteString("\n" + d.body)
	}
	return []byte(b.String())
}

// pyIndexHandler serves the wheels in a directory as a PEP 503 index:
// /simple/ lists the projects, /simple/NAME/ links a project's wheels with
// #sha256= fragments, and /files/WHEEL serves a wheel.
type pyIndexHandler struct {
	dir      string
	projects map[string][]pyIndexFile // by normalised name
}

type pyIndexFile struct {
	name   string
	sha256 string
}

func newPyIndexHandler(dir string) (*pyIndexHandler, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	h := &pyIndexHandler{dir: dir, projects: map[string][]pyIndexFile{}}
	for _, e := range entries {
		n := e.Name()
		if !strings.HasSuffix(n, ".whl") {
			continue
		}
		proj, _, ok := strings.Cut(n, "-")
		if !ok {
			continue
		}
		f, err := os.Open(filepath.Join(dir, n))
		if err != nil {
			return nil, err
		}
		sum := sha256.New()
		_, err = io.Copy(sum, bufio.NewReader(f))
		f.Close()
		if err != nil {
			return nil, err
		}
		key := normalizeDistName(proj)
		h.projects[key] = append(h.projects[key], pyIndexFile{name: n, sha256: hex.EncodeToString(sum.Sum(nil))})
	}
	if len(h.projects) == 0 {
		return nil, fmt.Errorf("no wheels in %s", dir)
	}
	return h, nil
}

func (h *pyIndexHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	switch {
	case p == "/simple" || p == "/simple/":
		if p == "/simple" {
			http.Redirect(w, r, "/simple/", http.StatusMovedPermanently)
			return
		}
		names := make([]string, 0, len(h.projects))
		for n := range h.projects {
			names = append(names, n)
		}
		sort.Strings(names)
		var b strings.Builder
		b.WriteString("<!DOCTYPE html>\n<html><head><title>Simple index</title></head><body>\n")
		for _, n := range names {
			fmt.Fprintf(&b, "<a href=\"%s/\">%s</a><br/>\n", n, html.EscapeString(n))
		}
		b.WriteString("</body></html>\n")
		w.Header().Set("Content-Type", "text/html")
		io.WriteString(w, b.String()) //nolint:errcheck // client gone
	case strings.HasPrefix(p, "/simple/"):
		name := strings.Trim(strings.TrimPrefix(p, "/simple/"), "/")
		norm := normalizeDistName(name)
		files, ok := h.projects[norm]
		if !ok || strings.Contains(name, "/") {
			http.NotFound(w, r)
			return
		}
		if name != norm || !strings.HasSuffix(p, "/") {
			http.Redirect(w, r, "/simple/"+norm+"/", http.StatusMovedPermanently)
			return
		}
		var b strings.Builder
		fmt.Fprintf(&b, "<!DOCTYPE html>\n<html><head><title>Links for %s</title></head><body>\n<h1>Links for %s</h1>\n", norm, norm)
		for _, f := range files {
			fmt.Fprintf(&b, "<a href=\"../../files/%s#sha256=%s\">%s</a><br/>\n", f.name, f.sha256, html.EscapeString(f.name))
		}
		b.WriteString("</body></html>\n")
		w.Header().Set("Content-Type", "text/html")
		io.WriteString(w, b.String()) //nolint:errcheck // client gone
	case strings.HasPrefix(p, "/files/"):
		name := strings.TrimPrefix(p, "/files/")
		if name == "" || strings.ContainsAny(name, "/\\") || !strings.HasSuffix(name, ".whl") {
			http.NotFound(w, r)
			return
		}
		http.ServeFile(w, r, filepath.Join(h.dir, name))
	default:
		http.NotFound(w, r)
	}
}
