//go:build !linux

package build

import (
	"context"
	"fmt"

	"github.com/berthsh/berth/pkg/errdefs"
	"github.com/berthsh/berth/pkg/store"
)

// Build builds an image; it needs Linux (overlay mounts and containers).
func Build(ctx context.Context, s *store.Store, opts Options) (Result, error) {
	return Result{}, fmt.Errorf("build: building images needs Linux: %w", errdefs.ErrNotImplemented)
}
