package build

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

func TestCacheFile(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name    string
		content string // initial cache.json; "" for none
	}{
		{"missing", ""},
		{"damaged", "{not json"},
		{"other version", `{"version":99,"entries":{"k":{}}}`},
		// What a crash may leave of a file written without fsync.
		{"truncated", `{"version":1,"seq":1,"entries":{"k":{"seq":1}`},
		{"empty", "\x00"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if tc.content == "\x00" {
				tc.content = ""
				if err := os.WriteFile(filepath.Join(dir, "cache.json"), nil, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			if tc.content != "" {
				if err := os.WriteFile(filepath.Join(dir, "cache.json"), []byte(tc.content), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			c, err := openCache(dir)
			if err != nil {
				t.Fatal(err)
			}
			if _, ok := c.get("k"); ok {
				t.Fatal("entry found in an unusable cache")
			}
			desc := v1.Descriptor{Digest: v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("ab", 32)}, Size: 3}
			diffID := v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("cd", 32)}
			c.put("with-layer", cacheEntry{Layer: &desc, DiffID: diffID})
			c.put("no-layer", cacheEntry{})
			if _, ok := c.get("with-layer"); !ok {
				t.Error("new entry not found before saving")
			}
			if err := c.save(ctx); err != nil {
				t.Fatal(err)
			}
			// Another build saving other keys keeps these.
			c2, err := openCache(dir)
			if err != nil {
				t.Fatal(err)
			}
			c2.put("other", cacheEntry{})
			if err := c2.save(ctx); err != nil {
				t.Fatal(err)
			}
			c3, err := openCache(dir)
			if err != nil {
				t.Fatal(err)
			}
			e, ok := c3.get("with-layer")
			if !ok || e.Layer == nil || e.Layer.Digest != desc.Digest || e.DiffID != diffID {
				t.Errorf("with-layer = %+v, %v", e, ok)
			}
			for _, k := range []string{"no-layer", "other"} {
				if e, ok := c3.get(k); !ok || e.Layer != nil {
					t.Errorf("%s = %+v, %v", k, e, ok)
				}
			}
			// Only the file and its lock remain, the file private.
			names, err := filepath.Glob(filepath.Join(dir, "*"))
			if err != nil {
				t.Fatal(err)
			}
			hidden, _ := filepath.Glob(filepath.Join(dir, ".*"))
			if names = append(names, hidden...); len(names) != 2 {
				t.Errorf("files left in the cache directory: %v", names)
			}
			if fi, err := os.Stat(filepath.Join(dir, "cache.json")); err != nil || fi.Mode().Perm() != 0o600 {
				t.Errorf("cache.json: %v, %v", fi.Mode(), err)
			}
		})
	}
}

func TestTrimCache(t *testing.T) {
	entries := map[string]*cacheEntry{}
	for i, k := range []string{"a", "b", "c", "d", "e"} {
		entries[k] = &cacheEntry{Seq: uint64(i + 1)}
	}
	trimCache(entries, 2)
	if len(entries) != 2 || entries["d"] == nil || entries["e"] == nil {
		t.Errorf("kept %v, want the two newest", keys(entries))
	}
}

func TestCacheKey(t *testing.T) {
	a := cacheKey("p", "ab", "c")
	for _, other := range []string{cacheKey("p", "a", "bc"), cacheKey("q", "ab", "c"), cacheKey("p", "abc")} {
		if a == other {
			t.Errorf("keys collide: %s", a)
		}
	}
	if a != cacheKey("p", "ab", "c") {
		t.Error("key not stable")
	}
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
