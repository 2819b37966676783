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
	get := func(ca *CA) error {
		pool := x509.NewCertPool()
		pool.AddCert(ca.Cert)
		c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
		resp, err := c.Get(srv.URL)
		if err != nil {
			return err
		}
		resp.Body.Close()
		return nil
	}
	if err := get(root); err != nil {
		t.Errorf("trusting the root: %v", err)
	}
	if err := get(other); err == nil {
		t.Error("trusting another root: the handshake succeeded")
	}
	if fp := root.Fingerprint(); len(fp) != 95 || strings.ToUpper(fp) != fp {
		t.Errorf("fingerprint %q: want 32 upper-case hex pairs", fp)
	}
}
