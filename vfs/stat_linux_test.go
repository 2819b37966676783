package vfs

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"testing/fstest"
)

// TestStatOf: the Stat of a vfs FileInfo is the kernel's (identity, links,
// owner, times to the nanosecond); a FileInfo from elsewhere has none.
func TestStatOf(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f")
	if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(p, filepath.Join(dir, "g")); err != nil {
		t.Fatal(err)
	}
	var want syscall.Stat_t
	if err := syscall.Lstat(p, &want); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Lstat(p)
	if err != nil {
		t.Fatal(err)
	}
	st, ok := StatOf(fi)
	if !ok || st.Dev != uint64(want.Dev) || st.Ino != want.Ino || st.Nlink != 2 || st.Uid != want.Uid || st.Gid != want.Gid ||
		st.Mtime.UnixNano() != want.Mtim.Nano() || st.Ctime.UnixNano() != want.Ctim.Nano() || st.Atime.UnixNano() != want.Atim.Nano() {
		t.Errorf("StatOf = %+v, %v; want the kernel's %+v", st, ok, want)
	}
	fsys := fstest.MapFS{"a": {Data: []byte("x")}}
	fi2, err := fsys.Stat("a")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := StatOf(fi2); ok {
		t.Error("StatOf of a MapFS FileInfo reported a Stat")
	}
	if _, ok := StatOf(nil); ok {
		t.Error("StatOf(nil) reported a Stat")
	}
}
