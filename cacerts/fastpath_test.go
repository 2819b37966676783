package cacerts

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/buildkit-cacerts/buildkit-cacerts/internal/treespec"
)

func TestFastPathApplyRevert(t *testing.T) {
	host := hostCerts(t, 12)
	root := filepath.Join(t.TempDir(), "root")
	treespec.Build(t, root, debianSpecs(t, host)...)
	before := snap(t, root)
	origBundle, _ := os.ReadFile(filepath.Join(root, "etc/ssl/certs/ca-certificates.crt"))

	cas := genCAs(t, 3)
	set := testSet(t, cas...)
	fsys := openRoot(t, root)
	d := detect(t, fsys)
	p, err := NewPlan(context.Background(), fsys, d, set, Exec{}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if p.Method != MethodFast {
		t.Fatalf("method %s (%s), want fast", p.Method, p.Reason)
	}
	j, err := p.Apply(context.Background(), fsys)
	if err != nil {
		t.Fatal(err)
	}
	bundle, _ := os.ReadFile(filepath.Join(root, "etc/ssl/certs/ca-certificates.crt"))
	want := append([]byte(nil), origBundle...)
	for _, c := range set.Certs { // names sort as ca000..ca002
		want = append(want, c.PEM...)
	}
	if !bytes.Equal(bundle, want) {
		t.Errorf("bundle is not the original plus our CAs in anchor order")
	}
	for _, c := range set.Certs {
		anchor := "/usr/local/share/ca-certificates/" + c.Name + ".crt"
		if b, err := os.ReadFile(filepath.Join(root, anchor)); err != nil || !bytes.Equal(b, c.PEM) {
			t.Errorf("anchor %s: %v", anchor, err)
		}
		if tg, err := os.Readlink(filepath.Join(root, "etc/ssl/certs", c.Name+".pem")); err != nil || tg != anchor {
			t.Errorf(".pem link: %q %v", tg, err)
		}
		hl := filepath.Join(root, "etc/ssl/certs", hex8(c.SubjectHash)+".0")
		if tg, err := os.Readlink(hl); err != nil || tg != c.Name+".pem" {
			t.Errorf("hash link %s: %q %v", hl, tg, err)
		}
	}
	fi, _ := os.Stat(filepath.Join(root, "etc/ssl/certs/ca-certificates.crt"))
	if fi.Mode().Perm() != 0o644 {
		t.Errorf("bundle mode %v", fi.Mode())
	}

	fsys2 := openRoot(t, root) // revert runs on a fresh view, as in the executor
	if err := j.Revert(context.Background(), fsys2); err != nil {
		t.Fatal(err)
	}
	assertSame(t, "tree after revert", before, snap(t, root))
}

func hex8(h uint32) string {
	const digits = "0123456789abcdef"
	b := make([]byte, 8)
	for i := 7; i >= 0; i-- {
		b[i] = digits[h&0xf]
		h >>= 4
	}
	return string(b)
}

func TestFastPathHashCollisions(t *testing.T) {
	host := hostCerts(t, 3)
	// Our CA shares its subject with... itself twice (two keys, one name),
	// and a third collides with nothing.
	same := rawName([]atv{{oidCN, tagUTF8String, []byte("Collision Root")}})
	a := newCA(t, caOpt{rawSubject: same})
	b := newCA(t, caOpt{rawSubject: same})
	c := newCA(t, caOpt{cn: "Lonely Root"})
	root := filepath.Join(t.TempDir(), "root")
	specs := debianSpecs(t, host)
	// An existing cert in the same bucket, already linked as .0.
	existing := newCA(t, caOpt{rawSubject: same})
	h, _ := SubjectHash(same)
	specs = append(specs,
		"file usr/share/ca-certificates/mozilla/Existing.crt "+quote(existing.pem),
		"symlink etc/ssl/certs/Existing.pem -> /usr/share/ca-certificates/mozilla/Existing.crt",
		"symlink etc/ssl/certs/"+hex8(h)+".0 -> Existing.pem",
	)
	treespec.Build(t, root, specs...)
	before := snap(t, root)
	set := testSet(t, a, b, c)
	fsys := openRoot(t, root)
	j, err := Install(context.Background(), fsys, detect(t, fsys), set, Exec{}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if j.Method() != MethodFast {
		t.Fatalf("method %s", j.Method())
	}
	for id, want := range []string{"Existing.pem", set.Certs[0].Name + ".pem", set.Certs[1].Name + ".pem"} {
		got, err := os.Readlink(filepath.Join(root, "etc/ssl/certs", hex8(h)+"."+string(rune('0'+id))))
		if err != nil || got != want {
			t.Errorf("%s.%d -> %q (%v), want %q", hex8(h), id, got, err, want)
		}
	}
	if err := j.Revert(context.Background(), openRoot(t, root)); err != nil {
		t.Fatal(err)
	}
	assertSame(t, "tree after revert", before, snap(t, root))
}

func quote(b []byte) string { return strings.ReplaceAll(string(mustQuote(b)), "\n", `\n`) }

func mustQuote(b []byte) string {
	var s strings.Builder
	s.WriteByte('"')
	for _, c := range string(b) {
		switch c {
		case '"':
			s.WriteString(`\"`)
		case '\\':
			s.WriteString(`\\`)
		default:
			s.WriteRune(c)
		}
	}
	s.WriteByte('"')
	return s.String()
}

func TestFastPathRefusals(t *testing.T) {
	host := hostCerts(t, 2)
	set := testSet(t, genCAs(t, 1)...)
	for name, extra := range map[string][]string{
		"hook":                {"file etc/ca-certificates/update.d/jks-keystore x mode=0755"},
		"empty conf":          {"file etc/ca-certificates.conf \"\""},
		"anchor subdirectory": {"dir usr/local/share/ca-certificates/sub"},
		"name taken":          {"file usr/local/share/ca-certificates/" + set.Certs[0].Name + ".crt x"},
		"no tool":             {"file usr/sbin/update-ca-certificates x mode=0644"},
		"no sh":               {"file bin/sh x mode=0644"},
		"bundle is a link":    {"symlink etc/ssl/certs/ca-certificates.crt -> /etc/ssl/other.crt", "file etc/ssl/other.crt x"},
		"certs is a link":     {"symlink etc/ssl/certs -> /usr/lib/ssl/certs"},
	} {
		t.Run(name, func(t *testing.T) {
			root := filepath.Join(t.TempDir(), "root")
			specs := debianSpecs(t, host)
			drop := map[string]string{"certs is a link": " etc/ssl/certs/", "bundle is a link": " etc/ssl/certs/ca-certificates.crt "}[name]
			if drop != "" {
				var kept []string
				for _, s := range specs {
					if !strings.Contains(s, drop) {
						kept = append(kept, s)
					}
				}
				specs = kept
			}
			treespec.Build(t, root, append(specs, extra...)...)
			fsys := openRoot(t, root)
			p, err := NewPlan(context.Background(), fsys, detect(t, fsys), set, Exec{}, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if p.Method == MethodFast {
				t.Errorf("fast path chosen for %s", name)
			}
		})
	}
}

func TestFastPathLocalAnchorsOrder(t *testing.T) {
	host := hostCerts(t, 2)
	mine := newCA(t, caOpt{cn: "Mine"})
	theirsA := newCA(t, caOpt{cn: "A"}) // "a-first.crt" sorts before "buildkit-..."
	theirsZ := newCA(t, caOpt{cn: "Z"}) // "zz-last.crt" sorts after
	specs := debianSpecs(t, host)
	// The image already ran update-ca-certificates with two local anchors.
	for i, s := range specs {
		if strings.HasPrefix(s, "file etc/ssl/certs/ca-certificates.crt ") {
			var b bytes.Buffer
			for _, n := range sortedKeys(host) {
				b.Write(withNewline(host[n]))
			}
			b.Write(theirsA.pem)
			b.Write(theirsZ.pem[:len(theirsZ.pem)-1]) // no final newline in the anchor
			b.WriteByte('\n')
			specs[i] = "file etc/ssl/certs/ca-certificates.crt " + quote(b.Bytes())
		}
	}
	specs = append(specs,
		"file usr/local/share/ca-certificates/a-first.crt "+quote(theirsA.pem),
		"file usr/local/share/ca-certificates/zz-last.crt "+quote(theirsZ.pem[:len(theirsZ.pem)-1]),
	)
	root := filepath.Join(t.TempDir(), "root")
	treespec.Build(t, root, specs...)
	before := snap(t, root)
	set := testSet(t, mine)
	fsys := openRoot(t, root)
	j, err := Install(context.Background(), fsys, detect(t, fsys), set, Exec{}, Options{Method: MethodFast})
	if err != nil {
		t.Fatal(err)
	}
	bundle, _ := os.ReadFile(filepath.Join(root, "etc/ssl/certs/ca-certificates.crt"))
	want := append(append(append([]byte(nil), theirsA.pem...), mine.pem...), theirsZ.pem...)
	if !bytes.HasSuffix(bundle, want) {
		t.Errorf("our anchor is not at its sorted place among the local anchors")
	}
	if err := j.Revert(context.Background(), openRoot(t, root)); err != nil {
		t.Fatal(err)
	}
	assertSame(t, "tree after revert", before, snap(t, root))
}

func sortedKeys(m map[string][]byte) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	for i := range out {
		for k := i + 1; k < len(out); k++ {
			if out[k] < out[i] {
				out[i], out[k] = out[k], out[i]
			}
		}
	}
	return out
}

// TestFastPathIgnoresWhatRunPartsSkips: update.d entries run-parts would not
// run (a name outside [A-Za-z0-9_-], or not executable) keep the fast path.
func TestFastPathIgnoresWhatRunPartsSkips(t *testing.T) {
	host := hostCerts(t, 2)
	set := testSet(t, genCAs(t, 1)...)
	root := filepath.Join(t.TempDir(), "root")
	treespec.Build(t, root, append(debianSpecs(t, host),
		"file etc/ca-certificates/update.d/jks-keystore.dpkg-old x mode=0755",
		"file etc/ca-certificates/update.d/README x mode=0644",
	)...)
	fsys := openRoot(t, root)
	p, err := NewPlan(context.Background(), fsys, detect(t, fsys), set, Exec{}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if p.Method != MethodFast {
		t.Errorf("method %s (%s), want fast", p.Method, p.Reason)
	}
}
