package logs

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"time"

	"github.com/klauspost/compress/gzip"
)

// logFile is one open file of a log.
type logFile struct {
	f    *os.File
	info os.FileInfo
	gz   bool
}

// reader returns the file's records from the start, decompressed.
func (l *logFile) reader() (io.Reader, error) {
	src := io.NewSectionReader(l.f, 0, l.info.Size())
	if !l.gz {
		return src, nil
	}
	return gzip.NewReader(src)
}

// is reports whether l holds the records of the finished file fi, either
// as that very file or as its compressed copy.
func (l *logFile) is(fi os.FileInfo) bool {
	if !l.gz {
		return os.SameFile(l.info, fi)
	}
	key, ok := fileKey(fi)
	if !ok {
		return false
	}
	zr, err := gzip.NewReader(io.NewSectionReader(l.f, 0, l.info.Size()))
	if err != nil {
		return false
	}
	return zr.Comment == key
}

// snapshot is a log's files opened together: open files stay readable
// whatever the Writer renames or removes afterwards.
type snapshot struct {
	rotated  []*logFile // oldest first
	live     *os.File   // nil if there is no live file
	liveInfo os.FileInfo
}

func (s *snapshot) close() {
	for _, f := range s.rotated {
		f.f.Close()
	}
	if s.live != nil {
		s.live.Close()
	}
}

// takeSnapshot opens the live file and the rotated files. A rotation
// renames several files one after another, so after opening everything it
// checks that each name still refers to the file opened under it and that
// no file is missing in the sequence, and starts again if not.
func takeSnapshot(ctx context.Context, path string) (*snapshot, error) {
	for attempt := 0; ; attempt++ {
		s, consistent, err := openAll(path)
		if err != nil {
			return nil, err
		}
		if consistent || attempt >= snapshotRetries {
			return s, nil
		}
		s.close()
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
}

func openAll(path string) (s *snapshot, consistent bool, err error) {
	s = &snapshot{}
	defer func() {
		if err != nil {
			s.close()
		}
	}()
	if s.live, err = os.Open(path); err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			return nil, false, err
		}
		s.live, err = nil, nil
	} else if s.liveInfo, err = s.live.Stat(); err != nil {
		return nil, false, err
	}
	var newestFirst []*logFile
	var names []string
	for i := 1; ; i++ {
		lf, name, err := openRotated(path, i)
		if err != nil {
			return nil, false, err
		}
		if lf == nil {
			break
		}
		newestFirst = append(newestFirst, lf)
		names = append(names, name)
	}
	for i := len(newestFirst) - 1; i >= 0; i-- {
		s.rotated = append(s.rotated, newestFirst[i])
	}

	// Check that nothing moved while we were opening.
	if s.live == nil {
		if len(s.rotated) > 0 || exists(path) {
			return s, false, nil
		}
	} else if fi, err := os.Stat(path); err != nil || !os.SameFile(fi, s.liveInfo) {
		return s, false, nil
	}
	for i, name := range names {
		if fi, err := os.Stat(name); err != nil || !os.SameFile(fi, newestFirst[i].info) {
			return s, false, nil
		}
	}
	next := rotatedName(path, len(names)+2)
	if exists(next) || exists(next+".gz") {
		return s, false, nil // a gap: a rotation is shifting files
	}
	return s, true, nil
}

// openRotated opens PATH.n, or PATH.n.gz if there is no PATH.n. It returns
// nil if neither exists.
func openRotated(path string, n int) (*logFile, string, error) {
	name := rotatedName(path, n)
	for _, gz := range []bool{false, true} {
		nm := name
		if gz {
			nm += ".gz"
		}
		f, err := os.Open(nm)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, "", err
		}
		fi, err := f.Stat()
		if err != nil {
			f.Close()
			return nil, "", err
		}
		return &logFile{f: f, info: fi, gz: gz}, nm, nil
	}
	return nil, "", nil
}

func exists(name string) bool {
	_, err := os.Lstat(name)
	return err == nil
}
