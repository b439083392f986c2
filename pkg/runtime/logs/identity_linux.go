package logs

import (
	"fmt"
	"os"
	"syscall"
)

// fileKey identifies a finished log file by device, inode and size. The
// compressor records it in the gzip header of PATH.N.gz, so that a follower
// can still recognise the file it was reading after it was compressed.
func fileKey(fi os.FileInfo) (string, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return "", false
	}
	return fmt.Sprintf("berth-log-source %d:%d:%d", st.Dev, st.Ino, fi.Size()), true
}
