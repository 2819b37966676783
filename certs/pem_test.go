package certs

import (
	"bytes"
	"errors"
	"testing"
)

// TestStripPEM: cut blocks byte for byte. Seen failing when nextPEM ends a
// block before its END line's line break (17 cases fail).
func TestStripPEM(t *testing.T) {
	ours := testCA(t, "Our CA")
	other := testCA(t, "Other CA")
	third := testCA(t, "Third CA")
	set := setOf(ours)
	o, x, y := pem64(ours), pem64(other), pem64(third)
	// TRUSTED CERTIFICATE: the DER followed by OpenSSL's X509_CERT_AUX
	// (here: trust for serverAuth and an alias).
	aux := []byte{0x30, 0x13, 0x30, 0x0a, 0x06, 0x08, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x01, 0x0c, 0x05, 'o', 'u', 'r', 'c', 'a'}
	trusted := pemOf(append(append([]byte(nil), ours.Raw...), aux...), "TRUSTED CERTIFICATE", 64, "\n")

	tests := []struct {
		name    string
		in      string
		want    string
		removed int
	}{
		{"only ours", o, "", 1},
		{"ours between others", x + o + y, x + y, 1},
		{"ours first", o + x, x, 1},
		{"ours last", x + o, x, 1},
		{"76 columns", x + pemOf(ours.Raw, "CERTIFICATE", 76, "\n") + y, x + y, 1},
		{"one long line", x + pemOf(ours.Raw, "CERTIFICATE", 1<<20, "\n"), x, 1},
		{"CRLF", pemOf(other.Raw, "CERTIFICATE", 64, "\r\n") + pemOf(ours.Raw, "CERTIFICATE", 64, "\r\n") + "tail\r\n",
			pemOf(other.Raw, "CERTIFICATE", 64, "\r\n") + "tail\r\n", 1},
		{"trusted certificate", x + trusted + y, x + y, 1},
		{"x509 certificate label", x + pemOf(ours.Raw, "X509 CERTIFICATE", 64, "\n"), x, 1},
		{"rfc1421 headers", pemOf(ours.Raw, "CERTIFICATE", 64, "\n", "Proc-Type: 4,ENC", "Comment: ours") + x, x, 1},
		{"comments between", "# Mozilla bundle\n\n# Other\n" + x + "\n# Ours\n" + o + "\n# Third\n" + y,
			"# Mozilla bundle\n\n# Other\n" + x + "\n# Ours\n" + "\n# Third\n" + y, 1},
		{"ours twice", o + x + o, x, 2},
		{"adjacent ours", o + o + o, "", 3},
		{"no trailing newline", x + o[:len(o)-1], x, 1},
		{"no trailing newline after other", o + x[:len(x)-1], x[:len(x)-1], 1},
		{"trailing spaces after END", x + o[:len(o)-1] + " \t\nafter", x + "after", 1},
		{"indented BEGIN keeps the indent", x + "  " + o, x + "  ", 1},
		{"prefix on the BEGIN line", "ca: " + o + "next: 1\n", "ca: next: 1\n", 1},
		{"not ours", x + y, x + y, 0},
		{"broken base64 is not a block", x + "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n", x + "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n", 0},
		{"mismatched END label", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END X509 CRL-----\n" + o, "-----BEGIN CERTIFICATE-----\nAAAA\n-----END X509 CRL-----\n", 1},
		{"BEGIN without END then ours", "-----BEGIN CERTIFICATE-----\nAAAA\n" + o, "-----BEGIN CERTIFICATE-----\nAAAA\n", 1},
		{"empty", "", "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := []byte(tt.in)
			hits := set.Find(in)
			if len(hits) != tt.removed {
				t.Fatalf("Find: %d hits %+v, want %d", len(hits), hits, tt.removed)
			}
			for _, h := range hits {
				if h.Format != FormatPEM || h.Index != 0 {
					t.Errorf("hit %+v, want PEM of index 0", h)
				}
			}
			out, n, err := set.Strip(in)
			if err != nil {
				t.Fatalf("Strip: %v", err)
			}
			if n != tt.removed || !bytes.Equal(out, []byte(tt.want)) {
				t.Fatalf("Strip removed %d, want %d; got\n%q\nwant\n%q", n, tt.removed, out, tt.want)
			}
			if h := set.Find(out); len(h) != 0 {
				t.Fatalf("Find after Strip: %+v", h)
			}
		})
	}
}

// TestStripPEMInsideOtherBlock: our DER inside another PEM block type (here
// a fake PKCS7 whose content is two certificates) is found but cannot be cut.
func TestStripPEMInsideOtherBlock(t *testing.T) {
	ours, other := testCA(t, "Our CA"), testCA(t, "Other CA")
	set := setOf(ours)
	in := []byte(pem64(other) + pemOf(append(append([]byte(nil), other.Raw...), ours.Raw...), "PKCS7", 64, "\n"))
	hits := set.Find(in)
	if len(hits) != 1 || hits[0].Format != FormatPEM {
		t.Fatalf("Find = %+v, want one PEM hit", hits)
	}
	_, _, err := set.Strip(in)
	var se *StripError
	if !errors.Is(err, ErrCannotStrip) || !errors.As(err, &se) || se.Format != FormatPEM {
		t.Fatalf("Strip error = %v, want a PEM StripError", err)
	}
	t.Log(err)
}

// TestNextPEMLinear: a file of BEGIN lines without END lines is scanned in
// linear time (encoding/pem would search for an END line from each).
func TestNextPEMLinear(t *testing.T) {
	set := setOf(testCA(t, "Our CA"))
	in := bytes.Repeat([]byte("-----BEGIN CERTIFICATE-----\nAAAA\n"), 200_000) // 6.6 MB
	if h := set.Find(in); len(h) != 0 {
		t.Fatalf("hits %+v", h)
	}
}

// TestStripPEMCraftedNesting: our block planted inside the body of another
// copy of it; cutting the inner block joins the outer text into a block of
// ours, which a second round cuts. (With one round only, Strip fails: its
// final Find check sees the joined block.)
func TestStripPEMCraftedNesting(t *testing.T) {
	set := setOf(testCA(t, "Our CA"))
	o := pem64(set.Certs()[0])
	in := []byte(o[:len(o)-26] + o + o[len(o)-26:])
	if h := set.Find(in); len(h) != 1 {
		t.Fatalf("Find = %+v, want the inner block", h)
	}
	out, n, err := set.Strip(in)
	if err != nil || n != 2 || len(out) != 0 {
		t.Fatalf("Strip = %q, %d, %v; want both blocks removed", out, n, err)
	}
}
