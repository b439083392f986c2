package cli

import (
	"bytes"
	"encoding/json"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestInspectImage(t *testing.T) {
	t.Parallel()
	e := newImgEnv(t)
	created := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	o := imgOpts{created: created, cmd: []string{"python3", "-m", "app"}, labels: map[string]string{"team": "web"}}
	id := e.put(newImg(t, o), o, "me/app:v1", "me/app:latest")

	for _, cmd := range [][]string{{"inspect"}, {"image", "inspect"}, {"inspect", "--type", "image"}} {
		out := e.mustRun(append(cmd, "me/app:v1")...)
		var objs []map[string]any
		if err := json.Unmarshal([]byte(out), &objs); err != nil || len(objs) != 1 {
			t.Fatalf("%q: %v\n%s", cmd, err, out)
		}
		obj := objs[0]
		if obj["Id"] != id.String() {
			t.Errorf("%q: Id %v, want %s", cmd, obj["Id"], id)
		}
		if !reflect.DeepEqual(obj["RepoTags"], []any{"me/app:latest", "me/app:v1"}) {
			t.Errorf("RepoTags %v", obj["RepoTags"])
		}
		if !reflect.DeepEqual(obj["RepoDigests"], []any{}) || obj["Parent"] != "" || obj["Created"] != "2024-05-01T12:00:00Z" {
			t.Errorf("RepoDigests/Parent/Created: %v %v %v", obj["RepoDigests"], obj["Parent"], obj["Created"])
		}
		cfg, _ := obj["Config"].(map[string]any)
		if !reflect.DeepEqual(cfg["Cmd"], []any{"python3", "-m", "app"}) || cfg["Hostname"] != "" || cfg["Entrypoint"] != nil {
			t.Errorf("Config %v", cfg)
		}
		if obj["Os"] != "linux" || obj["Architecture"] != "amd64" {
			t.Errorf("platform %v/%v", obj["Os"], obj["Architecture"])
		}
		rootfs, _ := obj["RootFS"].(map[string]any)
		if layers, _ := rootfs["Layers"].([]any); rootfs["Type"] != "layers" || len(layers) != 2 {
			t.Errorf("RootFS %v", rootfs)
		}
		if _, ok := obj["Metadata"].(map[string]any)["LastTagTime"]; !ok {
			t.Errorf("Metadata %v", obj["Metadata"])
		}
		if !strings.HasPrefix(out, "[\n    {\n        \"Id\": ") {
			t.Errorf("not docker's indentation:\n%s", out[:40])
		}
	}

	templates := []struct{ format, want string }{
		{"{{.Id}}", id.String()},
		{"{{json .Config.Cmd}}", `["python3","-m","app"]`},
		{"{{.Config.Cmd}}", "[python3 -m app]"},
		{"{{index .RepoTags 0}}", "me/app:latest"},
		{"{{.Config.Labels.team}} {{.Os}}/{{.Architecture}}", "web linux/amd64"},
		{"{{len .RootFS.Layers}}", "2"},
		{"{{json .Config}}", `"Cmd":["python3","-m","app"]`},
	}
	for _, tt := range templates {
		out := e.mustRun("inspect", "-f", tt.format, id.Hex[:12])
		if tt.format == "{{json .Config}}" {
			if !strings.Contains(out, tt.want) || !strings.HasPrefix(out, `{"Hostname":""`) {
				t.Errorf("-f %q: %q", tt.format, out)
			}
			continue
		}
		if out != tt.want+"\n" {
			t.Errorf("-f %q: %q, want %q", tt.format, out, tt.want)
		}
	}
	// One line per object.
	if out := e.mustRun("image", "inspect", "--format", "{{.Id}}", "me/app:v1", "me/app:latest"); out != id.String()+"\n"+id.String()+"\n" {
		t.Errorf("two objects: %q", out)
	}
}

func TestInspectErrors(t *testing.T) {
	t.Parallel()
	e := newImgEnv(t)
	o := imgOpts{created: time.Now()}
	id := e.put(newImg(t, o), o, "app:v1")

	tests := []struct {
		args    []string
		code    int
		stdout  string // regexp
		stderr  string
		objects int
	}{
		{[]string{"inspect", "nosuch"}, 1, `^\[\]\n$`, "Error: No such object: nosuch\n", 0},
		{[]string{"inspect", "-f", "{{.Id}}", "nosuch", "app:v1"}, 1, "^" + id.String() + "\n$", "Error: No such object: nosuch\n", 0},
		{[]string{"inspect", "app:v1", "nosuch", "other"}, 1, "", "Error: No such object: nosuch\nError: No such object: other\n", 1},
		{[]string{"image", "inspect", "nosuch"}, 1, `^\[\]\n$`, "Error: No such image: nosuch\n", 0},
		{[]string{"inspect", "--type", "volume", "app:v1"}, 125, "^$", `unknown type: "volume"`, 0},
		{[]string{"inspect"}, 125, "^$", "requires at least 1 argument", 0},
		{[]string{"inspect", "-f", "{{.Nope", "app:v1"}, 125, "^$", "template", 0},
	}
	for _, tt := range tests {
		out, errOut, code := e.run("", tt.args...)
		if code != tt.code || !strings.Contains(errOut, tt.stderr) {
			t.Errorf("%q: exit %d, stderr %q; want %d, %q", tt.args, code, errOut, tt.code, tt.stderr)
		}
		if tt.stdout != "" && !regexp.MustCompile(tt.stdout).MatchString(out) {
			t.Errorf("%q: stdout %q, want match %q", tt.args, out, tt.stdout)
		}
		if tt.objects > 0 {
			var objs []map[string]any
			if err := json.Unmarshal([]byte(out), &objs); err != nil || len(objs) != tt.objects {
				t.Errorf("%q: %d objects (%v), want %d", tt.args, len(objs), err, tt.objects)
			}
		}
	}
}

func TestHistory(t *testing.T) {
	t.Parallel()
	e := newImgEnv(t)
	o := imgOpts{created: time.Now().Add(-5 * 24 * time.Hour)}
	img := newImg(t, o)
	id := e.put(img, o, "app:v1")
	cf, _ := img.ConfigFile()
	m, _ := img.Manifest()

	rows := tableRows(e.mustRun("history", "app:v1"))
	if want := []string{"IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"}; !reflect.DeepEqual(rows[0], want) {
		t.Errorf("header %q, want %q", rows[0], want)
	}
	if len(rows)-1 != len(cf.History) {
		t.Fatalf("%d rows, want %d (config history)", len(rows)-1, len(cf.History))
	}
	if rows[1][0] != id.Hex[:12] || rows[2][0] != "<missing>" {
		t.Errorf("IDs: %q, %q", rows[1][0], rows[2][0])
	}
	for _, r := range rows[1:] {
		if r[1] != "5 days ago" || r[2] != "/bin/sh -c #(nop) ADD file:0123456789abcdef0…" {
			t.Errorf("row %q", r)
		}
	}

	// --no-trunc, -H=false: full IDs and commands, bytes and RFC 3339 times.
	rows = tableRows(e.mustRun("image", "history", "--no-trunc", "-H=false", id.Hex[:8]))
	if rows[0][1] != "CREATED AT" || rows[1][0] != id.String() || !strings.HasSuffix(rows[1][2], "in /") {
		t.Errorf("no-trunc rows %q", rows[:2])
	}
	if _, err := time.Parse(time.RFC3339, rows[1][1]); err != nil {
		t.Errorf("CREATED AT %q: %v", rows[1][1], err)
	}
	// Newest step first: its layer is the manifest's last.
	if want := []string{strconv.FormatInt(m.Layers[1].Size, 10), strconv.FormatInt(m.Layers[0].Size, 10)}; rows[1][3] != want[0] || rows[2][3] != want[1] {
		t.Errorf("sizes %q %q, want %q", rows[1][3], rows[2][3], want)
	}

	if got := lines(e.mustRun("history", "-q", "app:v1")); !reflect.DeepEqual(got, []string{id.Hex[:12], "<missing>"}) {
		t.Errorf("-q: %q", got)
	}
	out := e.mustRun("history", "--format", "json", "app:v1")
	var row map[string]any
	if err := json.Unmarshal([]byte(lines(out)[0]), &row); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"Comment", "CreatedAt", "CreatedBy", "CreatedSince", "ID", "Size"} {
		if _, ok := row[k]; !ok {
			t.Errorf("json row lacks %s: %v", k, row)
		}
	}
	if _, errOut, code := e.run("", "history", "nosuch"); code != 1 || errOut != "Error: No such image: nosuch\n" {
		t.Errorf("history unknown: exit %d, %q", code, errOut)
	}
}

// TestWriteFormattedJSONKeys checks docker's fallback: a template that
// names JSON keys instead of Go fields runs against the JSON form, and
// one naming neither is still an error.
func TestWriteFormattedJSONKeys(t *testing.T) {
	type state struct {
		Pid int `json:"Pid"`
	}
	type obj struct {
		ID    string `json:"Id"`
		State state  `json:"State"`
	}
	o := []any{obj{ID: "abc", State: state{Pid: 1234567}}}
	for _, tc := range []struct{ format, want string }{
		{"{{.ID}}", "abc\n"},
		{"{{.Id}} {{.State.Pid}}", "abc 1234567\n"},
	} {
		var b bytes.Buffer
		if err := writeFormatted(&b, tc.format, o); err != nil || b.String() != tc.want {
			t.Errorf("%s: %q, %v; want %q", tc.format, b.String(), err, tc.want)
		}
	}
	var b bytes.Buffer
	if err := writeFormatted(&b, "{{.Nope}}", o); err == nil || !strings.Contains(err.Error(), "Nope") {
		t.Errorf("{{.Nope}}: %v, want an error naming it", err)
	}
}
