package vfs

import (
	"errors"
	"runtime"
	"strconv"
	"sync/atomic"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// node is a handle on one entry of a mount source: an O_PATH descriptor and
// the fstat taken when it was opened. For a directory merged from overlay
// layers, layers holds one handle per layer, topmost first, and fd is
// layers[0].fd.
type node struct {
	fd     int
	st     syscall.Stat_t
	mntID  uint64
	layers []layerDir
	owned  bool // closed by the walker that opened it (mount roots are not)
	// readable: fd is an O_RDONLY directory, not O_PATH (overlay layers).
	readable bool
}

type layerDir struct {
	fd    int
	xwh   bool   // opaque="x": may hold xattr whiteouts
	mntID uint64 // host mount of the layer, for the fallback's RESOLVE_NO_XDEV
}

func (n *node) mode() uint32 { return n.st.Mode & syscall.S_IFMT }
func (n *node) isDir() bool  { return n.mode() == syscall.S_IFDIR }
func (n *node) isLink() bool { return n.mode() == syscall.S_IFLNK }
func (n *node) isReg() bool  { return n.mode() == syscall.S_IFREG }

// close releases the node's descriptors when the node is owned.
func (n *node) close() {
	if n == nil || !n.owned {
		return
	}
	n.owned = false
	if len(n.layers) > 0 {
		for _, l := range n.layers {
			unix.Close(l.fd)
		}
		n.layers = nil
		return
	}
	unix.Close(n.fd)
}

// sysOps are the host primitives; resolver.openat2 selects how one name is
// looked up under a directory handle.
type sysOps struct {
	openat2 bool
}

const maxRetries = 32

// openChild opens the single name under dirfd as an O_PATH|O_NOFOLLOW
// handle, without following any symlink or crossing a host mount.
func (s *sysOps) openChild(dirfd int, parentMnt uint64, name string) (*node, error) {
	return s.open(dirfd, parentMnt, name, unix.O_PATH)
}

// openLayerDir is openChild for overlay layers, where directories' xattrs
// are read on every lookup: a directory is opened O_RDONLY|O_DIRECTORY, so
// fgetxattr works on it without a trip through procfs (O_DIRECTORY fails
// with ENOTDIR before any FIFO or device would be opened, O_NOFOLLOW with
// ELOOP on a symlink); anything else, or an unreadable directory, is opened
// O_PATH as by openChild.
func (s *sysOps) openLayerChild(dirfd int, parentMnt uint64, name string) (*node, error) {
	n, err := s.open(dirfd, parentMnt, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NONBLOCK|unix.O_NOCTTY)
	switch err {
	case nil:
		n.readable = true
		return n, nil
	case unix.ENOTDIR, unix.ELOOP, unix.EACCES, unix.EPERM:
		return s.openChild(dirfd, parentMnt, name)
	}
	return nil, err
}

// open opens the single name under dirfd with flags (O_NOFOLLOW and
// O_CLOEXEC added), without following any symlink or crossing a host mount.
func (s *sysOps) open(dirfd int, parentMnt uint64, name string, flags int) (*node, error) {
	if name == "" || name == "." || name == ".." || len(name) > unix.NAME_MAX {
		if len(name) > unix.NAME_MAX {
			return nil, syscall.ENAMETOOLONG
		}
		return nil, syscall.EINVAL
	}
	for i := 0; i < len(name); i++ {
		if name[i] == '/' || name[i] == 0 {
			return nil, syscall.EINVAL
		}
	}
	var fd int
	var err error
	if s.openat2 {
		how := unix.OpenHow{
			Flags:   uint64(flags | unix.O_NOFOLLOW | unix.O_CLOEXEC),
			Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS | unix.RESOLVE_NO_XDEV,
		}
		for i := 0; ; i++ {
			fd, err = unix.Openat2(dirfd, name, &how)
			if (err != unix.EAGAIN && err != unix.EINTR) || i >= maxRetries {
				break
			}
		}
	} else {
		for i := 0; ; i++ {
			fd, err = unix.Openat(dirfd, name, flags|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
			if err != unix.EINTR || i >= maxRetries {
				break
			}
		}
	}
	if err != nil {
		return nil, err
	}
	n := &node{fd: fd, owned: true}
	if err := statNode(n); err != nil {
		unix.Close(fd)
		return nil, err
	}
	if !s.openat2 && parentMnt != 0 && n.mntID != parentMnt {
		// RESOLVE_NO_XDEV for the fallback walker.
		unix.Close(fd)
		return nil, syscall.EXDEV
	}
	return n, nil
}

// statNode fills n.st and n.mntID from statx on n.fd.
func statNode(n *node) error {
	var sx unix.Statx_t
	err := unix.Statx(n.fd, "", unix.AT_EMPTY_PATH|unix.AT_SYMLINK_NOFOLLOW|unix.AT_STATX_SYNC_AS_STAT,
		unix.STATX_BASIC_STATS|unix.STATX_MNT_ID, &sx)
	if err != nil {
		return err
	}
	n.st = statFromStatx(&sx)
	n.mntID = sx.Mnt_id
	return nil
}

func statFromStatx(sx *unix.Statx_t) syscall.Stat_t {
	var st syscall.Stat_t
	st.Dev = unix.Mkdev(sx.Dev_major, sx.Dev_minor)
	st.Ino = sx.Ino
	setUint(&st.Nlink, uint64(sx.Nlink))
	st.Mode = uint32(sx.Mode)
	st.Uid = sx.Uid
	st.Gid = sx.Gid
	st.Rdev = unix.Mkdev(sx.Rdev_major, sx.Rdev_minor)
	st.Size = int64(sx.Size)
	setInt(&st.Blksize, int64(sx.Blksize))
	st.Blocks = int64(sx.Blocks)
	st.Atim = syscall.Timespec{Sec: sx.Atime.Sec, Nsec: int64(sx.Atime.Nsec)}
	st.Mtim = syscall.Timespec{Sec: sx.Mtime.Sec, Nsec: int64(sx.Mtime.Nsec)}
	st.Ctim = syscall.Timespec{Sec: sx.Ctime.Sec, Nsec: int64(sx.Ctime.Nsec)}
	return st
}

// setUint and setInt store into Stat_t fields whose width differs by
// architecture.
func setUint[T ~uint32 | ~uint64](dst *T, v uint64) { *dst = T(v) }
func setInt[T ~int32 | ~int64](dst *T, v int64)     { *dst = T(v) }

// readLink reads the target of the symlink handle fd.
func readLink(fd int) (string, error) {
	buf := make([]byte, unix.PathMax)
	n, err := unix.Readlinkat(fd, "", buf)
	if err != nil {
		return "", err
	}
	if n >= len(buf) {
		return "", syscall.ENAMETOOLONG
	}
	return string(buf[:n]), nil
}

// procFdPath names the handle fd through /proc/self/fd, to reopen it or
// read its xattrs (fgetxattr refuses O_PATH handles). The caller checked at
// New that /proc is procfs. Only used on regular files and directories: the
// magic link is never resolved on a symlink handle.
func procFdPath(fd int) string {
	return "/proc/self/fd/" + strconv.Itoa(fd)
}

// reopen opens the regular file or directory behind the O_PATH handle n for
// reading, checking the new descriptor is the same inode.
func reopen(n *node) (int, error) {
	flags := unix.O_RDONLY | unix.O_CLOEXEC | unix.O_NOCTTY | unix.O_NONBLOCK
	switch {
	case n.isDir():
		// "." under a directory handle: no traversal at all.
		fd, err := unix.Openat(n.fd, ".", flags|unix.O_DIRECTORY, 0)
		if err != nil {
			return -1, err
		}
		return fd, nil
	case n.isReg():
	default:
		return -1, ErrNotRegular
	}
	// The handle is a regular file (statx): the magic link lands on that
	// inode, so following it is safe.
	fd, err := unix.Open(procFdPath(n.fd), flags, 0)
	if err != nil {
		return -1, err
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return -1, err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG || st.Ino != n.st.Ino || st.Dev != n.st.Dev {
		unix.Close(fd)
		return -1, ErrNotRegular
	}
	return fd, nil
}

// getXattr reads one xattr of the regular file or directory handle n;
// absent gives ("", false, nil).
func getXattr(n *node, name string) (string, bool, error) {
	if !n.isDir() && !n.isReg() {
		return "", false, nil
	}
	buf := make([]byte, 256)
	for {
		var sz int
		var err error
		if n.readable {
			sz, err = unix.Fgetxattr(n.fd, name, buf)
		} else {
			sz, err = fgetxattrPath(n.fd, name, buf)
		}
		switch {
		case err == unix.ENODATA || err == unix.EOPNOTSUPP:
			return "", false, nil
		case err == unix.ERANGE && len(buf) < 64<<10:
			buf = make([]byte, len(buf)*8)
			continue
		case err != nil:
			return "", false, err
		}
		return string(buf[:sz]), true, nil
	}
}

// xattrArgs is struct xattr_args of getxattrat(2).
type xattrArgs struct {
	value uint64
	size  uint32
	flags uint32
}

// noGetxattrat is set once getxattrat(2) (Linux 6.13) was found missing
// or refusing O_PATH handles.
var noGetxattrat atomic.Bool

// fgetxattrPath reads an xattr of the O_PATH handle fd: getxattrat with
// AT_EMPTY_PATH on the handle itself, or through its procfs link before
// Linux 6.13 (fgetxattr refuses O_PATH handles).
func fgetxattrPath(fd int, name string, buf []byte) (int, error) {
	if !noGetxattrat.Load() {
		empty, err := unix.BytePtrFromString("")
		if err != nil {
			return 0, err
		}
		pname, err := unix.BytePtrFromString(name)
		if err != nil {
			return 0, err
		}
		args := xattrArgs{value: uint64(uintptr(unsafe.Pointer(&buf[0]))), size: uint32(len(buf))}
		r, _, e := unix.Syscall6(unix.SYS_GETXATTRAT, uintptr(fd), uintptr(unsafe.Pointer(empty)),
			uintptr(unix.AT_EMPTY_PATH), uintptr(unsafe.Pointer(pname)), uintptr(unsafe.Pointer(&args)), unsafe.Sizeof(args))
		runtime.KeepAlive(buf)
		if e == 0 {
			return int(r), nil
		}
		if e != unix.ENOSYS && e != unix.EBADF {
			return 0, e
		}
		// Missing, or refusing O_PATH handles (EBADF): use procfs.
		noGetxattrat.Store(true)
	}
	return unix.Getxattr(procFdPath(fd), name, buf)
}

// fchmodat2 is fchmodat2(2) (Linux 6.6): with AT_EMPTY_PATH it changes the
// mode of the handle's own inode and refuses symlinks with EOPNOTSUPP.
func fchmodat2(fd int, mode uint32, flags int) error {
	p, err := unix.BytePtrFromString("")
	if err != nil {
		return err
	}
	_, _, e := unix.Syscall6(unix.SYS_FCHMODAT2, uintptr(fd), uintptr(unsafe.Pointer(p)), uintptr(mode), uintptr(flags), 0, 0)
	if e != 0 {
		return e
	}
	return nil
}

func isErrno(err error, e syscall.Errno) bool { return errors.Is(err, e) }
