//go:build !linux

package volume

import (
	"context"
	"fmt"

	"github.com/berthsh/berth/pkg/errdefs"
)

func seedData(ctx context.Context, src, data, volDir string) (bool, error) {
	return false, fmt.Errorf("seeding volumes is supported on Linux only: %w", errdefs.ErrNotImplemented)
}
