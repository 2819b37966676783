package vfs

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/containerd/containerd/v2/core/mount"

	"github.com/buildkit-cacerts/buildkit-cacerts/internal/treespec"
)

// modes runs f once with openat2 and once with the fallback walker.
func modes(t *testing.T, f func(t *testing.T, opts []Option)) {
	t.Run("openat2", func(t *testing.T) { f(t, nil) })
	t.Run("fallback", func(t *testing.T) { f(t, []Option{WithoutOpenat2()}) })
	t.Run("nocache", func(t *testing.T) { f(t, []Option{WithoutDirCache()}) })
}

func bindSpec(dest, src string, ro bool) Spec {
	s := Spec{Dest: dest, Mounts: []mount.Mount{{Type: "bind", Source: src, Options: []string{"rbind"}}}, Readonly: ro}
	if ro {
		s.Mounts[0].Options = append(s.Mounts[0].Options, "ro")
	}
	return s
}

// lowerSpec is a lowerdir-only overlay; layers are listed topmost first, as
// in overlay's lowerdir option.
func lowerSpec(dest string, user bool, layers ...string) Spec {
	opts := []string{"lowerdir=" + joinColon(layers)}
	if user {
		opts = append(opts, "userxattr")
	}
	return Spec{Dest: dest, Mounts: []mount.Mount{{Type: "overlay", Source: "overlay", Options: opts}}}
}

func joinColon(s []string) string {
	out := ""
	for i, x := range s {
		if i > 0 {
			out += ":"
		}
		out += x
	}
	return out
}

func mustNew(t testing.TB, root Spec, mounts []Spec, opts ...Option) *FS {
	t.Helper()
	fsys, err := New(context.Background(), root, mounts, opts...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		if err := fsys.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return fsys
}

// sandbox is a test directory with a root tree, a host canary beside it
// and room for more mount sources.
type sandbox struct {
	dir    string
	root   string
	canary *treespec.Canary
}

func newSandbox(t testing.TB, rootSpecs ...string) *sandbox {
	t.Helper()
	dir := t.TempDir()
	sb := &sandbox{dir: dir, root: filepath.Join(dir, "root")}
	treespec.Build(t, sb.root, rootSpecs...)
	host := filepath.Join(dir, "host")
	treespec.Build(t, host,
		"file etc/shadow root:secret",
		"file etc/hostname host",
		"file etc/os-release ID=host",
		"dir etc/ssl/certs",
		"file etc/ssl/certs/ca-certificates.crt HOST BUNDLE",
		"file etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem HOST",
		"file outside secret",
	)
	sb.canary = treespec.NewCanary(t, host)
	t.Cleanup(func() { sb.canary.Check(t) })
	return sb
}

func (sb *sandbox) path(p string) string { return filepath.Join(sb.dir, p) }
