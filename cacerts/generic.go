package cacerts

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strings"
	"syscall"

	"github.com/moby/buildkit/util/bklog"
	"github.com/sirupsen/logrus"

	"github.com/buildkit-cacerts/buildkit-cacerts/distro"
	"github.com/buildkit-cacerts/buildkit-cacerts/vfs"
)

// bundleOpt says how installBundle treats one bundle path.
type bundleOpt struct {
	// create writes the file (and missing parents) when absent.
	create bool
	// named: the path comes from the image's SSL_CERT_FILE or a certifi
	// store the layout names; it may lie outside trust-store paths but must
	// already parse as a PEM bundle.
	named bool
}

// ourPEMs returns the PEM blocks of the plan's set.
func (p *Plan) ourPEMs() [][]byte {
	out := make([][]byte, 0, p.set.Len())
	for _, c := range p.set.Certs {
		out = append(out, c.PEM)
	}
	return out
}

// applyGeneric writes the layout's bundles: the first is created when
// absent (Go's crypto/x509 and Debian-built OpenSSL and GnuTLS read
// /etc/ssl/certs/ca-certificates.crt first), the others are appended to when
// they exist. Each CA also gets a <hash>.<n> file in the layout's hash
// directory when it exists (OpenSSL's CApath lookup).
func (p *Plan) applyGeneric(ctx context.Context, fsys FS, j *Journal) error {
	log := bklog.G(ctx)
	l := p.d.Layout
	blocks := p.ourPEMs()
	if err := p.installDebianAnchors(fsys, j, log); err != nil {
		return err
	}
	for i, b := range l.Bundles {
		if err := installBundle(fsys, j, b.Path, blocks, bundleOpt{create: i == 0}, log); err != nil {
			return err
		}
	}
	if l.HashDir != "" {
		if err := installHashFiles(fsys, j, l.HashDir, p.set, log); err != nil {
			return err
		}
	}
	return nil
}

// applyCertifi appends our CAs to the Python certifi bundles pip installed
// (the layout's CertifiGlobs), which Python's requests reads instead of the
// system store; each must already parse as a PEM bundle.
func (p *Plan) applyCertifi(ctx context.Context, fsys FS, j *Journal) error {
	log := bklog.G(ctx)
	matches, err := p.budgetOrDefault().certifiBundles(fsys, p.d.Layout.CertifiGlobs)
	if err != nil {
		return err
	}
	for _, m := range matches {
		if err := installBundle(fsys, j, m, p.ourPEMs(), bundleOpt{named: true}, log); err != nil {
			return err
		}
	}
	return nil
}

// applyEnv installs into the places the process's SSL_CERT_FILE and
// SSL_CERT_DIR name (image ENV: untrusted values, resolved in the root).
func (p *Plan) applyEnv(ctx context.Context, fsys FS, j *Journal) error {
	log := bklog.G(ctx)
	for _, kv := range p.x.Env {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			continue
		}
		switch k {
		case "SSL_CERT_FILE":
			if !validEnvPath(v) {
				log.WithField("path", fmt.Sprintf("%q", v)).Debug("SSL_CERT_FILE is not a clean absolute path; ignored")
				continue
			}
			if err := installBundle(fsys, j, path.Clean(v), p.ourPEMs(), bundleOpt{named: true}, log); err != nil {
				return err
			}
		case "SSL_CERT_DIR":
			dirs, err := p.budgetOrDefault().certDirs(v)
			if err != nil {
				return err
			}
			for _, d := range dirs {
				if err := installHashFiles(fsys, j, d, p.set, log); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func validEnvPath(v string) bool {
	return path.IsAbs(v) && len(v) < 4096 && !strings.ContainsRune(v, 0) && fs.ValidPath(fsName(path.Clean(v)))
}

// writableRoot reports whether m is the root mount and writable.
func writableRoot(m *vfs.Mount) bool { return m != nil && m.IsRoot() && !m.Readonly }

// resolveForCreate resolves the directory dir inside the container; when it
// does not exist, it resolves its deepest existing ancestor and appends the
// rest, so the directory can be created there. It returns the mount of the
// existing part.
func resolveForCreate(fsys FS, dir string) (string, *vfs.Mount, bool, error) {
	rest := ""
	for q := dir; ; q = path.Dir(q) {
		rq, m, err := fsys.EvalSymlinks(q)
		if err == nil {
			if rest != "" {
				// The first missing level must be absent, not a dangling
				// link: nothing is ever created through one.
				first, _, _ := strings.Cut(rest, "/")
				if _, err := fsys.Lstat(path.Join(rq, first)); !errors.Is(err, fs.ErrNotExist) {
					return "", nil, false, fmt.Errorf("%s: a dangling symlink is in the way", path.Join(rq, first))
				}
			}
			return path.Join(rq, rest), m, rest == "", nil
		}
		if !errors.Is(err, fs.ErrNotExist) || q == "/" {
			return "", nil, false, err
		}
		rest = path.Join(path.Base(q), rest)
	}
}

// installBundle appends blocks to the bundle at the container path p (or
// creates it), resolving symlinks inside the root. A link whose target is a
// writable trust-store file in the root mount is written through (the
// target gets a new inode); a link whose target cannot or may not be
// written (another mount, read-only, outside trust-store paths) is replaced
// by a file when its target parses as a PEM bundle, and restored on revert;
// anything else is left alone and logged at debug level.
func installBundle(fsys FS, j *Journal, p string, blocks [][]byte, o bundleOpt, log *logrus.Entry) error {
	skip := func(why string) error {
		log.WithFields(logrus.Fields{"path": p, "reason": why}).Debug("bundle left alone")
		return nil
	}
	rdir, m, exists, err := resolveForCreate(fsys, path.Dir(p))
	if err != nil {
		return skip(err.Error())
	}
	target := path.Join(rdir, path.Base(p))
	if !writableRoot(m) {
		return skip("in a read-only or other mount")
	}
	if !o.named && !IsTrustStorePath(target) {
		return skip("resolves to " + target + ", outside trust-store paths")
	}
	if j.wrote(target) {
		return nil
	}
	var st state
	if exists {
		if st, err = lstat(fsys, target, false); err != nil {
			return skip(err.Error())
		}
	}
	switch {
	case !st.exists:
		if !o.create {
			return nil
		}
		if err := j.mkdirAll(fsys, rdir); err != nil {
			return err
		}
		return appendTo(fsys, j, target, nil, blocks)
	case st.isReg():
		data, err := fsys.ReadFileLimit(target, maxBundle)
		if err != nil {
			return skip(err.Error())
		}
		if !IsPEMBundle(data) && (o.named || len(bytes.TrimSpace(data)) > 0) {
			return skip("not a PEM certificate bundle")
		}
		return appendTo(fsys, j, target, data, blocks)
	case st.isLink():
		return installThroughLink(fsys, j, target, blocks, o, log)
	default:
		return skip("not a regular file")
	}
}

// installThroughLink handles a bundle path that is a symlink.
func installThroughLink(fsys FS, j *Journal, link string, blocks [][]byte, o bundleOpt, log *logrus.Entry) error {
	rt, tm, err := fsys.EvalSymlinks(link)
	if errors.Is(err, fs.ErrNotExist) && o.create {
		// Never create through a dangling link: replace the link itself.
		return appendTo(fsys, j, link, nil, blocks)
	}
	if err != nil {
		log.WithFields(logrus.Fields{"path": link, "reason": err.Error()}).Debug("bundle link left alone")
		return nil
	}
	if j.wrote(rt) {
		return nil
	}
	data, rerr := fsys.ReadFileLimit(rt, maxBundle)
	if rerr != nil || !IsPEMBundle(data) {
		log.WithFields(logrus.Fields{"path": link, "target": rt}).Debug("bundle link target is not a PEM bundle; left alone")
		return nil
	}
	if writableRoot(tm) && (IsTrustStorePath(rt) || o.named) {
		if fi, err := fsys.Lstat(rt); err == nil && fi.Mode().IsRegular() {
			err := appendTo(fsys, j, rt, data, blocks)
			if err == nil || !(errors.Is(err, syscall.EROFS) || errors.Is(err, vfs.ErrNotRootMount)) {
				return err
			}
		}
	}
	// The target cannot or may not be written: a file replaces the link
	// for the exec; revert puts the link back.
	log.WithFields(logrus.Fields{"path": link, "target": rt}).Debug("bundle link replaced by a file for the exec")
	return appendTo(fsys, j, link, data, blocks)
}

// appendTo writes base+blocks to p (journaled) as update-ca-certificates
// would append, 0644 when new.
func appendTo(fsys FS, j *Journal, p string, base []byte, blocks [][]byte) error {
	out, add := AppendPEM(base, blocks)
	e, err := j.writeFile(fsys, p, out, 0o644, add.Blocks)
	if err != nil {
		return err
	}
	e.add = &add
	return nil
}

// installHashFiles writes each CA as a regular file <hash>.<n> (the first
// free n) into the hash directory dir when it exists in the writable root
// mount under trust-store paths, for OpenSSL's CApath lookup.
func installHashFiles(fsys FS, j *Journal, dir string, set *Set, log *logrus.Entry) error {
	rdir, m, err := fsys.EvalSymlinks(dir)
	if err != nil {
		return nil
	}
	if !writableRoot(m) || !IsTrustStorePath(rdir) {
		log.WithFields(logrus.Fields{"path": dir, "target": rdir}).Debug("hash directory not in writable trust-store paths; left alone")
		return nil
	}
	if fi, err := fsys.Lstat(rdir); err != nil || !fi.IsDir() {
		return nil
	}
	if !j.scanForLinks(rdir) {
		return nil
	}
	for _, c := range set.Certs {
		placed := false
		for n := 0; n < maxCollisions && !placed; n++ {
			p := path.Join(rdir, fmt.Sprintf("%08x.%d", c.SubjectHash, n))
			if _, err := fsys.Lstat(p); err == nil {
				continue
			} else if !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("hash file %s: %w", p, err)
			}
			if _, err := j.writeFile(fsys, p, c.PEM, 0o644, [][]byte{c.PEM}); err != nil {
				return err
			}
			placed = true
		}
	}
	return nil
}

// dpkgCACertsList is the file list of Debian's ca-certificates package: it
// exists once the package is unpacked.
const dpkgCACertsList = "/var/lib/dpkg/info/ca-certificates.list"

// installDebianAnchors writes our anchors into a Debian-family root's
// LOCALCERTSDIR when the generic path runs there (no update tool: the
// ca-certificates package is not installed) and the directory exists: a
// step that installs the package then runs its update-ca-certificates,
// which rebuilds the bundle from the anchors, ours among them, so the
// step's own TLS clients keep trusting the engine's CAs (BuildKit's proxy
// CA loses them, moby/buildkit #7185). The directory is never created: a
// Dockerfile's `mkdir -p` of it would find it there and revert could not
// tell to keep it (TestShipImage saw it lost); a hook in the package's
// HOOKSDIR was tried instead and left that directory with our mtime where
// dpkg would have set the package's. So where LOCALCERTSDIR is missing,
// such a step runs without the engine's CAs after the package install;
// revert and the sweep still leave no trace.
func (p *Plan) installDebianAnchors(fsys FS, j *Journal, log *logrus.Entry) error {
	l := p.d.Layout
	if l.Family != distro.FamilyDebian || l.AnchorDir == "" {
		return nil
	}
	fi, err := fsys.Lstat(l.AnchorDir)
	if err != nil || !fi.IsDir() {
		return nil
	}
	if rdir, m, err := fsys.EvalSymlinks(l.AnchorDir); err != nil || rdir != l.AnchorDir || !writableRoot(m) {
		log.WithField("path", l.AnchorDir).Debug("anchor directory not a plain directory of the writable root; no anchor written")
		return nil
	}
	for _, f := range p.anchorFiles() {
		anchor := path.Join(l.AnchorDir, f.name+l.AnchorExt)
		if _, err := fsys.Lstat(anchor); !errors.Is(err, fs.ErrNotExist) {
			continue // never replace an image's file of that name
		}
		if _, err := j.writeFile(fsys, anchor, f.data(), 0o644, f.blocks()); err != nil {
			return err
		}
		j.markOurs(anchor, f.name+".pem")
	}
	return nil
}
