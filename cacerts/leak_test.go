package cacerts

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/buildkit-cacerts/buildkit-cacerts/certs"
	"github.com/buildkit-cacerts/buildkit-cacerts/internal/testenv"
	"github.com/buildkit-cacerts/buildkit-cacerts/internal/testimages"
	"github.com/buildkit-cacerts/buildkit-cacerts/internal/treespec"
	"github.com/buildkit-cacerts/buildkit-cacerts/vfs"
)

// The tests of this file reproduce issue 11's leaks at the API the
// executor calls, on real Debian roots mounted the way BuildKit's runc
// worker hands them over: a kernel overlay (index=off, redirect_dir=off)
// whose mount point the vfs sees as a bind. Each case runs twice on the
// same lower layer — with injection (install, the process, a fresh view,
// revert, sweep) and without (the process only) — and the two upper
// directories, which are the layers BuildKit would commit, must hold no
// engine CA and be equal (mtimes of entries the process wrote aside).

// overlayRoot mounts an overlay over lower like BuildKit's pooled root and
// returns the mount point and the upper directory.
func overlayRoot(t *testing.T, lower string) (merged, upper string) {
	t.Helper()
	return overlayRootTB(t, lower)
}

// shIn runs script with sh in root by chroot.
func shIn(t *testing.T, root, script string, proc bool) string {
	t.Helper()
	out, err := chrootRunner{root: root, proc: proc}.Run(context.Background(), []string{"sh", "-ec", script})
	if err != nil {
		t.Fatalf("process %q: %v\n%s", script, err, out)
	}
	return string(out)
}

// leakCase is one process run on an image with and without injection.
type leakCase struct {
	name  string
	image string
	// prepare changes the lower layer before both runs (the image).
	prepare func(t *testing.T, lower string)
	// process is the RUN step's script; it runs with /proc when proc.
	process string
	proc    bool
	// volatile are upper paths whose content differs between two runs of
	// the process anyway (a keystore holds creation times): their content
	// is not compared, only our CAs searched for.
	volatile []string
	// check runs on the injected run's process output.
	check func(t *testing.T, out string)
}

// runLeakCase runs c and compares.
func runLeakCase(t *testing.T, c leakCase, set *Set) {
	lower := testimages.Rootfs(t, c.image)
	if c.prepare != nil {
		c.prepare(t, lower)
	}
	start := time.Now()
	time.Sleep(10 * time.Millisecond)

	// Without injection.
	plainRoot, plainUpper := overlayRoot(t, lower)
	shIn(t, plainRoot, c.process, c.proc)

	// With injection, as executor's defaultInstaller does.
	ctx := context.Background()
	root, upper := overlayRoot(t, lower)
	spec := bindSpec("/", root, false)
	fsys, err := vfs.New(ctx, spec, nil)
	if err != nil {
		t.Fatal(err)
	}
	since := time.Now()
	j, err := Install(ctx, View(fsys), detect(t, View(fsys)), set, Exec{Runner: chrootRunner{root: root, proc: true, tmp: true}}, Options{})
	fsys.Close()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("installed: method %s, paths %v", j.Method(), j.Paths())
	out := shIn(t, root, c.process, c.proc)
	if c.check != nil {
		c.check(t, out)
	}
	fsys, err = vfs.New(ctx, spec, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer fsys.Close()
	if err := j.Revert(ctx, View(fsys)); err != nil {
		t.Fatalf("revert: %v", err)
	}
	fsys.Invalidate()
	st, err := j.SweepRoot(ctx, fsys, spec, since)
	if err != nil {
		t.Fatalf("sweep: %v", err)
	}
	t.Logf("%s: method %s; sweep walked %d entries, read %d files (%d bytes), cleaned %v", c.name, j.Method(), st.Entries, st.Files, st.Bytes, st.Cleaned)

	if leaks := findTrace(t, upper, plainUpper, set); len(leaks) > 0 {
		t.Errorf("our CA is in the committed layer:\n%s", strings.Join(leaks, "\n"))
	}
	if d := compareUppers(t, upper, plainUpper, lower, start, c.volatile); len(d) > 0 {
		t.Errorf("layer differs from the run without injection:\n%s", strings.Join(d, "\n"))
	}
}

// findTrace lists where our CAs are in the tree root (an upper directory):
// PEM or DER in any file, and subject-hash links named for them, except
// where the run without injection has the same (twin: its upper).
func findTrace(t *testing.T, root, twin string, set *Set) []string {
	t.Helper()
	var xs []*Cert
	xs = append(xs, set.Certs...)
	cs := certsOf(set)
	hashes := map[string]bool{}
	for _, c := range xs {
		hashes[fmt.Sprintf("%08x", c.SubjectHash)] = true
	}
	var out []string
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		rel, _ := filepath.Rel(root, p)
		switch {
		case d.Type()&fs.ModeSymlink != 0:
			n := d.Name()
			target, _ := os.Readlink(p)
			if t2, err := os.Readlink(filepath.Join(twin, rel)); err == nil && t2 == target {
				return nil
			}
			if i := strings.IndexByte(n, '.'); i == 8 && hashes[n[:8]] {
				out = append(out, fmt.Sprintf("/%s: subject-hash link of our CA -> %s", rel, target))
			}
			if strings.Contains(target, "buildkit-") {
				out = append(out, fmt.Sprintf("/%s: link to our anchor -> %s", rel, target))
			}
		case d.Type().IsRegular():
			data, err := os.ReadFile(p)
			if err != nil {
				return nil
			}
			if twinData, err := os.ReadFile(filepath.Join(twin, rel)); err == nil && len(cs.Find(twinData)) >= len(cs.Find(data)) {
				return nil
			}
			if hits := cs.Find(data); len(hits) > 0 {
				out = append(out, fmt.Sprintf("/%s: %d of our CAs (%v)", rel, len(hits), hits))
			}
		}
		return nil
	})
	return out
}

func certsOf(set *Set) *certs.Set {
	var xs = make([]*x509.Certificate, 0, set.Len())
	for _, c := range set.Certs {
		xs = append(xs, c.Cert)
	}
	return certs.NewSet(xs)
}

// compareUppers compares two upper directories as BuildKit's differ sees
// the layers they make over lower: an upper entry equal to the lower one
// (directories: mode and owner; others: also mtime, size, content, link
// target) is no change; overlay's own xattrs are not content. Mtimes of
// entries the process wrote (newer than start in the run without
// injection) and volatile files' content are not compared.
func compareUppers(t *testing.T, got, want, lower string, start time.Time, volatile []string) []string {
	t.Helper()
	vol := map[string]bool{}
	for _, v := range volatile {
		vol[strings.TrimPrefix(v, "/")] = true
	}
	layer := func(upper string) map[string]string {
		out := map[string]string{}
		for k, v := range snap(t, upper) {
			if k == "." {
				continue
			}
			v = dropOverlayXattrs(v)
			if l, err := treespec.Describe(filepath.Join(lower, k)); err == nil {
				l = dropOverlayXattrs(l)
				if strings.HasPrefix(v, "type=40000") && strings.HasPrefix(l, "type=40000") && stripMtime(v) == stripMtime(l) {
					continue
				}
				if stripNlink(v) == stripNlink(l) {
					continue
				}
			}
			var st syscall.Stat_t
			if syscall.Lstat(filepath.Join(want, k), &st) == nil && time.Unix(st.Mtim.Sec, st.Mtim.Nsec).After(start) || strings.HasPrefix(v, "type=40000") {
				v = stripMtime(v)
			}
			if vol[k] {
				v = stripContent(v)
			}
			out[k] = stripNlink(v)
		}
		return out
	}
	return diffSnap(layer(got), layer(want))
}

// dropOverlayXattrs removes trusted.overlay.* xattrs from a description
// (their quoted values may hold blanks).
func dropOverlayXattrs(desc string) string {
	parts := strings.Split(desc, " xattr=")
	out := parts[0]
	for _, p := range parts[1:] {
		if !strings.HasPrefix(p, "trusted.overlay.") {
			out += " xattr=" + p
		}
	}
	return out
}

// stripNlink drops the link count.
func stripNlink(desc string) string {
	var out []string
	for _, f := range strings.Fields(desc) {
		if !strings.HasPrefix(f, "nlink=") {
			out = append(out, f)
		}
	}
	return strings.Join(out, " ")
}

// stripContent drops the content digest and size of a snapshot line.
func stripContent(desc string) string {
	var out []string
	for _, f := range strings.Fields(stripMtime(desc)) {
		if strings.HasPrefix(f, "sha256=") || strings.HasPrefix(f, "size=") || strings.HasPrefix(f, "content=") {
			continue
		}
		out = append(out, f)
	}
	return strings.Join(out, " ")
}

// pemOf returns c's PEM.
func pemOf(c testCA) string {
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.cert.Raw}))
}

var _ = bytes.Equal

// writeHost writes a file under a host root.
func writeHost(t *testing.T, root, p, data string) {
	t.Helper()
	full := filepath.Join(root, p)
	if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(full, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestNoTraceWhateverTheProcessDoes reproduces issue 11's cases: each
// failed (our CA in the layer, or a layer unlike the one built without
// us) before the sweep, the inode and content matching of copies, keystore
// stripping and the skip of CAs the image already trusts.
func TestNoTraceWhateverTheProcessDoes(t *testing.T) {
	testenv.RequiresRoot(t)
	ca := newCA(t, caOpt{cn: "Engine Test Root"})
	set := testSet(t, ca)
	own := newCA(t, caOpt{cn: "Process Own Root"})
	tls, java := testimages.DebianBookwormTLS, testimages.DebianBookwormJava
	keystore := "/etc/ssl/certs/java/cacerts"
	cases := []leakCase{
		// 1. A package whose maintainer script derives state from the
		// store: ca-certificates-java's postinst builds the keystore from
		// every /etc/ssl/certs/*.pem when it is missing.
		{name: "1-jre-postinst-builds-keystore", image: java, proc: true,
			process:  "rm -f " + keystore + " && /var/lib/dpkg/info/ca-certificates-java.postinst configure",
			volatile: []string{keystore}},
		// 1b. A derived bundle of its own (a tool concatenating the store).
		{name: "1b-derived-bundle", image: tls,
			process: "mkdir -p /usr/share/mytool && cat /etc/ssl/certs/*.pem > /usr/share/mytool/roots.pem && cp -L /etc/ssl/certs/ca-certificates.crt /opt/bundle.crt"},
		// 2. keytool -importcert into the keystore the command path wrote.
		{name: "2-keytool-import", image: java, proc: true,
			process:  "keytool -importcert -noprompt -cacerts -storepass changeit -alias own -file /own.pem",
			prepare:  func(t *testing.T, lower string) { writeHost(t, lower, "own.pem", pemOf(own)) },
			volatile: []string{keystore}},
		// 2b. Only a chmod of the keystore.
		{name: "2b-chmod-keystore", image: java, process: "chmod 0600 " + keystore},
		// 3. Renames.
		{name: "3-rename-bundle", image: tls,
			process: "cd /etc/ssl/certs && mv ca-certificates.crt ca-certificates.crt.orig && cat /own.pem > ca-certificates.crt",
			prepare: func(t *testing.T, lower string) { writeHost(t, lower, "own.pem", pemOf(own)) }},
		{name: "3b-rename-etc-ssl", image: tls, process: "mv /etc/ssl /etc/ssl.dist"},
		{name: "3c-rename-anchors", image: tls, process: "mv /usr/local/share/ca-certificates /opt/anchors"},
		// 4. The Dockerfile adds the CA the engine injects.
		{name: "4-same-ca-in-step", image: tls,
			process: "cp /corp.crt /usr/local/share/ca-certificates/corp.crt && update-ca-certificates",
			prepare: func(t *testing.T, lower string) { writeHost(t, lower, "corp.crt", pemOf(ca)) }},
		{name: "4b-same-ca-in-base-fresh", image: tls,
			process: "update-ca-certificates --fresh",
			prepare: func(t *testing.T, lower string) {
				writeHost(t, lower, "usr/local/share/ca-certificates/corp.crt", pemOf(ca))
				shIn(t, lower, "update-ca-certificates", false)
			}},
		// 6. Facts derived from the store without copying a CA: an index
		// of names and digests, md5sum's output, fingerprints as openssl
		// prints them, a maintainer script's log of what it added, the
		// bundle's digest in upper case.
		{name: "6-derived-facts", image: tls,
			process: `d=/usr/share/derived; mkdir -p $d
for f in /etc/ssl/certs/*.pem /etc/ssl/certs/*.crt; do echo "$(sha256sum < $f | cut -d' ' -f1) ${f##*/}"; done > $d/index
md5sum /etc/ssl/certs/*.pem > $d/md5sums
for f in /etc/ssl/certs/*.pem; do openssl x509 -noout -fingerprint -sha256 -in $f; done > $d/fingerprints
for f in /etc/ssl/certs/*.pem; do echo "Adding debian:${f##*/}"; done >> /var/log/derived.log
echo "bundle sha1 $(sha1sum < /etc/ssl/certs/ca-certificates.crt | cut -c1-40 | tr a-f A-F)" > $d/bundle.sum`},
		// 5. Installing the trust store's package on a root without it.
		{name: "5-install-ca-certificates", image: tls,
			prepare: func(t *testing.T, lower string) {
				deb := testimages.CACertsDeb(t, "bookworm")
				b, err := os.ReadFile(deb)
				if err != nil {
					t.Fatal(err)
				}
				writeHost(t, lower, "ca-certificates.deb", string(b))
				// The image's LOCALCERTSDIR exists (a Dockerfile's mkdir -p
				// for its CAs): our anchors go there. Without it (5b) the
				// step runs without our CAs after the install.
				shIn(t, lower, "dpkg --purge --force-depends ca-certificates >/dev/null 2>&1; rm -rf /etc/ssl/certs/* /usr/local/share/ca-certificates; mkdir -p /usr/local/share/ca-certificates", false)
			},
			process:  "dpkg -i /ca-certificates.deb >/dev/null 2>&1 && if openssl verify -CAfile /etc/ssl/certs/ca-certificates.crt /corp.crt; then echo TRUSTED; fi",
			volatile: []string{"/var/log/dpkg.log", "/var/lib/dpkg/status", "/var/lib/dpkg/status-old", "/etc/ssl/certs/ca-certificates.crt"},
			check: func(t *testing.T, out string) {
				if !strings.Contains(out, "TRUSTED") {
					t.Errorf("the step's own TLS check does not trust the engine CA after installing ca-certificates:\n%s", out)
				}
			}},
	}
	// 5b. The same without LOCALCERTSDIR (debian:*-slim and mmdebstrap's
	// minbase): our hook in the package's HOOKSDIR keeps the trust.
	c5 := cases[len(cases)-1]
	prep5 := c5.prepare
	c5.name = "5b-install-ca-certificates-no-localcertsdir"
	c5.prepare = func(t *testing.T, lower string) {
		prep5(t, lower)
		if err := os.Remove(filepath.Join(lower, "usr/local/share/ca-certificates")); err != nil {
			t.Fatal(err)
		}
	}
	cases = append(cases, c5)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if strings.HasPrefix(c.name, "5") {
				prep := c.prepare
				c.prepare = func(t *testing.T, lower string) {
					prep(t, lower)
					writeHost(t, lower, "corp.crt", pemOf(ca))
				}
			}
			runLeakCase(t, c, set)
		})
	}
}
