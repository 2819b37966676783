package cacerts

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/buildkit-cacerts/buildkit-cacerts/distro"
	"github.com/buildkit-cacerts/buildkit-cacerts/internal/treespec"
)

// countFS counts the bytes ReadFileLimit returns.
type countFS struct {
	FS
	read int64
}

func (c *countFS) ReadFileLimit(p string, max int64) ([]byte, error) {
	b, err := c.FS.ReadFileLimit(p, max)
	c.read += int64(len(b))
	return b, err
}

// TestTrustedAlreadyReadsBounded: an image can fill its anchor directory;
// the per-exec look at it for CAs the image already trusts reads at most
// maxOwnAnchorBytes of it (an image's own anchors are a few KB), and still
// finds the engine's CA in an anchor within that.
func TestTrustedAlreadyReadsBounded(t *testing.T) {
	ca := newCA(t, caOpt{cn: "Engine Test Root"})
	set := testSet(t, ca)
	root := filepath.Join(t.TempDir(), "root")
	treespec.Build(t, root, "dir etc/ssl/certs", "dir usr/local/share/ca-certificates")
	dir := filepath.Join(root, "usr/local/share/ca-certificates")
	if err := os.WriteFile(filepath.Join(dir, "a-own.crt"), set.Certs[0].PEM, 0o644); err != nil {
		t.Fatal(err)
	}
	filler := bytes.Repeat([]byte("x"), 900<<10)
	for i := 0; i < 40; i++ { // 36 MiB: 40 files just under maxCAFile
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("b%02d.crt", i)), filler, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	fsys := &countFS{FS: openRoot(t, root)}
	l := distro.Layout{AnchorDir: "/usr/local/share/ca-certificates", Bundles: []distro.Bundle{{Path: "/etc/ssl/certs/ca-certificates.crt"}}}
	held, _ := trustedAlready(fsys, l, set)
	if !held[set.Certs[0].SHA256] {
		t.Errorf("the image's own anchor of the engine CA was not seen")
	}
	// The documented cap, written out: a test against the constant itself
	// would pass with the cap lifted.
	const capBytes = 1 << 20
	if fsys.read > capBytes {
		t.Errorf("read %d bytes of the image's anchors, cap %d", fsys.read, capBytes)
	}
	t.Logf("read %d bytes of a 36 MiB anchor directory", fsys.read)
}
