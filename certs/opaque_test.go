package certs

import (
	"bytes"
	"compress/gzip"
	"crypto/x509"
	"errors"
	"testing"

	pkcs12 "software.sslmate.com/src/go-pkcs12"
)

func TestOpaque(t *testing.T) {
	ours := testCA(t, "Our CA")
	var gz bytes.Buffer
	w := gzip.NewWriter(&gz)
	w.Write([]byte(pem64(ours)))
	w.Close()
	p12 := func(enc *pkcs12.Encoder, pw string) []byte {
		b, err := enc.EncodeTrustStore([]*x509.Certificate{ours}, pw)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	for _, tc := range []struct {
		name   string
		in     []byte
		opaque bool
	}{
		{"pem", []byte(pem64(ours)), false},
		{"der", ours.Raw, false},
		{"empty", nil, false},
		{"gzip", gz.Bytes(), true},
		{"pkcs12 password-less", p12(pkcs12.Passwordless, ""), false},
		{"pkcs12 changeit", p12(pkcs12.Modern2023, "changeit"), false},
		{"pkcs12 unknown password", p12(pkcs12.Modern2023, "hunter22"), true},
		{"pkcs12 too many iterations", mustEncode(t, pkcs12.Modern2023.WithIterations(maxIterations+1), ours), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := Opaque(tc.in)
			if (err != nil) != tc.opaque || err != nil && !errors.Is(err, ErrOpaque) {
				t.Fatalf("Opaque = %v, want opaque %v", err, tc.opaque)
			}
			// What Opaque calls visible, Find sees.
			if err == nil && len(tc.in) > 0 && len(setOf(ours).Find(tc.in)) == 0 {
				t.Fatal("Opaque says visible but Find sees nothing")
			}
		})
	}
}

func mustEncode(t *testing.T, enc *pkcs12.Encoder, c *x509.Certificate) []byte {
	b, err := enc.EncodeTrustStore([]*x509.Certificate{c}, "changeit")
	if err != nil {
		t.Fatal(err)
	}
	return b
}
