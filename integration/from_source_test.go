package integration

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moby/buildkit/client"

	"github.com/buildkit-cacerts/buildkit-cacerts/internal/harness"
	"github.com/buildkit-cacerts/buildkit-cacerts/internal/testenv"
	"github.com/buildkit-cacerts/buildkit-cacerts/internal/testimages"
	"github.com/buildkit-cacerts/buildkit-cacerts/internal/testimages/factory"
)

// TestShipImageFromSource builds the Dockerfile's default path, the one a
// user's `docker build .` takes: the Go stage compiles buildkitd, buildctl,
// runc and RootlessKit. Offline, with our daemon:
//   - GOLANG_IMAGE is a local Go image: debian-bookworm-gobuild (hack/images:
//     gcc, libc6-dev, libseccomp-dev, pkg-config) plus this machine's Go
//     (GOROOT, copied in from a named context), GOTOOLCHAIN=local;
//   - the modules come from hack/gomodules.sh's proxy directory, passed as
//     the named context `gomodproxy` (GOMODULES=gomodproxy,
//     GOPROXY=file:///gomodules with no fallback, GOSUMDB=off: its modules
//     were checked against go.sum and the checksum database when this
//     machine downloaded them).
//
// Heavy (everything compiles from nothing in a container: no Go build
// cache), so it runs only with CACERTS_FROM_SOURCE=1: hack/from-source.sh.
func TestShipImageFromSource(t *testing.T) {
	testenv.RequiresRoot(t)
	if os.Getenv("CACERTS_FROM_SOURCE") != "1" {
		t.Skip("compiles BuildKit, runc and RootlessKit in a container with no build cache; run by hack/from-source.sh (CACERTS_FROM_SOURCE=1)")
	}
	repo, err := factory.FindRepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	mods := filepath.Join(t.TempDir(), "gomodules")
	t0 := time.Now()
	if out, err := exec.Command("bash", filepath.Join(repo, "hack/gomodules.sh"), mods).CombinedOutput(); err != nil {
		t.Fatalf("hack/gomodules.sh: %v\n%s", err, out)
	} else {
		t.Logf("%s (%v)", strings.TrimSpace(string(out)), time.Since(t0).Round(time.Second))
	}
	goroot, err := exec.Command("go", "env", "GOROOT").Output()
	if err != nil {
		t.Fatal(err)
	}
	goVersion, err := exec.Command("go", "env", "GOVERSION").Output()
	if err != nil {
		t.Fatal(err)
	}

	reg := harness.StartRegistry()
	defer reg.Close()
	ctx := context.Background()
	push := func(name, tag string) string {
		t.Helper()
		ref, err := reg.PushLayout(ctx, testimages.Layout(t, name), tag)
		if err != nil {
			t.Fatal(err)
		}
		return ref
	}
	gobase := push(testimages.DebianBookwormGoBuild, "debian:bookworm-gobuild")
	base := push(testimages.DebianBookwormMin, "debian:bookworm-slim")
	uidmapBase := push(testimages.DebianBookwormUidmap, "debian:bookworm-uidmap")

	ca, err := harness.NewCA("from-source build CA")
	if err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, harness.DaemonConfig{CADir: caDir(t, ca), TOML: reg.TOML()})
	c := daemonClient(t, d)

	// The local Go image, laid out like the official golang image.
	golang := reg.Host + "/golang:1.26-bookworm"
	goDir := t.TempDir()
	goDockerfile := fmt.Sprintf(`FROM %s
COPY --from=goroot / /usr/local/go
ENV GOLANG_VERSION=%s GOTOOLCHAIN=local GOPATH=/go
ENV PATH=/go/bin:/usr/local/go/bin:%s
WORKDIR /go
`, gobase, strings.TrimPrefix(strings.TrimSpace(string(goVersion)), "go"), factory.DefaultPath)
	if err := os.WriteFile(filepath.Join(goDir, "Dockerfile"), []byte(goDockerfile), 0o644); err != nil {
		t.Fatal(err)
	}
	bctx, cancel := context.WithTimeout(ctx, 60*time.Minute)
	defer cancel()
	t1 := time.Now()
	if r, err := harness.BuildExport(bctx, c, harness.BuildOpt{
		Locals:   map[string]string{"context": goDir, "dockerfile": goDir, "goroot": strings.TrimSpace(string(goroot))},
		Contexts: map[string]string{"goroot": "local:goroot"},
	}, []client.ExportEntry{harness.PushTo(golang)}); err != nil {
		logs := ""
		if r != nil {
			logs = r.Logs
		}
		t.Fatalf("building the local Go image: %v\n%s", err, lastBytes(logs, 4000))
	}
	t.Logf("local Go image %s (%s on debian-bookworm-gobuild) built in %v", golang, strings.TrimSpace(string(goVersion)), time.Since(t1).Round(time.Second))

	build := func(target, baseImage string) string {
		t.Helper()
		dest := filepath.Join(t.TempDir(), target+"-oci.tar")
		opt := harness.BuildOpt{
			Locals:   map[string]string{"context": repo, "dockerfile": repo, "gomodproxy": mods},
			Contexts: map[string]string{"gomodproxy": "local:gomodproxy"},
			Attrs: map[string]string{
				"build-arg:GOLANG_IMAGE":     golang,
				"build-arg:BASE_IMAGE":       baseImage,
				"build-arg:RUNTIME_PACKAGES": "",
				"build-arg:GOMODULES":        "gomodproxy",
				"build-arg:GOPROXY":          "file:///gomodules",
				"build-arg:GOSUMDB":          "off",
				"build-arg:VERSION":          "from-source-test",
				"build-arg:REVISION":         "0000000",
				"target":                     target,
			},
		}
		exp := client.ExportEntry{
			Type:   client.ExporterOCI,
			Attrs:  map[string]string{"name": "buildkit-cacerts:from-source-" + target},
			Output: func(map[string]string) (io.WriteCloser, error) { return os.Create(dest) },
		}
		t0 := time.Now()
		r, err := harness.BuildExport(bctx, c, opt, []client.ExportEntry{exp})
		if err != nil {
			logs := ""
			if r != nil {
				logs = r.Logs
			}
			t.Fatalf("building target %s from source: %v\n%s", target, err, lastBytes(logs, 6000))
		}
		for _, s := range r.Runs() {
			t.Logf("  %v %s", s.Duration().Round(time.Second), lastBytes(s.Name, 150))
		}
		t.Logf("target %s built from source in %v", target, time.Since(t0).Round(time.Second))
		return dest
	}
	release := build("release", base)
	rootless := build("rootless", uidmapBase)

	// The binaries the Go stage compiled run and carry the stamps.
	bin := t.TempDir()
	extractFiles(t, rootless, bin, "usr/bin/buildkitd", "usr/bin/buildctl", "usr/bin/runc", "usr/bin/rootlesskit")
	want := map[string]string{
		"buildkitd":   "buildkit-cacerts from-source-test 0000000 buildkit github.com/moby/buildkit " + harness.UpstreamVersion,
		"buildctl":    "github.com/moby/buildkit " + harness.UpstreamVersion,
		"runc":        "runc version ",
		"rootlesskit": "rootlesskit version ",
	}
	for name, sub := range want {
		out, err := exec.Command(filepath.Join(bin, name), "--version").CombinedOutput()
		if err != nil || !strings.Contains(string(out), sub) {
			t.Errorf("%s --version: %v, %q; want it to contain %q", name, err, out, sub)
		} else {
			t.Logf("%s --version: %s", name, strings.ReplaceAll(strings.TrimSpace(string(out)), "\n", "; "))
		}
	}
	if out, _ := exec.Command(filepath.Join(bin, "runc"), "--version").CombinedOutput(); !strings.Contains(string(out), "libseccomp") {
		t.Errorf("runc was built without seccomp: %s", out)
	}
	m, _ := ociConfig(t, release)
	var size int64
	for _, l := range m.Layers {
		size += l.Size
	}
	t.Logf("release image from source: %d layers, %.1f MB compressed", len(m.Layers), float64(size)/1e6)
}

// extractFiles writes the named files of an OCI tarball's image (the
// topmost layer's copy of each, whole: imageLayers keeps 1 MiB of a body)
// into dir, by base name, executable.
func extractFiles(t *testing.T, ociTar, dir string, names ...string) {
	t.Helper()
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	blobs := readTar(t, ociTar)
	m, _ := ociConfig(t, ociTar)
	found := map[string]bool{}
	for _, l := range m.Layers {
		zr, err := gzip.NewReader(bytes.NewReader(blobs[blobPath(l.Digest.String())]))
		if err != nil {
			t.Fatal(err)
		}
		tr := tar.NewReader(zr)
		for {
			h, err := tr.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			n := strings.TrimPrefix(h.Name, "./")
			if !want[n] || h.Typeflag != tar.TypeReg {
				continue
			}
			b, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, filepath.Base(n)), b, 0o755); err != nil {
				t.Fatal(err)
			}
			found[n] = true
		}
	}
	for _, n := range names {
		if !found[n] {
			t.Errorf("the image has no /%s", n)
		}
	}
}
