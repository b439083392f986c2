//go:build !linux

package loadtest

import (
	"context"
	"time"
)

// epollSupported reports whether this OS has the epoll engine.
const epollSupported = false

// epollLoad is the epoll engine, which only Linux has.
type epollLoad struct{ threads []struct{} }

func newEpollLoad(ctx context.Context, r *run) (*epollLoad, error) {
	return nil, invalid("the epoll engine runs on Linux only")
}

func (e *epollLoad) run(hard context.Context, end time.Time) {}

func (e *epollLoad) close() {}
