package logs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"time"
)

// ReadOptions selects what Read delivers.
type ReadOptions struct {
	// Tail, if zero or more, delivers only the last Tail matching entries
	// (0: none, useful with Follow). Negative delivers everything.
	Tail int
	// Since and Until, when set, skip entries before Since or after Until.
	Since, Until time.Time
	// Follow keeps delivering entries as they are appended, across
	// rotations, until ctx is done, Done is closed, or Until has passed.
	Follow bool
	// Done, when closed, ends a Follow once everything already written has
	// been delivered; close it after the container exited and its Writer
	// was flushed.
	Done <-chan struct{}
	// Stdout and Stderr select streams; neither set means both.
	Stdout, Stderr bool
}

var (
	// pollInterval is how often a follower looks for new output.
	pollInterval = 100 * time.Millisecond
	// snapshotRetries bounds the retries when a rotation races with Read
	// opening the files.
	snapshotRetries = 50
)

// maxRecord is the longest line kept when reading; a longer one (not
// something the Writer produces) is skipped.
const maxRecord = 1 << 20

// Read delivers the log at path (its rotated files oldest first, then the
// live file) to fn, one entry at a time. Lines that are not valid records,
// such as a line torn by a crash, are skipped. An error from fn stops Read
// and is returned. Without Follow, Read returns nil at the end of the live
// file. With Follow, it returns ctx.Err() when ctx is done, and nil when
// opts.Done is closed (after delivering what was written before) or Until
// has passed. A missing log means no entries, not an error.
func Read(ctx context.Context, path string, opts ReadOptions, fn func(Entry) error) error {
	r := &reader{ctx: ctx, path: path, opts: opts, fn: fn}
	if !opts.Stdout && !opts.Stderr {
		r.opts.Stdout, r.opts.Stderr = true, true
	}
	err := r.run()
	if err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) && !r.fnErr {
		return fmt.Errorf("read log %s: %w", path, err)
	}
	return err
}

type reader struct {
	ctx   context.Context
	path  string
	opts  ReadOptions
	fn    func(Entry) error
	fnErr bool // the error came from fn: pass it on unwrapped

	live     *os.File    // open live file while following
	lastRead os.FileInfo // newest file fully delivered or being followed
	lines    lineSplitter
}

func (r *reader) run() error {
	snap, err := takeSnapshot(r.ctx, r.path)
	if err != nil {
		return err
	}
	defer func() {
		if r.live != nil {
			r.live.Close()
		}
	}()
	r.live = snap.live
	snap.live = nil
	defer snap.close()

	if r.opts.Tail >= 0 {
		if err := r.tail(snap); err != nil {
			return err
		}
	} else {
		for _, f := range snap.rotated {
			if err := r.readWhole(f); err != nil {
				return err
			}
		}
		if r.live != nil {
			if err := r.lines.feed(r.ctx, r.live, r.emit); err != nil {
				return err
			}
		}
	}
	if r.live != nil {
		r.lastRead = snap.liveInfo
	} else if len(snap.rotated) > 0 {
		r.lastRead = snap.rotated[len(snap.rotated)-1].info
	}
	if !r.opts.Follow {
		return nil
	}
	return r.follow()
}

// emit decodes and filters one line and hands it to fn.
func (r *reader) emit(line []byte) error {
	e, ok := decodeRecord(line)
	if !ok || !r.match(e) {
		return nil
	}
	if err := r.fn(e); err != nil {
		r.fnErr = true
		return err
	}
	return nil
}

func (r *reader) match(e Entry) bool {
	switch e.Stream {
	case "stdout":
		if !r.opts.Stdout {
			return false
		}
	case "stderr":
		if !r.opts.Stderr {
			return false
		}
	}
	if !r.opts.Since.IsZero() && e.Time.Before(r.opts.Since) {
		return false
	}
	if !r.opts.Until.IsZero() && e.Time.After(r.opts.Until) {
		return false
	}
	return true
}

// readWhole delivers a whole rotated file.
func (r *reader) readWhole(f *logFile) error {
	var ls lineSplitter
	src, err := f.reader()
	if err != nil {
		return err
	}
	return ls.feed(r.ctx, src, r.emit)
}

// tail delivers the last opts.Tail matching entries, reading files
// backwards from the end of the live file, then leaves the live file
// positioned after its last complete line for a follower.
func (r *reader) tail(snap *snapshot) error {
	want := r.opts.Tail
	var got []Entry // newest first
	collect := func(line []byte) (bool, error) {
		if len(got) >= want {
			return true, nil
		}
		e, ok := decodeRecord(line)
		if ok && r.match(e) {
			got = append(got, e)
		}
		return len(got) >= want, nil
	}
	if r.live != nil {
		end, err := scanBackward(r.live, snap.liveInfo.Size(), collect)
		if err != nil {
			return err
		}
		if _, err := r.live.Seek(end, io.SeekStart); err != nil {
			return err
		}
	}
	for i := len(snap.rotated) - 1; i >= 0 && len(got) < want; i-- {
		f := snap.rotated[i]
		if !f.gz {
			if _, err := scanBackward(f.f, f.info.Size(), collect); err != nil {
				return err
			}
			continue
		}
		// A gzip stream can only be read forwards: keep the last entries.
		need := want - len(got)
		ring := make([]Entry, 0, min(need, 4096))
		next := 0 // once the ring is full, the slot of its oldest entry
		src, err := f.reader()
		if err != nil {
			return err
		}
		var ls lineSplitter
		err = ls.feed(r.ctx, src, func(line []byte) error {
			if e, ok := decodeRecord(line); ok && r.match(e) {
				if len(ring) < need {
					ring = append(ring, e)
				} else {
					ring[next] = e
					next = (next + 1) % need
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
		// ring[next:] then ring[:next] is oldest to newest.
		for j := len(ring) - 1; j >= 0; j-- {
			got = append(got, ring[(next+j)%len(ring)])
		}
	}
	for i := len(got) - 1; i >= 0; i-- {
		if err := r.ctx.Err(); err != nil {
			return err
		}
		if err := r.fn(got[i]); err != nil {
			r.fnErr = true
			return err
		}
	}
	return nil
}

// follow polls the live file for new records until told to stop.
func (r *reader) follow() error {
	t := time.NewTicker(pollInterval)
	defer t.Stop()
	for {
		if err := r.catchUp(); err != nil {
			return err
		}
		if !r.opts.Until.IsZero() && time.Now().After(r.opts.Until) {
			return nil
		}
		select {
		case <-r.ctx.Done():
			return r.ctx.Err()
		case <-r.opts.Done:
			return r.catchUp()
		case <-t.C:
		}
	}
}

// catchUp delivers everything appended since the last call, following the
// log through rotations.
func (r *reader) catchUp() error {
	for {
		if r.live != nil {
			if err := r.lines.feed(r.ctx, r.live, r.emit); err != nil {
				return err
			}
		}
		fi, err := os.Stat(r.path)
		if errors.Is(err, fs.ErrNotExist) {
			return nil // mid-rotation, or not created yet: look again later
		}
		if err != nil {
			return err
		}
		if r.lastRead != nil && os.SameFile(fi, r.lastRead) {
			return nil
		}
		// The live file was replaced. The Writer does not touch a file after
		// renaming it, so what we have open is complete once drained again.
		old := r.live
		if old != nil {
			if err := r.lines.feed(r.ctx, old, r.emit); err != nil {
				return err
			}
			if fi, err := old.Stat(); err == nil {
				r.lastRead = fi // with its final size
			}
			r.live = nil
		}
		r.lines.reset()
		// Keep the old file open while looking for it among the rotated
		// ones, so that its inode cannot be reused meanwhile.
		err = r.switchFiles()
		if old != nil {
			old.Close()
		}
		if err != nil {
			return err
		}
	}
}

// switchFiles delivers the rotated files newer than the one last read
// (normally none: a follower sees every rotation) and moves to the new live
// file.
func (r *reader) switchFiles() error {
	snap, err := takeSnapshot(r.ctx, r.path)
	if err != nil {
		return err
	}
	defer snap.close()
	newer := snap.rotated
	if r.lastRead != nil {
		// Files after the one last read are new to us. If it is not there
		// at all, it has been rotated away and everything left is new, as
		// long as compressed files can be recognised (see fileKey).
		if _, ok := fileKey(r.lastRead); !ok {
			newer = nil
		}
		for i := len(snap.rotated) - 1; i >= 0; i-- {
			if snap.rotated[i].is(r.lastRead) {
				newer = snap.rotated[i+1:]
				break
			}
		}
	}
	for _, f := range newer {
		if err := r.readWhole(f); err != nil {
			return err
		}
		r.lastRead = f.info
	}
	if snap.live != nil {
		r.live, r.lastRead = snap.live, snap.liveInfo
		snap.live = nil
	}
	return nil
}

// lineSplitter cuts a byte stream into lines, holding an unterminated last
// line until the rest of it arrives.
type lineSplitter struct {
	buf      []byte
	pending  []byte
	skipping bool // discarding the rest of an over-long line
}

func (ls *lineSplitter) reset() {
	ls.pending = ls.pending[:0]
	ls.skipping = false
}

// feed reads src to EOF, calling emit for each complete line (without its
// "\n"). The line passed to emit is only valid during the call.
func (ls *lineSplitter) feed(ctx context.Context, src io.Reader, emit func([]byte) error) error {
	if ls.buf == nil {
		ls.buf = make([]byte, 64<<10)
	}
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		n, err := src.Read(ls.buf)
		data := ls.buf[:n]
		for len(data) > 0 {
			i := bytes.IndexByte(data, '\n')
			if i < 0 {
				if !ls.skipping {
					ls.pending = append(ls.pending, data...)
					if len(ls.pending) > maxRecord {
						ls.pending, ls.skipping = ls.pending[:0], true
					}
				}
				break
			}
			line := data[:i]
			data = data[i+1:]
			switch {
			case ls.skipping:
				ls.skipping = false
				continue
			case len(ls.pending) > 0:
				ls.pending = append(ls.pending, line...)
				line = ls.pending
			}
			eerr := emit(line)
			ls.pending = ls.pending[:0]
			if eerr != nil {
				return eerr
			}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// scanBackward calls visit for each complete line of the first size bytes
// of f, last line first, until visit says stop. It returns the offset just
// past the last complete line (where a follower should continue).
func scanBackward(f io.ReaderAt, size int64, visit func([]byte) (bool, error)) (int64, error) {
	const block = 64 << 10
	var (
		carry     []byte // start of the region already read, up to its first "\n"
		seenNL    bool   // the first (from the end) "\n" has been found
		truncated bool   // carry was cut short: its line is unusable
		end       int64
		pos       = size
	)
	for pos > 0 {
		n := min(block, pos)
		pos -= n
		data := make([]byte, int(n)+len(carry))
		if _, err := f.ReadAt(data[:n], pos); err != nil && !errors.Is(err, io.EOF) {
			return 0, err
		}
		copy(data[n:], carry)
		stop := len(data)
		for {
			i := bytes.LastIndexByte(data[:stop], '\n')
			if i < 0 {
				break
			}
			switch {
			case !seenNL:
				// Whatever follows the last "\n" is a record still being
				// written; it is left for a follower.
				seenNL, end = true, pos+int64(i)+1
			case truncated:
				truncated = false
			default:
				done, err := visit(data[i+1 : stop])
				if err != nil || done {
					return end, err
				}
			}
			stop = i
		}
		carry = data[:stop]
		if !seenNL {
			carry = nil
		} else if len(carry) > maxRecord {
			carry, truncated = nil, true
		}
	}
	if seenNL && !truncated && len(carry) > 0 {
		if _, err := visit(carry); err != nil {
			return end, err
		}
	}
	return end, nil
}
