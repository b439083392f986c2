package store_test

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/berthsh/berth/pkg/reference"
	"github.com/berthsh/berth/pkg/store"
	"github.com/berthsh/berth/pkg/store/storetest"
)

var _ storetest.Store = (*store.Store)(nil)

func openStore(t testing.TB, dir string) *store.Store {
	t.Helper()
	s, err := store.Open(context.Background(), dir)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s
}

func TestConformance(t *testing.T) {
	t.Run("Fresh", func(t *testing.T) {
		t.Parallel()
		storetest.Run(t, func(t *testing.T) storetest.Store {
			return openStore(t, t.TempDir())
		})
	})
	// Every call goes to a store opened anew on the directory: nothing may
	// live only in memory, and opening must not disturb work in progress.
	t.Run("ReopenedPerCall", func(t *testing.T) {
		t.Parallel()
		storetest.Run(t, func(t *testing.T) storetest.Store {
			dir := t.TempDir()
			openStore(t, dir)
			return reopening{dir}
		})
	})
}

// reopening opens the store for every call.
type reopening struct{ dir string }

var _ storetest.Store = reopening{}

func (r reopening) Dir() string { return r.dir }

func (r reopening) open(ctx context.Context) (*store.Store, error) { return store.Open(ctx, r.dir) }

func (r reopening) BlobInfo(ctx context.Context, d v1.Hash) (store.BlobInfo, error) {
	s, err := r.open(ctx)
	if err != nil {
		return store.BlobInfo{}, err
	}
	return s.BlobInfo(ctx, d)
}

func (r reopening) HasBlob(ctx context.Context, d v1.Hash) bool {
	s, err := r.open(ctx)
	return err == nil && s.HasBlob(ctx, d)
}

func (r reopening) OpenBlob(ctx context.Context, d v1.Hash) (io.ReadCloser, error) {
	s, err := r.open(ctx)
	if err != nil {
		return nil, err
	}
	return s.OpenBlob(ctx, d)
}

func (r reopening) ReadBlob(ctx context.Context, d v1.Hash) ([]byte, error) {
	s, err := r.open(ctx)
	if err != nil {
		return nil, err
	}
	return s.ReadBlob(ctx, d)
}

func (r reopening) NewWriter(ctx context.Context) (*store.Writer, error) {
	s, err := r.open(ctx)
	if err != nil {
		return nil, err
	}
	return s.NewWriter(ctx)
}

func (r reopening) WriteBlob(ctx context.Context, rd io.Reader, want v1.Hash, size int64) (store.BlobInfo, error) {
	s, err := r.open(ctx)
	if err != nil {
		return store.BlobInfo{}, err
	}
	return s.WriteBlob(ctx, rd, want, size)
}

func (r reopening) Lease(ctx context.Context) (*store.Lease, error) {
	s, err := r.open(ctx)
	if err != nil {
		return nil, err
	}
	return s.Lease(ctx)
}

func (r reopening) WriteImage(ctx context.Context, img v1.Image, opts store.WriteOptions) (store.Image, error) {
	s, err := r.open(ctx)
	if err != nil {
		return store.Image{}, err
	}
	return s.WriteImage(ctx, img, opts)
}

func (r reopening) List(ctx context.Context) ([]store.Image, error) {
	s, err := r.open(ctx)
	if err != nil {
		return nil, err
	}
	return s.List(ctx)
}

func (r reopening) Get(ctx context.Context, nameOrID string) (store.Image, error) {
	s, err := r.open(ctx)
	if err != nil {
		return store.Image{}, err
	}
	return s.Get(ctx, nameOrID)
}

func (r reopening) Tag(ctx context.Context, nameOrID string, to reference.Reference) (store.Image, error) {
	s, err := r.open(ctx)
	if err != nil {
		return store.Image{}, err
	}
	return s.Tag(ctx, nameOrID, to)
}

func (r reopening) Remove(ctx context.Context, nameOrID string, opts store.RemoveOptions) (store.RemoveResult, error) {
	s, err := r.open(ctx)
	if err != nil {
		return store.RemoveResult{}, err
	}
	return s.Remove(ctx, nameOrID, opts)
}

func (r reopening) Prune(ctx context.Context, opts store.PruneOptions) (store.PruneResult, error) {
	s, err := r.open(ctx)
	if err != nil {
		return store.PruneResult{}, err
	}
	return s.Prune(ctx, opts)
}

func (r reopening) GC(ctx context.Context) (store.GCResult, error) {
	s, err := r.open(ctx)
	if err != nil {
		return store.GCResult{}, err
	}
	return s.GC(ctx)
}

func (r reopening) Verify(ctx context.Context) (store.VerifyReport, error) {
	s, err := r.open(ctx)
	if err != nil {
		return store.VerifyReport{}, err
	}
	return s.Verify(ctx)
}

func (r reopening) Image(ctx context.Context, img store.Image) (v1.Image, error) {
	s, err := r.open(ctx)
	if err != nil {
		return nil, err
	}
	return s.Image(ctx, img)
}

// Helper processes: the test binary re-executed with helperEnv naming what
// to do, against the store in storeDirEnv.
const (
	helperEnv   = "BERTH_STORETEST_HELPER"
	storeDirEnv = "BERTH_STORETEST_DIR"
	seedEnv     = "BERTH_STORETEST_SEED"
)

// helperCmd returns a command running the helper mode against dir.
func helperCmd(t *testing.T, mode, dir string, env ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), helperEnv+"="+mode, storeDirEnv+"="+dir)
	cmd.Env = append(cmd.Env, env...)
	return cmd
}

// TestHelperProcess is not a test: it is the body of the helper processes
// other tests start, and does nothing unless helperEnv is set.
func TestHelperProcess(t *testing.T) {
	mode := os.Getenv(helperEnv)
	if mode == "" {
		return
	}
	ctx := context.Background()
	s, err := store.Open(ctx, os.Getenv(storeDirEnv))
	if err == nil {
		seed, _ := strconv.ParseUint(os.Getenv(seedEnv), 10, 64)
		switch mode {
		case "churn":
			err = helperChurn(ctx, s, seed)
		case "write":
			err = helperWrite(ctx, s, seed)
		case "tagloop":
			err = helperTagLoop(ctx, s)
		default:
			err = fmt.Errorf("unknown helper mode %q", mode)
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

func helperChurn(ctx context.Context, s *store.Store, seed uint64) error {
	c, err := storetest.NewChurn()
	if err != nil {
		return err
	}
	iters := 20
	if n, err := strconv.Atoi(os.Getenv("BERTH_STORETEST_ITERS")); err == nil {
		iters = n
	}
	return c.Run(ctx, s, seed, iters)
}

// TestMultiProcess runs the churn workload in 8 processes at once against
// one store directory.
func TestMultiProcess(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	openStore(t, dir)
	const procs = 8
	var wg sync.WaitGroup
	errs := make([]error, procs)
	for i := range procs {
		cmd := helperCmd(t, "churn", dir, seedEnv+"="+strconv.Itoa(i+100))
		var out strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		wg.Go(func() {
			if err := cmd.Wait(); err != nil {
				errs[i] = fmt.Errorf("process %d: %v: %s", i, err, out.String())
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	s := openStore(t, dir)
	storetest.CheckConsistent(t, s)
	if _, err := s.GC(context.Background()); err != nil {
		t.Fatal(err)
	}
	storetest.CheckConsistent(t, s)
	storetest.CheckNoOrphans(t, s, dir)
}
