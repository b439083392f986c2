package logs

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/klauspost/compress/gzip"
)

// flushThreshold bounds how much encoded output a single Write batches
// before handing it to the file.
const flushThreshold = 64 << 10

// Writer appends a container's output to a json-file log, rotating it as
// configured. Its streams may be written from different goroutines.
type Writer struct {
	path string
	opts Options

	mu       sync.Mutex
	f        *os.File // nil after a failed reopen; retried on the next write
	size     int64    // bytes in the live file
	rotateAt int64    // rotate when size would pass this
	buf      []byte   // encoded records not yet written
	streams  map[string]*stream
	closed   bool
	torn     bool // the live file ends in a partial record (short write)
	failing  bool // the last write failed; suppresses repeated reports
	dropped  int64
	errs     []error // reported to OnError once mu is released

	compressing sync.WaitGroup
}

// NewWriter opens (creating if needed, appending if present) the log file at
// path. Its directory is created if missing.
func NewWriter(path string, opts Options) (*Writer, error) {
	o, err := opts.normalize()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("create log directory: %w", err)
	}
	w := &Writer{path: path, opts: o, rotateAt: o.MaxSize, streams: map[string]*stream{}}
	if err := w.open(); err != nil {
		return nil, err
	}
	return w, nil
}

// open opens the live file for appending. If a crash left a torn record at
// its end, the record is terminated so that the next one stays readable.
func (w *Writer) open() error {
	f, err := os.OpenFile(w.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return fmt.Errorf("open log %s: %w", w.path, err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("open log %s: %w", w.path, err)
	}
	w.f, w.size, w.torn = f, fi.Size(), false
	if w.size > 0 && fi.Mode().IsRegular() {
		last := make([]byte, 1)
		if r, err := os.Open(w.path); err == nil {
			if _, err := r.ReadAt(last, w.size-1); err == nil && last[0] != '\n' {
				w.torn = true
			}
			r.Close()
		}
	}
	return nil
}

// Stream returns the writer for one output stream, normally "stdout" or
// "stderr". It splits what is written into lines and appends one record
// per line; a line without its newline yet is held until the newline comes,
// Flush is called, or it reaches 16 KiB (then it is written as a chunk
// without newline, like Docker). Write never fails because of the log file
// (see Options.OnError); it returns an error only after Close.
func (w *Writer) Stream(name string) io.Writer {
	w.mu.Lock()
	defer w.mu.Unlock()
	s, ok := w.streams[name]
	if !ok {
		s = &stream{w: w, name: appendEscaped(nil, []byte(name))}
		w.streams[name] = s
	}
	return s
}

type stream struct {
	w         *Writer
	name      []byte // JSON-escaped
	held      []byte // start of a line not yet written
	inLine    bool   // chunks of the current line have been written
	lineStart time.Time
}

func (s *stream) Write(p []byte) (int, error) {
	w := s.w
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return 0, fmt.Errorf("log %s: %w", w.path, os.ErrClosed)
	}
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		// Docker's copier reads into a 16 KiB buffer: a line ends a record
		// only if the line and its newline fit in the buffer together.
		if i >= 0 && len(s.held)+i < maxChunk {
			line := p[:i]
			if len(s.held) > 0 {
				s.held = append(s.held, line...)
				line = s.held
			}
			w.add(s, line, true)
			s.held = s.held[:0]
			p = p[i+1:]
			continue
		}
		take := min(maxChunk-len(s.held), len(p))
		s.held = append(s.held, p[:take]...)
		p = p[take:]
		if len(s.held) == maxChunk {
			w.add(s, s.held, false)
			s.held = s.held[:0]
		}
	}
	w.writeBuf()
	errs := w.takeErrs()
	w.mu.Unlock()
	w.report(errs)
	return n, nil
}

// add encodes one record into w.buf, rotating first if it would push the
// live file past MaxSize. Called with w.mu held.
func (w *Writer) add(s *stream, line []byte, complete bool) {
	t := w.opts.Now().UTC()
	if s.inLine {
		t = s.lineStart
	} else if !complete {
		s.lineStart = t
	}
	s.inLine = !complete

	start := len(w.buf)
	w.buf = appendRecord(w.buf, line, complete, s.name, t)
	if w.opts.MaxSize > 0 && w.size+int64(len(w.buf)) > w.rotateAt && w.size+int64(start) > 0 {
		w.write(w.buf[:start])
		w.buf = w.buf[:copy(w.buf, w.buf[start:])]
		w.rotate()
	}
	if len(w.buf) >= flushThreshold {
		w.writeBuf()
	}
}

func (w *Writer) writeBuf() {
	w.write(w.buf)
	w.buf = w.buf[:0]
}

// write appends b to the live file. A failure drops b (counted) and is
// reported once per run of failures; it never stops the writer.
func (w *Writer) write(b []byte) {
	if len(b) == 0 {
		return
	}
	if w.f == nil {
		if err := w.open(); err != nil {
			w.drop(len(b), err)
			return
		}
	}
	if w.torn {
		n, err := w.f.Write([]byte{'\n'})
		w.size += int64(n)
		if err != nil {
			w.drop(len(b), fmt.Errorf("write log %s: %w", w.path, err))
			return
		}
		w.torn = false
	}
	n, err := w.f.Write(b)
	w.size += int64(n)
	if err != nil {
		w.torn = n > 0 && b[n-1] != '\n'
		w.drop(len(b)-n, fmt.Errorf("write log %s: %w", w.path, err))
		return
	}
	w.failing = false
}

func (w *Writer) drop(n int, err error) {
	w.dropped += int64(n)
	if !w.failing {
		w.failing = true
		w.errs = append(w.errs, fmt.Errorf("%w (container output is dropped until writing succeeds again)", err))
	}
}

func (w *Writer) takeErrs() []error {
	errs := w.errs
	w.errs = nil
	return errs
}

func (w *Writer) report(errs []error) {
	if w.opts.OnError == nil {
		return
	}
	for _, err := range errs {
		w.opts.OnError(err)
	}
}

// rotatedName is the name of the n-th newest rotated file.
func rotatedName(path string, n int) string { return path + "." + strconv.Itoa(n) }

// rotate moves the live file aside and starts a new one. Called with w.mu
// held and w.buf holding nothing that belongs in the old file.
func (w *Writer) rotate() {
	w.compressing.Wait() // PATH.1 must be settled before it is renamed
	if w.f != nil {
		if err := w.f.Close(); err != nil {
			w.errs = append(w.errs, fmt.Errorf("rotate log %s: %w", w.path, err))
		}
		w.f = nil
	}
	err := shiftFiles(w.path, w.opts.MaxFiles)
	if err != nil {
		w.errs = append(w.errs, fmt.Errorf("rotate log %s: %w", w.path, err))
	}
	if oerr := w.open(); oerr != nil {
		w.drop(0, oerr)
		w.size = 0
	}
	if err != nil {
		// Keep appending to the old file; try again after another MaxSize.
		w.rotateAt = w.size + w.opts.MaxSize
		return
	}
	w.rotateAt = w.opts.MaxSize
	if w.opts.Compress && w.opts.MaxFiles > 1 {
		w.compressing.Add(1)
		go w.compress(rotatedName(w.path, 1))
	}
}

// shiftFiles renames PATH.(n) to PATH.(n+1) from the oldest down, then
// PATH to PATH.1, dropping what would exceed maxFiles files. It stops at the
// first failure so that no file is ever renamed over another.
func shiftFiles(path string, maxFiles int) error {
	if maxFiles <= 1 {
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		return nil
	}
	top := 0 // the oldest rotated file present
	for exists(rotatedName(path, top+1)) || exists(rotatedName(path, top+1)+".gz") {
		top++
	}
	// The oldest kept slot, and anything beyond it left by an earlier,
	// larger max-file, go.
	for i := maxFiles - 1; i <= top; i++ {
		for _, name := range []string{rotatedName(path, i), rotatedName(path, i) + ".gz"} {
			if err := os.Remove(name); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
		}
	}
	for i := min(top, maxFiles-2); i >= 1; i-- {
		for _, ext := range []string{"", ".gz"} {
			err := os.Rename(rotatedName(path, i)+ext, rotatedName(path, i+1)+ext)
			if err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
		}
	}
	if err := os.Rename(path, rotatedName(path, 1)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// compress replaces src with src.gz. The .gz appears (by rename) before src
// is removed, so a reader always finds one of them.
func (w *Writer) compress(src string) {
	defer w.compressing.Done()
	if err := gzipFile(src); err != nil && w.opts.OnError != nil {
		w.opts.OnError(fmt.Errorf("compress rotated log %s: %w", src, err))
	}
}

func gzipFile(src string) (err error) {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	tmp := src + ".gz.tmp"
	out, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o640)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			out.Close()
			os.Remove(tmp)
		}
	}()
	zw := gzip.NewWriter(out)
	zw.Name = filepath.Base(src)
	if fi, err := in.Stat(); err == nil {
		zw.Comment, _ = fileKey(fi)
	}
	if _, err = io.Copy(zw, in); err != nil {
		return err
	}
	if err = zw.Close(); err != nil {
		return err
	}
	if err = out.Sync(); err != nil {
		return err
	}
	if err = out.Close(); err != nil {
		return err
	}
	if err = os.Rename(tmp, src+".gz"); err != nil {
		return err
	}
	return os.Remove(src)
}

// Flush writes out every stream's held partial line, without a newline (as
// Docker does when a container exits mid-line). Call it when the container
// has exited and its pipes are drained.
func (w *Writer) Flush() error {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return fmt.Errorf("log %s: %w", w.path, os.ErrClosed)
	}
	w.flushLocked()
	errs := w.takeErrs()
	w.mu.Unlock()
	w.report(errs)
	return nil
}

func (w *Writer) flushLocked() {
	for _, s := range w.streams {
		if len(s.held) > 0 {
			w.add(s, s.held, false)
			s.held = s.held[:0]
		}
		s.inLine = false
	}
	w.writeBuf()
}

// Dropped reports how many bytes of encoded log records could not be
// written (disk full, I/O errors) since the Writer was opened.
func (w *Writer) Dropped() int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.dropped
}

// Close flushes held partial lines, waits for background compression and
// closes the file. Writes after Close fail with os.ErrClosed.
func (w *Writer) Close() error {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return nil
	}
	w.flushLocked()
	w.closed = true
	var err error
	if w.f != nil {
		if cerr := w.f.Close(); cerr != nil {
			err = fmt.Errorf("close log %s: %w", w.path, cerr)
		}
		w.f = nil
	}
	errs := w.takeErrs()
	w.mu.Unlock()
	w.report(errs)
	w.compressing.Wait()
	return err
}
