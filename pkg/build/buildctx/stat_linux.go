package buildctx

import (
	"io/fs"
	"syscall"
)

// statOf returns the inode identity, link count and owner of fi.
func statOf(fi fs.FileInfo) (dev, ino, nlink uint64, uid, gid int) {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return uint64(st.Dev), st.Ino, uint64(st.Nlink), int(st.Uid), int(st.Gid)
	}
	return 0, 0, 1, 0, 0
}

func devNumbers(fi fs.FileInfo) (int64, int64) {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		rdev := uint64(st.Rdev)
		major := (rdev >> 8 & 0xfff) | (rdev >> 32 & ^uint64(0xfff))
		minor := (rdev & 0xff) | (rdev >> 12 & ^uint64(0xff))
		return int64(major), int64(minor)
	}
	return 0, 0
}
