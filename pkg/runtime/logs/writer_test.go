package logs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestRecordFormat(t *testing.T) {
	at := time.Date(2024, 1, 1, 0, 0, 0, 1, time.UTC)
	tests := []struct {
		name   string
		stream string
		now    time.Time
		input  string
		want   string
	}{
		{"plain", "stdout", at, "hello\n",
			`{"log":"hello\n","stream":"stdout","time":"2024-01-01T00:00:00.000000001Z"}` + "\n"},
		{"stderr", "stderr", at, "oops\n",
			`{"log":"oops\n","stream":"stderr","time":"2024-01-01T00:00:00.000000001Z"}` + "\n"},
		{"empty line", "stdout", at, "\n",
			`{"log":"\n","stream":"stdout","time":"2024-01-01T00:00:00.000000001Z"}` + "\n"},
		{"escapes", "stdout", at, "a\"b\\c\td\r<>&\x01\x1f\n",
			`{"log":"a\"b\\c\u0009d\r\u003c\u003e\u0026\u0001\u001f\n","stream":"stdout","time":"2024-01-01T00:00:00.000000001Z"}` + "\n"},
		{"unicode", "stdout", at, "héllo ✓ \u2028\u2029 \xff\xfe end\n",
			`{"log":"héllo ✓ \u2028\u2029 \ufffd\ufffd end\n","stream":"stdout","time":"2024-01-01T00:00:00.000000001Z"}` + "\n"},
		{"local time becomes UTC, zeros trimmed", "stdout",
			time.Date(2024, 1, 1, 2, 0, 0, 500000000, time.FixedZone("CEST", 2*3600)), "x\n",
			`{"log":"x\n","stream":"stdout","time":"2024-01-01T00:00:00.5Z"}` + "\n"},
		{"whole second", "stdout", base, "x\n",
			`{"log":"x\n","stream":"stdout","time":"2024-01-01T00:00:00Z"}` + "\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := logPath(t)
			w := newWriter(t, path, Options{Now: func() time.Time { return tt.now }})
			write(t, w.Stream(tt.stream), tt.input)
			got, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Errorf("file =\n%s\nwant\n%s", got, tt.want)
			}
		})
	}
}

func TestLineSplitting(t *testing.T) {
	x := func(n int) string { return strings.Repeat("x", n) }
	tests := []struct {
		name   string
		writes []string
		want   []string // "log" values, in order
	}{
		{"fragments", []string{"hel", "lo\nwor", "ld\n"}, []string{"hello\n", "world\n"}},
		{"several lines in one write", []string{"a\nb\n\nc\n"}, []string{"a\n", "b\n", "\n", "c\n"}},
		{"unterminated line is held", []string{"a\nbc"}, []string{"a\n"}},
		{"line that just fits", []string{x(maxChunk-1) + "\n"}, []string{x(maxChunk-1) + "\n"}},
		{"16 KiB line: chunk then bare newline", []string{x(maxChunk) + "\n"}, []string{x(maxChunk), "\n"}},
		{"long line chunked", []string{x(40000) + "\nnext\n"}, []string{x(maxChunk), x(maxChunk), x(40000-2*maxChunk) + "\n", "next\n"}},
		{"chunking across writes", []string{x(10000), x(10000) + "\n"}, []string{x(maxChunk), x(20000-maxChunk) + "\n"}},
		{"long line without newline", []string{x(2*maxChunk + 5)}, []string{x(maxChunk), x(maxChunk)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := logPath(t)
			w := newWriter(t, path, Options{Now: tickClock(time.Second)})
			for _, s := range tt.writes {
				write(t, w.Stream("stdout"), s)
			}
			recs := strictRecords(t, path)
			var got []string
			for _, r := range recs {
				got = append(got, r.Log)
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("logs = %.200q\nwant %.200q", got, tt.want)
			}
		})
	}
}

func TestChunksShareFirstTimestamp(t *testing.T) {
	path := logPath(t)
	w := newWriter(t, path, Options{Now: tickClock(time.Second)})
	write(t, w.Stream("stdout"), strings.Repeat("y", 3*maxChunk+1)+"\nz\n")
	recs := strictRecords(t, path)
	if len(recs) != 5 {
		t.Fatalf("got %d records, want 5", len(recs))
	}
	for i := 1; i < 4; i++ {
		if !recs[i].Time.Equal(recs[0].Time) {
			t.Errorf("chunk %d time %v, want first chunk's %v", i, recs[i].Time, recs[0].Time)
		}
	}
	if !recs[4].Time.After(recs[0].Time) {
		t.Errorf("next line time %v not after the chunked line's %v", recs[4].Time, recs[0].Time)
	}
}

func TestFlushAndClose(t *testing.T) {
	path := logPath(t)
	w, err := NewWriter(path, Options{Now: tickClock(time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	out, errw := w.Stream("stdout"), w.Stream("stderr")
	write(t, out, "abc")
	write(t, errw, "err-partial")
	if recs := strictRecords(t, path); len(recs) != 0 {
		t.Fatalf("partial line written before Flush: %v", recs)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	write(t, out, "def\n")
	write(t, errw, "tail")
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := out.Write([]byte("late\n")); !errors.Is(err, os.ErrClosed) {
		t.Errorf("Write after Close = %v, want os.ErrClosed", err)
	}
	got := map[string][]string{}
	for _, r := range strictRecords(t, path) {
		got[r.Stream] = append(got[r.Stream], r.Log)
	}
	want := map[string][]string{"stdout": {"abc", "def\n"}, "stderr": {"err-partial", "tail"}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("records = %q, want %q", got, want)
	}
}

// rotatedFiles lists the log's files, oldest first.
func rotatedFiles(t *testing.T, path string) []string {
	t.Helper()
	ents, err := os.ReadDir(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	return names
}

func TestRotation(t *testing.T) {
	const lineCount = 2000
	tests := []struct {
		maxFiles int
		compress bool
	}{
		{1, false}, {2, false}, {3, false}, {3, true}, {2, true}, {1000, false}, {1000, true},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("files=%d,compress=%v", tt.maxFiles, tt.compress), func(t *testing.T) {
			path := logPath(t)
			const maxSize = 2000
			w := newWriter(t, path, Options{MaxSize: maxSize, MaxFiles: tt.maxFiles, Compress: tt.compress, Now: tickClock(time.Millisecond)})
			out := w.Stream("stdout")
			for i := 0; i < lineCount; {
				var b strings.Builder
				for k := 0; k < 1+i%3 && i < lineCount; k++ {
					fmt.Fprintf(&b, "line %05d\n", i)
					i++
				}
				write(t, out, b.String())
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}

			names := rotatedFiles(t, path)
			base := filepath.Base(path)
			if len(names) > tt.maxFiles {
				t.Errorf("%d files, want at most %d: %v", len(names), tt.maxFiles, names)
			}
			for _, n := range names {
				if strings.HasSuffix(n, ".tmp") {
					t.Errorf("leftover temporary file %s", n)
				}
				if n != base && tt.compress != strings.HasSuffix(n, ".gz") {
					t.Errorf("rotated file %s: compressed=%v, want %v", n, !tt.compress, tt.compress)
				}
				if fi, err := os.Stat(filepath.Join(filepath.Dir(path), n)); err == nil && !strings.HasSuffix(n, ".gz") && fi.Size() > maxSize {
					t.Errorf("%s is %d bytes, over max size %d", n, fi.Size(), maxSize)
				}
			}

			got := readAll(t, path, ReadOptions{Tail: -1})
			if len(got) == 0 {
				t.Fatal("no entries read")
			}
			first := lineCount - len(got)
			for i, e := range got {
				if want := fmt.Sprintf("line %05d\n", first+i); string(e.Line) != want {
					t.Fatalf("entry %d = %q, want %q (lost or duplicated line)", i, e.Line, want)
				}
			}
			if tt.maxFiles >= 1000 && first != 0 {
				t.Errorf("first entry is line %d, want 0: nothing should have been dropped", first)
			}
			// Every kept file is close to full: rotation keeps roughly
			// maxFiles*maxSize bytes.
			if tt.maxFiles < 1000 && len(got)*30 < (tt.maxFiles-1)*maxSize/2 {
				t.Errorf("only %d entries kept with %d files of %d bytes", len(got), tt.maxFiles, maxSize)
			}
		})
	}
}

func TestReopenAppendsAndRepairsTornRecord(t *testing.T) {
	path := logPath(t)
	w := newWriter(t, path, Options{Now: tickClock(time.Second)})
	write(t, w.Stream("stdout"), "one\n")
	w.Close()
	// A crash mid-write leaves a torn record.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(`{"log":"tor`)
	f.Close()

	w2 := newWriter(t, path, Options{Now: tickClock(time.Second)})
	write(t, w2.Stream("stdout"), "two\n")
	w2.Close()
	if got := lines(readAll(t, path, ReadOptions{Tail: -1})); fmt.Sprint(got) != fmt.Sprint([]string{"one\n", "two\n"}) {
		t.Errorf("entries = %q, want one, two", got)
	}
}

func TestWriteErrorsAreCountedNotFatal(t *testing.T) {
	if _, err := os.Stat("/dev/full"); err != nil {
		t.Skip("no /dev/full")
	}
	var mu sync.Mutex
	var reported []error
	w, err := NewWriter("/dev/full", Options{MaxSize: NoRotation, OnError: func(err error) {
		mu.Lock()
		reported = append(reported, err)
		mu.Unlock()
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	for i := 0; i < 10; i++ {
		write(t, w.Stream("stdout"), "hello\n") // must not fail
	}
	if w.Dropped() < 10*int64(len(`{"log":"hello\n","stream":"stdout","time":"2024-01-01T00:00:00Z"}`)) {
		t.Errorf("Dropped() = %d, want every record counted", w.Dropped())
	}
	mu.Lock()
	defer mu.Unlock()
	if len(reported) != 1 {
		t.Fatalf("OnError called %d times, want once for the run of failures: %v", len(reported), reported)
	}
	if !strings.Contains(reported[0].Error(), "no space left") {
		t.Errorf("reported error %q does not name the cause", reported[0])
	}
}

func TestConcurrentStreams(t *testing.T) {
	const perStream = 3000
	path := logPath(t)
	w := newWriter(t, path, Options{MaxSize: 8 << 10, MaxFiles: 10000})
	var wg sync.WaitGroup
	for _, name := range []string{"stdout", "stderr"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := w.Stream(name)
			var pending string
			for i := 0; i < perStream; i++ {
				pending += fmt.Sprintf("%s %d %s\n", name, i, strings.Repeat("p", i%50))
				// Cut writes at arbitrary points, splitting lines.
				if cut := (i * 7) % len(pending); i%3 == 0 && cut > 0 {
					s.Write([]byte(pending[:cut]))
					pending = pending[cut:]
				}
			}
			s.Write([]byte(pending))
		}()
	}
	wg.Wait()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	var files []string
	for _, n := range rotatedFiles(t, path) {
		files = append([]string{filepath.Join(filepath.Dir(path), n)}, files...)
	}
	// Sort oldest first: container-json.log.N descending, then the live file.
	sort.Slice(files, func(i, j int) bool { return rotIndex(files[i]) > rotIndex(files[j]) })
	if len(files) < 3 {
		t.Fatalf("expected rotation, got files %v", files)
	}
	next := map[string]int{}
	for _, r := range strictRecords(t, files...) {
		want := fmt.Sprintf("%s %d %s\n", r.Stream, next[r.Stream], strings.Repeat("p", next[r.Stream]%50))
		if r.Log != want {
			t.Fatalf("%s record %q, want %q", r.Stream, r.Log, want)
		}
		next[r.Stream]++
	}
	if next["stdout"] != perStream || next["stderr"] != perStream {
		t.Errorf("records per stream = %v, want %d each", next, perStream)
	}
}

func rotIndex(name string) int {
	var n int
	if i := strings.LastIndexByte(name, '.'); i >= 0 {
		fmt.Sscanf(name[i+1:], "%d", &n)
	}
	return n
}

func TestNewWriterRejectsBadOptions(t *testing.T) {
	for _, o := range []Options{{MaxSize: -2}, {MaxFiles: -1}} {
		if _, err := NewWriter(logPath(t), o); err == nil {
			t.Errorf("NewWriter(%+v) succeeded, want error", o)
		}
	}
}

func BenchmarkWriter(b *testing.B) {
	w, err := NewWriter(filepath.Join(b.TempDir(), "bench.log"), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer w.Close()
	line := []byte(strings.Repeat("0123456789", 10) + "\n")
	s := w.Stream("stdout")
	b.SetBytes(int64(len(line)))
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		s.Write(line)
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "lines/s")
}
