package distro

import (
	"errors"
	"io/fs"
	"path"
	"reflect"
	"slices"
	"testing"
	"testing/fstest"
)

// TestLayouts checks every family's layout for shape: absolute clean paths,
// writable paths inside the trust-store locations, valid glob patterns,
// commands whose argv[0] is their first path.
func TestLayouts(t *testing.T) {
	for _, f := range Families() {
		t.Run(string(f), func(t *testing.T) {
			l := LayoutFor(f)
			if l.Family != f {
				t.Errorf("Family = %s", l.Family)
			}
			if len(l.Bundles) == 0 {
				t.Error("no bundles")
			}
			check := func(what, p string, writable bool) {
				if p == "" {
					return
				}
				if !path.IsAbs(p) || path.Clean(p) != p {
					t.Errorf("%s %q is not an absolute clean path", what, p)
				}
				if !fs.ValidPath(Name(p)) {
					t.Errorf("%s %q has no valid io/fs name", what, p)
				}
				if writable && !IsTrustStorePath(p) {
					t.Errorf("%s %q is outside the trust-store paths", what, p)
				}
			}
			check("anchor dir", l.AnchorDir, true)
			if (l.AnchorDir == "") != (l.AnchorExt == "") {
				t.Errorf("anchor dir %q with extension %q", l.AnchorDir, l.AnchorExt)
			}
			for _, p := range l.SystemAnchorDirs {
				check("system anchor dir", p, false)
			}
			for _, b := range l.Bundles {
				check("bundle", b.Path, true)
			}
			check("hash dir", l.HashDir, true)
			// Read only: update-ca-certificates reads CERTSCONF and never
			// writes it (ca-certificates 20250419, lines 77, 150, 155).
			check("config", l.Config, false)
			for _, p := range l.Generated {
				check("generated dir", p, true)
			}
			for _, p := range l.HookDirs {
				check("hook dir", p, false)
			}
			for _, p := range l.Java {
				check("java store", p, true)
			}
			for _, g := range slices.Concat(l.JavaGlobs, l.CertifiGlobs) {
				check("glob", g, false)
				if _, err := path.Match(g, g); err != nil {
					t.Errorf("glob %q: %v", g, err)
				}
			}
			for _, c := range l.Update {
				if len(c.Argv) == 0 || len(c.Paths) == 0 || c.Argv[0] != c.Paths[0] {
					t.Errorf("command %q: argv[0] must be its first path %q", c.Argv, c.Paths)
				}
				for _, p := range c.Paths {
					check("command path", p, false)
				}
				check("interpreter", c.Interpreter, false)
			}
			seen := map[string]bool{}
			for _, b := range l.Bundles {
				if seen[b.Path] {
					t.Errorf("bundle %s listed twice", b.Path)
				}
				seen[b.Path] = true
			}
		})
	}
}

// TestLayoutForFresh proves LayoutFor hands out copies: changing one does
// not change the next.
func TestLayoutForFresh(t *testing.T) {
	for _, f := range Families() {
		a, b := LayoutFor(f), LayoutFor(f)
		if !reflect.DeepEqual(a, b) {
			t.Fatalf("%s: two calls differ", f)
		}
		a.Bundles[0].Path = "/changed"
		a.CertifiGlobs[0] = "/changed"
		for i := range a.Update {
			a.Update[i].Argv[0] = "/changed"
			a.Update[i].Paths[0] = "/changed"
		}
		if !reflect.DeepEqual(b, LayoutFor(f)) {
			t.Errorf("%s: changing a returned layout changed the next one", f)
		}
	}
	if l := LayoutFor("plan9"); l.Family != FamilyUnknown {
		t.Errorf("LayoutFor(plan9).Family = %s, want unknown", l.Family)
	}
}

// TestGenericLayoutIsGoSearchList pins the generic bundles to the files Go's
// crypto/x509 searches on Linux, in its order.
func TestGenericLayoutIsGoSearchList(t *testing.T) {
	var got []string
	for _, b := range LayoutFor(FamilyUnknown).Bundles {
		got = append(got, b.Path)
	}
	want := []string{
		"/etc/ssl/certs/ca-certificates.crt",
		"/etc/pki/tls/certs/ca-bundle.crt",
		"/etc/ssl/ca-bundle.pem",
		"/etc/pki/tls/cacert.pem",
		"/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
		"/etc/ssl/cert.pem",
	}
	if !slices.Equal(got, want) {
		t.Errorf("generic bundles %q, want %q", got, want)
	}
}

func TestName(t *testing.T) {
	for in, want := range map[string]string{
		"/etc/ssl/certs": "etc/ssl/certs",
		"etc/os-release": "etc/os-release",
		"/":              ".",
		"":               ".",
		"//etc":          "etc",
	} {
		if got := Name(in); got != want {
			t.Errorf("Name(%q) = %q, want %q", in, got, want)
		}
	}
}

func exe(data string) *fstest.MapFile { return &fstest.MapFile{Data: []byte(data), Mode: 0o755} }

func TestCommandFind(t *testing.T) {
	debian := LayoutFor(FamilyDebian)
	full := fstest.MapFS{
		"usr/sbin/update-ca-certificates": exe("#!/bin/sh -e\n"),
		"bin/sh":                          exe("ELF"),
		"usr/bin/openssl":                 exe("ELF"),
		"bin/run-parts":                   exe("ELF"),
	}
	without := func(name string) fstest.MapFS {
		m := fstest.MapFS{}
		for k, v := range full {
			if k != name {
				m[k] = v
			}
		}
		return m
	}
	notExec := without("usr/bin/openssl")
	notExec["usr/bin/openssl"] = &fstest.MapFile{Data: []byte("ELF"), Mode: 0o644}
	dirTool := without("usr/sbin/update-ca-certificates")
	dirTool["usr/sbin/update-ca-certificates"] = &fstest.MapFile{Mode: fs.ModeDir | 0o755}
	fifoTool := without("usr/sbin/update-ca-certificates")
	fifoTool["usr/sbin/update-ca-certificates"] = &fstest.MapFile{Mode: fs.ModeNamedPipe | 0o755}
	split := without("usr/sbin/update-ca-certificates")
	split["sbin/update-ca-certificates"] = exe("#!/bin/sh\n")
	linked := without("usr/sbin/update-ca-certificates")
	linked["usr/sbin/update-ca-certificates"] = &fstest.MapFile{Data: []byte("../lib/ca/update"), Mode: fs.ModeSymlink | 0o777}
	linked["usr/lib/ca/update"] = exe("#!/bin/sh\n")

	tests := []struct {
		name string
		fsys fs.FS
		want []string // nil: not installed
	}{
		{"installed", full, []string{"/usr/sbin/update-ca-certificates"}},
		{"split /usr", split, []string{"/sbin/update-ca-certificates"}},
		{"through a symlink", linked, []string{"/usr/sbin/update-ca-certificates"}},
		{"no tool", without("usr/sbin/update-ca-certificates"), nil},
		{"no shell", without("bin/sh"), nil},
		{"no openssl", without("usr/bin/openssl"), nil},
		{"openssl not executable", notExec, nil},
		{"tool is a directory", dirTool, nil},
		{"tool is a FIFO", fifoTool, nil},
		{"empty root", fstest.MapFS{}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			argv, err := debian.FindUpdate(tt.fsys)
			if tt.want == nil {
				if !errors.Is(err, ErrNotInstalled) {
					t.Errorf("FindUpdate = %q, %v; want ErrNotInstalled", argv, err)
				}
				return
			}
			if err != nil || !slices.Equal(argv, tt.want) {
				t.Errorf("FindUpdate = %q, %v; want %q", argv, err, tt.want)
			}
		})
	}
}

func TestFindUpdateAlternatives(t *testing.T) {
	arch := LayoutFor(FamilyArch)
	// No update-ca-trust, but p11-kit's trust: the second way wins.
	argv, err := arch.FindUpdate(fstest.MapFS{"usr/bin/trust": exe("ELF")})
	if err != nil || !slices.Equal(argv, []string{"/usr/bin/trust", "extract-compat"}) {
		t.Errorf("arch FindUpdate = %q, %v", argv, err)
	}
	rhel := LayoutFor(FamilyRHEL)
	argv, err = rhel.FindUpdate(fstest.MapFS{
		"usr/bin/update-ca-trust": exe("#!/bin/sh\n"),
		"usr/bin/p11-kit":         exe("ELF"),
		"bin/sh":                  exe("ELF"),
	})
	if err != nil || !slices.Equal(argv, []string{"/usr/bin/update-ca-trust", "extract"}) {
		t.Errorf("rhel FindUpdate = %q, %v", argv, err)
	}
	for _, f := range []Family{FamilyNixOS, FamilyDistroless, FamilyBusyBox, FamilyUnknown} {
		if _, err := LayoutFor(f).FindUpdate(fstest.MapFS{}); !errors.Is(err, ErrNotInstalled) {
			t.Errorf("%s: FindUpdate error %v, want ErrNotInstalled", f, err)
		}
	}
	var pe *fs.PathError
	if _, err := (Command{}).Find(fstest.MapFS{}); err == nil || errors.As(err, &pe) {
		t.Errorf("empty command: error %v, want a plain error", err)
	}
}
