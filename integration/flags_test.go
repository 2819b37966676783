package integration

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/containerd/platforms"
	"github.com/moby/buildkit/client"

	"github.com/buildkit-cacerts/buildkit-cacerts/internal/testenv"
)

// TestDaemonFlags starts the daemon with upstream flags beyond the defaults
// — a second listener on tcp with mutual TLS, worker labels, a platform
// override, the native snapshotter, JSON logs and a [cacerts] section in the
// same buildkitd.toml as upstream keys — and checks what a TLS client sees.
func TestDaemonFlags(t *testing.T) {
	testenv.RequiresRoot(t)
	dir := t.TempDir()
	ca, caKey := newCA(t)
	writePEM(t, filepath.Join(dir, "ca.pem"), "CERTIFICATE", ca.Raw)
	issue := func(name string, usage x509.ExtKeyUsage, ips ...net.IP) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(time.Now().UnixNano()),
			Subject:      pkix.Name{CommonName: name},
			NotBefore:    time.Now().Add(-time.Hour),
			NotAfter:     time.Now().Add(time.Hour),
			IPAddresses:  ips,
			KeyUsage:     x509.KeyUsageDigitalSignature,
			ExtKeyUsage:  []x509.ExtKeyUsage{usage},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		kb, _ := x509.MarshalECPrivateKey(key)
		writePEM(t, filepath.Join(dir, name+".pem"), "CERTIFICATE", der)
		writePEM(t, filepath.Join(dir, name+"-key.pem"), "EC PRIVATE KEY", kb)
	}
	issue("server", x509.ExtKeyUsageServerAuth, net.ParseIP("127.0.0.1"))
	issue("client", x509.ExtKeyUsageClientAuth)

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tcpAddr := l.Addr().String()
	l.Close()

	toml := "[worker.oci]\n  labels = { \"from.toml\" = \"yes\" }\n[cacerts]\n  mode = \"fast\"\n  sibling_timeout = \"5s\"\n"
	d := startDaemon(t, toml, caDir(t, nil),
		"--addr", "tcp://"+tcpAddr,
		"--tlscert", filepath.Join(dir, "server.pem"),
		"--tlskey", filepath.Join(dir, "server-key.pem"),
		"--tlscacert", filepath.Join(dir, "ca.pem"),
		"--oci-worker-labels", "from.flag=yes",
		"--oci-worker-platform", "linux/amd64",
		"--oci-worker-snapshotter", "native",
		"--log-format", "json",
	)
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
	if !strings.Contains(d.log.String(), `"level":"info"`) {
		t.Errorf("log is not JSON:\n%s", d.log.String())
	}
}

func newCA(t *testing.T) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "flags test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(der)
	return ca, key
}

func writePEM(t *testing.T, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}
