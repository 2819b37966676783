package main

import (
	"bufio"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/containerd/containerd/v2/core/snapshots"
	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/buildkit/client"
	"github.com/moby/buildkit/util/bklog"
	"github.com/moby/buildkit/worker/base"
	"github.com/pkg/errors"
	"golang.org/x/sys/unix"
)

// Keys of BuildKit's cache metadata (cache/metadata.go, v0.34.2).
const (
	mdCommitted    = "snapshot.committed"
	mdEqualMutable = "cache.equalMutable"
	mdRecordType   = "cache.recordType"
	mdSnapshot     = "cache.snapshot"
)

// pruneStaleExecRoots removes the cache records of exec roots a killed
// daemon left: mutable (never committed), of the regular type (not a cache
// mount, local source or frontend record), and not the mutable twin of a
// committed record (BuildKit's equalMutable, which holds a finished layer).
// After a restart nothing refers to them: BuildKit never reuses a mutable
// exec root, but keeps the record and its snapshot (our CA inside) until a
// prune. It returns how many it removed.
func pruneStaleExecRoots(ctx context.Context, w *base.Worker, opt base.WorkerOpt) (int, error) {
	items, err := opt.MetadataStore.All()
	if err != nil {
		return 0, errors.Wrap(err, "recovering after a crash: listing cache records")
	}
	twins := map[string]bool{}
	for _, it := range items {
		var eq string
		if v := it.Get(mdEqualMutable); v != nil && v.Unmarshal(&eq) == nil && eq != "" {
			twins[eq] = true
		}
	}
	var stale []string
	for _, it := range items {
		var committed bool
		if v := it.Get(mdCommitted); v != nil && v.Unmarshal(&committed) == nil && committed {
			continue
		}
		var rt string
		if v := it.Get(mdRecordType); v != nil {
			_ = v.Unmarshal(&rt)
		}
		if (rt == "" || rt == string(client.UsageRecordTypeRegular)) && !twins[it.ID()] {
			stale = append(stale, it.ID())
		}
	}
	for _, id := range stale {
		ch := make(chan client.UsageInfo)
		done := make(chan struct{})
		go func() {
			for range ch {
			}
			close(done)
		}()
		err := w.Prune(ctx, ch, client.PruneInfo{All: true, Filter: []string{"id==" + id}})
		close(ch)
		<-done
		if err != nil {
			return 0, errors.Wrapf(err, "recovering after a crash: removing the stale exec root %s", id)
		}
		bklog.G(ctx).WithField("record", id).Info("cacerts: removed the exec root of a killed daemon (its CA certificates were never reverted)")
	}
	return len(stale), nil
}

// recoverAfterCrash runs once at start-up, after the worker is made (so
// BuildKit's cache manager has dropped the records it could not load) and
// before the gRPC server serves any build. It removes what an exec of a
// daemon that was killed mid-exec (SIGKILL, OOM, power loss) leaves with
// the engine's CA certificates in it — their revert never ran:
//
//   - the runc bundles' rootfs mounts under <worker root>/executor, still
//     mounted in the host's namespace, each a live view of the exec's root
//     (lazily unmounted: a container process that outlived the daemon keeps
//     its own mount namespace);
//   - the exec's writable root: its mutable cache record when BuildKit had
//     committed the record's metadata before the kill (pruneStaleExecRoots),
//     and in any case its snapshot, which then no cache record refers to
//     (BuildKit never hands it to a build, but it stays on disk, our CA in its
//     upper directory, until a garbage collection). Its leases are deleted
//     and the collection removes it. Active snapshots without a record also
//     come from BuildKit's own start-up checks (the rootless overlayfs
//     userxattr probe prepares one under a temporary lease and leaves it to
//     the next collection): they go the same way. Removing a snapshot
//     directly is not an option: BuildKit's snapshotter forbids Remove,
//     which made every rootless start fail before (TestDind's rootless
//     case: "removing orphaned snapshot …: calling snapshotter.Remove is
//     forbidden").
//
// Measured by integration.TestCrashRecovery: without this, 4 files under the
// root held the test CA after a restart (snapshot upper: anchor and bundle;
// bundle rootfs: the same two), and in some runs a mutable "regular" cache
// record was left for that snapshot.
// No build runs while this runs (nothing is served yet), so an active
// snapshot without a record is an orphan.
func recoverAfterCrash(ctx context.Context, w *base.Worker, opt base.WorkerOpt) error {
	log := bklog.G(ctx).WithField("root", opt.Root)
	if err := unmountUnder(filepath.Join(opt.Root, "executor")); err != nil {
		return errors.Wrap(err, "recovering after a crash: unmounting a killed daemon's exec roots (unmount them under the worker's executor directory by hand)")
	}
	removed, err := pruneStaleExecRoots(ctx, w, opt)
	if err != nil {
		return err
	}
	items, err := opt.MetadataStore.All()
	if err != nil {
		return errors.Wrap(err, "recovering after a crash: listing cache records")
	}
	known := map[string]bool{}
	for _, it := range items {
		known[it.ID()] = true
		var sid string
		if v := it.Get(mdSnapshot); v != nil && v.Unmarshal(&sid) == nil && sid != "" {
			known[sid] = true
		}
	}
	var orphans []string
	err = opt.Snapshotter.Walk(ctx, func(_ context.Context, info snapshots.Info) error {
		if info.Kind == snapshots.KindActive && !known[info.Name] {
			orphans = append(orphans, info.Name)
		}
		return nil
	})
	if err != nil {
		return errors.Wrap(err, "recovering after a crash: listing snapshots")
	}
	if len(orphans) > 0 {
		// BuildKit's snapshotter forbids Remove (snapshot/containerd:
		// "calling snapshotter.Remove is forbidden"): a snapshot goes at
		// the next collection once no lease holds it. So drop the leases
		// that hold an orphan, then collect.
		ls, err := opt.LeaseManager.List(ctx)
		if err != nil {
			return errors.Wrap(err, "recovering after a crash: listing leases")
		}
		orphan := map[string]bool{}
		for _, id := range orphans {
			orphan[id] = true
		}
		for _, l := range ls {
			rs, err := opt.LeaseManager.ListResources(ctx, l)
			if err != nil {
				return errors.Wrapf(err, "recovering after a crash: listing the resources of lease %s", l.ID)
			}
			for _, r := range rs {
				if strings.HasPrefix(r.Type, "snapshots/") && orphan[r.ID] {
					if err := opt.LeaseManager.Delete(ctx, l); err != nil && !cerrdefs.IsNotFound(err) {
						return errors.Wrapf(err, "recovering after a crash: removing lease %s of orphaned snapshot %s", l.ID, r.ID)
					}
					break
				}
			}
		}
	}
	if removed+len(orphans) > 0 && opt.GarbageCollect != nil {
		// Lease deletion and Prune only drop references in containerd's
		// metadata; the collection deletes the snapshots' directories.
		if _, err := opt.GarbageCollect(ctx); err != nil {
			return errors.Wrap(err, "recovering after a crash: collecting removed snapshots")
		}
	}
	// What is still there is held by something we do not know: say so
	// (its upper directory may hold our CA) rather than refuse to start.
	left := map[string]bool{}
	if len(orphans) > 0 {
		if err := opt.Snapshotter.Walk(ctx, func(_ context.Context, info snapshots.Info) error {
			left[info.Name] = true
			return nil
		}); err != nil {
			return errors.Wrap(err, "recovering after a crash: listing snapshots")
		}
	}
	for _, id := range orphans {
		if left[id] {
			log.WithField("snapshot", id).Warn("cacerts: an active snapshot no cache record refers to is still held after the collection (if a killed daemon left it, it may hold the engine's CA certificates)")
		} else {
			log.WithField("snapshot", id).Info("cacerts: removed an active snapshot no cache record referred to (an exec root a killed daemon left, or a temporary one of BuildKit's start-up checks)")
		}
	}
	return nil
}

// unmountUnder lazily unmounts every mount point under dir, deepest first.
func unmountUnder(dir string) error {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return err
	}
	defer f.Close()
	prefix := filepath.Clean(dir) + "/"
	var points []string
	s := bufio.NewScanner(f)
	for s.Scan() {
		fl := strings.Fields(s.Text())
		if len(fl) > 4 {
			if p := unescapeOctal(fl[4]); strings.HasPrefix(p, prefix) {
				points = append(points, p)
			}
		}
	}
	if err := s.Err(); err != nil {
		return err
	}
	for i := len(points) - 1; i >= 0; i-- {
		if err := unix.Unmount(points[i], unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
			return errors.Wrapf(err, "unmounting %s", points[i])
		}
		bklog.L.WithField("path", points[i]).Info("cacerts: unmounted an exec root a killed daemon left mounted")
	}
	return nil
}

// unescapeOctal undoes /proc/self/mountinfo's octal escapes (\040).
func unescapeOctal(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
