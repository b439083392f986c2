package events

import (
	"context"
	"time"

	"golang.org/x/sys/unix"
)

// watcher wakes Follow when the journal's directory changes (inotify),
// or after the timeout when inotify is not available.
type watcher struct {
	fd  int
	dir string
	// dev and ino identify the directory watched (zero: none).
	dev uint64
	ino uint64
}

func newWatcher(dir string) *watcher {
	w := &watcher{fd: -1, dir: dir}
	var st unix.Stat_t
	if err := unix.Stat(dir, &st); err != nil {
		return w // polling until the directory is back
	}
	fd, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
	if err != nil {
		return w
	}
	if _, err := unix.InotifyAddWatch(fd, dir, unix.IN_MODIFY|unix.IN_CREATE|unix.IN_MOVED_TO|unix.IN_CLOSE_WRITE); err != nil {
		_ = unix.Close(fd)
		return w
	}
	w.fd, w.dev, w.ino = fd, uint64(st.Dev), st.Ino
	return w
}

// stale tells whether the directory watched is no longer the one at
// w.dir (removed, maybe made again), or one has appeared where there was
// none.
func (w *watcher) stale() bool {
	var st unix.Stat_t
	if err := unix.Stat(w.dir, &st); err != nil {
		return w.ino != 0
	}
	return uint64(st.Dev) != w.dev || st.Ino != w.ino
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
