package certs

import (
	"bytes"
	"crypto/x509"
	"errors"
	"math/rand/v2"
	"testing"
)

func randomBytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// TestFindStripDER: raw DER anywhere. Seen failing ("one byte changed") when
// scanDER trusts the length and prefix without comparing every byte.
func TestFindStripDER(t *testing.T) {
	ours, second, other := testCA(t, "Our CA"), testCA(t, "Our second CA"), testCA(t, "Other CA")
	set := setOf(ours, second)
	noise := randomBytes(1, 4096)
	tests := []struct {
		name     string
		in       []byte
		offsets  []int  // DER hits
		stripped []byte // nil: Strip must fail with ErrCannotStrip
	}{
		{"alone", ours.Raw, []int{0}, []byte{}},
		{"alone with newline", cat(ours.Raw, []byte("\n")), []int{0}, []byte{}},
		{"both of ours", cat(ours.Raw, second.Raw), []int{0, len(ours.Raw)}, nil},
		{"inside random bytes", cat(noise, ours.Raw, noise), []int{len(noise)}, nil},
		{"at offset 0", cat(ours.Raw, noise), []int{0}, nil},
		{"at the end", cat(noise, ours.Raw), []int{len(noise)}, nil},
		{"truncated", cat(noise, ours.Raw[:len(ours.Raw)-1]), nil, nil},
		{"truncated alone", ours.Raw[:len(ours.Raw)-1], nil, nil},
		{"one byte changed", cat(ours.Raw[:100], []byte{ours.Raw[100] ^ 1}, ours.Raw[101:]), nil, nil},
		{"other certificate", other.Raw, nil, nil},
		{"next to another certificate", cat(other.Raw, ours.Raw), []int{len(other.Raw)}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hits := set.Find(tt.in)
			var offs []int
			for _, h := range hits {
				if h.Format != FormatDER {
					t.Errorf("hit %+v is not DER", h)
				}
				offs = append(offs, h.Offset)
			}
			if !equalInts(offs, tt.offsets) {
				t.Fatalf("hits at %v, want %v", offs, tt.offsets)
			}
			out, n, err := set.Strip(tt.in)
			switch {
			case len(tt.offsets) == 0:
				if err != nil || n != 0 || !bytes.Equal(out, tt.in) {
					t.Fatalf("Strip without hits = %d, %v; want the data unchanged", n, err)
				}
			case tt.stripped == nil:
				var se *StripError
				if !errors.Is(err, ErrCannotStrip) || !errors.As(err, &se) || se.Format != FormatDER {
					t.Fatalf("Strip = %d, %v; want a DER ErrCannotStrip", n, err)
				}
				t.Log(err)
			default:
				if err != nil || n != len(tt.offsets) || !bytes.Equal(out, tt.stripped) {
					t.Fatalf("Strip = %q, %d, %v; want %q", out, n, err, tt.stripped)
				}
			}
		})
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestFindDoesNotDependOnSetOrder: every certificate of a large set is found,
// by its own index.
func TestFindLargeSet(t *testing.T) {
	var cs []*x509.Certificate
	for i := range 50 {
		cs = append(cs, testCA(t, "CA "+string(rune('A'+i%26))+string(rune('a'+i/26))))
	}
	set := NewSet(cs)
	if set.Len() != 50 {
		t.Fatalf("Len = %d", set.Len())
	}
	dup := NewSet(append(cs, cs[0], nil))
	if dup.Len() != 50 {
		t.Fatalf("duplicates kept: Len = %d", dup.Len())
	}
	for i, c := range set.Certs() {
		for _, in := range [][]byte{c.Raw, []byte(pem64(c))} {
			h := set.Find(in)
			if len(h) != 1 || h[0].Index != i {
				t.Fatalf("cert %d: hits %+v", i, h)
			}
		}
	}
}
