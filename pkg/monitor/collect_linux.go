package monitor

import (
	"context"
	"errors"
	"fmt"
	goruntime "runtime"
	"sync"
	"time"

	"github.com/berthsh/berth/pkg/errdefs"
	"github.com/berthsh/berth/pkg/runtime"
)

// DefaultInterval is the time between the two readings a first CPU% is
// computed from: long enough for docker-like accuracy (the host's CPU
// time advances in 10 ms ticks), short enough that "stats --no-stream"
// of many containers returns in well under half a second.
const DefaultInterval = 200 * time.Millisecond

// CollectOptions says which containers Collect reads and how.
type CollectOptions struct {
	// Names are the containers to read (IDs, unique ID prefixes or
	// names); Collect returns one ContainerStats for each, in this order, and
	// fails with errdefs.ErrNotFound ("No such container: X") for a name
	// that matches none. Empty means the running containers (all
	// containers with All), newest first.
	Names []string
	All   bool
	// Interval is the time between the two readings CPUPercent is
	// computed from when a container has no earlier reading:
	// DefaultInterval when zero; negative for a single reading (CPU% 0
	// until the next Collect of a Collector).
	Interval time.Duration
	// Workers bounds how many containers are read at once (zero: twice
	// the CPUs, at most 16).
	Workers int
}

// ContainerStats is one container's reading with the rates derived from it. A
// container that is not running (named in CollectOptions.Names, or listed
// with All) has only ID, Name and Image set and Running false.
type ContainerStats struct {
	Stats
	Running bool `json:"running"`
	// CPUPercent is docker's CPU %: the CPU use since the previous
	// reading, 100 per busy core (see CPUPercent).
	CPUPercent float64 `json:"cpu_percent"`
	// MemPercent is docker's MEM %: MemoryUsage over MemoryLimit.
	MemPercent float64 `json:"mem_percent"`
}

// Collect takes one reading of many containers concurrently (see
// CollectOptions), each with a CPU% measured over opts.Interval. It is
// NewCollector(m, opts).Collect(ctx).
func Collect(ctx context.Context, m *runtime.Manager, opts CollectOptions) ([]ContainerStats, error) {
	return NewCollector(m, opts).Collect(ctx)
}

// Collector reads the same selection of containers again and again, as
// a refreshing view or a metrics exporter does: each Collect computes
// CPU% since the previous Collect's reading of a container. A Collector
// is not safe for concurrent use.
type Collector struct {
	m       *runtime.Manager
	opts    CollectOptions
	readers map[string]*reader // by container ID
	prev    map[string]Stats   // by container ID
}

// NewCollector returns a Collector of the containers opts selects.
func NewCollector(m *runtime.Manager, opts CollectOptions) *Collector {
	if opts.Interval == 0 {
		opts.Interval = DefaultInterval
	}
	if opts.Workers <= 0 {
		opts.Workers = min(2*goruntime.NumCPU(), 16)
	}
	return &Collector{m: m, opts: opts, readers: map[string]*reader{}, prev: map[string]Stats{}}
}

// Collect reads the selected containers once. Containers read for the
// first time are read twice, opts.Interval apart, so that every running
// container gets a CPU% (unless Interval is negative). A listed
// container that stops or disappears meanwhile is left out (or, when
// named or listed with All, reported as not running).
func (c *Collector) Collect(ctx context.Context) ([]ContainerStats, error) {
	ctrs, err := c.selectContainers(ctx)
	if err != nil {
		return nil, err
	}
	seen := make(map[string]bool, len(ctrs))
	var fresh []runtime.Container
	for _, ctr := range ctrs {
		id := ctr.Config.ID
		seen[id] = true
		if r := c.readers[id]; r != nil && (!ctr.State.Running || r.c.State.Pid != ctr.State.Pid || !r.c.State.StartedAt.Equal(ctr.State.StartedAt)) {
			// Stopped or restarted: its counters start again.
			delete(c.readers, id)
			delete(c.prev, id)
		}
		if _, ok := c.prev[id]; !ok && ctr.State.Running {
			fresh = append(fresh, ctr)
		}
	}
	for id := range c.readers {
		if !seen[id] {
			delete(c.readers, id)
			delete(c.prev, id)
		}
	}

	if len(fresh) > 0 && c.opts.Interval > 0 {
		first := c.readAll(ctx, fresh)
		for i, ctr := range fresh {
			if first[i].err == nil {
				c.prev[ctr.Config.ID] = first[i].stats
			}
		}
		t := time.NewTimer(c.opts.Interval)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
	}

	results := c.readAll(ctx, ctrs)
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	out := make([]ContainerStats, 0, len(ctrs))
	for i, ctr := range ctrs {
		id := ctr.Config.ID
		res := results[i]
		if res.err != nil {
			if !errors.Is(res.err, errdefs.ErrNotFound) {
				return nil, res.err
			}
			// Not running (any more).
			delete(c.readers, id)
			delete(c.prev, id)
			if len(c.opts.Names) > 0 || c.opts.All {
				out = append(out, stoppedStats(ctr))
			}
			continue
		}
		s := ContainerStats{Stats: res.stats, Running: true, MemPercent: MemPercent(res.stats)}
		if prev, ok := c.prev[id]; ok {
			s.CPUPercent = CPUPercent(prev, res.stats)
		}
		c.prev[id] = res.stats
		out = append(out, s)
	}
	return out, nil
}

func stoppedStats(ctr runtime.Container) ContainerStats {
	return ContainerStats{Stats: Stats{ID: ctr.Config.ID, Name: ctr.Config.Name, Image: ctr.Config.Image, Read: time.Now()}}
}

// selectContainers resolves the names, or lists the containers.
func (c *Collector) selectContainers(ctx context.Context) ([]runtime.Container, error) {
	if len(c.opts.Names) == 0 {
		ctrs, err := c.m.List(ctx, runtime.ListOptions{All: c.opts.All})
		if err != nil {
			return nil, fmt.Errorf("stats: %w", err)
		}
		return ctrs, nil
	}
	ctrs := make([]runtime.Container, 0, len(c.opts.Names))
	for _, name := range c.opts.Names {
		ctr, err := c.m.Get(ctx, name)
		if err != nil {
			return nil, err
		}
		ctrs = append(ctrs, ctr)
	}
	return ctrs, nil
}

type readResult struct {
	stats Stats
	err   error
}

// readAll reads ctrs with at most opts.Workers reads at once. A stopped
// container's result is an errdefs.ErrNotFound error.
func (c *Collector) readAll(ctx context.Context, ctrs []runtime.Container) []readResult {
	res := make([]readResult, len(ctrs))
	// Readers are made (and cached) here, so that the workers touch no
	// map.
	readers := make([]*reader, len(ctrs))
	for i, ctr := range ctrs {
		r := c.readers[ctr.Config.ID]
		if r == nil {
			var err error
			if r, err = newReader(ctr); err != nil {
				res[i].err = err
				continue
			}
			c.readers[ctr.Config.ID] = r
		} else {
			r.setContainer(ctr) // a rename, a new state
		}
		readers[i] = r
	}
	jobs := make(chan int)
	var wg sync.WaitGroup
	for range min(c.opts.Workers, len(ctrs)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				res[i].stats, res[i].err = readers[i].read(ctx)
			}
		}()
	}
	for i := range ctrs {
		if readers[i] != nil {
			jobs <- i
		}
	}
	close(jobs)
	wg.Wait()
	return res
}
