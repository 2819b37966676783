package certs

import (
	"bytes"
	"crypto/x509"
	"errors"
	"sync"
	"testing"
	"time"

	pkcs12 "software.sslmate.com/src/go-pkcs12"
)

var (
	fuzzOnce sync.Once
	fuzzSet  *Set
	fuzzSeed [][]byte
)

// fuzzSetup returns the set of the fuzz targets (our CA and a second one)
// and a seed corpus that holds them in every format.
func fuzzSetup(tb testing.TB) (*Set, [][]byte) {
	fuzzOnce.Do(func() {
		ours, second, other := testCA(tb, "Our CA"), testCA(tb, "Our second CA"), testCA(tb, "Other CA")
		fuzzSet = setOf(ours, second)
		p12 := func(enc *pkcs12.Encoder, pw string) []byte {
			b, _ := enc.EncodeTrustStoreEntries([]pkcs12.TrustStoreEntry{{Cert: other, FriendlyName: "other"}, {Cert: ours, FriendlyName: "ours"}}, pw)
			return b
		}
		jks := func(pw string) []byte {
			b, err := AddTrusted(jksAssemble(2, 0, nil, pw), []*x509.Certificate{other, ours}, "a-", time.UnixMilli(1))
			if err != nil {
				panic(err)
			}
			return b
		}
		fuzzSeed = [][]byte{
			nil,
			[]byte(pem64(ours)),
			[]byte(pem64(other) + "# c\r\n" + pemOf(ours.Raw, "CERTIFICATE", 76, "\r\n") + pem64(second)),
			[]byte(pemOf(append(append([]byte(nil), ours.Raw...), 0x30, 0x00), "TRUSTED CERTIFICATE", 64, "\n")),
			[]byte("-----BEGIN CERTIFICATE-----\n" + pem64(ours)),
			[]byte(pemOf(ours.Raw, "PKCS7", 64, "\n")),
			ours.Raw,
			cat(randomBytes(2, 100), ours.Raw, randomBytes(3, 50)),
			jks("changeit"),
			resign(jks("changeit"), "hunter22"),
			p12(pkcs12.Passwordless, ""),
			p12(pkcs12.LegacyDES, "changeit"),
		}
	})
	return fuzzSet, fuzzSeed
}

// resign signs a JKS store again with password.
func resign(store []byte, password string) []byte {
	body := bytes.Clone(store[:len(store)-jksDigestLen])
	return append(body, jksDigest(password, body)...)
}

func FuzzFind(f *testing.F) {
	set, seed := fuzzSetup(f)
	for _, s := range seed {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		orig := bytes.Clone(data)
		hits := set.Find(data)
		if !bytes.Equal(data, orig) {
			t.Fatal("Find modified its input")
		}
		for _, h := range hits {
			if h.Index < 0 || h.Index >= set.Len() || h.Offset >= len(data) {
				t.Fatalf("bad hit %+v", h)
			}
		}
		KeystoreKindOf(data)
	})
}

func FuzzStrip(f *testing.F) {
	set, seed := fuzzSetup(f)
	for _, s := range seed {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		orig := bytes.Clone(data)
		out, n, err := set.Strip(data)
		if !bytes.Equal(data, orig) {
			t.Fatal("Strip modified its input")
		}
		if err != nil {
			if !errors.Is(err, ErrCannotStrip) {
				t.Fatalf("Strip error %v does not wrap ErrCannotStrip", err)
			}
			if len(set.Find(data)) == 0 {
				t.Fatalf("Strip failed (%v) on data where Find sees nothing", err)
			}
			return
		}
		if h := set.Find(out); len(h) != 0 {
			t.Fatalf("Find(Strip(data)) = %+v", h)
		}
		if n == 0 && !bytes.Equal(out, data) {
			t.Fatal("nothing removed but the data changed")
		}
		if n > 0 && len(set.Find(data)) == 0 {
			t.Fatal("removed something Find did not see")
		}
		if KeystoreKindOf(data) == KeystoreNone && len(out) > len(data) {
			t.Fatal("stripping text made it longer")
		}
	})
}
