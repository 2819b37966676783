package layerdiff

import (
	"archive/tar"
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"reflect"
	"strings"
	"testing"
	"time"

	"software.sslmate.com/src/go-pkcs12"
)

func testCert(t *testing.T, cn string) *x509.Certificate {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, k.Public(), k)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func pemOf(c *x509.Certificate, typ string) string {
	return string(pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: c.Raw}))
}

func reg(name, body string) tarEntry {
	return tarEntry{h: tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644}, body: body}
}

func link(name, target string) tarEntry {
	return tarEntry{h: tar.Header{Name: name, Typeflag: tar.TypeSymlink, Linkname: target, Mode: 0o777}}
}

// TestScanLayer plants the needle in every form the scan must find — a PEM
// bundle, a TRUSTED CERTIFICATE block, raw DER inside a binary store (as in
// a JKS), DER straddling the streaming chunk boundary of a large file, a
// PKCS#12 trust store encrypted with "changeit", a hash link and a hash
// file — next to files holding only another CA, which it must not report.
func TestScanLayer(t *testing.T) {
	ours, other := testCert(t, "ours"), testCert(t, "other")
	needles := []Needle{{Name: "test CA", Cert: ours, SubjectHash: "0a1b2c3d"}}

	p12, err := pkcs12.Modern.EncodeTrustStore([]*x509.Certificate{other, ours}, "changeit")
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(p12, ours.Raw) {
		t.Fatal("the encrypted PKCS#12 holds the DER in clear; the test would not prove the PKCS#12 decoding")
	}
	p12other, err := pkcs12.Modern.EncodeTrustStore([]*x509.Certificate{other}, "changeit")
	if err != nil {
		t.Fatal(err)
	}
	large := make([]byte, scanChunk+1000)
	off := scanChunk - len(ours.Raw)/2 // across the first chunk boundary
	copy(large[off:], ours.Raw)
	large = append(large, make([]byte, wholeFileMax)...) // streamed, not read whole
	jks := "\xfe\xed\xfe\xed\x00\x00\x00\x02" + string(other.Raw) + "\x00\x05X.509" + string(ours.Raw) + "\x13\x37"

	layer := buildTar(t,
		reg("etc/ssl/certs/ca-certificates.crt", pemOf(other, "CERTIFICATE")+"junk\n"+pemOf(ours, "CERTIFICATE")),
		// OpenSSL's trusted form: the DER, then trust settings.
		reg("usr/share/derived/trusted.pem", string(pem.EncodeToMemory(&pem.Block{Type: "TRUSTED CERTIFICATE", Bytes: append(append([]byte{}, ours.Raw...), 0x30, 0x00)}))),
		reg("etc/ssl/certs/java/cacerts", jks),
		reg("opt/big.bin", string(large)),
		reg("opt/store.p12", string(p12)),
		reg("opt/other.p12", string(p12other)),
		reg("etc/ssl/certs/other.pem", pemOf(other, "CERTIFICATE")),
		link("etc/ssl/certs/0a1b2c3d.0", "ca-certificates.crt"),
		reg("usr/lib/ssl/certs/0A1B2C3D.1", "x"),
		link("etc/ssl/certs/0a1b2c3d.txt", "x"), // not a hash link name
		reg("etc/ssl/certs/ffffffff.0", pemOf(other, "CERTIFICATE")),
	)
	got, err := ScanLayer(layer, needles)
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, f := range got {
		lines = append(lines, f.String())
	}
	want := []string{
		"layer 0: etc/ssl/certs/ca-certificates.crt: test CA in PEM block (CERTIFICATE)",
		"layer 0: usr/share/derived/trusted.pem: test CA in PEM block (TRUSTED CERTIFICATE)",
		"layer 0: etc/ssl/certs/java/cacerts: test CA in DER bytes",
		"layer 0: opt/big.bin: test CA in DER bytes",
		`layer 0: opt/store.p12: test CA in PKCS#12 (password "changeit")`,
		"layer 0: etc/ssl/certs/0a1b2c3d.0: test CA in hash link -> ca-certificates.crt",
		"layer 0: usr/lib/ssl/certs/0A1B2C3D.1: test CA in hash file",
	}
	if !reflect.DeepEqual(lines, want) {
		t.Errorf("findings:\n  %s\nwant:\n  %s", strings.Join(lines, "\n  "), strings.Join(want, "\n  "))
	}
}

// TestScanImages: only findings the image built without injection does not
// have at the same place count (the Dockerfile may hold the CA itself), and
// layers with equal digests are skipped.
func TestScanImages(t *testing.T) {
	ours := testCert(t, "ours")
	needles := []Needle{{Name: "test CA", Cert: ours, SubjectHash: "0a1b2c3d"}}
	base := func() *bytes.Buffer { return buildTar(t, reg("etc/os-release", "ID=debian\n")) }
	userCopy := reg("usr/local/share/ca-certificates/corp.crt", pemOf(ours, "CERTIFICATE"))
	want := imageOf(t, base(), buildTar(t, userCopy))
	clean := imageOf(t, base(), buildTar(t, userCopy, reg("tmp/x", "y")))
	if f, err := ScanImages(want, clean, needles); err != nil || f != nil {
		t.Errorf("the user's own copy: %v, %v; want no finding", f, err)
	}
	leak := imageOf(t, base(), buildTar(t, userCopy, reg("root/leak.pem", pemOf(ours, "CERTIFICATE"))), buildTar(t, link("etc/ssl/certs/0a1b2c3d.0", "x.pem")))
	f, err := ScanImages(want, leak, needles)
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, x := range f {
		lines = append(lines, x.String())
	}
	wantLines := []string{
		"layer 1: root/leak.pem: test CA in PEM block (CERTIFICATE)",
		"layer 2: etc/ssl/certs/0a1b2c3d.0: test CA in hash link -> x.pem",
	}
	if !reflect.DeepEqual(lines, wantLines) {
		t.Errorf("findings %q, want %q", lines, wantLines)
	}
}
