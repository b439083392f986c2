package store

import (
	"context"
	"errors"
	"os"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/random"

	"github.com/berthsh/berth/pkg/errdefs"
	"github.com/berthsh/berth/pkg/reference"
)

func mustRef(t *testing.T, s string) reference.Reference {
	t.Helper()
	r, err := reference.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestWriteTagRemove(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, err := Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	img, err := random.Image(1024, 3)
	if err != nil {
		t.Fatal(err)
	}
	stored, err := s.WriteImage(ctx, img, WriteOptions{Names: []reference.Reference{mustRef(t, "app:v1")}})
	if err != nil {
		t.Fatal(err)
	}
	want, _ := img.Digest()
	if stored.Digest() != want {
		t.Fatalf("digest %s, want %s", stored.Digest(), want)
	}
	got, err := s.Get(ctx, "app:v1")
	if err != nil || got.Digest() != want {
		t.Fatalf("Get: %v %v", got, err)
	}
	id, _ := img.ConfigName()
	if byID, err := s.Get(ctx, id.Hex[:8]); err != nil || byID.Digest() != want {
		t.Fatalf("Get by ID prefix: %v", err)
	}
	if _, err := s.Tag(ctx, "app:v1", mustRef(t, "other/app:v2")); err != nil {
		t.Fatal(err)
	}
	// By ID with names in two repositories: refused without force.
	if _, err := s.Remove(ctx, id.Hex, RemoveOptions{}); !errors.Is(err, errdefs.ErrConflict) {
		t.Fatalf("Remove by ID: %v, want conflict", err)
	}
	res, err := s.Remove(ctx, "app:v1", RemoveOptions{})
	if err != nil || len(res.Untagged) != 1 || len(res.Deleted) != 0 {
		t.Fatalf("Remove name: %+v %v", res, err)
	}
	res, err = s.Remove(ctx, "other/app:v2", RemoveOptions{})
	if err != nil || len(res.Deleted) != 1 {
		t.Fatalf("Remove last name: %+v %v", res, err)
	}
	if s.HasBlob(ctx, want) {
		t.Fatal("manifest blob survived removal of the image")
	}
	rep, err := s.Verify(ctx)
	if err != nil || len(rep.Problems) != 0 {
		t.Fatalf("Verify: %+v %v", rep, err)
	}
}

func TestRewriteRepairsTruncatedLayer(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, err := Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	img, _ := random.Image(4096, 2)
	if _, err := s.WriteImage(ctx, img, WriteOptions{Names: []reference.Reference{mustRef(t, "app:v1")}}); err != nil {
		t.Fatal(err)
	}
	layers, _ := img.Layers()
	d, _ := layers[0].Digest()
	p := s.blobPath(d)
	if err := os.Chmod(p, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(p, 10); err != nil {
		t.Fatal(err)
	}
	if rep, _ := s.Verify(ctx); len(rep.Problems) != 1 {
		t.Fatalf("Verify after truncation: %+v", rep)
	}
	if _, err := s.WriteImage(ctx, img, WriteOptions{Names: []reference.Reference{mustRef(t, "app:v1")}}); err != nil {
		t.Fatal(err)
	}
	if rep, _ := s.Verify(ctx); len(rep.Problems) != 0 {
		t.Fatalf("Verify after rewrite: %+v", rep.Problems)
	}
}

func TestGetByDigestChecksRepository(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, err := Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	img, _ := random.Image(512, 1)
	if _, err := s.WriteImage(ctx, img, WriteOptions{Names: []reference.Reference{mustRef(t, "app:v1")}}); err != nil {
		t.Fatal(err)
	}
	d, _ := img.Digest()
	if _, err := s.Get(ctx, "app@"+d.String()); err != nil {
		t.Fatalf("same repository: %v", err)
	}
	if _, err := s.Get(ctx, "other@"+d.String()); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("other repository: %v, want not found", err)
	}
}
