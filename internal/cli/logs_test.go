package cli

import (
	"testing"
	"time"
)

func TestParseLogTime(t *testing.T) {
	now := time.Date(2026, 1, 2, 15, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		in   string
		want time.Time
	}{
		{"", time.Time{}},
		{"10m", now.Add(-10 * time.Minute)},
		{"1h30m", now.Add(-90 * time.Minute)},
		{"2026-01-02T14:00:00Z", time.Date(2026, 1, 2, 14, 0, 0, 0, time.UTC)},
		{"2026-01-02T14:00:00.5+01:00", time.Date(2026, 1, 2, 13, 0, 0, 5e8, time.UTC)},
		{"1700000000", time.Unix(1700000000, 0)},
		{"1700000000.25", time.Unix(1700000000, 25e7)},
	} {
		got, err := parseLogTime(tc.in, now)
		if err != nil || !got.Equal(tc.want) {
			t.Errorf("parseLogTime(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
	if got, err := parseLogTime("2026-01-02", now); err != nil || got.Year() != 2026 || got.Day() != 2 {
		t.Errorf("parseLogTime(date) = %v, %v", got, err)
	}
	for _, bad := range []string{"yesterday", "10x", "2026-13-01", "1.x"} {
		if _, err := parseLogTime(bad, now); err == nil {
			t.Errorf("parseLogTime(%q) accepted", bad)
		}
	}
}

func TestLogsReadOptions(t *testing.T) {
	now := time.Now()
	for _, tc := range []struct {
		f    logsFlags
		tail int
	}{
		{logsFlags{tail: "all"}, -1},
		{logsFlags{tail: ""}, -1},
		{logsFlags{tail: "0"}, 0},
		{logsFlags{tail: "5"}, 5},
		{logsFlags{tail: "-1"}, -1},
	} {
		o, err := tc.f.readOptions(now)
		if err != nil || o.Tail != tc.tail {
			t.Errorf("tail %q: %+v, %v; want %d", tc.f.tail, o, err, tc.tail)
		}
	}
	o, err := logsFlags{tail: "all", follow: true, since: "1m", until: "1s"}.readOptions(now)
	if err != nil || !o.Follow || !o.Since.Equal(now.Add(-time.Minute)) || !o.Until.Equal(now.Add(-time.Second)) {
		t.Errorf("readOptions = %+v, %v", o, err)
	}
	if _, err := (logsFlags{tail: "many"}).readOptions(now); err == nil {
		t.Error("--tail many accepted")
	}
}
