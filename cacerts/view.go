package cacerts

import (
	"io/fs"
	"time"

	"github.com/buildkit-cacerts/buildkit-cacerts/vfs"
)

// View returns the FS over the vfs view v: container paths throughout. It
// is where this package's one path dialect meets vfs's io/fs read methods;
// the caller keeps v (and closes it).
func View(v *vfs.FS) FS { return view{v} }

// view is the FS View returns.
type view struct{ v *vfs.FS }

var _ FS = view{}

func (view) containerPaths() {}

func (w view) Open(p string) (fs.File, error)          { return w.v.Open(fsName(p)) }
func (w view) Stat(p string) (fs.FileInfo, error)      { return w.v.Stat(fsName(p)) }
func (w view) Lstat(p string) (fs.FileInfo, error)     { return w.v.Lstat(fsName(p)) }
func (w view) ReadDir(p string) ([]fs.DirEntry, error) { return w.v.ReadDir(fsName(p)) }
func (w view) ReadDirNames(p string) ([]string, error) { return w.v.ReadDirNames(fsName(p)) }
func (w view) ReadLink(p string) (string, error)       { return w.v.ReadLink(fsName(p)) }

func (w view) ReadFileLimit(p string, max int64) ([]byte, error) { return w.v.ReadFileLimit(p, max) }
func (w view) WriteFile(p string, data []byte, perm fs.FileMode) error {
	return w.v.WriteFile(p, data, perm)
}
func (w view) Overwrite(p string, data []byte) error { return w.v.Overwrite(p, data) }
func (w view) MkdirAll(p string, perm fs.FileMode) (string, error) {
	return w.v.MkdirAll(p, perm)
}
func (w view) Remove(p string) error                           { return w.v.Remove(p) }
func (w view) Symlink(oldname, newname string) error           { return w.v.Symlink(oldname, newname) }
func (w view) Lchtimes(p string, atime, mtime time.Time) error { return w.v.Lchtimes(p, atime, mtime) }
func (w view) Lchown(p string, uid, gid int) error             { return w.v.Lchown(p, uid, gid) }
func (w view) Chmod(p string, mode fs.FileMode) error          { return w.v.Chmod(p, mode) }
func (w view) EvalSymlinks(p string) (string, *vfs.Mount, error) {
	return w.v.EvalSymlinks(p)
}
func (w view) Invalidate() { w.v.Invalidate() }

// ioFS is an FS seen through io/fs names, for io/fs's own helpers (fs.Glob)
// and for distro.Detect in tests: the inverse of View's conversion.
type ioFS struct{ fsys FS }

func (i ioFS) Open(name string) (fs.File, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrInvalid}
	}
	return i.fsys.Open("/" + name)
}

func (i ioFS) ReadDir(name string) ([]fs.DirEntry, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: fs.ErrInvalid}
	}
	return i.fsys.ReadDir("/" + name)
}

func (i ioFS) Stat(name string) (fs.FileInfo, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: "stat", Path: name, Err: fs.ErrInvalid}
	}
	return i.fsys.Stat("/" + name)
}
