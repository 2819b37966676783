package distro

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/containerd/containerd/v2/core/mount"

	"github.com/buildkit-cacerts/buildkit-cacerts/internal/treespec"
	"github.com/buildkit-cacerts/buildkit-cacerts/vfs"
)

// TestDetectOnVFSProblemsMatch runs Detect on the vfs, which reads through
// its own ReadFileLimit, and matches the problems it records with the
// errors Detect documents: the vfs's refusals and Detect's own are the same
// values (before, an oversized os-release read by the vfs matched neither).
func TestDetectOnVFSProblemsMatch(t *testing.T) {
	dir := t.TempDir()
	treespec.Build(t, dir,
		fileSpec("etc/os-release", "ID=debian\n"+strings.Repeat("#", MaxOSReleaseSize)),
		"fifo usr/lib/os-release",
		"file etc/debian_version 12.5",
	)
	fsys, err := vfs.New(context.Background(), vfs.Spec{Dest: "/", Mounts: []mount.Mount{{Type: "bind", Source: dir, Options: []string{"rbind", "ro"}}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer fsys.Close()
	d := detectWithin(t, fsys)
	if d.Family != FamilyDebian || d.Source != "/etc/debian_version" {
		t.Errorf("got %s from %q, want debian from /etc/debian_version", d.Family, d.Source)
	}
	if !hasProblem(d, ErrTooLarge) || !hasProblem(d, vfs.ErrTooLarge) {
		t.Errorf("problems %v: the oversized /etc/os-release does not match ErrTooLarge", d.Problems)
	}
	if !hasProblem(d, ErrNotRegular) {
		t.Errorf("problems %v: the FIFO /usr/lib/os-release does not match ErrNotRegular", d.Problems)
	}
	if !errors.Is(ErrTooLarge, vfs.ErrTooLarge) || !errors.Is(ErrNotRegular, vfs.ErrNotRegular) {
		t.Error("distro's errors are not the vfs's")
	}
}
