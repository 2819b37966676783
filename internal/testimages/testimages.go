// Package testimages gives tests the project's test images, built by
// hack/images (package factory) and cached outside the repository in
// $CACERTS_IMAGE_CACHE (default /var/cache/buildkit-cacerts/images).
//
// Every function here is for root-only tests: it calls testenv.RequiresRoot
// first, so it skips unless CACERTS_ROOT_TESTS=1 and the test runs as root.
// A missing image is built on demand (under a file lock shared with other
// test processes and `go run ./hack/images`), which takes from seconds to a
// couple of minutes; run `go run ./hack/images` first to build them all at
// once, in parallel. A failed build fails the test.
//
// Paths into the cache (Layout, RootfsTar, CACertsDeb) are shared and must
// not be modified; Rootfs returns a private copy that a test may change.
package testimages

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/buildkit-cacerts/buildkit-cacerts/internal/testenv"
	"github.com/buildkit-cacerts/buildkit-cacerts/internal/testimages/factory"
)

// Image names.
const (
	DebianBookwormMin     = factory.DebianBookwormMin     // minbase: no ca-certificates, no bundle
	DebianBookwormTLS     = factory.DebianBookwormTLS     // ca-certificates, curl, openssl, python3, wget
	DebianTrixieTLS       = factory.DebianTrixieTLS       // the same on trixie
	DebianBookwormJava    = factory.DebianBookwormJava    // ca-certificates-java + openjdk-17-jre-headless
	Busybox               = factory.Busybox               // /bin/busybox (static) + applet links only
	ScratchGo             = factory.ScratchGo             // only the static binary /tlsget
	RootlessNonroot       = factory.RootlessNonroot       // bookworm-tls + user nonroot (1000:1000) as USER
	DebianBookwormUidmap  = factory.DebianBookwormUidmap  // minbase + uidmap (setuid newuidmap/newgidmap), libcap2-bin
	DebianBookwormGoBuild = factory.DebianBookwormGoBuild // minbase + gcc, libc6-dev, libseccomp-dev, pkg-config (on demand)
)

// Facts about the images.
const (
	TLSGetPath  = factory.TLSGetPath  // the binary in ScratchGo
	NonrootUser = factory.NonrootUser // RootlessNonroot's user name
	NonrootUID  = factory.NonrootUID
	NonrootGID  = factory.NonrootGID
	RefName     = factory.RefName // every layout's image is tagged "latest"
)

// .deb sets (Debs).
const (
	JREDebsBookworm        = factory.JREDebsBookworm        // what DebianBookwormTLS lacks for default-jre-headless
	CACertsClosureBookworm = factory.CACertsClosureBookworm // ca-certificates + what DebianBookwormMin lacks for it
)

// Images returns all image names.
func Images() []string { return factory.Images() }

func get(t testing.TB, name string) factory.Result {
	t.Helper()
	testenv.RequiresRoot(t)
	b := factory.New(factory.Options{Logf: func(format string, args ...any) {
		t.Logf("testimages: "+format, args...)
	}})
	if res, ok, err := b.Lookup(name); err != nil {
		t.Fatalf("testimages: %v", err)
	} else if ok {
		return res
	}
	t.Logf("testimages: building %s into %s (run `go run ./hack/images` beforehand to build all at once)", name, b.CacheDir())
	ctx := context.Background()
	if c, ok := t.(interface{ Context() context.Context }); ok {
		ctx = c.Context()
	}
	res, err := b.Ensure(ctx, name)
	if err != nil {
		t.Fatalf("testimages: %v", err)
	}
	return res[0]
}

// Layout returns the OCI image layout directory of the named image (one
// linux/amd64 image tagged RefName). It is shared: do not modify it.
func Layout(t testing.TB, name string) string {
	t.Helper()
	return get(t, name).Layout
}

// Digest returns the manifest digest (sha256:…) of the named image's layout,
// e.g. for BuildKit's oci-layout://name@sha256:… contexts.
func Digest(t testing.TB, name string) string {
	t.Helper()
	return get(t, name).Digest
}

// RootfsTar returns the named image's root filesystem as a tarball (pax
// format, numeric owners, xattrs, device nodes, "./"-prefixed names). It is
// shared: do not modify it.
func RootfsTar(t testing.TB, name string) string {
	t.Helper()
	return get(t, name).RootfsTar
}

// Rootfs extracts a fresh private copy of the named image's root filesystem
// into a new directory under t.TempDir() and returns it. Owners (numeric),
// modes, mtimes (with nanoseconds), xattrs, hard links and device nodes are
// kept (GNU tar as root).
func Rootfs(t testing.TB, name string) string {
	t.Helper()
	tarPath := get(t, name).RootfsTar
	dir := filepath.Join(t.TempDir(), "rootfs")
	if err := Extract(tarPath, dir); err != nil {
		t.Fatalf("testimages: %v", err)
	}
	return dir
}

// Extract unpacks a rootfs tarball into dir (created if needed) preserving
// owners, modes, times, xattrs, hard links and device nodes. Needs root.
func Extract(tarPath, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	cmd := exec.Command("tar", "--extract", "--file", tarPath, "--directory", dir,
		"--same-permissions", "--same-owner", "--numeric-owner",
		"--xattrs", "--xattrs-include=*", "--acls", "--selinux")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return &extractError{tarPath, err, out.String()}
	}
	return nil
}

type extractError struct {
	tar string
	err error
	out string
}

func (e *extractError) Error() string {
	return "extracting " + e.tar + ": " + e.err.Error() + ": " + e.out
}

// CACertsDeb returns the cached ca-certificates .deb of suite ("bookworm" or
// "trixie"), for installing it with dpkg -i without a network. It is shared:
// do not modify it.
func CACertsDeb(t testing.TB, suite string) string {
	t.Helper()
	res := get(t, factory.CACertsDebPrefix+suite)
	if len(res.Debs) != 1 {
		t.Fatalf("testimages: %s: want one .deb, have %v", res.Name, res.Debs)
	}
	return res.Debs[0]
}

// Debs returns the cached .deb files of a .deb set (JREDebsBookworm,
// CACertsClosureBookworm, …), for installing them together with dpkg -i
// without a network. They are shared: do not modify them.
func Debs(t testing.TB, name string) []string {
	t.Helper()
	res := get(t, name)
	if len(res.Debs) == 0 {
		t.Fatalf("testimages: %s holds no .deb", name)
	}
	return res.Debs
}
