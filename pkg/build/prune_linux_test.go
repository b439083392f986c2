package build

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/berthsh/berth/internal/flock"
)

func TestPrune(t *testing.T) {
	e := newEnv(t)
	dir := writeContext(t, map[string]string{
		"Dockerfile": "FROM " + baseName + "\nRUN --mount=type=cache,target=/c echo " + t.Name() + " > /c/f && echo x > /x\n",
	})
	// Built without a tag: the RUN layer is used by no named image... but
	// the unnamed image keeps it; prune without -a keeps that entry.
	if _, _, err := e.build(t, dir, Options{}); err != nil {
		t.Fatal(err)
	}
	u, err := Usage(t.Context(), e.s, e.root)
	if err != nil {
		t.Fatal(err)
	}
	if u.Entries != 2 || u.Size == 0 { // the RUN step and the cache mount
		t.Fatalf("usage %+v, want 2 entries with a size", u)
	}

	// A running build holds the cache: prune waits for it.
	lock, err := flock.Acquire(t.Context(), filepath.Join(e.root, "build", pruneLockName), false)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	_, err = Prune(ctx, e.s, e.root, PruneOptions{All: true})
	cancel()
	lock.Unlock()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("prune during a build: %v, want it to wait", err)
	}

	// Everything is newer than an hour ago: the filter keeps it all.
	res, err := Prune(t.Context(), e.s, e.root, PruneOptions{All: true, Until: time.Now().Add(-time.Hour)})
	if err != nil || len(res.Deleted) != 0 {
		t.Fatalf("prune until an hour ago: %+v %v", res, err)
	}
	// Without -a: the cache mount goes, the step whose layer an image uses
	// stays.
	res, err = Prune(t.Context(), e.s, e.root, PruneOptions{})
	if err != nil || len(res.Deleted) != 1 || res.Reclaimed == 0 {
		t.Fatalf("prune: %+v %v", res, err)
	}
	if left, _ := os.ReadDir(filepath.Join(e.root, "build", "cache")); len(left) != 0 {
		t.Errorf("cache mounts left: %v", left)
	}
	_, rec, err := e.build(t, dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if d := rec.done(); len(d) != 1 || !d[0].Cached {
		t.Errorf("after prune without All the step is not cached: %+v", d)
	}
	res, err = Prune(t.Context(), e.s, e.root, PruneOptions{All: true})
	if err != nil || len(res.Deleted) != 1 {
		t.Fatalf("prune -a: %+v %v", res, err)
	}
	_, rec, err = e.build(t, dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if d := rec.done(); len(d) != 1 || d[0].Cached {
		t.Errorf("after prune -a the step is cached: %+v", d)
	}
}
