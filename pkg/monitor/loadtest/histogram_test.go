package loadtest

import (
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"
)

func TestBucketsCoverValues(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	check := func(v int64) {
		i := bucketOf(v)
		if i < 0 || i >= numBuckets {
			t.Fatalf("bucketOf(%d) = %d, outside 0..%d", v, i, numBuckets-1)
		}
		low, width := bucketRange(i)
		if v < low || v >= low+width {
			t.Fatalf("value %d in bucket %d = [%d, %d)", v, i, low, low+width)
		}
		if low >= 2*subCount && float64(width)/float64(low) > 1.0/subCount {
			t.Fatalf("bucket %d too wide: %d at %d", i, width, low)
		}
	}
	for v := int64(0); v < 5000; v++ {
		check(v)
	}
	for range 100000 {
		check(rng.Int64N(maxValue + 1))
	}
	check(maxValue)
	// Consecutive buckets are adjacent.
	for i := 1; i < numBuckets; i++ {
		pl, pw := bucketRange(i - 1)
		if l, _ := bucketRange(i); l != pl+pw {
			t.Fatalf("gap between bucket %d and %d", i-1, i)
		}
	}
}

func TestHistogramQuantiles(t *testing.T) {
	const n = 20000
	rng := rand.New(rand.NewPCG(3, 4))
	tests := []struct {
		name string
		gen  func(i int) time.Duration
	}{
		{"constant 50ms", func(int) time.Duration { return 50 * time.Millisecond }},
		{"uniform 1..1000ms", func(i int) time.Duration { return time.Duration(i%1000+1) * time.Millisecond }},
		{"exponential mean 20ms", func(int) time.Duration {
			return time.Duration(rng.ExpFloat64() * float64(20*time.Millisecond))
		}},
		{"bimodal 1ms/100ms", func(i int) time.Duration {
			if i%10 == 0 {
				return 100 * time.Millisecond
			}
			return time.Millisecond
		}},
		{"log-normal around 5ms", func(int) time.Duration {
			return time.Duration(math.Exp(rng.NormFloat64()) * float64(5*time.Millisecond))
		}},
		{"small exact values", func(i int) time.Duration { return time.Duration(i % 200) }},
		{"seconds", func(i int) time.Duration { return time.Duration(i%30+1) * time.Second }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := NewHistogram()
			vals := make([]time.Duration, n)
			var sum time.Duration
			for i := range vals {
				vals[i] = tc.gen(i)
				sum += vals[i]
				h.Record(vals[i])
			}
			slices.Sort(vals)
			if h.Count() != n || h.Min() != vals[0] || h.Max() != vals[n-1] {
				t.Fatalf("count/min/max = %d %v %v, want %d %v %v", h.Count(), h.Min(), h.Max(), n, vals[0], vals[n-1])
			}
			if want := sum / n; h.Mean() != want {
				t.Errorf("mean = %v, want %v", h.Mean(), want)
			}
			for _, q := range []float64{0, 0.01, 0.25, 0.5, 0.75, 0.9, 0.99, 0.999, 1} {
				rank := max(1, int(math.Ceil(q*n)))
				want := vals[rank-1]
				got := h.Quantile(q)
				if diff := math.Abs(float64(got - want)); diff > float64(want)/256+1 {
					t.Errorf("q%g = %v, want %v (±0.4%%)", q, got, want)
				}
			}
			var binned uint64
			for _, b := range h.Bins(12) {
				binned += b.Count
			}
			if binned != n {
				t.Errorf("bins hold %d values, want %d", binned, n)
			}
		})
	}
}

func TestHistogramEdges(t *testing.T) {
	h := NewHistogram()
	if h.Quantile(0.5) != 0 || h.Mean() != 0 || h.Min() != 0 || h.Max() != 0 || h.Bins(10) != nil {
		t.Error("empty histogram should report zeros")
	}
	h.Record(-time.Second)
	h.Record(100 * 24 * time.Hour)
	if h.Min() != 0 || h.Max() != time.Duration(maxValue) {
		t.Errorf("clamping: min %v max %v", h.Min(), h.Max())
	}
}

func TestHistogramConcurrent(t *testing.T) {
	h := NewHistogram()
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 1000 {
				h.Record(time.Duration(g*1000+i) * time.Microsecond)
			}
		})
	}
	wg.Wait()
	if h.Count() != 8000 || h.Min() != 0 || h.Max() != 7999*time.Microsecond {
		t.Errorf("count %d min %v max %v", h.Count(), h.Min(), h.Max())
	}
	if got := h.Quantile(0.5); math.Abs(float64(got-4000*time.Microsecond)) > float64(20*time.Microsecond) {
		t.Errorf("median %v, want about 4ms", got)
	}
}
