package integration

import (
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/buildkit-cacerts/buildkit-cacerts/internal/testimages"
)

// mxImage is one test image of the matrix and what it holds.
type mxImage struct {
	Name    string
	Ref     string   // in the harness registry, set by newMatrixEnv
	Clients []string // the TLS clients it can run (tlsget is copied into every image)
	Primary string   // the client the non-client cases probe with
	Dpkg    bool     // dpkg, ca-certificates and update-ca-certificates are installed
	OpenSSL bool     // the openssl command (offline verification)
	Suite   string   // Debian suite, for the ca-certificates .deb
	UID     int      // the image's USER (0: root)
	Scratch bool     // no shell: RUN goes through a busybox bound in from another image
}

// matrixImages lists the images, in the order of the table's columns.
func matrixImages() []*mxImage {
	tls := []string{"curl", "openssl", "python", "tlsget"}
	return []*mxImage{
		{Name: testimages.DebianBookwormTLS, Clients: tls, Primary: "curl", Dpkg: true, OpenSSL: true, Suite: "bookworm"},
		{Name: testimages.DebianTrixieTLS, Clients: tls, Primary: "curl", Dpkg: true, OpenSSL: true, Suite: "trixie"},
		{Name: testimages.DebianBookwormJava, Clients: []string{"keytool", "openssl", "tlsget"}, Primary: "openssl", Dpkg: true, OpenSSL: true, Suite: "bookworm"},
		{Name: testimages.RootlessNonroot, Clients: tls, Primary: "curl", OpenSSL: true, Suite: "bookworm", UID: testimages.NonrootUID},
		{Name: testimages.DebianBookwormMin, Clients: []string{"tlsget"}, Primary: "tlsget", Suite: "bookworm"},
		{Name: testimages.Busybox, Clients: []string{"tlsget"}, Primary: "tlsget"},
		{Name: testimages.ScratchGo, Clients: []string{"tlsget"}, Primary: "tlsget", Scratch: true},
	}
}

// expect says what the probes of a case must report.
type expect int

const (
	// expectTrusted: on the with-CA daemon the ca and chain servers
	// verify and the control fails; on the empty-CA daemon all fail.
	expectTrusted expect = iota
	// expectUntrusted: every server fails on both daemons (opt-out).
	expectUntrusted
	// expectAppended: as expectTrusted, but the control server verifies on
	// both daemons (the process added the control CA itself).
	expectAppended
	// expectInfo: outcomes are logged, not asserted (the process broke or
	// replaced the trust store itself).
	expectInfo
	// expectOwnCA: the image holds the test CA itself (the Dockerfile
	// added it): the ca and chain servers verify on both daemons, the
	// control fails.
	expectOwnCA
)

// want says whether a probe of srv must succeed, and whether it is
// asserted at all.
func (x expect) want(k daemonKind, srv string) (ok, asserted bool) {
	switch x {
	case expectUntrusted:
		return false, true
	case expectAppended:
		if srv == "control" {
			return true, true
		}
		return k == withCA, true
	case expectInfo:
		return false, false
	case expectOwnCA:
		return srv != "control", true
	}
	return k == withCA && srv != "control", true
}

// mxCase is one column of the matrix for one image.
type mxCase struct {
	Name string
	skip string // why the case does not apply to the image ("" when it does)

	Dockerfile string            // {{N}} is the variant number when Concurrent > 1
	Files      map[string][]byte // build context files
	Debs       string            // the named context "debs": a suite (its ca-certificates .deb) or a .deb set (matrixEnv.debDirs)
	Expect     expect
	// Check makes further assertions on one build's output.
	Check func(t *testing.T, k daemonKind, logs string)
	// Concurrent builds that many variants at once on each daemon.
	Concurrent int
	// WantDiffs, when set, are the differences the comparison must find
	// (each the suffix of one reported line, nothing else): the harness's
	// self-check that a trace is seen.
	WantDiffs []string
	// IgnoreContent are paths whose content two builds of the step never
	// write alike (layerdiff.Options.IgnoreContent); the CA scan still
	// reads them.
	IgnoreContent []string
	// WantLeaks, when set, are the findings the CA scan must report (each
	// the suffix of one, nothing else), and the comparison may report
	// only the same paths: the scan's self-check.
	WantLeaks []string
}

// header is the stages every Dockerfile starts with: tlsget's image and
// busybox (used only where a stage needs it).
func (e *matrixEnv) header() string {
	return fmt.Sprintf("FROM %s AS tlsget\nFROM %s AS bb\n", e.scratchGoRef, e.busyboxRef)
}

// from starts a stage on the image (named as, when not empty) with tlsget
// copied in.
func (im *mxImage) from(as string) string {
	s := "FROM " + im.Ref
	if as != "" {
		s += " AS " + as
	}
	s += "\n"
	if !im.Scratch {
		s += "COPY --from=tlsget " + testimages.TLSGetPath + " /usr/local/bin/tlsget\n"
	}
	return s
}

// run is a RUN instruction with flags (mounts, network) running script
// with the image's shell (a bound-in busybox for scratch-go).
func (im *mxImage) run(flags, script string) string {
	argv := []string{"/bin/sh", "-c", script}
	if im.Scratch {
		flags = strings.TrimSpace(flags + " --mount=from=bb,source=/bin/busybox,target=/busybox")
		argv = []string{"/busybox", "sh", "-c", script}
	}
	q := make([]string, len(argv))
	for i, a := range argv {
		q[i] = strconv.Quote(a)
	}
	if flags != "" {
		flags += " "
	}
	return "RUN " + flags + "[" + strings.Join(q, ", ") + "]\n"
}

// tool is how a script calls a non-builtin command.
func (im *mxImage) tool(name string) string {
	if im.Scratch {
		return "/busybox " + name
	}
	return name
}

func (im *mxImage) tlsget() string {
	if im.Scratch {
		return testimages.TLSGetPath
	}
	return "/usr/local/bin/tlsget"
}

// writeDir is where a RUN of the image's USER may write.
func (im *mxImage) writeDir() string {
	if im.UID != 0 {
		return "/tmp"
	}
	return ""
}

// clientCmd is the shell command with which client fetches (or, for
// keytool, looks up) server srv.
func (e *matrixEnv) clientCmd(im *mxImage, clientName, srv string) string {
	s := e.servers[srv]
	switch clientName {
	case "curl":
		return "curl -fsS -o /dev/null --max-time 20 " + s.URL
	case "openssl":
		return "openssl s_client -connect " + s.HostPort + " -servername localhost -verify_return_error -verify_ip 127.0.0.1 </dev/null"
	case "python":
		return "python3 -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=20).read()' " + s.URL
	case "tlsget":
		return im.tlsget() + " " + s.URL
	case "keytool":
		fp := e.testCA.Fingerprint()
		if srv == "control" {
			fp = e.controlCA.Fingerprint()
		}
		return "keytool -cacerts -storepass changeit -list | grep -qF " + fp
	case "openssl-verify": // offline: the leaf against the default store
		chain := ""
		if srv == "chain" {
			chain = "-untrusted /mnt/ctx/inter.pem "
		}
		return "openssl verify -verify_ip 127.0.0.1 " + chain + "/mnt/ctx/leaf-" + srv + ".pem"
	}
	panic("unknown client " + clientName)
}

// probeServers are the servers a client is probed against: keytool looks
// the roots up in the Java store (the intermediate is never there).
func probeServers(clientName string) []string {
	if clientName == "keytool" {
		return []string{"ca", "control"}
	}
	return []string{"ca", "chain", "control"}
}

// probes is a script fragment that runs client against every server and
// prints one "@@probe TAG CLIENT SERVER rc=N" line each (and the error
// output of a failure), without failing the RUN: both daemons' builds must
// succeed for their layers to be compared.
func (e *matrixEnv) probes(im *mxImage, tag, clientName string) string {
	var b strings.Builder
	for _, srv := range probeServers(clientName) {
		fmt.Fprintf(&b, "out=$( { %s ; } 2>&1 >/dev/null ); rc=$?; echo \"@@probe %s %s %s rc=$rc\"; [ $rc -eq 0 ] || echo \"@@why %s %s %s: $out\"\n",
			e.clientCmd(im, clientName, srv), tag, clientName, srv, tag, clientName, srv)
	}
	return b.String()
}

// listing is a script fragment printing "@@entry PATH" for every entry of
// dir (dot files too) with shell builtins only.
func listing(dir string) string {
	return fmt.Sprintf("for f in %[1]s/* %[1]s/.[!.]*; do if [ -e \"$f\" ] || [ -L \"$f\" ]; then echo \"@@entry $f\"; fi; done\n", dir)
}

// matrixCases are the cases of the matrix for im, in the table's order.
func matrixCases(e *matrixEnv, im *mxImage) []mxCase {
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
	start := e.header() + im.from("")
	p := e.probes(im, "main", im.Primary)
	ctxMount := "--mount=type=bind,source=.,target=/mnt/ctx"

	var cs []mxCase
	cs = append(cs, mxCase{Name: "true", Dockerfile: start + im.run("", "true"), Expect: expectInfo})
	for _, cl := range []string{"curl", "openssl", "python", "tlsget", "keytool"} {
		c := mxCase{Name: cl, Expect: expectTrusted}
		if !contains(im.Clients, cl) {
			c.skip = "no " + cl + " in the image"
		} else {
			c.Dockerfile = start + im.run("", e.probes(im, "main", cl))
		}
		cs = append(cs, c)
	}

	// The uid is printed (shell images) and checked; scratch-go's busybox
	// sh has no id builtin.
	nonroot := mxCase{Name: "nonroot", Expect: expectTrusted}
	uid, user := im.UID, ""
	if root {
		uid, user = 65534, "USER 65534:65534\n"
	}
	uidLine := ""
	if !im.Scratch {
		uidLine = "echo \"@@uid $(id -u)\"\n"
		nonroot.Check = requireLine("@@uid " + strconv.Itoa(uid))
	}
	nonroot.Dockerfile = start + user + im.run("", uidLine+p)
	cs = append(cs, nonroot)

	cacheOpts := ""
	if !root {
		cacheOpts = fmt.Sprintf(",uid=%d,gid=%d", im.UID, im.UID)
	}
	cs = append(cs,
		mxCase{
			Name:       "cache-mount",
			Dockerfile: start + im.run("--mount=type=cache,id="+im.Name+"-cache,target=/var/cache/mx"+cacheOpts, "echo written > /var/cache/mx/f\n"+p),
			Expect:     expectTrusted,
		},
		mxCase{
			// A cache mount over /etc/ssl/certs belongs to the user: the
			// install must leave it alone (docs/design.md invariant 7), so
			// the process sees it empty.
			Name:       "cache-over-certs",
			Dockerfile: start + im.run("--mount=type=cache,id="+im.Name+"-certs,target=/etc/ssl/certs", listing("/etc/ssl/certs")+p),
			Expect:     expectInfo,
			Check:      requireNoLine("@@entry "),
		},
		mxCase{
			Name:       "bind-mount",
			Dockerfile: start + im.run(ctxMount, "[ -f /mnt/ctx/hello ] || exit 7\n"+p),
			Files:      map[string][]byte{"hello": []byte("hello\n")},
			Expect:     expectTrusted,
		},
		mxCase{
			// A bind of the context over /etc/ssl/certs: the process
			// must see exactly the bound directory (invariant 7).
			Name:       "bind-over-certs",
			Dockerfile: start + im.run("--mount=type=bind,source=usercerts,target=/etc/ssl/certs", listing("/etc/ssl/certs")+p),
			Files:      map[string][]byte{"usercerts/ca-certificates.crt": e.controlCA.PEM},
			Expect:     expectInfo,
			Check:      requireEntries("/etc/ssl/certs/ca-certificates.crt"),
		},
	)

	netNone := mxCase{Name: "network-none", Expect: expectInfo, Dockerfile: start + im.run("--network=none", "true")}
	if im.OpenSSL {
		netNone.Expect = expectTrusted
		netNone.Files = map[string][]byte{"inter.pem": e.inter.PEM}
		for name, s := range e.servers {
			netNone.Files["leaf-"+name+".pem"] = s.LeafPEM
		}
		netNone.Dockerfile = start + im.run("--network=none "+ctxMount, e.probes(im, "offline", "openssl-verify"))
	}
	cs = append(cs, netNone)

	debMount := "--mount=type=bind,from=debs,target=/mnt/debs"
	// dpkg logs with timestamps: two runs never agree on them, so the
	// process drops its log (as Dockerfiles commonly do).
	dropLogs := "rm -f /var/log/dpkg.log /var/log/alternatives.log\n"
	cs = append(cs,
		needDpkg(mxCase{
			// Purge and install again from the local .deb: the
			// package's postinst runs update-ca-certificates --fresh.
			Name: "install-cacerts",
			Dockerfile: start + im.run(debMount, "set -e\ndpkg --purge --force-depends ca-certificates >/dev/null\n"+
				"dpkg -i /mnt/debs/ca-certificates_*.deb >/dev/null\nset +e\n"+p+dropLogs),
			Debs:   im.Suite,
			Expect: expectTrusted,
		}),
		needDpkg(mxCase{
			Name:       "purge-cacerts",
			Dockerfile: start + im.run("", "dpkg --purge --force-depends ca-certificates >/dev/null 2>&1; echo \"@@purged rc=$?\"\n"+p+dropLogs),
			Expect:     expectInfo,
			Check:      requireLine("@@purged rc=0"),
		}),
		needDpkg(mxCase{
			Name:       "update-ca-certificates",
			Dockerfile: start + im.run("", "update-ca-certificates >/dev/null || exit 7\n"+p+dropLogs),
			Expect:     expectTrusted,
		}),
		needRoot(mxCase{
			// The process appends its own CA (the control's) to the
			// bundle, creating it where the image has none.
			Name: "append-bundle",
			Dockerfile: start + im.run(ctxMount, im.tool("mkdir")+" -p /etc/ssl/certs && "+im.tool("cat")+
				" /mnt/ctx/user-ca.pem >> /etc/ssl/certs/ca-certificates.crt || exit 7\n"+p),
			Files:  map[string][]byte{"user-ca.pem": e.controlCA.PEM},
			Expect: expectAppended,
		}),
		needRoot(mxCase{
			Name:       "delete-etc-ssl",
			Dockerfile: start + im.run("", im.tool("rm")+" -rf /etc/ssl || exit 7\n"+p),
			Expect:     expectInfo,
		}),
		needRoot(mxCase{
			// The final image gets /etc/ssl/certs from a stage: it must
			// hold only what the stage's process made.
			Name: "multi-stage",
			Dockerfile: e.header() + im.from("stage") +
				im.run("", im.tool("mkdir")+" -p /etc/ssl/certs && echo stage > /etc/ssl/certs/stage-made.txt || exit 7\n"+p) +
				im.from("") + "COPY --from=stage /etc/ssl/certs /etc/ssl/certs\n",
			Expect: expectTrusted,
		}),
	)

	optOut := start + "ENV BUILDKIT_CACERTS=off\n"
	for _, cl := range im.Clients {
		optOut += im.run("", e.probes(im, "off", cl))
	}
	cs = append(cs, mxCase{Name: "opt-out", Dockerfile: optOut, Expect: expectUntrusted})

	steps := start
	for i := 1; i <= 20; i++ {
		script := fmt.Sprintf("echo %d > %s/step-%02d\n", i, im.writeDir(), i)
		if i == 1 || i == 10 || i == 20 {
			script += e.probes(im, fmt.Sprintf("step%d", i), im.Primary)
		}
		steps += im.run("", script)
	}
	cs = append(cs, mxCase{Name: "steps-20", Dockerfile: steps, Expect: expectTrusted})

	// Self-check of the comparison: the RUN writes a file only when it
	// trusts the CA, a planted "trace" the comparison must report.
	cs = append(cs, mxCase{
		Name: "self-check",
		Dockerfile: start + im.run("", p+"if { "+e.clientCmd(im, im.Primary, "ca")+" ; } >/dev/null 2>&1; then echo planted > "+
			im.writeDir()+"/planted-trace; fi\n"),
		Expect:    expectTrusted,
		WantDiffs: planted(im.writeDir()),
	})
	cs = append(cs, derivedCases(e, im)...)
	cs = append(cs, mxCase{
		Name:       "concurrent-8",
		Dockerfile: start + im.run("", "echo {{N}} > "+im.writeDir()+"/variant\n"+p),
		Expect:     expectTrusted,
		Concurrent: 8,
	})
	return cs
}

// planted are the differences the self-check's file in dir makes: the file
// and, below the root, its directory.
func planted(dir string) []string {
	d := []string{strings.TrimPrefix(dir+"/planted-trace", "/") + ": only with injection (file, 8 bytes)"}
	if dir != "" {
		d = append(d, strings.TrimPrefix(dir, "/")+": only with injection (dir)")
	}
	return d
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// requireLine fails a build whose output lacks line.
func requireLine(line string) func(t *testing.T, k daemonKind, logs string) {
	return func(t *testing.T, k daemonKind, logs string) {
		if !containsLine(logs, line) {
			t.Errorf("%s daemon: the output lacks the line %q", k, line)
		}
	}
}

// requireNoLine fails a build whose output has a line starting with prefix.
func requireNoLine(prefix string) func(t *testing.T, k daemonKind, logs string) {
	return func(t *testing.T, k daemonKind, logs string) {
		for _, l := range strings.Split(logs, "\n") {
			if strings.HasPrefix(l, prefix) {
				t.Errorf("%s daemon: unexpected output line %q", k, l)
			}
		}
	}
}

// requireEntries fails a build whose "@@entry" lines are not exactly paths.
func requireEntries(paths ...string) func(t *testing.T, k daemonKind, logs string) {
	return func(t *testing.T, k daemonKind, logs string) {
		var got []string
		for _, l := range strings.Split(logs, "\n") {
			if p, ok := strings.CutPrefix(l, "@@entry "); ok {
				got = append(got, strings.TrimSpace(p))
			}
		}
		if strings.Join(got, " ") != strings.Join(paths, " ") {
			t.Errorf("%s daemon: the process saw %q, want exactly %q", k, got, paths)
		}
	}
}

func containsLine(logs, line string) bool {
	for _, l := range strings.Split(logs, "\n") {
		if strings.TrimSpace(l) == line {
			return true
		}
	}
	return false
}
