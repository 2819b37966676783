package vfs

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func lstatHost(t *testing.T, p string) unix.Stat_t {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		t.Fatal(err)
	}
	return st
}

func TestWrite(t *testing.T) {
	modes(t, func(t *testing.T, opts []Option) {
		sb := newSandbox(t,
			"file etc/ssl/certs/ca-certificates.crt OLD mode=0640 xattr=user.keep=1",
			"hardlink etc/ssl/other -> etc/ssl/certs/ca-certificates.crt",
			"symlink etc/ssl/cert.pem -> certs/ca-certificates.crt",
			"symlink etc/ssl/dangling -> /nowhere/file",
			"symlink etc/ssl/dangling2 -> missing",
			"symlink etc/ssl/escape -> ../../../../host/etc/shadow",
			"dir usr/local/share",
			"fifo etc/fifo",
			"file etc/file x",
			"dir cache",
		)
		cache := sb.path("cachesrc")
		if err := os.MkdirAll(cache, 0o755); err != nil {
			t.Fatal(err)
		}
		fsys := mustNew(t, bindSpec("/", sb.root, false), []Spec{bindSpec("/cache", cache, false)}, opts...)
		bundle := filepath.Join(sb.root, "etc/ssl/certs/ca-certificates.crt")
		before := lstatHost(t, bundle)
		if err := fsys.WriteFile("/etc/ssl/cert.pem", []byte("NEW"), 0o600); err != nil {
			t.Fatal(err)
		}
		after := lstatHost(t, bundle)
		if after.Ino == before.Ino {
			t.Errorf("written in place")
		}
		if after.Mode&0o7777 != 0o640 {
			t.Errorf("mode %o, want 0640 kept", after.Mode&0o7777)
		}
		buf := make([]byte, 8)
		if n, err := unix.Lgetxattr(bundle, "user.keep", buf); err != nil || string(buf[:n]) != "1" {
			t.Errorf("xattr not kept: %q %v", buf[:n], err)
		}
		if b, _ := os.ReadFile(filepath.Join(sb.root, "etc/ssl/other")); string(b) != "OLD" {
			t.Errorf("hard link changed: %q", b)
		}
		if l, _ := os.Readlink(filepath.Join(sb.root, "etc/ssl/cert.pem")); l != "certs/ca-certificates.crt" {
			t.Errorf("link replaced: %q", l)
		}
		for _, tc := range []struct {
			p   string
			err error
		}{
			{"/etc/ssl/dangling", fs.ErrNotExist},
			{"/etc/ssl/dangling2", fs.ErrNotExist},
			{"/etc/ssl/escape", fs.ErrNotExist},
			{"/etc/fifo", ErrNotRegular},
			{"/etc/ssl", syscall.EISDIR},
			{"/etc/ssl/", syscall.EISDIR},
			{"/etc/file/x", syscall.ENOTDIR},
			{"/cache/x", ErrNotRootMount},
			{"/cache", ErrNotRootMount},
			{"/", syscall.EISDIR},
			{"/etc/..", syscall.EISDIR},
		} {
			if err := fsys.WriteFile(tc.p, []byte("x"), 0o644); !errors.Is(err, tc.err) {
				t.Errorf("WriteFile(%q) = %v, want %v", tc.p, err, tc.err)
			}
		}
		if _, err := os.Lstat(filepath.Join(sb.root, "nowhere")); err == nil {
			t.Errorf("created through dangling link")
		}
		if err := fsys.WriteFile("/usr/local/share/new.crt", []byte("N"), 0o644); err != nil {
			t.Fatal(err)
		}
		if st := lstatHost(t, filepath.Join(sb.root, "usr/local/share/new.crt")); st.Mode&0o777 != 0o644 || st.Uid != uint32(os.Getuid()) && os.Getuid() == 0 {
			t.Errorf("new file mode %o uid %d", st.Mode&0o777, st.Uid)
		}
		// MkdirAll
		created, err := fsys.MkdirAll("/usr/local/share/ca-certificates/extra/x", 0o755)
		if err != nil || created != "/usr/local/share/ca-certificates" {
			t.Errorf("MkdirAll = %q, %v", created, err)
		}
		if st := lstatHost(t, filepath.Join(sb.root, "usr/local/share/ca-certificates/extra")); st.Mode&0o7777 != 0o755 {
			t.Errorf("mkdir mode %o", st.Mode&0o7777)
		}
		if created, err := fsys.MkdirAll("/usr/local/share/ca-certificates/extra", 0o755); err != nil || created != "" {
			t.Errorf("MkdirAll existing = %q, %v", created, err)
		}
		if _, err := fsys.MkdirAll("/etc/ssl/dangling2/x", 0o755); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("MkdirAll through dangling link: %v", err)
		}
		if _, err := fsys.MkdirAll("/etc/file/x", 0o755); !errors.Is(err, syscall.ENOTDIR) {
			t.Errorf("MkdirAll through file: %v", err)
		}
		if _, err := fsys.MkdirAll("/cache/x", 0o755); !errors.Is(err, ErrNotRootMount) {
			t.Errorf("MkdirAll in other mount: %v", err)
		}
		if c, err := fsys.MkdirAll("/etc/ssl/certs/../../newdir/.", 0o755); err != nil || c != "/usr/lib/newdir" && c != "/etc/newdir" {
			t.Errorf("MkdirAll with ..: %q %v", c, err)
		}
		// Symlink, Lchtimes, Lchown, Chmod, Remove
		if err := fsys.Symlink("/etc/shadow", "/etc/ssl/link"); err != nil {
			t.Fatal(err)
		}
		if err := fsys.Symlink("x", "/etc/ssl/link"); !errors.Is(err, fs.ErrExist) {
			t.Errorf("Symlink over existing: %v", err)
		}
		ts := time.Unix(1600000000, 123456789)
		for _, p := range []string{"/etc/ssl/link", "/etc/ssl", "/etc/ssl/certs/ca-certificates.crt", "/"} {
			if err := fsys.Lchtimes(p, ts, ts); err != nil {
				t.Errorf("Lchtimes(%s): %v", p, err)
			}
			fi, err := fsys.Lstat(trimSlash(p))
			if err != nil || !fi.ModTime().Equal(ts) {
				t.Errorf("Lchtimes(%s): mtime %v %v", p, fi.ModTime(), err)
			}
		}
		old := time.Date(2300, 1, 2, 3, 4, 5, 6, time.UTC) // past UnixNano's range
		if err := fsys.Lchtimes("/etc/file", time.Time{}, old); err != nil {
			t.Errorf("Lchtimes after 2262: %v", err)
		}
		if fi, _ := fsys.Lstat("etc/file"); !fi.ModTime().Equal(old) {
			t.Errorf("mtime %v, want %v", fi.ModTime(), old)
		}
		if err := fsys.Lchtimes("/cache", ts, ts); !errors.Is(err, ErrNotRootMount) {
			t.Errorf("Lchtimes on mount: %v", err)
		}
		if err := fsys.Chmod("/etc/ssl/link", 0o600); !errors.Is(err, syscall.EOPNOTSUPP) {
			t.Errorf("Chmod on symlink: %v", err)
		}
		if err := fsys.Chmod("/etc/file", 0o600); err != nil {
			t.Errorf("Chmod: %v", err)
		}
		if err := fsys.Lchown("/etc/ssl/link", 0, 0); err != nil && os.Getuid() == 0 {
			t.Errorf("Lchown: %v", err)
		}
		if err := fsys.Remove("/etc/ssl/link"); err != nil {
			t.Errorf("Remove link: %v", err)
		}
		if err := fsys.Remove("/usr/local/share/ca-certificates/extra/x/"); err != nil {
			t.Errorf("Remove dir/: %v", err)
		}
		if err := fsys.Remove("/usr/local/share/ca-certificates"); !errors.Is(err, syscall.ENOTEMPTY) {
			t.Errorf("Remove non-empty: %v", err)
		}
		if err := fsys.Remove("/etc/file/"); !errors.Is(err, syscall.ENOTDIR) {
			t.Errorf("Remove file/: %v", err)
		}
		if err := fsys.Remove("/cache"); !errors.Is(err, ErrNotRootMount) {
			t.Errorf("Remove mount point: %v", err)
		}
	})
}

func trimSlash(p string) string {
	if p == "/" {
		return "."
	}
	return p[1:]
}

func TestReadOnlyRoot(t *testing.T) {
	sb := newSandbox(t, "file etc/x x")
	fsys := mustNew(t, bindSpec("/", sb.root, true), nil)
	if err := fsys.WriteFile("/etc/y", nil, 0o644); !errors.Is(err, syscall.EROFS) {
		t.Errorf("WriteFile on ro root: %v", err)
	}
	if _, err := fsys.MkdirAll("/etc/z", 0o755); !errors.Is(err, syscall.EROFS) {
		t.Errorf("MkdirAll on ro root: %v", err)
	}
	if err := fsys.Remove("/etc/x"); !errors.Is(err, syscall.EROFS) {
		t.Errorf("Remove on ro root: %v", err)
	}
}

// TestRemoveDirForgetsHandle: a directory the FS removed and made again is
// a new inode; writes under its path must land in the new one (the
// directory cache forgets a removed directory), as a revert that removes our
// anchor directory and a later install in the same FS need.
func TestRemoveDirForgetsHandle(t *testing.T) {
	modes(t, func(t *testing.T, opts []Option) {
		sb := newSandbox(t, "dir usr/local/share")
		fsys := mustNew(t, bindSpec("/", sb.root, false), nil, opts...)
		d := "/usr/local/share/ca-certificates"
		for i := range 2 {
			if _, err := fsys.MkdirAll(d, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := fsys.WriteFile(d+"/a.crt", []byte("x"), 0o644); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(filepath.Join(sb.root, d, "a.crt")); err != nil {
				t.Fatalf("round %d: the file is not in the directory on disk: %v", i, err)
			}
			if err := fsys.Remove(d + "/a.crt"); err != nil {
				t.Fatal(err)
			}
			if err := fsys.Remove(d); err != nil {
				t.Fatal(err)
			}
		}
	})
}
