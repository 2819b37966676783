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
	tmpl := &x509.Certificate{
		Subject:     pkix.Name{CommonName: hosts[0]},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	cert, err := ca.issue(tmpl)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("issuing leaf for %v: %w", hosts, err)
	}
	return cert, nil
}

// ClientLeaf issues a client certificate named cn (extended key usage
// client authentication only), for a mutual-TLS client.
func (ca *CA) ClientLeaf(cn string) (tls.Certificate, error) {
	cert, err := ca.issue(&x509.Certificate{
		Subject:     pkix.Name{CommonName: cn},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("issuing client certificate %q: %w", cn, err)
	}
	return cert, nil
}

// issue signs tmpl (its subject, names and extended key usages) with a new
// P-256 key as a leaf valid for a day.
func (ca *CA) issue(tmpl *x509.Certificate) (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	now := time.Now()
	tmpl.SerialNumber = big.NewInt(now.UnixNano())
	tmpl.NotBefore, tmpl.NotAfter = now.Add(-time.Hour), now.Add(24*time.Hour)
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.Key)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}

// WriteKeyPair writes cert's chain (PEM certificates, leaf first) to
// certFile and its private key (PKCS #8 PEM) to keyFile, both mode 0600, in
// the form tls.LoadX509KeyPair and buildkitd's --tlscert/--tlskey read.
func WriteKeyPair(cert tls.Certificate, certFile, keyFile string) error {
	var chain []byte
	for _, der := range cert.Certificate {
		chain = append(chain, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})...)
	}
	key, err := x509.MarshalPKCS8PrivateKey(cert.PrivateKey)
	if err != nil {
		return fmt.Errorf("encoding the private key: %w", err)
	}
	if err := os.WriteFile(certFile, chain, 0o600); err != nil {
		return err
	}
	return os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: key}), 0o600)
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
	pems, err := ManyCAs("harness CA", n)
	if err != nil {
		return "", err
	}
	if err := writeCAFiles(dir, pems); err != nil {
		return "", err
	}
	return dir, nil
}

// WriteCAs writes the certificates of cas into dir (created if needed) as
// harness-NNNNN.crt, the shape of an engine's CA directory (--cacerts-dir),
// and returns dir. With no CA, dir is left empty: a daemon that installs
// nothing.
func WriteCAs(dir string, cas ...*CA) (string, error) {
	pems := make([][]byte, 0, len(cas))
	for _, ca := range cas {
		pems = append(pems, ca.PEM)
	}
	if err := writeCAFiles(dir, pems); err != nil {
		return "", err
	}
	return dir, nil
}

func writeCAFiles(dir string, pems [][]byte) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for i, p := range pems {
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("harness-%05d.crt", i)), p, 0o644); err != nil {
			return err
		}
	}
	return nil
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
