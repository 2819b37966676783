package certs

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"testing"
)

// TestSubjectHashRehashLinks checks SubjectHash against the names `openssl
// rehash` (update-ca-certificates) gave the machine's own trust store: every
// /etc/ssl/certs/<hash>.N link must be named after the subject hash of the
// certificate it points to.
func TestSubjectHashRehashLinks(t *testing.T) {
	const dir = "/etc/ssl/certs"
	names, err := filepath.Glob(filepath.Join(dir, "*.[0-9]"))
	if err != nil || len(names) == 0 {
		t.Skipf("no <hash>.N links in %s", dir)
	}
	re := regexp.MustCompile(`^([0-9a-f]{8})\.[0-9]+$`)
	checked := 0
	for _, name := range names {
		m := re.FindStringSubmatch(filepath.Base(name))
		if m == nil {
			continue
		}
		data, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := pem.Decode(data)
		if b == nil {
			continue // a CRL link (<hash>.rN) or not PEM
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			continue
		}
		h, err := SubjectHash(c)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got := fmt.Sprintf("%08x", h); got != m[1] {
			t.Errorf("%s: SubjectHash = %s", name, got)
		}
		checked++
	}
	t.Logf("%d links checked", checked)
	if _, err := SubjectHash(nil); err == nil {
		t.Error("SubjectHash(nil) did not fail")
	}
}
