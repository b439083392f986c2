package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/berthsh/berth/pkg/errdefs"
	"github.com/berthsh/berth/pkg/reference"
	"github.com/berthsh/berth/pkg/store"
)

func testGCWaitsForLease(t *testing.T, s Store) {
	ctx := context.Background()
	layer := Layer(140, 100000)
	img := NewImage(t, "lease", layer)
	ld, _ := layer.Digest()

	l, err := s.Lease(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release()
	// A pull in progress: one layer written, the image not recorded yet.
	w, err := s.NewWriter(ctx)
	if err != nil {
		t.Fatal(err)
	}
	rc, _ := layer.Compressed()
	if _, err := io.Copy(w, rc); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Commit(ctx, ld, 100000); err != nil {
		t.Fatal(err)
	}
	stray := Bytes(141, 1000)
	if _, err := s.WriteBlob(ctx, bytes.NewReader(stray), Digest(stray), int64(len(stray))); err != nil {
		t.Fatal(err)
	}

	tctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	_, err = s.GC(tctx)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("GC during a lease: %v, want it to wait until its context expires", err)
	}
	if !s.HasBlob(ctx, ld) || !s.HasBlob(ctx, Digest(stray)) {
		t.Fatal("GC removed blobs of a writer holding a lease")
	}

	type gcResult struct {
		res store.GCResult
		err error
	}
	done := make(chan gcResult, 1)
	go func() {
		res, err := s.GC(ctx)
		done <- gcResult{res, err}
	}()
	select {
	case r := <-done:
		t.Fatalf("GC finished while a lease was held: %+v, %v", r.res, r.err)
	case <-time.After(100 * time.Millisecond):
	}
	// The writer finishes: the image references the layer.
	writeImage(t, s, img, named(t, "lease:v1"))
	l.Release()

	var r gcResult
	select {
	case r = <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("GC still waiting 20s after the lease was released")
	}
	if r.err != nil {
		t.Fatalf("GC: %v", r.err)
	}
	if r.res.Blobs != 1 {
		t.Errorf("GC removed %d blobs, want only the stray one", r.res.Blobs)
	}
	if !s.HasBlob(ctx, ld) {
		t.Error("GC removed the layer once the image referenced it")
	}
	if s.HasBlob(ctx, Digest(stray)) {
		t.Error("GC kept a blob nothing references")
	}
	CheckConsistent(t, s)
}

// testRemoveDuringLease: deleting an image while another writer holds a
// lease must not collect blobs under that writer.
func testRemoveDuringLease(t *testing.T, s Store) {
	ctx := context.Background()
	shared := Layer(150, 20000)
	old := NewImage(t, "rmlease-old", shared)
	next := NewImage(t, "rmlease-next", shared, Layer(151, 1000))
	writeImage(t, s, old, named(t, "rmlease:old"))

	l, err := s.Lease(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release()
	// The writer of next has found the shared layer present.
	sd, _ := shared.Digest()
	if !s.HasBlob(ctx, sd) {
		t.Fatal("shared layer missing")
	}
	res, err := s.Remove(ctx, "rmlease:old", store.RemoveOptions{})
	if err != nil || len(res.Deleted) != 1 {
		t.Fatalf("Remove = %+v, %v", res, err)
	}
	if !s.HasBlob(ctx, sd) {
		t.Fatal("Remove collected a blob while a lease was held")
	}
	writeImage(t, s, next, named(t, "rmlease:next"))
	l.Release()
	if _, err := s.GC(ctx); err != nil {
		t.Fatal(err)
	}
	if !s.HasBlob(ctx, sd) {
		t.Error("shared layer gone")
	}
	if s.HasBlob(ctx, mustDigest(t, old)) {
		t.Error("manifest of the removed image survived GC")
	}
	CheckConsistent(t, s)
}

// Churn is a workload of writes, tags, removals, garbage collections and
// verifications over a fixed set of images with shared layers. Separate
// goroutines or processes with different seeds run it against one store.
type Churn struct {
	Images []v1.Image
	Names  []reference.Reference
}

// NewChurn builds the workload's images and names; every process gets the
// same ones.
func NewChurn() (*Churn, error) {
	shared := []v1.Layer{Layer(1000, 16<<10), Layer(1001, 8<<10), Layer(1002, 32<<10)}
	c := &Churn{}
	for i := range 6 {
		img, err := newImage(fmt.Sprintf("churn-%d", i), shared[i%3], shared[(i+1)%3], Layer(uint64(1100+i), 4<<10))
		if err != nil {
			return nil, err
		}
		c.Images = append(c.Images, img)
	}
	for _, n := range []string{"churn/a:1", "churn/a:2", "churn/b:1", "example.com/churn/c:1", "churn/d:latest", "churn/e:1"} {
		r, err := reference.Parse(n)
		if err != nil {
			return nil, err
		}
		c.Names = append(c.Names, r)
	}
	return c, nil
}

// Run does iters random operations on s. It returns the first error other
// than those concurrent changes explain (ErrNotFound, ErrConflict), and
// any damage Verify reports meanwhile.
func (c *Churn) Run(ctx context.Context, s Store, seed uint64, iters int) error {
	rng := rand.New(rand.NewPCG(seed, 42))
	for i := range iters {
		var err error
		name := c.Names[rng.IntN(len(c.Names))]
		op := rng.IntN(20)
		switch {
		case op < 8:
			img := c.Images[rng.IntN(len(c.Images))]
			_, err = s.WriteImage(ctx, img, store.WriteOptions{Names: []reference.Reference{name}, Jobs: 2})
		case op < 11:
			_, err = s.Tag(ctx, name.String(), c.Names[rng.IntN(len(c.Names))])
		case op < 15:
			_, err = s.Remove(ctx, name.String(), store.RemoveOptions{})
		case op < 17:
			_, err = s.GC(ctx)
		case op < 18:
			_, err = s.Prune(ctx, store.PruneOptions{})
		default:
			var rep store.VerifyReport
			rep, err = s.Verify(ctx)
			if err == nil && len(rep.Problems) > 0 {
				err = fmt.Errorf("verify during churn: %v", rep.Problems)
			}
		}
		if err != nil && !errors.Is(err, errdefs.ErrNotFound) && !errors.Is(err, errdefs.ErrConflict) {
			return fmt.Errorf("iteration %d, op %d: %w", i, op, err)
		}
	}
	return nil
}

func testConcurrentGoroutines(t *testing.T, s Store) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := NewChurn()
	if err != nil {
		t.Fatal(err)
	}
	const workers, iters = 8, 15
	errs := make(chan error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			if err := c.Run(ctx, s, uint64(w), iters); err != nil {
				errs <- fmt.Errorf("worker %d: %w", w, err)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	CheckConsistent(t, s)
	if _, err := s.GC(ctx); err != nil {
		t.Fatal(err)
	}
	CheckConsistent(t, s)
	if ds, ok := s.(dirStore); ok {
		CheckNoOrphans(t, s, ds.Dir())
	}
}
