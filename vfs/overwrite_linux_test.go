package vfs

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/containerd/containerd/v2/core/mount"
	"golang.org/x/sys/unix"

	"github.com/buildkit-cacerts/buildkit-cacerts/internal/testenv"
	"github.com/buildkit-cacerts/buildkit-cacerts/internal/treespec"
)

// TestOverwrite: Overwrite writes the file's own inode, keeps its mode,
// owner and xattrs, and truncates a longer file to the new content.
func TestOverwrite(t *testing.T) {
	modes(t, func(t *testing.T, opts []Option) {
		sb := newSandbox(t,
			"file etc/ssl/certs/ca-certificates.crt OLD-CONTENT mode=0640 xattr=user.keep=1 mtime=1600000000.5",
			"dir usr/share/certs",
			"file usr/share/certs/b B mode=0444",
			"symlink etc/pki -> ../usr/share/certs",
			"file etc/file x",
		)
		fsys := mustNew(t, bindSpec("/", sb.root, false), nil, opts...)
		bundle := filepath.Join(sb.root, "etc/ssl/certs/ca-certificates.crt")
		before := lstatHost(t, bundle)
		fds := openFDs(t)
		// Shared prefixes: an append, taking it back, a change in the middle.
		for _, data := range []string{"NEW CONTENT, LONGER THAN THE OLD", "SHORT", "SAME!", "SAME! AND AN APPENDED TAIL", "SAME!", "SAMEX AND MORE", "SAMEX", "SAMEX", ""} {
			if err := fsys.Overwrite("/etc/ssl/certs/ca-certificates.crt", []byte(data)); err != nil {
				t.Fatalf("Overwrite(%q): %v", data, err)
			}
			if b, err := os.ReadFile(bundle); err != nil || string(b) != data {
				t.Errorf("content %q, %v; want %q", b, err, data)
			}
			st := lstatHost(t, bundle)
			if st.Ino != before.Ino || st.Dev != before.Dev || st.Nlink != 1 {
				t.Errorf("inode %d:%d nlink %d, want the same inode %d:%d", st.Dev, st.Ino, st.Nlink, before.Dev, before.Ino)
			}
			if st.Mode != before.Mode || st.Uid != before.Uid || st.Gid != before.Gid {
				t.Errorf("mode/owner %o %d:%d, want %o %d:%d kept", st.Mode, st.Uid, st.Gid, before.Mode, before.Uid, before.Gid)
			}
			buf := make([]byte, 8)
			if n, err := unix.Lgetxattr(bundle, "user.keep", buf); err != nil || string(buf[:n]) != "1" {
				t.Errorf("xattr not kept: %q %v", buf[:n], err)
			}
		}
		// Symlinks before the last component are followed inside the
		// container; ".." is clamped at its root.
		if err := fsys.Overwrite("/etc/pki/b", []byte("B2")); err != nil {
			t.Errorf("through a directory link: %v", err)
		}
		if b, _ := os.ReadFile(filepath.Join(sb.root, "usr/share/certs/b")); string(b) != "B2" {
			t.Errorf("through a directory link: %q", b)
		}
		if err := fsys.Overwrite("../../../../etc/file", []byte("y")); err != nil {
			t.Errorf("clamped ..: %v", err)
		}
		if b, _ := os.ReadFile(filepath.Join(sb.root, "etc/file")); string(b) != "y" {
			t.Errorf("clamped ..: %q", b)
		}
		// The FS keeps directory handles until Close; nothing else is left.
		fsys.Close()
		for fd := range openFDs(t) {
			if !fds[fd] {
				t.Errorf("fd %s left open", fd)
			}
		}
	})
}

// TestOverwriteRefusals: everything Overwrite must not write in place is
// refused before any byte is written, with ErrNotInPlace where WriteFile is
// the fallback and a plain error where the path itself is wrong. The root
// tree, the mount sources and the host canary are unchanged.
func TestOverwriteRefusals(t *testing.T) {
	modes(t, func(t *testing.T, opts []Option) {
		sb := newSandbox(t,
			"file etc/ssl/certs/ca-certificates.crt BUNDLE",
			"symlink etc/ssl/cert.pem -> certs/ca-certificates.crt",
			"symlink etc/ssl/dangling -> /nowhere/file",
			"symlink etc/ssl/escape -> ../../../../host/etc/shadow",
			"symlink etc/ssl/escapedir -> ../../../../host/etc",
			"file etc/ssl/linked L",
			"hardlink etc/ssl/linked2 -> etc/ssl/linked",
			"file etc/ssl/suid S mode=04755",
			"file etc/ssl/sgid S mode=02755",
			"fifo etc/ssl/fifo",
			"sock etc/ssl/sock",
			"dir etc/ssl/dir",
			"file etc/file x",
			"dir cache",
			"dir run/secrets",
		)
		treespec.Build(t, sb.root, "symlink etc/ssl/hostabs -> "+sb.path("host/etc"))
		cache := sb.path("cachesrc")
		treespec.Build(t, cache, "file ca-certificates.crt CACHE")
		secret := sb.path("secret")
		treespec.Build(t, sb.dir, "file secret TOKEN")
		guard(t, cache, sb.root)
		fsys := mustNew(t, bindSpec("/", sb.root, false), []Spec{
			bindSpec("/cache", cache, false),
			bindSpec("/run/secrets/token", secret, false),
		}, opts...)
		refused := []struct {
			p    string
			errs []error // all must match
		}{
			{"/etc/ssl/cert.pem", []error{ErrNotInPlace, ErrNotRegular}},
			{"/etc/ssl/dangling", []error{ErrNotInPlace, ErrNotRegular}},
			{"/etc/ssl/escape", []error{ErrNotInPlace, ErrNotRegular}},
			{"/etc/ssl/linked", []error{ErrNotInPlace, errLinked}},
			{"/etc/ssl/linked2", []error{ErrNotInPlace, errLinked}},
			{"/etc/ssl/suid", []error{ErrNotInPlace, errPrivs}},
			{"/etc/ssl/sgid", []error{ErrNotInPlace, errPrivs}},
			{"/etc/ssl/fifo", []error{ErrNotInPlace, ErrNotRegular}},
			{"/etc/ssl/sock", []error{ErrNotInPlace, ErrNotRegular}},
			{"/etc/ssl/dir", []error{ErrNotInPlace, syscall.EISDIR}},
			{"/etc/ssl/certs/../dir/", []error{ErrNotInPlace, syscall.EISDIR}},
			{"/", []error{ErrNotInPlace, syscall.EISDIR}},
			{"/cache/ca-certificates.crt", []error{ErrNotInPlace, ErrNotRootMount}},
			{"/cache", []error{ErrNotInPlace, ErrNotRootMount}},
			{"/run/secrets/token", []error{ErrNotInPlace, ErrNotRootMount}},
			// Wrong paths: no fallback either.
			{"/etc/ssl/missing", []error{fs.ErrNotExist}},
			{"/etc/ssl/escape/x", []error{fs.ErrNotExist}},
			{"/etc/ssl/escapedir/shadow", []error{fs.ErrNotExist}},
			{"/etc/ssl/hostabs/shadow", []error{fs.ErrNotExist}},
			{"/../../../host/etc/shadow", []error{fs.ErrNotExist}},
			{"/etc/file/", []error{syscall.ENOTDIR}},
			{"/etc/file/x", []error{syscall.ENOTDIR}},
			{"/etc/a\x00b", []error{syscall.EINVAL}},
			{"/etc/" + strings.Repeat("n", 256), []error{syscall.ENAMETOOLONG}},
			{strings.Repeat("/d", 2100), []error{syscall.ENAMETOOLONG}},
		}
		for _, tc := range refused {
			err := fsys.Overwrite(tc.p, []byte("OURS"))
			for _, want := range tc.errs {
				if !errors.Is(err, want) {
					t.Errorf("Overwrite(%q) = %v, want %v", tc.p, err, want)
				}
			}
			if tc.errs[0] != ErrNotInPlace && errors.Is(err, ErrNotInPlace) {
				t.Errorf("Overwrite(%q) = %v, a fallback to WriteFile", tc.p, err)
			}
		}
		if _, err := os.Lstat(filepath.Join(sb.root, "nowhere")); err == nil {
			t.Errorf("created through a dangling link")
		}
		// guard: root tree, cache source; newSandbox: host canary.
	})
}

func TestOverwriteReadOnlyRoot(t *testing.T) {
	modes(t, func(t *testing.T, opts []Option) {
		sb := newSandbox(t, "file etc/x x")
		guard(t, sb.root)
		fsys := mustNew(t, bindSpec("/", sb.root, true), nil, opts...)
		err := fsys.Overwrite("/etc/x", []byte("y"))
		if !errors.Is(err, ErrNotInPlace) || !errors.Is(err, syscall.EROFS) {
			t.Errorf("Overwrite on ro root: %v", err)
		}
	})
}

// TestOverwriteDevices: devices are refused by type, never opened.
func TestOverwriteDevices(t *testing.T) {
	testenv.RequiresRoot(t)
	modes(t, func(t *testing.T, opts []Option) {
		sb := newSandbox(t, "char etc/null 1 3", "block etc/blk 7 0", "char etc/tty 5 0", "whiteout etc/wh")
		guard(t, sb.root)
		fsys := mustNew(t, bindSpec("/", sb.root, false), nil, opts...)
		for _, p := range []string{"/etc/null", "/etc/blk", "/etc/tty", "/etc/wh"} {
			err := fsys.Overwrite(p, []byte("x"))
			if !errors.Is(err, ErrNotInPlace) || !errors.Is(err, ErrNotRegular) {
				t.Errorf("Overwrite(%s) = %v", p, err)
			}
		}
	})
}

// TestOverwriteKernelOverlay: through a kernel overlay (an embedder's raw
// writable overlay; BuildKit's pooled root is the same kernel code behind a
// bind), a lower file is copied up and written in the upper, the lower is
// untouched, and a lower file with another hard link is refused before any
// copy-up.
func TestOverwriteKernelOverlay(t *testing.T) {
	testenv.RequiresRoot(t)
	modes(t, func(t *testing.T, opts []Option) {
		sb := newSandbox(t)
		lower, upper, work := sb.path("lower"), sb.path("upper"), sb.path("work")
		treespec.Build(t, lower,
			"file etc/ssl/certs/ca-certificates.crt LOWER-BUNDLE mode=0644 owner=0:0 mtime=1600000000.25",
			"file etc/ssl/linked L",
			"hardlink etc/ssl/linked2 -> etc/ssl/linked",
		)
		treespec.Build(t, upper)
		treespec.Build(t, work)
		guard(t, lower)
		root := Spec{Dest: "/", Mounts: []mount.Mount{{Type: "overlay", Source: "overlay",
			Options: []string{"lowerdir=" + lower, "upperdir=" + upper, "workdir=" + work, "index=off", "redirect_dir=off"}}}}
		fsys := mustNew(t, root, nil, opts...)
		fi, err := fsys.Lstat("etc/ssl/certs/ca-certificates.crt")
		if err != nil {
			t.Fatal(err)
		}
		for _, data := range []string{"LOWER-BUNDLE+OURS", "LOWER"} {
			if err := fsys.Overwrite("/etc/ssl/certs/ca-certificates.crt", []byte(data)); err != nil {
				t.Fatal(err)
			}
			if b, err := os.ReadFile(filepath.Join(upper, "etc/ssl/certs/ca-certificates.crt")); err != nil || string(b) != data {
				t.Errorf("upper = %q, %v; want %q", b, err, data)
			}
			if b, err := fsys.ReadFileLimit("/etc/ssl/certs/ca-certificates.crt", 1<<20); err != nil || string(b) != data {
				t.Errorf("merged = %q, %v; want %q", b, err, data)
			}
		}
		now, err := fsys.Lstat("etc/ssl/certs/ca-certificates.crt")
		if err != nil {
			t.Fatal(err)
		}
		if now.Mode() != fi.Mode() {
			t.Errorf("mode %v, want %v", now.Mode(), fi.Mode())
		}
		err = fsys.Overwrite("/etc/ssl/linked", []byte("x"))
		if !errors.Is(err, ErrNotInPlace) || !errors.Is(err, errLinked) {
			t.Errorf("hard-linked lower file: %v", err)
		}
		if _, err := os.Lstat(filepath.Join(upper, "etc/ssl/linked")); err == nil {
			t.Errorf("hard-linked lower file was copied up")
		}
	})
}

func TestFirstDiff(t *testing.T) {
	a := make([]byte, 10<<10)
	for i := range a {
		a[i] = byte(i * 7)
	}
	for _, at := range []int{0, 1, 4095, 4096, 4097, 8191, len(a) - 1} {
		b := append([]byte(nil), a...)
		b[at]++
		if got := firstDiff(a, b); got != at {
			t.Errorf("difference at %d: firstDiff = %d", at, got)
		}
	}
	if got := firstDiff(a, append([]byte(nil), a...)); got != -1 {
		t.Errorf("equal: firstDiff = %d", got)
	}
	if got := firstDiff(nil, nil); got != -1 {
		t.Errorf("empty: firstDiff = %d", got)
	}
}
