package cacerts

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/moby/buildkit/util/bklog"
	"github.com/sirupsen/logrus"

	"github.com/buildkit-cacerts/buildkit-cacerts/certs"
)

// depth is the number of components of a container path.
func depth(p string) int { return strings.Count(p, "/") }

// Revert undoes the install on fsys (a fresh view of the same container
// root is fine: every path is resolved again). Where a path is still what
// the install left, its base state is restored exactly — content, mode,
// owner and mtime to the nanosecond; entries that did not exist are removed,
// directories deepest first. Where the process changed a path, only our
// contribution is removed (our PEM blocks from a bundle, our anchors, links
// to our files) and its changes are kept. A directory we created is removed
// only if empty. Revert never runs a tool. The error names every path where
// something of ours may be left; Revert is a no-op the second time.
func (j *Journal) Revert(ctx context.Context, fsys FS) error {
	if j == nil || j.reverted {
		return nil
	}
	j.reverted = true
	start := time.Now()
	log := bklog.G(ctx).WithField("method", j.method.String())

	// States before we touch anything: our own removals change directories.
	now := make(map[*entry]state, len(j.entries))
	for _, e := range j.entries {
		s, err := lstat(fsys, e.path, false)
		if err != nil {
			s = state{exists: true} // unreadable: treat as changed, never as ours
		}
		now[e] = s
	}

	var errs []error
	var left []string // paths whose revert failed
	var dirs []*entry
	changed := 0
	j.indexOurs()
	for i := len(j.entries) - 1; i >= 0; i-- {
		if err := ctx.Err(); err != nil {
			return &RevertError{Left: j.Paths(), Err: err}
		}
		e := j.entries[i]
		if e.base.isDir() || e.ours.isDir() {
			dirs = append(dirs, e)
			continue
		}
		n := now[e]
		if e.base.same(e.ours) && (e.ours.same(n) || j.linkedFromOurs(e, n) == nil) {
			continue // untouched by us, and not a link to our copy
		}
		if !j.inPlace(fsys, e, now) {
			// A parent was swapped (for a symlink, another directory): the
			// name now leads elsewhere, and what we wrote went with the old
			// directory. Touch nothing there.
			log.WithField("path", e.path).Debug("parent directory replaced by the process; entry left alone")
			continue
		}
		var err error
		if e.ours.same(n) {
			err = j.restore(fsys, e, n)
			if err == nil && e.base.isReg() {
				j.restoredBase = append(j.restoredBase, e)
			}
		} else if e.ours.metaOnly(n) && e.base.isReg() && e.base.kept {
			// Only mode or owner changed (a chmod of a keystore we
			// wrote): the content is still ours. The run without us
			// would have changed the base file's mode: put back its
			// content and times, keep the process's mode and owner.
			changed++
			err = j.restoreContent(fsys, e, n)
		} else if x := j.linkedFromOurs(e, n); x != nil {
			changed++
			err = j.restoreLinked(fsys, e, n, x, log)
		} else {
			changed++
			err = j.removeOurs(fsys, e, n, log)
		}
		if err != nil {
			errs, left = append(errs, err), append(left, e.path)
		}
	}
	for _, d := range j.scan {
		if err := ctx.Err(); err != nil {
			return &RevertError{Left: j.Paths(), Err: err}
		}
		if e, ok := j.byPath[d]; ok && (e.ours.same(now[e]) || now[e].ino != e.ours.ino || now[e].dev != e.ours.dev) {
			continue // nobody else wrote there, or it is not our directory any more
		}
		if err := j.removeLinksToOurs(fsys, d); err != nil {
			errs, left = append(errs, err), append(left, d)
		}
	}
	sort.SliceStable(dirs, func(a, b int) bool { return depth(dirs[a].path) > depth(dirs[b].path) })
	for _, e := range dirs {
		n := now[e]
		if !n.isDir() || n.dev != e.ours.dev || n.ino != e.ours.ino || !j.inPlace(fsys, e, now) {
			continue // not the directory we left: the process replaced it
		}
		if err := j.restoreDir(fsys, e, n); err != nil {
			errs, left = append(errs, err), append(left, e.path)
		}
	}
	log.WithFields(logrus.Fields{"paths": len(j.entries), "changed_by_process": changed, "ms": time.Since(start).Milliseconds()}).Debug("CA certificates reverted")
	if len(errs) > 0 {
		return &RevertError{Left: left, Err: errors.Join(errs...)}
	}
	return nil
}

// RevertError is the error of a Revert that did not finish: our changes may
// be left in the layer at the paths in Left (the caller must fail the exec,
// docs/design.md invariant 4). Err says why, path by path.
type RevertError struct {
	// Left are the container paths whose revert failed, or, when the
	// deadline passed, every path the install changed.
	Left []string
	Err  error
}

// Error names what may be left and why.
func (e *RevertError) Error() string {
	return "reverting CA certificates, our changes may be left in the layer: " + e.Err.Error()
}

// Unwrap returns Err.
func (e *RevertError) Unwrap() error { return e.Err }

// inPlace reports whether e's name still lives in the directory it was
// written in: its parent resolves to the same directory inode as when the
// install finished.
func (j *Journal) inPlace(fsys FS, e *entry, now map[*entry]state) bool {
	par := path.Dir(e.path)
	if e.path == "/" {
		return true
	}
	if pe, ok := j.byPath[par]; ok {
		n := now[pe]
		return n.isDir() && n.dev == pe.ours.dev && n.ino == pe.ours.ino && j.inPlace(fsys, pe, now)
	}
	rp, _, err := fsys.EvalSymlinks(par)
	return err == nil && rp == par
}

// restore puts back e's base state; now is what is there (our state).
func (j *Journal) restore(fsys FS, e *entry, now state) error {
	b := e.base
	switch {
	case !b.exists:
		if now.exists {
			if err := fsys.Remove(e.path); err != nil {
				return fmt.Errorf("removing %s: %w", e.path, err)
			}
		}
		return nil
	case b.isReg():
		if !b.kept {
			return fmt.Errorf("restoring %s: its content was too large to keep (over %d bytes); the tool's version is left", e.path, maxBundle)
		}
		cur := &now // both writes keep the replaced file's mode and owner
		if !now.isReg() {
			cur = nil
			if now.exists {
				if err := fsys.Remove(e.path); err != nil {
					return fmt.Errorf("removing link %s: %w", e.path, err)
				}
			}
		}
		// now is the file we left (ours.same): with one link it is written
		// back in place; one the process linked elsewhere gets a new inode,
		// so the other name keeps what it has.
		if err := writeBack(fsys, e.path, b.data, b.mode.Perm(), now.isReg() && now.nlink == 1); err != nil {
			return fmt.Errorf("restoring %s: %w", e.path, err)
		}
		return restoreMeta(fsys, e.path, b, cur)
	case b.isLink():
		cur := &now
		if !(now.isLink() && now.target == b.target) {
			cur = nil
			if now.exists {
				if err := fsys.Remove(e.path); err != nil {
					return fmt.Errorf("removing %s: %w", e.path, err)
				}
			}
			if err := fsys.Symlink(b.target, e.path); err != nil {
				return fmt.Errorf("restoring link %s: %w", e.path, err)
			}
		}
		return restoreMeta(fsys, e.path, b, cur)
	}
	return fmt.Errorf("restoring %s: unexpected base type %v", e.path, b.mode.Type())
}

// restoreMeta sets mode (not on links), owner and times of p to s; cur is
// what p has now, or nil to look.
func restoreMeta(fsys FS, p string, s state, cur *state) error {
	if cur == nil {
		c, err := lstat(fsys, p, false)
		if err != nil {
			return fmt.Errorf("restoring %s: %w", p, err)
		}
		cur = &c
	}
	if !cur.isLink() && cur.mode.Perm() != s.mode.Perm() || cur.mode&(fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky) != s.mode&(fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky) {
		if err := fsys.Chmod(p, s.mode); err != nil {
			return fmt.Errorf("restoring mode of %s: %w", p, err)
		}
	}
	if cur.uid != s.uid || cur.gid != s.gid {
		if err := fsys.Lchown(p, int(s.uid), int(s.gid)); err != nil {
			return fmt.Errorf("restoring owner of %s: %w", p, err)
		}
	}
	if err := fsys.Lchtimes(p, s.atime, s.mtime); err != nil {
		return fmt.Errorf("restoring mtime of %s: %w", p, err)
	}
	return nil
}

// removeOurs removes our contribution from e, which the process changed;
// now is its current state. Their changes and metadata are kept.
func (j *Journal) removeOurs(fsys FS, e *entry, now state, log *logrus.Entry) error {
	switch {
	case !now.exists, now.isDir():
		return nil
	case now.isLink():
		if j.ours[now.target] {
			if err := fsys.Remove(e.path); err != nil {
				return fmt.Errorf("removing link %s to our CA: %w", e.path, err)
			}
		}
		return nil
	case !now.isReg():
		return nil // a FIFO or device: never opened, holds nothing of ours
	case len(e.blocks) == 0:
		return nil
	}
	data, err := fsys.ReadFileLimit(e.path, maxBundle)
	if err != nil {
		return fmt.Errorf("reading %s to remove our CAs: %w", e.path, err)
	}
	add := certs.Addition{Blocks: e.blocks}
	if e.add != nil {
		add = *e.add
	}
	out, missing := certs.RemovePEM(data, add)
	// Blocks of ours not found as we wrote them: our CAs in another form
	// (a Java keystore a tool rebuilt, a block a tool re-wrapped) are
	// removed by content, or the revert fails. When every block was found,
	// another copy of one of our CAs is the process's own.
	if missing > 0 && len(j.installed.Find(out)) > 0 {
		stripped, _, err := j.installed.Strip(out)
		if err != nil {
			return fmt.Errorf("%w: %s: %v; set BUILDKIT_CACERTS=off for this step if it must edit the trust store this way", ErrTraceLeft, e.path, err)
		}
		out = stripped
	}
	if bytes.Equal(out, data) {
		return nil
	}
	if !e.base.exists && len(bytes.TrimSpace(out)) == 0 {
		if err := fsys.Remove(e.path); err != nil {
			return fmt.Errorf("removing %s: %w", e.path, err)
		}
		return nil
	}
	if err := fsys.WriteFile(e.path, out, now.mode.Perm()); err != nil {
		return fmt.Errorf("removing our CAs from %s: %w", e.path, err)
	}
	// Keep the process's mtime: the file is theirs now.
	if err := fsys.Lchtimes(e.path, now.atime, now.mtime); err != nil {
		return fmt.Errorf("restoring mtime of %s: %w", e.path, err)
	}
	log.WithField("path", e.path).Debug("process changed a CA file; removed only our certificates")
	return nil
}

// linkedFromOurs returns the journaled entry x whose file, as we left it,
// the process hard-linked (or renamed) to e's path: n is that very inode,
// unchanged since we left it at x. dpkg does this on every database write
// (status -> status-old, lib/dpkg/dump.c), so a process running dpkg after a
// sibling's `dpkg --triggers-only` keeps our version of status as its
// status-old. Without injection it would have kept x's base instead.
func (j *Journal) linkedFromOurs(e *entry, n state) *entry {
	if !n.isReg() {
		return nil
	}
	if j.byIno == nil {
		j.indexOurs()
	}
	for _, x := range j.byIno[devIno{n.dev, n.ino}] {
		if x != e && x.ours.size == n.size && x.ours.mtime.Equal(n.mtime) {
			return x
		}
	}
	return nil
}

// devIno identifies an inode.
type devIno struct{ dev, ino uint64 }

// indexOurs indexes, by inode, the entries whose file we changed and whose
// base content we hold: linkedFromOurs looks one up per changed entry, so
// revert stays linear in the journal.
func (j *Journal) indexOurs() {
	j.byIno = map[devIno][]*entry{}
	for _, x := range j.entries {
		if x.ours.isReg() && !x.base.same(x.ours) && x.base.isReg() && x.base.kept {
			k := devIno{x.ours.dev, x.ours.ino}
			j.byIno[k] = append(j.byIno[k], x)
		}
	}
}

// metaOnly reports whether now differs from s only in mode or owner: the
// same inode, size, mtime and link target.
func (s state) metaOnly(now state) bool {
	return s.exists && now.exists && s.mode.Type() == now.mode.Type() &&
		s.dev == now.dev && s.ino == now.ino && s.size == now.size &&
		s.mtime.Equal(now.mtime) && s.target == now.target &&
		(s.mode != now.mode || s.uid != now.uid || s.gid != now.gid)
}

// restoreContent puts back e's base content and times into the file the
// process changed only the mode or owner of (now), keeping those.
func (j *Journal) restoreContent(fsys FS, e *entry, now state) error {
	if err := writeBack(fsys, e.path, e.base.data, now.mode.Perm(), now.nlink == 1); err != nil {
		return fmt.Errorf("restoring %s: %w", e.path, err)
	}
	keep := e.base
	keep.mode, keep.uid, keep.gid = now.mode, now.uid, now.gid
	return restoreMeta(fsys, e.path, keep, nil)
}

// restoreLinked handles e, which the process made a link to our version of
// x (see linkedFromOurs). Where that content equals x's base content, the
// run without injection would have linked x's base file here: its mode,
// owner and times are put back, and nothing else changes. Otherwise only our
// contribution is removed, as for any file the process changed.
func (j *Journal) restoreLinked(fsys FS, e *entry, n state, x *entry, log *logrus.Entry) error {
	data, err := fsys.ReadFileLimit(e.path, maxBundle)
	if err != nil {
		return fmt.Errorf("reading %s: %w", e.path, err)
	}
	if !bytes.Equal(data, x.base.data) {
		return j.removeOurs(fsys, e, n, log)
	}
	log.WithField("path", e.path).WithField("from", x.path).Debug("process linked our unchanged copy; restoring the base's metadata")
	return restoreMeta(fsys, e.path, x.base, &n)
}

// removeLinksToOurs removes, in directory d, every symlink that points at
// one of our files (a process that ran the update tool or openssl rehash
// may have made new ones), keeping the directory's mtime.
func (j *Journal) removeLinksToOurs(fsys FS, d string) error {
	dirState, err := lstat(fsys, d, false)
	if err != nil || !dirState.isDir() {
		return nil
	}
	ents, err := fsys.ReadDir(d)
	if err != nil {
		return fmt.Errorf("listing %s for links to our CAs: %w", d, err)
	}
	var errs []error
	removed := false
	for _, de := range ents {
		if de.Type()&fs.ModeSymlink == 0 {
			continue
		}
		p := path.Join(d, de.Name())
		t, err := fsys.ReadLink(p)
		if err != nil || !j.ours[t] {
			continue
		}
		if err := fsys.Remove(p); err != nil {
			errs = append(errs, fmt.Errorf("removing link %s to our CA: %w", p, err))
			continue
		}
		removed = true
	}
	if removed {
		if e, ok := j.byPath[d]; !ok || !e.ours.same(dirState) {
			_ = fsys.Lchtimes(d, dirState.atime, dirState.mtime)
		}
	}
	return errors.Join(errs...)
}

// packageMtime returns the mtime dpkg gave the regular files of the
// package whose file list is list (the most common among the first few we
// did not write), which is what it gives the package's directories.
func (j *Journal) packageMtime(fsys FS, list string) (time.Time, bool) {
	data, err := fsys.ReadFileLimit(list, maxPackageList)
	if err != nil {
		return time.Time{}, false
	}
	count := map[time.Time]int{}
	var best time.Time
	files := 0
	// The list is the image's: look at no more than 256 of its paths.
	for i, p := range strings.Split(string(data), "\n") {
		if files >= 16 || i >= 256 {
			break
		}
		if !path.IsAbs(p) || j.hasEntry(p) {
			continue
		}
		st, err := lstat(fsys, p, false)
		if err != nil || !st.isReg() {
			continue
		}
		files++
		count[st.mtime]++
		if count[st.mtime] > count[best] {
			best = st.mtime
		}
	}
	return best, files > 0
}

// maxPackageList caps the read of a dpkg file list by packageMtime.
const maxPackageList = 1 << 20

// restoreDir puts back a directory's mtime (or removes it if we created it
// and it is empty). now is its state before Revert changed anything.
func (j *Journal) restoreDir(fsys FS, e *entry, now state) error {
	if !now.isDir() {
		return nil
	}
	if !e.base.exists {
		ents, err := fsys.ReadDir(e.path)
		if err != nil || len(ents) > 0 {
			return nil // the process made it its own
		}
		if list := j.pkgCreated[e.path]; list != "" {
			if _, err := fsys.Lstat(list); err == nil {
				// The process installed the package that ships it: the
				// directory is the package's now. dpkg found it there and
				// left our mtime; had it created it, it would have given
				// it the archive's, which is its files' (dpkg-deb clamps
				// every entry to SOURCE_DATE_EPOCH). A process that
				// changed the directory itself keeps its mtime.
				mt := now.mtime
				if now.mtime.Equal(e.ours.mtime) {
					if t, ok := j.packageMtime(fsys, list); ok {
						mt = t
					}
				}
				if err := fsys.Lchtimes(e.path, now.atime, mt); err != nil {
					return fmt.Errorf("restoring the times of %s: %w", e.path, err)
				}
				return nil
			}
		}
		if err := fsys.Remove(e.path); err != nil {
			return fmt.Errorf("removing directory %s we created: %w", e.path, err)
		}
		return nil
	}
	if !e.base.isDir() {
		return nil
	}
	if marker := j.pkgDirs[e.path]; marker != "" {
		if _, err := fsys.Lstat(marker); errors.Is(err, fs.ErrNotExist) {
			if ents, err := fsys.ReadDir(e.path); err == nil && len(ents) == 0 {
				if err := fsys.Remove(e.path); err != nil {
					return fmt.Errorf("removing %s, left by its package's removal: %w", e.path, err)
				}
				return nil
			}
		}
	}
	// Look again: our own removals in it changed its mtime since now.
	cur, err := lstat(fsys, e.path, false)
	if err != nil {
		return fmt.Errorf("restoring %s: %w", e.path, err)
	}
	if e.ours.same(now) {
		if cur.mode == e.base.mode && cur.uid == e.base.uid && cur.gid == e.base.gid && cur.mtime.Equal(e.base.mtime) {
			// Already the base: nothing to put back. This is also the case
			// of a mount point we never wrote in (a rollback after a write
			// into another mount was refused), which must not be touched.
			return nil
		}
		return restoreMeta(fsys, e.path, e.base, &cur)
	}
	// The process changed the directory: keep its mtime, not ours.
	if cur.mtime.Equal(now.mtime) {
		return nil
	}
	if err := fsys.Lchtimes(e.path, now.atime, now.mtime); err != nil {
		return fmt.Errorf("restoring mtime of %s: %w", e.path, err)
	}
	return nil
}
