package monitor

import (
	"testing"
	"time"
)

func mkReading(id string, sec int, cpuNs, sysNs, rx uint64) Stats {
	return Stats{
		ID: id, Read: time.Unix(1000+int64(sec), 0),
		CPUUsage: cpuNs, SystemUsage: sysNs, OnlineCPUs: 2,
		MemoryUsage: 50, MemoryLimit: 200, NetRx: rx,
	}
}

func TestHistoryRing(t *testing.T) {
	tests := []struct {
		name     string
		size     int
		readings int
		wantLen  int
	}{
		{"first reading only primes", 5, 1, 0},
		{"not full", 5, 4, 3},
		{"exactly full", 5, 6, 5},
		{"wrapped", 5, 13, 5},
		{"size one", 1, 4, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := NewHistory(tt.size)
			for i := 0; i < tt.readings; i++ {
				// Each second: 0.5 s of CPU out of 2 s of host CPU on 2 CPUs
				// = 50%, and 100 bytes received.
				h.Add(mkReading("a", i, uint64(i)*5e8, uint64(i)*2e9, uint64(i)*100))
			}
			got := h.Samples("a", 0)
			if len(got) != tt.wantLen || h.Len("a") != tt.wantLen {
				t.Fatalf("%d samples (Len %d), want %d", len(got), h.Len("a"), tt.wantLen)
			}
			for i, s := range got {
				// The newest samples are kept, oldest first.
				wantT := time.Unix(1000+int64(tt.readings-tt.wantLen+i), 0).UnixMilli()
				if s.Time != wantT {
					t.Errorf("sample %d at %d, want %d", i, s.Time, wantT)
				}
				if s.CPUPercent != 50 || s.NetRx != 100 || s.MemPercent != 25 {
					t.Errorf("sample %d = %+v, want 50%% CPU, 100 B/s, 25%% memory", i, s)
				}
			}
			if tt.wantLen > 0 {
				last, st, ok := h.Latest("a")
				if !ok || last.Time != got[len(got)-1].Time || st.Read.UnixMilli() != last.Time {
					t.Errorf("Latest = %+v, %v, %v", last, st.Read, ok)
				}
			} else if _, _, ok := h.Latest("a"); ok {
				t.Error("Latest before any sample")
			}
		})
	}
}

func TestHistorySinceRetainReset(t *testing.T) {
	h := NewHistory(10)
	for i := 0; i < 4; i++ {
		h.Add(mkReading("a", i, uint64(i)*1e9, uint64(i)*2e9, 0))
		h.Add(mkReading("b", i, 0, uint64(i)*2e9, 0))
	}
	since := time.Unix(1002, 0).UnixMilli()
	if got := h.Samples("a", since); len(got) != 1 || got[0].Time != time.Unix(1003, 0).UnixMilli() {
		t.Errorf("Samples since 1002 s = %+v, want the one at 1003 s", got)
	}
	if got := h.Samples("nosuch", 0); got == nil || len(got) != 0 {
		t.Errorf("unknown container: %#v, want empty non-nil", got)
	}
	// A restart: counters go back to zero. No sample with a negative
	// rate is added; the next reading resumes.
	if _, added := h.Add(mkReading("a", 4, 1e6, 8e9, 0)); added {
		t.Error("sample added across a counter reset")
	}
	if s, added := h.Add(mkReading("a", 5, 1e6+1e9, 10e9, 0)); !added || s.CPUPercent != 100 {
		t.Errorf("after reset: %+v %v, want 100%%", s, added)
	}
	h.Retain(func(id string) bool { return id == "b" })
	if h.Len("a") != 0 || h.Len("b") != 3 {
		t.Errorf("after Retain(b): a %d, b %d", h.Len("a"), h.Len("b"))
	}
}

// Two rounds of readings may finish out of order (a scrape's and the
// sampler's): an older reading is dropped, so the next sample is still
// measured from the newest one.
func TestHistoryOutOfOrderReading(t *testing.T) {
	h := NewHistory(10)
	h.Add(mkReading("a", 0, 0, 0, 0))
	h.Add(mkReading("a", 2, 2e9, 4e9, 0)) // 100% over 2 s
	if _, added := h.Add(mkReading("a", 1, 1e9, 2e9, 0)); added {
		t.Error("sample added from a reading older than the last")
	}
	s, added := h.Add(mkReading("a", 3, 2.5e9, 6e9, 0)) // 50% since 2 s
	if !added || s.CPUPercent != 50 {
		t.Errorf("sample after an out-of-order reading: %+v %v, want 50%% (measured from the 2 s reading)", s, added)
	}
	if _, st, _ := h.Latest("a"); st.Read != time.Unix(1003, 0) {
		t.Errorf("latest reading at %v, want the 3 s one", st.Read)
	}
}
