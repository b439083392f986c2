package runtime

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/berthsh/berth/pkg/errdefs"
)

// Names of the files in a container directory.
const (
	configFile     = "config.json"
	stateFile      = "state.json"
	lockFile       = "lock"
	supervisorLock = "supervisor.lock"
	supervisorSock = "supervisor.sock"
	supervisorLog  = "supervisor.log"
)

func loadJSON(path string, v any) error {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("read %s: %w", path, errdefs.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("read %s: %v: %w", path, err, errdefs.ErrDataCorrupt)
	}
	return nil
}

func saveJSON(path string, v any) error {
	data, err := json.MarshalIndent(v, "", "\t")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := writeFileAtomic(path, data, 0o600); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

func loadConfig(dir string) (ContainerConfig, error) {
	var c ContainerConfig
	err := loadJSON(filepath.Join(dir, configFile), &c)
	return c, err
}

func saveConfig(dir string, c ContainerConfig) error {
	return saveJSON(filepath.Join(dir, configFile), c)
}

func loadState(dir string) (State, error) {
	var s State
	err := loadJSON(filepath.Join(dir, stateFile), &s)
	return s, err
}

// saveState writes state.json; the caller holds the container lock.
func saveState(dir string, s State) error {
	return saveJSON(filepath.Join(dir, stateFile), s)
}

// active reports whether a state says a supervisor should be alive.
func (s State) active() bool {
	return s.Running || s.Restarting || s.Paused ||
		s.Status == StatusRunning || s.Status == StatusRestarting || s.Status == StatusPaused
}

// flock is an exclusive lock on a file, held until unlock.
type flock struct{ f *os.File }

// lockExclusive takes an exclusive flock on path (created if missing),
// waiting until ctx is done.
func lockExclusive(ctx context.Context, path string) (*flock, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, classifyFS(err))
	}
	for delay := time.Millisecond; ; delay = min(2*delay, 50*time.Millisecond) {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return &flock{f}, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, ctx.Err())
		case <-time.After(delay):
		}
	}
}

// tryLock takes an exclusive flock on path without waiting; ok is false
// when another holder has it. A missing file counts as unlocked only when
// create is set (else it returns ok false and no error).
func tryLock(path string) (l *flock, ok bool, err error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, false, fmt.Errorf("lock %s: %w", path, classifyFS(err))
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, false, nil
		}
		return nil, false, fmt.Errorf("lock %s: %w", path, err)
	}
	return &flock{f}, true, nil
}

func (l *flock) unlock() {
	if l != nil && l.f != nil {
		_ = l.f.Close()
		l.f = nil
	}
}

// supervisorAlive reports whether a supervisor holds dir's supervisor.lock.
func supervisorAlive(dir string) bool {
	if _, err := os.Stat(filepath.Join(dir, supervisorLock)); err != nil {
		return false
	}
	l, ok, err := tryLock(filepath.Join(dir, supervisorLock))
	if err != nil {
		return false
	}
	if ok {
		l.unlock()
		return false
	}
	return true
}

func classifyFS(err error) error {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("%w: %w", errdefs.ErrNotFound, err)
	case errors.Is(err, fs.ErrPermission):
		return fmt.Errorf("%w: %w", errdefs.ErrPermission, err)
	}
	return err
}
