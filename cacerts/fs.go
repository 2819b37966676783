package cacerts

import (
	"context"
	"io/fs"
	"time"

	"github.com/buildkit-cacerts/buildkit-cacerts/distro"
	"github.com/buildkit-cacerts/buildkit-cacerts/vfs"
)

// FS is the confined view of one container's filesystem this package reads
// and writes. Every path is a container path ("/etc/ssl/certs"), resolved
// inside the container; View adapts a *vfs.FS to it (vfs's io/fs read methods
// take io/fs names, and View is the one place that converts). Writes must
// reach only the container's root mount, and never follow a final symlink
// except as documented by vfs. WriteFile never writes in place (new inode and
// rename); Overwrite writes in place only a regular file with exactly one
// link.
type FS interface {
	// Open opens the regular file or directory at the container path p
	// for reading, following symlinks inside the container.
	Open(p string) (fs.File, error)
	Stat(p string) (fs.FileInfo, error)
	Lstat(p string) (fs.FileInfo, error)
	ReadDir(p string) ([]fs.DirEntry, error)
	// ReadDirNames lists the names in a directory, sorted, without a
	// lookup per entry (glob's cheap listing of /usr/lib).
	ReadDirNames(p string) ([]string, error)
	ReadLink(p string) (string, error)
	// ReadFileLimit reads a regular file of at most max bytes, following
	// symlinks inside the container.
	ReadFileLimit(unsafePath string, max int64) ([]byte, error)
	WriteFile(unsafePath string, data []byte, perm fs.FileMode) error
	// Overwrite writes data into the existing regular file unsafePath in
	// place (same inode, mode, owner, xattrs; a final symlink is not
	// followed). Anything but a regular file with one link in the writable
	// root mount gives an error matching vfs.ErrNotInPlace, and the caller
	// uses WriteFile instead.
	Overwrite(unsafePath string, data []byte) error
	// MkdirAll returns the container path of the topmost directory created,
	// or "" when all existed.
	MkdirAll(unsafePath string, perm fs.FileMode) (string, error)
	Remove(unsafePath string) error
	Symlink(oldname, newname string) error
	Lchtimes(unsafePath string, atime, mtime time.Time) error
	Lchown(unsafePath string, uid, gid int) error
	Chmod(unsafePath string, mode fs.FileMode) error
	// EvalSymlinks resolves every symlink inside the container and returns
	// the canonical container path and the mount it lands in.
	EvalSymlinks(unsafePath string) (string, *vfs.Mount, error)
	// Invalidate drops what the view remembers of directories (vfs keeps
	// their handles): whoever changes the tree behind the view's back (the
	// command path's tool) calls it.
	Invalidate()
	// containerPaths seals the interface: a *vfs.FS, whose read methods
	// take io/fs names, cannot be passed where an FS is wanted by mistake
	// (wrap it with View); a wrapper that embeds an FS inherits it.
	containerPaths()
}

// Runner runs a command inside the container whose root the FS views, as
// uid 0, without network, with a minimal environment (PATH only) and the
// root as working directory. The executor implements it with a sibling
// container on the same root and mounts; tests use chroot. Output is the
// combined stdout and stderr, returned also on failure.
type Runner interface {
	Run(ctx context.Context, argv []string) (output []byte, err error)
}

// maxBundle caps every bundle, anchor and hash-link target this package reads.
const maxBundle = 10 << 20

// IsTrustStorePath reports whether the clean absolute container path p lies
// under a trust-store location this package may write (docs/design.md
// invariant 6): one of distro.TrustStoreDirs, which holds the list. The
// directories themselves count.
func IsTrustStorePath(p string) bool { return distro.IsTrustStorePath(p) }

// fsName turns a clean absolute container path into an io/fs name (View's
// conversion; a name already relative is returned as it is).
func fsName(p string) string { return distro.Name(p) }
