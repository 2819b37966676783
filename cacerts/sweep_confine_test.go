package cacerts

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/buildkit-cacerts/buildkit-cacerts/distro"
	"github.com/buildkit-cacerts/buildkit-cacerts/internal/treespec"
)

// TestSweepStaysConfined: what the process left for the sweep points out of
// the container — a subject-hash link of our CA and a .pem symlink to an
// absolute host path holding our CA, a link through /proc — and the sweep
// reads and changes nothing outside the root. The host file is unchanged;
// the hash link, dangling inside the container, is removed as stale.
func TestSweepStaysConfined(t *testing.T) {
	ca := newCA(t, caOpt{cn: "Engine Test Root"})
	set := testSet(t, ca)
	c := set.Certs[0]

	host := t.TempDir()
	canary := filepath.Join(host, "canary.pem")
	if err := os.WriteFile(canary, c.PEM, 0o644); err != nil {
		t.Fatal(err)
	}
	hostBefore := snap(t, host)

	root := filepath.Join(t.TempDir(), "root")
	treespec.Build(t, root, "dir etc/ssl/certs", "dir opt")
	since := time.Now().Add(-time.Second)
	hashLink := hex8(c.SubjectHash) + ".0"
	treespec.Build(t, root,
		"symlink etc/ssl/certs/"+hashLink+" -> "+canary,
		"symlink opt/copy.pem -> "+canary,
		"symlink opt/proc.pem -> /proc/self/root"+canary,
	)

	fsys := openRoot(t, root)
	j := newJournal(MethodGeneric)
	j.setInstalled(set, distro.Layout{})
	j.scan = []string{"/etc/ssl/certs"}
	if _, err := j.Sweep(context.Background(), fsys, Changes{Since: since}); err != nil {
		t.Fatalf("sweep: %v", err)
	}
	assertSame(t, "host directory beside the root", hostBefore, snap(t, host))
	if _, err := os.Lstat(filepath.Join(root, "etc/ssl/certs", hashLink)); !os.IsNotExist(err) {
		t.Errorf("stale hash link of our CA (dangling in the container) kept: %v", err)
	}
	for _, p := range []string{"opt/copy.pem", "opt/proc.pem"} {
		if _, err := os.Lstat(filepath.Join(root, p)); err != nil {
			t.Errorf("%s: a link that is not ours and not a hash link was touched: %v", p, err)
		}
	}
}
