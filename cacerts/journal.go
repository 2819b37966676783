package cacerts

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"time"

	"github.com/buildkit-cacerts/buildkit-cacerts/certs"
	"github.com/buildkit-cacerts/buildkit-cacerts/vfs"
)

// state is what one container path was at one moment: absent, or its type,
// identity, metadata, link target and (for files whose content we may put
// back) content. Overlay's differ compares mode, owner, size and mtime to
// the nanosecond (and content), so restoring those makes an entry
// "unchanged" for BuildKit.
type state struct {
	exists   bool
	mode     fs.FileMode // type and permission bits
	uid, gid uint32
	dev, ino uint64
	nlink    uint64 // not compared by same: a link the process made does not make a file theirs
	size     int64
	atime    time.Time
	mtime    time.Time
	target   string // symlink target
	data     []byte // regular file content, kept only where it may be restored
	kept     bool   // data holds the content
}

func (s state) isReg() bool  { return s.exists && s.mode.IsRegular() }
func (s state) isLink() bool { return s.exists && s.mode&fs.ModeSymlink != 0 }
func (s state) isDir() bool  { return s.exists && s.mode.IsDir() }

// same reports whether now is still the entry we left (ours): same type,
// identity (dev, ino), size, mtime, mode, owner and link target. Access
// times are ignored (reading a file changes them).
func (s state) same(now state) bool {
	if s.exists != now.exists {
		return false
	}
	if !s.exists {
		return true
	}
	return s.mode == now.mode && s.uid == now.uid && s.gid == now.gid &&
		s.dev == now.dev && s.ino == now.ino && s.size == now.size &&
		s.mtime.Equal(now.mtime) && s.target == now.target
}

// lstat returns the state of the container path p without following a final
// symlink. With keep, a regular file's content (at most maxBundle bytes) is
// kept too.
func lstat(fsys FS, p string, keep bool) (state, error) {
	fi, err := fsys.Lstat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return state{}, nil
	}
	if err != nil {
		return state{}, err
	}
	s := state{exists: true, mode: fi.Mode(), size: fi.Size(), mtime: fi.ModTime()}
	if st, ok := vfs.StatOf(fi); ok {
		s.uid, s.gid = st.Uid, st.Gid
		s.dev, s.ino, s.nlink = st.Dev, st.Ino, st.Nlink
		s.atime, s.mtime = st.Atime, st.Mtime
	} else {
		s.atime = s.mtime
	}
	switch {
	case s.isLink():
		if s.target, err = fsys.ReadLink(p); err != nil {
			return state{}, err
		}
	case s.isReg() && keep:
		if s.data, err = fsys.ReadFileLimit(p, maxBundle); err != nil {
			return state{}, err
		}
		s.kept = true
	}
	return s, nil
}

// entry is one journaled path.
type entry struct {
	path string
	base state
	ours state
	// blocks are our PEM blocks in this file: the whole content of an
	// anchor, or what we added to a bundle.
	blocks [][]byte
	// add is the exact Addition when we appended to a bundle.
	add *certs.Addition
}

// Journal records every change an Apply made, so Revert can undo it. It is
// returned by Plan.Apply and Install; the caller defers Revert. A Journal is
// not safe for concurrent use.
type Journal struct {
	method  Method
	entries []*entry
	byPath  map[string]*entry
	// ours are the link targets that point at our files: anchor container
	// paths and the names of our .pem links; a symlink to one of them is our
	// contribution wherever it is.
	ours map[string]bool
	// scan are directories where a process or tool may have made more links
	// to our files (the hash directory); scanned on revert when changed.
	scan []string
	// pkgDirs maps a directory that existed before the install to the
	// installed-marker file of the package whose removal rmdirs it: when the
	// package is removed during the exec, the rmdir fails because our
	// anchors are in it; revert finishes the removal once the directory is
	// empty.
	pkgDirs  map[string]string
	reverted bool

	// installed are the CAs this install put into the root (the engine's
	// set less those the image already trusted): what Sweep looks for.
	installed      *certs.Set
	installedCerts []*Cert
	// oursSums maps the SHA-256 of content we wrote to its entry, so Sweep
	// recognises a copy of a file we wrote wherever the process put it.
	oursSums map[[32]byte]*entry
	// wroteDigests are the digests of what we wrote, by lower-case hex,
	// for the sweep's derived facts (derived.go).
	wroteDigests map[string]wroteDigest
	// wroteLarge are the files we wrote too large to digest but by
	// SHA-256 at once, kept as written for the sweep (derived.go).
	wroteLarge      []wroteBlob
	wroteLargeBytes int // their total size, at most maxWroteLarge
	// anchorDirs are the image's anchor directories: a CA the process put
	// there itself during the exec is the image's, not our trace.
	anchorDirs []string
	// pkgCreated maps a directory we created that a package ships to the
	// package's file list: when the process installed the package, the
	// directory is the package's and is kept on revert.
	pkgCreated map[string]string
	// restoredBase are the files Revert put back to their base content:
	// Sweep need not read them again.
	restoredBase []*entry
	// byIno indexes changed files by inode, for linkedFromOurs.
	byIno map[devIno][]*entry
}

func newJournal(m Method) *Journal {
	return &Journal{method: m, byPath: map[string]*entry{}, ours: map[string]bool{}}
}

// Method returns how the journaled install was applied.
func (j *Journal) Method() Method {
	if j == nil {
		return MethodNone
	}
	return j.method
}

// Paths lists the container paths the install changed, in the order it
// changed them.
func (j *Journal) Paths() []string {
	if j == nil {
		return nil
	}
	var out []string
	for _, e := range j.entries {
		if !e.base.same(e.ours) || e.base.exists != e.ours.exists {
			out = append(out, e.path)
		}
	}
	return out
}

// hasEntry reports whether p is journaled.
func (j *Journal) hasEntry(p string) bool {
	_, ok := j.byPath[p]
	return ok
}

// record journals the base state of p before its first change.
func (j *Journal) record(fsys FS, p string, keep bool) (*entry, error) {
	if e, ok := j.byPath[p]; ok {
		return e, nil
	}
	s, err := lstat(fsys, p, keep)
	if err != nil {
		return nil, fmt.Errorf("recording %s: %w", p, err)
	}
	e := &entry{path: p, base: s}
	j.entries = append(j.entries, e)
	j.byPath[p] = e
	return e, nil
}

// recordRead is record with keep, reusing the content the plan already
// read for p when the file is still that size (nothing runs in the
// container between the plan and the install).
func (j *Journal) recordRead(fsys FS, p string, read bundleRead) (*entry, error) {
	if _, ok := j.byPath[p]; ok || read.path != p || read.data == nil {
		return j.record(fsys, p, true)
	}
	s, err := lstat(fsys, p, false)
	if err != nil {
		return nil, fmt.Errorf("recording %s: %w", p, err)
	}
	if s.isReg() && s.size == int64(len(read.data)) {
		s.data, s.kept = read.data, true
	} else if s.isReg() {
		if s, err = lstat(fsys, p, true); err != nil {
			return nil, fmt.Errorf("recording %s: %w", p, err)
		}
	}
	e := &entry{path: p, base: s}
	j.entries = append(j.entries, e)
	j.byPath[p] = e
	return e, nil
}

// recordParent journals the directory holding p, whose mtime changes when
// an entry in it is created, renamed or removed.
func (j *Journal) recordParent(fsys FS, p string) error {
	_, err := j.record(fsys, path.Dir(p), false)
	return err
}

// writeFile replaces or creates the file p with data and journals it.
// blocks are our PEM blocks in data. An existing regular file with one link
// whose content the journal holds is written in place (writeBack); anything
// else gets a new inode renamed over the name.
func (j *Journal) writeFile(fsys FS, p string, data []byte, perm fs.FileMode, blocks [][]byte) (*entry, error) {
	if err := j.recordParent(fsys, p); err != nil {
		return nil, err
	}
	e, err := j.record(fsys, p, true)
	if err != nil {
		return nil, err
	}
	if e.base.exists && !e.base.isReg() {
		// A symlink we replace by a file (its target could not be written),
		// or something we must not open: remove the link, never follow it.
		if !e.base.isLink() {
			return nil, fmt.Errorf("writing %s: not a regular file or symlink; remove it from the image or set SSL_CERT_FILE", p)
		}
		if err := fsys.Remove(p); err != nil {
			return nil, fmt.Errorf("replacing link %s: %w", p, err)
		}
	}
	inPlace := e.base.isReg() && e.base.nlink == 1 && e.base.kept
	if err := writeBack(fsys, p, data, perm, inPlace); err != nil {
		return nil, fmt.Errorf("writing %s: %w", p, err)
	}
	e.blocks = append(e.blocks, blocks...)
	j.noteWrote(e, data)
	return e, nil
}

// writeBack writes data to p: in place when inPlace is set and the vfs
// agrees (a regular file with one link: no new inode, which is what costs
// on ext4), else with WriteFile (new inode, rename; perm for a new file).
// The in-place write keeps the inode, so the caller must hold what it needs
// to put the old content back (a failure may leave it partly written).
func writeBack(fsys FS, p string, data []byte, perm fs.FileMode, inPlace bool) error {
	if inPlace {
		err := fsys.Overwrite(p, data)
		if !errors.Is(err, vfs.ErrNotInPlace) {
			return err
		}
	}
	return fsys.WriteFile(p, data, perm)
}

// symlink makes p a symlink to target, replacing what is there, and
// journals it.
func (j *Journal) symlink(fsys FS, target, p string) error {
	if err := j.recordParent(fsys, p); err != nil {
		return err
	}
	e, err := j.record(fsys, p, true)
	if err != nil {
		return err
	}
	if e.base.exists {
		if e.base.isDir() {
			return fmt.Errorf("linking %s: a directory is in the way", p)
		}
		if err := fsys.Remove(p); err != nil {
			return fmt.Errorf("replacing %s: %w", p, err)
		}
	}
	if err := fsys.Symlink(target, p); err != nil {
		return fmt.Errorf("linking %s: %w", p, err)
	}
	return nil
}

// remove removes p (a file or link) and journals it.
func (j *Journal) remove(fsys FS, p string) error {
	if err := j.recordParent(fsys, p); err != nil {
		return err
	}
	e, err := j.record(fsys, p, true)
	if err != nil {
		return err
	}
	if !e.base.exists {
		return nil
	}
	if err := fsys.Remove(p); err != nil {
		return fmt.Errorf("removing %s: %w", p, err)
	}
	return nil
}

// mkdirAll creates directory p and missing parents, journaling each one it
// creates and the directory above the topmost.
func (j *Journal) mkdirAll(fsys FS, p string) error {
	fi, err := fsys.Lstat(p)
	if err == nil && fi.IsDir() {
		return nil
	}
	// Journal the existing ancestor and every missing level before creating.
	var missing []string
	for q := p; ; q = path.Dir(q) {
		fi, err := fsys.Lstat(q)
		if err == nil {
			if !fi.IsDir() && fi.Mode()&fs.ModeSymlink == 0 {
				return fmt.Errorf("creating %s: %s is not a directory", p, q)
			}
			if _, err := j.record(fsys, q, false); err != nil {
				return err
			}
			break
		}
		if !errors.Is(err, fs.ErrNotExist) || q == "/" {
			return fmt.Errorf("creating %s: %w", p, err)
		}
		missing = append(missing, q)
	}
	for _, q := range missing {
		if _, err := j.record(fsys, q, false); err != nil {
			return err
		}
	}
	if _, err := fsys.MkdirAll(p, 0o755); err != nil {
		return fmt.Errorf("creating %s: %w", p, err)
	}
	return nil
}

// finish records the state we leave for every journaled path.
func (j *Journal) finish(fsys FS) error {
	var errs []error
	for _, e := range j.entries {
		s, err := lstat(fsys, e.path, false)
		if err != nil {
			errs = append(errs, fmt.Errorf("recording %s: %w", e.path, err))
			continue
		}
		e.ours = s
	}
	return errors.Join(errs...)
}

// packageShips records that dir, which we are about to create, is shipped
// by the package whose dpkg file list is list: revert keeps it when the
// process installed that package.
func (j *Journal) packageShips(dir, list string) {
	if j.pkgCreated == nil {
		j.pkgCreated = map[string]string{}
	}
	j.pkgCreated[dir] = list
}

// markOurs notes link targets that lead to our files — an anchor's container
// path, the name of our .pem link: a symlink to one of them is our
// contribution wherever revert or the sweep finds it.
func (j *Journal) markOurs(targets ...string) {
	for _, t := range targets {
		j.ours[t] = true
	}
}

// scanForLinks notes a directory where a process or tool may make more links
// to our files (a hash directory): revert scans it when it changed. It
// reports whether dir was new to the journal.
func (j *Journal) scanForLinks(dir string) bool {
	for _, s := range j.scan {
		if s == dir {
			return false
		}
	}
	j.scan = append(j.scan, dir)
	return true
}

// wrote reports whether we already put our blocks into the file p.
func (j *Journal) wrote(p string) bool {
	e, ok := j.byPath[p]
	return ok && len(e.blocks) > 0
}

// watchPackageDir notes that the existing directory dir is removed when the
// package whose installed-marker file is marker is removed: Debian's
// ca-certificates.postrm runs `rmdir /usr/local/share/ca-certificates
// 2>/dev/null || true` on remove, which fails while our anchors are in it.
// Revert finishes the removal once the directory is empty (restoreDir).
func (j *Journal) watchPackageDir(fsys FS, dir, marker string) {
	fi, err := fsys.Lstat(dir)
	if err != nil || !fi.IsDir() {
		return
	}
	if fi, err := fsys.Lstat(marker); err != nil || !fi.Mode().IsRegular() {
		return
	}
	if j.pkgDirs == nil {
		j.pkgDirs = map[string]string{}
	}
	j.pkgDirs[dir] = marker
	if _, err := j.record(fsys, dir, false); err != nil {
		delete(j.pkgDirs, dir)
	}
}

// adoptChanges journals what a tool changed behind the journal's back (the
// command path's update tool): changed are entries diffSnapshots made from
// the snapshots before and after the tool ran; an entry for a path already
// journaled is dropped (the journal's base is older). The content the tool
// wrote is noted by hash, so the sweep recognises a copy of it (mv of
// /etc/ssl is a copy on overlay) wherever it lands. Every directory holding
// a changed entry is journaled too, first, since restoring a file renames a
// new inode into it (a tool that rewrote a file in place left it alone), so
// its mtime is put back after.
func (j *Journal) adoptChanges(fsys FS, changed []*entry, before, after map[string]state) {
	for _, e := range changed {
		if _, ok := j.byPath[e.path]; ok {
			continue
		}
		j.entries = append(j.entries, e)
		j.byPath[e.path] = e
		if e.ours.isReg() && e.ours.size <= maxBundle && !e.base.same(e.ours) {
			if data, err := fsys.ReadFileLimit(e.path, maxBundle); err == nil {
				j.noteWrote(e, data)
			}
		}
	}
	for _, e := range append([]*entry(nil), j.entries...) {
		par := path.Dir(e.path)
		if _, ok := j.byPath[par]; ok {
			continue
		}
		b, okb := before[par]
		a, oka := after[par]
		if !okb || !oka || !b.isDir() {
			continue
		}
		pe := &entry{path: par, base: b, ours: a}
		j.entries = append([]*entry{pe}, j.entries...)
		j.byPath[par] = pe
	}
}
