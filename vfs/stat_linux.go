package vfs

import (
	"io/fs"
	"syscall"
	"time"
)

// StatOf returns the Stat behind fi, a FileInfo this package (or the os
// package) returned; false for any other FileInfo (and, off Linux, for
// every FileInfo: stat_other.go).
func StatOf(fi fs.FileInfo) (Stat, bool) {
	if fi == nil {
		return Stat{}, false
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok || st == nil {
		return Stat{}, false
	}
	return Stat{
		Dev: uint64(st.Dev), Ino: st.Ino, Nlink: uint64(st.Nlink),
		Uid: st.Uid, Gid: st.Gid,
		Atime: time.Unix(st.Atim.Sec, st.Atim.Nsec),
		Mtime: time.Unix(st.Mtim.Sec, st.Mtim.Nsec),
		Ctime: time.Unix(st.Ctim.Sec, st.Ctim.Nsec),
	}, true
}
