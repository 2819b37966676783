package vfs

import (
	"errors"
	"io/fs"
	"slices"
	"syscall"
	"testing"
	"testing/fstest"

	"github.com/containerd/containerd/v2/core/mount"

	"github.com/buildkit-cacerts/buildkit-cacerts/internal/treespec"
)

// mountedFS builds a root with nested binds, a file bind, a read-only
// three-layer overlay (user.overlay xattrs), a tmpfs and a destination
// behind a symlink.
func mountedFS(t *testing.T, opts []Option) (*FS, *sandbox) {
	sb := newSandbox(t,
		"file etc/ssl/certs/ca-certificates.crt ROOT BUNDLE",
		"symlink etc/ssl/cert.pem -> certs/ca-certificates.crt",
		"dir mnt/a",
		"dir mnt/linked-target",
		"symlink mnt/link -> /mnt/linked-target",
		"file etc/resolv.conf root-resolv",
		"dir from",
		"dir dev/shm",
		"dir data",
		"dir run",
	)
	a := sb.path("a")
	treespec.Build(t, a, "file a.txt A", "dir nested", "symlink up -> ../../etc", "symlink abs -> /etc/ssl")
	nested := sb.path("nested")
	treespec.Build(t, nested, "file n.txt N")
	linked := sb.path("linked")
	treespec.Build(t, linked, "file l.txt L")
	resolv := sb.path("resolv.conf")
	treespec.Build(t, sb.dir, "file resolv.conf nameserver 10.0.0.1")
	layers := treespec.Layers(t, sb.path("layers"),
		[]string{"file base.txt base", "file gone.txt gone", "dir d", "file d/old base-d", "dir o", "file o/hidden hidden", "file sub/x x"},
		[]string{"file mid.txt mid", "whiteout gone.txt", "file d/new mid-d", "opaque o user", "file o/visible v"},
		[]string{"file top.txt top", "file base.txt overridden"},
	)
	sel := sb.path("sel")
	treespec.Build(t, sel, "file inner/s.txt S", "symlink inner/back -> ../../../..")
	fsys := mustNew(t, bindSpec("/", sb.root, false), []Spec{
		bindSpec("/mnt/a", a, false),
		bindSpec("/mnt/a/nested", nested, true),
		bindSpec("/mnt/link", linked, false),
		bindSpec("/etc/resolv.conf", resolv, true),
		lowerSpec("/from", true, layers[2], layers[1], layers[0]),
		{Dest: "/dev/shm", Mounts: []mount.Mount{{Type: "tmpfs", Source: "shm"}}},
		{Dest: "/run", Mounts: []mount.Mount{{Type: "tmpfs", Source: "tmpfs"}}},
		bindSpec("/run/secrets/token", resolv, true),
		bindSpec("/not/yet/there", sel, true),
		{Dest: "/data", Mounts: []mount.Mount{{Type: "bind", Source: sel}}, Selector: "inner"},
	}, opts...)
	return fsys, sb
}

func TestMounts(t *testing.T) {
	modes(t, func(t *testing.T, opts []Option) {
		fsys, _ := mountedFS(t, opts)
		read := func(p string) string {
			b, err := fsys.ReadFileLimit(p, 1<<20)
			if err != nil {
				return "ERR " + err.Error()
			}
			return string(b)
		}
		for p, want := range map[string]string{
			"/mnt/a/a.txt":                               "A",
			"/mnt/a/nested/n.txt":                        "N",
			"/mnt/linked-target/l.txt":                   "L",
			"/mnt/link/l.txt":                            "L",
			"/etc/resolv.conf":                           "nameserver 10.0.0.1",
			"/from/base.txt":                             "overridden",
			"/from/mid.txt":                              "mid",
			"/from/top.txt":                              "top",
			"/from/d/old":                                "base-d",
			"/from/d/new":                                "mid-d",
			"/from/o/visible":                            "v",
			"/from/sub/x":                                "x",
			"/data/s.txt":                                "S",
			"/mnt/a/up/ssl/cert.pem":                     "ROOT BUNDLE",
			"/mnt/a/abs/cert.pem":                        "ROOT BUNDLE",
			"/mnt/a/nested/../../../etc/ssl/cert.pem":    "ROOT BUNDLE",
			"/data/back/etc/resolv.conf":                 "nameserver 10.0.0.1",
			"/run/secrets/token":                         "nameserver 10.0.0.1",
			"/run/secrets/../secrets/token":              "nameserver 10.0.0.1",
			"/not/yet/there/inner/s.txt":                 "S",
			"/not/yet/../yet/there/../there/inner/s.txt": "S",
		} {
			if got := read(p); got != want {
				t.Errorf("read %s = %q, want %q", p, got, want)
			}
		}
		for _, p := range []string{"/from/gone.txt", "/from/o/hidden"} {
			if _, err := fsys.ReadFileLimit(p, 100); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("%s: %v, want not exist", p, err)
			}
		}
		for _, p := range []string{"/dev/shm/x", "/run/x", "/run/secrets/x", "/run/secrets"} {
			if _, err := fsys.ReadFileLimit(p, 100); !errors.Is(err, ErrOpaqueMount) {
				t.Errorf("tmpfs %s: %v", p, err)
			}
		}
		for _, p := range []string{"/not", "/not/yet"} {
			if err := fsys.WriteFile(p, nil, 0o644); !errors.Is(err, syscall.EISDIR) && !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("write over a mount point's missing parent %s: %v", p, err)
			}
		}
		for _, p := range []string{"/not", "/not/yet", "/not/x"} {
			if _, _, err := fsys.EvalSymlinks(p); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("missing mount-point parent %s: %v", p, err)
			}
			if err := fsys.WriteFile(p+"/f", nil, 0o644); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("write under missing mount-point parent %s: %v", p, err)
			}
		}
		if p, m, err := fsys.EvalSymlinks("/not/yet/there"); err != nil || p != "/not/yet/there" || m.Dest != p {
			t.Errorf("mount point under missing parents: %q %v %v", p, m, err)
		}
		var ome *OpaqueMountError
		if _, err := fsys.Stat("dev/shm"); !errors.As(err, &ome) || ome.Mount.Type != "tmpfs" {
			t.Errorf("tmpfs stat: %v", err)
		}
		if p, m, err := fsys.EvalSymlinks("/mnt/link/l.txt"); err != nil || p != "/mnt/linked-target/l.txt" || m.Dest != "/mnt/linked-target" || m.IsRoot() {
			t.Errorf("EvalSymlinks = %q %+v %v", p, m, err)
		}
		if p, m, err := fsys.EvalSymlinks("/mnt/a/up/ssl"); err != nil || p != "/etc/ssl" || !m.IsRoot() {
			t.Errorf("EvalSymlinks .. across mount = %q %+v %v", p, m, err)
		}
		for _, p := range []string{"/mnt/a/new", "/mnt/a/nested/new", "/from/new", "/etc/resolv.conf", "/data/new", "/dev/shm/x"} {
			if err := fsys.WriteFile(p, []byte("x"), 0o644); err == nil {
				t.Errorf("WriteFile(%s) allowed outside the root mount", p)
			}
		}
		if err := fsys.WriteFile("/mnt/a/up/ssl/new", []byte("x"), 0o644); err != nil {
			t.Errorf("WriteFile back into the root through ..: %v", err)
		}
		if err := fsys.WriteFile("/from/o/visible", []byte("x"), 0o644); !errors.Is(err, ErrNotRootMount) {
			t.Errorf("WriteFile into overlay: %v", err)
		}
		if err := fsys.Remove("/mnt/a/a.txt"); !errors.Is(err, ErrNotRootMount) {
			t.Errorf("Remove in bind: %v", err)
		}
		es, err := fsys.ReadDir("from")
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, e := range es {
			names = append(names, e.Name())
		}
		if got := joinColon(names); got != "base.txt:d:mid.txt:o:sub:top.txt" {
			t.Errorf("overlay readdir = %s", got)
		}
	})
}

// TestFSTestWhole runs fstest.TestFS on a whole container view: a root with
// nested binds (one read-only), a file bind, a selector bind and a
// read-only three-layer overlay (no opaque mounts: their entries cannot be
// stat'ed, by design).
func TestFSTestWhole(t *testing.T) {
	modes(t, func(t *testing.T, opts []Option) {
		sb := newSandbox(t,
			"file etc/ssl/certs/ca-certificates.crt ROOT",
			"symlink etc/ssl/cert.pem -> certs/ca-certificates.crt",
			"file etc/resolv.conf placeholder",
			"dir mnt/a", "dir from", "dir data",
			"symlink abs-escape -> /../../etc/ssl",
		)
		a, nested, sel := sb.path("a"), sb.path("nested"), sb.path("sel")
		treespec.Build(t, a, "file a.txt A", "dir nested", "symlink up -> ../../etc")
		treespec.Build(t, nested, "file n.txt N")
		treespec.Build(t, sel, "file inner/s.txt S")
		treespec.Build(t, sb.dir, "file resolv.conf nameserver")
		layers := treespec.Layers(t, sb.path("layers"),
			[]string{"file base.txt base", "file gone.txt gone", "file d/old o", "file o/hidden h"},
			[]string{"whiteout gone.txt", "file d/new n", "opaque o user", "file o/visible v"},
			[]string{"file base.txt top"},
		)
		fsys := mustNew(t, bindSpec("/", sb.root, false), []Spec{
			bindSpec("/mnt/a", a, false),
			bindSpec("/mnt/a/nested", nested, true),
			bindSpec("/etc/resolv.conf", sb.path("resolv.conf"), true),
			lowerSpec("/from", true, layers[2], layers[1], layers[0]),
			{Dest: "/data", Mounts: []mount.Mount{{Type: "bind", Source: sel}}, Selector: "inner"},
		}, opts...)
		if err := fstest.TestFS(fsys, "etc/ssl/certs/ca-certificates.crt", "etc/resolv.conf", "mnt/a/a.txt",
			"mnt/a/nested/n.txt", "from/base.txt", "from/d/old", "from/d/new", "from/o/visible", "data/s.txt"); err != nil {
			t.Error(err)
		}
		// ReadDirNames lists what ReadDir lists, without the lookups:
		// whiteouts and opaque-hidden entries are left out too.
		err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
			if err != nil || !d.IsDir() {
				return err
			}
			es, err := fsys.ReadDir(p)
			if err != nil {
				return err
			}
			want := make([]string, 0, len(es))
			for _, e := range es {
				want = append(want, e.Name())
			}
			got, err := fsys.ReadDirNames(p)
			if err != nil {
				return err
			}
			if !slices.Equal(got, want) {
				t.Errorf("ReadDirNames(%q) = %q, ReadDir names %q", p, got, want)
			}
			return nil
		})
		if err != nil {
			t.Error(err)
		}
		if _, err := fsys.ReadDirNames("etc/resolv.conf"); !errors.Is(err, syscall.ENOTDIR) {
			t.Errorf("ReadDirNames of a file: %v, want ENOTDIR", err)
		}
	})
}

func TestFSTest(t *testing.T) {
	modes(t, func(t *testing.T, opts []Option) {
		fsys, _ := mountedFS(t, opts)
		sub, err := fs.Sub(fsys, "mnt")
		if err != nil {
			t.Fatal(err)
		}
		if err := fstest.TestFS(sub, "a/a.txt", "a/nested/n.txt", "linked-target/l.txt"); err != nil {
			t.Error(err)
		}
		from, _ := fs.Sub(fsys, "from")
		if err := fstest.TestFS(from, "base.txt", "mid.txt", "top.txt", "d/old", "d/new", "o/visible", "sub/x"); err != nil {
			t.Error(err)
		}
		etc, _ := fs.Sub(fsys, "etc")
		if err := fstest.TestFS(etc, "resolv.conf", "ssl/certs/ca-certificates.crt", "ssl/cert.pem"); err != nil {
			t.Error(err)
		}
	})
}
