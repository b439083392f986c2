package runtime

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/berthsh/berth/internal/atomicfile"
	"github.com/berthsh/berth/internal/flock"
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
	// The file is synced before it replaces the old one, so a crash
	// leaves the old state or the new; the directory is not (a state
	// rewritten several times per start would pay for it each time):
	// Create syncs the containers directory once for a new container.
	if err := atomicfile.WriteFileNoDirSync(path, data, 0o600); err != nil {
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

// lockExclusive takes an exclusive flock on path (created if missing),
// waiting until ctx is done.
func lockExclusive(ctx context.Context, path string) (*flock.Lock, error) {
	l, err := flock.Acquire(ctx, path, true)
	if err != nil {
		return nil, classifyFS(err)
	}
	return l, nil
}

// tryLock takes an exclusive flock on path without waiting; ok is false
// when another holder has it.
func tryLock(path string) (l *flock.Lock, ok bool, err error) {
	l, err = flock.TryAcquire(path, true)
	if err != nil {
		return nil, false, classifyFS(err)
	}
	return l, l != nil, nil
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
		l.Unlock()
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
