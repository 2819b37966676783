package cacerts

import (
	"bytes"
	"crypto/sha1"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"

	"github.com/buildkit-cacerts/buildkit-cacerts/certs"
	"github.com/buildkit-cacerts/buildkit-cacerts/distro"
)

// The fast path does in Go what Debian's update-ca-certificates
// (ca-certificates 20230311 and 20250419, /usr/sbin/update-ca-certificates)
// does when one more file appears in LOCALCERTSDIR, for a layout left
// consistent by its last run:
//
//   - add(): for each `find -L $LOCALCERTSDIR -type f -name '*.crt' | sort`
//     result CERT, PEM=$ETCCERTSDIR/$(basename CERT .crt with ' '->'_',
//     '()'->'=', ','->'_').pem; `ln -sf "$CERT" "$PEM"` unless it already
//     points there; `sed -e '$a\' "$CERT" >> "$TEMPBUNDLE"` (the file
//     verbatim, a newline added when missing).
//   - The bundle is rebuilt from scratch: every CERTSCONF entry, then the
//     local certificates in sort order. So our anchors go at their sorted
//     place among the local ones, which form the bundle's tail; we check the
//     tail holds exactly the existing local anchors before inserting.
//   - `chmod 0644 "$TEMPBUNDLE"; mv -f "$TEMPBUNDLE" "$CERTBUNDLE"`: the
//     bundle is a new 0644 file.
//   - Since a file was added, orphan symlinks are removed and `openssl
//     rehash .` runs in ETCCERTSDIR; simulateRehash reproduces its effect on
//     the buckets of our certificates' subject hashes.
//   - Hooks in HOOKSDIR run with the list of added certificates: when any
//     exists, the fast path is not used.
//
// Sort order is byte order: the tool runs with no locale set (C/POSIX) in
// the sibling container and in the chroot runner.
//
// What is assumed rather than checked, to stay within a few milliseconds:
// the image's last update-ca-certificates run left /etc/ssl/certs
// consistent — no orphan symlinks (the tool would delete them), no
// certificate file without its hash link (rehash would add one), the links
// of each bucket numbered without gaps beyond the first missing id, and a
// bundle whose part before the local anchors is what CERTSCONF lists. An
// image that breaks these gets our CAs trusted all the same; only the
// tool's unrelated repairs are not reproduced.

// errNotFast says why a layout is not modelled exactly.
type errNotFast struct{ why string }

func (e *errNotFast) Error() string { return e.why }

func notFast(format string, args ...any) error {
	return &errNotFast{why: fmt.Sprintf(format, args...)}
}

// fastCheck reports whether the fast path reproduces the update tool in
// fsys exactly for layout l and set: a Debian-family layout with the tool
// installed and able to run, no hooks, a non-empty CERTSCONF, a real hash
// directory in the writable root mount holding the bundle as a regular file,
// and a local anchor directory that is absent or holds only regular files,
// none named like ours (anchors are the base names, without the layout's
// extension, of the anchor files the plan writes). It returns the names of
// the existing local anchors (*.crt files of the anchor directory), sorted.
func fastCheck(fsys FS, l distro.Layout, anchors []string) ([]string, error) {
	if l.Family != distro.FamilyDebian && l.Family != distro.FamilyGentoo {
		return nil, notFast("no exact model of %s's update tool", l.Family)
	}
	if len(l.Update) == 0 || len(l.Bundles) == 0 || l.HashDir == "" || l.AnchorDir == "" || l.Config == "" {
		return nil, notFast("layout incomplete")
	}
	if _, err := l.Update[0].Find(fsys); err != nil {
		return nil, notFast("update-ca-certificates cannot run: %v", err)
	}
	for _, d := range l.HookDirs {
		if h := hooks(fsys, d); h != "" {
			return nil, notFast("hook %s would run", h)
		}
	}
	if fi, err := fsys.Stat(l.Config); err != nil || fi.Size() == 0 || !fi.Mode().IsRegular() {
		return nil, notFast("%s missing or empty: the tool would rebuild every link", l.Config)
	}
	etc := l.HashDir
	if err := plainDir(fsys, etc); err != nil {
		return nil, err
	}
	bundle := l.Bundles[0].Path
	if path.Dir(bundle) != etc {
		return nil, notFast("bundle %s is not in %s", bundle, etc)
	}
	if fi, err := fsys.Lstat(bundle); err != nil || !fi.Mode().IsRegular() {
		return nil, notFast("bundle %s is not a regular file", bundle)
	}
	_, err := fsys.Lstat(l.AnchorDir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, plainDir(fsys, path.Dir(l.AnchorDir))
	case err != nil:
		return nil, notFast("%s: %v", l.AnchorDir, err)
	}
	if err := plainDir(fsys, l.AnchorDir); err != nil {
		return nil, err
	}
	ents, err := fsys.ReadDir(l.AnchorDir)
	if err != nil {
		return nil, notFast("listing %s: %v", l.AnchorDir, err)
	}
	names := map[string]bool{}
	var existing []string
	for _, e := range ents {
		if !e.Type().IsRegular() {
			return nil, notFast("%s holds %s, not a regular file", l.AnchorDir, e.Name())
		}
		names[e.Name()] = true
		if strings.HasSuffix(e.Name(), ".crt") {
			existing = append(existing, e.Name())
		}
	}
	for _, a := range anchors {
		if names[a+l.AnchorExt] {
			return nil, notFast("%s/%s%s already exists", l.AnchorDir, a, l.AnchorExt)
		}
	}
	sort.Strings(existing)
	return existing, nil
}

// plainDir checks that the container path p is a directory reached without
// symlinks, in the writable root mount.
func plainDir(fsys FS, p string) error {
	rp, m, err := fsys.EvalSymlinks(p)
	if err != nil {
		return notFast("%s: %v", p, err)
	}
	if rp != p {
		return notFast("%s resolves to %s", p, rp)
	}
	if !m.IsRoot() || m.Readonly {
		return notFast("%s is in a %s mount at %s, not the writable root", p, m.Type, m.Dest)
	}
	fi, err := fsys.Lstat(p)
	if err != nil || !fi.IsDir() {
		return notFast("%s is not a directory", p)
	}
	return nil
}

// hooks returns the first entry of dir that run-parts would run (a name of
// [A-Za-z0-9_-] that is an executable regular file, or that cannot be
// checked), or "".
func hooks(fsys FS, dir string) string {
	ents, err := fsys.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return ""
	}
	if err != nil {
		return dir
	}
	for _, e := range ents {
		if !runPartsName(e.Name()) {
			continue
		}
		p := path.Join(dir, e.Name())
		fi, err := fsys.Stat(p)
		if err != nil || (fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0) {
			return p
		}
	}
	return ""
}

// runPartsName is run-parts' default name filter: ^[a-zA-Z0-9_-]+$.
func runPartsName(n string) bool {
	if n == "" {
		return false
	}
	for i := 0; i < len(n); i++ {
		c := n[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// applyFast installs the plan's CAs like update-ca-certificates would.
// A combined anchor (Options.CombineAbove) is what the tool makes of any
// multi-certificate file in LOCALCERTSDIR: add() appends it whole to the
// bundle and links it as one <name>.pem; `openssl rehash` (apps/rehash.c,
// do_file) skips a file that does not hold exactly one certificate or CRL
// ("warning: skipping ..., it does not contain exactly one certificate or
// CRL", not an error), so it gets no subject-hash link.
func (p *Plan) applyFast(fsys FS, j *Journal) error {
	l := p.d.Layout
	etc, bundle, anchorDir, ext := l.HashDir, l.Bundles[0].Path, l.AnchorDir, l.AnchorExt
	files := p.anchorFiles()
	sort.Slice(files, func(a, b int) bool { return files[a].name+ext < files[b].name+ext })

	// The bundle's tail must be the existing local anchors, in sort order.
	existing := p.existing
	be, err := j.recordRead(fsys, bundle, p.bundle)
	if err != nil {
		return err
	}
	data := be.base.data
	if len(data) > 0 && data[len(data)-1] != '\n' {
		return fmt.Errorf("%w: bundle %s does not end with a newline: run update-ca-certificates in the image, or use the command path", ErrStaleBundle, bundle)
	}
	pieces, tailStart, err := localAnchors(fsys, anchorDir, bundle, existing, data)
	if err != nil {
		return err
	}
	var ours [][]byte
	contents := make([][]byte, len(files))
	for i, f := range files {
		contents[i] = f.data()
		pieces = append(pieces, anchorPiece{f.name + ext, contents[i]})
		ours = append(ours, f.blocks()...)
	}
	sort.SliceStable(pieces, func(a, b int) bool { return pieces[a].name < pieces[b].name })
	size := tailStart
	for _, pc := range pieces {
		size += len(pc.data)
	}
	out := make([]byte, 0, size)
	out = append(out, data[:tailStart]...)
	for _, pc := range pieces {
		out = append(out, pc.data...)
	}

	// Anchors and their .pem links.
	j.watchPackageDir(fsys, anchorDir, dpkgInstalled)
	if err := j.mkdirAll(fsys, anchorDir); err != nil {
		return err
	}
	for i, f := range files {
		anchor := path.Join(anchorDir, f.name+ext)
		if _, err := j.writeFile(fsys, anchor, contents[i], 0o644, f.blocks()); err != nil {
			return err
		}
		j.markOurs(anchor)
		pemName := f.name + ".pem"
		if err := j.symlink(fsys, anchor, path.Join(etc, pemName)); err != nil {
			return err
		}
		j.markOurs(pemName)
	}

	// Hash links, bucket by bucket, for the files rehash hashes: those
	// holding exactly one certificate.
	buckets := map[uint32][]rehashOurs{}
	var hashes []uint32
	for _, f := range files {
		if len(f.certs) != 1 {
			continue
		}
		c := f.certs[0]
		if _, ok := buckets[c.SubjectHash]; !ok {
			hashes = append(hashes, c.SubjectHash)
		}
		buckets[c.SubjectHash] = append(buckets[c.SubjectHash], rehashOurs{pem: f.name + ".pem", cert: c})
	}
	sort.Slice(hashes, func(a, b int) bool { return hashes[a] < hashes[b] })
	for _, h := range hashes {
		if err := rehashBucket(fsys, j, etc, h, buckets[h]); err != nil {
			return err
		}
	}

	// The bundle: a new 0644 file.
	e, err := j.writeFile(fsys, bundle, out, 0o644, ours)
	if err != nil {
		return err
	}
	if len(existing) == 0 || bytes.HasSuffix(out, bytes.Join(ours, nil)) {
		e.add = &certs.Addition{Blocks: ours}
	}
	if e.base.mode.Perm() != 0o644 {
		if err := fsys.Chmod(bundle, 0o644); err != nil {
			return fmt.Errorf("chmod %s: %w", bundle, err)
		}
	}
	j.scanForLinks(etc)
	return nil
}

// rehashOurs is one of our single-certificate files in the hash directory:
// its .pem link name and its certificate.
type rehashOurs struct {
	pem  string
	cert *Cert
}

// ErrStaleBundle is matched (errors.Is) by the fast path's error for a
// bundle that is not what update-ca-certificates would have built from the
// image's anchors (it does not end with the local anchors, or with a
// newline): the fast path cannot add ours the tool's way.
var ErrStaleBundle = errors.New("the bundle is not what update-ca-certificates built")

// dpkgInstalled is a dpkg info file of Debian's ca-certificates package
// that exists only while the package is installed: dpkg deletes it on remove
// (the package's .list and .postrm stay until purge).
const dpkgInstalled = "/var/lib/dpkg/info/ca-certificates.md5sums"

// rehashBucket makes the <hash>.<n> links of bucket h in etc what `openssl
// rehash` would after our .pem links appeared, trusting the existing links
// of the bucket to be complete (as the last rehash left them).
func rehashBucket(fsys FS, j *Journal, etc string, h uint32, ours []rehashOurs) error {
	var links []rehashLink
	var files []rehashFile
	seen := map[string]bool{}
	for id := 0; id < maxCollisions; id++ {
		name := fmt.Sprintf("%08x.%d", h, id)
		p := path.Join(etc, name)
		fi, err := fsys.Lstat(p)
		if errors.Is(err, fs.ErrNotExist) {
			break
		}
		if err != nil {
			return fmt.Errorf("hash link %s: %w", p, err)
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			continue // rehash ignores it (no known extension) but may replace it
		}
		target, err := fsys.ReadLink(p)
		if err != nil {
			return fmt.Errorf("hash link %s: %w", p, err)
		}
		links = append(links, rehashLink{name: name, id: id, target: target})
		if seen[target] || strings.Contains(target, "/") {
			continue
		}
		seen[target] = true
		data, err := fsys.ReadFileLimit(path.Join(etc, target), maxBundle)
		if err != nil {
			continue // dangling: rehash never sees a file by that name
		}
		if d, th, ok := certFileDigest(target, data); ok && th == h {
			files = append(files, rehashFile{name: target, digest: d})
		}
	}
	for _, o := range ours {
		files = append(files, rehashFile{name: o.pem, digest: sha1.Sum(o.cert.Cert.Raw)})
	}
	res, err := simulateRehash(files, links)
	if err != nil {
		return fmt.Errorf("hash links for %08x in %s: %w", h, etc, err)
	}
	current := map[int]string{}
	for _, l := range links {
		current[l.id] = l.target
	}
	ids := make([]int, 0, len(res.links))
	for id := range res.links {
		ids = append(ids, id)
	}
	sort.Ints(ids)
	for _, id := range ids {
		t := res.links[id]
		if cur, ok := current[id]; ok && cur == t {
			continue
		}
		if err := j.symlink(fsys, t, path.Join(etc, fmt.Sprintf("%08x.%d", h, id))); err != nil {
			return err
		}
	}
	for _, id := range res.removed {
		if _, keep := res.links[id]; keep {
			continue
		}
		if err := j.remove(fsys, path.Join(etc, fmt.Sprintf("%08x.%d", h, id))); err != nil {
			return err
		}
	}
	return nil
}
