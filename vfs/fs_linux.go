package vfs

import (
	"context"
	"errors"
	"fmt"
	"path"
	"strings"
	"sync"
	"syscall"

	"github.com/containerd/containerd/v2/core/mount"
	"golang.org/x/sys/unix"
)

// Option changes how New assembles an FS.
type Option func(*config)

type config struct {
	noOpenat2     bool
	rootUID       int
	rootGID       int
	maxDirEntries int
	maxReadFile   int64
	kernelOverlay bool
	noDirCache    bool
}

// WithoutOpenat2 makes the FS use the openat(O_PATH|O_NOFOLLOW) walker even
// where openat2 works, as it does where openat2 is missing or refused by a
// seccomp filter. For tests, so both mechanisms are covered.
func WithoutOpenat2() Option { return func(c *config) { c.noOpenat2 = true } }

// WithRootOwner sets the host uid and gid that files, directories and
// symlinks the FS creates are given: the container's root as mapped on the
// host. Without it they keep the creating process's ids, which is the
// container's root both for a root daemon (0:0) and for a rootless one
// (whose uid 0 is the mapped root).
func WithRootOwner(uid, gid int) Option {
	return func(c *config) { c.rootUID, c.rootGID = uid, gid }
}

// WithMaxDirEntries caps how many entries ReadDir reads from one directory
// (default 65536); bigger directories give ErrDirTooLarge.
func WithMaxDirEntries(n int) Option { return func(c *config) { c.maxDirEntries = n } }

// WithMaxReadFile caps what ReadFile reads (default 16 MiB); bigger files
// give ErrTooLarge without being read. ReadFileLimit takes its own cap.
func WithMaxReadFile(n int64) Option { return func(c *config) { c.maxReadFile = n } }

// WithKernelOverlay makes New mount lowerdir-only overlays read-only as
// detached kernel mounts (fsmount, needs CAP_SYS_ADMIN) instead of reading
// their layers with overlay lookup rules. Kept for measurement and for
// layer features the vfs refuses (redirect, metacopy).
func WithKernelOverlay() Option { return func(c *config) { c.kernelOverlay = true } }

// WithoutDirCache makes every call walk from the container's root, without
// the directory handles an FS otherwise keeps between calls. For tests and
// measurement.
func WithoutDirCache() Option { return func(c *config) { c.noDirCache = true } }

type mountKind int

const (
	kindHandle mountKind = iota // a host directory or file handle; the kernel does the rest
	kindLayers                  // lowerdir-only overlay read by the vfs
	kindOpaque                  // cannot be seen into
)

type mountEnt struct {
	info     Mount
	kind     mountKind
	root     *node  // nil for opaque mounts
	xattrPfx string // kindLayers: "trusted.overlay." or "user.overlay."
	writable bool
}

// FS is the container's filesystem assembled from its mount specs. Its
// methods may be called concurrently; Close must not race with them.
type FS struct {
	sys    sysOps
	cfg    config
	root   *mountEnt
	mounts map[string]*mountEnt // by canonical destination, "/" included
	all    []*mountEnt          // every entry, shadowed ones included, for Close
	cache  *dirCache            // nil while New builds the mount table, or WithoutDirCache

	closeOnce sync.Once
	closeErr  error
}

// New opens every mount source once and builds the mount table: root is the
// container's root (Dest "/"), mounts the others in the order the kernel
// would mount them. Each destination is resolved through the container's
// symlinks against the mounts before it; a later mount at the same place
// (or above) shadows earlier ones. Sources of type bind (directories and
// files), overlay with lowerdir only (read-only, layers read by the vfs) and
// overlay with an upperdir (mounted detached by the kernel, needs
// CAP_SYS_ADMIN) are seen into; any other type is opaque. The root must be
// a directory that can be seen into.
func New(ctx context.Context, root Spec, mounts []Spec, opts ...Option) (*FS, error) {
	fsys := &FS{mounts: map[string]*mountEnt{}}
	fsys.cfg.maxDirEntries = 1 << 16
	fsys.cfg.rootUID, fsys.cfg.rootGID = -1, -1
	fsys.cfg.maxReadFile = 16 << 20
	for _, o := range opts {
		o(&fsys.cfg)
	}
	if err := checkProc(); err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			fsys.Close()
		}
	}()
	rootEnt, err := fsys.openMount(root, -1)
	if err != nil {
		return nil, fmt.Errorf("root mount: %w", err)
	}
	fsys.all = append(fsys.all, rootEnt)
	if rootEnt.kind == kindOpaque || !rootEnt.root.isDir() {
		return nil, fmt.Errorf("root mount: %s is not a directory the vfs can see into", rootEnt.info.Type)
	}
	rootEnt.info.Dest = "/"
	fsys.root = rootEnt
	fsys.mounts["/"] = rootEnt
	fsys.sys.openat2 = !fsys.cfg.noOpenat2 && probeOpenat2(rootEnt.root.fd)

	for i, spec := range mounts {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		ent, err := fsys.openMount(spec, i)
		if err != nil {
			return nil, fmt.Errorf("mount %d at %s: %w", i, spec.Dest, err)
		}
		fsys.all = append(fsys.all, ent)
		dest, err := fsys.resolveDest(spec.Dest)
		if err != nil {
			return nil, fmt.Errorf("mount %d at %s: resolving destination: %w", i, spec.Dest, err)
		}
		if dest == "/" {
			return nil, fmt.Errorf("mount %d at %s: mounts over the root are not supported", i, spec.Dest)
		}
		ent.info.Dest = dest
		for k := range fsys.mounts {
			if k == dest || strings.HasPrefix(k, dest+"/") {
				delete(fsys.mounts, k)
			}
		}
		fsys.mounts[dest] = ent
	}
	if !fsys.cfg.noDirCache {
		fsys.cache = newDirCache()
	}
	ok = true
	return fsys, nil
}

// Close releases every handle and detached mount. It is idempotent.
func (fsys *FS) Close() error {
	fsys.closeOnce.Do(func() {
		var errs []error
		if fsys.cache != nil {
			fsys.cache.close()
		}
		for _, m := range fsys.all {
			if m.root != nil {
				m.root.owned = true
				m.root.close()
			}
		}
		fsys.all = nil
		fsys.mounts = nil
		fsys.closeErr = errors.Join(errs...)
	})
	return fsys.closeErr
}

// Mounts returns the visible mount table, root first, then by destination.
func (fsys *FS) Mounts() []Mount {
	var out []Mount
	for _, m := range fsys.mounts {
		out = append(out, m.info)
	}
	sortMounts(out)
	return out
}

func checkProc() error {
	var sfs unix.Statfs_t
	if err := unix.Statfs("/proc", &sfs); err != nil {
		return fmt.Errorf("checking /proc: %w", err)
	}
	if sfs.Type != unix.PROC_SUPER_MAGIC {
		return errors.New("/proc is not procfs")
	}
	return nil
}

// probeOpenat2 reports whether openat2 works. Only ENOSYS (old kernel) and
// EPERM (a seccomp filter) select the fallback; other errors keep openat2,
// whose lookups then fail closed.
func probeOpenat2(dirfd int) bool {
	fd, err := unix.Openat2(dirfd, ".", &unix.OpenHow{
		Flags:   unix.O_PATH | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS | unix.RESOLVE_NO_XDEV,
	})
	if err == nil {
		unix.Close(fd)
		return true
	}
	return err != unix.ENOSYS && err != unix.EPERM
}

// openMount opens the source of one spec. Host paths in the spec are trusted
// and are not put in errors.
func (fsys *FS) openMount(spec Spec, index int) (*mountEnt, error) {
	ent := &mountEnt{info: Mount{Dest: path.Clean("/" + spec.Dest), Index: index}}
	if len(spec.Mounts) != 1 {
		ent.info.Type = fmt.Sprintf("%d mounts", len(spec.Mounts))
		ent.kind, ent.info.Opaque, ent.info.Readonly = kindOpaque, true, true
		return ent, nil
	}
	m := spec.Mounts[0]
	ent.info.Type = m.Type
	ro := spec.Readonly
	for _, o := range m.Options {
		if o == "ro" {
			ro = true
		}
	}
	var err error
	switch {
	case m.Target != "":
		ent.kind = kindOpaque
	case m.Type == "bind" || m.Type == "rbind":
		err = fsys.openBind(ent, m)
	case m.Type == "overlay":
		err = fsys.openOverlay(ent, m, ro)
	default:
		ent.kind = kindOpaque
	}
	if err != nil {
		return nil, err
	}
	if ent.kind == kindOpaque {
		ent.info.Opaque, ent.info.Readonly = true, true
		return ent, nil
	}
	if spec.Selector != "" {
		if err := fsys.applySelector(ent, spec.Selector); err != nil {
			ent.root.owned = true
			ent.root.close()
			return nil, fmt.Errorf("selector %s: %w", spec.Selector, err)
		}
	}
	ent.info.File = !ent.root.isDir()
	ent.writable = index < 0 && !ro && ent.kind == kindHandle && ent.root.isDir()
	ent.info.Readonly = !ent.writable
	return ent, nil
}

func (fsys *FS) openBind(ent *mountEnt, m mount.Mount) error {
	fd, err := unix.Open(m.Source, unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("opening bind source: %w", err)
	}
	n := &node{fd: fd}
	if err := statNode(n); err != nil {
		unix.Close(fd)
		return fmt.Errorf("opening bind source: %w", err)
	}
	ent.kind, ent.root = kindHandle, n
	return nil
}

// applySelector replaces the mount's root with the entry at sel inside the
// source, resolved like a path inside a root made of that source alone.
func (fsys *FS) applySelector(ent *mountEnt, sel string) error {
	sub := &FS{sys: fsys.sys, cfg: fsys.cfg, root: ent, mounts: map[string]*mountEnt{"/": ent}}
	w := sub.newWalker()
	defer w.close()
	if err := w.walk(splitPath(sel), true); err != nil {
		return err
	}
	top := w.top()
	if top.n == nil {
		return syscall.ENOENT
	}
	if top.n.owned {
		// Steal the handle from the walker.
		w.stack = w.stack[:len(w.stack)-1]
	} else {
		return nil // the selector named the source's root
	}
	old := ent.root
	ent.root = top.n
	ent.root.owned = false
	old.owned = true
	old.close()
	return nil
}

// resolveDest resolves a mount destination like runc does: through the
// container's symlinks (the final one included), inside the container, over
// the mounts set up so far; components that do not exist (runc creates
// them) or lie under an opaque mount are taken lexically.
func (fsys *FS) resolveDest(dest string) (string, error) {
	w := fsys.newWalker()
	defer w.close()
	rest, err := w.walkMissing(splitPath(dest))
	if err != nil {
		return "", err
	}
	if len(rest) == 0 {
		return w.top().path, nil
	}
	return path.Clean(w.top().path + "/" + strings.Join(rest, "/")), nil
}

// opaqueErr returns an OpaqueMountError holding a copy of m's description.
func opaqueErr(m *mountEnt) error {
	info := m.info
	return &OpaqueMountError{Mount: &info}
}

// hasMountUnder reports whether a mount point lies strictly under p.
func (fsys *FS) hasMountUnder(p string) bool {
	prefix := childPath(p, "")
	for dest := range fsys.mounts {
		if strings.HasPrefix(dest, prefix) {
			return true
		}
	}
	return false
}
