package certs

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"math/big"
	"strings"
	"sync"
	"testing"
	"time"
)

var (
	caMu    sync.Mutex
	caCache = map[string]*x509.Certificate{}
	keyOnce sync.Once
	caKey   *ecdsa.PrivateKey
)

// testCA returns a self-signed CA certificate named name (cached per name).
func testCA(tb testing.TB, name string) *x509.Certificate {
	tb.Helper()
	caMu.Lock()
	defer caMu.Unlock()
	if c, ok := caCache[name]; ok {
		return c
	}
	keyOnce.Do(func() {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			panic(err)
		}
		caKey = k
	})
	serial, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: name, Organization: []string{"certs test"}},
		NotBefore:             time.Unix(1_700_000_000, 0),
		NotAfter:              time.Unix(1_700_000_000, 0).Add(10 * 365 * 24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &caKey.PublicKey, caKey)
	if err != nil {
		tb.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		tb.Fatal(err)
	}
	caCache[name] = c
	return c
}

// pemOf encodes der as a PEM block with label, base64 lines of width
// characters, eol line ends, and optional header lines.
func pemOf(der []byte, label string, width int, eol string, headers ...string) string {
	var b strings.Builder
	b.WriteString("-----BEGIN " + label + "-----" + eol)
	for _, h := range headers {
		b.WriteString(h + eol)
	}
	if len(headers) > 0 {
		b.WriteString(eol)
	}
	s := base64.StdEncoding.EncodeToString(der)
	for len(s) > width {
		b.WriteString(s[:width] + eol)
		s = s[width:]
	}
	if s != "" {
		b.WriteString(s + eol)
	}
	b.WriteString("-----END " + label + "-----" + eol)
	return b.String()
}

// pem64 is the usual OpenSSL encoding of c.
func pem64(c *x509.Certificate) string { return pemOf(c.Raw, "CERTIFICATE", 64, "\n") }

func setOf(cs ...*x509.Certificate) *Set { return NewSet(cs) }
