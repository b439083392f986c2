package archive

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"

	"github.com/berthsh/berth/pkg/errdefs"
	"github.com/berthsh/berth/pkg/reference"
	"github.com/berthsh/berth/pkg/store"
)

func mustRefs(t *testing.T, ss ...string) []reference.Reference {
	t.Helper()
	var out []reference.Reference
	for _, s := range ss {
		r, err := reference.Parse(s)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	return out
}

// storeRandom writes a random image with names into s.
func storeRandom(t *testing.T, s testStore, layers int64, names ...string) (store.Image, v1.Image) {
	t.Helper()
	img, err := random.Image(3000, layers)
	if err != nil {
		t.Fatal(err)
	}
	stored, err := s.WriteImage(context.Background(), img, store.WriteOptions{Names: mustRefs(t, names...)})
	if err != nil {
		t.Fatal(err)
	}
	return stored, img
}

func save(t *testing.T, s testStore, format string, names ...string) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := Save(context.Background(), s.Store, names, &buf, SaveOptions{Format: format}); err != nil {
		t.Fatalf("Save %v: %v", names, err)
	}
	return buf.Bytes()
}

// tarMembers lists an archive's members in order and reads the small ones.
func tarMembers(t *testing.T, data []byte) ([]string, map[string][]byte) {
	t.Helper()
	tr := tar.NewReader(bytes.NewReader(data))
	var order []string
	files := map[string][]byte{}
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if !hdr.ModTime.Equal(epoch) || hdr.Uid != 0 || hdr.Uname != "" {
			t.Errorf("%s: mtime %v uid %d uname %q, want fixed values", hdr.Name, hdr.ModTime, hdr.Uid, hdr.Uname)
		}
		order = append(order, hdr.Name)
		b, _ := io.ReadAll(tr)
		files[hdr.Name] = b
	}
	return order, files
}

func TestSaveDockerLoadRoundTrip(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	src := newTestStore(t)
	stored, img := storeRandom(t, src, 3, "python:3.11", "me/app:v1")
	wantID, _ := img.ConfigName()
	cf, _ := img.ConfigFile()

	data := save(t, src, FormatDocker, "python:3.11", "me/app:v1")
	if again := save(t, src, FormatDocker, "python:3.11", "me/app:v1"); !bytes.Equal(data, again) {
		t.Fatal("two saves of the same image differ")
	}
	order, files := tarMembers(t, data)
	if !sortedStrings(order) {
		t.Errorf("entries not sorted: %v", order)
	}
	var dm []dockerManifestEntry
	if err := json.Unmarshal(files["manifest.json"], &dm); err != nil {
		t.Fatal(err)
	}
	if len(dm) != 1 || !reflect.DeepEqual(dm[0].RepoTags, []string{"python:3.11", "me/app:v1"}) {
		t.Errorf("manifest.json = %+v, want one image tagged python:3.11 and me/app:v1", dm)
	}
	var idx v1.IndexManifest
	if err := json.Unmarshal(files["index.json"], &idx); err != nil {
		t.Fatal(err)
	}
	if len(idx.Manifests) != 2 || idx.Manifests[0].Annotations["io.containerd.image.name"] != "docker.io/library/python:3.11" ||
		idx.Manifests[0].Annotations["org.opencontainers.image.ref.name"] != "3.11" {
		t.Errorf("index.json = %s", files["index.json"])
	}

	dst := newTestStore(t)
	imgs := load(t, dst, data)
	if got := names(imgs); !reflect.DeepEqual(got, []string{"docker.io/library/python:3.11", "docker.io/me/app:v1"}) {
		t.Errorf("names %v", got)
	}
	checkImage(t, dst, imgs[0], wantID, cf.RootFS.DiffIDs)
	// berth's docker archives carry the OCI manifest too: it is kept.
	if imgs[0].Digest() != stored.Digest() {
		t.Errorf("manifest %s after round trip, want %s", imgs[0].Digest(), stored.Digest())
	}

	// Without the OCI part (as older tools write it) the layers are loaded
	// from manifest.json alone: same image ID and diff IDs.
	var es []entry
	for _, name := range order {
		if name == "index.json" || name == "oci-layout" || strings.HasSuffix(name, "/") {
			continue
		}
		es = append(es, reg(name, files[name]))
	}
	dst2 := newTestStore(t)
	imgs2 := load(t, dst2, mkTar(t, es...))
	checkImage(t, dst2, imgs2[0], wantID, cf.RootFS.DiffIDs)
	if _, err := dst2.Get(ctx, "me/app:v1"); err != nil {
		t.Error(err)
	}
}

func sortedStrings(s []string) bool {
	for i := 1; i < len(s); i++ {
		if s[i-1] > s[i] {
			return false
		}
	}
	return true
}

func TestSaveOCILoadRoundTrip(t *testing.T) {
	t.Parallel()
	src := newTestStore(t)
	a, imgA := storeRandom(t, src, 2, "ghcr.io/org/a:1")
	b, _ := storeRandom(t, src, 1, "b:2")
	data := save(t, src, FormatOCI, "ghcr.io/org/a:1", "b:2")
	if again := save(t, src, FormatOCI, "ghcr.io/org/a:1", "b:2"); !bytes.Equal(data, again) {
		t.Fatal("two saves of the same images differ")
	}
	_, files := tarMembers(t, data)
	if _, ok := files["manifest.json"]; ok {
		t.Error("OCI archive has a manifest.json")
	}
	var idx v1.IndexManifest
	json.Unmarshal(files["index.json"], &idx)
	if len(idx.Manifests) != 2 || idx.Manifests[0].Annotations["org.opencontainers.image.ref.name"] != "ghcr.io/org/a:1" {
		t.Errorf("index.json = %s", files["index.json"])
	}
	dst := newTestStore(t)
	imgs := load(t, dst, data)
	if len(imgs) != 2 || imgs[0].Digest() != a.Digest() || imgs[1].Digest() != b.Digest() {
		t.Fatalf("loaded %+v, want manifests %s and %s", imgs, a.Digest(), b.Digest())
	}
	id, _ := imgA.ConfigName()
	cf, _ := imgA.ConfigFile()
	checkImage(t, dst, imgs[0], id, cf.RootFS.DiffIDs)
	if got := names(imgs); !reflect.DeepEqual(got, []string{"docker.io/library/b:2", "ghcr.io/org/a:1"}) {
		t.Errorf("names %v", got)
	}
}

func TestSaveSelection(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newTestStore(t)
	one, _ := storeRandom(t, s, 1, "repo:1", "other:x")
	two, imgTwo := storeRandom(t, s, 1, "repo:2")
	idTwo, _ := imgTwo.ConfigName()

	manifest := func(data []byte) []dockerManifestEntry {
		_, files := tarMembers(t, data)
		var dm []dockerManifestEntry
		if err := json.Unmarshal(files["manifest.json"], &dm); err != nil {
			t.Fatal(err)
		}
		return dm
	}
	// A repository: every tag of it.
	dm := manifest(save(t, s, "", "repo"))
	if len(dm) != 2 || !reflect.DeepEqual(dm[0].RepoTags, []string{"repo:1"}) || !reflect.DeepEqual(dm[1].RepoTags, []string{"repo:2"}) {
		t.Errorf("save repo: %+v", dm)
	}
	// By ID: no tag; the image once even when named twice.
	dm = manifest(save(t, s, "", idTwo.Hex[:12], "repo:2", idTwo.String()))
	if len(dm) != 1 || !reflect.DeepEqual(dm[0].RepoTags, []string{"repo:2"}) {
		t.Errorf("save by ID and name: %+v", dm)
	}
	data := save(t, s, "", idTwo.Hex[:12])
	if dm := manifest(data); len(dm) != 1 || dm[0].RepoTags != nil {
		t.Errorf("save by ID: %+v, want no RepoTags", dm)
	}
	dst := newTestStore(t)
	imgs := load(t, dst, data)
	if len(imgs) != 1 || len(imgs[0].Names) != 0 || imgs[0].Digest() != two.Digest() {
		t.Errorf("load of an image saved by ID: %+v", imgs)
	}
	_ = one

	err := Save(ctx, s.Store, []string{"nope:1"}, io.Discard, SaveOptions{})
	if !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("save of a missing image: %v", err)
	}
	err = Save(ctx, s.Store, []string{"repo:1"}, io.Discard, SaveOptions{Format: "zip"})
	if !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("save with a bad format: %v", err)
	}
}

func TestSaveToFileAtomic(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newTestStore(t)
	storeRandom(t, s, 2, "app:1")
	dir := t.TempDir()
	out := filepath.Join(dir, "app.tar")
	if err := SaveToFile(ctx, s.Store, []string{"app:1"}, out, SaveOptions{}); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(out)
	if err != nil || !bytes.Equal(data, save(t, s, "", "app:1")) {
		t.Fatalf("file differs from Save's output (%v)", err)
	}
	// A failed save leaves the old file and no temporary.
	if err := SaveToFile(ctx, s.Store, []string{"missing:1"}, out, SaveOptions{}); err == nil {
		t.Fatal("save of a missing image succeeded")
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := SaveToFile(cctx, s.Store, []string{"app:1"}, filepath.Join(dir, "new.tar"), SaveOptions{}); err == nil {
		t.Fatal("cancelled save succeeded")
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 || ents[0].Name() != "app.tar" {
		t.Errorf("directory holds %v, want only app.tar", ents)
	}
	if again, _ := os.ReadFile(out); !bytes.Equal(again, data) {
		t.Error("failed save changed the existing file")
	}
	// A device is written in place, not replaced.
	if err := SaveToFile(ctx, s.Store, []string{"app:1"}, os.DevNull, SaveOptions{}); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(os.DevNull); err != nil || fi.Mode()&os.ModeDevice == 0 {
		t.Fatalf("%s is no longer a device: %v", os.DevNull, err)
	}
}

// TestSkopeoReadsSaves checks that skopeo accepts both archive formats.
func TestSkopeoReadsSaves(t *testing.T) {
	if _, err := exec.LookPath("skopeo"); err != nil {
		t.Skip("skopeo not installed")
	}
	t.Parallel()
	ctx := context.Background()
	s := newTestStore(t)
	stored, img := storeRandom(t, s, 2, "app:v1")
	want, _ := img.ConfigFile()
	dir := t.TempDir()
	for _, tc := range []struct{ format, transport string }{
		{FormatDocker, "docker-archive:"},
		{FormatOCI, "oci-archive:"},
	} {
		f := filepath.Join(dir, tc.format+".tar")
		if err := SaveToFile(ctx, s.Store, []string{"app:v1"}, f, SaveOptions{Format: tc.format}); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command("skopeo", "inspect", tc.transport+f)
		cmd.Env = append(os.Environ(), "TMPDIR="+dir)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("skopeo inspect %s%s: %v\n%s", tc.transport, f, err, out)
		}
		var res struct {
			Digest string
			Layers []string
		}
		if err := json.Unmarshal(out, &res); err != nil {
			t.Fatalf("skopeo output: %v\n%s", err, out)
		}
		if len(res.Layers) != 2 {
			t.Errorf("%s: skopeo sees %d layers, want 2", tc.format, len(res.Layers))
		}
		if tc.format == FormatOCI && res.Digest != stored.Digest().String() {
			t.Errorf("oci: skopeo sees manifest %s, want %s", res.Digest, stored.Digest())
		}
		cfgCmd := exec.Command("skopeo", "inspect", "--config", tc.transport+f)
		cfgCmd.Env = cmd.Env
		raw, err := cfgCmd.Output()
		if err != nil {
			t.Fatalf("skopeo inspect --config: %v", err)
		}
		var cf v1.ConfigFile
		if err := json.Unmarshal(raw, &cf); err != nil || !reflect.DeepEqual(cf.RootFS.DiffIDs, want.RootFS.DiffIDs) {
			t.Errorf("%s: skopeo sees config %s (%v), want diff IDs %v", tc.format, raw, err, want.RootFS.DiffIDs)
		}
	}
}
