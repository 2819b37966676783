package integration

import (
	"archive/tar"
	"context"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/buildkit/client"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/buildkit-cacerts/buildkit-cacerts/internal/harness"
	"github.com/buildkit-cacerts/buildkit-cacerts/internal/testenv"
	"github.com/buildkit-cacerts/buildkit-cacerts/internal/testimages"
	"github.com/buildkit-cacerts/buildkit-cacerts/internal/testimages/factory"
)

// The image (issue 14): the top-level Dockerfile built with our own daemon,
// offline. Its base image is debian-bookworm-min from hack/images, served
// by the harness registry on 127.0.0.1 and passed as BASE_IMAGE; the
// `binaries` stage is replaced by a named context holding binaries built on
// this machine by hack/build-binaries.sh (so no module download happens in
// the build). The same Dockerfile with upstream's buildkitd in `binaries` is
// the image of upstream's buildkitd the docker-in-docker test uses as its
// negative control (no registry is reachable to pull moby/buildkit).

const (
	shipImage     = "buildkit-cacerts:test"
	upstreamImage = "moby-buildkit:upstream-test"
	// shipRootlessImage is the rootless target (on debian-bookworm-uidmap).
	shipRootlessImage = "buildkit-cacerts:rootless-test"
)

// shipBuild is the result of building both images once per test process.
type shipBuild struct {
	ours, upstream string // docker-format image tarballs (docker load)
	oursOCI        string // our image as an OCI tarball, for its config
	rootlessOCI    string // the rootless target, OCI tarball
	rootless       string // the rootless target, docker-format tarball
	wall           time.Duration
}

var (
	shipOnce sync.Once
	shipRes  *shipBuild
	shipErr  string
)

// shipImages builds (once) our image and the upstream control image from
// the repository's Dockerfile with buildkitd-cacerts.
func shipImages(t *testing.T) *shipBuild {
	t.Helper()
	testenv.RequiresRoot(t)
	shipOnce.Do(func() {
		ok := false
		defer func() {
			if !ok && shipErr == "" {
				shipErr = "building the images failed (see the first test's log)"
			}
		}()
		shipRes = buildShipImages(t)
		ok = true
	})
	if shipErr != "" {
		t.Fatal(shipErr)
	}
	return shipRes
}

func buildShipImages(t *testing.T) *shipBuild {
	repo, err := factory.FindRepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	bins := filepath.Join(os.TempDir(), "buildkit-cacerts-ship-binaries")
	start := time.Now()
	cmd := exec.Command("bash", filepath.Join(repo, "hack/build-binaries.sh"), bins)
	cmd.Env = append(os.Environ(), "UPSTREAM=1")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("hack/build-binaries.sh: %v\n%s", err, out)
	} else {
		t.Logf("binaries built in %v: %s", time.Since(start).Round(time.Second), strings.TrimSpace(string(out)))
	}

	reg := harness.StartRegistry()
	defer reg.Close()
	base, err := reg.PushLayout(context.Background(), testimages.Layout(t, testimages.DebianBookwormMin), "debian:bookworm-slim")
	if err != nil {
		t.Fatal(err)
	}
	// The daemon building the image is ours, with a CA installed: the
	// Dockerfile's RUN steps go through the injection too.
	ca, err := harness.NewCA("ship image build CA")
	if err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, harness.DaemonConfig{CADir: caDir(t, ca), TOML: reg.TOML()})
	c := daemonClient(t, d)
	// Shared by every test of the process, so not under one test's TempDir:
	// one fixed directory, replaced by each run (like the binaries').
	dir := filepath.Join(os.TempDir(), "buildkit-cacerts-ship-images")
	os.RemoveAll(dir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	res := &shipBuild{
		ours:        filepath.Join(dir, "ours.tar"),
		upstream:    filepath.Join(dir, "upstream.tar"),
		oursOCI:     filepath.Join(dir, "ours-oci.tar"),
		rootlessOCI: filepath.Join(dir, "rootless-oci.tar"),
		rootless:    filepath.Join(dir, "rootless.tar"),
	}
	// The rootless target's base adds uidmap (newuidmap and newgidmap,
	// which RootlessKit runs), as upstream's rootless image has it.
	uidmapBase, err := reg.PushLayout(context.Background(), testimages.Layout(t, testimages.DebianBookwormUidmap), "debian:bookworm-uidmap")
	if err != nil {
		t.Fatal(err)
	}
	baseFor := map[string]string{"release": base, "rootless": uidmapBase}
	build := func(binDir, name, dest, typ, target string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		opt := harness.BuildOpt{
			Locals:   map[string]string{"context": repo, "dockerfile": repo, "prebuilt": binDir},
			Contexts: map[string]string{"prebuilt": "local:prebuilt"},
			Attrs: map[string]string{
				"build-arg:BINARIES":         "prebuilt",
				"build-arg:BASE_IMAGE":       baseFor[target],
				"build-arg:RUNTIME_PACKAGES": "",
				"target":                     target,
			},
		}
		exp := client.ExportEntry{
			Type:   typ,
			Attrs:  map[string]string{"name": name},
			Output: func(map[string]string) (io.WriteCloser, error) { return os.Create(dest) },
		}
		t0 := time.Now()
		r, err := harness.BuildExport(ctx, c, opt, []client.ExportEntry{exp})
		if err != nil {
			logs := ""
			if r != nil {
				logs = r.Logs
			}
			t.Fatalf("building %s from the Dockerfile: %v\n%s", name, err, logs)
		}
		st, _ := os.Stat(dest)
		t.Logf("built %s (%s export, %d bytes) from the Dockerfile with buildkitd-cacerts in %v", name, typ, st.Size(), time.Since(t0).Round(time.Millisecond))
	}
	t0 := time.Now()
	build(bins, shipImage, res.ours, client.ExporterDocker, "release")
	build(bins, shipImage, res.oursOCI, client.ExporterOCI, "release")
	build(filepath.Join(bins, "upstream"), upstreamImage, res.upstream, client.ExporterDocker, "release")
	build(bins, shipRootlessImage, res.rootlessOCI, client.ExporterOCI, "rootless")
	build(bins, shipRootlessImage, res.rootless, client.ExporterDocker, "rootless")
	res.wall = time.Since(t0)
	return res
}

// TestShipImage: the top-level Dockerfile builds offline with our daemon,
// and the image keeps upstream's conventions: buildkitd is the entry
// command, VOLUME /var/lib/buildkit, buildctl and runc inside, the CA
// directory exists.
func TestShipImage(t *testing.T) {
	b := shipImages(t)
	m, img := ociConfig(t, b.oursOCI)
	if !slices.Equal(img.Config.Entrypoint, []string{"buildkitd"}) {
		t.Errorf("entrypoint = %q, want [buildkitd] (upstream's)", img.Config.Entrypoint)
	}
	if _, ok := img.Config.Volumes["/var/lib/buildkit"]; !ok {
		t.Errorf("volumes = %v, want /var/lib/buildkit", img.Config.Volumes)
	}
	seen := map[string]bool{}
	for _, l := range imageLayers(t, b.oursOCI) {
		for _, e := range l {
			seen[e.name] = true
		}
	}
	for _, p := range []string{"usr/bin/buildkitd", "usr/bin/buildctl", "usr/bin/runc", "usr/local/share/ca-certificates", "etc/buildkit"} {
		if !seen[p] {
			t.Errorf("image lacks /%s", p)
		}
	}
	var size int64
	for _, l := range m.Layers {
		size += l.Size
	}
	cfgJSON, _ := json.Marshal(img.Config)
	t.Logf("image %s: %d layers, %.1f MB compressed; config %s", shipImage, len(m.Layers), float64(size)/1e6, cfgJSON)

	// The rootless target: upstream's -rootless conventions.
	_, rimg := ociConfig(t, b.rootlessOCI)
	rc := rimg.Config
	env := strings.Join(rc.Env, " ")
	if !slices.Equal(rc.Entrypoint, []string{"rootlesskit", "buildkitd"}) || rc.User != "1000:1000" ||
		!strings.Contains(env, "BUILDKIT_HOST=unix:///run/user/1000/buildkit/buildkitd.sock") || !strings.Contains(env, "HOME=/home/user") {
		t.Errorf("rootless config = %+v", rc)
	}
	if _, ok := rc.Volumes["/home/user/.local/share/buildkit"]; !ok {
		t.Errorf("rootless volumes = %v, want /home/user/.local/share/buildkit", rc.Volumes)
	}
	seen = map[string]bool{}
	last := map[string]*tar.Header{} // the topmost layer's entry of each path
	for _, l := range imageLayers(t, b.rootlessOCI) {
		for _, e := range l {
			seen[e.name] = true
			last[e.name] = e.hdr
		}
	}
	if h := last["home/user/.config/buildkit"]; h == nil || h.Typeflag != tar.TypeSymlink || h.Linkname != "/etc/buildkit" {
		t.Errorf("rootless image: ~/.config/buildkit should link to /etc/buildkit (buildx's kubernetes driver mounts the config there): %+v", h)
	}
	// newuidmap/newgidmap carry file capabilities, not the setuid bit
	// (setuid, RootlessKit fails in a container without CAP_SYS_ADMIN).
	for _, p := range []string{"usr/bin/newuidmap", "usr/bin/newgidmap"} {
		if h := last[p]; h == nil || h.Mode&04000 != 0 || h.PAXRecords["SCHILY.xattr.security.capability"] == "" {
			t.Errorf("rootless image: /%s should have file capabilities and no setuid bit: %+v", p, h)
		}
	}
	for _, p := range []string{"usr/bin/rootlesskit", "usr/bin/buildkitd", "usr/bin/newuidmap", "etc/subuid", "home/user/.local/share/buildkit"} {
		if !seen[p] {
			t.Errorf("rootless image lacks /%s", p)
		}
	}
	rcJSON, _ := json.Marshal(rc)
	t.Logf("rootless image config %s", rcJSON)
}

// ociConfig reads the manifest and config of an OCI tarball's one image.
func ociConfig(t *testing.T, ociTar string) (ocispecs.Manifest, ocispecs.Image) {
	t.Helper()
	blobs := readTar(t, ociTar)
	var idx ocispecs.Index
	mustJSON(t, blobs["index.json"], &idx)
	var m ocispecs.Manifest
	mustJSON(t, blobs[blobPath(idx.Manifests[0].Digest.String())], &m)
	var img ocispecs.Image
	mustJSON(t, blobs[blobPath(m.Config.Digest.String())], &img)
	return m, img
}
