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
	// Err is why the container could not be read although it runs (or,
	// after the first Collect, why a named container is gone); only ID,
	// Name and Image are set then. docker shows such a row as "--".
	Err error `json:"-"`
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
	// list and get are the manager's List and Get (variables for tests).
	list func(ctx context.Context, opts runtime.ListOptions) ([]runtime.Container, error)
	get  func(ctx context.Context, idOrName string) (runtime.Container, error)
	opts CollectOptions
	set  *readerSet
	prev map[string]prevStats // by container ID
	// named are the containers opts.Names resolved to at the last
	// Collect: one removed since is shown with an error, not an end.
	named []runtime.Container
}

// NewCollector returns a Collector of the containers opts selects.
func NewCollector(m *runtime.Manager, opts CollectOptions) *Collector {
	if opts.Interval == 0 {
		opts.Interval = DefaultInterval
	}
	if opts.Workers <= 0 {
		opts.Workers = min(2*goruntime.NumCPU(), 16)
	}
	return &Collector{list: m.List, get: m.Get, opts: opts, set: newReaderSet(opts.Workers), prev: map[string]prevStats{}}
}

// Collect reads the selected containers once. Containers read for the
// first time are read twice, opts.Interval apart, so that every running
// container gets a CPU% (unless Interval is negative). A listed
// container that stops or disappears meanwhile is left out (or, when
// named or listed with All, reported as not running). A running
// container that cannot be read (an unreadable cgroup file, say) is
// reported with Err set and the others as usual; so is a named container
// removed after the first Collect.
func (c *Collector) Collect(ctx context.Context) ([]ContainerStats, error) {
	ctrs, gone, err := c.selectContainers(ctx)
	if err != nil {
		return nil, err
	}
	seen := make(map[string]bool, len(ctrs))
	var fresh []runtime.Container
	for i, ctr := range ctrs {
		id := ctr.Config.ID
		seen[id] = true
		if gone[i] != nil {
			continue
		}
		if prev, ok := c.prev[id]; ok && (!ctr.State.Running || prev.pid != ctr.State.Pid || !prev.started.Equal(ctr.State.StartedAt)) {
			// Stopped or restarted: its counters start again.
			delete(c.prev, id)
		}
		if _, ok := c.prev[id]; !ok && ctr.State.Running {
			fresh = append(fresh, ctr)
		}
	}
	c.set.retain(func(id string) bool { return seen[id] })
	for id := range c.prev {
		if !seen[id] {
			delete(c.prev, id)
		}
	}

	if len(fresh) > 0 && c.opts.Interval > 0 {
		first := c.set.readAll(ctx, fresh)
		for i, ctr := range fresh {
			if first[i].err == nil {
				c.prev[ctr.Config.ID] = prevReading(first[i].stats, ctr)
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

	live := make([]runtime.Container, 0, len(ctrs))
	idx := make([]int, 0, len(ctrs))
	for i, ctr := range ctrs {
		if gone[i] == nil && ctr.State.Running {
			live = append(live, ctr)
			idx = append(idx, i)
		}
	}
	results := make([]readResult, len(ctrs))
	for i, ctr := range ctrs {
		switch {
		case gone[i] != nil:
			results[i].err = gone[i]
		case !ctr.State.Running:
			results[i].err = errNotRunning(ctr)
		}
	}
	for j, r := range c.set.readAll(ctx, live) {
		results[idx[j]] = r
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	out := make([]ContainerStats, 0, len(ctrs))
	for i, ctr := range ctrs {
		id := ctr.Config.ID
		res := results[i]
		switch {
		case gone[i] != nil:
			s := stoppedStats(ctr)
			s.Err = gone[i]
			out = append(out, s)
			continue
		case res.err != nil && errors.Is(res.err, errdefs.ErrNotFound):
			// Not running (any more).
			c.set.forget(id)
			delete(c.prev, id)
			if len(c.opts.Names) > 0 || c.opts.All {
				out = append(out, stoppedStats(ctr))
			}
			continue
		case res.err != nil:
			// Running but unreadable: shown, marked, and read afresh
			// next time.
			c.set.forget(id)
			delete(c.prev, id)
			s := stoppedStats(ctr)
			s.Running, s.Err = true, res.err
			out = append(out, s)
			continue
		}
		s := ContainerStats{Stats: res.stats, Running: true, MemPercent: MemPercent(res.stats)}
		if prev, ok := c.prev[id]; ok {
			s.CPUPercent = CPUPercent(prev.Stats, res.stats)
		}
		c.prev[id] = prevReading(res.stats, ctr)
		out = append(out, s)
	}
	return out, nil
}

// prevStats is a container's previous reading and the run it was taken
// of (a restart starts the counters again).
type prevStats struct {
	Stats
	pid     int
	started time.Time
}

func prevReading(s Stats, ctr runtime.Container) prevStats {
	return prevStats{Stats: s, pid: ctr.State.Pid, started: ctr.State.StartedAt}
}

func errNotRunning(ctr runtime.Container) error {
	name := ctr.Config.Name
	if name == "" {
		name = ctr.Config.ID
	}
	return fmt.Errorf("container %s is not running: %w", name, errdefs.ErrNotFound)
}

func stoppedStats(ctr runtime.Container) ContainerStats {
	return ContainerStats{Stats: Stats{ID: ctr.Config.ID, Name: ctr.Config.Name, Image: ctr.Config.Image, Read: time.Now()}}
}

// selectContainers resolves the names, or lists the containers. gone[i]
// is set for a named container that no longer exists (removed after the
// first Collect): ctrs[i] is then how it last was.
func (c *Collector) selectContainers(ctx context.Context) (ctrs []runtime.Container, gone []error, err error) {
	if len(c.opts.Names) == 0 {
		ctrs, err := c.list(ctx, runtime.ListOptions{All: c.opts.All})
		if err != nil {
			return nil, nil, fmt.Errorf("stats: %w", err)
		}
		return ctrs, make([]error, len(ctrs)), nil
	}
	ctrs = make([]runtime.Container, 0, len(c.opts.Names))
	gone = make([]error, len(c.opts.Names))
	for i, name := range c.opts.Names {
		ctr, err := c.get(ctx, name)
		if err != nil {
			if c.named == nil || !errors.Is(err, errdefs.ErrNotFound) {
				return nil, nil, err
			}
			ctr, gone[i] = c.named[i], err
		}
		ctrs = append(ctrs, ctr)
	}
	c.named = ctrs
	return ctrs, gone, nil
}

type readResult struct {
	stats Stats
	err   error
}

// readerSet reads rounds of containers: it keeps one reader per container
// (its cgroup manager is made once) and reads the host's CPU time once a
// round. It is safe for concurrent use.
type readerSet struct {
	workers int
	// newReader makes a container's reader (a variable for tests).
	newReader func(runtime.Container) (*reader, error)

	mu      sync.Mutex
	readers map[string]*reader // by container ID
}

func newReaderSet(workers int) *readerSet {
	return &readerSet{workers: max(workers, 1), newReader: newReader, readers: map[string]*reader{}}
}

// forget drops container id's reader.
func (rs *readerSet) forget(id string) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	delete(rs.readers, id)
}

// retain drops the readers of the containers keep does not report true
// for.
func (rs *readerSet) retain(keep func(id string) bool) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	for id := range rs.readers {
		if !keep(id) {
			delete(rs.readers, id)
		}
	}
}

// readers returns a reader of each container (nil, with the error in
// res, for one that has none), made or reused.
func (rs *readerSet) get(ctrs []runtime.Container, res []readResult) []*reader {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	out := make([]*reader, len(ctrs))
	for i, ctr := range ctrs {
		id := ctr.Config.ID
		r := rs.readers[id]
		if r != nil && (r.c.State.Pid != ctr.State.Pid || !r.c.State.StartedAt.Equal(ctr.State.StartedAt)) {
			r = nil // restarted: a new cgroup, maybe a new path
		}
		if r == nil {
			var err error
			if r, err = rs.newReader(ctr); err != nil {
				delete(rs.readers, id)
				res[i].err = err
				continue
			}
			rs.readers[id] = r
		}
		// A copy with the container as it is now (a rename): readers
		// are shared by concurrent rounds and never changed.
		rc := *r
		rc.setContainer(ctr)
		out[i] = &rc
	}
	return out
}

// readAll reads ctrs, at most rs.workers at once, in ctrs' order, with
// one reading of the host's CPU time. A stopped container's result is
// an errdefs.ErrNotFound error.
func (rs *readerSet) readAll(ctx context.Context, ctrs []runtime.Container) []readResult {
	res := make([]readResult, len(ctrs))
	readers := rs.get(ctrs, res)
	host, err := readHostCPU()
	if err != nil {
		for i, r := range readers {
			if r != nil {
				res[i].err = fmt.Errorf("stats %s: %w", r.name, err)
			}
		}
		return res
	}
	jobs := make(chan int)
	var wg sync.WaitGroup
	for range min(rs.workers, len(ctrs)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				res[i].stats, res[i].err = readers[i].read(ctx, host)
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
