package executor

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/buildkit-cacerts/buildkit-cacerts/cacerts"
	"github.com/buildkit-cacerts/buildkit-cacerts/distro"
	"github.com/buildkit-cacerts/buildkit-cacerts/vfs"
)

// defaultInstaller is the Installer Wrap uses when Options.Installer is nil.
// It installs c.CAs with the vfs, distro and cacerts packages: a confined
// view of the container built from its mount specs, the distribution
// detected in it, then cacerts.Install (fast path, the distro's tool in a
// sibling, or the generic bundle) and, after the process, Journal.Revert and
// the sweep on a fresh view of the same mounts. It decides nothing: an
// error is returned to Wrap, which owns the policy.
type defaultInstaller struct{}

// Install implements Installer.
func (defaultInstaller) Install(ctx context.Context, c *Container) (Revert, error) {
	if c.CAs.Len() == 0 {
		return nil, nil
	}
	since := time.Now()
	owner, err := c.RootOwner()
	if err != nil {
		return nil, err
	}
	fsys, err := vfs.New(ctx, c.Root, c.Mounts, owner...)
	if err != nil {
		return nil, fmt.Errorf("viewing the container's filesystem: %w", err)
	}
	// The view is closed before the user process starts (docs/design.md:
	// no layer descriptor may outlive the install).
	defer fsys.Close()
	dist, err := distro.Detect(fsys)
	if err != nil {
		return nil, fmt.Errorf("detecting the container's distribution: %w", err)
	}
	noteDistro(ctx, dist)
	x := cacerts.Exec{Env: c.Env}
	if c.Install.Method != cacerts.MethodFast {
		x.Runner = c.Runner // mode fast never starts a sibling
	}
	j, err := cacerts.Install(ctx, cacerts.View(fsys), dist, c.CAs, x, c.Install)
	if err != nil {
		return nil, err // cacerts rolled the partial install back
	}
	notePath(ctx, j.Method())
	if j.Method() == cacerts.MethodNone {
		return nil, nil
	}
	return func(ctx context.Context) error {
		fsys, err := vfs.New(ctx, c.Root, c.Mounts, owner...)
		if err != nil {
			return fmt.Errorf("viewing the container's filesystem to revert (left: %s): %w", strings.Join(j.Paths(), ", "), err)
		}
		defer fsys.Close()
		if err := j.Revert(ctx, cacerts.View(fsys)); err != nil {
			return err
		}
		fsys.Invalidate()
		_, err = j.SweepRoot(ctx, fsys, c.Root, since)
		return err
	}, nil
}
