// Package integration holds the end-to-end tests: the built daemon, an
// in-process registry and an HTTPS server on loopback, real images. They
// are root-only (testenv.RequiresRoot) and skip otherwise.
package integration

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/moby/buildkit/client"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/tonistiigi/fsutil"
	"golang.org/x/sync/errgroup"

	"github.com/buildkit-cacerts/buildkit-cacerts/internal/testenv"
	"github.com/buildkit-cacerts/buildkit-cacerts/internal/testimages"
)

const smokeBody = "hello through the engine's CA\n"

func nopLogger() *log.Logger { return log.New(io.Discard, "", 0) }

// smokeEnv is one HTTPS server signed by a test CA and a registry holding
// debian-bookworm-tls.
type smokeEnv struct {
	pki      *testPKI
	url      string // https://127.0.0.1:PORT/
	registry string // 127.0.0.1:PORT
	image    string // registry/debian:tls
	baseLen  int    // layers in the base image
	toml     string
}

func newSmokeEnv(t *testing.T) *smokeEnv {
	t.Helper()
	testenv.RequiresRoot(t)
	layoutDir := testimages.Layout(t, testimages.DebianBookwormTLS)
	e := &smokeEnv{pki: newTestPKI(t)}
	e.url = serveHTTPS(t, e.pki, smokeBody)
	e.registry = serveRegistry(t)
	pushLayout(t, e.registry, layoutDir, "debian:tls")
	e.image = e.registry + "/debian:tls"
	e.baseLen = layoutLayers(t, layoutDir)
	e.toml = fmt.Sprintf("[registry.%q]\n  http = true\n", e.registry)
	return e
}

// build runs the Dockerfile with the Dockerfile frontend and returns the
// exported OCI tarball's path and the build's log lines.
func (e *smokeEnv) build(t *testing.T, d *daemon, dockerfile string, opts ...func(*client.SolveOpt)) (string, string, error) {
	t.Helper()
	ctxDir := t.TempDir()
	if err := os.WriteFile(filepath.Join(ctxDir, "Dockerfile"), []byte(dockerfile), 0o644); err != nil {
		t.Fatal(err)
	}
	fsys, err := fsutil.NewFS(ctxDir)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "image.tar")
	c := d.client(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	ch := make(chan *client.SolveStatus)
	var logs strings.Builder
	eg, ctx := errgroup.WithContext(ctx)
	so := client.SolveOpt{
		Frontend:    "dockerfile.v0",
		LocalMounts: map[string]fsutil.FS{"context": fsys, "dockerfile": fsys},
		Exports: []client.ExportEntry{{
			Type:   client.ExporterOCI,
			Output: func(map[string]string) (io.WriteCloser, error) { return os.Create(out) },
		}},
	}
	for _, o := range opts {
		o(&so)
	}
	eg.Go(func() error {
		_, err := c.Solve(ctx, nil, so, ch)
		return err
	})
	eg.Go(func() error {
		for s := range ch {
			for _, l := range s.Logs {
				logs.Write(l.Data)
			}
		}
		return nil
	})
	err = eg.Wait()
	return out, logs.String(), err
}

// TestSmoke is the end-to-end proof: a RUN curls an HTTPS URL signed by the
// engine's CA and succeeds; the exported image's RUN layer holds only the
// file the RUN wrote (no CA file, link, bundle or mtime change); with an
// empty CA dir, or BUILDKIT_CACERTS=off, the same curl fails on the
// certificate.
func TestSmoke(t *testing.T) {
	e := newSmokeEnv(t)
	run := fmt.Sprintf("RUN curl -fsS %s -o /got\n", e.url)
	dockerfile := "FROM " + e.image + "\n" + run

	for _, tc := range []struct{ mode, snapshotter string }{
		{"auto", "overlayfs"},
		{"command", "overlayfs"},
		{"auto", "native"},
	} {
		mode := tc.mode
		t.Run("engine CA trusted, no trace, mode "+mode+", "+tc.snapshotter, func(t *testing.T) {
			d := startDaemon(t, e.toml, caDir(t, e.pki.CAPEM), "--cacerts-mode", mode, "--oci-worker-snapshotter", tc.snapshotter)
			ws, err := d.workers(t)
			if err != nil || len(ws) != 1 || ws[0].Labels["buildkit-cacerts"] == "" {
				t.Fatalf("workers = %+v, %v; want one with the buildkit-cacerts label", ws, err)
			}
			out, logs, err := e.build(t, d, dockerfile)
			if err != nil {
				t.Fatalf("build: %v\n%s", err, logs)
			}
			e.requireOnlyGot(t, out)
			if mode == "command" && !strings.Contains(d.log.String(), "cacerts: sibling ran") {
				t.Error("mode command: no sibling ran (want update-ca-certificates in a sibling container)")
			}
			if strings.Contains(logs, "update-ca-certificates") || strings.Contains(logs, "Updating certificates") {
				t.Errorf("the sibling's output reached the build output:\n%s", logs)
			}
		})
	}

	t.Run("negative control: empty CA dir", func(t *testing.T) {
		d := startDaemon(t, e.toml, caDir(t, nil))
		_, logs, err := e.build(t, d, dockerfile)
		requireCertFailure(t, err, logs)
	})

	t.Run("opt-out: BUILDKIT_CACERTS=off", func(t *testing.T) {
		d := startDaemon(t, e.toml, caDir(t, e.pki.CAPEM))
		_, logs, err := e.build(t, d, "FROM "+e.image+"\nENV BUILDKIT_CACERTS=off\n"+run)
		requireCertFailure(t, err, logs)
	})
}

// requireOnlyGot checks the exported image is the base plus one layer that
// holds only /got with the served body: no CA file, link, bundle or
// metadata change of ours was committed.
func (e *smokeEnv) requireOnlyGot(t *testing.T, ociTar string) {
	t.Helper()
	layers := imageLayers(t, ociTar)
	if len(layers) != e.baseLen+1 {
		t.Fatalf("image has %d layers, want base %d + 1", len(layers), e.baseLen)
	}
	entries := layers[len(layers)-1]
	var names []string
	for _, en := range entries {
		names = append(names, en.name)
	}
	if !slices.Equal(names, []string{"got"}) {
		t.Errorf("RUN layer holds %q, want only [got]: a trace of the install was committed", names)
	}
	for _, en := range entries {
		if en.name == "got" && en.body != smokeBody {
			t.Errorf("/got = %q, want %q", en.body, smokeBody)
		}
	}
}

// requireCertFailure checks the build failed on curl's certificate check
// (exit code 60), not on anything else.
func requireCertFailure(t *testing.T, err error, logs string) {
	t.Helper()
	if err == nil {
		t.Fatal("build succeeded; want curl to fail on the certificate")
	}
	if !strings.Contains(err.Error(), "exit code: 60") || !strings.Contains(logs, "SSL certificate problem") {
		t.Fatalf("build failed, but not on the certificate: %v\n%s", err, logs)
	}
}

type layerEntry struct {
	name string
	hdr  *tar.Header
	body string
}

// imageLayers reads an OCI tarball (one image) and lists each layer's entries.
func imageLayers(t *testing.T, ociTar string) [][]layerEntry {
	t.Helper()
	blobs := readTar(t, ociTar)
	var idx ocispecs.Index
	mustJSON(t, blobs["index.json"], &idx)
	if len(idx.Manifests) != 1 {
		t.Fatalf("index.json has %d manifests, want 1", len(idx.Manifests))
	}
	var m ocispecs.Manifest
	mustJSON(t, blobs[blobPath(idx.Manifests[0].Digest.String())], &m)
	var out [][]layerEntry
	for _, l := range m.Layers {
		out = append(out, layerEntries(t, blobs[blobPath(l.Digest.String())]))
	}
	return out
}

func blobPath(dgst string) string {
	return "blobs/" + strings.Replace(dgst, ":", "/", 1)
}

func readTar(t *testing.T, p string) map[string][]byte {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	files := map[string][]byte{}
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return files
		}
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		files[strings.TrimPrefix(h.Name, "./")] = b
	}
}

func layerEntries(t *testing.T, blob []byte) []layerEntry {
	t.Helper()
	if blob == nil {
		t.Fatal("layer blob missing from the tarball")
	}
	zr, err := gzip.NewReader(strings.NewReader(string(blob)))
	if err != nil {
		t.Fatal(err)
	}
	var out []layerEntry
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(io.LimitReader(tr, 1<<20))
		out = append(out, layerEntry{name: strings.TrimSuffix(strings.TrimPrefix(h.Name, "./"), "/"), hdr: h, body: string(b)})
	}
}

func layoutLayers(t *testing.T, dir string) int {
	t.Helper()
	var idx ocispecs.Index
	mustJSON(t, mustRead(t, filepath.Join(dir, "index.json")), &idx)
	var m ocispecs.Manifest
	mustJSON(t, mustRead(t, filepath.Join(dir, blobPath(idx.Manifests[0].Digest.String()))), &m)
	return len(m.Layers)
}

func mustRead(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustJSON(t *testing.T, b []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatal(err)
	}
}
