// Package nettest holds test helpers that need pkg/network (kept out of
// testutil so pkg/network's own tests can use testutil).
package nettest

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/berthsh/berth/pkg/network"
)

// CleanupNetworks removes, when t ends, every network (bridge, firewall
// state) that berth created under the data directory root, so tests that
// run containers in a temporary root leave no bridge behind on the host.
// Register it before the containers are created: cleanups run last-in
// first-out, so the containers' own cleanups run first.
func CleanupNetworks(t testing.TB, root string) {
	t.Helper()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		m, err := network.New(filepath.Join(root, "networks"))
		if err != nil {
			t.Errorf("cleanup networks: %v", err)
			return
		}
		if err := m.RemoveAll(ctx); err != nil {
			t.Errorf("cleanup networks of %s: %v", root, err)
		}
	})
}
