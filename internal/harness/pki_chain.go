package harness

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
)

// Intermediate issues an intermediate CA named cn, signed by ca, valid for a
// day. Its PEM is the intermediate's certificate alone; a server that uses
// it must send it in its chain (ServeHTTPSVia).
func (ca *CA) Intermediate(cn string) (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	return newCAWithKey(cn, key, ca)
}

// Fingerprint is the certificate's SHA-256 fingerprint the way keytool and
// `openssl x509 -fingerprint -sha256` print it: upper-case hex pairs joined
// by colons.
func (ca *CA) Fingerprint() string {
	sum := sha256.Sum256(ca.Cert.Raw)
	parts := make([]string, len(sum))
	for i, b := range sum {
		parts[i] = fmt.Sprintf("%02X", b)
	}
	return strings.Join(parts, ":")
}

// ServeHTTPSVia serves h over HTTPS on 127.0.0.1 with a leaf (for 127.0.0.1
// and localhost) issued by issuer, and sends the issuer's certificate after
// the leaf, then each of more (further up the chain, root excluded), so a
// client that trusts only the root can build the chain. It returns the
// server (closed by the caller) and the leaf's certificate as PEM, for
// offline verification.
func ServeHTTPSVia(issuer *CA, more []*CA, h http.Handler) (*httptest.Server, []byte, error) {
	leaf, err := issuer.Leaf("127.0.0.1", "localhost")
	if err != nil {
		return nil, nil, err
	}
	leaf.Certificate = append(leaf.Certificate, issuer.Cert.Raw)
	for _, c := range more {
		leaf.Certificate = append(leaf.Certificate, c.Cert.Raw)
	}
	leafPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leaf.Certificate[0]})
	return startTLS(h, leaf), leafPEM, nil
}

// startTLS serves h with cert; handshake errors (a client refusing the
// certificate, which the tests provoke) are not logged.
func startTLS(h http.Handler, cert tls.Certificate) *httptest.Server {
	srv := httptest.NewUnstartedServer(h)
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	return srv
}

// ServeHTTPSLeaf is ServeHTTPS that also returns the leaf's certificate as
// PEM (for 127.0.0.1 and localhost), for offline verification.
func ServeHTTPSLeaf(ca *CA, h http.Handler) (*httptest.Server, []byte, error) {
	leaf, err := ca.Leaf("127.0.0.1", "localhost")
	if err != nil {
		return nil, nil, err
	}
	leafPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leaf.Certificate[0]})
	return startTLS(h, leaf), leafPEM, nil
}
