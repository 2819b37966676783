package certs

import (
	"bytes"
	"encoding/pem"
	"testing"
)

func TestAppendRemovePEM(t *testing.T) {
	a := []byte(pem64(testCA(t, "A")))
	b := []byte(pem64(testCA(t, "B")))
	theirs := []byte(pem64(testCA(t, "Theirs")))
	tests := []struct {
		name   string
		bundle []byte
		edit   func(appended []byte) []byte // the process's change, nil: none
		want   func(orig []byte) []byte
	}{
		{name: "empty", bundle: nil},
		{name: "ends with newline", bundle: append([]byte(nil), theirs...)},
		{name: "no trailing newline", bundle: theirs[:len(theirs)-1]},
		{name: "junk", bundle: []byte("# junk\x00\xff")},
		{
			name: "process appended after ours", bundle: []byte("X\n"),
			edit: func(s []byte) []byte { return append(append([]byte(nil), s...), theirs...) },
			want: func(o []byte) []byte { return append(append([]byte(nil), o...), theirs...) },
		},
		{
			name: "tool regenerated with ours in the middle", bundle: []byte("X\n"),
			edit: func([]byte) []byte { return bytes.Join([][]byte{[]byte("X\n"), a, theirs, b}, nil) },
			want: func(o []byte) []byte { return append(append([]byte(nil), o...), theirs...) },
		},
		{
			name: "tool regenerated with ours together in the middle", bundle: []byte("X\n"),
			edit: func([]byte) []byte { return bytes.Join([][]byte{[]byte("X\n"), a, b, theirs}, nil) },
			want: func(o []byte) []byte { return append(append([]byte(nil), o...), theirs...) },
		},
		{
			name: "ours together, and a copy of one after", bundle: []byte("X\n"),
			edit: func([]byte) []byte { return bytes.Join([][]byte{[]byte("X\n"), a, b, theirs, b}, nil) },
			want: func(o []byte) []byte { return bytes.Join([][]byte{o, theirs, b}, nil) },
		},
		{
			name: "process removed one of ours", bundle: []byte("X\n"),
			edit: func([]byte) []byte { return append([]byte("X\n"), b...) },
			want: func(o []byte) []byte { return o },
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, add := AppendPEM(tc.bundle, [][]byte{a, b[:len(b)-1]})
			if !bytes.HasSuffix(out, b) || !bytes.Contains(out, a) {
				t.Fatalf("blocks not appended:\n%s", out)
			}
			if lastLineStart(out, a) < 0 || lastLineStart(out, b) < 0 {
				t.Error("appended blocks do not start lines")
			}
			cur, want := out, tc.bundle
			if tc.edit != nil {
				cur, want = tc.edit(out), tc.want(tc.bundle)
			}
			got, _ := RemovePEM(cur, add)
			if !bytes.Equal(got, want) {
				t.Errorf("after remove:\n%q\nwant\n%q", got, want)
			}
		})
	}
}

func TestIsPEMBundle(t *testing.T) {
	ca := []byte(pem64(testCA(t, "Bundle CA")))
	key := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte{0x30, 0x03, 0x02, 0x01, 0x00}})
	for name, tc := range map[string]struct {
		data []byte
		want bool
	}{
		"cert":    {ca, true},
		"comment": {append([]byte("# Corp\n"), ca...), true},
		"key":     {append(append([]byte(nil), ca...), key...), false},
		"empty":   {nil, false},
		"junk":    {[]byte("root:x:0:0::/root:/bin/sh\n"), false},
		"nul":     {append(append([]byte(nil), ca...), 0), false},
	} {
		if got := IsPEMBundle(tc.data); got != tc.want {
			t.Errorf("%s: %v, want %v", name, got, tc.want)
		}
	}
}

// FuzzBundleEdit checks that removing what AppendPEM added gives back the
// original bytes, whatever the bundle and the blocks hold, and that edits the
// process makes after ours survive.
func FuzzBundleEdit(f *testing.F) {
	ca := []byte(pem64(testCA(f, "Fuzz CA")))
	f.Add([]byte(""), ca, []byte("-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----"), []byte{})
	f.Add(ca, ca, ca[:20], []byte("theirs\n"))
	f.Add([]byte("junk\x00no newline"), []byte("\n\n"), []byte("x"), ca)
	f.Fuzz(func(t *testing.T, orig, blk1, blk2, theirs []byte) {
		blocks := [][]byte{blk1, blk2}
		out, add := AppendPEM(orig, blocks)
		if !bytes.HasPrefix(out, orig) {
			t.Fatal("append changed the original bytes")
		}
		got, missing := RemovePEM(out, add)
		if !bytes.Equal(got, orig) || missing != 0 {
			t.Fatalf("remove(append(orig)) != orig (missing %d)\norig %q\ngot  %q", missing, orig, got)
		}
		// The process appends its own lines after ours: they are kept, ours go.
		if len(theirs) == 0 || len(orig) == 0 || orig[len(orig)-1] != '\n' {
			return
		}
		for _, b := range add.Blocks {
			if len(b) == 0 || bytes.Contains(theirs, b) || bytes.Contains(orig, b) || bytes.Contains(b, theirs) {
				return
			}
		}
		if bytes.Equal(add.Blocks[0], add.Blocks[1]) {
			return
		}
		edited := append(append([]byte(nil), out...), theirs...)
		got, _ = RemovePEM(edited, add)
		want := append(append([]byte(nil), orig...), theirs...)
		if !bytes.Equal(got, want) {
			t.Fatalf("their append lost or ours kept\nwant %q\ngot  %q", want, got)
		}
	})
}
