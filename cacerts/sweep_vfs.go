package cacerts

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/moby/buildkit/util/bklog"

	"github.com/buildkit-cacerts/buildkit-cacerts/vfs"
)

// maxSweepDirEntries caps one directory of the exec's changes the sweep
// lists; a bigger one fails the exec (the sweep cannot say it is clean).
const maxSweepDirEntries = 1 << 20

// SweepRoot runs Sweep on fsys, the container's root assembled from root
// (its spec) after Revert: it finds the root overlay's upper directory
// from the spec (vfs.ChangesOf) and walks it; a root without one is walked
// whole for entries changed since the install began (since), skipping the
// exec's other mounts.
func (j *Journal) SweepRoot(ctx context.Context, fsys *vfs.FS, root vfs.Spec, since time.Time) (SweepStats, error) {
	if j == nil || j.installed.Len() == 0 {
		return SweepStats{}, nil
	}
	ch := Changes{Since: since}
	for _, m := range fsys.Mounts() {
		if !m.IsRoot() {
			ch.Skip = append(ch.Skip, m.Dest)
		}
	}
	loc, err := vfs.ChangesOf(root)
	switch {
	case err == nil:
		// A step may write a directory of more than the default 65,536
		// entries (a package cache): the exec's own writes, not the
		// image's, so the cap is higher here.
		upper, err := vfs.New(ctx, loc.Upper, nil, vfs.WithMaxDirEntries(maxSweepDirEntries))
		if err != nil {
			return SweepStats{}, fmt.Errorf("viewing the exec's changes to search them for engine CAs: %w", err)
		}
		defer upper.Close()
		ch.Upper = View(upper)
		if len(loc.Base.Mounts) > 0 {
			var base *vfs.FS
			defer func() {
				if base != nil {
					base.Close()
				}
			}()
			ch.OpenBase = func() (FS, error) {
				b, err := vfs.New(ctx, loc.Base, nil)
				if err != nil {
					bklog.G(ctx).WithError(err).Debug("cacerts: the root's lower layers cannot be read; every engine CA in the exec's changes counts as ours")
					return nil, err
				}
				base = b
				return View(b), nil
			}
		}
	case !errors.Is(err, vfs.ErrNoUpper):
		return SweepStats{}, fmt.Errorf("finding the exec's changes to search them for engine CAs: %w", err)
	}
	return j.Sweep(ctx, View(fsys), ch)
}
