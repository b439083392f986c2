//go:build unix

// Package flock provides flock(2) locks on files. A lock belongs to the
// open file description, so it excludes goroutines of one process as well
// as other processes, and the kernel drops it when the holder dies: a
// killed berth process never leaves a lock behind.
package flock

import (
	"context"
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// Lock is a held lock. Unlock releases it.
type Lock struct{ f *os.File }

// Acquire opens (creating it if needed) the lock file at path and locks it,
// exclusively or shared, waiting until ctx is done.
func Acquire(ctx context.Context, path string, exclusive bool) (*Lock, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open lock %s: %w", path, err)
	}
	return AcquireFile(ctx, f, exclusive)
}

// AcquireFile locks an open file (a directory may be locked too), waiting
// until ctx is done. It takes ownership of f and closes it on failure.
func AcquireFile(ctx context.Context, f *os.File, exclusive bool) (*Lock, error) {
	how := unix.LOCK_SH
	if exclusive {
		how = unix.LOCK_EX
	}
	err := unix.Flock(int(f.Fd()), how|unix.LOCK_NB)
	if err == nil {
		return &Lock{f: f}, nil
	}
	if !errors.Is(err, unix.EWOULDBLOCK) && !errors.Is(err, unix.EINTR) {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", f.Name(), err)
	}
	// Held elsewhere: wait in the kernel, so the lock is ours the moment
	// it is released (polling would add up to its interval to every
	// wait). A blocking flock cannot be cancelled; when ctx ends first,
	// the waiting goroutine releases the lock as soon as it gets it.
	done := make(chan error, 1)
	go func() {
		for {
			err := unix.Flock(int(f.Fd()), how)
			if !errors.Is(err, unix.EINTR) {
				done <- err
				return
			}
		}
	}()
	select {
	case err := <-done:
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", f.Name(), err)
		}
		return &Lock{f: f}, nil
	case <-ctx.Done():
		go func() {
			<-done
			f.Close() // closing the file drops the lock if it was taken
		}()
		return nil, fmt.Errorf("wait for lock %s: %w", f.Name(), ctx.Err())
	}
}

// TryAcquire is Acquire without waiting: it returns nil, nil when the lock
// is held elsewhere.
func TryAcquire(path string, exclusive bool) (*Lock, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open lock %s: %w", path, err)
	}
	how := unix.LOCK_SH
	if exclusive {
		how = unix.LOCK_EX
	}
	if err := unix.Flock(int(f.Fd()), how|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, nil
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return &Lock{f: f}, nil
}

// Unlock releases the lock. It is safe to call on nil and more than once.
func (l *Lock) Unlock() {
	if l != nil && l.f != nil {
		l.f.Close() // closing the last descriptor releases the flock
		l.f = nil
	}
}

// File is the locked file (to keep it open across exec, for example).
func (l *Lock) File() *os.File { return l.f }

// IsAt reports whether the locked file is still the one at path: it was
// not renamed away or replaced while the lock was awaited.
func (l *Lock) IsAt(path string) bool {
	var held, now unix.Stat_t
	if l == nil || l.f == nil || unix.Fstat(int(l.f.Fd()), &held) != nil || unix.Lstat(path, &now) != nil {
		return false
	}
	return held.Dev == now.Dev && held.Ino == now.Ino
}
