package cacerts

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// bigJournal journals n files of one directory as a tool would have
// rewritten them, then changes each behind the journal's back (as a
// process would), so Revert treats every entry as changed by the process.
func bigJournal(t *testing.T, n int) (*Journal, FS) {
	t.Helper()
	root := t.TempDir()
	dir := filepath.Join(root, "etc/ssl/many")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i++ {
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%05d", i)), []byte("base\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	fsys := openRoot(t, root)
	j := newJournal(MethodCommand)
	for i := 0; i < n; i++ {
		p := fmt.Sprintf("/etc/ssl/many/f%05d", i)
		e, err := j.record(fsys, p, true)
		if err != nil {
			t.Fatal(err)
		}
		e.ours = e.base
		e.ours.mtime = e.ours.mtime.Add(-time.Second) // we "left" it older: now differs
		e.base.size++                                 // and the base differs from ours
	}
	return j, fsys
}

// TestRevertLinearInJournal: revert of a 12,000-entry journal where every
// entry was changed by the process looks each one up in an inode index, not
// in the whole journal (it took 33 s, 57 % of it in linkedFromOurs, before).
func TestRevertLinearInJournal(t *testing.T) {
	if testing.Short() {
		t.Skip("12,000 files")
	}
	j, fsys := bigJournal(t, 12000)
	start := time.Now()
	if err := j.Revert(context.Background(), fsys); err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	t.Logf("revert of 12,000 changed entries: %v", took)
	if took > 3*time.Second {
		t.Errorf("revert of 12,000 entries took %v: not linear", took)
	}
}

// TestRevertHonoursDeadline: a revert that cannot finish before its
// context's deadline returns an error (the exec fails, nothing is
// committed) instead of running on and returning nil.
func TestRevertHonoursDeadline(t *testing.T) {
	j, fsys := bigJournal(t, 12000)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := j.Revert(ctx, fsys)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Revert under a 10 ms deadline: %v, want an error wrapping context.DeadlineExceeded", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("Revert returned %v after its deadline", took)
	}
}
