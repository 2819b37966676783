package faults

import (
	"bytes"
	"compress/gzip"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/buildkit-cacerts/buildkit-cacerts/internal/harness"
)

func newCAs(t *testing.T, n int) []*harness.CA {
	t.Helper()
	var out []*harness.CA
	for range n {
		c, err := harness.NewCA("faults scan test CA")
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, c)
	}
	return out
}

func gz(t *testing.T, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	w.Write(b)
	w.Close()
	return buf.Bytes()
}

// TestScanner: each form is found, in plain and gzip streams, across the
// reader's chunk boundary; another CA is not; and with 2000 needles the
// last one is still found.
func TestScanner(t *testing.T) {
	cas := newCAs(t, 3)
	s := NewScanner(cas[0].Cert, cas[1].Cert)
	pad := bytes.Repeat([]byte{'x'}, 1<<20-20) // the needle straddles the first 1 MiB chunk
	for _, tc := range []struct {
		name string
		data []byte
		want string // "" none, else the form
	}{
		{"pem", append(append([]byte("bundle\n"), cas[0].PEM...), "tail"...), "PEM"},
		{"der", append([]byte("jks...."), cas[1].Cert.Raw...), "DER"},
		{"pem gzip", gz(t, cas[1].PEM), "PEM"},
		{"straddling", append(append([]byte{}, pad...), cas[0].Cert.Raw...), "DER"},
		{"straddling pem gzip", gz(t, append(append([]byte{}, pad...), cas[0].PEM...)), "PEM"},
		{"other CA", append(cas[2].PEM, cas[2].Cert.Raw...), ""},
		{"pem of another CA re-wrapped", pem.EncodeToMemory(&pem.Block{Type: "TRUSTED CERTIFICATE", Bytes: cas[2].Cert.Raw}), ""},
		{"empty", nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			found, err := s.Data(tc.name, tc.data)
			if err != nil {
				t.Fatal(err)
			}
			var forms []string
			for _, f := range found {
				forms = append(forms, f.Form)
			}
			got := strings.Join(forms, ",")
			if tc.want == "" && got != "" || tc.want != "" && !strings.Contains(got, tc.want) {
				t.Errorf("found %q, want %q", got, tc.want)
			}
		})
	}
	t.Run("2000 CAs", func(t *testing.T) {
		many := newCAs(t, 2000)
		var certs []*x509.Certificate
		for _, c := range many {
			certs = append(certs, c.Cert)
		}
		big := NewScanner(certs...)
		found, err := big.Data("last", append([]byte("....."), many[1999].PEM...))
		if err != nil || len(found) != 1 {
			t.Fatalf("found %v, %v; want the last CA's PEM", found, err)
		}
	})
}

// TestScannerTreeMemo: a clean file is scanned once; a changed one again.
func TestScannerTreeMemo(t *testing.T) {
	cas := newCAs(t, 1)
	s := NewScanner(cas[0].Cert)
	dir := t.TempDir()
	p := filepath.Join(dir, "a", "f")
	os.MkdirAll(filepath.Dir(p), 0o755)
	os.WriteFile(p, []byte("clean"), 0o644)
	os.Symlink("/etc/passwd", filepath.Join(dir, "link"))
	if found, err := s.Tree(dir); err != nil || len(found) != 0 {
		t.Fatalf("clean tree: %v, %v", found, err)
	}
	before := s.Bytes
	s.Tree(dir)
	if s.Bytes != before {
		t.Errorf("a clean unchanged file was read again")
	}
	os.WriteFile(p, cas[0].PEM, 0o644)
	if found, err := s.Tree(dir); err != nil || len(found) != 1 {
		t.Fatalf("changed file: %v, %v; want one finding", found, err)
	}
}
