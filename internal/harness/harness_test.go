package harness

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

func TestParseStatusKB(t *testing.T) {
	status := []byte("Name:\tbuildkitd\nVmPeak:\t  900 kB\nVmHWM:\t   51200 kB\nVmRSS:\t   40000 kB\n")
	for _, tc := range []struct {
		field string
		want  int64
		bad   bool
	}{
		{"VmHWM", 51200 * 1024, false},
		{"VmRSS", 40000 * 1024, false},
		{"VmSwap", 0, true},
	} {
		got, err := parseStatusKB(status, tc.field)
		if (err != nil) != tc.bad || got != tc.want {
			t.Errorf("%s: %d, %v; want %d (error %v)", tc.field, got, err, tc.want, tc.bad)
		}
	}
	if _, err := parseStatusKB([]byte("VmHWM: 12 MB\n"), "VmHWM"); err == nil {
		t.Error("accepted a unit other than kB")
	}
	p, err := PeakRSS(os.Getpid())
	if err != nil || p <= 0 {
		t.Errorf("PeakRSS(self) = %d, %v", p, err)
	}
}

func TestUnescapeMountinfo(t *testing.T) {
	for in, want := range map[string]string{
		`/tmp/a`:         "/tmp/a",
		`/tmp/a\040b`:    "/tmp/a b",
		`/tmp/x\134y`:    `/tmp/x\y`,
		`/tmp/trailing\`: `/tmp/trailing\`,
	} {
		if got := unescapeMountinfo(in); got != want {
			t.Errorf("unescapeMountinfo(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestTailBuffer(t *testing.T) {
	tb := &tailBuffer{max: 10}
	for range 100 {
		io.WriteString(tb, "0123456789abc")
	}
	if got := tb.String(); !strings.HasSuffix(got, "6789abc") || len(got) != 10 {
		t.Errorf("tail = %q, want the last 10 bytes", got)
	}
}

func TestImagesAndRegistry(t *testing.T) {
	img, err := WithLayers(empty.Image, 3)
	if err != nil {
		t.Fatal(err)
	}
	img, err = WithFiles(img, File{Path: "/etc/ssl/certs/ca-certificates.crt", Data: []byte("bundle\n")}, File{Path: "/true", Data: []byte("x"), Mode: 0o755})
	if err != nil {
		t.Fatal(err)
	}
	if n, err := LayerCount(img); err != nil || n != 4 {
		t.Fatalf("layers = %d, %v; want 4", n, err)
	}
	if b, err := ReadImageFile(img, "etc/ssl/certs/ca-certificates.crt"); err != nil || string(b) != "bundle\n" {
		t.Errorf("bundle = %q, %v", b, err)
	}
	if b, err := ReadImageFile(img, "/var/lib/harness/layer-002"); err != nil || string(b) != "layer 2\n" {
		t.Errorf("layer file = %q, %v", b, err)
	}
	if _, err := ReadImageFile(img, "/etc/ssl"); err == nil {
		t.Error("read a directory as a file")
	}
	if _, err := ReadImageFile(img, "/missing"); err == nil {
		t.Error("read a missing file")
	}

	reg := StartRegistry()
	defer reg.Close()
	ref, err := reg.Push(context.Background(), img, "bench/x:latest")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(ref, reg.Host+"/bench/x:latest") {
		t.Errorf("ref = %q", ref)
	}
	if !strings.Contains(reg.TOML(), `[registry."`+reg.Host+`"]`) {
		t.Errorf("TOML = %q", reg.TOML())
	}
	r, _ := name.ParseReference(ref, name.Insecure)
	got, err := remote.Image(r)
	if err != nil {
		t.Fatal(err)
	}
	wd, _ := img.Digest()
	gd, _ := got.Digest()
	if wd != gd {
		t.Errorf("pulled %s, pushed %s", gd, wd)
	}
}

func TestPKI(t *testing.T) {
	pems, err := ManyCAs("t", 20)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, p := range pems {
		blk, _ := pem.Decode(p)
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil || !c.IsCA {
			t.Fatalf("not a CA: %v", err)
		}
		if seen[string(c.RawSubject)] {
			t.Errorf("subject repeats: %s", c.Subject)
		}
		seen[string(c.RawSubject)] = true
	}
	b, err := Bundle(7)
	if err != nil || bytes.Count(b, []byte("BEGIN CERTIFICATE")) != 7 {
		t.Errorf("bundle: %d certificates, %v", bytes.Count(b, []byte("BEGIN CERTIFICATE")), err)
	}
	dir, err := WriteCADir(t.TempDir(), 3)
	if err != nil {
		t.Fatal(err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 3 {
		t.Errorf("CA dir holds %d files", len(ents))
	}

	ca, err := NewCA("harness test CA")
	if err != nil {
		t.Fatal(err)
	}
	dir, err = WriteCAs(filepath.Join(t.TempDir(), "one"), ca)
	if err != nil {
		t.Fatal(err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("CA dir of one CA holds %d files", len(ents))
	} else if b, _ := os.ReadFile(filepath.Join(dir, ents[0].Name())); !bytes.Equal(b, ca.PEM) {
		t.Errorf("%s holds %q, want the CA's PEM", ents[0].Name(), b)
	}
	if dir, err = WriteCAs(filepath.Join(t.TempDir(), "none")); err != nil {
		t.Fatal(err)
	}
	if ents, err := os.ReadDir(dir); err != nil || len(ents) != 0 {
		t.Errorf("CA dir of no CA: %d files, %v; want an empty directory", len(ents), err)
	}
	srv, err := ServeHTTPS(ca, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok") }))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca.PEM)
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, err := c.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "ok" {
		t.Errorf("body = %q", body)
	}
	if _, err := http.Get(srv.URL); err == nil {
		t.Error("the system roots trusted the test CA")
	}
}

// TestMutualTLS checks WriteKeyPair's files load as key pairs, and a server
// that requires a client certificate from the CA serves a ClientLeaf and
// refuses a client without one and one holding a server leaf.
func TestMutualTLS(t *testing.T) {
	ca, err := NewCA("mutual TLS CA")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	load := func(name string, issue func() (tls.Certificate, error)) tls.Certificate {
		t.Helper()
		c, err := issue()
		if err != nil {
			t.Fatal(err)
		}
		certFile, keyFile := filepath.Join(dir, name+".pem"), filepath.Join(dir, name+"-key.pem")
		if err := WriteKeyPair(c, certFile, keyFile); err != nil {
			t.Fatal(err)
		}
		kp, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			t.Fatalf("loading %s: %v", name, err)
		}
		return kp
	}
	server := load("server", func() (tls.Certificate, error) { return ca.Leaf("127.0.0.1") })
	client := load("client", func() (tls.Certificate, error) { return ca.ClientLeaf("client") })

	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok") }))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{server}, ClientCAs: pool, ClientAuth: tls.RequireAndVerifyClientCert}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	defer srv.Close()
	if err := tlsGet(srv.URL, ca, client); err != nil {
		t.Errorf("with the client certificate: %v", err)
	}
	if err := tlsGet(srv.URL, ca); err == nil {
		t.Error("served a client without a certificate")
	}
	if err := tlsGet(srv.URL, ca, server); err == nil {
		t.Error("served a client presenting a server-only certificate")
	}
}

func TestParseStatCPU(t *testing.T) {
	stat := []byte("1234 (buildkitd (x) y) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 7 3 20 0 30 0 100 2000000 5000")
	self, children, err := parseStatCPU(stat)
	if err != nil || self != 3*time.Second || children != 100*time.Millisecond {
		t.Errorf("self %v, children %v, %v; want 3s, 100ms", self, children, err)
	}
	if _, _, err := parseStatCPU([]byte("1 (x) S 1 2")); err == nil {
		t.Error("accepted a short line")
	}
	if s, _, err := ProcCPU(os.Getpid()); err != nil || s < 0 {
		t.Errorf("ProcCPU(self) = %v, %v", s, err)
	}
}
