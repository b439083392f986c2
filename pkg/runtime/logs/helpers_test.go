package logs

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"
)

var base = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

// tickClock returns base, base+step, base+2*step, ... one per call.
func tickClock(step time.Duration) func() time.Time {
	var n atomic.Int64
	return func() time.Time { return base.Add(time.Duration(n.Add(1)-1) * step) }
}

func newWriter(t *testing.T, path string, o Options) *Writer {
	t.Helper()
	w, err := NewWriter(path, o)
	if err != nil {
		t.Fatalf("NewWriter: %v", err)
	}
	t.Cleanup(func() { w.Close() })
	return w
}

func write(t *testing.T, w interface{ Write([]byte) (int, error) }, s string) {
	t.Helper()
	n, err := w.Write([]byte(s))
	if err != nil || n != len(s) {
		t.Fatalf("Write(%q) = %d, %v", s, n, err)
	}
}

func readAll(t *testing.T, path string, o ReadOptions) []Entry {
	t.Helper()
	var got []Entry
	err := Read(context.Background(), path, o, func(e Entry) error {
		got = append(got, e)
		return nil
	})
	if err != nil {
		t.Fatalf("Read: %v", err)
	}
	return got
}

func lines(es []Entry) []string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = string(e.Line)
	}
	return out
}

// strictRecords parses every line of the files given, failing on anything
// that is not a complete record with exactly the keys log, stream, time.
func strictRecords(t *testing.T, files ...string) []record {
	t.Helper()
	var out []record
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if len(data) > 0 && data[len(data)-1] != '\n' {
			t.Fatalf("%s does not end in a newline", f)
		}
		sc := bufio.NewScanner(bytes.NewReader(data))
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			var r record
			dec := json.NewDecoder(bytes.NewReader(sc.Bytes()))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&r); err != nil || r.Log == "" || r.Stream == "" || r.Time.IsZero() {
				t.Fatalf("%s: bad record %q: %v", f, sc.Text(), err)
			}
			out = append(out, r)
		}
	}
	return out
}

func logPath(t *testing.T) string {
	return filepath.Join(t.TempDir(), "c", "container-json.log")
}
