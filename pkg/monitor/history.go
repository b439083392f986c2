package monitor

import (
	"sync"
	"time"
)

// Sample is one point of a container's resource history: the rates
// between two readings and the gauges of the later one.
type Sample struct {
	// Time is when the later reading was taken, in Unix milliseconds.
	Time int64 `json:"t"`
	// CPUPercent is docker's CPU % (100 = one core busy).
	CPUPercent float64 `json:"cpu"`
	// MemoryUsage is the working set in bytes; MemoryLimit the limit (the
	// host's memory when unlimited); MemPercent their ratio in percent.
	MemoryUsage uint64  `json:"mem"`
	MemoryLimit uint64  `json:"mem_limit"`
	MemPercent  float64 `json:"mem_pct"`
	// NetRx/NetTx are bytes per second received and sent.
	NetRx float64 `json:"rx_bps"`
	NetTx float64 `json:"tx_bps"`
	// BlockRead/BlockWrite are bytes per second read and written.
	BlockRead  float64 `json:"blk_r_bps"`
	BlockWrite float64 `json:"blk_w_bps"`
	// PIDs is the number of processes.
	PIDs uint64 `json:"pids"`
}

// History keeps the last samples of each container in memory, a fixed
// number per container (a ring buffer), and the last reading each was
// computed from. It is safe for concurrent use.
type History struct {
	mu     sync.Mutex
	size   int
	series map[string]*ring
}

type ring struct {
	buf   []Sample
	start int // index of the oldest sample
	n     int
	last  Stats // the reading the newest sample came from
	seen  bool
}

// NewHistory returns a History keeping up to size samples per container
// (at least 1).
func NewHistory(size int) *History {
	if size < 1 {
		size = 1
	}
	return &History{size: size, series: map[string]*ring{}}
}

// Add records a reading of container s.ID. The first reading of a
// container only primes it (rates need two readings); each later one adds
// a sample, evicting the oldest when the buffer is full. A reading whose
// counters went backwards (the container restarted) starts the container
// over. It returns the sample added, if any.
func (h *History) Add(s Stats) (Sample, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	r := h.series[s.ID]
	if r == nil {
		r = &ring{buf: make([]Sample, 0, min(h.size, 64))}
		h.series[s.ID] = r
	}
	prev, seen := r.last, r.seen
	if seen && !s.Read.After(prev.Read) {
		// Older than (or as old as) the last reading: two rounds
		// finished out of order. It is dropped, not made the base of
		// the next sample.
		return Sample{}, false
	}
	r.last, r.seen = s, true
	if !seen || s.CPUUsage < prev.CPUUsage {
		return Sample{}, false
	}
	sec := s.Read.Sub(prev.Read).Seconds()
	smp := Sample{
		Time:        s.Read.UnixMilli(),
		CPUPercent:  CPUPercent(prev, s),
		MemoryUsage: s.MemoryUsage,
		MemoryLimit: s.MemoryLimit,
		MemPercent:  MemPercent(s),
		NetRx:       rate(prev.NetRx, s.NetRx, sec),
		NetTx:       rate(prev.NetTx, s.NetTx, sec),
		BlockRead:   rate(prev.BlockRead, s.BlockRead, sec),
		BlockWrite:  rate(prev.BlockWrite, s.BlockWrite, sec),
		PIDs:        s.PIDs,
	}
	r.push(smp, h.size)
	return smp, true
}

// rate is the per-second increase of a counter; a counter that went
// backwards (reset) counts as no increase.
func rate(prev, cur uint64, sec float64) float64 {
	if cur < prev || sec <= 0 {
		return 0
	}
	return float64(cur-prev) / sec
}

func (r *ring) push(s Sample, size int) {
	if r.n < size { // still filling: the buffer is exactly r.n long
		r.buf = append(r.buf, s)
		r.n++
		return
	}
	r.buf[r.start] = s
	r.start = (r.start + 1) % len(r.buf)
}

// Samples returns container id's samples taken after since (Unix ms; 0
// for all), oldest first.
func (h *History) Samples(id string, since int64) []Sample {
	h.mu.Lock()
	defer h.mu.Unlock()
	r := h.series[id]
	if r == nil {
		return []Sample{}
	}
	out := make([]Sample, 0, r.n)
	for i := 0; i < r.n; i++ {
		s := r.buf[(r.start+i)%len(r.buf)]
		if s.Time > since {
			out = append(out, s)
		}
	}
	return out
}

// Latest returns container id's newest sample and the reading it came
// from; ok is false before the container has a sample.
func (h *History) Latest(id string) (smp Sample, st Stats, ok bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	r := h.series[id]
	if r == nil || r.n == 0 {
		return Sample{}, Stats{}, false
	}
	return r.buf[(r.start+r.n-1)%len(r.buf)], r.last, true
}

// Retain forgets every container whose ID keep does not report true for.
func (h *History) Retain(keep func(id string) bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for id := range h.series {
		if !keep(id) {
			delete(h.series, id)
		}
	}
}

// Len is the number of samples held for container id.
func (h *History) Len(id string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	if r := h.series[id]; r != nil {
		return r.n
	}
	return 0
}

// sampleWindow is a convenience for callers sizing a History: the number
// of samples that cover d at one sample per interval.
func sampleWindow(d, interval time.Duration) int {
	if interval <= 0 {
		return 1
	}
	n := int(d / interval)
	if n < 1 {
		n = 1
	}
	return n
}
