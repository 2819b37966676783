package vfs

import (
	"io/fs"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// chmodNode changes the mode of the handle's own inode; symlinks are refused.
func chmodNode(n *node, mode uint32) error {
	if n.isLink() {
		return syscall.EOPNOTSUPP
	}
	err := fchmodat2(n.fd, mode, unix.AT_EMPTY_PATH)
	if err == unix.ENOSYS || err == unix.EINVAL {
		// Before Linux 6.6: through the handle's procfs link; the handle is
		// not a symlink, so the magic link lands on the inode itself.
		err = unix.Chmod(procFdPath(n.fd), mode)
	}
	return err
}

// target resolves unsafePath without following a final symlink, for a
// metadata change, and checks it is in the writable root mount (a mount
// point itself is refused).
func (fsys *FS) target(unsafePath string) (frame, error) {
	f, err := fsys.resolve(unsafePath, false)
	if err != nil {
		return frame{}, err
	}
	if f.n == nil {
		return frame{}, noNodeErr(f)
	}
	if f.m != fsys.root {
		f.n.close()
		return frame{}, ErrNotRootMount
	}
	if !f.m.writable {
		f.n.close()
		return frame{}, syscall.EROFS
	}
	return f, nil
}

// Lchtimes sets the access and modification times, to the nanosecond, of
// the entry at the container path unsafePath (files, symlinks and
// directories), through the entry's own handle: a final symlink is never
// followed. A zero time.Time leaves that time unchanged (UTIME_OMIT), as
// os.Chtimes does.
func (fsys *FS) Lchtimes(unsafePath string, atime, mtime time.Time) error {
	f, err := fsys.target(unsafePath)
	if err != nil {
		return pathErr("chtimes", unsafePath, err)
	}
	defer f.n.close()
	ts := []unix.Timespec{timespec(atime), timespec(mtime)}
	if err := unix.UtimesNanoAt(f.n.fd, "", ts, unix.AT_EMPTY_PATH); err != nil {
		return pathErr("chtimes", unsafePath, err)
	}
	return nil
}

// Lchown changes the owner of the entry at the container path unsafePath
// through its own handle; a final symlink is changed, never followed.
func (fsys *FS) Lchown(unsafePath string, uid, gid int) error {
	f, err := fsys.target(unsafePath)
	if err != nil {
		return pathErr("chown", unsafePath, err)
	}
	defer f.n.close()
	if err := unix.Fchownat(f.n.fd, "", uid, gid, unix.AT_EMPTY_PATH); err != nil {
		return pathErr("chown", unsafePath, err)
	}
	return nil
}

// Chmod changes the permission bits (and setuid, setgid, sticky) of the
// entry at the container path unsafePath through its own handle. A final
// symlink is refused (EOPNOTSUPP), never followed.
func (fsys *FS) Chmod(unsafePath string, mode fs.FileMode) error {
	f, err := fsys.target(unsafePath)
	if err != nil {
		return pathErr("chmod", unsafePath, err)
	}
	defer f.n.close()
	if err := chmodNode(f.n, unixPerm(mode)); err != nil {
		return pathErr("chmod", unsafePath, err)
	}
	return nil
}

// timespec converts t exactly (no UnixNano overflow); zero is UTIME_OMIT.
func timespec(t time.Time) unix.Timespec {
	if t.IsZero() {
		return unix.Timespec{Sec: 0, Nsec: unix.UTIME_OMIT}
	}
	return unix.Timespec{Sec: t.Unix(), Nsec: int64(t.Nanosecond())}
}
