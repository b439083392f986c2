package monitor

import (
	"context"

	"github.com/berthsh/berth/pkg/runtime"
	"github.com/berthsh/berth/pkg/runtime/logs"
)

// NewManagerSource is the Source of a Server watching m's containers:
// m.List (stopped ones included), readings as ReadStats takes them (each
// container's cgroup manager made once, the host's CPU time read once a
// round, at most readParallel containers at once), and the tail of each
// container's json-file log.
func NewManagerSource(m *runtime.Manager) Source {
	set := newReaderSet(readParallel)
	return Source{
		List: func(ctx context.Context) ([]runtime.Container, error) {
			cs, err := m.List(ctx, runtime.ListOptions{All: true})
			if err == nil {
				known := make(map[string]bool, len(cs))
				for _, c := range cs {
					known[c.Config.ID] = true
				}
				set.retain(func(id string) bool { return known[id] })
			}
			return cs, err
		},
		Stats: func(ctx context.Context, cs []runtime.Container) []StatsResult {
			out := make([]StatsResult, len(cs))
			for i, r := range set.readAll(ctx, cs) {
				out[i] = StatsResult{Stats: r.stats, Err: r.err}
			}
			return out
		},
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
