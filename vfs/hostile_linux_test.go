package vfs

// The hostile suite: one subtest per case of shared/HOSTILE.md that applies
// to the vfs, named by its number. Every case runs with openat2 and with the
// fallback walker (HOSTILE 30), and every case checks at cleanup that the
// host canary tree beside the sources is unchanged (content and metadata),
// plus any mount source or layer it names with guard.

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/containerd/containerd/v2/core/mount"

	"github.com/buildkit-cacerts/buildkit-cacerts/internal/testenv"
	"github.com/buildkit-cacerts/buildkit-cacerts/internal/treespec"
)

// guard snapshots dirs now and fails t at cleanup if any changed.
func guard(t *testing.T, dirs ...string) {
	t.Helper()
	for _, d := range dirs {
		c := treespec.NewCanary(t, d)
		t.Cleanup(func() { c.Check(t) })
	}
}

// wantErr fails unless err matches one of targets (nil target: success).
func wantErr(t *testing.T, what string, err error, targets ...error) {
	t.Helper()
	for _, target := range targets {
		if target == nil && err == nil || target != nil && errors.Is(err, target) {
			return
		}
	}
	t.Errorf("%s: got %v, want one of %v", what, err, targets)
}

func readStr(fsys *FS, p string) (string, error) {
	b, err := fsys.ReadFileLimit(p, 1<<20)
	return string(b), err
}

type hostileCase struct {
	name string
	root bool // needs root (devices, owners, trusted xattrs, mounts)
	run  func(t *testing.T, opts []Option)
}

func TestHostile(t *testing.T) {
	for _, hc := range hostileCases {
		t.Run(hc.name, func(t *testing.T) {
			if hc.root {
				testenv.RequiresRoot(t)
			}
			modes(t, hc.run)
		})
	}
}

var hostileCases = []hostileCase{
	{name: "01-magic-links", run: func(t *testing.T, opts []Option) {
		sb := newSandbox(t,
			"dir etc/ssl",
			"symlink etc/ssl/certs -> /proc/self/root/etc/ssl/certs",
			"symlink cwd -> /proc/1/cwd",
			"symlink fdlink -> /proc/self/fd/3",
			"dir proc",
		)
		fsys := mustNew(t, bindSpec("/", sb.root, false), nil, opts...)
		for _, p := range []string{"/etc/ssl/certs/ca-certificates.crt", "/cwd/etc/shadow", "/fdlink"} {
			_, err := readStr(fsys, p)
			wantErr(t, p, err, fs.ErrNotExist)
			wantErr(t, "write "+p, fsys.WriteFile(p, []byte("x"), 0o644), fs.ErrNotExist)
		}
		// With a proc mount, /proc is opaque: still refused.
		fsys2 := mustNew(t, bindSpec("/", sb.root, false), []Spec{{Dest: "/proc", Mounts: []mount.Mount{{Type: "proc", Source: "proc"}}}}, opts...)
		_, err := readStr(fsys2, "/etc/ssl/certs/ca-certificates.crt")
		wantErr(t, "through proc mount", err, ErrOpaqueMount)
		wantErr(t, "write through proc mount", fsys2.WriteFile("/cwd/etc/shadow", []byte("x"), 0o644), ErrOpaqueMount)
	}},
	{name: "02-dotdot-escape-clamped", run: func(t *testing.T, opts []Option) {
		sb := newSandbox(t, "dir etc/ssl/certs", "dir host/etc")
		treespec.Build(t, sb.root, "symlink etc/ssl/certs/ca-certificates.crt -> ../../../../../../host/etc/shadow")
		fsys := mustNew(t, bindSpec("/", sb.root, false), nil, opts...)
		if p, _, err := fsys.EvalSymlinks("/etc/ssl/certs/ca-certificates.crt"); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("EvalSymlinks = %q, %v", p, err)
		}
		wantErr(t, "write through dangling", fsys.WriteFile("/etc/ssl/certs/ca-certificates.crt", []byte("x"), 0o644), fs.ErrNotExist)
		if _, err := os.Lstat(filepath.Join(sb.root, "host/etc/shadow")); err == nil {
			t.Errorf("created through a dangling link")
		}
		// Once the container has the file, the clamped target is used.
		treespec.Build(t, sb.root, "file host/etc/shadow container-shadow")
		if s, err := readStr(fsys, "/etc/ssl/certs/ca-certificates.crt"); err != nil || s != "container-shadow" {
			t.Errorf("clamped read = %q, %v", s, err)
		}
	}},
	{name: "03-link-to-image-shadow", run: func(t *testing.T, opts []Option) {
		sb := newSandbox(t, "file etc/shadow image-shadow", "symlink etc/ssl/certs/ca-certificates.crt -> /etc/shadow")
		fsys := mustNew(t, bindSpec("/", sb.root, false), nil, opts...)
		p, m, err := fsys.EvalSymlinks("/etc/ssl/certs/ca-certificates.crt")
		if err != nil || p != "/etc/shadow" || !m.IsRoot() {
			t.Errorf("EvalSymlinks = %q %v %v (the caller's policy refuses /etc/shadow)", p, m, err)
		}
		if s, _ := readStr(fsys, "/etc/ssl/certs/ca-certificates.crt"); s != "image-shadow" {
			t.Errorf("read %q, want the image's file", s)
		}
	}},
	{name: "04-rhel-absolute-link-in-lower", root: true, run: func(t *testing.T, opts []Option) {
		sb := newSandbox(t)
		lower := sb.path("lower")
		treespec.Build(t, lower,
			"dir etc/pki/tls/certs mode=0755 mtime=1600000000.5",
			"symlink etc/pki/tls/certs/ca-bundle.crt -> /etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
			"dir etc/pki/ca-trust/extracted/pem mode=0755 owner=0:0 mtime=1600000000.25",
			"file etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem BASE mode=0444 owner=0:0",
		)
		guard(t, lower)
		upper, work := sb.path("upper"), sb.path("work")
		os.MkdirAll(upper, 0o755)
		os.MkdirAll(work, 0o755)
		root := Spec{Dest: "/", Mounts: []mount.Mount{{Type: "overlay", Source: "overlay",
			Options: []string{"lowerdir=" + lower, "upperdir=" + upper, "workdir=" + work, "index=off", "redirect_dir=off"}}}}
		fsys := mustNew(t, root, nil, opts...)
		if err := fsys.WriteFile("/etc/pki/tls/certs/ca-bundle.crt", []byte("BASE+OURS"), 0o644); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(filepath.Join(upper, "etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem"))
		if err != nil || string(got) != "BASE+OURS" {
			t.Errorf("upper target = %q, %v", got, err)
		}
		st := lstatHost(t, filepath.Join(upper, "etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem"))
		if st.Mode&0o7777 != 0o444 {
			t.Errorf("mode %o, want the lower's 0444", st.Mode&0o7777)
		}
		for _, d := range []string{"etc/pki/ca-trust/extracted/pem", "etc/pki/ca-trust"} {
			lo, up := lstatHost(t, filepath.Join(lower, d)), lstatHost(t, filepath.Join(upper, d))
			if lo.Mode != up.Mode || lo.Uid != up.Uid || lo.Gid != up.Gid {
				t.Errorf("copied-up %s: mode/owner %o %d:%d, lower %o %d:%d", d, up.Mode, up.Uid, up.Gid, lo.Mode, lo.Uid, lo.Gid)
			}
		}
		if l, err := os.Readlink(filepath.Join(lower, "etc/pki/tls/certs/ca-bundle.crt")); err != nil || !strings.HasPrefix(l, "/etc/pki") {
			t.Errorf("lower link changed: %q %v", l, err)
		}
	}},
	{name: "05-symlink-loops", run: func(t *testing.T, opts []Option) {
		sb := newSandbox(t,
			"symlink loop/a -> a", "symlink loop/abs -> /loop/abs",
			"symlink loop/b -> c", "symlink loop/c -> b",
			"symlink d -> .", "dir m",
		)
		src := sb.path("src")
		var rootLinks, srcLinks []string
		for i := 0; i < 42; i += 2 {
			// 41 hops alternating the root mount and a bind mount.
			rootLinks = append(rootLinks, "symlink c"+itoa(i)+" -> /m/c"+itoa(i+1))
			srcLinks = append(srcLinks, "symlink c"+itoa(i+1)+" -> /c"+itoa(i+2))
		}
		treespec.Build(t, sb.root, rootLinks...)
		treespec.Build(t, src, srcLinks...)
		guard(t, src)
		fsys := mustNew(t, bindSpec("/", sb.root, false), []Spec{bindSpec("/m", src, false)}, opts...)
		for _, p := range []string{"/loop/a", "/loop/abs", "/loop/b", "/c0", "/loop/a/x"} {
			_, _, err := fsys.EvalSymlinks(p)
			wantErr(t, p, err, syscall.ELOOP)
			wantErr(t, "write "+p, fsys.WriteFile(p, []byte("x"), 0o644), syscall.ELOOP)
			_, err = fsys.MkdirAll(p+"/sub", 0o755)
			wantErr(t, "mkdir "+p, err, syscall.ELOOP)
		}
		if p, _, err := fsys.EvalSymlinks("/d/d/d/d/d/d/d/d/d/d/m"); err != nil || p != "/m" {
			t.Errorf("d->. chain = %q, %v", p, err)
		}
		if _, _, err := fsys.EvalSymlinks("/" + strings.Repeat("d/", 41) + "m"); !errors.Is(err, syscall.ELOOP) {
			t.Errorf("41 d->. hops: %v", err)
		}
	}},
	{name: "06-non-lexical-dotdot", run: func(t *testing.T, opts []Option) {
		sb := newSandbox(t, "dir usr/lib/ssl/certs", "dir usr/lib/pki", "dir etc/pki", "symlink etc/ssl -> /usr/lib/ssl")
		fsys := mustNew(t, bindSpec("/", sb.root, false), nil, opts...)
		if p, _, err := fsys.EvalSymlinks("/etc/ssl/../pki"); err != nil || p != "/usr/lib/pki" {
			t.Errorf("= %q, %v; want /usr/lib/pki like the kernel", p, err)
		}
	}},
	{name: "07-dotdot-clamped-at-root", run: func(t *testing.T, opts []Option) {
		sb := newSandbox(t, "file outside container-outside")
		fsys := mustNew(t, bindSpec("/", sb.root, false), nil, opts...)
		for _, p := range []string{"/..", "/../../..", strings.Repeat("../", 20), "/nonexistent/../../../../outside", "nonexistent/../../outside"} {
			got, _, err := fsys.EvalSymlinks(p)
			switch {
			case strings.Contains(p, "nonexistent"):
				// The kernel fails at the missing component; never the host's file.
				wantErr(t, p, err, fs.ErrNotExist)
			case err != nil || got != "/":
				t.Errorf("EvalSymlinks(%q) = %q, %v", p, got, err)
			}
		}
		if s, err := readStr(fsys, "/../../../../outside"); s != "container-outside" {
			t.Errorf("read = %q, %v", s, err)
		}
		wantErr(t, "write after missing", fsys.WriteFile("/nonexistent/../../../host/outside", []byte("x"), 0o644), fs.ErrNotExist)
	}},
	{name: "08-absolute-link-last-component", run: func(t *testing.T, opts []Option) {
		sb := newSandbox(t, "file etc/hostname container-hostname", "symlink etc/os-release -> /etc/hostname")
		hostAbs := sb.path("host/etc/os-release")
		treespec.Build(t, sb.root, "symlink etc/host-abs -> "+hostAbs)
		fsys := mustNew(t, bindSpec("/", sb.root, false), nil, opts...)
		if s, err := readStr(fsys, "/etc/os-release"); s != "container-hostname" {
			t.Errorf("read = %q, %v", s, err)
		}
		_, err := readStr(fsys, "/etc/host-abs")
		wantErr(t, "host absolute path", err, fs.ErrNotExist)
		wantErr(t, "write host absolute path", fsys.WriteFile("/etc/host-abs", []byte("x"), 0o644), fs.ErrNotExist)
		wantErr(t, "chtimes host absolute path", fsys.Lchtimes("/etc/host-abs/..", time.Unix(1, 0), time.Unix(1, 0)), fs.ErrNotExist)
	}},
	{name: "09-path-noise", run: func(t *testing.T, opts []Option) {
		sb := newSandbox(t, "file etc/ssl/certs/b x", "dir d")
		fsys := mustNew(t, bindSpec("/", sb.root, false), nil, opts...)
		if p, _, err := fsys.EvalSymlinks("///./etc//ssl/./certs/"); err != nil || p != "/etc/ssl/certs" {
			t.Errorf("noise = %q, %v", p, err)
		}
		_, _, err := fsys.EvalSymlinks("/etc/ssl/certs/b/")
		wantErr(t, "file with trailing slash", err, syscall.ENOTDIR)
		wantErr(t, "write trailing slash", fsys.WriteFile("/etc/new/", nil, 0o644), syscall.EISDIR)
		wantErr(t, "write .", fsys.WriteFile("/etc/.", nil, 0o644), syscall.EISDIR)
		wantErr(t, "write ..", fsys.WriteFile("/etc/..", nil, 0o644), syscall.EISDIR)
		wantErr(t, "remove .", fsys.Remove("/d/."), syscall.EINVAL)
		wantErr(t, "remove ..", fsys.Remove("/d/.."), syscall.EINVAL)
		wantErr(t, "remove /", fsys.Remove("/"), syscall.EBUSY, syscall.EINVAL)
		wantErr(t, "symlink .", fsys.Symlink("x", "/d/."), syscall.EINVAL)
		if c, err := fsys.MkdirAll("///d//./e/", 0o755); err != nil || c != "/d/e" {
			t.Errorf("mkdir noise = %q, %v", c, err)
		}
	}},
	{name: "10-long-names", run: func(t *testing.T, opts []Option) {
		long := strings.Repeat("t", 4095)
		sb := newSandbox(t, "dir d", "file d/\xff\xfe-latin1 bin")
		if err := os.Symlink(long, filepath.Join(sb.root, "d/longlink")); err != nil {
			t.Fatal(err)
		}
		fsys := mustNew(t, bindSpec("/", sb.root, false), nil, opts...)
		n256 := strings.Repeat("n", 256)
		_, _, err := fsys.EvalSymlinks("/d/" + n256)
		wantErr(t, "NAME_MAX+1", err, syscall.ENAMETOOLONG)
		wantErr(t, "write NAME_MAX+1", fsys.WriteFile("/d/"+n256, nil, 0o644), syscall.ENAMETOOLONG)
		_, err = fsys.MkdirAll("/d/"+n256, 0o755)
		wantErr(t, "mkdir NAME_MAX+1", err, syscall.ENAMETOOLONG)
		_, _, err = fsys.EvalSymlinks(strings.Repeat("/d", 2100))
		wantErr(t, "PATH_MAX", err, syscall.ENAMETOOLONG)
		if l, err := fsys.ReadLink("d/longlink"); err != nil || l != long {
			t.Errorf("4095-byte target: %d bytes, %v", len(l), err)
		}
		_, _, err = fsys.EvalSymlinks("/d/longlink")
		wantErr(t, "follow 4095-byte target", err, syscall.ENAMETOOLONG, fs.ErrNotExist)
		if s, err := readStr(fsys, "/d/\xff\xfe-latin1"); s != "bin" {
			t.Errorf("non-UTF-8 name: %q %v", s, err)
		}
		wantErr(t, "NUL in path", fsys.WriteFile("/d/a\x00b", nil, 0o644), syscall.EINVAL)
	}},
	{name: "11-cert-dir-is-a-file", run: func(t *testing.T, opts []Option) {
		sb := newSandbox(t, "file etc/ssl/certs not-a-dir")
		fsys := mustNew(t, bindSpec("/", sb.root, false), nil, opts...)
		wantErr(t, "write", fsys.WriteFile("/etc/ssl/certs/ca-certificates.crt", nil, 0o644), syscall.ENOTDIR)
		_, err := fsys.MkdirAll("/etc/ssl/certs/sub", 0o755)
		wantErr(t, "mkdir", err, syscall.ENOTDIR)
		_, err = fsys.ReadDir("etc/ssl/certs")
		wantErr(t, "readdir", err, syscall.ENOTDIR)
		if b, _ := os.ReadFile(filepath.Join(sb.root, "etc/ssl/certs")); string(b) != "not-a-dir" {
			t.Errorf("file replaced: %q", b)
		}
	}},
}
