package integration

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/moby/buildkit/client"
	"golang.org/x/sys/unix"
)

var (
	buildOnce sync.Once
	builtBin  string
	buildErr  error
)

// daemonBinary builds cmd/buildkitd-cacerts once per test process, into one
// fixed path under the temp dir, replaced by each run so nothing piles up (go
// build replaces the file; a daemon still running from the old one keeps its
// inode).
func daemonBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir := filepath.Join(os.TempDir(), "buildkitd-cacerts-integration")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			buildErr = err
			return
		}
		builtBin = filepath.Join(dir, "buildkitd-cacerts")
		out, err := exec.Command("go", "build", "-o", builtBin, "github.com/buildkit-cacerts/buildkit-cacerts/cmd/buildkitd-cacerts").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return builtBin
}

// daemon is one running buildkitd-cacerts.
type daemon struct {
	Addr string
	Root string
	cmd  *exec.Cmd
	log  *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startDaemon starts the daemon on a fresh root with the given buildkitd.toml
// text and CA directory, waits until it answers, and stops it (and unmounts
// what it left) when the test ends.
func startDaemon(t *testing.T, toml, caDir string, extraArgs ...string) *daemon {
	t.Helper()
	bin := daemonBinary(t)
	root, err := os.MkdirTemp("", "buildkitd-cacerts-root")
	if err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(root, "buildkitd.toml")
	if err := os.WriteFile(cfg, []byte(toml), 0o644); err != nil {
		t.Fatal(err)
	}
	d := &daemon{Addr: "unix://" + filepath.Join(root, "buildkitd.sock"), Root: root, log: &syncBuffer{}}
	args := append([]string{
		"--config", cfg,
		"--root", filepath.Join(root, "state"),
		"--addr", d.Addr,
		"--cacerts-dir", caDir,
		"--oci-worker-net", "host",
		"--debug",
	}, extraArgs...)
	d.cmd = exec.Command(bin, args...)
	d.cmd.Stdout, d.cmd.Stderr = d.log, d.log
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- d.cmd.Wait() }()
	t.Cleanup(func() {
		d.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(20 * time.Second):
			d.cmd.Process.Kill()
			<-exited
		}
		unmountUnder(t, root)
		if err := os.RemoveAll(root); err != nil {
			t.Errorf("removing daemon root: %v", err)
		}
		if t.Failed() {
			t.Logf("daemon log:\n%s", d.log.String())
		} else if testing.Verbose() {
			for _, l := range strings.Split(d.log.String(), "\n") {
				if strings.Contains(l, "CA certificates") || strings.Contains(l, "cacerts:") {
					t.Log(l)
				}
			}
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case err := <-exited:
			exited <- err
			t.Fatalf("daemon exited: %v\n%s", err, d.log.String())
		default:
		}
		if _, err := d.workers(t); err == nil {
			return d
		} else if time.Now().After(deadline) {
			t.Fatalf("daemon not answering: %v\n%s", err, d.log.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (d *daemon) client(t *testing.T) *client.Client {
	t.Helper()
	c, err := client.New(context.Background(), d.Addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func (d *daemon) workers(t *testing.T) ([]*client.WorkerInfo, error) {
	c, err := client.New(context.Background(), d.Addr)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return c.ListWorkers(ctx)
}

// unmountUnder lazily unmounts every mount point under dir, deepest first.
func unmountUnder(t *testing.T, dir string) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		t.Error(err)
		return
	}
	defer f.Close()
	var points []string
	s := bufio.NewScanner(f)
	for s.Scan() {
		fields := strings.Fields(s.Text())
		if len(fields) > 4 && strings.HasPrefix(fields[4], dir+"/") {
			points = append(points, fields[4])
		}
	}
	for i := len(points) - 1; i >= 0; i-- {
		unix.Unmount(points[i], unix.MNT_DETACH)
	}
}

// testPKI is a CA and a leaf for 127.0.0.1 signed by it.
type testPKI struct {
	CAPEM []byte
	Leaf  tls.Certificate
}

func newTestPKI(t *testing.T) *testPKI {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "buildkit-cacerts smoke test CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	leafKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	leafTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "127.0.0.1"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, ca, &leafKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	return &testPKI{
		CAPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		Leaf:  tls.Certificate{Certificate: [][]byte{leafDER}, PrivateKey: leafKey},
	}
}

// caDir writes the CA into a new directory (nothing when pem is nil).
func caDir(t *testing.T, pemBytes []byte) string {
	t.Helper()
	dir := t.TempDir()
	if pemBytes != nil {
		if err := os.WriteFile(filepath.Join(dir, "smoke-test-ca.crt"), pemBytes, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// serveHTTPS serves body over HTTPS on 127.0.0.1 with the PKI's leaf.
func serveHTTPS(t *testing.T, pki *testPKI, body string) string {
	t.Helper()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprint(w, body)
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{pki.Leaf}}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv.URL
}

// serveRegistry runs an in-memory registry on 127.0.0.1 and returns its
// host:port.
func serveRegistry(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(registry.New(registry.Logger(nopLogger())))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// pushLayout pushes the OCI layout's one image to host as repoTag.
func pushLayout(t *testing.T, host, layoutDir, repoTag string) {
	t.Helper()
	idx, err := layout.ImageIndexFromPath(layoutDir)
	if err != nil {
		t.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(im.Manifests) != 1 {
		t.Fatalf("layout %s: %d manifests, want 1", layoutDir, len(im.Manifests))
	}
	img, err := idx.Image(im.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := name.NewTag(host+"/"+repoTag, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img); err != nil {
		t.Fatalf("pushing %s: %v", ref, err)
	}
}
