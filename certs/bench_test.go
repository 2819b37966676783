package certs

import (
	"bytes"
	"crypto/x509"
	"fmt"
	"math/rand/v2"
	"os"
	"testing"

	pkcs12 "software.sslmate.com/src/go-pkcs12"
)

// benchSets returns sets of 1 and 1000 CAs.
func benchSets(b *testing.B) map[int]*Set {
	var cs []*x509.Certificate
	for i := range 1000 {
		cs = append(cs, testCA(b, fmt.Sprintf("Bench CA %d", i)))
	}
	return map[int]*Set{1: NewSet(cs[:1]), 1000: NewSet(cs)}
}

// BenchmarkFind measures Find with 1 and 1000 CAs: its cost must not grow
// with the set (compare the MB/s of cas=1 and cas=1000).
func BenchmarkFind(b *testing.B) {
	sets := benchSets(b)
	random := make([]byte, 100<<20)
	rand.NewChaCha8([32]byte{1}).Read(random)
	inputs := []struct {
		name string
		data []byte
	}{{"random-100MB", random}}
	if bundle, err := os.ReadFile("/etc/ssl/certs/ca-certificates.crt"); err == nil {
		inputs = append(inputs, struct {
			name string
			data []byte
		}{fmt.Sprintf("bundle-%dKB", len(bundle)>>10), bundle})
	}
	if jks, err := os.ReadFile("/etc/ssl/certs/java/cacerts"); err == nil {
		inputs = append(inputs, struct {
			name string
			data []byte
		}{fmt.Sprintf("java-cacerts-%dKB", len(jks)>>10), jks})
	}
	// Crafted: back-to-back copies of our certificate with its last byte
	// changed, so every candidate passes the length and prefix checks and is
	// compared in full.
	ours := sets[1].Certs()[0].Raw
	near := bytes.Clone(ours)
	near[len(near)-1] ^= 0xff
	inputs = append(inputs, struct {
		name string
		data []byte
	}{"near-copies-10MB", bytes.Repeat(near, (10<<20)/len(near))})
	for _, in := range inputs {
		for _, n := range []int{1, 1000} {
			b.Run(fmt.Sprintf("%s/cas=%d", in.name, n), func(b *testing.B) {
				set := sets[n]
				b.SetBytes(int64(len(in.data)))
				b.ReportAllocs()
				for b.Loop() {
					if h := set.Find(in.data); len(h) != 0 {
						b.Fatalf("hits %+v", h)
					}
				}
			})
		}
	}
}

// BenchmarkStripBundle measures cutting one CA out of the system bundle.
func BenchmarkStripBundle(b *testing.B) {
	bundle, err := os.ReadFile("/etc/ssl/certs/ca-certificates.crt")
	if err != nil {
		b.Skip(err)
	}
	ours := testCA(b, "Our CA")
	data := append(bytes.Clone(bundle), pem64(ours)...)
	set := setOf(ours)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, n, err := set.Strip(data); err != nil || n != 1 {
			b.Fatal(n, err)
		}
	}
}

// BenchmarkPKCS12AtCap measures the worst a PKCS#12 file can cost Find and
// Strip: encrypted with "changeit" at the iteration cap (every KDF runs at
// the cap), with and without one of our certificates.
func BenchmarkPKCS12AtCap(b *testing.B) {
	ours, other := testCA(b, "Our CA"), testCA(b, "Other CA")
	for _, tc := range []struct {
		name string
		enc  *pkcs12.Encoder
	}{{"3des", pkcs12.LegacyDES}, {"pbes2", pkcs12.Modern2023}} {
		for _, withOurs := range []bool{false, true} {
			cs := []*x509.Certificate{other}
			if withOurs {
				cs = append(cs, ours)
			}
			data, err := tc.enc.WithIterations(maxIterations).EncodeTrustStore(cs, "changeit")
			if err != nil {
				b.Fatal(err)
			}
			set := setOf(ours)
			b.Run(fmt.Sprintf("%s/ours=%v/Find", tc.name, withOurs), func(b *testing.B) {
				for b.Loop() {
					set.Find(data)
				}
			})
			b.Run(fmt.Sprintf("%s/ours=%v/Strip", tc.name, withOurs), func(b *testing.B) {
				for b.Loop() {
					if _, _, err := set.Strip(data); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
