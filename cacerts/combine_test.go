package cacerts

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/buildkit-cacerts/buildkit-cacerts/internal/treespec"
)

const combinedAnchor = "usr/local/share/ca-certificates/" + CombinedName + ".crt"

// concatPEM is the combined anchor's expected content: every CA's PEM in the
// set's order.
func concatPEM(set *Set) []byte {
	var b []byte
	for _, c := range set.Certs {
		b = append(b, c.PEM...)
	}
	return b
}

// TestCombineThreshold: a set of exactly CombineAbove CAs keeps one anchor
// per CA, one more is combined; zero means DefaultCombineAbove, a negative
// value never combines, and a single CA is never combined.
func TestCombineThreshold(t *testing.T) {
	host := hostCerts(t, 4)
	cas := genCAs(t, DefaultCombineAbove+1)
	tests := []struct {
		above, n int
		combined bool
	}{
		{0, DefaultCombineAbove, false},
		{0, DefaultCombineAbove + 1, true},
		{5, 5, false},
		{5, 6, true},
		{1, 1, false},
		{1, 2, true},
		{-1, DefaultCombineAbove + 1, false},
		{-1, 2, false},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("above=%d/cas=%d", tc.above, tc.n), func(t *testing.T) {
			set := testSet(t, cas[:tc.n]...)
			root := filepath.Join(t.TempDir(), "root")
			treespec.Build(t, root, debianSpecs(t, host)...)
			before := snap(t, root)
			fsys := openRoot(t, root)
			opt := Options{Method: MethodFast, CombineAbove: tc.above}
			p, err := NewPlan(context.Background(), fsys, detect(t, fsys), set, Exec{}, opt)
			if err != nil {
				t.Fatal(err)
			}
			if p.combined != tc.combined {
				t.Fatalf("combined %v, want %v", p.combined, tc.combined)
			}
			j, err := p.Apply(context.Background(), fsys)
			if err != nil {
				t.Fatal(err)
			}
			ents, err := os.ReadDir(filepath.Join(root, "usr/local/share/ca-certificates"))
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, e := range ents {
				names = append(names, e.Name())
			}
			if tc.combined {
				if len(names) != 1 || names[0] != CombinedName+".crt" {
					t.Errorf("anchors %v, want only %s.crt", names, CombinedName)
				}
			} else if len(names) != tc.n {
				t.Errorf("anchors %v, want %d", names, tc.n)
			}
			if err := j.Revert(context.Background(), openRoot(t, root)); err != nil {
				t.Fatal(err)
			}
			assertSame(t, "tree after revert", before, snap(t, root))
		})
	}
}

// TestFastPathCombined: above the threshold the fast path adds exactly two
// entries — the combined anchor and its .pem link — and no hash link, and
// the bundle gains the anchor's content, as update-ca-certificates does with
// a multi-certificate anchor.
func TestFastPathCombined(t *testing.T) {
	host := hostCerts(t, 12)
	root := filepath.Join(t.TempDir(), "root")
	treespec.Build(t, root, debianSpecs(t, host)...)
	before := snap(t, root)
	bundlePath := filepath.Join(root, "etc/ssl/certs/ca-certificates.crt")
	origBundle := readFile(t, bundlePath)
	set := testSet(t, genCAs(t, 40)...)

	fsys := openRoot(t, root)
	j, err := Install(context.Background(), fsys, detect(t, fsys), set, Exec{}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if j.Method() != MethodFast {
		t.Fatalf("method %s", j.Method())
	}
	want := concatPEM(set)
	if got := readFile(t, filepath.Join(root, combinedAnchor)); !bytes.Equal(got, want) {
		t.Errorf("combined anchor is not the set's PEMs in order")
	}
	if got := readFile(t, bundlePath); !bytes.Equal(got, append(append([]byte(nil), origBundle...), want...)) {
		t.Errorf("bundle is not the original plus the combined anchor")
	}
	if tg, err := os.Readlink(filepath.Join(root, "etc/ssl/certs", CombinedName+".pem")); err != nil || tg != "/"+combinedAnchor {
		t.Errorf(".pem link: %q %v", tg, err)
	}
	var added []string
	for p := range snap(t, root) {
		if _, ok := before[p]; !ok {
			added = append(added, p)
		}
	}
	if len(added) != 2 {
		t.Errorf("added %v, want the anchor and its .pem link only", added)
	}
	if paths := j.Paths(); len(paths) > 6 {
		t.Errorf("journal changed %d paths: %v", len(paths), paths)
	}
	if err := j.Revert(context.Background(), openRoot(t, root)); err != nil {
		t.Fatal(err)
	}
	assertSame(t, "tree after revert", before, snap(t, root))
}

// TestFastPathCombinedNameTaken: the fast path refuses a root that already
// holds a file by the combined anchor's name, as it does for a per-CA name;
// never combining makes that name irrelevant.
func TestFastPathCombinedNameTaken(t *testing.T) {
	host := hostCerts(t, 2)
	set := testSet(t, genCAs(t, DefaultCombineAbove+1)...)
	root := filepath.Join(t.TempDir(), "root")
	treespec.Build(t, root, append(debianSpecs(t, host), "file "+combinedAnchor+" x")...)
	fsys := openRoot(t, root)
	p, err := NewPlan(context.Background(), fsys, detect(t, fsys), set, Exec{}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if p.Method == MethodFast {
		t.Errorf("fast path chosen with %s taken", combinedAnchor)
	}
	p, err = NewPlan(context.Background(), fsys, detect(t, fsys), set, Exec{}, Options{CombineAbove: -1})
	if err != nil {
		t.Fatal(err)
	}
	if p.Method != MethodFast || p.combined {
		t.Errorf("never combining: method %s (%s), combined %v; want fast, per CA", p.Method, p.Reason, p.combined)
	}
}

// nopRunner runs nothing.
type nopRunner struct{}

func (nopRunner) Run(context.Context, []string) ([]byte, error) { return nil, nil }

// TestCommandPathCombine: the command path combines too, except where a
// Debian hook would read one certificate per added file (ca-certificates-java).
func TestCommandPathCombine(t *testing.T) {
	host := hostCerts(t, 2)
	set := testSet(t, genCAs(t, DefaultCombineAbove+1)...)
	for _, tc := range []struct {
		name     string
		extra    []string
		combined bool
	}{
		{name: "no hook", combined: true},
		{name: "jks-keystore hook", extra: []string{"file etc/ca-certificates/update.d/jks-keystore x mode=0755"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := filepath.Join(t.TempDir(), "root")
			treespec.Build(t, root, append(debianSpecs(t, host), tc.extra...)...)
			before := snap(t, root)
			fsys := openRoot(t, root)
			p, err := NewPlan(context.Background(), fsys, detect(t, fsys), set, Exec{Runner: nopRunner{}}, Options{Method: MethodCommand})
			if err != nil {
				t.Fatal(err)
			}
			if p.combined != tc.combined {
				t.Fatalf("combined %v, want %v (%s)", p.combined, tc.combined, p.Reason)
			}
			if !tc.combined && !strings.Contains(p.Reason, "jks-keystore") {
				t.Errorf("reason %q does not name the hook", p.Reason)
			}
			j, err := p.Apply(context.Background(), fsys)
			if err != nil {
				t.Fatal(err)
			}
			_, err = os.Stat(filepath.Join(root, combinedAnchor))
			if got := err == nil; got != tc.combined {
				t.Errorf("combined anchor written: %v, want %v", got, tc.combined)
			}
			if err := j.Revert(context.Background(), openRoot(t, root)); err != nil {
				t.Fatal(err)
			}
			assertSame(t, "tree after revert", before, snap(t, root))
		})
	}
}

// TestProcessChangesWinCombined: with a combined anchor, revert takes all of
// our CAs out of a bundle the process rebuilt (where the tool copied the
// combined anchor verbatim, at its sorted place among the local anchors) and
// keeps the rest byte for byte.
func TestProcessChangesWinCombined(t *testing.T) {
	host := hostCerts(t, 6)
	set := testSet(t, genCAs(t, 30)...)
	theirs := newCA(t, caOpt{cn: "Theirs"})
	first := newCA(t, caOpt{cn: "First"})
	bundlePath := "etc/ssl/certs/ca-certificates.crt"
	addAnchor := func(t *testing.T, root, name string, pem []byte) {
		if err := os.WriteFile(filepath.Join(root, "usr/local/share/ca-certificates", name), pem, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name        string
		process     func(t *testing.T, root string)
		wantChanged []string
	}{
		{
			name:        "runs the update tool",
			process:     func(t *testing.T, root string) { fakeUpdate(t, root) },
			wantChanged: []string{bundlePath, "etc/ssl/certs"},
		},
		{
			// "a-first.crt" and "theirs.crt" sort around the combined
			// anchor: ours end up in the middle of the rebuilt bundle.
			name: "adds anchors around ours and runs the update tool",
			process: func(t *testing.T, root string) {
				addAnchor(t, root, "a-first.crt", first.pem)
				addAnchor(t, root, "theirs.crt", theirs.pem)
				fakeUpdate(t, root)
			},
			wantChanged: []string{bundlePath, "etc/ssl/certs", "usr/local/share/ca-certificates",
				"usr/local/share/ca-certificates/a-first.crt", "usr/local/share/ca-certificates/theirs.crt",
				"etc/ssl/certs/a-first.pem", "etc/ssl/certs/theirs.pem"},
		},
		{
			name: "appends to the bundle",
			process: func(t *testing.T, root string) {
				p := filepath.Join(root, bundlePath)
				replaceFile(t, p, append(readFile(t, p), theirs.pem...))
			},
			wantChanged: []string{bundlePath, "etc/ssl/certs"},
		},
		{
			name: "removes the ca-certificates package",
			process: func(t *testing.T, root string) {
				os.Remove(filepath.Join(root, "var/lib/dpkg/info/ca-certificates.md5sums"))
				os.Remove(filepath.Join(root, "usr/local/share/ca-certificates"))
			},
			wantChanged: []string{"var/lib/dpkg/info", "usr/local/share"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			checkProcessChangesWin(t, host, set, Options{}, tc.process, tc.wantChanged)
		})
	}
}
