package executor

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/containerd/containerd/v2/core/mount"
	"github.com/moby/buildkit/util/bklog"

	"github.com/buildkit-cacerts/buildkit-cacerts/cacerts"
	"github.com/buildkit-cacerts/buildkit-cacerts/internal/treespec"
	"github.com/buildkit-cacerts/buildkit-cacerts/vfs"
)

// TestDefaultInstallerLimits: Options.Install.Limits reaches the install: one more
// SSL_CERT_DIR directory than allowed fails a strict install with ErrLimit
// naming the knob, and the tree is left as it was.
func TestDefaultInstallerLimits(t *testing.T) {
	ctx := bklog.WithLogger(context.Background(), testLog())
	root := filepath.Join(t.TempDir(), "root")
	treespec.Build(t, root, "dir etc/ssl/a", "dir etc/ssl/b")
	before, err := treespec.Snapshot(root)
	if err != nil {
		t.Fatal(err)
	}
	c := &Container{
		Root:    vfs.Spec{Dest: "/", Mounts: []mount.Mount{{Type: "bind", Source: root, Options: []string{"rbind"}}}},
		Env:     []string{"SSL_CERT_DIR=/etc/ssl/a:/etc/ssl/b"},
		CAs:     caSet(t, 1),
		Install: cacerts.Options{Method: cacerts.MethodFast, Limits: cacerts.Limits{MaxCertDirs: 1}},
	}
	inst := defaultInstaller{}
	_, err = inst.Install(ctx, c)
	var le *cacerts.LimitError
	if !errors.Is(err, cacerts.ErrLimit) || !errors.As(err, &le) || le.Knob != "max_cert_dirs" {
		t.Fatalf("Install = %v, want ErrLimit for max_cert_dirs", err)
	}
	after, err := treespec.Snapshot(root)
	if err != nil {
		t.Fatal(err)
	}
	if d := treespec.Diff(before, after); len(d) > 0 {
		t.Errorf("tree after the failed install: %v", d)
	}
	c.Install.Limits.MaxCertDirs = 2
	revert, err := inst.Install(ctx, c)
	if err != nil {
		t.Fatalf("with max_cert_dirs = 2: %v", err)
	}
	if err := revert(ctx); err != nil {
		t.Fatal(err)
	}
}
