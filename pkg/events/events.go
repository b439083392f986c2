package events

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
)

// Event types, as docker names them.
const (
	TypeContainer = "container"
	TypeImage     = "image"
	TypeNetwork   = "network"
	TypeVolume    = "volume"
)

// Actor is the object an event is about: its ID and attributes such as
// "name", "image", "exitCode".
type Actor struct {
	ID         string            `json:"ID"`
	Attributes map[string]string `json:"Attributes,omitempty"`
}

// Event is one entry of the journal, shaped like docker's events.
type Event struct {
	Type     string `json:"Type"`
	Action   string `json:"Action"`
	Actor    Actor  `json:"Actor"`
	Time     int64  `json:"time"`
	TimeNano int64  `json:"timeNano"`
}

// Timestamp is the event's time.
func (e Event) Timestamp() time.Time {
	if e.TimeNano != 0 {
		return time.Unix(0, e.TimeNano)
	}
	return time.Unix(e.Time, 0)
}

// File names under Dir.
const (
	currentFile = "events.jsonl"
	oldFile     = "events.jsonl.1"
	lockFile    = "events.lock"
)

// DefaultMaxSize bounds the journal: the current file is rotated when it
// passes half of it, so the current and the previous file together hold
// at most about this much.
const DefaultMaxSize = 10 << 20

// maxSize is DefaultMaxSize; tests lower it.
var maxSize int64 = DefaultMaxSize

// Dir is where the journal lives under a data directory.
func Dir(root string) string { return filepath.Join(root, "events") }

// Emit appends e to the journal under the data directory root, stamping
// it with the current time when e.TimeNano is zero. Callers treat a
// failure as non-fatal (an event lost never fails the operation).
//
// Emit is safe for concurrent use by goroutines and processes: the line
// goes out in one O_APPEND write while a shared lock keeps a rotation
// from happening under it.
func Emit(root string, e Event) error {
	if e.TimeNano == 0 {
		now := time.Now()
		e.TimeNano = now.UnixNano()
		e.Time = now.Unix()
	} else if e.Time == 0 {
		e.Time = e.TimeNano / int64(time.Second)
	}
	if e.Type == "" || e.Action == "" {
		return fmt.Errorf("emit event: type and action are required")
	}
	line, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("emit %s %s: %w", e.Type, e.Action, err)
	}
	line = append(line, '\n')
	if err := appendLine(Dir(root), line); err != nil {
		return fmt.Errorf("emit %s %s: %w", e.Type, e.Action, err)
	}
	return nil
}

// appendLine writes line to dir's current file and rotates it when it
// grew past the bound.
func appendLine(dir string, line []byte) error {
	lf, err := openLock(dir, true)
	if err != nil {
		return err
	}
	defer lf.Close()
	if err := flock(lf, unix.LOCK_SH); err != nil {
		return err
	}
	size, err := writeCurrent(dir, line)
	// The lock is released by the rotation's upgrade or by Close.
	if err != nil {
		return err
	}
	if size > maxSize/2 {
		rotate(dir, lf)
	}
	return nil
}

func writeCurrent(dir string, line []byte) (int64, error) {
	f, err := os.OpenFile(filepath.Join(dir, currentFile), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	n, err := f.Write(line)
	if err != nil {
		return 0, err
	}
	if n != len(line) {
		return 0, fmt.Errorf("short write to the event journal")
	}
	fi, err := f.Stat()
	if err != nil {
		return 0, nil // written; the size is only for rotation
	}
	return fi.Size(), nil
}

// rotate renames the current file over the previous one under the
// exclusive lock (taken from lf, which holds the shared one), when it is
// still past the bound: another writer may have rotated meanwhile.
func rotate(dir string, lf *os.File) {
	if err := flock(lf, unix.LOCK_EX); err != nil {
		return
	}
	cur := filepath.Join(dir, currentFile)
	fi, err := os.Stat(cur)
	if err != nil || fi.Size() <= maxSize/2 {
		return
	}
	_ = os.Rename(cur, filepath.Join(dir, oldFile))
}

// openLock opens dir's lock file, creating it (and dir, when create) if
// needed.
func openLock(dir string, create bool) (*os.File, error) {
	p := filepath.Join(dir, lockFile)
	f, err := os.OpenFile(p, os.O_RDONLY|os.O_CREATE, 0o600)
	if err == nil || !create || !errors.Is(err, os.ErrNotExist) {
		return f, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	return os.OpenFile(p, os.O_RDONLY|os.O_CREATE, 0o600)
}

func flock(f *os.File, how int) error {
	for {
		err := unix.Flock(int(f.Fd()), how)
		if err != unix.EINTR {
			return err
		}
	}
}
