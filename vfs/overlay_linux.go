package vfs

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"

	"github.com/containerd/containerd/v2/core/mount"
	"golang.org/x/sys/unix"
)

// lookup finds name under the directory handle parent of mount m.
func (fsys *FS) lookup(m *mountEnt, parent *node, name string) (*node, error) {
	switch m.kind {
	case kindHandle:
		return fsys.sys.openChild(parent.fd, parent.mntID, name)
	case kindLayers:
		return fsys.lookupLayers(m, parent, name)
	}
	return nil, opaqueErr(m)
}

// isWhiteout reports a char device 0:0, overlay's whiteout.
func isWhiteout(n *node) bool {
	return n.mode() == syscall.S_IFCHR && n.st.Rdev == 0
}

// isXWhiteout reports overlay's xattr whiteout: an empty regular file with
// overlay.whiteout, honoured only in a directory marked opaque="x".
func (m *mountEnt) isXWhiteout(n *node) (bool, error) {
	if !n.isReg() || n.st.Size != 0 {
		return false, nil
	}
	_, ok, err := getXattr(n, m.xattrPfx+"whiteout")
	return ok, err
}

// dirFlags reads a layer directory's opaque marker and refuses redirects.
// Overlay semantics (Documentation/filesystems/overlayfs.rst): opaque="y"
// hides the layers below; opaque="x" is not opaque but marks a directory
// that may hold xattr whiteouts.
func (m *mountEnt) dirFlags(n *node) (opaque, xwh bool, err error) {
	v, ok, err := getXattr(n, m.xattrPfx+"opaque")
	if err != nil {
		return false, false, err
	}
	if _, red, err := getXattr(n, m.xattrPfx+"redirect"); err != nil || red {
		if err == nil {
			err = ErrOverlayFeature
		}
		return false, false, err
	}
	return ok && v == "y", ok && v == "x", nil
}

// lookupLayers applies overlay's lookup rules to the layers of the merged
// directory parent: the topmost entry wins; a whiteout hides the name in
// the layers below; a non-directory stops the merge; directories merge
// down to the first opaque one.
func (fsys *FS) lookupLayers(m *mountEnt, parent *node, name string) (*node, error) {
	var dirs []layerDir
	var first *node
	fail := func(err error) (*node, error) {
		for _, d := range dirs {
			unix.Close(d.fd)
		}
		if first != nil && len(dirs) == 0 {
			first.close()
		}
		return nil, err
	}
	for _, ld := range parent.layers {
		n, err := fsys.sys.openLayerChild(ld.fd, ld.mntID, name)
		if isErrno(err, syscall.ENOENT) {
			continue
		}
		if err != nil {
			return fail(err)
		}
		if isWhiteout(n) {
			n.close()
			break
		}
		if ld.xwh {
			xw, err := m.isXWhiteout(n)
			if err != nil {
				n.close()
				return fail(err)
			}
			if xw {
				n.close()
				break
			}
		}
		if !n.isDir() {
			if first == nil {
				if n.isReg() {
					if _, mc, err := getXattr(n, m.xattrPfx+"metacopy"); err != nil || mc {
						n.close()
						if err == nil {
							err = ErrOverlayFeature
						}
						return fail(err)
					}
				}
				return n, nil
			}
			n.close() // a non-directory below a directory is hidden
			break
		}
		opaque, xwh, err := m.dirFlags(n)
		if err != nil {
			n.close()
			return fail(err)
		}
		if first == nil {
			first = n
		}
		dirs = append(dirs, layerDir{fd: n.fd, xwh: xwh, mntID: n.mntID})
		if opaque {
			break
		}
	}
	if first == nil {
		return nil, syscall.ENOENT
	}
	first.layers = dirs
	first.owned = true
	return first, nil
}

// layerNames lists a merged directory as overlay's readdir does: names from
// every layer, topmost first, without whiteouts and without the names they
// hide.
func (fsys *FS) layerNames(m *mountEnt, dir *node, limit int) ([]string, error) {
	seen := map[string]bool{}
	var out []string
	for _, ld := range dir.layers {
		names, err := readNames(&node{fd: ld.fd, st: dir.st}, limit)
		if err != nil {
			return nil, err
		}
		for _, name := range names {
			if seen[name] {
				continue
			}
			seen[name] = true
			n, err := fsys.sys.openChild(ld.fd, ld.mntID, name)
			if err != nil {
				if isErrno(err, syscall.ENOENT) {
					continue // raced away
				}
				return nil, err
			}
			hidden := isWhiteout(n)
			if !hidden && ld.xwh {
				if hidden, err = m.isXWhiteout(n); err != nil {
					n.close()
					return nil, err
				}
			}
			n.close()
			if !hidden {
				out = append(out, name)
				if len(out) > limit {
					return nil, ErrDirTooLarge
				}
			}
		}
	}
	return out, nil
}

// readNames lists the names in one directory handle (no "." or "..").
func readNames(dir *node, limit int) ([]string, error) {
	fd, err := reopen(dir)
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	var names []string
	buf := make([]byte, 32<<10)
	for {
		n, err := unix.ReadDirent(fd, buf)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, err
		}
		if n <= 0 {
			return names, nil
		}
		_, _, names = unix.ParseDirent(buf[:n], -1, names)
		if len(names) > limit {
			return nil, ErrDirTooLarge
		}
	}
}

// overlayOpts splits overlay mount options into lowerdirs, the rest of the
// filesystem options, and whether it uses userxattr.
func overlayOpts(m mount.Mount) (lower []string, upper bool, user bool, unknown []string) {
	for _, o := range m.Options {
		k, v, _ := strings.Cut(o, "=")
		switch k {
		case "lowerdir":
			lower = splitLowerdir(v)
		case "upperdir", "workdir":
			upper = true
		case "userxattr":
			user = true
		case "ro", "rw", "index", "redirect_dir", "metacopy", "xino", "nfs_export", "volatile":
			// Layer features the vfs refuses per entry or that do not
			// change lookups.
		default:
			unknown = append(unknown, k)
		}
	}
	return
}

// splitLowerdir splits a lowerdir value on unescaped colons.
func splitLowerdir(v string) []string {
	var out []string
	var cur strings.Builder
	for i := 0; i < len(v); i++ {
		switch {
		case v[i] == '\\' && i+1 < len(v):
			i++
			cur.WriteByte(v[i])
		case v[i] == ':':
			out = append(out, cur.String())
			cur.Reset()
		default:
			cur.WriteByte(v[i])
		}
	}
	return append(out, cur.String())
}

func (fsys *FS) openOverlay(ent *mountEnt, m mount.Mount, ro bool) error {
	lower, upper, user, unknown := overlayOpts(m)
	if upper || fsys.cfg.kernelOverlay {
		fd, err := mountOverlay(m, ro || !upper)
		if err != nil {
			return fmt.Errorf("mounting overlay: %w", err)
		}
		// The detached mount lives as long as this handle: closing the
		// root node (Close) unmounts it.
		n := &node{fd: fd}
		if err := statNode(n); err != nil {
			unix.Close(fd)
			return err
		}
		ent.kind, ent.root = kindHandle, n
		return nil
	}
	if len(unknown) > 0 || len(lower) == 0 {
		ent.kind = kindOpaque
		return nil
	}
	ent.xattrPfx = "trusted.overlay."
	if user {
		ent.xattrPfx = "user.overlay."
	} else if !canReadTrusted() {
		// Without CAP_SYS_ADMIN trusted.* xattrs read as absent: opaque
		// directories would look merged. Fail closed.
		return errors.New("cannot read trusted.overlay xattrs (needs CAP_SYS_ADMIN in the initial user namespace)")
	}
	root := &node{}
	for i, l := range lower {
		fd, err := unix.Open(l, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			for _, d := range root.layers {
				unix.Close(d.fd)
			}
			return fmt.Errorf("opening lowerdir %d: %w", i, err)
		}
		ln := &node{fd: fd}
		if err := statNode(ln); err == nil {
			_, xwh, ferr := ent.dirFlags(ln)
			err = ferr
			if i == 0 {
				root.st, root.mntID = ln.st, ln.mntID
			}
			root.layers = append(root.layers, layerDir{fd: fd, xwh: xwh, mntID: ln.mntID})
		}
		if err != nil {
			unix.Close(fd)
			for _, d := range root.layers {
				unix.Close(d.fd)
			}
			return fmt.Errorf("lowerdir %d: %w", i, err)
		}
	}
	root.fd = root.layers[0].fd
	ent.kind, ent.root = kindLayers, root
	return nil
}

// canReadTrusted reports whether trusted.* xattrs are visible to us:
// CAP_SYS_ADMIN in the initial user namespace.
func canReadTrusted() bool {
	var hdr = unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return false
	}
	if data[0].Effective&(1<<unix.CAP_SYS_ADMIN) == 0 {
		return false
	}
	b, err := os.ReadFile("/proc/self/uid_map")
	if err != nil {
		return false
	}
	f := strings.Fields(string(b))
	return len(f) == 3 && f[0] == "0" && f[1] == "0" && f[2] == "4294967295"
}
