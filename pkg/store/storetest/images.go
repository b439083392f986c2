package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"sort"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/berthsh/berth/pkg/errdefs"
	"github.com/berthsh/berth/pkg/store"
)

func testWriteImageNames(t *testing.T, s Store) {
	ctx := context.Background()
	layers := []v1.Layer{Layer(10, 3000), Layer(11, 200000), Layer(12, 1)}
	img := NewImage(t, "names", layers...)
	stored := writeImage(t, s, img, named(t, "app:v1", "registry.example.com:5000/team/app:v1"))

	if stored.Digest() != mustDigest(t, img) {
		t.Errorf("stored digest %s, want %s", stored.Digest(), mustDigest(t, img))
	}
	want := []string{"docker.io/library/app:v1", "registry.example.com:5000/team/app:v1"}
	if got := names(stored); !reflect.DeepEqual(got, want) {
		t.Errorf("names %v, want %v", got, want)
	}
	for _, b := range mustBlobs(t, img) {
		if !s.HasBlob(ctx, b) {
			t.Errorf("blob %s of the image not stored", b)
		}
	}
	// Writing it again without names neither drops the names nor adds a
	// dangling copy.
	again := writeImage(t, s, img, store.WriteOptions{})
	if got := names(again); !reflect.DeepEqual(got, want) {
		t.Errorf("names after unnamed rewrite %v, want %v", got, want)
	}
	imgs, err := s.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(imgs) != 1 || !reflect.DeepEqual(names(imgs[0]), want) {
		t.Fatalf("List = %+v, want one image named %v", imgs, want)
	}
	if imgs[0].Added.IsZero() {
		t.Error("Added not set")
	}

	// The stored image reads back as the original.
	vi, err := s.Image(ctx, imgs[0])
	if err != nil {
		t.Fatal(err)
	}
	if id, err := vi.ConfigName(); err != nil || id != mustID(t, img) {
		t.Errorf("ConfigName = %s, %v; want %s", id, err, mustID(t, img))
	}
	got, err := vi.Layers()
	if err != nil || len(got) != len(layers) {
		t.Fatalf("Layers: %d, %v", len(got), err)
	}
	for i, l := range got {
		wantRC, _ := layers[i].Compressed()
		wantB, _ := io.ReadAll(wantRC)
		rc, err := l.Compressed()
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil || !bytes.Equal(b, wantB) {
			t.Errorf("layer %d: %d bytes, %v", i, len(b), err)
		}
	}
	CheckConsistent(t, s)
}

func testWriteImageUnnamed(t *testing.T, s Store) {
	ctx := context.Background()
	img := NewImage(t, "unnamed", Layer(20, 1000))
	stored := writeImage(t, s, img, store.WriteOptions{})
	if len(stored.Names) != 0 {
		t.Errorf("names %v, want none", stored.Names)
	}
	imgs, err := s.List(ctx)
	if err != nil || len(imgs) != 1 || imgs[0].Digest() != mustDigest(t, img) || len(imgs[0].Names) != 0 {
		t.Fatalf("List = %+v, %v; want the dangling image", imgs, err)
	}
	if got, err := s.Get(ctx, mustID(t, img).Hex); err != nil || got.Digest() != mustDigest(t, img) {
		t.Errorf("Get by ID = %v, %v", got.Digest(), err)
	}
	// Naming it later leaves one image, not a named and a dangling one.
	writeImage(t, s, img, named(t, "late:v1"))
	imgs, _ = s.List(ctx)
	if len(imgs) != 1 || !reflect.DeepEqual(names(imgs[0]), []string{"docker.io/library/late:v1"}) {
		t.Errorf("List after naming = %+v", imgs)
	}
	CheckConsistent(t, s)
}

func testNameMoves(t *testing.T, s Store) {
	ctx := context.Background()
	a := NewImage(t, "a", Layer(30, 1000))
	b := NewImage(t, "b", Layer(31, 1000))
	writeImage(t, s, a, named(t, "app:v1"))
	writeImage(t, s, b, named(t, "app:v1"))

	imgs, err := s.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(imgs) != 2 {
		t.Fatalf("List has %d images, want the new one and the dangling old one", len(imgs))
	}
	byDigest := map[v1.Hash]store.Image{}
	for _, img := range imgs {
		byDigest[img.Digest()] = img
	}
	if n := byDigest[mustDigest(t, a)].Names; len(n) != 0 {
		t.Errorf("old image still named %v", n)
	}
	if n := names(byDigest[mustDigest(t, b)]); !reflect.DeepEqual(n, []string{"docker.io/library/app:v1"}) {
		t.Errorf("new image named %v", n)
	}
	if got, err := s.Get(ctx, "app:v1"); err != nil || got.Digest() != mustDigest(t, b) {
		t.Errorf("Get(app:v1) = %s, %v; want the new image", got.Digest(), err)
	}
	if got, err := s.Get(ctx, mustID(t, a).Hex); err != nil || got.Digest() != mustDigest(t, a) {
		t.Errorf("old image by ID: %v", err)
	}
	CheckConsistent(t, s)

	// The name moves back with Tag; b is dangling now.
	if _, err := s.Tag(ctx, mustID(t, a).Hex[:12], Ref(t, "app:v1")); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Get(ctx, "app:v1"); err != nil || got.Digest() != mustDigest(t, a) {
		t.Errorf("Get(app:v1) after Tag = %s, %v", got.Digest(), err)
	}
	if got, err := s.Get(ctx, mustID(t, b).Hex); err != nil || len(got.Names) != 0 {
		t.Errorf("b after losing its name: %+v, %v", got, err)
	}
	// An image with another name keeps it and gets no dangling entry.
	if _, err := s.Tag(ctx, "app:v1", Ref(t, "app:keep")); err != nil {
		t.Fatal(err)
	}
	writeImage(t, s, b, named(t, "app:v1"))
	imgs, _ = s.List(ctx)
	if len(imgs) != 2 {
		t.Errorf("List has %d images, want 2", len(imgs))
	}
	if got, err := s.Get(ctx, mustID(t, a).Hex); err != nil || !reflect.DeepEqual(names(got), []string{"docker.io/library/app:keep"}) {
		t.Errorf("a after losing one of two names: %v, %v", names(got), err)
	}
	CheckConsistent(t, s)
}

func testGet(t *testing.T, s Store) {
	ctx := context.Background()
	img := NewImage(t, "get", Layer(40, 1000))
	other := NewImage(t, "get-other", Layer(41, 1000))
	indexDigest := Digest([]byte("a multi-platform index"))
	opts := named(t, "app:v1", "quay.io/team/tool:2")
	opts.RepoDigests = []string{"docker.io/library/app@" + indexDigest.String()}
	writeImage(t, s, img, opts)
	writeImage(t, s, other, named(t, "other:v1"))

	id, md := mustID(t, img), mustDigest(t, img)
	found := []string{
		"app:v1",
		"docker.io/library/app:v1",
		"library/app:v1",
		"quay.io/team/tool:2",
		id.String(),
		id.Hex,
		id.Hex[:12],
		"sha256:" + id.Hex[:12],
		md.String(),
		"app@" + md.String(),
		"app:v1@" + md.String(),
		"app@" + indexDigest.String(),
		"docker.io/library/app@" + indexDigest.String(),
	}
	for _, q := range found {
		got, err := s.Get(ctx, q)
		if err != nil || got.Digest() != md {
			t.Errorf("Get(%q) = %s, %v; want %s", q, got.Digest(), err, md)
		}
	}
	if got, err := s.Get(ctx, "other:v1"); err != nil || got.Digest() != mustDigest(t, other) {
		t.Errorf("Get(other:v1) = %s, %v", got.Digest(), err)
	}

	unknown := Digest([]byte("nothing"))
	notFound := []string{
		"app:v2",
		"app",
		"tool:2",
		"other@" + indexDigest.String(),
		unknown.String(),
		unknown.Hex,
		"app@" + unknown.String(),
		unusedPrefix(t, s),
	}
	for _, q := range notFound {
		if got, err := s.Get(ctx, q); !errors.Is(err, errdefs.ErrNotFound) {
			t.Errorf("Get(%q) = %s, %v; want ErrNotFound", q, got.Digest(), err)
		}
	}
	for _, q := range []string{"", "UPPER:case", "a b"} {
		if _, err := s.Get(ctx, q); err == nil {
			t.Errorf("Get(%q) succeeded", q)
		}
	}
}

// unusedPrefix returns a two-character hex prefix no image ID starts with.
func unusedPrefix(t *testing.T, s Store) string {
	t.Helper()
	imgs, err := s.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	used := map[string]bool{}
	for _, img := range imgs {
		vi, err := s.Image(context.Background(), img)
		if err != nil {
			t.Fatal(err)
		}
		used[mustID(t, vi).Hex[:2]] = true
	}
	for i := 0; i < 256; i++ {
		if p := fmt.Sprintf("%02x", i); !used[p] {
			return p
		}
	}
	t.Fatal("every prefix used")
	return ""
}

func testGetAmbiguousPrefix(t *testing.T, s Store) {
	ctx := context.Background()
	// Write images until two IDs share their first hex digit (at most 17).
	first := map[byte]v1.Image{}
	var x, y v1.Image
	for i := 0; x == nil; i++ {
		img := NewImage(t, fmt.Sprintf("ambiguous-%d", i), Layer(50, 100))
		writeImage(t, s, img, store.WriteOptions{})
		c := mustID(t, img).Hex[0]
		if prev, ok := first[c]; ok {
			x, y = prev, img
		}
		first[c] = img
	}
	prefix := mustID(t, x).Hex[:1]
	if _, err := s.Get(ctx, prefix); !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), "ambiguous") {
		t.Errorf("Get(%q) matching two IDs: %v, want an ambiguity error (ErrInvalidArgument)", prefix, err)
	}
	if _, err := s.Tag(ctx, prefix, Ref(t, "ambiguous:v1")); err == nil {
		t.Errorf("Tag(%q) matching two IDs succeeded", prefix)
	}
	if _, err := s.Remove(ctx, prefix, store.RemoveOptions{}); err == nil {
		t.Errorf("Remove(%q) matching two IDs succeeded", prefix)
	}
	// A longer prefix tells them apart.
	for _, img := range []v1.Image{x, y} {
		p := mustID(t, img).Hex
		var n int
		for n = 1; n < 64 && strings.HasPrefix(mustID(t, x).Hex, p[:n]) && strings.HasPrefix(mustID(t, y).Hex, p[:n]); n++ {
		}
		if got, err := s.Get(ctx, p[:n]); err != nil || got.Digest() != mustDigest(t, img) {
			t.Errorf("Get(%q) = %s, %v; want %s", p[:n], got.Digest(), err, mustDigest(t, img))
		}
	}
	imgs, _ := s.List(ctx)
	if len(imgs) != len(first)+1 {
		t.Errorf("List has %d images, want %d", len(imgs), len(first)+1)
	}
}

func testTag(t *testing.T, s Store) {
	ctx := context.Background()
	img := NewImage(t, "tag", Layer(60, 1000))
	writeImage(t, s, img, named(t, "app:v1"))
	md := mustDigest(t, img)

	for i, from := range []string{"app:v1", mustID(t, img).Hex, mustID(t, img).Hex[:10], md.String()} {
		to := fmt.Sprintf("example.com/copy:%d", i)
		got, err := s.Tag(ctx, from, Ref(t, to))
		if err != nil {
			t.Fatalf("Tag(%s, %s): %v", from, to, err)
		}
		if got.Digest() != md {
			t.Errorf("Tag(%s) returned %s", from, got.Digest())
		}
		if got, err := s.Get(ctx, to); err != nil || got.Digest() != md {
			t.Errorf("Get(%s) after Tag: %v", to, err)
		}
	}
	// Tagging with a name the image has already changes nothing.
	if _, err := s.Tag(ctx, "app:v1", Ref(t, "app:v1")); err != nil {
		t.Errorf("Tag to its own name: %v", err)
	}
	got, err := s.Get(ctx, "app:v1")
	if err != nil || len(got.Names) != 5 {
		t.Errorf("image names %v, %v; want 5", names(got), err)
	}
	if _, err := s.Tag(ctx, "missing:v1", Ref(t, "x:v1")); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("Tag of unknown image: %v, want ErrNotFound", err)
	}
	if _, err := s.Get(ctx, "x:v1"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("failed Tag created the name: %v", err)
	}
	digested := Ref(t, "app@"+md.String())
	if _, err := s.Tag(ctx, "app:v1", digested); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("Tag to a digest reference: %v, want ErrInvalidArgument", err)
	}
	imgs, _ := s.List(ctx)
	if len(imgs) != 1 {
		t.Errorf("List has %d images, want 1", len(imgs))
	}
	CheckConsistent(t, s)
}

func testRepoDigests(t *testing.T, s Store) {
	ctx := context.Background()
	img := NewImage(t, "repodigests", Layer(70, 1000))
	d1 := "docker.io/library/app@" + Digest([]byte("index 1")).String()
	d2 := "quay.io/team/app@" + Digest([]byte("index 2")).String()
	opts := named(t, "app:v1")
	opts.RepoDigests = []string{d1}
	got := writeImage(t, s, img, opts)
	if !reflect.DeepEqual(got.RepoDigests, []string{d1}) {
		t.Errorf("RepoDigests %v, want %v", got.RepoDigests, []string{d1})
	}
	// A later pull under another name adds its repo digest; both names see
	// both.
	opts = named(t, "quay.io/team/app:v1")
	opts.RepoDigests = []string{d2}
	writeImage(t, s, img, opts)
	for _, n := range []string{"app:v1", "quay.io/team/app:v1", d1, d2} {
		got, err := s.Get(ctx, n)
		if err != nil {
			t.Errorf("Get(%s): %v", n, err)
			continue
		}
		if !reflect.DeepEqual(got.RepoDigests, []string{d1, d2}) {
			t.Errorf("Get(%s).RepoDigests = %v, want both", n, got.RepoDigests)
		}
	}
	// Tagging keeps them.
	if _, err := s.Tag(ctx, "app:v1", Ref(t, "app:v2")); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Get(ctx, "app:v2"); !reflect.DeepEqual(got.RepoDigests, []string{d1, d2}) {
		t.Errorf("after Tag RepoDigests = %v", got.RepoDigests)
	}
}

func testListNewestFirst(t *testing.T, s Store) {
	ctx := context.Background()
	var want []v1.Hash
	for i := range 3 {
		img := NewImage(t, fmt.Sprintf("list-%d", i), Layer(80, 100))
		writeImage(t, s, img, named(t, fmt.Sprintf("list:%d", i)))
		want = append([]v1.Hash{mustDigest(t, img)}, want...)
	}
	imgs, err := s.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var got []v1.Hash
	for _, img := range imgs {
		got = append(got, img.Digest())
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("List order %v, want newest first %v", got, want)
	}
}

func testRemove(t *testing.T, s Store) {
	ctx := context.Background()
	shared := Layer(90, 5000)
	other := NewImage(t, "rm-other", shared)
	writeImage(t, s, other, named(t, "keep:v1"))

	type result struct {
		untagged []string
		deleted  bool
	}
	tests := []struct {
		name    string
		names   []string // the image's names; none: dangling
		remove  string   // "ID", "ID-prefix" or a name
		opts    store.RemoveOptions
		want    result
		wantErr error
		after   []string // names the image has afterwards (when not deleted)
	}{
		{name: "one of two names", names: []string{"rm1:a", "rm1:b"}, remove: "rm1:a",
			want: result{untagged: []string{"rm1:a"}}, after: []string{"docker.io/library/rm1:b"}},
		{name: "last name", names: []string{"rm2:a"}, remove: "rm2:a",
			want: result{untagged: []string{"rm2:a"}, deleted: true}},
		{name: "last name by full reference", names: []string{"rm3:a"}, remove: "docker.io/library/rm3:a",
			want: result{untagged: []string{"rm3:a"}, deleted: true}},
		{name: "ID, names in one repository", names: []string{"rm4:a", "rm4:b"}, remove: "ID",
			want: result{untagged: []string{"rm4:a", "rm4:b"}, deleted: true}},
		{name: "ID prefix", names: []string{"rm5:a"}, remove: "ID-prefix",
			want: result{untagged: []string{"rm5:a"}, deleted: true}},
		{name: "ID, names in two repositories", names: []string{"rm6:a", "example.com/rm6:a"}, remove: "ID",
			wantErr: errdefs.ErrConflict, after: []string{"docker.io/library/rm6:a", "example.com/rm6:a"}},
		{name: "ID, names in two repositories, forced", names: []string{"rm7:a", "example.com/rm7:a"}, remove: "ID",
			opts: store.RemoveOptions{Force: true},
			want: result{untagged: []string{"example.com/rm7:a", "rm7:a"}, deleted: true}},
		{name: "dangling by ID", remove: "ID", want: result{deleted: true}},
		{name: "in use", names: []string{"rm8:a"}, remove: "rm8:a",
			opts:    store.RemoveOptions{InUse: func(store.Image) string { return "container c1 uses it" }},
			wantErr: errdefs.ErrConflict, after: []string{"docker.io/library/rm8:a"}},
		{name: "in use, other names remain", names: []string{"rm9:a", "rm9:b"}, remove: "rm9:a",
			opts: store.RemoveOptions{InUse: func(store.Image) string { return "container c1 uses it" }},
			want: result{untagged: []string{"rm9:a"}}, after: []string{"docker.io/library/rm9:b"}},
		{name: "unknown name", names: []string{"rm10:a"}, remove: "rm10:b",
			wantErr: errdefs.ErrNotFound, after: []string{"docker.io/library/rm10:a"}},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			img := NewImage(t, "rm-"+tc.name, shared, Layer(uint64(900+i), 3000))
			writeImage(t, s, img, named(t, tc.names...))
			id := mustID(t, img)
			q := tc.remove
			switch q {
			case "ID":
				q = id.String()
			case "ID-prefix":
				q = id.Hex[:12]
			}
			res, err := s.Remove(ctx, q, tc.opts)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("Remove(%s): %v, want %v", q, err, tc.wantErr)
				}
			} else if err != nil {
				t.Fatalf("Remove(%s): %v", q, err)
			} else {
				sort.Strings(res.Untagged)
				got := result{untagged: res.Untagged, deleted: len(res.Deleted) > 0}
				if !reflect.DeepEqual(got, tc.want) {
					t.Errorf("Remove(%s) = %+v, want %+v", q, got, tc.want)
				}
				if got.deleted && !reflect.DeepEqual(res.Deleted, []v1.Hash{id}) {
					t.Errorf("Deleted %v, want [%s]", res.Deleted, id)
				}
			}
			blobs := mustBlobs(t, img)
			if tc.want.deleted {
				if _, err := s.Get(ctx, id.Hex); !errors.Is(err, errdefs.ErrNotFound) {
					t.Errorf("deleted image still found: %v", err)
				}
				// No lease is held: its own blobs go at once, shared ones stay.
				for _, b := range blobs[:2] {
					if s.HasBlob(ctx, b) {
						t.Errorf("blob %s of the deleted image left behind", b)
					}
				}
				if s.HasBlob(ctx, blobs[len(blobs)-1]) {
					t.Error("unique layer of the deleted image left behind")
				}
			} else {
				got, err := s.Get(ctx, id.Hex)
				if err != nil {
					t.Fatalf("image gone: %v", err)
				}
				if !reflect.DeepEqual(names(got), tc.after) {
					t.Errorf("names after Remove %v, want %v", names(got), tc.after)
				}
				for _, b := range blobs {
					if !s.HasBlob(ctx, b) {
						t.Errorf("blob %s of the kept image removed", b)
					}
				}
			}
			if d, _ := shared.Digest(); !s.HasBlob(ctx, d) {
				t.Error("layer shared with another image removed")
			}
			CheckConsistent(t, s)
		})
	}
}

func testPrune(t *testing.T, s Store) {
	ctx := context.Background()
	shared := Layer(95, 4000)
	named1 := NewImage(t, "prune-named", shared, Layer(96, 1000))
	dangling := NewImage(t, "prune-dangling", shared, Layer(97, 1000))
	used := NewImage(t, "prune-used", Layer(98, 1000))
	writeImage(t, s, named1, named(t, "prune:named"))
	writeImage(t, s, dangling, store.WriteOptions{})
	writeImage(t, s, used, named(t, "prune:used"))
	inUse := func(img store.Image) string {
		if img.Digest() == mustDigest(t, used) {
			return "container c1"
		}
		return ""
	}

	res, err := s.Prune(ctx, store.PruneOptions{InUse: inUse})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(res.Deleted, []v1.Hash{mustID(t, dangling)}) {
		t.Errorf("Prune deleted %v, want only the dangling image %s", res.Deleted, mustID(t, dangling))
	}
	// manifest, config, unique layer
	if res.Blobs != 3 {
		t.Errorf("Prune removed %d blobs, want 3", res.Blobs)
	}
	for _, b := range mustBlobs(t, dangling)[:2] {
		if s.HasBlob(ctx, b) {
			t.Errorf("blob %s of the pruned image left", b)
		}
	}
	if d, _ := shared.Digest(); !s.HasBlob(ctx, d) {
		t.Error("Prune removed a layer a named image uses")
	}
	CheckConsistent(t, s)
	imgs, _ := s.List(ctx)
	if len(imgs) != 2 {
		t.Fatalf("%d images after Prune, want 2", len(imgs))
	}

	res, err = s.Prune(ctx, store.PruneOptions{All: true, InUse: inUse})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(res.Deleted, []v1.Hash{mustID(t, named1)}) {
		t.Errorf("Prune All deleted %v, want %s", res.Deleted, mustID(t, named1))
	}
	imgs, _ = s.List(ctx)
	if len(imgs) != 1 || imgs[0].Digest() != mustDigest(t, used) {
		t.Errorf("after Prune All: %+v, want only the image in use", imgs)
	}
	for _, b := range mustBlobs(t, named1) {
		if s.HasBlob(ctx, b) {
			t.Errorf("blob %s of pruned image left", b)
		}
	}
	CheckConsistent(t, s)
	if ds, ok := s.(dirStore); ok {
		CheckNoOrphans(t, s, ds.Dir())
	}
}

func testGC(t *testing.T, s Store) {
	ctx := context.Background()
	shared := Layer(110, 8000)
	a := NewImage(t, "gc-a", shared, Layer(111, 2000))
	b := NewImage(t, "gc-b", shared, Layer(112, 2000))
	c := NewImage(t, "gc-dangling", Layer(113, 2000))
	writeImage(t, s, a, named(t, "gc:a"))
	writeImage(t, s, b, named(t, "gc:b"))
	writeImage(t, s, c, store.WriteOptions{})

	res, err := s.GC(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if res.Blobs != 0 {
		t.Errorf("GC removed %d blobs with nothing unreferenced", res.Blobs)
	}

	l, err := s.Lease(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var orphans []v1.Hash
	var orphanBytes int64
	for i := range 3 {
		data := Bytes(uint64(120+i), 1000*(i+1))
		info, err := s.WriteBlob(ctx, bytes.NewReader(data), Digest(data), int64(len(data)))
		if err != nil {
			t.Fatal(err)
		}
		orphans = append(orphans, info.Digest)
		orphanBytes += info.Size
	}
	l.Release()

	res, err = s.GC(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if res.Blobs != len(orphans) || res.Bytes != orphanBytes {
		t.Errorf("GC = %+v, want %d blobs of %d bytes", res, len(orphans), orphanBytes)
	}
	for _, o := range orphans {
		if s.HasBlob(ctx, o) {
			t.Errorf("unreferenced blob %s survived GC", o)
		}
	}
	for _, img := range []v1.Image{a, b, c} {
		for _, bl := range mustBlobs(t, img) {
			if !s.HasBlob(ctx, bl) {
				t.Errorf("GC removed blob %s of a stored image", bl)
			}
		}
	}
	CheckConsistent(t, s)

	// Removing the only name of a makes its own blobs garbage, not b's.
	if _, err := s.Remove(ctx, "gc:a", store.RemoveOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GC(ctx); err != nil {
		t.Fatal(err)
	}
	for i, bl := range mustBlobs(t, a) {
		if bl == mustBlobs(t, a)[2] { // the shared layer
			continue
		}
		if s.HasBlob(ctx, bl) {
			t.Errorf("blob %d (%s) of the removed image survived GC", i, bl)
		}
	}
	for _, bl := range mustBlobs(t, b) {
		if !s.HasBlob(ctx, bl) {
			t.Errorf("GC removed blob %s of the remaining image", bl)
		}
	}
	CheckConsistent(t, s)
	if ds, ok := s.(dirStore); ok {
		CheckNoOrphans(t, s, ds.Dir())
	}
}

func testVerify(t *testing.T, s Store) {
	ctx := context.Background()
	broken := NewImage(t, "verify-broken", Layer(130, 5000), Layer(131, 5000), Layer(132, 5000))
	fine := NewImage(t, "verify-fine", Layer(133, 5000))
	writeImage(t, s, broken, named(t, "app:v1"))
	writeImage(t, s, fine, named(t, "fine:v1"))

	rep, err := s.Verify(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Images != 2 || rep.Blobs != 8 || len(rep.Problems) != 0 {
		t.Fatalf("Verify of a sound store = %+v, want 2 images, 8 blobs, no problems", rep)
	}

	dir := dirOf(t, s)
	layers := mustBlobs(t, broken)[2:]
	missing, corrupt := layers[0], layers[1]
	p := blobPath(dir, missing)
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
	damage(t, blobPath(dir, corrupt), func(b []byte) []byte { b[0] ^= 1; return b })

	rep, err = s.Verify(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := map[v1.Hash]store.Problem{}
	for _, p := range rep.Problems {
		got[p.Blob] = p
	}
	if len(rep.Problems) != 2 {
		t.Errorf("Verify found %d problems, want 2: %v", len(rep.Problems), rep.Problems)
	}
	for _, want := range []struct {
		blob v1.Hash
		err  error
	}{{missing, errdefs.ErrNotFound}, {corrupt, errdefs.ErrDataCorrupt}} {
		p, ok := got[want.blob]
		if !ok {
			t.Errorf("Verify did not report blob %s", want.blob)
			continue
		}
		if p.Image != "app:v1" {
			t.Errorf("problem with %s names image %q, want app:v1", want.blob, p.Image)
		}
		if !errors.Is(p.Err, want.err) {
			t.Errorf("problem with %s: %v, want %v", want.blob, p.Err, want.err)
		}
		if !strings.Contains(p.String(), "app:v1") || !strings.Contains(p.String(), want.blob.Hex) {
			t.Errorf("problem text %q names neither image nor blob", p.String())
		}
	}

	// Writing the image again restores the missing layer.
	writeImage(t, s, broken, named(t, "app:v1"))
	rep, _ = s.Verify(ctx)
	if _, ok := problemFor(rep, missing); ok {
		t.Error("missing layer still reported after rewriting the image")
	}
}

func problemFor(rep store.VerifyReport, d v1.Hash) (store.Problem, bool) {
	for _, p := range rep.Problems {
		if p.Blob == d {
			return p, true
		}
	}
	return store.Problem{}, false
}
