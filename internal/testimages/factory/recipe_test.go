package factory

import (
	"archive/tar"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRecipes(t *testing.T) {
	rs := Recipes()
	want := []string{DebianBookwormMin, DebianBookwormTLS, DebianTrixieTLS, DebianBookwormJava, Busybox, ScratchGo, RootlessNonroot, DebianBookwormUidmap}
	for _, n := range want {
		r, ok := rs[n]
		if !ok || !r.IsImage() || r.Config == nil {
			t.Errorf("image %s: missing or not an image: %+v", n, r)
		}
	}
	if got := Images(); len(got) != len(want) {
		t.Errorf("Images() = %v", got)
	}
	// On-demand recipes are known by name but not in Images or Names.
	if r, ok := rs[DebianBookwormGoBuild]; !ok || !r.OnDemand || !r.IsImage() {
		t.Errorf("%s: %+v", DebianBookwormGoBuild, r)
	}
	for _, n := range Names() {
		if n == DebianBookwormGoBuild {
			t.Errorf("Names() includes the on-demand %s", n)
		}
	}
	for _, s := range []string{"bookworm", "trixie"} {
		if r, ok := rs[CACertsDebPrefix+s]; !ok || r.IsImage() || r.Suite != s {
			t.Errorf("deb artifact for %s: %+v", s, r)
		}
	}
	if rs[RootlessNonroot].Config.User != "1000:1000" {
		t.Errorf("rootless-nonroot user = %q", rs[RootlessNonroot].Config.User)
	}
	for _, p := range rs[DebianBookwormMin].Packages {
		if strings.Contains(p, "ca-certificates") {
			t.Errorf("bookworm-min includes %s", p)
		}
	}
	// Recipes must not carry a mirror: the machine's sources are read at run time.
	for n, r := range rs {
		for _, h := range r.Hooks {
			if strings.Contains(h, "://") {
				t.Errorf("%s: hook names a URI: %s", n, h)
			}
		}
	}
}

func TestHash(t *testing.T) {
	rs := Recipes()
	seen := map[string]string{}
	for n, r := range rs {
		h := Hash(r)
		if len(h) != 64 {
			t.Fatalf("%s: hash %q", n, h)
		}
		if h != Hash(rs[n]) {
			t.Errorf("%s: hash not stable", n)
		}
		if o, dup := seen[h]; dup {
			t.Errorf("%s and %s share hash %s", n, o, h)
		}
		seen[h] = n
	}
	base := rs[DebianBookwormTLS]
	h0 := Hash(base)
	change := map[string]func(*Recipe){
		"suite":    func(r *Recipe) { r.Suite = "trixie" },
		"package":  func(r *Recipe) { r.Packages = append(append([]string(nil), r.Packages...), "less") },
		"order":    func(r *Recipe) { p := append([]string(nil), r.Packages...); p[0], p[1] = p[1], p[0]; r.Packages = p },
		"hook":     func(r *Recipe) { r.Hooks = append(append([]string(nil), r.Hooks...), "true") },
		"variant":  func(r *Recipe) { r.Variant = "apt" },
		"epoch":    func(r *Recipe) { r.Epoch++ },
		"user":     func(r *Recipe) { c := *r.Config; c.User = "1"; r.Config = &c },
		"dpkgopts": func(r *Recipe) { r.DpkgOpts = nil },
	}
	for what, f := range change {
		r := base
		f(&r)
		if Hash(r) == h0 {
			t.Errorf("changing the %s does not change the hash", what)
		}
	}
	if Hash(base, "go=go1.26 src=a") == Hash(base, "go=go1.26 src=b") || Hash(base, "ab", "c") == Hash(base, "a", "bc") {
		t.Error("extra inputs are not hashed unambiguously")
	}
	if Hash(base) != h0 {
		t.Error("mutating copies changed the shared recipe")
	}
}

func TestHashTree(t *testing.T) {
	d := t.TempDir()
	os.WriteFile(filepath.Join(d, "main.go"), []byte("package main\n"), 0o644)
	h1, err := HashTree(d)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(d, "main.go"), []byte("package main\n\n"), 0o644)
	h2, _ := HashTree(d)
	os.Rename(filepath.Join(d, "main.go"), filepath.Join(d, "other.go"))
	h3, _ := HashTree(d)
	if h1 == h2 || h2 == h3 {
		t.Errorf("content or name changes not seen: %s %s %s", h1, h2, h3)
	}
	os.WriteFile(filepath.Join(d, "other_test.go"), []byte("package main\n"), 0o644)
	if h4, _ := HashTree(d); h4 != h3 {
		t.Error("a _test.go file changes the hash")
	}
	os.Symlink("other.go", filepath.Join(d, "link.go"))
	if _, err := HashTree(d); err == nil {
		t.Error("symlink in tree: no error")
	}
}

// The scratch-go key covers the tlsget sources of this checkout.
func TestGoInputs(t *testing.T) {
	b := New(Options{CacheDir: t.TempDir()})
	r, h, err := b.Key(ScratchGo)
	if err != nil {
		t.Skipf("no go tool or module root: %v", err)
	}
	if h == Hash(r) {
		t.Error("scratch-go hash ignores the Go sources")
	}
	root, _ := FindRepoRoot()
	if _, err := os.Stat(filepath.Join(root, r.GoPackage, "main.go")); err != nil {
		t.Errorf("tlsget source: %v", err)
	}
	if _, _, err := b.Key("no-such-image"); err == nil {
		t.Error("unknown name: no error")
	}
}

func TestWriteTarAndLookup(t *testing.T) {
	d := t.TempDir()
	out := filepath.Join(d, "x.tar")
	err := writeTar(out, []entry{
		{name: "bin/sh", link: "/bin/busybox"},
		{name: "bin", dir: true},
		{name: "bin/busybox", data: []byte("ELF"), mode: 0o755},
	}, Epoch)
	if err != nil {
		t.Fatal(err)
	}
	f, _ := os.Open(out)
	defer f.Close()
	tr := tar.NewReader(f)
	var names []string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.ModTime.Unix() != Epoch || h.Uid != 0 || h.Gid != 0 {
			t.Errorf("%s: mtime %v uid %d gid %d", h.Name, h.ModTime, h.Uid, h.Gid)
		}
		names = append(names, h.Name)
	}
	if got := strings.Join(names, " "); got != "./ ./bin/ ./bin/busybox ./bin/sh" {
		t.Errorf("entries = %s", got)
	}

	// Nothing cached in an empty cache; Prune of an empty cache removes nothing.
	b := New(Options{CacheDir: d})
	if _, ok, err := b.Lookup(DebianBookwormMin); ok || err != nil {
		t.Errorf("Lookup in empty cache: %v %v", ok, err)
	}
	os.MkdirAll(filepath.Join(d, DebianBookwormMin+"-0123456789abcdef"), 0o755)
	os.MkdirAll(filepath.Join(d, DebianBookwormMin+"-notahash"), 0o755)
	removed, err := b.Prune(DebianBookwormMin)
	if err != nil || len(removed) != 1 || filepath.Base(removed[0]) != DebianBookwormMin+"-0123456789abcdef" {
		t.Errorf("Prune = %v, %v", removed, err)
	}
}
