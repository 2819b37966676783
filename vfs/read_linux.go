package vfs

import (
	"io"
	"io/fs"
	"os"
	"path"
	"sort"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

var (
	_ fs.FS         = (*FS)(nil)
	_ fs.StatFS     = (*FS)(nil)
	_ fs.ReadDirFS  = (*FS)(nil)
	_ fs.ReadFileFS = (*FS)(nil)
	_ fs.ReadLinkFS = (*FS)(nil)
)

func pathErr(op, p string, err error) error {
	return &fs.PathError{Op: op, Path: p, Err: err}
}

// resolve walks unsafePath from the container's root and returns the
// result frame; the caller closes it with f.n.close().
func (fsys *FS) resolve(unsafePath string, follow bool) (frame, error) {
	w, err := fsys.walkerFor(unsafePath)
	if err != nil {
		return frame{}, err
	}
	defer w.close()
	if err := w.walk(splitPath(unsafePath), follow); err != nil {
		return frame{}, err
	}
	return w.takeTop()
}

// walkerFor checks unsafePath and returns a walker at the container's
// root for it; the caller closes it.
func (fsys *FS) walkerFor(unsafePath string) (*walker, error) {
	if err := checkPath(unsafePath); err != nil {
		return nil, err
	}
	if fsys.mounts == nil {
		return nil, fs.ErrClosed
	}
	return fsys.newWalker(), nil
}

// resolveValid is resolve for the io/fs methods: name must satisfy
// fs.ValidPath.
func (fsys *FS) resolveValid(op, name string, follow bool) (frame, error) {
	if !fs.ValidPath(name) {
		return frame{}, pathErr(op, name, fs.ErrInvalid)
	}
	f, err := fsys.resolve(name, follow)
	if err != nil {
		return frame{}, pathErr(op, name, err)
	}
	if f.n == nil {
		return frame{}, pathErr(op, name, noNodeErr(f))
	}
	return f, nil
}

func baseName(name string) string {
	if name == "." || name == "" {
		return "."
	}
	return path.Base(name)
}

// Stat returns the entry at name, following symlinks inside the container.
func (fsys *FS) Stat(name string) (fs.FileInfo, error) {
	f, err := fsys.resolveValid("stat", name, true)
	if err != nil {
		return nil, err
	}
	defer f.n.close()
	return &fileInfo{name: baseName(name), st: f.n.st}, nil
}

// Lstat returns the entry at name without following a final symlink.
func (fsys *FS) Lstat(name string) (fs.FileInfo, error) {
	if !fs.ValidPath(name) {
		return nil, pathErr("lstat", name, fs.ErrInvalid)
	}
	f, err := fsys.resolveLstat(name)
	if err != nil {
		return nil, pathErr("lstat", name, err)
	}
	if f.n == nil {
		return nil, pathErr("lstat", name, noNodeErr(f))
	}
	defer f.n.close()
	return &fileInfo{name: baseName(name), st: f.n.st}, nil
}

// resolveLstat is resolve(unsafePath, false) that stats a plain final name
// in a host directory with one statx under its parent's handle instead of
// opening it (open, statx, close). Where the name is a mount point, is
// missing on the way to one, or lands on another host mount, it opens the
// name as resolve does, with the same result.
func (fsys *FS) resolveLstat(unsafePath string) (frame, error) {
	w, err := fsys.walkerFor(unsafePath)
	if err != nil {
		return frame{}, err
	}
	defer w.close()
	comps := splitPath(unsafePath)
	if len(comps) == 0 {
		return w.takeTop()
	}
	name, err := w.walkParent(comps)
	if err != nil {
		return frame{}, err
	}
	if top := w.top(); name != "." && name != ".." && top.m.kind == kindHandle && len(name) <= unix.NAME_MAX {
		p := childPath(top.path, name)
		if _, mp := fsys.mounts[p]; !mp {
			var sx unix.Statx_t
			err := unix.Statx(top.n.fd, name, unix.AT_SYMLINK_NOFOLLOW|unix.AT_NO_AUTOMOUNT|unix.AT_STATX_SYNC_AS_STAT,
				unix.STATX_BASIC_STATS|unix.STATX_MNT_ID, &sx)
			switch {
			case err == nil && sx.Mnt_id == top.n.mntID:
				return frame{path: p, m: top.m, n: &node{fd: -1, st: statFromStatx(&sx), mntID: sx.Mnt_id}}, nil
			case err == unix.ENOENT && !fsys.hasMountUnder(p):
				return frame{}, err
			}
		}
	}
	if err := w.walk([]string{name}, false); err != nil {
		return frame{}, err
	}
	return w.takeTop()
}

// ReadLink returns the target of the symlink at name, as stored.
func (fsys *FS) ReadLink(name string) (string, error) {
	f, err := fsys.resolveValid("readlink", name, false)
	if err != nil {
		return "", err
	}
	defer f.n.close()
	if !f.n.isLink() {
		return "", pathErr("readlink", name, syscall.EINVAL)
	}
	t, err := readLink(f.n.fd)
	if err != nil {
		return "", pathErr("readlink", name, err)
	}
	return t, nil
}

// ReadFile reads the regular file at name whole, up to WithMaxReadFile
// (16 MiB by default; ErrTooLarge beyond). Anything but a regular file is
// refused without being opened.
func (fsys *FS) ReadFile(name string) ([]byte, error) {
	f, err := fsys.resolveValid("readfile", name, true)
	if err != nil {
		return nil, err
	}
	defer f.n.close()
	b, err := readNode(f.n, fsys.cfg.maxReadFile)
	if err != nil {
		return nil, pathErr("readfile", name, err)
	}
	return b, nil
}

// ReadFileLimit reads the regular file at the container path unsafePath,
// following symlinks inside the container. Anything but a regular file is
// refused without being opened (ErrNotRegular), and so is a file whose
// size, by fstat or while reading, exceeds max bytes (ErrTooLarge).
func (fsys *FS) ReadFileLimit(unsafePath string, max int64) ([]byte, error) {
	f, err := fsys.resolve(unsafePath, true)
	if err == nil && f.n == nil {
		err = noNodeErr(f)
	}
	if err != nil {
		return nil, pathErr("readfile", unsafePath, err)
	}
	defer f.n.close()
	b, err := readNode(f.n, max)
	if err != nil {
		return nil, pathErr("readfile", unsafePath, err)
	}
	return b, nil
}

// readNode reads the regular file behind n, refusing more than max bytes.
func readNode(n *node, max int64) ([]byte, error) {
	if n.isDir() {
		return nil, syscall.EISDIR
	}
	if !n.isReg() {
		return nil, ErrNotRegular
	}
	if n.st.Size > max {
		return nil, ErrTooLarge
	}
	fd, err := reopen(n)
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	// Read until EOF, at most max+1 bytes (a file may grow after fstat).
	buf := make([]byte, 0, min(n.st.Size, max)+1)
	for int64(len(buf)) <= max {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		want := min(int64(cap(buf)-len(buf)), max+1-int64(len(buf)))
		k, err := unix.Read(fd, buf[len(buf):int64(len(buf))+want])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, err
		}
		if k == 0 {
			break
		}
		buf = buf[:len(buf)+k]
	}
	if int64(len(buf)) > max {
		return nil, ErrTooLarge
	}
	return buf, nil
}

// ReadDir lists the directory at name, sorted by name, with each entry's
// Lstat info (a mount point shows its mount's root). Mount points missing
// from the underlying directory are listed too, as the kernel would have
// made them.
func (fsys *FS) ReadDir(name string) ([]fs.DirEntry, error) {
	f, err := fsys.resolveValid("readdir", name, true)
	if err != nil {
		return nil, err
	}
	defer f.n.close()
	es, err := fsys.readDirFrame(f)
	if err != nil {
		return nil, pathErr("readdir", name, err)
	}
	return es, nil
}

// ReadDirNames lists the names in the directory at name, sorted, without
// looking at the entries: no per-entry lookup or stat, so it is much cheaper
// than ReadDir on a big directory (/usr/lib). Whiteouts and entries hidden by
// an opaque layer are left out as in ReadDir; a mount point is listed even
// where runc has not made its directory yet, so a caller checks each name it
// keeps (Lstat) before use.
func (fsys *FS) ReadDirNames(name string) ([]string, error) {
	f, err := fsys.resolveValid("readdir", name, true)
	if err != nil {
		return nil, err
	}
	defer f.n.close()
	names, err := fsys.frameNames(f)
	if err != nil {
		return nil, pathErr("readdir", name, err)
	}
	sort.Strings(names)
	return names, nil
}

// frameNames lists the names in the directory f, plus mount points directly
// under it, unsorted.
func (fsys *FS) frameNames(f frame) ([]string, error) {
	if !f.n.isDir() {
		return nil, syscall.ENOTDIR
	}
	limit := fsys.cfg.maxDirEntries
	var names []string
	var err error
	if f.m.kind == kindLayers {
		names, err = fsys.layerNames(f.m, f.n, limit)
	} else {
		names, err = readNames(f.n, limit)
	}
	if err != nil {
		return nil, err
	}
	have := make(map[string]bool, len(names))
	for _, n := range names {
		have[n] = true
	}
	prefix := childPath(f.path, "")
	for dest := range fsys.mounts {
		if rest, ok := strings.CutPrefix(dest, prefix); ok && dest != "/" && rest != "" && !strings.Contains(rest, "/") && !have[rest] {
			names = append(names, rest)
		}
	}
	return names, nil
}

func (fsys *FS) readDirFrame(f frame) ([]fs.DirEntry, error) {
	names, err := fsys.frameNames(f)
	if err != nil {
		return nil, err
	}
	w := &walker{fs: fsys, stack: []frame{f}}
	out := make([]fs.DirEntry, 0, len(names))
	for _, name := range names {
		c, err := w.child(name)
		if isErrno(err, syscall.ENOENT) {
			continue // raced away
		}
		if err != nil {
			return nil, err
		}
		if c.n == nil {
			if !c.m.info.Opaque {
				continue // a directory runc will create for a mount: not there yet
			}
			out = append(out, &dirEntry{name: name, typ: fs.ModeDir, err: pathErr("lstat", c.path, opaqueErr(c.m))})
			continue
		}
		fi := &fileInfo{name: name, st: c.n.st}
		c.n.close()
		out = append(out, &dirEntry{name: name, typ: fi.Mode().Type(), info: fi})
	}
	sortEntries(out)
	return out, nil
}

// Open opens the entry at name for reading (fs.FS). Directories give an
// fs.ReadDirFile; regular files are reopened from their handle; other
// types (FIFO, socket, device) are never opened: their Read fails with
// ErrNotRegular. The caller closes the file (FS.Close does not); its
// descriptor is O_CLOEXEC.
func (fsys *FS) Open(name string) (fs.File, error) {
	f, err := fsys.resolveValid("open", name, true)
	if err != nil {
		return nil, err
	}
	defer f.n.close()
	info := &fileInfo{name: baseName(name), st: f.n.st}
	switch {
	case f.n.isDir():
		es, err := fsys.readDirFrame(f)
		if err != nil {
			return nil, pathErr("open", name, err)
		}
		return &dirFile{info: info, entries: es, name: name}, nil
	case f.n.isReg():
		fd, err := reopen(f.n)
		if err != nil {
			return nil, pathErr("open", name, err)
		}
		return &regFile{f: os.NewFile(uintptr(fd), name), info: info}, nil
	}
	return &specialFile{info: info, name: name}, nil
}

type regFile struct {
	f    *os.File
	info *fileInfo
}

func (r *regFile) Stat() (fs.FileInfo, error)                { return r.info, nil }
func (r *regFile) Read(b []byte) (int, error)                { return r.f.Read(b) }
func (r *regFile) ReadAt(b []byte, off int64) (int, error)   { return r.f.ReadAt(b, off) }
func (r *regFile) Seek(off int64, whence int) (int64, error) { return r.f.Seek(off, whence) }
func (r *regFile) Close() error                              { return r.f.Close() }

type dirFile struct {
	info    *fileInfo
	name    string
	entries []fs.DirEntry
	off     int
}

func (d *dirFile) Stat() (fs.FileInfo, error) { return d.info, nil }
func (d *dirFile) Read([]byte) (int, error) {
	return 0, pathErr("read", d.name, syscall.EISDIR)
}
func (d *dirFile) Close() error { return nil }

// ReadDir reads the directory's entries as fs.ReadDirFile specifies.
func (d *dirFile) ReadDir(n int) ([]fs.DirEntry, error) {
	rest := d.entries[d.off:]
	if n <= 0 {
		d.off = len(d.entries)
		return rest, nil
	}
	if len(rest) == 0 {
		return nil, io.EOF
	}
	if n > len(rest) {
		n = len(rest)
	}
	d.off += n
	return rest[:n], nil
}

type specialFile struct {
	info *fileInfo
	name string
}

func (s *specialFile) Stat() (fs.FileInfo, error) { return s.info, nil }
func (s *specialFile) Read([]byte) (int, error)   { return 0, pathErr("read", s.name, ErrNotRegular) }
func (s *specialFile) Close() error               { return nil }

// EvalSymlinks resolves the container path unsafePath, following every
// symlink inside the container, and returns the canonical container path
// and the mount it lands in. The mount point of an opaque mount resolves
// (with its Mount); a path under one gives an OpaqueMountError.
func (fsys *FS) EvalSymlinks(unsafePath string) (string, *Mount, error) {
	f, err := fsys.resolve(unsafePath, true)
	if err != nil {
		return "", nil, pathErr("evalsymlinks", unsafePath, err)
	}
	if f.n == nil && f.path != f.m.info.Dest {
		// A directory on the way to a mount point, not there yet.
		return "", nil, pathErr("evalsymlinks", unsafePath, noNodeErr(f))
	}
	f.n.close()
	m := f.m.info
	return f.path, &m, nil
}
