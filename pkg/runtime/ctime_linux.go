package runtime

import (
	"io/fs"
	"syscall"
	"time"
)

// changedWithin says whether info's inode changed (ctime: written,
// renamed, its attributes set) less than d ago. Without a ctime it says
// yes, the cautious answer for leftover cleanup.
func changedWithin(info fs.FileInfo, d time.Duration) bool {
	st, ok := info.Sys().(*syscall.Stat_t)
	if !ok {
		return true
	}
	return time.Since(time.Unix(st.Ctim.Unix())) < d
}
