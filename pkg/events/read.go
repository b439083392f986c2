package events

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// Read returns the journal's events under the data directory root that f
// selects, oldest first. A zero f.Since reads from the oldest event kept,
// a zero f.Until up to the newest. Lines that do not parse are skipped.
func Read(ctx context.Context, root string, f Filter) ([]Event, error) {
	dir := Dir(root)
	lf, err := openLock(dir, false)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read events: %w", err)
	}
	defer lf.Close()
	if err := flock(lf, unix.LOCK_SH); err != nil {
		return nil, fmt.Errorf("read events: %w", err)
	}
	var out []Event
	for _, name := range []string{oldFile, currentFile} {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		data, err := os.ReadFile(filepath.Join(dir, name))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read events: %w", err)
		}
		// A last line without its newline is a write in progress (or torn).
		scanLines(data, func(e Event) error {
			if f.Match(e) {
				out = append(out, e)
			}
			return nil
		})
	}
	return out, nil
}

// scanLines calls fn for each complete, parsable line of data and returns
// the number of bytes consumed (up to the last newline) and fn's first
// error.
func scanLines(data []byte, fn func(Event) error) (int, error) {
	consumed := 0
	for {
		i := bytes.IndexByte(data[consumed:], '\n')
		if i < 0 {
			return consumed, nil
		}
		line := data[consumed : consumed+i]
		consumed += i + 1
		e, ok := parseLine(line)
		if !ok {
			continue
		}
		if err := fn(e); err != nil {
			return consumed, err
		}
	}
}

// parseLine decodes one journal line; ok is false for a corrupt one.
func parseLine(line []byte) (Event, bool) {
	line = bytes.TrimSpace(line)
	if len(line) == 0 || line[0] != '{' {
		return Event{}, false
	}
	var e Event
	if err := json.Unmarshal(line, &e); err != nil {
		return Event{}, false
	}
	if e.Type == "" || e.Action == "" || (e.TimeNano == 0 && e.Time == 0) {
		return Event{}, false
	}
	if e.TimeNano == 0 {
		e.TimeNano = e.Time * 1e9
	}
	return e, true
}

// readFrom reads f from off to its end.
func readFrom(f *os.File, off int64) ([]byte, error) {
	var buf bytes.Buffer
	_, err := io.Copy(&buf, io.NewSectionReader(f, off, 1<<62))
	return buf.Bytes(), err
}
