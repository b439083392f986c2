package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"

	"github.com/berthsh/berth/pkg/reference"
	"github.com/berthsh/berth/pkg/store"
)

// imgEnv is a berth data directory with an image store for CLI tests.
type imgEnv struct {
	t    *testing.T
	root string
	st   *store.Store
}

func newImgEnv(t *testing.T) *imgEnv {
	t.Helper()
	root := t.TempDir()
	st, err := store.Open(context.Background(), filepath.Join(root, "images"))
	if err != nil {
		t.Fatal(err)
	}
	return &imgEnv{t: t, root: root, st: st}
}

// imgOpts shape a test image.
type imgOpts struct {
	created     time.Time
	labels      map[string]string
	cmd         []string
	repoDigests []string
}

// newImg makes a random two-layer image with the given config settings.
func newImg(t *testing.T, o imgOpts) v1.Image {
	t.Helper()
	img, err := random.Image(512, 2)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.Created = v1.Time{Time: o.created}
	cf.Config.Labels = o.labels
	cf.Config.Cmd = o.cmd
	cf.OS, cf.Architecture = "linux", "amd64"
	for i := range cf.History {
		cf.History[i].Created = v1.Time{Time: o.created}
		cf.History[i].CreatedBy = "/bin/sh -c #(nop) ADD file:0123456789abcdef0123456789abcdef in /"
	}
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// put stores img under names (none: dangling) and returns its image ID.
func (e *imgEnv) put(img v1.Image, o imgOpts, names ...string) v1.Hash {
	e.t.Helper()
	var refs []reference.Reference
	for _, n := range names {
		r, err := reference.Parse(n)
		if err != nil {
			e.t.Fatal(err)
		}
		refs = append(refs, r)
	}
	if _, err := e.st.WriteImage(context.Background(), img, store.WriteOptions{Names: refs, RepoDigests: o.repoDigests}); err != nil {
		e.t.Fatal(err)
	}
	id, err := img.ConfigName()
	if err != nil {
		e.t.Fatal(err)
	}
	return id
}

// run runs berth with --root and stdin, returning stdout, stderr and the
// exit code.
func (e *imgEnv) run(stdin string, args ...string) (string, string, int) {
	e.t.Helper()
	var out, errOut bytes.Buffer
	code := Main(context.Background(), append([]string{"--root", e.root}, args...), strings.NewReader(stdin), &out, &errOut)
	return out.String(), errOut.String(), code
}

// mustRun runs berth and fails the test unless it exits 0.
func (e *imgEnv) mustRun(args ...string) string {
	e.t.Helper()
	out, errOut, code := e.run("", args...)
	if code != 0 {
		e.t.Fatalf("berth %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

// tableRows splits table output into rows of columns (separated by two or
// more spaces), header first.
func tableRows(out string) [][]string {
	var rows [][]string
	sep := regexp.MustCompile(`\s{2,}`)
	for _, l := range strings.Split(strings.TrimRight(out, "\n"), "\n") {
		if l != "" {
			rows = append(rows, sep.Split(strings.TrimSpace(l), -1))
		}
	}
	return rows
}

func lines(out string) []string {
	out = strings.TrimRight(out, "\n")
	if out == "" {
		return nil
	}
	return strings.Split(out, "\n")
}

// fixture: python:3.11 (3 hours old, with a repo digest), me/app:v1 and
// me/app:latest (one image, 2 hours old, label team=web), and a dangling
// image (1 hour old).
type imagesFixture struct {
	*imgEnv
	python, app, dangling v1.Hash
	pythonDigest          string
}

func newImagesFixture(t *testing.T) imagesFixture {
	e := newImgEnv(t)
	now := time.Now()
	f := imagesFixture{imgEnv: e}
	py := imgOpts{created: now.Add(-3 * time.Hour), labels: map[string]string{"team": "data"}}
	pyImg := newImg(t, py)
	md, _ := pyImg.Digest()
	f.pythonDigest = md.String()
	py.repoDigests = []string{"docker.io/library/python@" + md.String()}
	f.python = e.put(pyImg, py, "python:3.11")
	app := imgOpts{created: now.Add(-2 * time.Hour), labels: map[string]string{"team": "web"}, cmd: []string{"python3", "-m", "app"}}
	f.app = e.put(newImg(t, app), app, "me/app:v1", "me/app:latest")
	dang := imgOpts{created: now.Add(-time.Hour)}
	f.dangling = e.put(newImg(t, dang), dang)
	return f
}

func TestImagesTable(t *testing.T) {
	t.Parallel()
	f := newImagesFixture(t)
	rows := tableRows(f.mustRun("images"))
	want := [][]string{
		{"REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"},
		{"<none>", "<none>", f.dangling.Hex[:12], "About an hour ago"},
		{"me/app", "latest", f.app.Hex[:12], "2 hours ago"},
		{"me/app", "v1", f.app.Hex[:12], "2 hours ago"},
		{"python", "3.11", f.python.Hex[:12], "3 hours ago"},
	}
	if len(rows) != len(want) {
		t.Fatalf("got %d rows, want %d: %q", len(rows), len(want), rows)
	}
	if !reflect.DeepEqual(rows[0], want[0]) {
		t.Errorf("header %q, want %q", rows[0], want[0])
	}
	for i, w := range want[1:] {
		r := rows[i+1]
		if len(r) != 5 || !reflect.DeepEqual(r[:4], w) || !regexp.MustCompile(`^[0-9.]+k?B$`).MatchString(r[4]) {
			t.Errorf("row %d: %q, want %q and a size", i+1, r, w)
		}
	}

	// -q: each ID once, newest first.
	if got, want := lines(f.mustRun("images", "-q")), []string{f.dangling.Hex[:12], f.app.Hex[:12], f.python.Hex[:12]}; !reflect.DeepEqual(got, want) {
		t.Errorf("-q: %q, want %q", got, want)
	}
	// --no-trunc: full IDs.
	if out := f.mustRun("images", "--no-trunc", "python"); !strings.Contains(out, f.python.String()) {
		t.Errorf("--no-trunc:\n%s", out)
	}
	// --digests: a DIGEST column, filled from the repo digest.
	rows = tableRows(f.mustRun("images", "--digests"))
	if rows[0][2] != "DIGEST" {
		t.Errorf("--digests header %q", rows[0])
	}
	for _, r := range rows[1:] {
		wantDigest := "<none>"
		if r[0] == "python" {
			wantDigest = f.pythonDigest
		}
		if r[2] != wantDigest {
			t.Errorf("--digests row %q: digest %q, want %q", r, r[2], wantDigest)
		}
	}
	// The positional argument filters by repository, like docker.
	rows = tableRows(f.mustRun("images", "me/app"))
	if len(rows) != 3 || rows[1][0] != "me/app" || rows[2][0] != "me/app" {
		t.Errorf("images me/app: %q", rows)
	}
	if out := f.mustRun("images", "me/app:v1"); len(lines(out)) != 2 {
		t.Errorf("images me/app:v1:\n%s", out)
	}
}

func TestImagesFormat(t *testing.T) {
	t.Parallel()
	f := newImagesFixture(t)
	out := f.mustRun("images", "--format", "json", "python")
	var obj map[string]any
	if err := json.Unmarshal([]byte(out), &obj); err != nil {
		t.Fatalf("json output %q: %v", out, err)
	}
	var keys []string
	for k := range obj {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	wantKeys := []string{"Containers", "CreatedAt", "CreatedSince", "Digest", "ID", "Repository", "SharedSize", "Size", "Tag", "UniqueSize"}
	if !reflect.DeepEqual(keys, wantKeys) {
		t.Errorf("json keys %q, want %q", keys, wantKeys)
	}
	if obj["ID"] != f.python.Hex[:12] || obj["Repository"] != "python" || obj["Tag"] != "3.11" || obj["CreatedSince"] != "3 hours ago" {
		t.Errorf("json object %v", obj)
	}

	tests := []struct {
		format string
		want   []string
	}{
		{"{{.Repository}}:{{.Tag}}", []string{"<none>:<none>", "me/app:latest", "me/app:v1", "python:3.11"}},
		{"table {{.Repository}}\t{{.ID}}", []string{"REPOSITORY   IMAGE ID", "<none>       " + f.dangling.Hex[:12],
			"me/app       " + f.app.Hex[:12], "me/app       " + f.app.Hex[:12], "python       " + f.python.Hex[:12]}},
		{"{{.ID}} {{.Digest}}", []string{f.dangling.Hex[:12] + " <none>", f.app.Hex[:12] + " <none>", f.app.Hex[:12] + " <none>", f.python.Hex[:12] + " " + f.pythonDigest}},
	}
	for _, tt := range tests {
		if got := lines(f.mustRun("images", "--format", tt.format)); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("--format %q:\n got %q\nwant %q", tt.format, got, tt.want)
		}
	}
	// A bad template is a usage error.
	if _, errOut, code := f.run("", "images", "--format", "{{.Nope"); code != 125 || !strings.Contains(errOut, "template") {
		t.Errorf("bad template: exit %d, %s", code, errOut)
	}
}

func TestImagesFilter(t *testing.T) {
	t.Parallel()
	f := newImagesFixture(t)
	tests := []struct {
		filters []string
		want    []string // Repository:Tag rows
		code    int
	}{
		{[]string{"dangling=true"}, []string{"<none>:<none>"}, 0},
		{[]string{"dangling=false"}, []string{"me/app:latest", "me/app:v1", "python:3.11"}, 0},
		{[]string{"reference=py*"}, []string{"python:3.11"}, 0},
		{[]string{"reference=*/*:v1"}, []string{"me/app:v1"}, 0},
		{[]string{"reference=*:v1"}, nil, 0}, // "*" does not match "/", as in docker
		{[]string{"reference=me/*", "reference=python"}, []string{"me/app:latest", "me/app:v1", "python:3.11"}, 0},
		{[]string{"before=me/app:v1"}, []string{"python:3.11"}, 0},
		{[]string{"since=me/app:v1"}, []string{"<none>:<none>"}, 0},
		{[]string{"since=" + f.python.Hex[:8]}, []string{"<none>:<none>", "me/app:latest", "me/app:v1"}, 0},
		{[]string{"label=team"}, []string{"me/app:latest", "me/app:v1", "python:3.11"}, 0},
		{[]string{"label=team=web"}, []string{"me/app:latest", "me/app:v1"}, 0},
		{[]string{"label=team=web", "reference=*/*:latest"}, []string{"me/app:latest"}, 0},
		{[]string{"dangling=maybe"}, nil, 125},
		{[]string{"bogus=1"}, nil, 125},
		{[]string{"before=nosuch:1"}, nil, 1},
	}
	for _, tt := range tests {
		args := []string{"images", "--format", "{{.Repository}}:{{.Tag}}"}
		for _, fl := range tt.filters {
			args = append(args, "--filter", fl)
		}
		out, errOut, code := f.run("", args...)
		if code != tt.code {
			t.Errorf("%q: exit %d, want %d (%s)", tt.filters, code, tt.code, errOut)
			continue
		}
		if got := lines(out); code == 0 && !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%q: got %q, want %q", tt.filters, got, tt.want)
		}
	}
	// -q with a filter, as in "berth rmi $(berth images -qf dangling=true)".
	if got := lines(f.mustRun("images", "-qf", "dangling=true")); !reflect.DeepEqual(got, []string{f.dangling.Hex[:12]}) {
		t.Errorf("-qf dangling=true: %q", got)
	}
}

func TestTagAndRmi(t *testing.T) {
	t.Parallel()
	e := newImgEnv(t)
	o := imgOpts{created: time.Now()}
	id := e.put(newImg(t, o), o, "python:3.11")

	// tag by name and by ID prefix.
	e.mustRun("tag", "python:3.11", "registry.example.com/team/python:3.11")
	e.mustRun("image", "tag", id.Hex[:10], "python:stable")
	if got := lines(e.mustRun("images", "--format", "{{.Repository}}:{{.Tag}}")); !reflect.DeepEqual(got,
		[]string{"python:3.11", "python:stable", "registry.example.com/team/python:3.11"}) {
		t.Fatalf("after tag: %q", got)
	}
	tagErrs := []struct {
		args    []string
		code    int
		message string
	}{
		{[]string{"tag", "nosuch", "x:1"}, 1, "Error: No such image: nosuch\n"},
		{[]string{"tag", "python:3.11", "UPPER/Case"}, 125, "invalid reference"},
		{[]string{"tag", "python:3.11"}, 125, `"berth tag" requires exactly 2 arguments`},
	}
	for _, tt := range tagErrs {
		if _, errOut, code := e.run("", tt.args...); code != tt.code || !strings.Contains(errOut, tt.message) {
			t.Errorf("%q: exit %d, stderr %q; want %d, %q", tt.args, code, errOut, tt.code, tt.message)
		}
	}

	// By ID, names in two repositories: refused without -f.
	out, errOut, code := e.run("", "rmi", id.Hex[:12])
	if code != 1 || out != "" || !strings.Contains(errOut, "must be forced") {
		t.Errorf("rmi by ID: exit %d, out %q, err %q", code, out, errOut)
	}
	// By name: untagged only.
	if out := e.mustRun("rmi", "python:stable"); out != "Untagged: python:stable\n" {
		t.Errorf("rmi name: %q", out)
	}
	// Unknown names fail, the others are still removed, exit 1.
	out, errOut, code = e.run("", "rmi", "nosuch:1", "registry.example.com/team/python:3.11")
	if code != 1 || out != "Untagged: registry.example.com/team/python:3.11\n" || errOut != "Error: No such image: nosuch:1\n" {
		t.Errorf("rmi unknown+name: exit %d, out %q, err %q", code, out, errOut)
	}
	// Last name: untagged and deleted.
	e.mustRun("tag", "python:3.11", "other/python:1")
	out = e.mustRun("image", "rm", "-f", id.String())
	want := "Untagged: python:3.11\nUntagged: other/python:1\nDeleted: " + id.String() + "\n"
	if out != want {
		t.Errorf("rmi -f by ID:\n got %q\nwant %q", out, want)
	}
	if got := e.mustRun("images", "-q"); got != "" {
		t.Errorf("images after rmi: %q", got)
	}
	// -f ignores unknown images (but reports them), as docker.
	if out, errOut, code := e.run("", "rmi", "-f", "nosuch"); code != 0 || out != "" || !strings.Contains(errOut, "No such image: nosuch") {
		t.Errorf("rmi -f unknown: exit %d, out %q, err %q", code, out, errOut)
	}
}

func TestImagePrune(t *testing.T) {
	t.Parallel()
	e := newImgEnv(t)
	o := imgOpts{created: time.Now()}
	named := e.put(newImg(t, o), o, "app:v1")
	dangling := e.put(newImg(t, o), o)
	dangling2 := e.put(newImg(t, o), o)
	ids := func() []string { return lines(e.mustRun("images", "-q", "--no-trunc")) }

	// Declined: nothing removed, exit 1, as docker.
	out, _, code := e.run("n\n", "image", "prune")
	if code != 1 || out != pruneDanglingWarning+" [y/N] " || len(ids()) != 3 {
		t.Errorf("declined prune: exit %d, out %q, images %q", code, out, ids())
	}
	// No answer (stdin at EOF) declines too.
	if _, _, code := e.run("", "image", "prune"); code != 1 || len(ids()) != 3 {
		t.Errorf("prune without answer: exit %d, images %q", code, ids())
	}
	// Confirmed: dangling images only.
	out, errOut, code := e.run("y\n", "image", "prune")
	if code != 0 {
		t.Fatalf("prune: exit %d: %s", code, errOut)
	}
	for _, want := range []string{"Deleted Images:\n", "deleted: " + dangling.String() + "\n", "deleted: " + dangling2.String() + "\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("prune output lacks %q:\n%s", want, out)
		}
	}
	if !regexp.MustCompile(`\n\nTotal reclaimed space: [0-9.]+kB\n$`).MatchString(out) {
		t.Errorf("prune output:\n%s", out)
	}
	if got := ids(); !reflect.DeepEqual(got, []string{named.String()}) {
		t.Errorf("after prune: %q", got)
	}
	// Nothing left to prune.
	if out := e.mustRun("image", "prune", "-f"); out != "Total reclaimed space: 0B\n" {
		t.Errorf("empty prune: %q", out)
	}
	// -a removes named images too.
	out = e.mustRun("image", "prune", "-a", "-f")
	if !strings.Contains(out, "untagged: app:v1\ndeleted: "+named.String()+"\n") {
		t.Errorf("prune -a:\n%s", out)
	}
	if got := ids(); len(got) != 0 {
		t.Errorf("after prune -a: %q", got)
	}
	blobs, _ := os.ReadDir(filepath.Join(e.root, "images", "blobs", "sha256"))
	if len(blobs) != 0 {
		t.Errorf("%d blobs left after prune -a", len(blobs))
	}
}

func TestImageVerify(t *testing.T) {
	t.Parallel()
	e := newImgEnv(t)
	o := imgOpts{created: time.Now()}
	img := newImg(t, o)
	e.put(img, o, "app:v1")
	e.put(newImg(t, o), o, "other:v1")

	if out := e.mustRun("image", "verify"); out != "OK: 2 images, 8 blobs verified\n" {
		t.Errorf("verify: %q", out)
	}
	// Damage one layer of app:v1, keeping its size.
	m, _ := img.Manifest()
	layer := m.Layers[0].Digest
	p := filepath.Join(e.root, "images", "blobs", "sha256", layer.Hex)
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0xff
	if err := os.Chmod(p, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	out, errOut, code := e.run("", "image", "verify")
	if code != 1 || len(lines(out)) != 1 || !strings.HasPrefix(out, "app:v1: blob "+layer.String()+": ") || !strings.Contains(errOut, "1 problem(s)") {
		t.Errorf("verify damaged: exit %d\nstdout %q\nstderr %q", code, out, errOut)
	}
	out, _, code = e.run("", "image", "verify", "--format", "json")
	var rep verifyReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil || code != 1 {
		t.Fatalf("verify json: exit %d, %q: %v", code, out, err)
	}
	if rep.Images != 2 || len(rep.Problems) != 1 || rep.Problems[0].Blob != layer.String() || rep.Problems[0].Image != "app:v1" {
		t.Errorf("verify json report %+v", rep)
	}
}
