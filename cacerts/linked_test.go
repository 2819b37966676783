package cacerts

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/buildkit-cacerts/buildkit-cacerts/internal/treespec"
	"github.com/buildkit-cacerts/buildkit-cacerts/vfs"
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

// TestMountOverAnchorDirIsNoRollbackFailure: a cache mount over the local
// anchor directory makes an install that writes anchors fail (invariant 7:
// never write another mount). The rollback must not fail on the untouched
// mount point (its mtime is already the base's): the error is not
// ErrRollbackFailed, so a non-strict exec runs without CAs instead of
// failing, and nothing is left anywhere.
func TestMountOverAnchorDirIsNoRollbackFailure(t *testing.T) {
	set := testSet(t, genCAs(t, 1)...)
	dir := t.TempDir()
	root := filepath.Join(dir, "root")
	treespec.Build(t, root, debianSpecs(t, hostCerts(t, 2))...)
	cache := filepath.Join(dir, "cache")
	treespec.Build(t, cache, "dir .")
	before, cacheBefore := snap(t, root), snap(t, cache)
	run := runnerFunc(func(ctx context.Context, argv []string) ([]byte, error) {
		t.Errorf("the tool ran: %v", argv)
		return nil, nil
	})
	for _, m := range []Method{MethodAuto, MethodFast, MethodCommand} {
		fsys := openRoot(t, root, bindSpec("/usr/local/share/ca-certificates", cache, false))
		j, err := Install(context.Background(), fsys, detect(t, fsys), set, Exec{Runner: run}, Options{Method: m})
		if errors.Is(err, ErrRollbackFailed) {
			t.Fatalf("%s: install over a mounted anchor dir: %v", m, err)
		}
		if err != nil && !errors.Is(err, vfs.ErrNotRootMount) {
			t.Errorf("%s: install over a mounted anchor dir: %v, want an error matching vfs.ErrNotRootMount (or none)", m, err)
		}
		if err := j.Revert(context.Background(), openRoot(t, root, bindSpec("/usr/local/share/ca-certificates", cache, false))); err != nil {
			t.Fatalf("%s: revert: %v", m, err)
		}
		assertSame(t, m.String()+": root", before, snap(t, root))
		assertSame(t, m.String()+": cache", cacheBefore, snap(t, cache))
	}
}

// TestRevertKeepsUntouchedHardLinks: two journaled names that are one inode
// in the image, neither changed by us nor by the process, are left exactly
// as they are (no rewrite, the hard link kept).
func TestRevertKeepsUntouchedHardLinks(t *testing.T) {
	root := filepath.Join(t.TempDir(), "root")
	treespec.Build(t, root,
		"dir var/lib/dpkg mode=0755 mtime=1704067200",
		"file var/lib/dpkg/status Package:x mode=0644 mtime=1704067200",
	)
	dir := filepath.Join(root, "var/lib/dpkg")
	must(t, os.Link(filepath.Join(dir, "status"), filepath.Join(dir, "status-old")))
	before := snap(t, root)
	fsys := openRoot(t, root)
	j := newJournal(MethodCommand)
	for _, p := range []string{"/var/lib/dpkg/status", "/var/lib/dpkg/status-old"} {
		if _, err := j.record(fsys, p, true); err != nil {
			t.Fatal(err)
		}
	}
	if err := j.finish(fsys); err != nil {
		t.Fatal(err)
	}
	if err := j.Revert(context.Background(), openRoot(t, root)); err != nil {
		t.Fatal(err)
	}
	assertSame(t, "tree", before, snap(t, root))
	a, _ := os.Stat(filepath.Join(dir, "status"))
	b, _ := os.Stat(filepath.Join(dir, "status-old"))
	if !os.SameFile(a, b) {
		t.Error("the hard link between status and status-old was broken")
	}
}
