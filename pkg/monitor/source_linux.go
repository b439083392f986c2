package monitor

import (
	"context"

	"github.com/berthsh/berth/pkg/runtime"
	"github.com/berthsh/berth/pkg/runtime/logs"
)

// NewManagerSource is the Source of a Server watching m's containers:
// m.List (stopped ones included), ReadStats, and the tail of each
// container's json-file log.
func NewManagerSource(m *runtime.Manager) Source {
	return Source{
		List: func(ctx context.Context) ([]runtime.Container, error) {
			return m.List(ctx, runtime.ListOptions{All: true})
		},
		Stats: ReadStats,
		Logs: func(ctx context.Context, c runtime.Container, n int) ([]logs.Entry, error) {
			var out []logs.Entry
			err := logs.Read(ctx, m.LogPath(c), logs.ReadOptions{Tail: n}, func(e logs.Entry) error {
				out = append(out, e)
				return nil
			})
			return out, err
		},
	}
}
