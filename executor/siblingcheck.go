package executor

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"syscall"

	"github.com/containerd/containerd/v2/core/mount"

	"github.com/buildkit-cacerts/buildkit-cacerts/cacerts"
	"github.com/buildkit-cacerts/buildkit-cacerts/vfs"
)

// ErrSiblingWroteOutside is matched (errors.Is) by the error of a sibling
// whose tool changed the container's root outside the paths it is expected
// to touch (cacerts.ToolMayWrite). Those changes are not journaled, so no
// rollback can undo them: the error also matches cacerts.ErrRollbackFailed,
// and the exec fails whatever strict says, so the layer is never committed.
var ErrSiblingWroteOutside = errors.New("the image's update tool wrote outside the trust store")

// ErrSiblingUnchecked is matched by the error of a sibling that was not run
// because what it writes could not be checked (a root that is neither an
// overlay nor a bind mount, or too large to scan). The install fails and is
// rolled back like any other.
var ErrSiblingUnchecked = errors.New("cannot check what the image's update tool writes")

// maxScanEntries caps the entries of the root's writable layer scanned
// before and after the tool: an overlay's upper directory holds only this
// exec's changes (a few entries); a native snapshot's bind root is the whole
// image (tens of thousands).
const maxScanEntries = 250000

// siblingWriteError lists what the tool wrote outside its paths.
type siblingWriteError struct{ paths []string }

func (e *siblingWriteError) Error() string {
	shown := e.paths
	if len(shown) > 8 {
		shown = shown[:8]
	}
	more := ""
	if n := len(e.paths) - len(shown); n > 0 {
		more = fmt.Sprintf(" and %d more", n)
	}
	return fmt.Sprintf("%s: %s%s; these changes cannot be reverted, so the step fails instead of committing them: "+
		"find what writes there in the image (an update.d hook?), or set [cacerts] mode = \"fast\" or BUILDKIT_CACERTS=off for this step",
		ErrSiblingWroteOutside, strings.Join(shown, ", "), more)
}

// Is makes the error match ErrSiblingWroteOutside and
// cacerts.ErrRollbackFailed.
func (e *siblingWriteError) Is(target error) bool {
	return target == ErrSiblingWroteOutside || target == cacerts.ErrRollbackFailed
}

// scanEntry is what one entry of the writable layer was: any write, chmod,
// chown, rename or xattr change moves its ctime.
type scanEntry struct {
	mode         fs.FileMode
	ino          uint64
	size         int64
	mtime, ctime syscall.Timespec
}

// writableLayer returns the host directory holding the root's writes: an
// overlay's upperdir, or a bind mount's source.
func writableLayer(root []mount.Mount) (string, error) {
	if len(root) != 1 {
		return "", fmt.Errorf("%w: the root is %d mounts", ErrSiblingUnchecked, len(root))
	}
	m := root[0]
	switch m.Type {
	case "overlay":
		for _, o := range m.Options {
			if v, ok := strings.CutPrefix(o, "upperdir="); ok {
				return v, nil
			}
		}
		return "", fmt.Errorf("%w: a read-only overlay root", ErrSiblingUnchecked)
	case "bind", "rbind":
		return m.Source, nil
	}
	return "", fmt.Errorf("%w: a root of type %q", ErrSiblingUnchecked, m.Type)
}

// scanLayer records every entry under dir (never following a symlink),
// keyed by its container path.
func scanLayer(dir string) (map[string]scanEntry, error) {
	out := map[string]scanEntry{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if len(out) >= maxScanEntries {
			return fmt.Errorf("%w: more than %d entries in the root's writable layer", ErrSiblingUnchecked, maxScanEntries)
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok {
			return fmt.Errorf("%w: no stat data for %s", ErrSiblingUnchecked, p)
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		out[path.Join("/", filepath.ToSlash(rel))] = scanEntry{mode: fi.Mode(), ino: st.Ino, size: st.Size, mtime: st.Mtim, ctime: st.Ctim}
		return nil
	})
	if err != nil && !errors.Is(err, ErrSiblingUnchecked) {
		err = fmt.Errorf("%w: scanning the root's writable layer: %w", ErrSiblingUnchecked, err)
	}
	return out, err
}

// runtimeStubs are the mount points runc makes in a root that lacks them,
// for the sibling as for the user process (which would make them anyway).
var runtimeStubs = map[string]bool{"/proc": true, "/dev": true, "/sys": true}

// outsideWrites compares two scans of the writable layer and returns the
// container paths changed outside what the tool may write, sorted. A
// directory above the tool's paths may change (overlay copies it up, its
// time stamps move); runc's /proc, /dev and /sys may appear as empty
// directories.
func outsideWrites(before, after map[string]scanEntry) []string {
	var out []string
	for p, a := range after {
		if b, ok := before[p]; ok && b == a {
			continue
		}
		if cacerts.ToolMayWrite(p) || (a.mode.IsDir() && (cacerts.AboveToolPaths(p) || runtimeStubs[p])) {
			continue
		}
		out = append(out, p)
	}
	for p := range before {
		if _, ok := after[p]; !ok && !cacerts.ToolMayWrite(p) {
			out = append(out, p)
		}
	}
	sort.Strings(out)
	return out
}

// sessionMount reports whether a mounted spec is one of BuildKit's session
// mounts, which a sibling must never get: an SSH agent socket (a bind of a
// socket, made in a ".buildkit-ssh-sock*" directory) or a secret (a bind of
// a file in a "buildkit-secrets*" tmpfs directory).
func sessionMount(s vfs.Spec) bool {
	for _, m := range s.Mounts {
		if m.Type != "bind" && m.Type != "rbind" {
			continue
		}
		dir := filepath.Base(filepath.Dir(m.Source))
		if strings.HasPrefix(dir, "buildkit-secrets") || strings.HasPrefix(dir, ".buildkit-ssh-sock") {
			return true
		}
		if fi, err := os.Lstat(m.Source); err == nil && fi.Mode()&fs.ModeSocket != 0 {
			return true
		}
	}
	return false
}
