package archive

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/berthsh/berth/pkg/reference"
	"github.com/berthsh/berth/pkg/store"
)

// testStore is a store in DIR/store, where DIR is a fresh temporary
// directory that must hold nothing else at the end of the test.
type testStore struct {
	*store.Store
	parent string
}

func newTestStore(t *testing.T) testStore {
	t.Helper()
	parent := t.TempDir()
	s, err := store.Open(context.Background(), filepath.Join(parent, "store"))
	if err != nil {
		t.Fatal(err)
	}
	ts := testStore{Store: s, parent: parent}
	t.Cleanup(func() { ts.checkContained(t) })
	return ts
}

// checkContained asserts nothing was written next to the store.
func (ts testStore) checkContained(t *testing.T) {
	t.Helper()
	ents, err := os.ReadDir(ts.parent)
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != 1 || ents[0].Name() != "store" {
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		t.Errorf("directory of the store holds %v, want only [store]", names)
	}
}

// checkNoNames asserts the store has no image at all.
func (ts testStore) checkNoImages(t *testing.T) {
	t.Helper()
	imgs, err := ts.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(imgs) != 0 {
		t.Errorf("store has %d images after a failed operation: %+v", len(imgs), imgs)
	}
}

// checkGCEmpty runs GC and asserts that no blob and no ingest file is left.
func (ts testStore) checkGCEmpty(t *testing.T) {
	t.Helper()
	if _, err := ts.GC(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"blobs/sha256", "ingest"} {
		ents, err := os.ReadDir(filepath.Join(ts.Dir(), d))
		if err != nil {
			t.Fatal(err)
		}
		if len(ents) != 0 {
			t.Errorf("%s not empty after GC: %d entries, first %s", d, len(ents), ents[0].Name())
		}
	}
}

// ingestFiles lists what is in the store's ingest directory.
func (ts testStore) ingestFiles(t *testing.T) []string {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(ts.Dir(), "ingest"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}

// entry is one member of a tar built by a test.
type entry struct {
	name string
	typ  byte // 0: regular file
	body []byte
	link string
	// claim, if set, is the size written in the header of a regular file
	// whose data is then left out (the archive ends right after it).
	claim int64
	mode  int64
	uid   int
	pax   map[string]string
}

func reg(name string, body []byte) entry { return entry{name: name, body: body} }

// mkTar builds a tar from entries, in order.
func mkTar(t *testing.T, entries ...entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		typ := e.typ
		if typ == 0 {
			typ = tar.TypeReg
		}
		mode := e.mode
		if mode == 0 {
			mode = 0o644
		}
		hdr := &tar.Header{Name: e.name, Typeflag: typ, Linkname: e.link, Mode: mode, Uid: e.uid, PAXRecords: e.pax}
		if typ == tar.TypeChar || typ == tar.TypeBlock {
			hdr.Devmajor, hdr.Devminor = 1, 3
		}
		if typ == tar.TypeReg {
			hdr.Size = int64(len(e.body))
			if e.claim > 0 {
				hdr.Size = e.claim
			}
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if e.claim > 0 {
			// The header is in buf; the data never comes.
			tw.Flush() // fails: the entry is short, as intended
			buf.Write(make([]byte, 1024))
			return buf.Bytes()
		}
		if _, err := tw.Write(e.body); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func digestOf(b []byte) v1.Hash {
	sum := sha256.Sum256(b)
	return v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(sum[:])}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// layerTar is an uncompressed layer holding the given files.
func layerTar(t *testing.T, files ...string) []byte {
	t.Helper()
	var es []entry
	for _, f := range files {
		es = append(es, reg(f, []byte("content of "+f+"\n"+strings.Repeat(f, 100))))
	}
	return mkTar(t, es...)
}

// imageConfig is a config JSON with the given diff IDs.
func imageConfig(t *testing.T, cmd string, diffIDs ...v1.Hash) []byte {
	t.Helper()
	if diffIDs == nil {
		diffIDs = []v1.Hash{}
	}
	return mustJSON(t, v1.ConfigFile{
		Architecture: "amd64",
		OS:           "linux",
		RootFS:       v1.RootFS{Type: "layers", DiffIDs: diffIDs},
		Config:       v1.Config{Cmd: []string{cmd}},
	})
}

// legacyDockerArchive builds what docker 24 and older "docker save"
// writes: <id>/layer.tar per layer (the second, a duplicate, as a symlink
// to the first), <id>/json, <id>/VERSION, <config>.json, manifest.json and
// repositories.
func legacyDockerArchive(t *testing.T, tag string, layer []byte) (archive []byte, imageID v1.Hash) {
	t.Helper()
	d := digestOf(layer)
	cfg := imageConfig(t, "legacy", d, d)
	id := digestOf(cfg)
	id1 := strings.Repeat("1", 64)
	id2 := strings.Repeat("2", 64)
	man := []map[string]any{{
		"Config":   id.Hex + ".json",
		"RepoTags": []string{tag},
		"Layers":   []string{id1 + "/layer.tar", id2 + "/layer.tar"},
	}}
	ref, _ := reference.Parse(tag)
	repos := map[string]map[string]string{ref.FamiliarRepository(): {ref.Tag(): id2}}
	return mkTar(t,
		entry{name: id1 + "/", typ: tar.TypeDir, mode: 0o755},
		reg(id1+"/VERSION", []byte("1.0")),
		reg(id1+"/json", []byte(`{"id":"`+id1+`"}`)),
		reg(id1+"/layer.tar", layer),
		entry{name: id2 + "/", typ: tar.TypeDir, mode: 0o755},
		reg(id2+"/VERSION", []byte("1.0")),
		reg(id2+"/json", []byte(`{"id":"`+id2+`","parent":"`+id1+`"}`)),
		entry{name: id2 + "/layer.tar", typ: tar.TypeSymlink, link: "../" + id1 + "/layer.tar"},
		reg(id.Hex+".json", cfg),
		reg("manifest.json", mustJSON(t, man)),
		reg("repositories", mustJSON(t, repos)),
	), id
}

// ociBlobs is the content of an OCI layout being built by a test.
type ociBlobs map[v1.Hash][]byte

func (b ociBlobs) add(data []byte) v1.Descriptor {
	d := digestOf(data)
	b[d] = data
	return v1.Descriptor{Digest: d, Size: int64(len(data))}
}

// entries returns blobs/sha256/… entries, sorted, plus oci-layout.
func (b ociBlobs) entries() []entry {
	var es []entry
	for d, data := range b {
		es = append(es, reg("blobs/sha256/"+d.Hex, data))
	}
	sort.Slice(es, func(i, j int) bool { return es[i].name < es[j].name })
	return append(es, reg("oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`)))
}

// names returns the full names of imgs.
func names(imgs []store.Image) []string {
	var out []string
	for _, img := range imgs {
		for _, n := range img.Names {
			out = append(out, n.String())
		}
	}
	sort.Strings(out)
	return out
}

func hostArch() string { return runtime.GOARCH }
