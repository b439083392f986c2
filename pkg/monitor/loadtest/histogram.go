package loadtest

import (
	"math"
	"math/bits"
	"sync/atomic"
	"time"
)

// The histogram is log-linear: values below 2^(subBits+1) ns have a
// bucket each; above, every power-of-two range is cut into 2^subBits
// equal buckets, so a bucket is never wider than 1/2^subBits of its lower
// bound and its midpoint is within 1/2^(subBits+1) (0.4%) of any value
// in it.
const (
	subBits  = 7
	subCount = 1 << subBits
	// maxBits bounds the values kept: 2^maxBits ns is about 2.4 hours;
	// longer values count as that.
	maxBits    = 43
	numBuckets = (maxBits-subBits)*subCount + subCount
	maxValue   = int64(1)<<maxBits - 1
)

// Histogram counts durations in fixed memory (about 37 KB). Its methods
// are safe for concurrent use: Record only does atomic adds.
type Histogram struct {
	counts [numBuckets]atomic.Uint64
	total  atomic.Uint64
	sum    atomic.Int64 // ns; overflows only after ~292 years of latency
	min    atomic.Int64 // ns, math.MaxInt64 when empty
	max    atomic.Int64 // ns
}

// NewHistogram returns an empty histogram.
func NewHistogram() *Histogram {
	h := &Histogram{}
	h.min.Store(math.MaxInt64)
	return h
}

// bucketOf is the index of the bucket holding v ns (0 <= v <= maxValue).
func bucketOf(v int64) int {
	if v < 2*subCount {
		return int(v)
	}
	shift := bits.Len64(uint64(v)) - 1 - subBits
	return shift*subCount + int(v>>shift)
}

// bucketRange is the lowest value of bucket i and the bucket's width.
func bucketRange(i int) (low, width int64) {
	if i < 2*subCount {
		return int64(i), 1
	}
	shift := i/subCount - 1
	top := int64(i - shift*subCount)
	return top << shift, 1 << shift
}

// Record adds one duration. Negative durations count as zero.
func (h *Histogram) Record(d time.Duration) {
	v := int64(d)
	if v < 0 {
		v = 0
	}
	if v > maxValue {
		v = maxValue
	}
	h.counts[bucketOf(v)].Add(1)
	h.total.Add(1)
	h.sum.Add(v)
	for cur := h.min.Load(); v < cur && !h.min.CompareAndSwap(cur, v); cur = h.min.Load() {
	}
	for cur := h.max.Load(); v > cur && !h.max.CompareAndSwap(cur, v); cur = h.max.Load() {
	}
}

// Count is the number of durations recorded.
func (h *Histogram) Count() uint64 { return h.total.Load() }

// Min is the smallest duration recorded (0 when empty).
func (h *Histogram) Min() time.Duration {
	if h.Count() == 0 {
		return 0
	}
	return time.Duration(h.min.Load())
}

// Max is the largest duration recorded (0 when empty).
func (h *Histogram) Max() time.Duration { return time.Duration(h.max.Load()) }

// Mean is the exact mean of the durations recorded (0 when empty).
func (h *Histogram) Mean() time.Duration {
	n := h.Count()
	if n == 0 {
		return 0
	}
	return time.Duration(h.sum.Load() / int64(n))
}

// Quantile returns the duration below or at which a fraction q (0..1) of
// the recorded durations lie: the midpoint of the bucket holding the
// ceil(q*count)-th smallest value, kept within [Min, Max]. It is 0 when
// the histogram is empty.
func (h *Histogram) Quantile(q float64) time.Duration {
	n := h.Count()
	if n == 0 {
		return 0
	}
	q = max(0, min(1, q))
	rank := uint64(math.Ceil(q * float64(n)))
	rank = max(1, min(rank, n))
	var seen uint64
	for i := range h.counts {
		seen += h.counts[i].Load()
		if seen >= rank {
			low, width := bucketRange(i)
			v := low + (width-1)/2
			return max(h.Min(), min(h.Max(), time.Duration(v)))
		}
	}
	return h.Max()
}

// Bin is one row of a coarse latency distribution: Count durations
// above the previous bin's UpTo and at most UpTo.
type Bin struct {
	UpTo  time.Duration
	Count uint64
}

// Bins spreads the recorded durations over at most n bins with
// logarithmically spaced bounds from Min to Max, for a text histogram.
// Each bucket counts in the bin its midpoint falls into.
func (h *Histogram) Bins(n int) []Bin {
	total := h.Count()
	if total == 0 || n < 1 {
		return nil
	}
	lo, hi := float64(h.Min()), float64(h.Max())
	if hi <= lo || n == 1 {
		return []Bin{{UpTo: h.Max(), Count: total}}
	}
	lo = max(lo, 1)
	bins := make([]Bin, n)
	ratio := math.Pow(hi/lo, 1/float64(n))
	for i := range bins {
		bins[i].UpTo = time.Duration(lo * math.Pow(ratio, float64(i+1)))
	}
	bins[n-1].UpTo = h.Max()
	for i := range h.counts {
		c := h.counts[i].Load()
		if c == 0 {
			continue
		}
		low, width := bucketRange(i)
		mid := time.Duration(low + (width-1)/2)
		j := 0
		for j < n-1 && mid > bins[j].UpTo {
			j++
		}
		bins[j].Count += c
	}
	return bins
}

// merge adds o's durations to h. o must not change meanwhile.
func (h *Histogram) merge(o *Histogram) {
	n := o.Count()
	if n == 0 {
		return
	}
	for i := range o.counts {
		if c := o.counts[i].Load(); c > 0 {
			h.counts[i].Add(c)
		}
	}
	h.total.Add(n)
	h.sum.Add(o.sum.Load())
	v := o.min.Load()
	for cur := h.min.Load(); v < cur && !h.min.CompareAndSwap(cur, v); cur = h.min.Load() {
	}
	v = o.max.Load()
	for cur := h.max.Load(); v > cur && !h.max.CompareAndSwap(cur, v); cur = h.max.Load() {
	}
}
