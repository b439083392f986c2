//go:build !linux

package events

import (
	"context"
	"time"
)

// watcher polls: there is no change notification off Linux.
type watcher struct{}

func newWatcher(dir string) *watcher { return &watcher{} }

func (w *watcher) close() {}

func (w *watcher) stale() bool { return false }

func (w *watcher) wait(ctx context.Context, timeout time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(timeout):
		return nil
	}
}
