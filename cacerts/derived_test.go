package cacerts

import (
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"
)

// TestDerivedFactsEdit: lines naming our files or holding a digest of a
// file we created or of our CA go; a digest of a file we changed becomes
// its base's, written the same way; everything else, and lines the base
// file has, stay.
func TestDerivedFactsEdit(t *testing.T) {
	base, ours := []byte("image bundle\n"), []byte("image bundle\nour CA\n")
	anchor := []byte("our CA\n")
	bundle := &entry{path: "/etc/ssl/certs/ca-certificates.crt", base: state{exists: true, mode: 0o644, kept: true, data: base}}
	link := &entry{path: "/etc/ssl/certs/buildkit-corp.pem"}
	crt := &entry{path: "/usr/local/share/ca-certificates/buildkit-corp.crt"}
	j := &Journal{entries: []*entry{bundle, link, crt}}
	j.noteWrote(bundle, ours)
	j.noteWrote(crt, anchor)
	d := j.derived()
	if d == nil {
		t.Fatal("no derived facts")
	}
	hexOf := func(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }
	md := func(b []byte) string { s := md5.Sum(b); return hex.EncodeToString(s[:]) }
	colon := func(h string) string { return string(formatLike([]byte("AB:CD"), h)) }
	in := strings.Join([]string{
		hexOf(base) + " old-line-the-image-had\n",
		"Adding debian:buildkit-corp.pem\n",
		hexOf(anchor) + " x.pem\n",
		md(anchor) + "  /usr/local/share/ca-certificates/buildkit-corp.crt\n",
		hexOf(ours) + " ca-certificates.crt\n",
		"sha256:" + strings.ToUpper(hexOf(ours)) + "\n",
		"SHA256 Fingerprint=" + colon(hexOf(ours)) + "\n",
		"buildkit-corporate.pem is not ours; neither is xbuildkit-corp.pem\n",
		hexOf(ours) + "0 is longer than a digest\n",
		"no newline at the end " + hexOf(anchor),
	}, "")
	keep := map[string]bool{hexOf(base) + " old-line-the-image-had\n": true}
	out, n := d.edit([]byte(in), keep)
	want := strings.Join([]string{
		hexOf(base) + " old-line-the-image-had\n",
		hexOf(base) + " ca-certificates.crt\n",
		"sha256:" + strings.ToUpper(hexOf(base)) + "\n",
		"SHA256 Fingerprint=" + colon(hexOf(base)) + "\n",
		"buildkit-corporate.pem is not ours; neither is xbuildkit-corp.pem\n",
		hexOf(ours) + "0 is longer than a digest\n",
	}, "")
	if string(out) != want {
		t.Errorf("edit:\n%s\nwant:\n%s", out, want)
	}
	if n != 7 {
		t.Errorf("changed %d lines, want 7", n)
	}
	if !d.in([]byte(in)) {
		t.Error("in: no fact found in the input")
	}
	if d.in([]byte(want)) {
		t.Error("in: a fact found in the edited text (only the image's lines are left)")
	}
	if d.in([]byte("nothing of ours here " + hexOf([]byte("other")) + "\n")) {
		t.Error("in: found a fact in a line without one")
	}
}

// TestDerivedFactsCertFingerprints: our CA's SHA-1 fingerprint, as keytool
// prints it, drops its line.
func TestDerivedFactsCertFingerprints(t *testing.T) {
	ca := newCA(t, caOpt{cn: "Derived Root"})
	set := testSet(t, ca)
	j := &Journal{installedCerts: set.Certs}
	d := j.derived()
	c := set.Certs[0]
	fp := string(formatLike([]byte("AB:CD"), hex.EncodeToString(c.SHA256[:])))
	out, n := d.edit([]byte("Certificate fingerprint (SHA-256): "+fp+"\nkept\n"), nil)
	if string(out) != "kept\n" || n != 1 {
		t.Errorf("edit = %q, %d", out, n)
	}
}

func TestHexToken(t *testing.T) {
	h := strings.Repeat("ab", 32)
	for _, c := range []struct {
		in   string
		end  int
		norm string
	}{
		{h, 64, h},
		{h + "x", 64, h},
		{strings.ToUpper(h[:40]), 40, h[:40]},
		{h[:30], 30, ""},
		{"AB:CD:EF", 8, ""},
		{string(formatLike([]byte("A:"), h[:40])), 59, h[:40]},
		{"ab:cd:", 5, ""},
	} {
		end, b := hexToken([]byte(c.in), 0, nil)
		if norm := string(b); end != c.end || norm != c.norm {
			t.Errorf("hexToken(%q) = %d, %q; want %d, %q", c.in, end, norm, c.end, c.norm)
		}
	}
}

// BenchmarkDerivedIn: the derived-facts search over text like apt's
// package lists (`apt-get update` writes tens of MB of it): a SHA256 and an
// MD5 per stanza, names and prose.
func BenchmarkDerivedIn(b *testing.B) {
	bundle := &entry{path: "/etc/ssl/certs/ca-certificates.crt", base: state{exists: true, kept: true, data: []byte("x")}}
	j := &Journal{entries: []*entry{bundle, {path: "/etc/ssl/certs/buildkit-corp.pem"}}}
	j.noteWrote(bundle, make([]byte, 200<<10))
	d := j.derived()
	var text []byte
	for i := 0; len(text) < 8<<20; i++ {
		s := sha256.Sum256([]byte{byte(i), byte(i >> 8), byte(i >> 16)})
		m := md5.Sum(s[:])
		text = append(text, "Package: libexample"+strings.Repeat("x", i%7)+"\nVersion: 1.2.3-4+deb12u1\nMaintainer: Debian Example <buildkit-team@lists.example>\nSHA256: "+hex.EncodeToString(s[:])+"\nMD5sum: "+hex.EncodeToString(m[:])+"\nDescription: an example package of the build\n\n"...)
	}
	b.SetBytes(int64(len(text)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if d.in(text) {
			b.Fatal("found a fact")
		}
	}
}

// TestNoteWroteKeepsBounded: what an exec keeps of the large files we
// wrote, for the sweep's lazy digests, stays under maxWroteLarge however
// many we write (certifi bundles are the image's choice); past it the
// digests are taken at once, so none is lost.
func TestNoteWroteKeepsBounded(t *testing.T) {
	j := &Journal{}
	var all [][]byte
	for i := 0; i < 5; i++ {
		data := make([]byte, 6<<20)
		data[0] = byte(i)
		all = append(all, data)
		j.noteWrote(&entry{path: "/certifi/" + string(rune('a'+i))}, data)
	}
	kept := 0
	for _, b := range j.wroteLarge {
		kept += len(b.data)
	}
	// A literal, not the constant: lifting the cap must fail here.
	if kept > 16<<20 || kept != j.wroteLargeBytes {
		t.Fatalf("kept %d bytes of 30 MiB written (counted %d), want at most 16 MiB", kept, j.wroteLargeBytes)
	}
	d := j.derived()
	for i, data := range all {
		m := md5.Sum(data)
		if _, ok := d.lookup([]byte(hex.EncodeToString(m[:]))); !ok {
			t.Errorf("file %d: its MD5 is not a derived fact", i)
		}
	}
}
