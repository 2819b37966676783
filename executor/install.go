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

// newDefaultInstaller is the Installer Wrap uses when Options.Installer is
// nil.
func newDefaultInstaller(o Options) Installer {
	return &defaultInstaller{cas: o.CAs, mode: o.Mode, strict: o.Strict, combineAbove: o.CombineAbove, limits: o.Limits}
}

// defaultInstaller installs the CA set with the vfs, distro and cacerts
// packages: a confined view of the container built from its mount specs,
// the distribution detected in it, then cacerts.Install (fast path, the
// distro's tool in a sibling, or the generic bundle) and, after the
// process, Journal.Revert on a fresh view of the same mounts.
type defaultInstaller struct {
	cas          CASource
	mode         Mode
	strict       bool
	combineAbove int
	limits       cacerts.Limits
}

// Install implements Installer.
func (d *defaultInstaller) Install(ctx context.Context, c *Container) (Revert, error) {
	set, err := d.load(ctx)
	if err != nil {
		return nil, err
	}
	return d.install(ctx, c, set)
}

// load reads the engine's CA set; nil (no error) when there is no source.
// Wrap calls it before mounting the container's specs, so that an exec with
// nothing to install costs no mount.
func (d *defaultInstaller) load(ctx context.Context) (*cacerts.Set, error) {
	if d.cas == nil {
		return nil, nil
	}
	set, err := d.cas.Load(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading the engine's CA certificates: %w", err)
	}
	return set, nil
}

// install installs set (already loaded) into c; an empty set does nothing.
func (d *defaultInstaller) install(ctx context.Context, c *Container, set *cacerts.Set) (Revert, error) {
	if set.Len() == 0 {
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
	opt := cacerts.Options{Env: c.Env, Strict: d.strict, CombineAbove: d.combineAbove, Limits: d.limits}
	switch d.mode {
	case ModeCommand:
		opt.Method, opt.Runner = cacerts.MethodCommand, c.Runner
	case ModeFast:
		opt.Method = cacerts.MethodAuto // no Runner: fast, else generic
	default:
		opt.Method, opt.Runner = cacerts.MethodAuto, c.Runner
	}
	j, err := cacerts.Install(ctx, fsys, dist, set, opt)
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
		if err := j.Revert(ctx, fsys); err != nil {
			return err
		}
		fsys.Invalidate()
		_, err = j.SweepRoot(ctx, fsys, c.Root, since)
		return err
	}, nil
}
