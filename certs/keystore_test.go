package certs

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"slices"
	"testing"
	"time"

	keystore "github.com/pavlo-v-chernykh/keystore-go/v4"
	pkcs12 "software.sslmate.com/src/go-pkcs12"
)

// jksOf builds a JKS store with keystore-go: trusted entries alias → cert,
// and optionally a private-key entry "server" whose chain is chain.
func jksOf(t *testing.T, password string, trusted map[string]*x509.Certificate, chain []*x509.Certificate) []byte {
	t.Helper()
	ks := keystore.New(keystore.WithOrderedAliases())
	created := time.UnixMilli(1_700_000_000_123)
	for alias, c := range trusted {
		err := ks.SetTrustedCertificateEntry(alias, keystore.TrustedCertificateEntry{
			CreationTime: created,
			Certificate:  keystore.Certificate{Type: "X.509", Content: c.Raw},
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if chain != nil {
		k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		p8, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		var kc []keystore.Certificate
		for _, c := range chain {
			kc = append(kc, keystore.Certificate{Type: "X.509", Content: c.Raw})
		}
		if err := ks.SetPrivateKeyEntry("server", keystore.PrivateKeyEntry{CreationTime: created, PrivateKey: p8, CertificateChain: kc}, []byte(password)); err != nil {
			t.Fatal(err)
		}
	}
	var buf bytes.Buffer
	if err := ks.Store(&buf, []byte(password)); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// aliasesOf lists a store's aliases and certificates with Entries.
func aliasesOf(t *testing.T, data []byte) map[string][]byte {
	t.Helper()
	es, err := Entries(data)
	if err != nil {
		t.Fatalf("Entries: %v", err)
	}
	m := make(map[string][]byte)
	for _, e := range es {
		m[e.Alias] = e.Certs[0]
	}
	return m
}

// TestKeystores: JKS and PKCS#12 stores made by the libraries. Seen failing
// when the JKS digest drops the "Mighty Aphrodite" whitener (keystore-go
// refuses the edited store), when chain entries are treated as trusted ones,
// when p12Decrypted does not read the aliases back (every encrypted case),
// and with an iteration cap of 1 (the encrypted stores become invisible).
func TestKeystores(t *testing.T) {
	ours, other, third := testCA(t, "Our CA"), testCA(t, "Other CA"), testCA(t, "Third CA")
	leaf := testCA(t, "Leaf")
	set := setOf(ours)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	trustP12 := func(enc *pkcs12.Encoder, pw string) []byte {
		b, err := enc.EncodeTrustStoreEntries([]pkcs12.TrustStoreEntry{
			{Cert: other, FriendlyName: "other"}, {Cert: ours, FriendlyName: "ours"}, {Cert: third, FriendlyName: "third"},
		}, pw)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	keyP12 := func(enc *pkcs12.Encoder, pw string, leafCert *x509.Certificate, cas ...*x509.Certificate) []byte {
		b, err := enc.Encode(key, leafCert, cas, pw)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	three := map[string]*x509.Certificate{"other": other, "ours": ours, "third": third}
	tests := []struct {
		name   string
		in     []byte
		kind   KeystoreKind
		hits   []Hit // Offset not compared
		strip  bool  // Strip must succeed and leave "other" and "third"
		format Format
	}{
		{"jks changeit", jksOf(t, "changeit", three, nil), KeystoreJKS, []Hit{{Format: FormatJKS, Alias: "ours"}}, true, 0},
		{"jks empty password", jksOf(t, "", three, nil), KeystoreJKS, []Hit{{Format: FormatJKS, Alias: "ours"}}, true, 0},
		{"jks unknown password", jksOf(t, "hunter22", three, nil), KeystoreJKS, []Hit{{Format: FormatJKS, Alias: "ours"}}, false, FormatJKS},
		{"jks key chain holds ours", jksOf(t, "changeit", map[string]*x509.Certificate{"other": other}, []*x509.Certificate{leaf, ours}), KeystoreJKS,
			[]Hit{{Format: FormatJKS, Alias: "server", Chain: true}}, false, FormatJKS},
		{"pkcs12 password-less", trustP12(pkcs12.Passwordless, ""), KeystorePKCS12, []Hit{{Format: FormatPKCS12, Alias: "ours"}}, true, 0},
		{"pkcs12 modern changeit", trustP12(pkcs12.Modern2023, "changeit"), KeystorePKCS12, []Hit{{Format: FormatPKCS12, Alias: "ours"}}, true, 0},
		{"pkcs12 modern2026 changeit", trustP12(pkcs12.Modern2026, "changeit"), KeystorePKCS12, []Hit{{Format: FormatPKCS12, Alias: "ours"}}, true, 0},
		{"pkcs12 3des changeit", trustP12(pkcs12.LegacyDES, "changeit"), KeystorePKCS12, []Hit{{Format: FormatPKCS12, Alias: "ours"}}, true, 0},
		{"pkcs12 3des empty password", trustP12(pkcs12.LegacyDES, ""), KeystorePKCS12, []Hit{{Format: FormatPKCS12, Alias: "ours"}}, true, 0},
		// RC2 safes: go-pkcs12 decrypts them, we cannot read the aliases back.
		{"pkcs12 rc2 changeit", trustP12(pkcs12.LegacyRC2, "changeit"), KeystorePKCS12, []Hit{{Format: FormatPKCS12}}, false, FormatPKCS12},
		// An unknown password hides the encrypted certificates from Find.
		{"pkcs12 unknown password", trustP12(pkcs12.Modern2023, "hunter22"), KeystorePKCS12, nil, false, 0},
		{"pkcs12 key with ours as CA", keyP12(pkcs12.Modern2023, "changeit", leaf, ours), KeystorePKCS12, []Hit{{Format: FormatPKCS12}}, false, FormatPKCS12},
		{"pkcs12 key with ours as leaf", keyP12(pkcs12.Modern2023, "changeit", ours), KeystorePKCS12, []Hit{{Format: FormatPKCS12, Chain: true}}, false, FormatPKCS12},
		{"pkcs12 password-less key with ours as CA", keyP12(pkcs12.Passwordless, "", leaf, ours), KeystorePKCS12, []Hit{{Format: FormatPKCS12}}, false, FormatPKCS12},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if k := KeystoreKindOf(tt.in); k != tt.kind {
				t.Fatalf("KeystoreKindOf = %v, want %v", k, tt.kind)
			}
			hits := set.Find(tt.in)
			for i := range hits {
				hits[i].Offset = 0
			}
			if !slices.Equal(hits, tt.hits) {
				t.Fatalf("Find = %+v, want %+v", hits, tt.hits)
			}
			out, n, err := set.Strip(tt.in)
			switch {
			case tt.strip:
				if err != nil || n != 1 {
					t.Fatalf("Strip = %d, %v", n, err)
				}
				if h := set.Find(out); len(h) != 0 {
					t.Fatalf("Find after Strip: %+v", h)
				}
				if k := KeystoreKindOf(out); k != tt.kind {
					t.Fatalf("stripped store is %v", k)
				}
				got := aliasesOf(t, out)
				if len(got) != 2 || !bytes.Equal(got["other"], other.Raw) || !bytes.Equal(got["third"], third.Raw) {
					t.Fatalf("stripped store holds %d entries %v, want other and third", len(got), slices.Collect(mapKeys(got)))
				}
			case tt.format != 0:
				var se *StripError
				if !errors.Is(err, ErrCannotStrip) || !errors.As(err, &se) || se.Format != tt.format {
					t.Fatalf("Strip = %d, %v; want ErrCannotStrip for %v", n, err, tt.format)
				}
				t.Log(err)
			default:
				if err != nil || n != 0 || !bytes.Equal(out, tt.in) {
					t.Fatalf("Strip = %d, %v; want nothing removed", n, err)
				}
			}
		})
	}
}

func mapKeys[K comparable, V any](m map[K]V) func(func(K) bool) {
	return func(yield func(K) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// TestJKSStripKeepsBytes: Strip undoes AddTrusted byte for byte, and the
// library reads the result with the same password.
func TestJKSStripKeepsBytes(t *testing.T) {
	ours, other, third := testCA(t, "Our CA"), testCA(t, "Other CA"), testCA(t, "Third CA")
	for _, pw := range []string{"changeit", ""} {
		orig := jksOf(t, pw, map[string]*x509.Certificate{"other": other, "third": third}, []*x509.Certificate{testCA(t, "Leaf")})
		added, err := AddTrusted(orig, []*x509.Certificate{ours, other}, "buildkit-cacerts-", time.UnixMilli(1_800_000_000_000))
		if err != nil {
			t.Fatal(err)
		}
		es := aliasesOf(t, added)
		alias := aliasFor("buildkit-cacerts-", ours)
		if len(es) != 4 || !bytes.Equal(es[alias], ours.Raw) {
			t.Fatalf("after AddTrusted: %v", slices.Collect(mapKeys(es)))
		}
		ks := keystore.New()
		if err := ks.Load(bytes.NewReader(added), []byte(pw)); err != nil {
			t.Fatalf("keystore-go cannot load the store AddTrusted wrote: %v", err)
		}
		e, err := ks.GetTrustedCertificateEntry(alias)
		if err != nil || !e.CreationTime.Equal(time.UnixMilli(1_800_000_000_000)) {
			t.Fatalf("entry %v, %v", e.CreationTime, err)
		}
		out, n, err := setOf(ours).Strip(added)
		if err != nil || n != 1 || !bytes.Equal(out, orig) {
			t.Fatalf("Strip(AddTrusted(x)) = %d, %v, equal to x: %v", n, err, bytes.Equal(out, orig))
		}
	}
}

// TestPKCS12AddStrip: AddTrusted then Strip on PKCS#12 trust stores keeps
// the aliases and the protection.
func TestPKCS12AddStrip(t *testing.T) {
	ours, other := testCA(t, "Our CA"), testCA(t, "Other CA")
	for _, tc := range []struct {
		name string
		enc  *pkcs12.Encoder
		pw   string
	}{{"password-less", pkcs12.Passwordless, ""}, {"modern", pkcs12.Modern2023, "changeit"}, {"3des", pkcs12.LegacyDES, "changeit"}} {
		t.Run(tc.name, func(t *testing.T) {
			orig, err := tc.enc.EncodeTrustStoreEntries([]pkcs12.TrustStoreEntry{{Cert: other, FriendlyName: "Other Root"}}, tc.pw)
			if err != nil {
				t.Fatal(err)
			}
			added, err := AddTrusted(orig, []*x509.Certificate{ours}, "buildkit-cacerts-", time.Now())
			if err != nil {
				t.Fatal(err)
			}
			certs, err := pkcs12.DecodeTrustStore(added, tc.pw)
			if err != nil || len(certs) != 2 {
				t.Fatalf("go-pkcs12 reads %d certificates, %v", len(certs), err)
			}
			if es := aliasesOf(t, added); len(es) != 2 || es[aliasFor("buildkit-cacerts-", ours)] == nil || es["Other Root"] == nil {
				t.Fatalf("aliases %v", slices.Collect(mapKeys(es)))
			}
			st, _ := parsePKCS12(added)
			if (st.encrypted == 0) != (tc.pw == "") || st.hasMAC != (tc.pw != "") {
				t.Fatalf("protection changed: %d encrypted safes, MAC %v", st.encrypted, st.hasMAC)
			}
			out, n, err := setOf(ours).Strip(added)
			if err != nil || n != 1 {
				t.Fatalf("Strip = %d, %v", n, err)
			}
			if es := aliasesOf(t, out); len(es) != 1 || !bytes.Equal(es["Other Root"], other.Raw) {
				t.Fatalf("aliases after Strip %v", slices.Collect(mapKeys(es)))
			}
		})
	}
}

func TestKeystoreKindOf(t *testing.T) {
	c := testCA(t, "Our CA")
	for _, tc := range []struct {
		name string
		in   []byte
		want KeystoreKind
	}{
		{"empty", nil, KeystoreNone},
		{"jks magic", []byte{0xfe, 0xed, 0xfe, 0xed}, KeystoreJKS},
		{"certificate DER", c.Raw, KeystoreNone},
		{"PEM", []byte(pem64(c)), KeystoreNone},
		{"integer 3 alone", []byte{0x30, 0x03, 0x02, 0x01, 0x03}, KeystoreNone},
	} {
		if got := KeystoreKindOf(tc.in); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}

// TestStripTrustedEntry: Strip takes our trusted entry out of a keystore
// and keeps the other; AddTrusted refuses to edit PEM text as a keystore.
func TestStripTrustedEntry(t *testing.T) {
	ours, other := testCA(t, "Our CA"), testCA(t, "Other CA")
	store := jksOf(t, "changeit", map[string]*x509.Certificate{"ours": ours, "other": other}, nil)
	out, n, err := NewSet([]*x509.Certificate{ours}).Strip(store)
	if err != nil || n != 1 {
		t.Fatalf("Strip = %d, %v", n, err)
	}
	if es := aliasesOf(t, out); len(es) != 1 || es["other"] == nil {
		t.Fatalf("left %v", slices.Collect(mapKeys(es)))
	}
	if _, err := AddTrusted([]byte(pem64(ours)), []*x509.Certificate{other}, "x-", time.Now()); err == nil {
		t.Fatal("AddTrusted edited PEM text")
	}
}

// TestJKSVersion1: stores of the old version 1 (no certificate type) are
// edited in version 1 and keystore-go reads them.
func TestJKSVersion1(t *testing.T) {
	ours, other := testCA(t, "Our CA"), testCA(t, "Other CA")
	empty := jksAssemble(1, 0, nil, "changeit")
	orig, err := AddTrusted(empty, []*x509.Certificate{other}, "o-", time.UnixMilli(1))
	if err != nil {
		t.Fatal(err)
	}
	added, err := AddTrusted(orig, []*x509.Certificate{ours}, "ours-", time.UnixMilli(2))
	if err != nil {
		t.Fatal(err)
	}
	st, err := parseJKS(added)
	if err != nil || st.version != 1 || len(st.entries) != 2 {
		t.Fatalf("parseJKS = %+v, %v", st, err)
	}
	ks := keystore.New()
	if err := ks.Load(bytes.NewReader(added), []byte("changeit")); err != nil {
		t.Fatal(err)
	}
	out, n, err := setOf(ours).Strip(added)
	if err != nil || n != 1 || !bytes.Equal(out, orig) {
		t.Fatalf("Strip = %d, %v", n, err)
	}
}
