package runtime

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"sync"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"

	"github.com/berthsh/berth/pkg/errdefs"
	"github.com/berthsh/berth/pkg/store"
)

func storeRandomImage(t *testing.T, s *store.Store, layers int64) (store.Image, v1.Image) {
	t.Helper()
	img, err := random.Image(2048, layers)
	if err != nil {
		t.Fatal(err)
	}
	stored, err := s.WriteImage(t.Context(), img, store.WriteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return stored, img
}

func TestLayerCacheUnpackConcurrent(t *testing.T) {
	ctx := t.Context()
	root := t.TempDir()
	s, err := store.Open(ctx, filepath.Join(root, "store"))
	if err != nil {
		t.Fatal(err)
	}
	img, src := storeRandomImage(t, s, 3)
	diffIDs := func() []v1.Hash {
		cf, err := src.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		return cf.RootFS.DiffIDs
	}()

	// Several "processes" (separate caches on one directory) unpack the
	// same image at once: all succeed with the same layer directories.
	const n = 6
	results := make([][]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := OpenLayerCache(filepath.Join(root, "layers"))
			if err != nil {
				errs[i] = err
				return
			}
			results[i], errs[i] = c.Unpack(ctx, s, img)
		}()
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("unpack %d: %v", i, errs[i])
		}
		if !reflect.DeepEqual(results[i], results[0]) {
			t.Errorf("unpack %d gave %q, unpack 0 %q", i, results[i], results[0])
		}
	}
	if len(results[0]) != 3 {
		t.Fatalf("lowers = %q, want 3", results[0])
	}
	for i, d := range results[0] {
		if want := filepath.Join(root, "layers", "sha256", diffIDs[i].Hex); d != want {
			t.Errorf("layer %d in %s, want %s", i, d, want)
		}
		entries, err := os.ReadDir(d)
		if err != nil || len(entries) == 0 {
			t.Errorf("layer dir %s: %d entries, %v", d, len(entries), err)
		}
	}
	// Nothing but the layer directories is left (no temporary unpack dirs).
	entries, err := os.ReadDir(filepath.Join(root, "layers", "sha256"))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 3 {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("cache holds %q, want the 3 layers only", names)
	}

	// PrepareRootfs reuses the cache and makes the container directories.
	cdir := filepath.Join(root, "containers", "c1")
	if err := os.MkdirAll(cdir, 0o700); err != nil {
		t.Fatal(err)
	}
	c, err := OpenLayerCache(filepath.Join(root, "layers"))
	if err != nil {
		t.Fatal(err)
	}
	lowers, err := PrepareRootfs(ctx, c, s, img, cdir)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(lowers, results[0]) {
		t.Errorf("PrepareRootfs lowers = %q", lowers)
	}
	for _, d := range []string{UpperDir, WorkDir, RootfsDir} {
		if fi, err := os.Stat(filepath.Join(cdir, d)); err != nil || !fi.IsDir() {
			t.Errorf("%s: %v", d, err)
		}
	}
	if err := c.Remove(diffIDs[0]); err != nil || c.Has(diffIDs[0]) {
		t.Errorf("Remove: %v, still there: %v", err, c.Has(diffIDs[0]))
	}
}

func TestLayerCacheRejectsWrongDiffID(t *testing.T) {
	ctx := t.Context()
	root := t.TempDir()
	s, err := store.Open(ctx, filepath.Join(root, "store"))
	if err != nil {
		t.Fatal(err)
	}
	src, err := random.Image(1024, 1)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := src.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	lie := v1.Hash{Algorithm: "sha256", Hex: "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"}
	cf.RootFS.DiffIDs = []v1.Hash{lie}
	bad, err := mutate.ConfigFile(src, cf)
	if err != nil {
		t.Fatal(err)
	}
	img, err := s.WriteImage(ctx, bad, store.WriteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	c, err := OpenLayerCache(filepath.Join(root, "layers"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Unpack(ctx, s, img)
	if !errors.Is(err, errdefs.ErrDataCorrupt) {
		t.Fatalf("unpack with a lying diff ID: err = %v, want ErrDataCorrupt", err)
	}
	if c.Has(lie) {
		t.Error("content was stored under the lying diff ID")
	}
	entries, _ := os.ReadDir(filepath.Join(root, "layers", "sha256"))
	if len(entries) != 0 {
		t.Errorf("cache not empty after a failed unpack: %d entries", len(entries))
	}
}

func TestLayerCacheCancelled(t *testing.T) {
	root := t.TempDir()
	s, err := store.Open(t.Context(), filepath.Join(root, "store"))
	if err != nil {
		t.Fatal(err)
	}
	img, _ := storeRandomImage(t, s, 1)
	c, err := OpenLayerCache(filepath.Join(root, "layers"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := c.Unpack(ctx, s, img); !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
}

func TestDedupeLowers(t *testing.T) {
	tests := []struct{ in, want []string }{
		{[]string{"a"}, []string{"a"}},
		{[]string{"a", "b", "c"}, []string{"a", "b", "c"}},
		{[]string{"a", "b", "a"}, []string{"b", "a"}},
		{[]string{"a", "a", "b", "b", "a"}, []string{"b", "a"}},
	}
	for _, tt := range tests {
		if got := dedupeLowers(tt.in); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("dedupeLowers(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestLayerCacheRepeatedLayer(t *testing.T) {
	ctx := t.Context()
	root := t.TempDir()
	s, err := store.Open(ctx, filepath.Join(root, "store"))
	if err != nil {
		t.Fatal(err)
	}
	base, err := random.Image(1024, 2)
	if err != nil {
		t.Fatal(err)
	}
	layers, err := base.Layers()
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(base, layers[0])
	if err != nil {
		t.Fatal(err)
	}
	stored, err := s.WriteImage(ctx, img, store.WriteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	c, err := OpenLayerCache(filepath.Join(root, "layers"))
	if err != nil {
		t.Fatal(err)
	}
	lowers, err := c.Unpack(ctx, s, stored)
	if err != nil {
		t.Fatal(err)
	}
	d0, _ := layers[0].DiffID()
	d1, _ := layers[1].DiffID()
	want := []string{c.Path(d1), c.Path(d0)}
	if !reflect.DeepEqual(lowers, want) {
		t.Errorf("lowers = %q, want %q", lowers, want)
	}
}
