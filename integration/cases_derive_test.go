package integration

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/buildkit-cacerts/buildkit-cacerts/internal/testimages"
)

// Issue 11: steps that derive state from the trust store — a package whose
// maintainer script reads /etc/ssl/certs, a JRE whose ca-certificates-java
// builds a keystore from every *.pem, keytool imports, renames of the
// store's files and directories, the Dockerfile's own copy of the CA the
// engine injects, the trust store's package installed on an image without
// it. Each is compared with the no-injection build like every case, and
// every cell's layers are scanned for the engine's CA (compare_test.go).

// Named-context .deb sets (matrixEnv.debDirs keys besides the suites).
const (
	debsJRE        = "jre"         // default-jre-headless and what debian-bookworm-tls lacks for it
	debsCACertsMin = "cacerts-min" // ca-certificates + openssl + libssl3, for debian-bookworm-min
	debsDerive     = "derive"      // derive-test, built by buildDeriveDeb
)

// derivePostinst is the maintainer script of the derive-test package: it
// does what packages that ship a trust store of their own do at configure
// time — concatenate the store's certificates into a file under
// /usr/share, copy certificates, copy the bundle, and write an index with
// a hash per certificate (and OpenSSL hash links where openssl exists).
const derivePostinst = `#!/bin/sh
set -e
[ "$1" = configure ] || exit 0
d=/usr/share/derive-test
mkdir -p "$d/certs"
: > "$d/all.pem"
: > "$d/index"
for f in /etc/ssl/certs/*.pem /etc/ssl/certs/*.crt; do
	[ -f "$f" ] || continue
	cat "$f" >> "$d/all.pem"
	echo "$(sha256sum < "$f" | cut -d' ' -f1) ${f##*/}" >> "$d/index"
done
for f in /etc/ssl/certs/*.pem; do
	[ -f "$f" ] && cp "$f" "$d/certs/"
done
if [ -f /etc/ssl/certs/ca-certificates.crt ]; then
	cp /etc/ssl/certs/ca-certificates.crt "$d/bundle.crt"
fi
if command -v openssl >/dev/null 2>&1; then
	openssl rehash "$d/certs" >/dev/null 2>&1 || true
fi
exit 0
`

// buildDeriveDeb builds the derive-test .deb with dpkg-deb into a new
// directory and returns the directory.
func buildDeriveDeb(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	files := map[string]string{
		"DEBIAN/control": "Package: derive-test\nVersion: 1.0\nArchitecture: all\nMaintainer: buildkit-cacerts tests <tests@invalid>\n" +
			"Description: derives state from /etc/ssl/certs in its postinst (issue 11)\n",
		"DEBIAN/postinst":                  derivePostinst,
		"usr/share/doc/derive-test/README": "derive-test: a package of the buildkit-cacerts matrix\n",
	}
	for name, body := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		mode := os.FileMode(0o644)
		if strings.HasSuffix(name, "postinst") {
			mode = 0o755
		}
		if err := os.WriteFile(p, []byte(body), mode); err != nil {
			t.Fatal(err)
		}
	}
	out := t.TempDir()
	cmd := exec.Command("dpkg-deb", "--root-owner-group", "-Zgzip", "--build", root, filepath.Join(out, "derive-test_1.0_all.deb"))
	cmd.Env = append(os.Environ(), "SOURCE_DATE_EPOCH=1704067200")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("dpkg-deb --build (install dpkg-dev's dpkg-deb, part of dpkg): %v\n%s", err, b)
	}
	return out
}

// javaKeystore is the Debian JRE's trust store. Two runs of a step that
// writes it never agree on its bytes (each entry records when it was
// added), so its content is not compared where a step writes it: the CA
// scan finds our CA in it (raw DER in the JKS).
const javaKeystore = "etc/ssl/certs/java/cacerts"

// ldconfigAux is ldconfig's cache of the libraries' stat data (inodes,
// ctimes): a step that installs a library (dpkg's libc-bin trigger) never
// writes it alike twice.
const ldconfigAux = "var/cache/ldconfig/aux-cache"

// derivedCases are the issue-11 cases for im.
func derivedCases(e *matrixEnv, im *mxImage) []mxCase {
	root := im.UID == 0
	needRoot := func(c mxCase) mxCase {
		if !root {
			c.skip = "needs root; the image's USER is not root"
		}
		return c
	}
	needDpkg := func(c mxCase) mxCase {
		if !im.Dpkg {
			c.skip = "no dpkg/ca-certificates in the image"
		}
		return needRoot(c)
	}
	needJava := func(c mxCase) mxCase {
		if !contains(im.Clients, "keytool") {
			c.skip = "no Java in the image"
		}
		return needRoot(c)
	}
	only := func(name string, c mxCase) mxCase {
		if im.Name != name {
			c.skip = "runs on " + name + " only"
		}
		return needRoot(c)
	}
	start := e.header() + im.from("")
	p := e.probes(im, "main", im.Primary)
	ctxMount := "--mount=type=bind,source=.,target=/mnt/ctx"
	debMount := "--mount=type=bind,from=debs,target=/mnt/debs"
	dropLogs := "rm -f /var/log/dpkg.log /var/log/alternatives.log\n"
	var keystore []string
	if contains(im.Clients, "keytool") {
		keystore = []string{javaKeystore}
	}
	// dpkg -i printing its output only when it fails.
	dpkgI := func(glob string) string {
		return "out=$(dpkg -i " + glob + " 2>&1) || { echo \"$out\" | tail -30; exit 7; }\n"
	}
	mv := im.tool("mv")
	tlsClients := func() string { // the primary client, and keytool where there is Java
		s := p
		if contains(im.Clients, "keytool") && im.Primary != "keytool" {
			s += e.probes(im, "main", "keytool")
		}
		return s
	}

	var cs []mxCase
	derive := needRoot(mxCase{
		// Issue 11 (1): a maintainer script derives files from
		// /etc/ssl/certs; none of them may hold our CA.
		Name:       "derive-deb",
		Dockerfile: start + im.run(debMount, dpkgI("/mnt/debs/derive-test_1.0_all.deb")+p+dropLogs),
		Debs:       debsDerive,
		Expect:     expectTrusted,
	})
	if !im.Dpkg && im.Name != testimages.DebianBookwormMin { // min: dpkg without ca-certificates
		derive.skip = "no dpkg in the image"
	}
	cs = append(cs, derive)

	cs = append(cs, only(testimages.DebianBookwormTLS, mxCase{
		// Issue 11 (1): a JRE installed in the step; ca-certificates-java's
		// postinst builds the keystore from every /etc/ssl/certs/*.pem.
		Name: "jre-install",
		Dockerfile: start + im.run(debMount, dpkgI("/mnt/debs/*.deb")+
			"[ -f /etc/ssl/certs/java/cacerts ] || { echo no keystore; exit 7; }\n"+p+e.probes(im, "main", "keytool")+dropLogs),
		Debs:          debsJRE,
		Expect:        expectTrusted,
		IgnoreContent: []string{javaKeystore, ldconfigAux},
	}))

	cs = append(cs,
		needJava(mxCase{
			// Issue 11 (2): keytool imports a certificate of its own
			// into the keystore our install wrote.
			Name: "keytool-import",
			Dockerfile: start + im.run(ctxMount, "keytool -importcert -noprompt -cacerts -storepass changeit -alias own-ca -file /mnt/ctx/own-ca.pem >/dev/null 2>&1 || exit 7\n"+
				e.probes(im, "main", "keytool")),
			Files:         map[string][]byte{"own-ca.pem": e.controlCA.PEM},
			Expect:        expectAppended,
			IgnoreContent: keystore,
		}),
		needJava(mxCase{
			// Issue 11 (2): only the keystore's mode changes.
			Name:       "chmod-keystore",
			Dockerfile: start + im.run("", "chmod 600 /etc/ssl/certs/java/cacerts || exit 7\n"+tlsClients()),
			Expect:     expectTrusted,
		}),
		needDpkg(mxCase{
			// Issue 11 (2), on the bundle: only its mode changes.
			Name:       "chmod-bundle",
			Dockerfile: start + im.run("", "chmod 600 /etc/ssl/certs/ca-certificates.crt || exit 7\n"+p),
			Expect:     expectTrusted,
		}),
		needRoot(mxCase{
			// Issue 11 (3): the bundle is kept under another name and
			// replaced by one of the process's own (the control CA).
			Name: "rename-bundle",
			Dockerfile: start + im.run(ctxMount, "cd /etc/ssl/certs 2>/dev/null && "+mv+" ca-certificates.crt ca-certificates.crt.orig; echo \"@@mv rc=$?\"\ncd /\n"+
				im.tool("mkdir")+" -p /etc/ssl/certs && "+im.tool("cat")+" /mnt/ctx/own-ca.pem > /etc/ssl/certs/ca-certificates.crt || exit 7\n"+p),
			Files:  map[string][]byte{"own-ca.pem": e.controlCA.PEM},
			Expect: expectInfo,
		}),
		needRoot(mxCase{
			// Issue 11 (3): the whole of /etc/ssl moves.
			Name:       "rename-etc-ssl",
			Dockerfile: start + im.run("", mv+" /etc/ssl /etc/ssl.dist; echo \"@@mv rc=$?\"\n"+p),
			Expect:     expectInfo,
		}),
		needDpkg(mxCase{
			// Issue 11 (3): the local anchors directory moves.
			Name:       "rename-anchors",
			Dockerfile: start + im.run("", "mkdir -p /opt && mv /usr/local/share/ca-certificates /opt/anchors || exit 7\n"+tlsClients()),
			Expect:     expectTrusted,
		}),
	)

	cs = append(cs, needRoot(mxCase{
		// Issue 11 (2)/(3): a hard link to the bundle (as backup tools
		// and package managers make): both names must end as built
		// without us, whatever revert does to the bundle.
		Name:       "link-bundle",
		Dockerfile: start + im.run("", im.tool("ln")+" /etc/ssl/certs/ca-certificates.crt /etc/ssl/bundle.link; echo \"@@ln rc=$?\"\n"+p),
		Expect:     expectTrusted,
	}))

	// Issue 11 (4): the Dockerfile adds the very CA the engine injects.
	// The image must end with its own hash link, as built without us.
	ownCA := "COPY test-ca.pem /usr/local/share/ca-certificates/corp-ca.crt\n"
	cs = append(cs,
		needDpkg(mxCase{
			Name: "same-ca",
			Dockerfile: start + ownCA + im.run("", "update-ca-certificates >/dev/null || exit 7\n"+dropLogs) +
				im.run("", tlsClients()+dropLogs),
			Files:         map[string][]byte{"test-ca.pem": e.testCA.PEM},
			Expect:        expectOwnCA,
			IgnoreContent: keystore,
		}),
		needDpkg(mxCase{
			Name:          "same-ca-fresh",
			Dockerfile:    start + ownCA + im.run("", "update-ca-certificates --fresh >/dev/null || exit 7\n"+tlsClients()+dropLogs),
			Files:         map[string][]byte{"test-ca.pem": e.testCA.PEM},
			Expect:        expectOwnCA,
			IgnoreContent: keystore,
		}),
	)

	// Issue 11 (5): the trust store's package installed where it was
	// missing, and used in the same RUN.
	cs = append(cs, only(testimages.DebianBookwormMin, mxCase{
		Name:          "install-cacerts-min",
		Dockerfile:    start + im.run(debMount, dpkgI("/mnt/debs/*.deb")+p+dropLogs),
		Debs:          debsCACertsMin,
		Expect:        expectTrusted,
		IgnoreContent: []string{ldconfigAux},
	}))

	// Self-check of the CA scan: the RUN writes the intermediate (from
	// the build context, on both daemons) to a file of its own only when
	// it trusts the ca server, i.e. only with injection; the scan must
	// report exactly that file, so a scan that sees nothing cannot pass
	// unnoticed. The intermediate, not the test CA: the engine never
	// installs it, so cacerts' sweep (which strips our CAs from whatever
	// the exec wrote, the process's own copies included) leaves it, and
	// the scan looks for it as for the CA.
	leak := im.writeDir() + "/leak.pem"
	cs = append(cs, mxCase{
		Name: "scan-self-check",
		Dockerfile: start + im.run(ctxMount, p+"if { "+e.clientCmd(im, im.Primary, "ca")+" ; } >/dev/null 2>&1; then "+
			im.tool("cat")+" /mnt/ctx/inter.pem > "+leak+"; fi\n"),
		Files:     map[string][]byte{"inter.pem": e.inter.PEM},
		Expect:    expectTrusted,
		WantLeaks: []string{strings.TrimPrefix(leak, "/") + ": intermediate in PEM block (CERTIFICATE)"},
	})
	return cs
}

// leakDiffs reports whether every difference ("layer N: PATH: …") is about
// one of the paths or a directory above one (made only by the build that
// wrote the file).
func leakDiffs(diffs, paths []string) bool {
	for _, d := range diffs {
		_, rest, _ := strings.Cut(d, ": ")
		name, _, _ := strings.Cut(rest, ": ")
		ok := false
		for _, p := range paths {
			if name == p || strings.HasPrefix(p, name+"/") {
				ok = true
			}
		}
		if !ok {
			return false
		}
	}
	return true
}
