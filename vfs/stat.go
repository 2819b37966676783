package vfs

import "time"

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
