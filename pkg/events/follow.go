package events

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// pollInterval is how often Follow looks at the journal when no change
// notification woke it (and the longest it takes to notice ctx ending).
const pollInterval = 250 * time.Millisecond

// untilGrace is how long after f.Until Follow still reads: an event
// stamped just before Until may reach the file a moment after it.
const untilGrace = 50 * time.Millisecond

// Follow calls fn with the events f selects, oldest first: those already
// in the journal from f.Since on (a zero Since means from now), then new
// ones as they are appended, across rotations, until ctx is done (it then
// returns ctx.Err()) or f.Until has passed (it then returns nil). An
// error from fn ends Follow and is returned.
func Follow(ctx context.Context, root string, f Filter, fn func(Event) error) error {
	if f.Since.IsZero() {
		f.Since = time.Now()
	}
	dir := Dir(root)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("follow events: %w", err)
	}
	w := newWatcher(dir)
	defer func() { w.close() }()
	t := &tail{dir: dir}
	defer t.close()
	deliver := func(e Event) error {
		if f.Match(e) {
			return fn(e)
		}
		return nil
	}
	for {
		if err := t.read(deliver); err != nil {
			return err
		}
		// The data directory was removed (berth system reset) and
		// maybe made again: watch the new one.
		if w.stale() {
			w.close()
			w = newWatcher(dir)
		}
		if !f.Until.IsZero() && time.Now().After(f.Until.Add(untilGrace)) {
			return nil
		}
		timeout := pollInterval
		if !f.Until.IsZero() {
			timeout = min(timeout, max(time.Until(f.Until.Add(untilGrace)), time.Millisecond))
		}
		if err := w.wait(ctx, timeout); err != nil {
			return err
		}
	}
}

// tail reads the journal incrementally: f is the current file as last
// opened, read up to off.
type tail struct {
	dir     string
	f       *os.File
	off     int64
	started bool
}

func (t *tail) close() {
	if t.f != nil {
		_ = t.f.Close()
	}
}

// read delivers what was appended since the last call, following a
// rotation to the new file. It holds the shared lock, so no rotation
// happens while it reads.
func (t *tail) read(fn func(Event) error) error {
	// The directory is not made again when it is gone (a reset of the
	// data directory removing it): the next event's writer makes it.
	lf, err := openLock(t.dir, false)
	if errors.Is(err, os.ErrNotExist) {
		if t.f != nil {
			if err := t.readRest(fn); err != nil {
				return err
			}
			_ = t.f.Close()
			t.f, t.off = nil, 0
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("follow events: %w", err)
	}
	defer lf.Close()
	if err := flock(lf, unix.LOCK_SH); err != nil {
		return fmt.Errorf("follow events: %w", err)
	}
	if !t.started {
		// The first time: the previous file, then the current one.
		t.started = true
		if err := t.readWhole(filepath.Join(t.dir, oldFile), fn); err != nil {
			return err
		}
	}
	cur := filepath.Join(t.dir, currentFile)
	if t.f != nil {
		if err := t.readRest(fn); err != nil {
			return err
		}
		fi, err := os.Stat(cur)
		if err == nil && sameFile(t.f, fi) {
			return nil // not rotated
		}
		// Rotated: what we read is final. A second rotation since may
		// have put a file we never saw in between.
		if ofi, err := os.Stat(filepath.Join(t.dir, oldFile)); err == nil && !sameFile(t.f, ofi) {
			if err := t.readWhole(filepath.Join(t.dir, oldFile), fn); err != nil {
				return err
			}
		}
		_ = t.f.Close()
		t.f, t.off = nil, 0
	}
	f, err := os.Open(cur)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("follow events: %w", err)
	}
	t.f, t.off = f, 0
	return t.readRest(fn)
}

// readRest delivers the complete lines of t.f after t.off.
func (t *tail) readRest(fn func(Event) error) error {
	data, err := readFrom(t.f, t.off)
	if err != nil {
		return fmt.Errorf("follow events: %w", err)
	}
	n, err := scanLines(data, fn)
	t.off += int64(n)
	return err
}

// readWhole delivers every complete line of the file at path.
func (t *tail) readWhole(path string, fn func(Event) error) error {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("follow events: %w", err)
	}
	_, err = scanLines(data, fn)
	return err
}

// sameFile tells whether the open file f is the file fi describes. A
// deleted f (the journal removed with its data directory) is no file on
// disk, whatever inode number the new journal reuses.
func sameFile(f *os.File, fi os.FileInfo) bool {
	a, err := f.Stat()
	if err != nil {
		return false
	}
	sa, ok1 := a.Sys().(*syscall.Stat_t)
	sb, ok2 := fi.Sys().(*syscall.Stat_t)
	if !ok1 || !ok2 {
		return os.SameFile(a, fi)
	}
	return sa.Nlink > 0 && sa.Dev == sb.Dev && sa.Ino == sb.Ino
}
