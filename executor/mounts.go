package executor

import (
	"context"
	"errors"
	"fmt"
	"path"

	bkexecutor "github.com/moby/buildkit/executor"
	"github.com/moby/sys/user"
	"github.com/sirupsen/logrus"

	"github.com/buildkit-cacerts/buildkit-cacerts/vfs"
)

// specs are the mounted specs of one container and their releases.
type specs struct {
	root   vfs.Spec
	mounts []vfs.Spec
	// idmap is the root snapshot's user-namespace mapping
	// (MountableRef.IdentityMapping), nil when it has none.
	idmap    *user.IdentityMapping
	releases []func() error
}

// acquireSpecs mounts root and mounts the way BuildKit's executors do
// (Src.Mount, then MountableRef.Mount) and returns their mount specs. The
// mounts are shared with the inner executor's (BuildKit reference-counts its
// pooled overlay mounts), so the root the Installer writes is the root the
// process sees. The caller releases them after the revert.
func acquireSpecs(ctx context.Context, root bkexecutor.Mount, mounts []bkexecutor.Mount) (_ *specs, retErr error) {
	s := &specs{}
	defer func() {
		if retErr != nil {
			s.release(nil)
		}
	}()
	rs, idmap, err := s.acquire(ctx, "/", root)
	if err != nil {
		return nil, err
	}
	s.root, s.idmap = rs, idmap
	for _, m := range mounts {
		if m.Src == nil {
			continue
		}
		ms, _, err := s.acquire(ctx, m.Dest, m)
		if err != nil {
			return nil, err
		}
		s.mounts = append(s.mounts, ms)
	}
	return s, nil
}

// acquire mounts m and returns its spec and the identity mapping of its
// snapshot (nil when none).
func (s *specs) acquire(ctx context.Context, dest string, m bkexecutor.Mount) (vfs.Spec, *user.IdentityMapping, error) {
	ref, err := m.Src.Mount(ctx, m.Readonly)
	if err != nil {
		return vfs.Spec{}, nil, fmt.Errorf("mounting %s: %w", dest, err)
	}
	mnts, release, err := ref.Mount()
	if err != nil {
		return vfs.Spec{}, nil, fmt.Errorf("mounting %s: %w", dest, err)
	}
	if release != nil {
		s.releases = append(s.releases, release)
	}
	return vfs.Spec{Dest: dest, Mounts: mnts, Selector: m.Selector, Readonly: m.Readonly}, ref.IdentityMapping(), nil
}

// release releases every mount, last first, and logs failures (there is
// nothing else to do with them: the exec's result is already decided).
func (s *specs) release(log *logrus.Entry) {
	var errs []error
	for i := len(s.releases) - 1; i >= 0; i-- {
		if err := s.releases[i](); err != nil {
			errs = append(errs, err)
		}
	}
	s.releases = nil
	if err := errors.Join(errs...); err != nil && log != nil {
		log.WithError(err).Warn("cacerts: releasing the container's mounts")
	}
}

// byDest maps each mount's clean destination to its spec (a later mount at
// the same destination wins, as it covers the earlier one).
func (s *specs) byDest() map[string]vfs.Spec {
	out := make(map[string]vfs.Spec, len(s.mounts))
	for _, m := range s.mounts {
		out[path.Clean("/"+m.Dest)] = m
	}
	return out
}
