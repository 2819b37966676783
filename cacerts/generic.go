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

	"github.com/buildkit-cacerts/buildkit-cacerts/certs"
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
		if !certs.IsPEMBundle(data) && (o.named || len(bytes.TrimSpace(data)) > 0) {
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
	if rerr != nil || !certs.IsPEMBundle(data) {
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
	out, add := certs.AppendPEM(base, blocks)
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

// installDebianAnchors makes a step that installs Debian's ca-certificates
// package on a root without it keep trusting the engine's CAs: the
// package's update-ca-certificates rebuilds the bundle the generic path
// wrote, without them (BuildKit's proxy CA has that bug, moby/buildkit
// #7185). Where LOCALCERTSDIR exists, our anchors go there, as the fast
// path would write them. Where it does not, it is never created: a
// Dockerfile's `mkdir -p /usr/local/share/ca-certificates` would find it
// there, and revert could not tell it to keep it. A hook in the tool's
// HOOKSDIR appends our CAs to the bundle the tool just wrote instead; the
// directories it needs are the package's, kept on revert only when the
// process installed the package, with the package's mtime
// (Journal.packageMtime; docs/design.md, "The generic path on Debian").
func (p *Plan) installDebianAnchors(fsys FS, j *Journal, log *logrus.Entry) error {
	l := p.d.Layout
	if l.Family != distro.FamilyDebian || l.AnchorDir == "" || len(l.HookDirs) == 0 || len(l.Bundles) == 0 {
		return nil
	}
	fi, err := fsys.Lstat(l.AnchorDir)
	if err == nil && fi.IsDir() {
		if rdir, m, err := fsys.EvalSymlinks(l.AnchorDir); err != nil || rdir != l.AnchorDir || !writableRoot(m) {
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
	if !errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	hookDir := l.HookDirs[0]
	rdir, m, _, err := resolveForCreate(fsys, hookDir)
	if err != nil || rdir != hookDir || !writableRoot(m) || !IsTrustStorePath(hookDir) {
		log.WithField("path", hookDir).Debug("hook directory not a plain directory of the writable root; no hook written")
		return nil
	}
	for q := hookDir; IsTrustStorePath(q); q = path.Dir(q) {
		if _, err := fsys.Lstat(q); !errors.Is(err, fs.ErrNotExist) {
			break
		}
		j.packageShips(q, dpkgCACertsList)
	}
	if err := j.mkdirAll(fsys, hookDir); err != nil {
		return err
	}
	hook := path.Join(hookDir, HookName)
	if _, err := fsys.Lstat(hook); !errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	var b bytes.Buffer
	b.WriteString("#!/bin/sh\n# buildkit-cacerts: the engine's CA certificates, for this RUN only (removed\n# after it), appended to the bundle update-ca-certificates just wrote.\n")
	fmt.Fprintf(&b, "cat >>%s <<'BUILDKIT_CACERTS_EOF'\n", l.Bundles[0].Path)
	for _, blk := range p.ourPEMs() {
		b.Write(blk)
		if len(blk) > 0 && blk[len(blk)-1] != '\n' {
			b.WriteByte('\n')
		}
	}
	b.WriteString("BUILDKIT_CACERTS_EOF\n")
	if _, err := j.writeFile(fsys, hook, b.Bytes(), 0o755, p.ourPEMs()); err != nil {
		return err
	}
	j.markOurs(hook)
	return nil
}

// HookName is the file name of the update-ca-certificates hook the generic
// path writes on a Debian root without the ca-certificates package.
const HookName = "buildkit-cacerts"
