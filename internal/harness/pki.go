package harness

import (
	"crypto"
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
	"path/filepath"
	"time"
)

// CA is a self-signed certificate authority made for a test or a benchmark.
type CA struct {
	Cert *x509.Certificate
	Key  crypto.Signer
	PEM  []byte // the certificate, PEM-encoded
}

// NewCA makes a self-signed ECDSA P-256 CA named cn, valid for a day.
func NewCA(cn string) (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	return newCAWithKey(cn, key, nil)
}

// newCAWithKey makes a CA named cn with key, valid for a day: self-signed
// when parent is nil, else an intermediate signed by parent (path length 0).
func newCAWithKey(cn string, key *ecdsa.PrivateKey, parent *CA) (*CA, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: cn, Organization: []string{"buildkit-cacerts harness"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	issuer, signer := tmpl, crypto.Signer(key)
	if parent != nil {
		tmpl.MaxPathLenZero = true
		issuer, signer = parent.Cert, parent.Key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, issuer, &key.PublicKey, signer)
	if err != nil {
		return nil, fmt.Errorf("making CA %q: %w", cn, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &CA{Cert: cert, Key: key, PEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}, nil
}

// Leaf issues a server certificate for the given IPs and DNS names.
func (ca *CA) Leaf(hosts ...string) (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(now.UnixNano()),
		Subject:      pkix.Name{CommonName: hosts[0]},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.Key)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("issuing leaf for %v: %w", hosts, err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}

// ManyCAs makes n distinct CA certificates (distinct subjects, hence
// distinct OpenSSL subject hashes in practice) and returns them PEM-encoded,
// one per element. They share one key: only the certificates matter.
func ManyCAs(prefix string, n int) ([][]byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	out := make([][]byte, 0, n)
	for i := range n {
		ca, err := newCAWithKey(fmt.Sprintf("%s %05d", prefix, i), key, nil)
		if err != nil {
			return nil, err
		}
		out = append(out, ca.PEM)
	}
	return out, nil
}

// WriteCADir writes n fresh CAs into dir (created if needed) as
// harness-NNNNN.crt, and returns dir.
func WriteCADir(dir string, n int) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	pems, err := ManyCAs("harness CA", n)
	if err != nil {
		return "", err
	}
	for i, p := range pems {
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("harness-%05d.crt", i)), p, 0o644); err != nil {
			return "", err
		}
	}
	return dir, nil
}

// Bundle concatenates n fresh CA certificates into one PEM bundle, the shape
// of /etc/ssl/certs/ca-certificates.crt.
func Bundle(n int) ([]byte, error) {
	pems, err := ManyCAs("harness bundle CA", n)
	if err != nil {
		return nil, err
	}
	var out []byte
	for _, p := range pems {
		out = append(out, p...)
	}
	return out, nil
}

// ServeHTTPS serves h over HTTPS on 127.0.0.1 with a leaf issued by ca; it
// returns the server (URL "https://127.0.0.1:PORT"), which the caller closes.
func ServeHTTPS(ca *CA, h http.Handler) (*httptest.Server, error) {
	leaf, err := ca.Leaf("127.0.0.1")
	if err != nil {
		return nil, err
	}
	srv := httptest.NewUnstartedServer(h)
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{leaf}}
	srv.StartTLS()
	return srv, nil
}
