//go:build unix

package volume

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// fileLock is an exclusive flock(2). flock locks belong to the open file
// description, so they exclude goroutines of one process as well as other
// processes, and the kernel drops them when a process dies.
type fileLock struct{ f *os.File }

// lockPath takes an exclusive lock on the lock file path (created when
// missing), waiting until ctx is done.
func lockPath(ctx context.Context, path string) (*fileLock, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open lock %s: %w", path, classifyFSError(err))
	}
	return lockFile(ctx, f)
}

// lockDir takes an exclusive lock on the existing directory path, waiting
// until ctx is done.
func lockDir(ctx context.Context, path string) (*fileLock, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW, 0)
	if err != nil {
		return nil, fmt.Errorf("open lock %s: %w", path, classifyFSError(err))
	}
	return lockFile(ctx, f)
}

// lockFile locks f, waiting until ctx is done; it closes f on failure.
func lockFile(ctx context.Context, f *os.File) (*fileLock, error) {
	path := f.Name()
	delay := time.Millisecond
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			return &fileLock{f: f}, nil
		}
		if !errors.Is(err, unix.EWOULDBLOCK) && !errors.Is(err, unix.EINTR) {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("wait for lock %s: %w", path, ctx.Err())
		case <-time.After(delay):
		}
		if delay < 50*time.Millisecond {
			delay *= 2
		}
	}
}

// tryLockPath is lockPath without waiting: nil, nil when the lock is held
// elsewhere.
func tryLockPath(path string) (*fileLock, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open lock %s: %w", path, classifyFSError(err))
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, nil
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return &fileLock{f: f}, nil
}

func (l *fileLock) unlock() {
	if l != nil && l.f != nil {
		l.f.Close() // closing the only descriptor releases the flock
		l.f = nil
	}
}

// isAt reports whether the locked file is still the one at path (it was
// not renamed away or replaced while the lock was awaited).
func (l *fileLock) isAt(path string) bool {
	var held, now unix.Stat_t
	if unix.Fstat(int(l.f.Fd()), &held) != nil || unix.Lstat(path, &now) != nil {
		return false
	}
	return held.Dev == now.Dev && held.Ino == now.Ino
}
