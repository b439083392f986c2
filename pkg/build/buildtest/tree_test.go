package buildtest

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

type entry struct {
	name, body, link string
	typ              byte
	mode             int64
}

func layer(t *testing.T, entries ...entry) []byte {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Typeflag: e.typ, Mode: e.mode, Linkname: e.link, Size: int64(len(e.body))}
		if h.Mode == 0 {
			h.Mode = 0o644
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(e.body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestTreeFromLayers(t *testing.T) {
	base := layer(t,
		entry{name: "etc/", typ: tar.TypeDir, mode: 0o755},
		entry{name: "etc/a", typ: tar.TypeReg, body: "a"},
		entry{name: "etc/b", typ: tar.TypeReg, body: "b"},
		entry{name: "opq/", typ: tar.TypeDir, mode: 0o755},
		entry{name: "opq/old", typ: tar.TypeReg, body: "old"},
		entry{name: "dir/", typ: tar.TypeDir, mode: 0o755},
		entry{name: "dir/sub", typ: tar.TypeReg, body: "s"},
	)
	top := layer(t,
		// The opaque marker after a new entry: it still hides only the lower layers.
		entry{name: "opq/new", typ: tar.TypeReg, body: "new"},
		entry{name: "opq/.wh..wh..opq", typ: tar.TypeReg},
		entry{name: "etc/.wh.a", typ: tar.TypeReg},
		entry{name: "dir", typ: tar.TypeSymlink, link: "etc"},
		entry{name: "hard", typ: tar.TypeLink, link: "etc/b"},
	)
	tree, err := TreeFromLayers([][]byte{base, top}, 1)
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(tree.Paths(), " ")
	if want := "/ /dir /etc /etc/b /hard /opq /opq/new"; got != want {
		t.Errorf("paths %s, want %s", got, want)
	}
	if n := tree.Nodes["/hard"]; n.Type != "file" || n.Content != "b" {
		t.Errorf("hard link: %+v", n)
	}
	if n := tree.Nodes["/dir"]; n.Type != "symlink" || n.Link != "etc" {
		t.Errorf("dir replaced by a link: %+v", n)
	}
	if !tree.Whiteouts["/etc/a"] || !tree.Whiteouts["/opq/"] || len(tree.Whiteouts) != 2 {
		t.Errorf("whiteouts %v", tree.Whiteouts)
	}

	// Check and DiffTree see the differences.
	uid := 0
	e := Expect{
		Files:     map[string]File{"/etc/b": {Type: "file", Mode: "0600", UID: &uid}},
		Absent:    []string{"/opq/new"},
		Whiteouts: []string{"/etc/b"},
		Config:    map[string]json.RawMessage{"Cmd": json.RawMessage(`["x"]`), "Env": json.RawMessage(`null`)},
	}
	diffs := e.Check(&v1.ConfigFile{Config: v1.Config{Cmd: []string{"y"}}}, tree, 1)
	if len(diffs) != 4 {
		t.Errorf("Check found %d differences, want 4 (mode, absent, whiteout, Cmd): %q", len(diffs), diffs)
	}
	other, err := TreeFromLayers([][]byte{base}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if d := DiffTree(tree, other, "a", "b", nil); len(d) != 6 {
		t.Errorf("DiffTree: %q", d)
	}
}
