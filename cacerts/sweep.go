package cacerts

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"regexp"
	"sort"
	"strconv"
	"time"

	"github.com/moby/buildkit/util/bklog"
	"github.com/sirupsen/logrus"

	"github.com/buildkit-cacerts/buildkit-cacerts/certs"
	"github.com/buildkit-cacerts/buildkit-cacerts/vfs"
)

// ErrTraceLeft is wrapped by the error of a Sweep that found one of our CAs
// in something the exec wrote and could not remove it exactly: the caller
// must fail the exec (docs/design.md invariant 8).
var ErrTraceLeft = errors.New("an engine CA certificate is left in the exec's layer")

// Changes says where to find what an exec wrote, for Sweep.
type Changes struct {
	// Upper is a read-only view of the overlay's upper directory of the
	// root: every entry in it was created or changed by the exec (or by us
	// and put back). Nil when the root has none (see Since).
	Upper FS
	// Base is a read-only view of the root as it was before the exec (the
	// overlay's lower layers), used to tell a CA the image already held at
	// a path from one the exec wrote there. Nil when unknown.
	Base FS
	// OpenBase, when Base is nil, opens it the first time Sweep needs it
	// (only a file holding one of our CAs does): most execs never pay for
	// a view of the lower layers.
	OpenBase func() (FS, error)
	// Since, when Upper is nil, makes Sweep walk the root itself and look
	// only at entries changed (ctime) at or after it: a root kept without
	// an upper directory (a plain snapshot directory). It costs a walk of
	// the whole root.
	Since time.Time
	// Skip are container paths of directories a walk of the root does not
	// enter: the mount points of the exec's other mounts (they are not the
	// exec's layer).
	Skip []string
}

// Sweep limits: a walk is bounded by the context (the revert deadline);
// these bound memory.
const (
	// sweepChunk is how much of a file Sweep reads at once; sweepOverlap
	// is kept from the previous chunk so a certificate across the
	// boundary is seen (larger certificates are not CAs we install).
	sweepChunk   = 4 << 20
	sweepOverlap = 64 << 10
	// maxSweepEdit caps a file Sweep rewrites (a bundle or keystore holding
	// our CA); a bigger file holding one fails the exec.
	maxSweepEdit = 64 << 20
)

// hashName matches OpenSSL's subject-hash names: <8 hex digits>.<n>.
var hashName = regexp.MustCompile(`^[0-9a-f]{8}\.[0-9]+$`)

// SweepStats says what a Sweep looked at and did.
type SweepStats struct {
	Entries int   // entries of the exec's changes walked
	Files   int   // regular files read
	Bytes   int64 // bytes read
	Cleaned []string
}

// Sweep searches everything the exec wrote for the CAs this journal
// installed, after Revert, and removes what it finds through fsys (the
// container root, a fresh view): our PEM blocks from text files, our
// entries from Java keystores (a file the process wrote holding nothing but
// our CAs is left empty), copies of files we wrote (put back to their base
// content, or removed), symlinks to our
// files, and subject-hash links of our CAs that lead to no certificate of
// that hash. A file holding one of our CAs that cannot be cleaned exactly
// gives an error wrapping ErrTraceLeft that names it: the caller fails the
// exec. CAs the image held before the exec at the same path, and CAs the
// process itself put into the image's own anchors during the exec, are not
// ours to remove. The cost is proportional to what the exec wrote (the
// upper directory), not to the image. See docs/design.md invariant 8.
func (j *Journal) Sweep(ctx context.Context, fsys FS, ch Changes) (SweepStats, error) {
	var st SweepStats
	if j == nil || j.installed.Len() == 0 {
		return st, nil
	}
	start := time.Now()
	s := &sweeper{j: j, fsys: fsys, ch: ch, set: j.installed, st: &st, dirTimes: map[string]state{}, skip: map[string]bool{}}
	if ch.Upper == nil {
		for _, p := range ch.Skip {
			s.skip[p] = true
		}
	}
	s.facts = j.derived()
	s.hashes = map[uint32]bool{}
	for _, c := range j.installedCerts {
		s.hashes[c.SubjectHash] = true
	}
	var err error
	if ch.Upper != nil {
		err = s.walk(ctx, ch.Upper, "/")
	} else {
		err = s.walk(ctx, fsys, "/")
	}
	if err == nil {
		err = s.clean(ctx)
	}
	if err == nil {
		err = s.cleanFacts(ctx)
	}
	if err == nil && len(st.Cleaned) > 0 {
		s.removeCreatedDirs()
	}
	s.restoreDirTimes()
	log := bklog.G(ctx).WithFields(logrus.Fields{"entries": st.Entries, "files": st.Files, "bytes": st.Bytes, "ms": time.Since(start).Milliseconds()})
	if len(st.Cleaned) > 0 {
		log.WithField("cleaned", st.Cleaned).Info("cacerts: removed engine CAs the exec copied into its layer")
	} else {
		log.Debug("cacerts: no engine CA left in the exec's layer")
	}
	return st, err
}

type sweeper struct {
	j      *Journal
	fsys   FS
	ch     Changes
	set    *certs.Set
	hashes map[uint32]bool
	st     *SweepStats
	// facts are what a process may derive from our files (derived.go);
	// factFiles the text files of the exec's changes holding one.
	facts     *derivedFacts
	factFiles []string
	// buf is scan's read buffer, one for the whole sweep: allocating
	// (and zeroing) 4 MiB per file made a layer of many small files cost
	// ~1 ms a file (a RUN go mod download ran past the revert timeout).
	buf []byte

	skip  map[string]bool
	dirs  []string // directories of the exec's changes
	files []sweepFile
	// restoredBase indexes Journal.restoredBase by path.
	restoredBase map[string]*entry
	links        []string
	// dirTimes are the states of directories before the sweep changed an
	// entry in them, to put their times back: the process's, not ours.
	dirTimes map[string]state
}

// sweepFile is a regular file of the exec's changes holding our CAs.
type sweepFile struct {
	path string
	hits []certs.Hit
}

// walk lists dir of view v (the upper directory, or the root) and reads
// every regular file for our CAs.
func (s *sweeper) walk(ctx context.Context, v FS, dir string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("searching the exec's changes for engine CAs: %w", err)
	}
	ents, err := v.ReadDir(dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("searching the exec's changes for engine CAs: listing %s: %w", dir, err)
	}
	for _, de := range ents {
		p := path.Join(dir, de.Name())
		s.st.Entries++
		t := de.Type()
		switch {
		case t.IsDir():
			if s.skip[p] {
				continue
			}
			s.dirs = append(s.dirs, p)
			if err := s.walk(ctx, v, p); err != nil {
				return err
			}
		case t&fs.ModeSymlink != 0:
			if s.older(v, p) {
				continue
			}
			s.links = append(s.links, p)
		case t.IsRegular():
			if s.older(v, p) || s.restored(p) {
				continue
			}
			hits, fact, err := s.scan(ctx, v, p)
			if err != nil {
				return err
			}
			if len(hits) > 0 {
				s.files = append(s.files, sweepFile{path: p, hits: hits})
			}
			if fact {
				s.factFiles = append(s.factFiles, p)
			}
		}
		// Whiteouts (char 0:0), FIFOs, sockets and devices hold nothing.
	}
	return nil
}

// restored reports whether p is a file Revert put back to its base
// content (which held none of the CAs we installed: we skip CAs the image
// trusts) and that is still that file.
func (s *sweeper) restored(p string) bool {
	if s.restoredBase == nil {
		s.restoredBase = map[string]*entry{}
		for _, e := range s.j.restoredBase {
			s.restoredBase[e.path] = e
		}
	}
	e, ok := s.restoredBase[p]
	if !ok {
		return false
	}
	now, err := lstat(s.fsys, p, false)
	return err == nil && now.isReg() && now.size == e.base.size && now.mtime.Equal(e.base.mtime) && now.mode == e.base.mode
}

// older reports, when Sweep walks the root itself, whether p was last
// changed before the install began (the image's, not the exec's).
func (s *sweeper) older(v FS, p string) bool {
	if s.ch.Upper != nil || s.ch.Since.IsZero() {
		return false
	}
	fi, err := v.Lstat(p)
	if err != nil {
		return true
	}
	c, ok := ctimeOf(fi)
	return ok && c.Before(s.ch.Since)
}

// scan reads the regular file p of v in chunks and returns our CAs in it,
// and whether it is text holding a derived fact.
func (s *sweeper) scan(ctx context.Context, v FS, p string) (_ []certs.Hit, fact bool, _ error) {
	f, err := v.Open(p)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, false, nil
		}
		return nil, false, fmt.Errorf("searching %s for engine CAs: %w", p, err)
	}
	defer f.Close()
	s.st.Files++
	// One buffer for the whole sweep, as large as the largest file read
	// so far up to a chunk: most files of an exec are small, and a fresh
	// 4 MiB buffer per file cost more than reading them.
	want := sweepChunk + sweepOverlap
	if fi, err := f.Stat(); err == nil && fi.Size() < int64(want) {
		want = int(fi.Size()) + 1 // +1: ReadFull sees EOF in the same call
	}
	if cap(s.buf) < want {
		s.buf = make([]byte, 0, want)
	}
	buf := s.buf[:0:want]
	seen := map[[2]int]bool{}
	var out []certs.Hit
	text := s.facts != nil
	for {
		if err := ctx.Err(); err != nil {
			return nil, false, fmt.Errorf("searching %s for engine CAs: %w", p, err)
		}
		n, rerr := io.ReadFull(f, buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		s.st.Bytes += int64(n)
		for _, h := range s.set.Find(buf) {
			k := [2]int{h.Index, int(h.Format)}
			if !seen[k] {
				seen[k] = true
				out = append(out, h)
			}
		}
		// Derived facts are looked for in text only (no NUL byte).
		if text && bytes.IndexByte(buf, 0) >= 0 {
			text, fact = false, false
		}
		if text && !fact {
			fact = s.facts.in(buf)
		}
		if rerr != nil {
			if rerr == io.EOF || rerr == io.ErrUnexpectedEOF {
				return out, fact, nil
			}
			return nil, false, fmt.Errorf("searching %s for engine CAs: %w", p, rerr)
		}
		if cap(buf) < sweepChunk+sweepOverlap {
			// The file grew past what Stat said: read on in chunks.
			nb := make([]byte, len(buf), sweepChunk+sweepOverlap)
			copy(nb, buf)
			buf, s.buf = nb, nb[:0]
			continue
		}
		keep := buf[len(buf)-sweepOverlap:]
		buf = append(buf[:0], keep...)
	}
}

// clean removes our CAs from the files and links found.
func (s *sweeper) clean(ctx context.Context) error {
	userCAs := s.userCAs()
	var errs []error
	for _, f := range s.files {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("removing engine CAs from the exec's changes: %w", err)
		}
		if err := s.cleanFile(f, userCAs); err != nil {
			errs = append(errs, err)
		}
	}
	for _, l := range s.links {
		if err := s.cleanLink(l); err != nil {
			errs = append(errs, err)
		}
	}
	for _, l := range s.links {
		if err := s.relink(l); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// removeCreatedDirs removes the directories the install created (the
// generic path's /etc/ssl/certs on an image without one) that the sweep
// emptied, where they are or where the process moved them (mv of a
// directory of the upper layer keeps its inode): the run without us never
// had them. Deepest first; anything not empty is the process's.
func (s *sweeper) removeCreatedDirs() {
	created := map[devIno]*entry{}
	for _, e := range s.j.entries {
		if !e.base.exists && e.ours.isDir() {
			if list := s.j.pkgCreated[e.path]; list != "" {
				if _, err := s.fsys.Lstat(list); err == nil {
					continue // the process installed the package that ships it
				}
			}
			created[devIno{e.ours.dev, e.ours.ino}] = e
		}
	}
	if len(created) == 0 {
		return
	}
	cands := append([]string(nil), s.dirs...)
	for _, e := range created {
		cands = append(cands, e.path)
	}
	sort.Slice(cands, func(a, b int) bool { return depth(cands[a]) > depth(cands[b]) })
	done := map[string]bool{}
	for _, d := range cands {
		if done[d] {
			continue
		}
		done[d] = true
		now, err := lstat(s.fsys, d, false)
		if err != nil || !now.isDir() || created[devIno{now.dev, now.ino}] == nil {
			continue
		}
		if ents, err := s.fsys.ReadDir(d); err != nil || len(ents) > 0 {
			continue
		}
		s.touchDir(path.Dir(d))
		if s.fsys.Remove(d) == nil {
			delete(s.dirTimes, d)
			s.st.Cleaned = append(s.st.Cleaned, d)
		}
	}
}

// relink gives a subject-hash link to the image's own copy of one of our
// CAs, l (a .pem link the process made in a hash directory, such as the
// one update-ca-certificates makes for an anchor the Dockerfile added),
// when it has none: `openssl rehash` skipped it as a duplicate of our
// file, which sorted first, and the revert removed our link. The run
// without us would have linked the image's copy.
func (s *sweeper) relink(l string) error {
	dir, name := path.Dir(l), path.Base(l)
	if !s.j.isScanDir(dir) || hashName.MatchString(name) || s.j.ours[name] {
		return nil
	}
	data, err := s.fsys.ReadFileLimit(l, maxBundle)
	if err != nil {
		return nil
	}
	sum, h, ok := certFileDigest(name, data)
	if !ok || !s.hashes[h] {
		return nil
	}
	free := -1
	for n := 0; n < maxCollisions; n++ {
		hl := path.Join(dir, fmt.Sprintf("%08x.%d", h, n))
		hd, err := s.fsys.ReadFileLimit(hl, maxBundle)
		if errors.Is(err, fs.ErrNotExist) {
			if _, lerr := s.fsys.Lstat(hl); errors.Is(lerr, fs.ErrNotExist) {
				if free < 0 {
					free = n
				}
				break
			}
			continue
		}
		if err != nil {
			continue
		}
		if d, _, ok := certFileDigest(name, hd); ok && d == sum {
			return nil // a link to an equal certificate is there
		}
	}
	if free < 0 {
		return nil
	}
	s.touchDir(dir)
	hl := path.Join(dir, fmt.Sprintf("%08x.%d", h, free))
	if err := s.fsys.Symlink(name, hl); err != nil {
		return fmt.Errorf("linking %s to the image's own copy of an engine CA: %w", hl, err)
	}
	return nil
}

// userCAs returns the indexes of our CAs that the process put into the
// image's own anchor directories during the exec (a Dockerfile that adds
// the same CA the engine injects): those are the image's, not our trace.
func (s *sweeper) userCAs() map[int]bool {
	out := map[int]bool{}
	if len(s.files) == 0 {
		return out
	}
	// The image's own anchors, whenever they were added: their CAs are the
	// image's, wherever the update tool copied them.
	for _, dir := range s.j.anchorDirs[:min(1, len(s.j.anchorDirs))] {
		ents, err := s.fsys.ReadDir(dir)
		if err != nil || len(ents) > maxOwnAnchors {
			continue
		}
		for _, de := range ents {
			p := path.Join(dir, de.Name())
			if !de.Type().IsRegular() || s.j.ours[p] {
				continue
			}
			data, err := s.fsys.ReadFileLimit(p, maxCAFile)
			if err != nil {
				continue
			}
			for _, h := range s.set.Find(data) {
				out[h.Index] = true
			}
		}
	}
	for _, f := range s.files {
		if !s.j.isAnchorDir(path.Dir(f.path)) || s.j.ours[f.path] {
			continue
		}
		if _, ours := s.j.byPath[f.path]; ours {
			continue
		}
		for _, h := range f.hits {
			out[h.Index] = true
		}
	}
	return out
}

// cleanFile removes our CAs from the regular file f.path.
func (s *sweeper) cleanFile(f sweepFile, userCAs map[int]bool) error {
	p := f.path
	var hits []certs.Hit
	for _, h := range f.hits {
		if !userCAs[h.Index] {
			hits = append(hits, h)
		}
	}
	if len(hits) == 0 {
		return nil
	}
	if s.inBase(p, hits) {
		return nil
	}
	now, err := lstat(s.fsys, p, false)
	if err != nil || !now.isReg() {
		return nil // gone, or replaced: the root shows something else
	}
	if now.size > maxSweepEdit {
		return fmt.Errorf("%w: %s (%d bytes) holds one and is too large to clean; set BUILDKIT_CACERTS=off for this step if it must copy the trust store", ErrTraceLeft, p, now.size)
	}
	data, err := s.fsys.ReadFileLimit(p, maxSweepEdit)
	if err != nil {
		return fmt.Errorf("%w: %s: reading it: %v", ErrTraceLeft, p, err)
	}
	// A file we wrote, under another name (a rename, a hard link: the same
	// inode) or copied (cp, cp -a, mv across directories: the same
	// content; a plain cp gets a new mtime, so content alone decides, and a
	// file the process wrote that holds exactly what we wrote is taken for
	// a copy too): what the run without us would have there is the base
	// file, or nothing.
	x := s.j.sameInode(now)
	if x == nil {
		x = s.j.wroteContent(data)
	}
	if x != nil {
		s.touchDir(path.Dir(p))
		if !x.base.exists {
			return s.remove(p, "copy of our "+x.path)
		}
		if x.base.isReg() && x.base.kept {
			if err := s.fsys.WriteFile(p, x.base.data, x.base.mode.Perm()); err != nil {
				return fmt.Errorf("%w: %s: putting back the base of %s: %v", ErrTraceLeft, p, x.path, err)
			}
			if err := restoreMeta(s.fsys, p, x.base, nil); err != nil {
				return fmt.Errorf("%w: %w", ErrTraceLeft, err)
			}
			s.st.Cleaned = append(s.st.Cleaned, p)
			return nil
		}
	}
	out, removed, err := s.set.Strip(data)
	if err != nil {
		return fmt.Errorf("%w: %s: %v; set BUILDKIT_CACERTS=off for this step if it must copy the trust store", ErrTraceLeft, p, err)
	}
	if removed == 0 || bytes.Equal(out, data) {
		return nil
	}
	return s.rewrite(p, now, out, "our CAs")
}

// rewrite writes data to the process's file p (now: its state) in place of
// what it held, keeping its mode and times: the file is the process's.
func (s *sweeper) rewrite(p string, now state, data []byte, without string) error {
	s.touchDir(path.Dir(p))
	if err := s.fsys.WriteFile(p, data, now.mode.Perm()); err != nil {
		return fmt.Errorf("%w: %s: writing it without %s: %v", ErrTraceLeft, p, without, err)
	}
	if err := s.fsys.Lchtimes(p, now.atime, now.mtime); err != nil {
		return fmt.Errorf("%w: %s: %v", ErrTraceLeft, p, err)
	}
	s.st.Cleaned = append(s.st.Cleaned, p)
	return nil
}

// inBase reports whether the base (the root before the exec) held every
// one of hits at p: the image's own content, not ours.
func (s *sweeper) inBase(p string, hits []certs.Hit) bool {
	base := s.base()
	if base == nil {
		return false
	}
	data, err := base.ReadFileLimit(p, maxSweepEdit)
	if err != nil {
		return false
	}
	had := map[int]bool{}
	for _, h := range s.set.Find(data) {
		had[h.Index] = true
	}
	for _, h := range hits {
		if !had[h.Index] {
			return false
		}
	}
	return true
}

// base returns the view of the root before the exec, opening it the first
// time, or nil when unknown.
func (s *sweeper) base() FS {
	if s.ch.Base == nil && s.ch.OpenBase != nil {
		s.ch.Base, _ = s.ch.OpenBase()
		s.ch.OpenBase = nil
	}
	return s.ch.Base
}

// cleanLink removes the symlink l when it leads to one of our files, or
// when it is a subject-hash link of one of our CAs that no longer leads to
// a certificate with that hash (an `openssl rehash` run while our file or
// a bundle holding only our CA was there). A hash link removed from a
// directory where the image has its own copy of that CA is given back to
// the copy, as rehash would without us.
func (s *sweeper) cleanLink(l string) error {
	t, err := s.fsys.ReadLink(l)
	if err != nil {
		return nil
	}
	base := path.Base(l)
	switch {
	case s.j.ours[t]:
	case hashName.MatchString(base):
		h, _ := strconv.ParseUint(base[:8], 16, 32)
		if !s.hashes[uint32(h)] {
			return nil
		}
		data, err := s.fsys.ReadFileLimit(l, maxBundle)
		if err == nil {
			if _, th, ok := certFileDigest(path.Base(t)+".pem", data); ok && th == uint32(h) {
				return nil // leads to a certificate of that hash: the image's
			}
		}
	default:
		return nil
	}
	s.touchDir(path.Dir(l))
	return s.remove(l, "link to an engine CA")
}

// remove removes p, journaling nothing: it is the exec's entry.
func (s *sweeper) remove(p, why string) error {
	if err := s.fsys.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%w: %s (%s): removing it: %v", ErrTraceLeft, p, why, err)
	}
	s.st.Cleaned = append(s.st.Cleaned, p)
	return nil
}

// touchDir records dir's state before the sweep changes an entry in it.
func (s *sweeper) touchDir(dir string) {
	if _, ok := s.dirTimes[dir]; ok {
		return
	}
	st, err := lstat(s.fsys, dir, false)
	if err == nil && st.isDir() {
		s.dirTimes[dir] = st
	}
}

// restoreDirTimes puts back the times of the directories the sweep changed,
// deepest first.
func (s *sweeper) restoreDirTimes() {
	dirs := make([]string, 0, len(s.dirTimes))
	for d := range s.dirTimes {
		dirs = append(dirs, d)
	}
	sort.Slice(dirs, func(a, b int) bool { return depth(dirs[a]) > depth(dirs[b]) })
	for _, d := range dirs {
		st := s.dirTimes[d]
		mt := st.mtime
		// A copy of a directory we changed (mv of a lower directory is a
		// copy with its times): the run without us copied its base time.
		if e := s.j.dirWithOursMtime(st); e != nil {
			mt = e.base.mtime
		}
		_ = s.fsys.Lchtimes(d, st.atime, mt)
	}
}

// sameInode returns the journaled file whose inode, as we left it, now is
// (same size and mtime: untouched since), or nil.
func (j *Journal) sameInode(now state) *entry {
	if j.byIno == nil {
		j.indexOurs()
	}
	for _, x := range j.byIno[devIno{now.dev, now.ino}] {
		if x.ours.size == now.size && x.ours.mtime.Equal(now.mtime) {
			return x
		}
	}
	return nil
}

// wroteContent returns the journaled entry whose content as we left it
// hashes to data's, or nil.
func (j *Journal) wroteContent(data []byte) *entry {
	if len(j.oursSums) == 0 {
		return nil
	}
	return j.oursSums[sha256.Sum256(data)]
}

// isScanDir reports whether dir is a hash directory the install linked in.
func (j *Journal) isScanDir(dir string) bool {
	for _, d := range j.scan {
		if d == dir {
			return true
		}
	}
	return false
}

// isAnchorDir reports whether dir is one of the image's anchor directories.
func (j *Journal) isAnchorDir(dir string) bool {
	for _, a := range j.anchorDirs {
		if a == dir {
			return true
		}
	}
	return false
}

// dirWithOursMtime returns the journaled directory we changed whose mtime,
// as we left it, is st's (and whose base differs), or nil.
func (j *Journal) dirWithOursMtime(st state) *entry {
	for _, e := range j.entries {
		if e.ours.isDir() && e.base.isDir() && e.ours.mtime.Equal(st.mtime) && !e.base.mtime.Equal(e.ours.mtime) &&
			e.ours.mode == st.mode && e.ours.uid == st.uid && e.ours.gid == st.gid {
			return e
		}
	}
	return nil
}

// ctimeOf returns fi's change time.
func ctimeOf(fi fs.FileInfo) (time.Time, bool) {
	st, ok := vfs.StatOf(fi)
	return st.Ctime, ok
}
