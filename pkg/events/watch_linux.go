package events

import (
	"context"
	"time"

	"golang.org/x/sys/unix"
)

// watcher wakes Follow when the journal's directory changes (inotify),
// or after the timeout when inotify is not available.
type watcher struct{ fd int }

func newWatcher(dir string) *watcher {
	fd, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
	if err != nil {
		return &watcher{fd: -1}
	}
	if _, err := unix.InotifyAddWatch(fd, dir, unix.IN_MODIFY|unix.IN_CREATE|unix.IN_MOVED_TO|unix.IN_CLOSE_WRITE); err != nil {
		_ = unix.Close(fd)
		return &watcher{fd: -1}
	}
	return &watcher{fd: fd}
}

func (w *watcher) close() {
	if w.fd >= 0 {
		_ = unix.Close(w.fd)
		w.fd = -1
	}
}

// wait returns after a change, the timeout, or with ctx's error. It
// checks ctx at least every 100 ms.
func (w *watcher) wait(ctx context.Context, timeout time.Duration) error {
	end := time.Now().Add(timeout)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		left := time.Until(end)
		if left <= 0 {
			return nil
		}
		step := min(left, 100*time.Millisecond)
		if w.fd < 0 {
			time.Sleep(step)
			continue
		}
		fds := []unix.PollFd{{Fd: int32(w.fd), Events: unix.POLLIN}}
		n, err := unix.Poll(fds, int(step.Milliseconds())+1)
		if err != nil && err != unix.EINTR {
			time.Sleep(step)
			continue
		}
		if n > 0 {
			w.drain()
			return nil
		}
	}
}

// drain reads the pending notifications; which file changed does not
// matter, the tail rereads.
func (w *watcher) drain() {
	var buf [4096]byte
	for {
		n, err := unix.Read(w.fd, buf[:])
		if n <= 0 || err != nil {
			return
		}
	}
}
