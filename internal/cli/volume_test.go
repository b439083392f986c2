package cli

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/berthsh/berth/pkg/runtime/volume"
)

func TestVolumeCreateLsInspect(t *testing.T) {
	e := newImgEnv(t)
	if out := e.mustRun("volume", "create", "pgdata"); out != "pgdata\n" {
		t.Errorf("create printed %q", out)
	}
	if out := e.mustRun("volume", "create", "--label", "project=shop", "--label", "tier", "-o", "type=tmpfs", "-o", "device=tmpfs", "cache"); out != "cache\n" {
		t.Errorf("create printed %q", out)
	}
	anon := strings.TrimSpace(e.mustRun("volume", "create"))
	if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(anon) {
		t.Errorf("create without a name printed %q", anon)
	}
	// Creating again is no error and changes nothing.
	e.mustRun("volume", "create", "pgdata")
	e.mustRun("volume", "create", "--name", "pgdata")

	names := []string{anon, "cache", "pgdata"}
	sort.Strings(names) // the random name sorts anywhere
	want := [][]string{{"DRIVER", "VOLUME NAME"}}
	for _, n := range names {
		want = append(want, []string{"local", n})
	}
	if got := tableRows(e.mustRun("volume", "ls")); !reflect.DeepEqual(got, want) {
		t.Errorf("volume ls = %q, want %q", got, want)
	}
	if got := lines(e.mustRun("volume", "list", "-q")); !reflect.DeepEqual(got, names) {
		t.Errorf("volume ls -q = %q", got)
	}
	if got := lines(e.mustRun("volume", "ls", "-q", "-f", "label=project=shop")); !reflect.DeepEqual(got, []string{"cache"}) {
		t.Errorf("volume ls -q -f label=project=shop = %q", got)
	}
	if got := lines(e.mustRun("volume", "ls", "--filter", "name=^p", "--filter", "dangling=true", "--format", "{{.Name}}")); !reflect.DeepEqual(got, []string{"pgdata"}) {
		t.Errorf("volume ls --filter name=^p = %q", got)
	}
	if got := lines(e.mustRun("volume", "ls", "-f", "name=cache", "--format", `{{.Name}} {{.Label "project"}} {{.Labels}}`)); !reflect.DeepEqual(got, []string{"cache shop project=shop,tier="}) {
		t.Errorf("volume ls --format with labels = %q", got)
	}
	if got := tableRows(e.mustRun("volume", "ls", "-f", "name=pgdata", "--format", "table {{.Name}}\t{{.Scope}}")); !reflect.DeepEqual(got, [][]string{{"VOLUME NAME", "SCOPE"}, {"pgdata", "local"}}) {
		t.Errorf("volume ls --format table = %q", got)
	}
	var row map[string]string
	if err := json.Unmarshal([]byte(e.mustRun("volume", "ls", "-f", "name=pgdata", "--format", "json")), &row); err != nil {
		t.Fatal(err)
	}
	mp := filepath.Join(e.root, "volumes", "pgdata", "_data")
	if row["Name"] != "pgdata" || row["Driver"] != "local" || row["Mountpoint"] != mp || row["Size"] != "N/A" {
		t.Errorf("volume ls --format json = %v", row)
	}

	var objs []map[string]any
	if err := json.Unmarshal([]byte(e.mustRun("volume", "inspect", "pgdata", "cache")), &objs); err != nil {
		t.Fatal(err)
	}
	if len(objs) != 2 {
		t.Fatalf("inspect printed %d objects", len(objs))
	}
	keys := func(m map[string]any) []string {
		var ks []string
		for k := range m {
			ks = append(ks, k)
		}
		return ks
	}
	wantKeys := []string{"CreatedAt", "Driver", "Labels", "Mountpoint", "Name", "Options", "Scope"}
	if got := keys(objs[0]); len(got) != len(wantKeys) {
		t.Errorf("inspect keys %v, want %v", got, wantKeys)
	}
	if objs[0]["Name"] != "pgdata" || objs[0]["Mountpoint"] != mp || objs[0]["Driver"] != "local" || objs[0]["Scope"] != "local" || objs[0]["Labels"] != nil {
		t.Errorf("inspect pgdata = %v", objs[0])
	}
	if ca, _ := objs[0]["CreatedAt"].(string); !regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(Z|[+-]\d\d:\d\d)$`).MatchString(ca) {
		t.Errorf("CreatedAt %q is not RFC 3339", ca)
	}
	wantCache := map[string]any{"project": "shop", "tier": ""}
	wantOpts := map[string]any{"type": "tmpfs", "device": "tmpfs"}
	if !reflect.DeepEqual(objs[1]["Labels"], wantCache) || !reflect.DeepEqual(objs[1]["Options"], wantOpts) {
		t.Errorf("inspect cache = %v", objs[1])
	}
	if out := e.mustRun("volume", "inspect", "-f", "{{.Mountpoint}}", "pgdata"); out != mp+"\n" {
		t.Errorf("inspect -f printed %q", out)
	}
	if fi, err := os.Stat(mp); err != nil || !fi.IsDir() {
		t.Errorf("mount point: %v", err)
	}

	// Unknown volumes: the known ones are still printed.
	out, errOut, code := e.run("", "volume", "inspect", "pgdata", "nope")
	if code != 1 || !strings.Contains(errOut, "Error: No such volume: nope") || !strings.Contains(out, `"Name": "pgdata"`) {
		t.Errorf("inspect pgdata nope: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
}

func TestVolumeCreateErrors(t *testing.T) {
	e := newImgEnv(t)
	e.mustRun("volume", "create", "--label", "a=1", "taken")
	tests := []struct {
		args     []string
		code     int
		contains string
	}{
		{[]string{"volume", "create", "x"}, 125, "invalid characters for a local volume name"},
		{[]string{"volume", "create", "/srv/data"}, 125, "use an absolute path"},
		{[]string{"volume", "create", "--label", "a=2", "taken"}, 1, "already exists with other labels"},
		{[]string{"volume", "create", "--name", "one", "two"}, 125, "conflicting options"},
		{[]string{"volume", "create", "-d", "nfs", "v1"}, 1, `volume driver "nfs" is not supported`},
		{[]string{"volume", "create", "--label", "=x", "v1"}, 125, "the key is empty"},
		{[]string{"volume", "create", "-o", "bogus=1", "v1"}, 125, `invalid volume option "bogus"`},
		{[]string{"volume", "create", "a1", "a2"}, 125, "at most 1 argument"},
		{[]string{"volume", "ls", "-f", "color=red"}, 125, "invalid filter 'color'"},
	}
	for _, tt := range tests {
		out, errOut, code := e.run("", tt.args...)
		if code != tt.code || !strings.Contains(errOut, tt.contains) {
			t.Errorf("berth %s: exit %d, want %d with %q\nstdout:\n%s\nstderr:\n%s", strings.Join(tt.args, " "), code, tt.code, tt.contains, out, errOut)
		}
	}
	if got := lines(e.mustRun("volume", "ls", "-q")); !reflect.DeepEqual(got, []string{"taken"}) {
		t.Errorf("failed creates left volumes: %q", got)
	}
}

func TestVolumeRm(t *testing.T) {
	e := newImgEnv(t)
	e.mustRun("volume", "create", "v1")
	e.mustRun("volume", "create", "v2")
	e.mustRun("volume", "create", "v3")

	if out := e.mustRun("volume", "rm", "v1"); out != "v1\n" {
		t.Errorf("rm printed %q", out)
	}
	out, errOut, code := e.run("", "volume", "rm", "v2", "nope", "v3")
	if code != 1 || out != "v2\nv3\n" || strings.TrimSpace(errOut) != "Error: No such volume: nope" {
		t.Errorf("rm v2 nope v3: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	// Like docker, the name is printed as if it had been removed.
	if out := e.mustRun("volume", "rm", "-f", "nope"); out != "nope\n" {
		t.Errorf("rm -f nope printed %q", out)
	}
	if got := e.mustRun("volume", "ls", "-q"); got != "" {
		t.Errorf("volumes left: %q", got)
	}
	if entries, _ := os.ReadDir(filepath.Join(e.root, "volumes")); len(entries) != 1 {
		t.Errorf("volumes directory holds %d entries, want only the lock file", len(entries))
	}
}

func TestVolumePrune(t *testing.T) {
	e := newImgEnv(t)
	st, err := volume.Open(context.Background(), filepath.Join(e.root, "volumes"))
	if err != nil {
		t.Fatal(err)
	}
	anon, err := st.Create(context.Background(), "", volume.CreateOptions{Labels: map[string]string{volume.AnonymousLabel: ""}})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(anon.Mountpoint, "f"), []byte("12345"), 0o644); err != nil {
		t.Fatal(err)
	}
	e.mustRun("volume", "create", "named")
	e.mustRun("volume", "create", "--label", "keep=1", "kept")

	// Declining removes nothing.
	out, _, code := e.run("n\n", "volume", "prune")
	if code != 1 || !strings.HasPrefix(out, "WARNING! This will remove anonymous local volumes") {
		t.Errorf("declined prune: exit %d, stdout %q", code, out)
	}
	if got := lines(e.mustRun("volume", "ls", "-q")); len(got) != 3 {
		t.Fatalf("declined prune removed volumes: %q", got)
	}

	out, errOut, code := e.run("y\n", "volume", "prune")
	want := "Are you sure you want to continue? [y/N] Deleted Volumes:\n" + anon.Name + "\n\nTotal reclaimed space: 5B\n"
	if code != 0 || !strings.HasSuffix(out, want) {
		t.Errorf("prune: exit %d\nstdout:\n%s\nwant suffix:\n%s\nstderr:\n%s", code, out, want, errOut)
	}
	if out := e.mustRun("volume", "prune", "-f"); out != "Total reclaimed space: 0B\n" {
		t.Errorf("prune with nothing to do printed %q", out)
	}
	if out := e.mustRun("volume", "prune", "-a", "-f", "--filter", "label!=keep"); out != "Deleted Volumes:\nnamed\n\nTotal reclaimed space: 0B\n" {
		t.Errorf("prune -a --filter label!=keep printed %q", out)
	}
	if got := lines(e.mustRun("volume", "ls", "-q")); !reflect.DeepEqual(got, []string{"kept"}) {
		t.Errorf("after prune: %q", got)
	}
	if _, errOut, code := e.run("", "volume", "prune", "-f", "--filter", "dangling=true"); code != 125 || !strings.Contains(errOut, "invalid filter") {
		t.Errorf("prune --filter dangling: exit %d, stderr %q", code, errOut)
	}
	out, _, code = e.run("y\n", "volume", "prune", "--all")
	if code != 0 || !strings.HasPrefix(out, "WARNING! This will remove all local volumes") || !strings.Contains(out, "Deleted Volumes:\nkept\n") {
		t.Errorf("prune --all: exit %d, stdout %q", code, out)
	}
}
