package logs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

// numbered writes lines "<prefix><i>\n" for i in [from, to), alternating
// stdout and stderr when alternate is set.
func numbered(t *testing.T, w *Writer, from, to int, alternate bool) {
	t.Helper()
	for i := from; i < to; i++ {
		name := "stdout"
		if alternate && i%2 == 1 {
			name = "stderr"
		}
		write(t, w.Stream(name), fmt.Sprintf("line %04d\n", i))
	}
}

func want(from, to, step int) []string {
	var out []string
	for i := from; i < to; i += step {
		out = append(out, fmt.Sprintf("line %04d\n", i))
	}
	return out
}

func TestReadFilters(t *testing.T) {
	// One line per second from base: line i has time base+i s.
	path := logPath(t)
	w := newWriter(t, path, Options{MaxSize: 1000, MaxFiles: 100, Now: tickClock(time.Second)})
	numbered(t, w, 0, 100, true)
	w.Close()
	sec := func(i int) time.Time { return base.Add(time.Duration(i) * time.Second) }

	tests := []struct {
		name string
		opts ReadOptions
		want []string
	}{
		{"all", ReadOptions{Tail: -1}, want(0, 100, 1)},
		{"tail 0", ReadOptions{Tail: 0}, nil},
		{"tail 1", ReadOptions{Tail: 1}, want(99, 100, 1)},
		{"tail across files", ReadOptions{Tail: 37}, want(63, 100, 1)},
		{"tail more than all", ReadOptions{Tail: 1000}, want(0, 100, 1)},
		{"stdout", ReadOptions{Tail: -1, Stdout: true}, want(0, 100, 2)},
		{"stderr", ReadOptions{Tail: -1, Stderr: true}, want(1, 100, 2)},
		{"both flags", ReadOptions{Tail: -1, Stdout: true, Stderr: true}, want(0, 100, 1)},
		{"tail counts selected stream only", ReadOptions{Tail: 5, Stderr: true}, want(91, 100, 2)},
		{"since", ReadOptions{Tail: -1, Since: sec(90)}, want(90, 100, 1)},
		{"until", ReadOptions{Tail: -1, Until: sec(4)}, want(0, 5, 1)},
		{"since and until", ReadOptions{Tail: -1, Since: sec(10), Until: sec(20)}, want(10, 21, 1)},
		{"since between lines", ReadOptions{Tail: -1, Since: sec(97).Add(time.Millisecond)}, want(98, 100, 1)},
		{"tail with until", ReadOptions{Tail: 3, Until: sec(50)}, want(48, 51, 1)},
		{"tail with since", ReadOptions{Tail: 50, Since: sec(95)}, want(95, 100, 1)},
		{"nothing in range", ReadOptions{Tail: -1, Since: sec(200)}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := lines(readAll(t, path, tt.opts))
			if !slices.Equal(got, tt.want) {
				t.Errorf("got %q\nwant %q", got, tt.want)
			}
		})
	}
	if n := len(rotatedFiles(t, path)); n < 5 {
		t.Fatalf("test log has %d files; the tail cases need several", n)
	}
}

func TestReadEntryFields(t *testing.T) {
	path := logPath(t)
	w := newWriter(t, path, Options{Now: tickClock(time.Second)})
	write(t, w.Stream("stderr"), "boom\n")
	got := readAll(t, path, ReadOptions{Tail: -1})
	if len(got) != 1 || got[0].Stream != "stderr" || !got[0].Time.Equal(base) || string(got[0].Line) != "boom\n" {
		t.Errorf("entries = %+v", got)
	}
}

func TestTailCompressed(t *testing.T) {
	path := logPath(t)
	w := newWriter(t, path, Options{MaxSize: 700, MaxFiles: 100, Compress: true, Now: tickClock(time.Second)})
	numbered(t, w, 0, 200, false)
	w.Close()
	gz := 0
	for _, n := range rotatedFiles(t, path) {
		if strings.HasSuffix(n, ".gz") {
			gz++
		}
	}
	if gz < 5 {
		t.Fatalf("only %d compressed files", gz)
	}
	for _, n := range []int{1, 10, 25, 150, 200, 500} {
		got := lines(readAll(t, path, ReadOptions{Tail: n}))
		if w := want(max(0, 200-n), 200, 1); !slices.Equal(got, w) {
			t.Errorf("tail %d: got %d entries %q..., want %d", n, len(got), got[:min(3, len(got))], len(w))
		}
	}
	if got := lines(readAll(t, path, ReadOptions{Tail: -1})); !slices.Equal(got, want(0, 200, 1)) {
		t.Errorf("read all of compressed log: %d entries", len(got))
	}
}

func TestReadSkipsMalformedLines(t *testing.T) {
	good := func(s string) string {
		return `{"log":"` + s + `\n","stream":"stdout","time":"2024-01-01T00:00:00Z"}` + "\n"
	}
	content := good("one") +
		"not json at all\n" +
		`{"log":"torn by a cra` + "\n" +
		"\n" +
		`{"stream":"stdout","time":"2024-01-01T00:00:00Z"}` + "\n" +
		good("two") +
		`{"log":"partial last line","stream":"std`
	path := logPath(t)
	if err := os.MkdirAll(strings.TrimSuffix(path, "/container-json.log"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tail := range []int{-1, 2, 10} {
		got := lines(readAll(t, path, ReadOptions{Tail: tail}))
		if !slices.Equal(got, []string{"one\n", "two\n"}) {
			t.Errorf("tail %d: got %q, want one, two", tail, got)
		}
	}
}

func TestReadMissingLog(t *testing.T) {
	if got := readAll(t, logPath(t), ReadOptions{Tail: -1}); len(got) != 0 {
		t.Errorf("got %v from a missing log", got)
	}
}

func TestReadStopsOnCallbackError(t *testing.T) {
	path := logPath(t)
	w := newWriter(t, path, Options{})
	numbered(t, w, 0, 10, false)
	stop := errors.New("enough")
	n := 0
	err := Read(context.Background(), path, ReadOptions{Tail: -1}, func(Entry) error {
		n++
		if n == 3 {
			return stop
		}
		return nil
	})
	if err != stop || n != 3 {
		t.Errorf("Read = %v after %d entries, want the callback's error after 3", err, n)
	}
}

// follower runs Read with Follow in the background.
type follower struct {
	entries chan Entry
	done    chan error
	cancel  context.CancelFunc
}

func follow(path string, o ReadOptions) *follower {
	ctx, cancel := context.WithCancel(context.Background())
	f := &follower{entries: make(chan Entry, 10000), done: make(chan error, 1), cancel: cancel}
	o.Follow = true
	go func() {
		f.done <- Read(ctx, path, o, func(e Entry) error {
			f.entries <- e
			return nil
		})
	}()
	return f
}

// expect waits for the next entries to be exactly lines.
func (f *follower) expect(t *testing.T, lines []string) {
	t.Helper()
	for i, l := range lines {
		select {
		case e := <-f.entries:
			if string(e.Line) != l {
				t.Fatalf("entry %d = %q, want %q", i, e.Line, l)
			}
		case err := <-f.done:
			f.done <- err // for expectEnd
			select {
			case e := <-f.entries: // delivered before Read returned
				if string(e.Line) != l {
					t.Fatalf("entry %d = %q, want %q", i, e.Line, l)
				}
			default:
				t.Fatalf("Read returned %v while waiting for %q", err, l)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("timed out waiting for %q", l)
		}
	}
}

func (f *follower) expectEnd(t *testing.T, wantErr error) {
	t.Helper()
	select {
	case err := <-f.done:
		if !errors.Is(err, wantErr) && err != wantErr {
			t.Fatalf("Read = %v, want %v", err, wantErr)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Read did not return")
	}
	if len(f.entries) > 0 {
		t.Fatalf("unexpected extra entry %q", (<-f.entries).Line)
	}
}

func TestFollow(t *testing.T) {
	for _, compress := range []bool{false, true} {
		t.Run(fmt.Sprintf("compress=%v", compress), func(t *testing.T) {
			path := logPath(t)
			w := newWriter(t, path, Options{MaxSize: 600, MaxFiles: 3, Compress: compress})
			numbered(t, w, 0, 3, false)
			done := make(chan struct{})
			f := follow(path, ReadOptions{Tail: -1, Done: done})
			defer f.cancel()
			f.expect(t, want(0, 3, 1))

			numbered(t, w, 3, 5, false) // appended later
			f.expect(t, want(3, 5, 1))

			// Several rotations, each seen by the follower.
			for round := 0; round < 3; round++ {
				from := 5 + round*10
				before := len(rotatedFiles(t, path))
				numbered(t, w, from, from+10, false)
				f.expect(t, want(from, from+10, 1))
				if round == 0 && before == len(rotatedFiles(t, path)) && before < 3 {
					t.Fatalf("writing 10 lines did not rotate (%d files)", before)
				}
				time.Sleep(2 * pollInterval)
			}

			// Lines written, and a partial line flushed, just before the
			// container exits are delivered before Read returns.
			numbered(t, w, 35, 40, false)
			write(t, w.Stream("stdout"), "no newline")
			w.Flush()
			close(done)
			f.expect(t, append(want(35, 40, 1), "no newline"))
			f.expectEnd(t, nil)
		})
	}
}

func TestFollowManyRotationsBetweenPolls(t *testing.T) {
	for _, compress := range []bool{false, true} {
		t.Run(fmt.Sprintf("compress=%v", compress), func(t *testing.T) {
			path := logPath(t)
			w := newWriter(t, path, Options{MaxSize: 500, MaxFiles: 1000, Compress: compress})
			done := make(chan struct{})
			f := follow(path, ReadOptions{Tail: -1, Done: done})
			defer f.cancel()
			numbered(t, w, 0, 1, false)
			f.expect(t, want(0, 1, 1))
			// Far more than one rotation per poll interval.
			numbered(t, w, 1, 300, false)
			w.Close() // waits for compression
			close(done)
			f.expect(t, want(1, 300, 1))
			f.expectEnd(t, nil)
		})
	}
}

func TestFollowTailZeroAndCancel(t *testing.T) {
	path := logPath(t)
	w := newWriter(t, path, Options{})
	numbered(t, w, 0, 5, false)
	write(t, w.Stream("stdout"), "half a ") // not yet terminated
	f := follow(path, ReadOptions{Tail: 0})
	time.Sleep(2 * pollInterval)
	write(t, w.Stream("stdout"), "line\n")
	numbered(t, w, 5, 7, false)
	f.expect(t, append([]string{"half a line\n"}, want(5, 7, 1)...))
	f.cancel()
	f.expectEnd(t, context.Canceled)
}

func TestFollowTailThenNew(t *testing.T) {
	path := logPath(t)
	w := newWriter(t, path, Options{MaxSize: 400, MaxFiles: 50})
	numbered(t, w, 0, 30, false)
	done := make(chan struct{})
	f := follow(path, ReadOptions{Tail: 4, Done: done})
	defer f.cancel()
	f.expect(t, want(26, 30, 1))
	numbered(t, w, 30, 40, false)
	f.expect(t, want(30, 40, 1))
	close(done)
	f.expectEnd(t, nil)
}

func TestFollowDoneAlreadyClosed(t *testing.T) {
	path := logPath(t)
	w := newWriter(t, path, Options{})
	numbered(t, w, 0, 3, false)
	w.Close()
	done := make(chan struct{})
	close(done)
	start := time.Now()
	f := follow(path, ReadOptions{Tail: -1, Done: done})
	f.expect(t, want(0, 3, 1))
	f.expectEnd(t, nil)
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Read took %v after Done was closed", d)
	}
}

func TestFollowLogNotYetCreated(t *testing.T) {
	path := logPath(t)
	done := make(chan struct{})
	f := follow(path, ReadOptions{Tail: -1, Done: done})
	defer f.cancel()
	time.Sleep(2 * pollInterval)
	w := newWriter(t, path, Options{})
	numbered(t, w, 0, 3, false)
	f.expect(t, want(0, 3, 1))
	close(done)
	f.expectEnd(t, nil)
}

func TestFollowStopsAfterUntil(t *testing.T) {
	path := logPath(t)
	w := newWriter(t, path, Options{})
	numbered(t, w, 0, 2, false)
	f := follow(path, ReadOptions{Tail: -1, Until: time.Now().Add(300 * time.Millisecond)})
	defer f.cancel()
	f.expect(t, want(0, 2, 1))
	f.expectEnd(t, nil)
}

func TestFormat(t *testing.T) {
	e := Entry{Stream: "stdout", Time: time.Date(2024, 1, 1, 0, 0, 0, 1000, time.UTC), Line: []byte("hi\n")}
	tests := []struct {
		e          Entry
		timestamps bool
		want       string
	}{
		{e, false, "hi\n"},
		{e, true, "2024-01-01T00:00:00.000001000Z hi\n"},
		{Entry{Time: base, Line: []byte("chunk")}, true, "2024-01-01T00:00:00.000000000Z chunk"},
	}
	for _, tt := range tests {
		var b bytes.Buffer
		if err := Format(&b, tt.e, tt.timestamps); err != nil {
			t.Fatal(err)
		}
		if b.String() != tt.want {
			t.Errorf("Format(%q, %v) = %q, want %q", tt.e.Line, tt.timestamps, b.String(), tt.want)
		}
	}
}
