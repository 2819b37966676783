package treespec

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

func TestBuild(t *testing.T) {
	root := t.TempDir()
	Build(t, root,
		"dir a mode=0700",
		"file b/c/file some  content mode=0600 mtime=1700000000.5",
		`file q "x\ny"`,
		"file empty",
		"symlink e -> /b/c/d/e",
		"symlink e2 ../x",
		"hardlink h -> b/c/file",
		"fifo f",
		"opaque o user",
		"xwhiteout o/w user",
		"dir m mtime=1600000000.000000001",
		"file m/child x",
	)
	read := func(p string) string {
		b, err := os.ReadFile(filepath.Join(root, p))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	if got := read("b/c/file"); got != "some  content" {
		t.Errorf("content %q", got)
	}
	if got := read("q"); got != "x\ny" {
		t.Errorf("quoted content %q", got)
	}
	if got := read("empty"); got != "" {
		t.Errorf("empty content %q", got)
	}
	if l, _ := os.Readlink(filepath.Join(root, "e")); l != "/b/c/d/e" {
		t.Errorf("link %q", l)
	}
	var st unix.Stat_t
	if err := unix.Lstat(filepath.Join(root, "b/c/file"), &st); err != nil {
		t.Fatal(err)
	}
	if st.Mode&0o777 != 0o600 || st.Mtim.Sec != 1700000000 || st.Mtim.Nsec != 500000000 || st.Nlink != 2 {
		t.Errorf("stat %+v", st)
	}
	if err := unix.Lstat(filepath.Join(root, "m"), &st); err != nil || st.Mtim.Nsec != 1 {
		t.Errorf("dir mtime %v %v", st.Mtim, err)
	}
	if err := unix.Lstat(filepath.Join(root, "f"), &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFIFO {
		t.Errorf("fifo %v", err)
	}
	buf := make([]byte, 8)
	if n, err := unix.Lgetxattr(filepath.Join(root, "o"), "user.overlay.opaque", buf); err != nil || string(buf[:n]) != "y" {
		t.Errorf("opaque xattr %q %v", buf[:n], err)
	}
	c := NewCanary(t, root)
	s1, _ := Snapshot(root)
	if len(s1) < 10 {
		t.Errorf("snapshot has %d entries", len(s1))
	}
	if err := os.WriteFile(filepath.Join(root, "a/new"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	s2, _ := Snapshot(root)
	if d := Diff(s1, s2); len(d) != 2 { // a changed mtime, a/new added
		t.Errorf("diff %q", d)
	}
	_ = c
}
