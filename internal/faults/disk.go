package faults

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// MountTmpfs mounts a tmpfs of size bytes on a new directory under parent
// and returns it with the function that unmounts (lazily) and removes it.
// Overlayfs works with its upper and work directories on tmpfs, so a
// daemon's root there runs the overlayfs snapshotter on a filesystem small
// enough to fill. Needs root.
func MountTmpfs(parent string, size int64) (string, func() error, error) {
	dir, err := os.MkdirTemp(parent, "faults-tmpfs-")
	if err != nil {
		return "", nil, err
	}
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, fmt.Sprintf("size=%d,mode=0700", size)); err != nil {
		os.Remove(dir)
		return "", nil, fmt.Errorf("mounting a tmpfs on %s: %w", dir, err)
	}
	return dir, func() error {
		err := unix.Unmount(dir, unix.MNT_DETACH)
		return errors.Join(err, os.Remove(dir))
	}, nil
}

// Free returns the bytes available to root on the filesystem holding dir.
func Free(dir string) (int64, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return 0, fmt.Errorf("statfs %s: %w", dir, err)
	}
	return int64(st.Bfree) * st.Bsize, nil
}

// Fill allocates a file under dir that leaves about leave bytes free on its
// filesystem, and returns the function that removes it. With leave 0 the
// next write that needs a block fails with ENOSPC.
func Fill(dir string, leave int64) (func() error, error) {
	free, err := Free(dir)
	if err != nil {
		return nil, err
	}
	p := filepath.Join(dir, "faults-filler")
	f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	remove := func() error { return os.Remove(p) }
	if n := free - leave; n > 0 {
		if err := unix.Fallocate(int(f.Fd()), 0, 0, n); err != nil && !errors.Is(err, unix.ENOSPC) {
			remove()
			return nil, fmt.Errorf("filling %s: %w", dir, err)
		}
	}
	return remove, nil
}
