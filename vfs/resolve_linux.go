package vfs

import (
	"strings"
	"syscall"
)

// maxSymlinks is the kernel's MAXSYMLINKS: the 41st link gives ELOOP.
const maxSymlinks = 40

// maxPath is PATH_MAX: longer paths give ENAMETOOLONG.
const maxPath = 4096

// frame is one resolved directory (or, on top, the result) of a walk: its
// canonical container path, the handle, and the mount it is in. n is nil
// for the root of an opaque mount.
type frame struct {
	path string
	n    *node
	m    *mountEnt
}

// walker resolves container paths one component at a time. Its stack is
// the chain of directories from the container's root to the current one,
// so ".." is a pop: the parent of a directory reached by a canonical path,
// which is what the kernel gives (the parent of a mount's root is the
// directory holding the mount point).
type walker struct {
	fs    *FS
	stack []frame
	links int
}

func (fsys *FS) newWalker() *walker {
	w := &walker{fs: fsys}
	w.stack = make([]frame, 1, 8)
	w.stack[0] = frame{path: "/", n: fsys.root.root, m: fsys.root}
	return w
}

func (w *walker) top() *frame { return &w.stack[len(w.stack)-1] }

// push makes f the top frame; a directory's chain goes to the FS's cache.
func (w *walker) push(f frame) {
	w.stack = append(w.stack, f)
	if c := w.fs.cache; c != nil && f.n != nil && f.n.isDir() {
		c.put(w.stack)
	}
}

// pop goes to the parent; at the container's root it stays (".." at "/").
func (w *walker) pop() {
	if len(w.stack) > 1 {
		w.top().n.close()
		w.stack = w.stack[:len(w.stack)-1]
	}
}

// reset goes back to the container's root (an absolute symlink target).
func (w *walker) reset() {
	for len(w.stack) > 1 {
		w.pop()
	}
}

// close releases every handle the walker opened.
func (w *walker) close() { w.reset() }

// splitPath splits a container path into components; a trailing slash
// becomes a final "." so the last entry must be a directory (and a final
// symlink is followed), as for the kernel.
func splitPath(p string) []string {
	comps := make([]string, 0, strings.Count(p, "/")+1)
	for _, c := range strings.Split(p, "/") {
		if c != "" {
			comps = append(comps, c)
		}
	}
	if strings.HasSuffix(p, "/") && len(comps) > 0 {
		comps = append(comps, ".")
	}
	return comps
}

func childPath(parent, name string) string {
	if parent == "/" {
		return "/" + name
	}
	return parent + "/" + name
}

// child looks up one name under the top frame: a mount point gives the
// mount's root, anything else a new handle in the same mount.
func (w *walker) child(name string) (frame, error) {
	parent := w.top()
	if parent.n != nil && !parent.n.isDir() {
		return frame{}, syscall.ENOTDIR
	}
	if len(name) > 255 {
		return frame{}, syscall.ENAMETOOLONG
	}
	p := childPath(parent.path, name)
	if m, ok := w.fs.mounts[p]; ok {
		return frame{path: p, n: m.root, m: m}, nil
	}
	// Directories leading to mount points may not exist yet (runc makes
	// them when it mounts), and inside a mount we cannot see into they are
	// all we can walk: a handle-less frame passes through them.
	if parent.n == nil {
		if w.fs.hasMountUnder(p) {
			return frame{path: p, m: parent.m}, nil
		}
		return frame{}, noNodeErr(*parent)
	}
	n, err := w.fs.lookup(parent.m, parent.n, name)
	if isErrno(err, syscall.ENOENT) && w.fs.hasMountUnder(p) {
		return frame{path: p, m: parent.m}, nil
	}
	if err != nil {
		return frame{}, err
	}
	return frame{path: p, n: n, m: parent.m}, nil
}

// expandLink reads the symlink f (closing it), counts the hop and returns
// the target's components; an absolute target resets the walk to "/".
func (w *walker) expandLink(f frame) ([]string, error) {
	target, err := readLink(f.n.fd)
	f.n.close()
	if err != nil {
		return nil, err
	}
	w.links++
	if w.links > maxSymlinks {
		return nil, syscall.ELOOP
	}
	if target == "" {
		return nil, syscall.ENOENT
	}
	if target[0] == '/' {
		w.reset()
	}
	return splitPath(target), nil
}

// walk resolves comps from the current stack. A final symlink is followed
// when follow is set (a trailing slash always follows). On success the top
// frame is the result.
func (w *walker) walk(comps []string, follow bool) error {
	_, err := w.walkTo(comps, walkMode{follow: follow})
	return err
}

// walkParent resolves every component but the last (following symlinks
// on the way) and returns the last one, unresolved: the top frame is then
// the directory that holds it. The name may be "." or "..".
func (w *walker) walkParent(comps []string) (string, error) {
	rest, err := w.walkTo(comps, walkMode{follow: true, parentOnly: true})
	if err != nil {
		return "", err
	}
	if len(rest) == 0 {
		return "", nil
	}
	return rest[0], nil
}

// walkMissing resolves comps like runc resolves a mount destination:
// symlinks are followed (the final one too), and the walk stops at the
// first component that does not exist (runc creates it) or sits under
// something that cannot be looked into (a file, a directory that exists
// only on the way to a mount point, an opaque mount). The top frame is
// then the last entry found, and the components from the one that
// stopped the walk are returned, unresolved, for the caller to take
// lexically. "." and ".." never fail: ".." is the top frame's parent,
// whatever the top frame is.
func (w *walker) walkMissing(comps []string) ([]string, error) {
	return w.walkTo(comps, walkMode{follow: true, missingStops: true})
}

// walkMode selects what walkTo does at the end of a path and at a
// component it cannot resolve. The symlink and ".." rules are the same in
// every mode.
type walkMode struct {
	// follow makes a final symlink be followed.
	follow bool
	// parentOnly stops before the last component and returns it.
	parentOnly bool
	// missingStops returns the remaining components, from one that does
	// not exist or whose parent cannot be looked into, instead of an error.
	missingStops bool
}

// walkTo is the one resolution loop: every lookup, symlink hop and ".."
// goes through it, whatever the caller (docs/design.md invariant 1). It
// returns the components it left unresolved (see walkMode), else nil.
func (w *walker) walkTo(comps []string, mode walkMode) ([]string, error) {
	if c := w.fs.cache; c != nil && len(w.stack) == 1 {
		if st, rest, ok := c.seed(comps, mode.parentOnly); ok {
			w.stack = append(w.stack[:0], st...)
			comps = rest
		}
	}
	for len(comps) > 0 {
		name := comps[0]
		last := len(comps) == 1
		if last && mode.parentOnly {
			top := w.top()
			if top.n == nil {
				return nil, noNodeErr(*top)
			}
			if !top.n.isDir() {
				return nil, syscall.ENOTDIR
			}
			return comps, nil
		}
		switch name {
		case ".", "..":
			top := w.top()
			if !mode.missingStops && top.n != nil && !top.n.isDir() {
				return nil, syscall.ENOTDIR
			}
			comps = comps[1:]
			if name == ".." {
				w.pop()
			}
			continue
		}
		if top := w.top(); mode.missingStops && (top.n == nil || !top.n.isDir()) {
			return comps, nil
		}
		f, err := w.child(name)
		if mode.missingStops && isErrno(err, syscall.ENOENT) {
			return comps, nil
		}
		if err != nil {
			return nil, err
		}
		comps = comps[1:]
		if f.n != nil && f.n.isLink() && (!last || mode.follow) {
			more, err := w.expandLink(f)
			if err != nil {
				return nil, err
			}
			comps = append(more, comps...)
			continue
		}
		w.push(f)
	}
	return nil, nil
}

// takeTop removes the top frame from the walker and returns it; the caller
// owns its handle (closing an unowned mount root is a no-op).
// A mount's root (shared, not owned) is returned as a fresh copy with a
// new fstat, since its cached one may be stale.
func (w *walker) takeTop() (frame, error) {
	f := *w.top()
	if len(w.stack) > 1 {
		w.stack = w.stack[:len(w.stack)-1]
	}
	if f.n != nil && !f.n.owned {
		n := &node{fd: f.n.fd, layers: f.n.layers, mntID: f.n.mntID, readable: f.n.readable}
		if err := statNode(n); err != nil {
			return frame{}, err
		}
		f.n = n
	}
	return f, nil
}

// checkPath refuses over-long paths before any work.
func checkPath(unsafePath string) error {
	if len(unsafePath) >= maxPath {
		return syscall.ENAMETOOLONG
	}
	if strings.IndexByte(unsafePath, 0) >= 0 {
		return syscall.EINVAL
	}
	return nil
}

// noNodeErr is the error for a frame without a handle: under an opaque
// mount, or a directory that exists only on the way to a mount point.
func noNodeErr(f frame) error {
	if f.m.info.Opaque {
		return opaqueErr(f.m)
	}
	return syscall.ENOENT
}
