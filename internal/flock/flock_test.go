package flock

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestExclusion(t *testing.T) {
	t.Parallel()
	p := filepath.Join(t.TempDir(), "lock")
	var inside, maxInside atomic.Int32
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 20 {
				l, err := Acquire(context.Background(), p, true)
				if err != nil {
					t.Error(err)
					return
				}
				n := inside.Add(1)
				if n > maxInside.Load() {
					maxInside.Store(n)
				}
				time.Sleep(100 * time.Microsecond)
				inside.Add(-1)
				l.Unlock()
			}
		}()
	}
	wg.Wait()
	if maxInside.Load() != 1 {
		t.Fatalf("%d holders at once", maxInside.Load())
	}
}

func TestSharedAndTry(t *testing.T) {
	t.Parallel()
	p := filepath.Join(t.TempDir(), "lock")
	a, err := Acquire(context.Background(), p, false)
	if err != nil {
		t.Fatal(err)
	}
	b, err := TryAcquire(p, false)
	if err != nil || b == nil {
		t.Fatalf("second shared lock: %v %v", b, err)
	}
	if x, err := TryAcquire(p, true); err != nil || x != nil {
		t.Fatalf("exclusive lock while shared held: %v %v", x, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := Acquire(ctx, p, true); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Acquire with timeout: %v", err)
	}
	a.Unlock()
	b.Unlock()
	b.Unlock()
	// The abandoned waiter may take the lock for a moment when it is
	// released, and then drops it: an exclusive lock is soon ours.
	ctx2, cancel2 := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel2()
	x, err := Acquire(ctx2, p, true)
	if err != nil {
		t.Fatalf("exclusive after release: %v (the cancelled waiter kept the lock?)", err)
	}
	x.Unlock()
}

// TestWaiterWakesOnRelease checks that a waiter holds the lock once the
// holder lets go, and that it excluded the holder until then.
func TestWaiterWakesOnRelease(t *testing.T) {
	t.Parallel()
	p := filepath.Join(t.TempDir(), "lock")
	held, err := Acquire(context.Background(), p, true)
	if err != nil {
		t.Fatal(err)
	}
	var released atomic.Bool
	got := make(chan error, 1)
	go func() {
		l, err := Acquire(context.Background(), p, true)
		if err == nil {
			if !released.Load() {
				err = errors.New("acquired while still held")
			}
			l.Unlock()
		}
		got <- err
	}()
	time.Sleep(50 * time.Millisecond) // let the waiter block
	released.Store(true)
	held.Unlock()
	if err := <-got; err != nil {
		t.Fatal(err)
	}
}
