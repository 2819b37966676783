package cacerts

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// opensslHash runs `openssl x509 -subject_hash -noout` on a PEM certificate.
func opensslHash(t *testing.T, openssl string, pemData []byte) (uint32, error) {
	t.Helper()
	cmd := exec.Command(openssl, "x509", "-subject_hash", "-noout")
	cmd.Stdin = bytes.NewReader(pemData)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return 0, fmt.Errorf("openssl: %v: %s", err, stderr.Bytes())
	}
	v, err := strconv.ParseUint(strings.TrimSpace(string(out)), 16, 32)
	if err != nil {
		return 0, fmt.Errorf("openssl output %q: %v", out, err)
	}
	return uint32(v), nil
}

func oddSubjects() map[string][]byte {
	bmp := func(s string) []byte {
		var b []byte
		for _, r := range s {
			b = append(b, byte(r>>8), byte(r))
		}
		return b
	}
	ucs4 := func(s string) []byte {
		var b []byte
		for _, r := range s {
			b = append(b, byte(r>>24), byte(r>>16), byte(r>>8), byte(r))
		}
		return b
	}
	// No VisibleString case: OpenSSL's X509_NAME_ENTRY (ASN1_PRINTABLE) does
	// not accept one, so it cannot load such a certificate at all.
	return map[string][]byte{
		"empty":            rawName(),
		"mixed case":       rawName([]atv{{oidCN, tagUTF8String, []byte("My Mixed CASE Root")}}),
		"extra spaces":     rawName([]atv{{oidCN, tagUTF8String, []byte("  lots   of \t spaces\n here  ")}}),
		"printable":        rawName([]atv{{oidC, tagPrintableString, []byte("DE")}}, []atv{{oidCN, tagPrintableString, []byte("Printable  CA")}}),
		"ia5 dc":           rawName([]atv{{oidDC, tagIA5String, []byte("Example")}}, []atv{{oidDC, tagIA5String, []byte("COM")}}, []atv{{oidCN, tagUTF8String, []byte("DC CA")}}),
		"t61 latin1":       rawName([]atv{{oidCN, tagT61String, []byte("Caf\xe9 \xc9COLE")}}),
		"bmp":              rawName([]atv{{oidCN, tagBMPString, bmp("BMP Ünïcödé CA")}}),
		"universal":        rawName([]atv{{oidCN, tagUniversalString, ucs4("Universal 🚀 CA")}}),
		"non-ascii utf8":   rawName([]atv{{oidO, tagUTF8String, []byte("Żółć GmbH")}}, []atv{{oidCN, tagUTF8String, []byte("ÄÖÜ Root")}}),
		"multi-valued rdn": rawName([]atv{{oidCN, tagUTF8String, []byte("Zed")}, {oidO, tagUTF8String, []byte("Alpha Org")}, {oidOU, tagPrintableString, []byte("B")}}),
		"multi-valued same type": rawName([]atv{{oidOU, tagUTF8String, []byte("zz")}, {oidOU, tagUTF8String, []byte("A")}},
			[]atv{{oidCN, tagUTF8String, []byte("x")}}),
		"numeric kept":   rawName([]atv{{[]byte{0x55, 0x04, 0x05}, 0x12, []byte("12 34")}}, []atv{{oidCN, tagUTF8String, []byte("Numeric")}}),
		"only spaces":    rawName([]atv{{oidCN, tagUTF8String, []byte("   ")}}),
		"long value":     rawName([]atv{{oidCN, tagUTF8String, bytes.Repeat([]byte("Long "), 60)}}),
		"vertical space": rawName([]atv{{oidCN, tagUTF8String, []byte("a\v\fb\r\nC")}}),
	}
}

func TestSubjectHashOpenSSL(t *testing.T) {
	openssl, err := exec.LookPath("openssl")
	if err != nil {
		t.Skip("openssl not found; the comparison needs it")
	}
	t.Parallel()
	type sample struct {
		name     string
		pem, raw []byte
	}
	var certs []sample
	files, _ := filepath.Glob("/usr/share/ca-certificates/mozilla/*.crt")
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := pem.Decode(data)
		if b == nil {
			t.Fatalf("%s: no PEM", f)
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		certs = append(certs, sample{filepath.Base(f), data, c.RawSubject})
	}
	if len(files) < 100 {
		t.Logf("only %d host certificates found", len(files))
	}
	for name, raw := range oddSubjects() {
		ca := newCA(t, caOpt{rawSubject: raw})
		certs = append(certs, sample{name, ca.pem, raw})
	}
	checked := 0
	for _, s := range certs {
		got, err := SubjectHash(s.raw)
		if err != nil {
			t.Errorf("%s: %v", s.name, err)
			continue
		}
		want, err := opensslHash(t, openssl, s.pem)
		if err != nil {
			t.Errorf("%s: %v", s.name, err)
			continue
		}
		if got != want {
			t.Errorf("%s: hash %08x, openssl says %08x", s.name, got, want)
		}
		checked++
	}
	t.Logf("%d subject hashes equal openssl's (%d host certificates)", checked, len(files))
}

func TestSubjectHashErrors(t *testing.T) {
	for name, raw := range map[string][]byte{
		"nil":          nil,
		"not sequence": {0x31, 0x00},
		"truncated":    {0x30, 0x05, 0x31},
		"trailing":     append(rawName(), 0),
		"empty rdn":    {0x30, 0x02, 0x31, 0x00},
		"bad utf8":     rawName([]atv{{oidCN, tagUTF8String, []byte{0xff, 0xfe}}}),
		"odd bmp":      rawName([]atv{{oidCN, tagBMPString, []byte{0, 'a', 0}}}),
	} {
		if _, err := SubjectHash(raw); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func BenchmarkSubjectHash(b *testing.B) {
	raw := rawName([]atv{{oidC, tagPrintableString, []byte("US")}}, []atv{{oidO, tagUTF8String, []byte("Example Org")}}, []atv{{oidCN, tagUTF8String, []byte("Example Root CA")}})
	b.ReportAllocs()
	for b.Loop() {
		if _, err := SubjectHash(raw); err != nil {
			b.Fatal(err)
		}
	}
}

func FuzzSubjectHash(f *testing.F) {
	for _, raw := range oddSubjects() {
		f.Add(raw)
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		_, _ = SubjectHash(raw) // never panics
	})
}
