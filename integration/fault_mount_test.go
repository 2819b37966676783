package integration

import (
	"bufio"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// mountSmallTmpfs mounts a 16 MiB tmpfs on dir.
func mountSmallTmpfs(dir string) error {
	return unix.Mount("tmpfs", dir, "tmpfs", 0, "size=16m,mode=0755")
}

// unmountLazy detaches whatever is mounted on dir (the CA directory
// "vanishes": the mount point stays, empty).
func unmountLazy(dir string) {
	for isMountPoint(dir) {
		if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil {
			return
		}
	}
}

// isMountPoint reports whether dir is a mount point (/proc/self/mountinfo).
func isMountPoint(dir string) bool {
	dir = filepath.Clean(dir)
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return false
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		fl := strings.Fields(s.Text())
		if len(fl) > 4 && fl[4] == dir {
			return true
		}
	}
	return false
}
