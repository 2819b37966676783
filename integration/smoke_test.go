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
	"os"
	"slices"
	"strings"
	"testing"

	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/buildkit-cacerts/buildkit-cacerts/internal/harness"
)

const smokeBody = "hello through the engine's CA\n"

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
			d := startDaemon(t, harness.DaemonConfig{TOML: e.toml, CADir: caDir(t, e.ca), Mode: mode, Args: []string{"--oci-worker-snapshotter", tc.snapshotter}})
			ws, err := d.Workers(context.Background())
			if err != nil || len(ws) != 1 || ws[0].Labels["buildkit-cacerts"] == "" {
				t.Fatalf("workers = %+v, %v; want one with the buildkit-cacerts label", ws, err)
			}
			out, logs, err := e.build(t, d, dockerfile)
			if err != nil {
				t.Fatalf("build: %v\n%s", err, logs)
			}
			e.requireOnlyGot(t, out)
			if mode == "command" && !strings.Contains(d.Log(), "cacerts: sibling ran") {
				t.Error("mode command: no sibling ran (want update-ca-certificates in a sibling container)")
			}
			if strings.Contains(logs, "update-ca-certificates") || strings.Contains(logs, "Updating certificates") {
				t.Errorf("the sibling's output reached the build output:\n%s", logs)
			}
		})
	}

	t.Run("negative control: empty CA dir", func(t *testing.T) {
		d := startDaemon(t, harness.DaemonConfig{TOML: e.toml, CADir: caDir(t)})
		_, logs, err := e.build(t, d, dockerfile)
		requireCertFailure(t, err, logs)
	})

	t.Run("opt-out: BUILDKIT_CACERTS=off", func(t *testing.T) {
		d := startDaemon(t, harness.DaemonConfig{TOML: e.toml, CADir: caDir(t, e.ca)})
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
	img, err := harness.LayoutImage(dir)
	if err != nil {
		t.Fatal(err)
	}
	n, err := harness.LayerCount(img)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func mustJSON(t *testing.T, b []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatal(err)
	}
}
