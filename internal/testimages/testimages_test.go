package testimages

import (
	"archive/tar"
	"encoding/pem"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/buildkit-cacerts/buildkit-cacerts/internal/testenv"
	"github.com/google/go-containerregistry/pkg/v1/layout"
)

// TestImages builds (or loads) every image and checks basic facts about its
// root filesystem and OCI layout. Root-only: it runs under CACERTS_ROOT_TESTS=1.
func TestImages(t *testing.T) {
	testenv.RequiresRoot(t)
	for _, name := range Images() {
		t.Run(name, func(t *testing.T) {
			lay := Layout(t, name)
			checkLayout(t, name, lay)
			root := Rootfs(t, name)
			checkRootfs(t, name, root)
		})
	}
}

func checkLayout(t *testing.T, name, dir string) {
	p, err := layout.FromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	idx, err := p.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(im.Manifests) != 1 {
		t.Fatalf("layout holds %d manifests, want 1", len(im.Manifests))
	}
	desc := im.Manifests[0]
	if desc.Annotations["org.opencontainers.image.ref.name"] != RefName || desc.Platform == nil || desc.Platform.Architecture != "amd64" {
		t.Errorf("index entry: %+v", desc)
	}
	if got := Digest(t, name); got != desc.Digest.String() {
		t.Errorf("Digest = %s, layout has %s", got, desc.Digest)
	}
	img, err := p.Image(desc.Digest)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cf.OS != "linux" || cf.Architecture != "amd64" || len(cf.Config.Cmd) == 0 || len(cf.Config.Env) == 0 {
		t.Errorf("config: os %q arch %q cmd %q env %q", cf.OS, cf.Architecture, cf.Config.Cmd, cf.Config.Env)
	}
	wantUser := ""
	if name == RootlessNonroot {
		wantUser = "1000:1000"
	}
	if cf.Config.User != wantUser {
		t.Errorf("config User = %q, want %q", cf.Config.User, wantUser)
	}
	layers, err := img.Layers()
	if err != nil || len(layers) != 1 {
		t.Fatalf("layers: %d, %v", len(layers), err)
	}
	// The layer is the cached rootfs tarball, gzipped.
	diffID, _ := layers[0].DiffID()
	if got := sha256File(t, RootfsTar(t, name)); got != diffID.Hex {
		t.Errorf("layer diffID %s != sha256(rootfs.tar) %s", diffID.Hex, got)
	}
	digest, _ := layers[0].Digest()
	blob := filepath.Join(dir, "blobs", "sha256", digest.Hex)
	out, err := exec.Command("sh", "-c", `gzip -dc "$1" | sha256sum`, "sh", blob).Output()
	if err != nil || strings.Fields(string(out))[0] != diffID.Hex {
		t.Errorf("gunzip(layer blob) does not hash to the diffID: %v %s", err, out)
	}
	// Every blob hashes to its name.
	blobs, _ := filepath.Glob(filepath.Join(dir, "blobs", "sha256", "*"))
	for _, b := range blobs {
		if got := sha256File(t, b); got != filepath.Base(b) {
			t.Errorf("blob %s hashes to %s", b, got)
		}
	}
}

func sha256File(t *testing.T, p string) string {
	out, err := exec.Command("sha256sum", p).Output()
	if err != nil {
		t.Fatal(err)
	}
	return strings.Fields(string(out))[0]
}

func exists(root, p string) bool {
	_, err := os.Lstat(filepath.Join(root, p))
	return err == nil
}

func checkRootfs(t *testing.T, name, root string) {
	must := func(paths ...string) {
		t.Helper()
		for _, p := range paths {
			if !exists(root, p) {
				t.Errorf("%s: missing %s", name, p)
			}
		}
	}
	mustNot := func(paths ...string) {
		t.Helper()
		for _, p := range paths {
			if exists(root, p) {
				t.Errorf("%s: unexpected %s", name, p)
			}
		}
	}
	bundle := "etc/ssl/certs/ca-certificates.crt"
	switch name {
	case DebianBookwormMin:
		must("etc/debian_version", "usr/bin/apt-get", "bin/bash", "dev/null")
		mustNot(bundle, "usr/sbin/update-ca-certificates", "usr/share/ca-certificates", "usr/bin/curl")
		checkOSRelease(t, root, "12")
	case DebianBookwormUidmap:
		must("usr/bin/newuidmap", "usr/bin/newgidmap", "usr/sbin/setcap")
		mustNot(bundle, "usr/bin/curl")
		for _, p := range []string{"usr/bin/newuidmap", "usr/bin/newgidmap"} {
			if fi, err := os.Stat(filepath.Join(root, p)); err == nil && fi.Mode()&os.ModeSetuid == 0 {
				t.Errorf("%s: /%s is not setuid (%v)", name, p, fi.Mode())
			}
		}
		checkOSRelease(t, root, "12")
	case DebianBookwormTLS, DebianTrixieTLS, RootlessNonroot:
		must(bundle, "usr/bin/curl", "usr/bin/openssl", "usr/bin/python3", "usr/bin/wget",
			"usr/sbin/update-ca-certificates", "etc/ca-certificates.conf")
		mustNot("var/log/dpkg.log", "var/cache/apt/pkgcache.bin")
		if m, _ := filepath.Glob(filepath.Join(root, "var/lib/apt/lists/*_Packages*")); len(m) > 0 {
			t.Errorf("apt lists left in the image: %q", m)
		}
		ver := "12"
		if name == DebianTrixieTLS {
			ver = "13"
		}
		checkOSRelease(t, root, ver)
		if n := countCerts(t, filepath.Join(root, bundle)); n < 100 {
			t.Errorf("bundle has %d certificates", n)
		}
		if name == RootlessNonroot {
			pw, _ := os.ReadFile(filepath.Join(root, "etc/passwd"))
			if !strings.Contains(string(pw), "\n"+NonrootUser+":x:1000:1000:") {
				t.Errorf("no %s user in /etc/passwd:\n%s", NonrootUser, pw)
			}
			fi, err := os.Stat(filepath.Join(root, "home", NonrootUser))
			if err != nil || fi.Sys().(*syscall.Stat_t).Uid != 1000 {
				t.Errorf("home of %s: %v", NonrootUser, err)
			}
		}
		// Run the image's own tools in a chroot: the trust store works offline.
		out, err := exec.Command("chroot", root, "openssl", "version").CombinedOutput()
		if err != nil {
			t.Errorf("chroot openssl version: %v\n%s", err, out)
		}
	case DebianBookwormJava:
		must(bundle, "etc/ssl/certs/java/cacerts", "etc/ca-certificates/update.d/jks-keystore", "usr/bin/java")
		// The hook ran at install time: the keystore holds every bundle certificate.
		// (The JVM needs /proc: a private mount namespace provides it.)
		out, err := exec.Command("unshare", "--mount", "--propagation", "private", "--fork", "sh", "-c",
			`mount -t proc proc "$1/proc" && chroot "$1" keytool -list -cacerts -storepass changeit`, "sh", root).CombinedOutput()
		if err != nil {
			t.Fatalf("keytool -list: %v\n%s", err, out)
		}
		if got, want := strings.Count(string(out), "trustedCertEntry"), countCerts(t, filepath.Join(root, bundle)); got != want || got < 100 {
			t.Errorf("java cacerts holds %d certificates, the bundle %d", got, want)
		}
	case Busybox:
		must("bin/busybox", "bin/sh", "bin/ls", "usr/bin/wget")
		mustNot(bundle, "etc", "usr/share", "var")
		if l, err := os.Readlink(filepath.Join(root, "bin/sh")); err != nil || l != "/bin/busybox" {
			t.Errorf("bin/sh -> %q, %v", l, err)
		}
		out, err := exec.Command("chroot", root, "/bin/sh", "-c", "echo ok; ls /bin | wc -l").CombinedOutput()
		if err != nil || !strings.HasPrefix(string(out), "ok\n") {
			t.Errorf("chroot sh: %v\n%s", err, out)
		}
	case ScratchGo:
		var files []string
		filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
			if err == nil && !fi.IsDir() {
				files = append(files, strings.TrimPrefix(p, root))
			}
			return nil
		})
		if len(files) != 1 || files[0] != TLSGetPath {
			t.Errorf("scratch-go files = %q, want only %s", files, TLSGetPath)
		}
		// No trust store at all: the handshake fails verification; once the
		// server's CA is in the bundle file Go reads, it succeeds.
		srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
		srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the expected bad-certificate handshake
		srv.StartTLS()
		defer srv.Close()
		out, err := exec.Command("chroot", root, TLSGetPath, srv.URL).CombinedOutput()
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 || !strings.Contains(string(out), "x509") {
			t.Errorf("chroot tlsget with no trust store: %v\n%s", err, out)
		}
		os.MkdirAll(filepath.Join(root, "etc/ssl/certs"), 0o755)
		ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
		os.WriteFile(filepath.Join(root, "etc/ssl/certs/ca-certificates.crt"), ca, 0o644)
		out, err = exec.Command("chroot", root, TLSGetPath, srv.URL).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "200 OK") {
			t.Errorf("chroot tlsget with the CA in the bundle: %v\n%s", err, out)
		}
	default:
		t.Fatalf("no checks for image %s", name)
	}
}

func checkOSRelease(t *testing.T, root, versionID string) {
	b, err := os.ReadFile(filepath.Join(root, "etc/os-release"))
	if err != nil {
		b, err = os.ReadFile(filepath.Join(root, "usr/lib/os-release"))
	}
	if err != nil || !strings.Contains(string(b), `VERSION_ID="`+versionID+`"`) {
		t.Errorf("os-release: want VERSION_ID %s: %v\n%s", versionID, err, b)
	}
}

func countCerts(t *testing.T, p string) int {
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Count(string(b), "-----BEGIN CERTIFICATE-----")
}

// TestRootfsFidelity checks that Rootfs keeps what tests depend on: owners,
// modes, nanosecond mtimes, xattrs, hard links and device nodes, and that
// each call gives a fresh private copy.
func TestRootfsFidelity(t *testing.T) {
	tarPath := RootfsTar(t, DebianBookwormTLS)
	a := Rootfs(t, DebianBookwormTLS)
	b := Rootfs(t, DebianBookwormTLS)
	if a == b {
		t.Fatal("Rootfs returned the same directory twice")
	}
	if err := os.WriteFile(filepath.Join(a, "etc/ssl/certs/ca-certificates.crt"), []byte("changed"), 0o644); err != nil {
		t.Fatal(err)
	}
	if countCerts(t, filepath.Join(b, "etc/ssl/certs/ca-certificates.crt")) < 100 {
		t.Error("a change in one copy shows in the other")
	}

	// Compare every entry of the tarball with the extracted copy b.
	f, err := os.Open(tarPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tr := tar.NewReader(f)
	var n, devs, links, xattrs int
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		n++
		p := filepath.Join(b, h.Name)
		var st syscall.Stat_t
		if err := syscall.Lstat(p, &st); err != nil {
			t.Errorf("%s: %v", h.Name, err)
			continue
		}
		if int(st.Uid) != h.Uid || int(st.Gid) != h.Gid {
			t.Errorf("%s: owner %d:%d, tar %d:%d", h.Name, st.Uid, st.Gid, h.Uid, h.Gid)
		}
		if h.Typeflag != tar.TypeSymlink && int64(st.Mode&07777) != h.Mode&07777 {
			t.Errorf("%s: mode %o, tar %o", h.Name, st.Mode&07777, h.Mode&07777)
		}
		if h.Typeflag != tar.TypeDir && h.Typeflag != tar.TypeLink && !time.Unix(st.Mtim.Sec, st.Mtim.Nsec).Equal(h.ModTime) {
			t.Errorf("%s: mtime %v, tar %v", h.Name, time.Unix(st.Mtim.Sec, st.Mtim.Nsec), h.ModTime)
		}
		switch h.Typeflag {
		case tar.TypeChar, tar.TypeBlock:
			devs++
			if st.Rdev != uint64(mkdev(h.Devmajor, h.Devminor)) {
				t.Errorf("%s: rdev %x, tar %d,%d", h.Name, st.Rdev, h.Devmajor, h.Devminor)
			}
		case tar.TypeLink:
			links++
			var tst syscall.Stat_t
			if err := syscall.Lstat(filepath.Join(b, h.Linkname), &tst); err != nil || tst.Ino != st.Ino {
				t.Errorf("%s: not a hard link of %s", h.Name, h.Linkname)
			}
		}
		for k, v := range h.PAXRecords {
			if name, ok := strings.CutPrefix(k, "SCHILY.xattr."); ok {
				xattrs++
				buf := make([]byte, 4096)
				m, err := syscall.Getxattr(p, name, buf)
				if err != nil || string(buf[:m]) != v {
					t.Errorf("%s: xattr %s: %v", h.Name, name, err)
				}
			}
		}
	}
	t.Logf("%d entries, %d device nodes, %d hard links, %d xattrs compared", n, devs, links, xattrs)
	if devs == 0 {
		t.Error("no device nodes in the tarball")
	}

	// Nanosecond mtimes survive a round trip through Extract (the image's own
	// files have whole seconds, clamped to SOURCE_DATE_EPOCH).
	src := t.TempDir()
	ns := time.Unix(1700000000, 123456789)
	os.WriteFile(filepath.Join(src, "f"), []byte("x"), 0o600)
	os.Chtimes(filepath.Join(src, "f"), ns, ns)
	os.Chown(filepath.Join(src, "f"), 1234, 5678)
	tarball := filepath.Join(t.TempDir(), "t.tar")
	if out, err := exec.Command("tar", "--create", "--format=posix", "--numeric-owner", "--xattrs", "-f", tarball, "-C", src, ".").CombinedOutput(); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	dst := filepath.Join(t.TempDir(), "x")
	if err := Extract(tarball, dst); err != nil {
		t.Fatal(err)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(filepath.Join(dst, "f"), &st); err != nil {
		t.Fatal(err)
	}
	if got := time.Unix(st.Mtim.Sec, st.Mtim.Nsec); !got.Equal(ns) || st.Uid != 1234 || st.Gid != 5678 || st.Mode&07777 != 0o600 {
		t.Errorf("round trip: mtime %v uid %d gid %d mode %o", got, st.Uid, st.Gid, st.Mode&07777)
	}
}

func mkdev(major, minor int64) uint64 {
	return uint64(major&0xfff)<<8 | uint64(minor&0xff) | uint64(minor&^0xff)<<12 | uint64(major&^0xfff)<<32
}

func TestCACertsDebs(t *testing.T) {
	for _, suite := range []string{"bookworm", "trixie"} {
		deb := CACertsDeb(t, suite)
		out, err := exec.Command("dpkg-deb", "--field", deb, "Package", "Version", "Depends").Output()
		if err != nil {
			t.Fatalf("%s: %v", deb, err)
		}
		if !strings.Contains(string(out), "Package: ca-certificates\n") || !strings.Contains(string(out), "openssl") {
			t.Errorf("%s: fields:\n%s", deb, out)
		}
		t.Logf("%s: %s", suite, strings.ReplaceAll(strings.TrimSpace(string(out)), "\n", "; "))
	}
}

// TestReinstallCACertsOffline installs the cached bookworm .deb into a
// bookworm-tls copy with dpkg, in a chroot, without network: what later
// differential tests do.
func TestReinstallCACertsOffline(t *testing.T) {
	deb := CACertsDeb(t, "bookworm")
	root := Rootfs(t, DebianBookwormTLS)
	in := filepath.Join(root, "tmp", filepath.Base(deb))
	data, err := os.ReadFile(deb)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(in, data, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("unshare", "--net", "chroot", root, "dpkg", "-i", "/tmp/"+filepath.Base(deb))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("dpkg -i: %v\n%s", err, out)
	}
	if countCerts(t, filepath.Join(root, "etc/ssl/certs/ca-certificates.crt")) < 100 {
		t.Error("bundle lost after reinstall")
	}
}

// TestDebSets: the .deb sets hold the packages their users dpkg -i.
func TestDebSets(t *testing.T) {
	for name, want := range map[string][]string{
		JREDebsBookworm:        {"default-jre-headless", "openjdk-17-jre-headless", "ca-certificates-java", "java-common", "libnss3"},
		CACertsClosureBookworm: {"ca-certificates", "openssl", "libssl3"},
	} {
		have := map[string]bool{}
		for _, deb := range Debs(t, name) {
			out, err := exec.Command("dpkg-deb", "--field", deb, "Package").Output()
			if err != nil {
				t.Fatalf("%s: %v", deb, err)
			}
			have[strings.TrimSpace(string(out))] = true
		}
		for _, p := range want {
			if !have[p] {
				t.Errorf("%s: no %s among %v", name, p, have)
			}
		}
	}
}
