package vfs

import (
	"io/fs"
	"syscall"
	"time"
)

// Stat is the inode metadata of an entry beyond fs.FileInfo: its identity,
// link count, owner and times, as the kernel reported them. Callers that
// journal and compare entries (cacerts) use it instead of reading a
// platform's stat structure out of FileInfo.Sys.
type Stat struct {
	Dev, Ino uint64
	Nlink    uint64
	Uid, Gid uint32
	Atime    time.Time
	Mtime    time.Time
	Ctime    time.Time
}

// StatOf returns the Stat behind fi, a FileInfo this package (or the os
// package) returned; false for any other FileInfo.
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
