package vfs

import (
	"os"
	"strings"

	"github.com/containerd/containerd/v2/core/mount"
	"golang.org/x/sys/unix"
)

// mountOverlay mounts the overlay m as a detached mount (fsopen/fsmount: it
// is never attached anywhere, so nothing is visible in any mount namespace
// and it disappears when the returned handle is closed). Where the new
// mount API is missing it mounts on a private temporary directory, opens
// it and detaches it at once (MNT_DETACH), to the same effect.
func mountOverlay(m mount.Mount, ro bool) (int, error) {
	var attrs int
	var data []string
	for _, o := range m.Options {
		switch o {
		case "ro":
			ro = true
		case "rw":
		case "nosuid":
			attrs |= unix.MOUNT_ATTR_NOSUID
		case "nodev":
			attrs |= unix.MOUNT_ATTR_NODEV
		case "noexec":
			attrs |= unix.MOUNT_ATTR_NOEXEC
		default:
			data = append(data, o)
		}
	}
	if ro {
		attrs |= unix.MOUNT_ATTR_RDONLY
	}
	fd, err := fsmountOverlay(data, attrs)
	if err != unix.ENOSYS {
		return fd, err
	}
	return legacyMountOverlay(data, attrs)
}

func fsmountOverlay(data []string, attrs int) (int, error) {
	fsfd, err := unix.Fsopen("overlay", unix.FSOPEN_CLOEXEC)
	if err != nil {
		return -1, err
	}
	defer unix.Close(fsfd)
	for _, o := range data {
		k, v, ok := strings.Cut(o, "=")
		if ok {
			err = unix.FsconfigSetString(fsfd, k, v)
		} else {
			err = unix.FsconfigSetFlag(fsfd, k)
		}
		if err != nil {
			return -1, err
		}
	}
	if err := unix.FsconfigCreate(fsfd); err != nil {
		return -1, err
	}
	return unix.Fsmount(fsfd, unix.FSMOUNT_CLOEXEC, attrs)
}

func legacyMountOverlay(data []string, attrs int) (int, error) {
	dir, err := os.MkdirTemp("", "vfs-overlay-")
	if err != nil {
		return -1, err
	}
	defer os.Remove(dir)
	var flags uintptr
	if attrs&unix.MOUNT_ATTR_RDONLY != 0 {
		flags |= unix.MS_RDONLY
	}
	if attrs&unix.MOUNT_ATTR_NOSUID != 0 {
		flags |= unix.MS_NOSUID
	}
	if attrs&unix.MOUNT_ATTR_NODEV != 0 {
		flags |= unix.MS_NODEV
	}
	if attrs&unix.MOUNT_ATTR_NOEXEC != 0 {
		flags |= unix.MS_NOEXEC
	}
	if err := unix.Mount("overlay", dir, "overlay", flags, strings.Join(data, ",")); err != nil {
		return -1, err
	}
	fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if uerr := unix.Unmount(dir, unix.MNT_DETACH); uerr != nil && err == nil {
		unix.Close(fd)
		return -1, uerr
	}
	return fd, err
}
