package integration

import (
	"context"
	"crypto/tls"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/containerd/platforms"
	"github.com/moby/buildkit/client"

	"github.com/buildkit-cacerts/buildkit-cacerts/internal/harness"
	"github.com/buildkit-cacerts/buildkit-cacerts/internal/testenv"
)

// TestDaemonFlags starts the daemon with upstream flags beyond the defaults
// — a second listener on tcp with mutual TLS, worker labels, a platform
// override, the native snapshotter, JSON logs and a [cacerts] section in the
// same buildkitd.toml as upstream keys — and checks what a TLS client sees.
func TestDaemonFlags(t *testing.T) {
	testenv.RequiresRoot(t)
	dir := t.TempDir()
	ca, err := harness.NewCA("flags test CA")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "ca.pem"), ca.PEM, 0o600); err != nil {
		t.Fatal(err)
	}
	issue := func(name string, leaf func() (tls.Certificate, error)) {
		cert, err := leaf()
		if err != nil {
			t.Fatal(err)
		}
		if err := harness.WriteKeyPair(cert, filepath.Join(dir, name+".pem"), filepath.Join(dir, name+"-key.pem")); err != nil {
			t.Fatal(err)
		}
	}
	issue("server", func() (tls.Certificate, error) { return ca.Leaf("127.0.0.1") })
	issue("client", func() (tls.Certificate, error) { return ca.ClientLeaf("client") })

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tcpAddr := l.Addr().String()
	l.Close()

	toml := "[worker.oci]\n  labels = { \"from.toml\" = \"yes\" }\n[cacerts]\n  mode = \"fast\"\n  sibling_timeout = \"5s\"\n"
	d := startDaemon(t, harness.DaemonConfig{TOML: toml, CADir: caDir(t), Args: []string{
		"--addr", "tcp://" + tcpAddr,
		"--tlscert", filepath.Join(dir, "server.pem"),
		"--tlskey", filepath.Join(dir, "server-key.pem"),
		"--tlscacert", filepath.Join(dir, "ca.pem"),
		"--oci-worker-labels", "from.flag=yes",
		"--oci-worker-platform", "linux/amd64",
		"--oci-worker-snapshotter", "native",
		"--log-format", "json",
	}})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := client.New(ctx, "tcp://"+tcpAddr,
		client.WithServerConfig("127.0.0.1", filepath.Join(dir, "ca.pem")),
		client.WithCredentials(filepath.Join(dir, "client.pem"), filepath.Join(dir, "client-key.pem")))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ws, err := c.ListWorkers(ctx)
	if err != nil {
		t.Fatalf("ListWorkers over mutual TLS: %v", err)
	}
	if len(ws) != 1 {
		t.Fatalf("%d workers, want 1", len(ws))
	}
	w := ws[0]
	for k, v := range map[string]string{
		"from.toml": "yes", "from.flag": "yes",
		"org.mobyproject.buildkit.worker.snapshotter": "native",
	} {
		if w.Labels[k] != v {
			t.Errorf("label %s = %q, want %q (labels %v)", k, w.Labels[k], v, w.Labels)
		}
	}
	if w.Labels["buildkit-cacerts"] == "" {
		t.Errorf("no buildkit-cacerts label: %v", w.Labels)
	}
	// BuildKit adds the variants the host runs (amd64/v2…); the override
	// drops linux/386, which the default list has.
	var got []string
	for _, p := range w.Platforms {
		got = append(got, platforms.Format(p))
	}
	if len(got) == 0 || got[0] != "linux/amd64" || slices.Contains(got, "linux/386") {
		t.Errorf("platforms %v, want linux/amd64 (and its variants) only", got)
	}
	// Without a client certificate the TLS listener refuses.
	c2, err := client.New(ctx, "tcp://"+tcpAddr, client.WithServerConfig("127.0.0.1", filepath.Join(dir, "ca.pem")))
	if err == nil {
		sctx, scancel := context.WithTimeout(ctx, 5*time.Second)
		_, err = c2.ListWorkers(sctx)
		scancel()
		c2.Close()
	}
	if err == nil {
		t.Error("a client without a certificate was served")
	}
	if !strings.Contains(d.Log(), `"level":"info"`) {
		t.Errorf("log is not JSON:\n%s", d.Log())
	}
}
