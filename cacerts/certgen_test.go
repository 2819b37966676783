package cacerts

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"testing"
	"time"
)

// atv is one attribute of a test subject: OID bytes (content only), the
// string tag and the raw value.
type atv struct {
	oid []byte
	tag byte
	val []byte
}

var (
	oidCN = []byte{0x55, 0x04, 0x03}
	oidO  = []byte{0x55, 0x04, 0x0a}
	oidOU = []byte{0x55, 0x04, 0x0b}
	oidC  = []byte{0x55, 0x04, 0x06}
	oidDC = []byte{0x09, 0x92, 0x26, 0x89, 0x93, 0xf2, 0x2c, 0x64, 0x01, 0x19}
)

// rawName encodes a Name from RDNs given in order (no DER sorting, so odd
// orders reach the code under test as a real certificate would carry them).
func rawName(rdns ...[]atv) []byte {
	var seq []byte
	for _, rdn := range rdns {
		var set []byte
		for _, a := range rdn {
			set = appendTLV(set, tagSequence, appendTLV(appendTLV(nil, tagOID, a.oid), a.tag, a.val))
		}
		seq = appendTLV(seq, tagSet, set)
	}
	return appendTLV(nil, tagSequence, seq)
}

// testCA is a generated CA and its key.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

type caOpt struct {
	rawSubject []byte
	cn         string
	notCA      bool
	v1         bool
	notAfter   time.Time
}

var serial int64

func newCA(t testing.TB, o caOpt) testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial++
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(serial),
		Subject:               pkix.Name{CommonName: o.cn, Organization: []string{"buildkit-cacerts test"}},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		BasicConstraintsValid: !o.v1,
		IsCA:                  !o.notCA,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	if o.cn == "" {
		tmpl.Subject.CommonName = "Test CA " + big.NewInt(serial).String()
	}
	if o.rawSubject != nil {
		tmpl.RawSubject = o.rawSubject
	}
	if !o.notAfter.IsZero() {
		tmpl.NotBefore = o.notAfter.Add(-48 * time.Hour)
		tmpl.NotAfter = o.notAfter
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	p := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	c, err := x509.ParseCertificate(der)
	if err != nil {
		if o.rawSubject != nil {
			// crypto/x509 refuses some string types (VisibleString,
			// UniversalString) that OpenSSL accepts; callers use rawSubject.
			return testCA{key: key, pem: p}
		}
		t.Fatal(err)
	}
	return testCA{cert: c, key: key, pem: p}
}

func (c testCA) keyPEM(t testing.TB) []byte {
	t.Helper()
	der, err := x509.MarshalECPrivateKey(c.key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der})
}
