package vfs

import (
	"crypto/rand"
	"encoding/hex"
	"io/fs"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// writable checks that the directory frame d can be written through.
func (fsys *FS) writable(d *frame) error {
	if d.n == nil {
		return noNodeErr(*d)
	}
	if d.m != fsys.root {
		return ErrNotRootMount
	}
	if !d.m.writable {
		return syscall.EROFS
	}
	if !d.n.isDir() {
		return syscall.ENOTDIR
	}
	return nil
}

// parentFor resolves everything but the last component of unsafePath for a
// write, and checks the parent is a writable directory of the root mount
// and the name is not a mount point. The caller closes the walker.
func (fsys *FS) parentFor(unsafePath string) (*walker, string, error) {
	if err := checkPath(unsafePath); err != nil {
		return nil, "", err
	}
	if fsys.mounts == nil {
		return nil, "", fs.ErrClosed
	}
	w := fsys.newWalker()
	comps := splitPath(unsafePath)
	if len(comps) == 0 {
		comps = []string{"."}
	}
	name, err := w.walkParent(comps)
	if err == nil {
		err = fsys.checkName(w, name)
	}
	if err != nil {
		w.close()
		return nil, "", err
	}
	return w, name, nil
}

func (fsys *FS) checkName(w *walker, name string) error {
	if err := fsys.writable(w.top()); err != nil {
		return err
	}
	if name == "." || name == ".." {
		return syscall.EINVAL
	}
	if len(name) > unix.NAME_MAX {
		return syscall.ENAMETOOLONG
	}
	if _, ok := fsys.mounts[childPath(w.top().path, name)]; ok {
		return ErrNotRootMount
	}
	return nil
}

// WriteFile writes data to the file at the container path unsafePath,
// never in place: a new inode is created in the same directory and renamed
// over the name. When it replaces a file, the new one keeps the old one's
// mode, owner and xattrs (overlay bookkeeping xattrs excepted) and perm is
// ignored; a new file gets perm (umask not applied) and the root owner (WithRootOwner). A
// final symlink is followed inside the container only to an existing
// regular file of the root mount; nothing is ever created through a
// dangling link (fs.ErrNotExist). Directories give EISDIR, other types
// ErrNotRegular.
func (fsys *FS) WriteFile(unsafePath string, data []byte, perm fs.FileMode) error {
	if err := fsys.writeFile(unsafePath, data, perm); err != nil {
		return pathErr("writefile", unsafePath, err)
	}
	return nil
}

func (fsys *FS) writeFile(unsafePath string, data []byte, perm fs.FileMode) error {
	if strings.HasSuffix(unsafePath, "/") {
		return syscall.EISDIR
	}
	if err := checkPath(unsafePath); err != nil {
		return err
	}
	if fsys.mounts == nil {
		return fs.ErrClosed
	}
	w := fsys.newWalker()
	defer w.close()
	comps := splitPath(unsafePath)
	if len(comps) == 0 {
		return syscall.EISDIR
	}
	viaLink := false
	for {
		name, err := w.walkParent(comps)
		if err != nil {
			return err
		}
		if name == "." || name == ".." {
			return syscall.EISDIR
		}
		// A final symlink is followed wherever it is; the entry it lands
		// on must then be in the writable root mount.
		c, err := w.child(name)
		if isErrno(err, syscall.ENOENT) {
			if viaLink {
				return syscall.ENOENT // never create through a dangling link
			}
			if err := fsys.checkName(w, name); err != nil {
				return err
			}
			return fsys.replace(w.top().n, name, data, perm, nil)
		}
		if err != nil {
			return err
		}
		if c.n != nil && c.n.isLink() {
			if comps, err = w.expandLink(c); err != nil {
				return err
			}
			if len(comps) == 0 {
				return syscall.EISDIR // a link to "/"
			}
			viaLink = true
			continue
		}
		if err := fsys.checkName(w, name); err != nil {
			c.n.close()
			return err
		}
		defer c.n.close()
		switch {
		case c.n == nil || c.n.isDir(): // nil: a directory on the way to a mount
			return syscall.EISDIR
		case !c.n.isReg():
			return ErrNotRegular
		}
		return fsys.replace(w.top().n, name, data, perm, c.n)
	}
}

// replace writes data to a new inode in dir and renames it over name,
// taking metadata from old when set.
func (fsys *FS) replace(dir *node, name string, data []byte, perm fs.FileMode, old *node) error {
	var rnd [8]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return err
	}
	tmp := ".vfs-" + hex.EncodeToString(rnd[:])
	fd, err := unix.Openat(dir.fd, tmp, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return err
	}
	ok := false
	defer func() {
		if fd >= 0 {
			unix.Close(fd)
		}
		if !ok {
			unix.Unlinkat(dir.fd, tmp, 0)
		}
	}()
	for off := 0; off < len(data); {
		k, err := unix.Write(fd, data[off:])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		off += k
	}
	uid, gid, mode := fsys.cfg.rootUID, fsys.cfg.rootGID, uint32(unixPerm(perm))
	if old != nil {
		uid, gid, mode = int(old.st.Uid), int(old.st.Gid), old.st.Mode&0o7777
	}
	if uid >= 0 || gid >= 0 {
		if err := unix.Fchown(fd, uid, gid); err != nil {
			return err
		}
	}
	if err := unix.Fchmod(fd, mode); err != nil {
		return err
	}
	if old != nil {
		if err := copyXattrs(old, fd); err != nil {
			return err
		}
	}
	if err := unix.Close(fd); err != nil {
		fd = -1
		return err
	}
	fd = -1
	if err := unix.Renameat(dir.fd, tmp, dir.fd, name); err != nil {
		return err
	}
	ok = true
	return nil
}

func unixPerm(p fs.FileMode) uint32 {
	m := uint32(p.Perm())
	if p&fs.ModeSetuid != 0 {
		m |= syscall.S_ISUID
	}
	if p&fs.ModeSetgid != 0 {
		m |= syscall.S_ISGID
	}
	if p&fs.ModeSticky != 0 {
		m |= syscall.S_ISVTX
	}
	return m
}

// copyXattrs copies the xattrs of the regular file old onto fd, except
// overlay's bookkeeping (never copied: docs/design.md).
func copyXattrs(old *node, fd int) error {
	p := procFdPath(old.fd)
	buf := make([]byte, 4096)
	var n int
	var err error
	for {
		n, err = unix.Listxattr(p, buf)
		if err == unix.ERANGE && len(buf) < 1<<20 {
			buf = make([]byte, len(buf)*4)
			continue
		}
		break
	}
	if err == unix.EOPNOTSUPP || err == unix.ENOTSUP {
		return nil
	}
	if err != nil {
		return err
	}
	for _, name := range strings.Split(string(buf[:n]), "\x00") {
		if name == "" || strings.HasPrefix(name, "trusted.overlay.") || strings.HasPrefix(name, "user.overlay.") {
			continue
		}
		val := make([]byte, 64<<10)
		k, err := unix.Getxattr(p, name, val)
		if err == unix.ENODATA {
			continue
		}
		if err != nil {
			return err
		}
		if err := unix.Fsetxattr(fd, name, val[:k], 0); err != nil {
			return err
		}
	}
	return nil
}

// MkdirAll creates the directory at the container path unsafePath and any
// missing parents in the root mount, with perm (umask not applied) and the
// root owner, and returns the container path of the topmost directory it
// created ("" when all existed), also on error, so the caller can undo a
// partial creation. Symlinks on the way are followed inside the container,
// but no directory is created through a dangling link.
func (fsys *FS) MkdirAll(unsafePath string, perm fs.FileMode) (string, error) {
	created, err := fsys.mkdirAll(unsafePath, perm)
	if err != nil {
		return created, pathErr("mkdir", unsafePath, err)
	}
	return created, nil
}

func (fsys *FS) mkdirAll(unsafePath string, perm fs.FileMode) (string, error) {
	if err := checkPath(unsafePath); err != nil {
		return "", err
	}
	if fsys.mounts == nil {
		return "", fs.ErrClosed
	}
	w := fsys.newWalker()
	defer w.close()
	comps := splitPath(unsafePath)
	own := len(comps) // components of unsafePath itself still to walk
	created := ""
	for len(comps) > 0 {
		name := comps[0]
		fromLink := len(comps) > own
		comps = comps[1:]
		if !fromLink {
			own--
		}
		top := w.top()
		switch name {
		case ".", "..":
			if top.n != nil && !top.n.isDir() {
				return created, syscall.ENOTDIR
			}
			if name == ".." {
				w.pop()
			}
			continue
		}
		f, err := w.child(name)
		if isErrno(err, syscall.ENOENT) {
			if fromLink {
				return created, syscall.ENOENT
			}
			if err := fsys.checkName(w, name); err != nil {
				return created, err
			}
			err = unix.Mkdirat(top.n.fd, name, 0o700)
			if err != nil && err != unix.EEXIST {
				return created, err
			}
			mine := err == nil
			f, err = w.child(name)
			if err != nil {
				return created, err
			}
			if mine {
				if f.n == nil || !f.n.isDir() {
					f.n.close()
					return created, syscall.ENOTDIR
				}
				if err := fsys.setNewDirMeta(f.n, perm); err != nil {
					f.n.close()
					return created, err
				}
				if created == "" {
					created = f.path
				}
			}
		} else if err != nil {
			return created, err
		}
		if f.n != nil && f.n.isLink() {
			more, err := w.expandLink(f)
			if err != nil {
				return created, err
			}
			comps = append(more, comps...)
			continue
		}
		if f.n != nil && !f.n.isDir() {
			f.n.close()
			return created, syscall.ENOTDIR
		}
		w.push(f)
	}
	return created, nil
}

func (fsys *FS) setNewDirMeta(n *node, perm fs.FileMode) error {
	if fsys.cfg.rootUID >= 0 || fsys.cfg.rootGID >= 0 {
		if err := unix.Fchownat(n.fd, "", fsys.cfg.rootUID, fsys.cfg.rootGID, unix.AT_EMPTY_PATH); err != nil {
			return err
		}
	}
	if err := chmodNode(n, unixPerm(perm)); err != nil {
		return err
	}
	return statNode(n)
}

// Remove removes the file, symlink or empty directory at the container
// path unsafePath in the root mount (unlinkat). A final symlink is removed,
// never followed; a trailing slash requires a directory.
func (fsys *FS) Remove(unsafePath string) error {
	if err := fsys.remove(unsafePath); err != nil {
		return pathErr("remove", unsafePath, err)
	}
	return nil
}

func (fsys *FS) remove(unsafePath string) error {
	trimmed := strings.TrimRight(unsafePath, "/")
	mustDir := trimmed != unsafePath
	if trimmed == "" {
		return syscall.EBUSY
	}
	w, name, err := fsys.parentFor(trimmed)
	if err != nil {
		return err
	}
	defer w.close()
	dir := w.top().n
	if mustDir {
		n, err := fsys.sys.openChild(dir.fd, dir.mntID, name)
		if err != nil {
			return err
		}
		isDir := n.isDir()
		n.close()
		if !isDir {
			return syscall.ENOTDIR
		}
		return fsys.rmdir(w, name)
	}
	err = unix.Unlinkat(dir.fd, name, 0)
	if err == unix.EISDIR {
		err = fsys.rmdir(w, name)
	}
	return err
}

// rmdir removes the directory name under the walker's top frame and
// forgets it in the cache.
func (fsys *FS) rmdir(w *walker, name string) error {
	if err := unix.Unlinkat(w.top().n.fd, name, unix.AT_REMOVEDIR); err != nil {
		return err
	}
	if fsys.cache != nil {
		fsys.cache.forget(childPath(w.top().path, name))
	}
	return nil
}

// Symlink creates at the container path newname a symlink whose target is
// oldname, stored verbatim, owned by the root owner. An existing entry
// gives EEXIST.
func (fsys *FS) Symlink(oldname, newname string) error {
	if err := fsys.symlink(oldname, newname); err != nil {
		return &fs.PathError{Op: "symlink", Path: newname, Err: err}
	}
	return nil
}

func (fsys *FS) symlink(oldname, newname string) error {
	if len(oldname) >= maxPath || strings.IndexByte(oldname, 0) >= 0 {
		return syscall.ENAMETOOLONG
	}
	w, name, err := fsys.parentFor(newname)
	if err != nil {
		return err
	}
	defer w.close()
	dir := w.top().n
	if err := unix.Symlinkat(oldname, dir.fd, name); err != nil {
		return err
	}
	if fsys.cfg.rootUID < 0 && fsys.cfg.rootGID < 0 {
		return nil
	}
	return unix.Fchownat(dir.fd, name, fsys.cfg.rootUID, fsys.cfg.rootGID, unix.AT_SYMLINK_NOFOLLOW)
}
