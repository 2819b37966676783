package vfs

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"syscall"

	"golang.org/x/sys/unix"
)

// errLinked is the reason a file with more than one name is not written in
// place: the other names would see the change.
var errLinked = errors.New("file has other hard links")

// errPrivs is the reason a setuid or setgid file, or one with file
// capabilities, is not written in place: the kernel may drop those on a
// write, so the file would not keep its metadata.
var errPrivs = errors.New("file has setuid, setgid or capabilities")

// notInPlace wraps reason so that errors.Is matches both ErrNotInPlace and
// the reason.
func notInPlace(reason error) error { return fmt.Errorf("%w: %w", ErrNotInPlace, reason) }

// Overwrite writes data into the existing regular file at the container
// path unsafePath, in place: the inode, mode, owner and xattrs are kept;
// the modification and change times are the kernel's (the caller restores
// the mtime it wants). The path is resolved like Lstat: a final symlink is
// never followed. Only a regular file of the writable root mount with
// exactly one link, no setuid or setgid bit and no security.capability
// xattr is written; anything else gives an error matching ErrNotInPlace
// (and the reason: ErrNotRootMount, syscall.EROFS, syscall.EISDIR,
// ErrNotRegular) before any byte is written, and the caller falls back to
// WriteFile. A missing file gives fs.ErrNotExist.
//
// The file is reopened for reading and writing from its O_PATH handle,
// checked to be the same inode with one link, written from the first byte
// that differs from data (an append writes only the new tail; putting back
// a prefix only truncates) and then truncated to len(data) — never
// truncated to zero first, and never renamed over, the
// two cases where ext4's auto_da_alloc forces the data out. It costs no new
// inode, where WriteFile creates one and unlinks one. A failure while
// writing may leave the file partly written: the caller keeps what it needs
// to write it again. The link count is checked, not locked: the caller must
// make sure no untrusted process runs in the container meanwhile, since a
// hard link made between the check and the write would see the change.
//
// Through a kernel overlay the open copies a lower file up first (so a
// lower layer is never written); a lower file with other hard links is
// refused before that.
func (fsys *FS) Overwrite(unsafePath string, data []byte) error {
	if err := fsys.overwrite(unsafePath, data); err != nil {
		return pathErr("overwrite", unsafePath, err)
	}
	return nil
}

func (fsys *FS) overwrite(unsafePath string, data []byte) error {
	f, err := fsys.target(unsafePath)
	if err != nil {
		if errors.Is(err, ErrNotRootMount) || errors.Is(err, syscall.EROFS) {
			return notInPlace(err)
		}
		return err
	}
	defer f.n.close()
	if err := canOverwrite(&f.n.st); err != nil {
		return err
	}
	fd, size, err := reopenWrite(f.n)
	if err != nil {
		return err
	}
	off, err := samePrefix(fd, data, size)
	if err == nil {
		err = pwriteAll(fd, data[off:], off)
	}
	if err == nil && size > int64(len(data)) {
		err = unix.Ftruncate(fd, int64(len(data)))
	}
	if cerr := unix.Close(fd); err == nil {
		err = cerr
	}
	return err
}

// canOverwrite checks the stat of a file Overwrite may write in place.
func canOverwrite(st *syscall.Stat_t) error {
	switch st.Mode & syscall.S_IFMT {
	case syscall.S_IFREG:
	case syscall.S_IFDIR:
		return notInPlace(syscall.EISDIR)
	default:
		return notInPlace(ErrNotRegular)
	}
	if st.Nlink != 1 {
		return notInPlace(errLinked)
	}
	if st.Mode&(syscall.S_ISUID|syscall.S_ISGID) != 0 {
		return notInPlace(errPrivs)
	}
	return nil
}

// reopenWrite opens the regular file behind the O_PATH handle n for writing
// (no O_TRUNC), as reopen does for reading, and checks the descriptor is
// still the same inode with one link and no file capabilities. It returns
// the file's size at open.
func reopenWrite(n *node) (int, int64, error) {
	if !n.isReg() {
		return -1, 0, notInPlace(ErrNotRegular)
	}
	// The handle is a regular file (statx): the magic link lands on that
	// inode, so following it is safe.
	fd, err := unix.Open(procFdPath(n.fd), unix.O_RDWR|unix.O_CLOEXEC|unix.O_NOCTTY|unix.O_NONBLOCK, 0)
	if err == unix.ETXTBSY {
		return -1, 0, notInPlace(err) // a running executable: WriteFile can still replace it
	}
	if err != nil {
		return -1, 0, err
	}
	var st syscall.Stat_t
	if err := syscall.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return -1, 0, err
	}
	err = canOverwrite(&st)
	if err == nil && (st.Ino != n.st.Ino || st.Dev != n.st.Dev) {
		// Not the inode we resolved (an overlay on different filesystems
		// may renumber a file it copies up): nothing was written.
		err = notInPlace(ErrNotRegular)
	}
	if err == nil {
		switch _, xerr := unix.Fgetxattr(fd, "security.capability", nil); xerr {
		case unix.ENODATA, unix.EOPNOTSUPP:
		case nil:
			err = notInPlace(errPrivs)
		default:
			err = notInPlace(xerr)
		}
	}
	if err != nil {
		unix.Close(fd)
		return -1, 0, err
	}
	return fd, st.Size, nil
}

// samePrefix returns how many leading bytes of the file fd (of size bytes)
// already equal data's, reading at most min(size, len(data)) bytes: those
// are not written again, so an append writes only the new tail and putting
// back a prefix of the content only truncates (no page of the file is
// dirtied for nothing).
func samePrefix(fd int, data []byte, size int64) (int64, error) {
	n := min(size, int64(len(data)))
	buf := make([]byte, min(n, 64<<10))
	var off int64
	for off < n {
		k, err := unix.Pread(fd, buf[:min(int64(len(buf)), n-off)], off)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return 0, err
		}
		if k == 0 {
			break // shorter than fstat said
		}
		if i := firstDiff(buf[:k], data[off:off+int64(k)]); i >= 0 {
			return off + int64(i), nil
		}
		off += int64(k)
	}
	return off, nil
}

// firstDiff returns the index of the first byte where a and b (of the same
// length) differ, or -1: bytes.Equal on 4 KiB blocks, then a byte scan of
// the first block that differs.
func firstDiff(a, b []byte) int {
	const block = 4 << 10
	for i := 0; i < len(a); i += block {
		j := min(i+block, len(a))
		if bytes.Equal(a[i:j], b[i:j]) {
			continue
		}
		for k := i; k < j; k++ {
			if a[k] != b[k] {
				return k
			}
		}
	}
	return -1
}

// pwriteAll writes data at offset base of fd.
func pwriteAll(fd int, data []byte, base int64) error {
	for off := 0; off < len(data); {
		k, err := unix.Pwrite(fd, data[off:], base+int64(off))
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		if k == 0 {
			return io.ErrShortWrite
		}
		off += k
	}
	return nil
}
