package cacerts

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/buildkit-cacerts/buildkit-cacerts/internal/treespec"
)

// TestRevertLinkedCopyOfOurs: the update tool rewrote dpkg's status with
// the same content (new inode, new mtime); the process then ran dpkg, which
// links the current status to status-old and writes a new status. Without
// injection status-old would be the base status; after revert it must carry
// the base status's metadata, not our write time.
func TestRevertLinkedCopyOfOurs(t *testing.T) {
	root := filepath.Join(t.TempDir(), "root")
	treespec.Build(t, root,
		"dir var/lib/dpkg mode=0755 mtime=1704067200",
		"file var/lib/dpkg/status Package:x mode=0644 mtime=1704067200",
		"file var/lib/dpkg/status-old Package:x mode=0644 mtime=1704067100",
	)
	base, err := os.Lstat(filepath.Join(root, "var/lib/dpkg/status"))
	if err != nil {
		t.Fatal(err)
	}
	fsys := openRoot(t, root)
	j := newJournal(MethodCommand)
	// The sibling's dpkg --triggers-only: same content, new inode and mtime.
	if _, err := j.writeFile(fsys, "/var/lib/dpkg/status", []byte("Package:x"), 0o644, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := j.record(fsys, "/var/lib/dpkg/status-old", true); err != nil {
		t.Fatal(err)
	}
	if err := j.finish(fsys); err != nil {
		t.Fatal(err)
	}
	time.Sleep(10 * time.Millisecond)

	// The process's dpkg (lib/dpkg/dump.c): status-old := link(status), then
	// a new status by rename.
	dir := filepath.Join(root, "var/lib/dpkg")
	must(t, os.Remove(filepath.Join(dir, "status-old")))
	must(t, os.Link(filepath.Join(dir, "status"), filepath.Join(dir, "status-old")))
	must(t, os.WriteFile(filepath.Join(dir, "status-new"), []byte("Package:x\nStatus: installed"), 0o644))
	must(t, os.Rename(filepath.Join(dir, "status-new"), filepath.Join(dir, "status")))

	if err := j.Revert(context.Background(), openRoot(t, root)); err != nil {
		t.Fatal(err)
	}
	old, err := os.Lstat(filepath.Join(dir, "status-old"))
	if err != nil {
		t.Fatal(err)
	}
	if !old.ModTime().Equal(base.ModTime()) {
		t.Errorf("status-old mtime %v, want the base status's %v", old.ModTime(), base.ModTime())
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "status")); string(b) != "Package:x\nStatus: installed" {
		t.Errorf("the process's status was changed: %q", b)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
