package certs

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/buildkit-cacerts/buildkit-cacerts/internal/testenv"
)

// keytool runs the JDK's keytool and returns its standard output.
func keytool(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "keytool", args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("keytool %s: %v\n%s%s", strings.Join(args, " "), err, out, stderr.Bytes())
	}
	return string(out)
}

// keytoolList returns alias → DER of every entry `keytool -list -rfc` shows.
func keytoolList(t *testing.T, store string, extra ...string) map[string][]byte {
	t.Helper()
	out := keytool(t, append([]string{"-list", "-rfc", "-keystore", store, "-storepass", "changeit"}, extra...)...)
	m := make(map[string][]byte)
	alias := ""
	rest := []byte(out)
	for _, line := range strings.Split(out, "\n") {
		if a, ok := strings.CutPrefix(line, "Alias name: "); ok {
			alias = strings.TrimSpace(a)
			i := bytes.Index(rest, []byte(line))
			b, r := pem.Decode(rest[i:])
			if b == nil {
				t.Fatalf("no certificate after %q in keytool -list -rfc output", line)
			}
			m[alias] = b.Bytes
			rest = r
		}
	}
	return m
}

// TestKeytoolRoundTrip: keytool builds JKS and PKCS#12 stores holding our CA
// and two others; Strip removes ours and keytool then lists exactly the
// others, with their aliases and certificates; AddTrusted's entry is listed
// by keytool too. Needs keytool (apt-get install default-jre-headless).
func TestKeytoolRoundTrip(t *testing.T) {
	testenv.RequiresRoot(t)
	if _, err := exec.LookPath("keytool"); err != nil {
		t.Skip("keytool not found (apt-get install -y default-jre-headless)")
	}
	ours, other, third := testCA(t, "Our CA"), testCA(t, "Other CA"), testCA(t, "Third CA")
	dir := t.TempDir()
	files := map[string]*x509.Certificate{"ours": ours, "other": other, "third": third}
	for name, c := range files {
		if err := os.WriteFile(filepath.Join(dir, name+".pem"), []byte(pem64(c)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// Java 18+ builds its cacerts password-less with these properties.
	passwordless := []string{"-J-Dkeystore.pkcs12.certProtectionAlgorithm=NONE", "-J-Dkeystore.pkcs12.macAlgorithm=NONE"}
	for _, tc := range []struct {
		name  string
		args  []string
		kind  KeystoreKind
		plain bool
	}{
		{"jks", []string{"-storetype", "JKS"}, KeystoreJKS, false},
		{"pkcs12", []string{"-storetype", "PKCS12"}, KeystorePKCS12, false},
		{"pkcs12 password-less", append([]string{"-storetype", "PKCS12"}, passwordless...), KeystorePKCS12, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			store := filepath.Join(t.TempDir(), "cacerts")
			for _, name := range []string{"other", "ours", "third"} {
				keytool(t, append([]string{"-importcert", "-noprompt", "-keystore", store, "-storepass", "changeit",
					"-alias", name, "-file", filepath.Join(dir, name+".pem")}, tc.args...)...)
			}
			data, err := os.ReadFile(store)
			if err != nil {
				t.Fatal(err)
			}
			if k := KeystoreKindOf(data); k != tc.kind {
				t.Fatalf("KeystoreKindOf = %v, want %v", k, tc.kind)
			}
			if tc.kind == KeystorePKCS12 {
				st, err := parsePKCS12(data)
				if err != nil {
					t.Fatal(err)
				}
				t.Logf("keytool's PKCS#12: %d encrypted safes (%s), MAC %v %v, max iterations %d", st.encrypted, cipherName(st.encAlg), st.hasMAC, st.macAlg, st.maxIter)
				if (st.encrypted == 0 && !st.hasMAC) != tc.plain {
					t.Fatalf("password-less = %v, want %v", !tc.plain, tc.plain)
				}
			}
			set := setOf(ours)
			hits := set.Find(data)
			if len(hits) != 1 || hits[0].Alias != "ours" || hits[0].Chain {
				t.Fatalf("Find = %+v, want the entry \"ours\"", hits)
			}
			out, n, err := set.Strip(data)
			if err != nil || n != 1 {
				t.Fatalf("Strip = %d, %v", n, err)
			}
			if tc.kind == KeystorePKCS12 {
				a, _ := parsePKCS12(data)
				b, err := parsePKCS12(out)
				if err != nil || (a.encrypted == 0) != (b.encrypted == 0) || a.hasMAC != b.hasMAC ||
					!a.macAlg.Equal(b.macAlg) || a.macIter != b.macIter || !a.encAlg.Equal(b.encAlg) {
					t.Fatalf("protection changed: before %+v, after %+v (%v)", a, b, err)
				}
			}
			if err := os.WriteFile(store, out, 0o644); err != nil {
				t.Fatal(err)
			}
			got := keytoolList(t, store, tc.args...)
			if keys := slices.Sorted(mapKeys(got)); !slices.Equal(keys, []string{"other", "third"}) ||
				!bytes.Equal(got["other"], other.Raw) || !bytes.Equal(got["third"], third.Raw) {
				t.Fatalf("keytool lists %v after Strip, want other and third", keys)
			}
			// AddTrusted writes an entry keytool reads.
			added, err := AddTrusted(out, []*x509.Certificate{ours}, "buildkit-cacerts-", time.Now())
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(store, added, 0o644); err != nil {
				t.Fatal(err)
			}
			got = keytoolList(t, store, tc.args...)
			if len(got) != 3 || !bytes.Equal(got[aliasFor("buildkit-cacerts-", ours)], ours.Raw) {
				t.Fatalf("keytool lists %v after AddTrusted", slices.Sorted(mapKeys(got)))
			}
		})
	}
}

// TestDebianJavaCacerts strips one CA out of the machine's real Debian JKS
// (/etc/ssl/certs/java/cacerts, built by ca-certificates-java with
// "changeit") and checks every other entry is kept.
func TestDebianJavaCacerts(t *testing.T) {
	const path = "/etc/ssl/certs/java/cacerts"
	data, err := os.ReadFile(path)
	if err != nil {
		t.Skipf("%s: %v (apt-get install ca-certificates-java)", path, err)
	}
	before, err := Entries(data)
	if err != nil {
		t.Fatal(err)
	}
	if len(before) < 2 {
		t.Skipf("%s holds %d entries", path, len(before))
	}
	victim := before[len(before)/2]
	c, err := x509.ParseCertificate(victim.Certs[0])
	if err != nil {
		t.Fatal(err)
	}
	set := setOf(c)
	hits := set.Find(data)
	if len(hits) != 1 || hits[0].Alias != victim.Alias || hits[0].Format != FormatJKS {
		t.Fatalf("Find = %+v, want %q", hits, victim.Alias)
	}
	out, n, err := set.Strip(data)
	if err != nil || n != 1 {
		t.Fatalf("Strip = %d, %v", n, err)
	}
	after, err := Entries(out)
	if err != nil {
		t.Fatal(err)
	}
	want := slices.DeleteFunc(slices.Clone(before), func(e Entry) bool { return e.Alias == victim.Alias })
	if !slices.EqualFunc(after, want, func(a, b Entry) bool {
		return a.Alias == b.Alias && a.Trusted == b.Trusted && bytes.Equal(a.Certs[0], b.Certs[0])
	}) {
		t.Fatalf("%d entries after Strip, want %d", len(after), len(want))
	}
	// Adding it back gives a store of the same size that keystore-go reads.
	back, err := AddTrusted(out, []*x509.Certificate{c}, "x-", time.Now())
	if err != nil || len(back) != len(data)-len(victim.Alias)+len(aliasFor("x-", c)) {
		t.Fatalf("AddTrusted: %d bytes, %v", len(back), err)
	}
	t.Logf("%s: %d entries, removed %q", path, len(before), victim.Alias)
}
