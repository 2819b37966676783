package vfs

import (
	"errors"
	"fmt"

	"github.com/containerd/containerd/v2/core/mount"
)

// Spec is one container mount as BuildKit hands it to an executor, after
// MountableRef.Mount().
type Spec struct {
	Dest     string        // container path of the mount point ("/" for the root)
	Mounts   []mount.Mount // github.com/containerd/containerd/v2/core/mount: Type, Source, Target, Options
	Selector string        // sub-path of the source (executor.Mount.Selector)
	Readonly bool
}

// Mount describes one entry of the assembled mount table.
type Mount struct {
	// Dest is the canonical container path of the mount point: the spec's
	// destination resolved through the container's symlinks like the
	// kernel (runc) resolves it. "/" for the root.
	Dest string
	// Type is the mount type from the spec ("bind", "overlay", "tmpfs", ...).
	Type string
	// Index is the position of the spec in New's mounts argument, -1 for
	// the root.
	Index int
	// Readonly is set when the mount cannot be written through the vfs:
	// a read-only spec or option, a lowerdir-only overlay, any mount but
	// the root.
	Readonly bool
	// Opaque is set when the vfs cannot see into the mount (tmpfs, proc,
	// unknown types).
	Opaque bool
	// File is set when the mount is a bind of a single file.
	File bool
}

// IsRoot reports whether m is the container's root mount.
func (m *Mount) IsRoot() bool { return m != nil && m.Index < 0 }

// ErrOpaqueMount is matched (errors.Is) by every OpaqueMountError.
var ErrOpaqueMount = errors.New("mount cannot be seen into")

// OpaqueMountError is the error for a path at or under a mount the vfs
// cannot see into: tmpfs, proc, sysfs, any type other than bind and overlay,
// or a spec it does not understand. It arrives wrapped in an *fs.PathError.
type OpaqueMountError struct {
	Mount *Mount
}

func (e *OpaqueMountError) Error() string {
	return fmt.Sprintf("under %s mount at %s, which cannot be seen into", e.Mount.Type, e.Mount.Dest)
}

// Is makes errors.Is(err, ErrOpaqueMount) true.
func (e *OpaqueMountError) Is(target error) bool { return target == ErrOpaqueMount }

// ErrNotRootMount is the error for a write to a path that resolves outside
// the root mount (another mount: a cache, bind, secret), or to a mount
// point itself. Writes to a read-only root give syscall.EROFS instead.
var ErrNotRootMount = errors.New("path is not in the root mount")

// ErrTooLarge is the error ReadFileLimit returns for a file bigger than the
// limit; nothing is read.
var ErrTooLarge = errors.New("file larger than the limit")

// ErrNotRegular is the error for reading or replacing something that is
// not a regular file (a FIFO, socket or device is never opened).
var ErrNotRegular = errors.New("not a regular file")

// ErrNotInPlace is matched (errors.Is) by the error Overwrite returns for
// a path it may not write in place: anything but a regular file with one
// link in the writable root mount (a symlink, directory, FIFO, device, a
// hard-linked file, a setuid or setgid file or one with file capabilities,
// a file in another or a read-only mount). Nothing was written; the caller
// replaces the file with WriteFile instead, which refuses what it must.
var ErrNotInPlace = errors.New("file cannot be written in place")

// ErrOverlayFeature is the error for an overlay layer entry that carries a
// redirect or metacopy xattr: the vfs refuses them rather than honour them.
var ErrOverlayFeature = errors.New("overlay redirect or metacopy entry refused")

// ErrDirTooLarge is the error ReadDir returns for a directory with more
// entries than the limit (WithMaxDirEntries).
var ErrDirTooLarge = errors.New("directory has too many entries")
