package harness

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestServeHTTPSVia checks a client that trusts only the root reaches a
// server whose leaf an intermediate signed, and one trusting another root
// does not.
func TestServeHTTPSVia(t *testing.T) {
	root, err := NewCA("chain root")
	if err != nil {
		t.Fatal(err)
	}
	inter, err := root.Intermediate("chain intermediate")
	if err != nil {
		t.Fatal(err)
	}
	other, err := NewCA("other root")
	if err != nil {
		t.Fatal(err)
	}
	srv, leafPEM, err := ServeHTTPSVia(inter, nil, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok") }))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	if !strings.Contains(string(leafPEM), "BEGIN CERTIFICATE") {
		t.Errorf("leaf PEM = %q", leafPEM)
	}
	if err := tlsGet(srv.URL, root); err != nil {
		t.Errorf("trusting the root: %v", err)
	}
	if err := tlsGet(srv.URL, other); err == nil {
		t.Error("trusting another root: the handshake succeeded")
	}
	if fp := root.Fingerprint(); len(fp) != 95 || strings.ToUpper(fp) != fp {
		t.Errorf("fingerprint %q: want 32 upper-case hex pairs", fp)
	}
}

// tlsGet GETs url trusting only root, presenting certs (if any) as the
// client's certificate.
func tlsGet(url string, root *CA, certs ...tls.Certificate) error {
	pool := x509.NewCertPool()
	pool.AddCert(root.Cert)
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: certs}}}
	resp, err := c.Get(url)
	if err != nil {
		return err
	}
	return resp.Body.Close()
}
