// Package executor wires the engine's CA certificates into BuildKit's executor.
//
// Wrap returns a BuildKit executor.Executor that, for every container started
// with Run, installs the engine's CA set into the container's root filesystem
// before the process starts and reverts every change after it exits, so the
// committed layer holds no trace of it. Exec (a process joining a running
// container) passes through: the CAs are already there.
//
// The image is untrusted: its trust-store paths are resolved inside the
// container root by the vfs package, never by the host kernel, and only the
// exec's own root snapshot is written. See docs/design.md in the repository.
//
// A process opts out with BUILDKIT_CACERTS=off in its environment
// (RUN --env, ENV): Wrap then passes the call through untouched.
package executor

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/buildkit-cacerts/buildkit-cacerts/cacerts"
	bkexecutor "github.com/moby/buildkit/executor"
	resourcestypes "github.com/moby/buildkit/executor/resources/types"
	"github.com/moby/buildkit/identity"
	"github.com/moby/buildkit/util/bklog"
	"github.com/sirupsen/logrus"
)

// Wrap returns an executor that runs every container through inner, with the
// engine's CAs installed for the duration of Run. It panics on a nil inner:
// there is nothing to wrap.
func Wrap(inner bkexecutor.Executor, opts Options) bkexecutor.Executor {
	if inner == nil {
		panic("executor.Wrap: nil inner executor")
	}
	return &wrapped{inner: inner, opts: opts.withDefaults()}
}

// wrapped is the executor Wrap returns.
type wrapped struct {
	inner bkexecutor.Executor
	opts  Options
}

var _ bkexecutor.Executor = (*wrapped)(nil)

// Run installs the CAs, runs the process through the inner executor and
// reverts, also when the process fails or ctx is done. The CA set is loaded
// from Options.CAs first: when it is empty (or Options.CAs is nil) the call
// passes straight through, without mounting the container's filesystem.
//
// Run is the one owner of the per-exec policy (docs/design.md invariant 4):
// a failed install (or CA set load, or mount) is rolled back by the
// installer and runs the process without CAs, with one warning, or fails
// the exec when Options.Strict is set, ctx is done or the rollback failed
// (cacerts.ErrRollbackFailed); a failed revert always fails the exec, so no
// layer holding our CAs is committed. Every log line of the exec, cacerts'
// included, carries the "exec" field.
func (w *wrapped) Run(ctx context.Context, id string, root bkexecutor.Mount, mounts []bkexecutor.Mount, process bkexecutor.ProcessInfo, started chan<- struct{}) (_ resourcestypes.Recorder, retErr error) {
	start := time.Now()
	if id == "" {
		// What the runc executor would pick, picked here so the per-exec
		// log line and the container share the id.
		id = identity.NewID()
	}
	ctx, info := withExecInfo(ctx)
	rep := Report{ID: execName(id)}
	defer func() {
		rep.Total = time.Since(start)
		rep.Distro, rep.Path = info.distro, info.path
		w.report(ctx, rep)
	}()
	log := bklog.G(ctx).WithField("exec", execName(id))
	skipped := func(reason string) {
		rep.Outcome, rep.SkipReason = OutcomeSkipped, reason
	}
	if skip, reason := w.skipReason(root, process.Meta); skip != "" {
		log.Debugf("cacerts: not installing: %s", skip)
		skipped(reason)
		return w.inner.Run(ctx, id, root, mounts, process, started)
	}
	// The installer's lines (cacerts', the sibling's) carry the exec id.
	ctx = bklog.WithLogger(ctx, log)

	// Like BuildKit's executors, started is closed also when the container
	// never starts; the inner executor closes it once it is called.
	fail := func(err error) (resourcestypes.Recorder, error) {
		if started != nil {
			close(started)
		}
		rep.Outcome, rep.Err = OutcomeFailedClosed, err
		return nil, err
	}
	// installFailed decides, once for every way an install can fail,
	// whether the exec fails (true) or runs without the CAs.
	installFailed := func(what string, err error) bool {
		// A failed rollback may have left our changes in the root: never
		// run (and commit) the exec then, strict or not.
		if w.opts.Strict || ctx.Err() != nil || errors.Is(err, cacerts.ErrRollbackFailed) {
			return true
		}
		l := log.WithError(err)
		if le := (*cacerts.LimitError)(nil); errors.As(err, &le) {
			l = l.WithFields(logrus.Fields{"limit": le.Knob, "path": le.Path})
		}
		l.Warnf("cacerts: running without the engine's CA certificates: %s failed", what)
		rep.Outcome, rep.Err = OutcomeFailedOpen, err
		return false
	}

	// The CA set is read before anything is mounted: with no certificates
	// to install, the exec passes straight through.
	var set *cacerts.Set
	if w.opts.CAs != nil {
		var err error
		if set, err = w.opts.CAs.Load(ctx); err != nil {
			err = fmt.Errorf("reading the engine's CA certificates: %w", err)
			if installFailed("reading the CA set", err) {
				return fail(fmt.Errorf("cacerts: installing CA certificates: %w", err))
			}
			return w.inner.Run(ctx, id, root, mounts, process, started)
		}
	}
	rep.CAs = set.Len()
	if set.Len() == 0 {
		log.Debug("cacerts: not installing: the engine's CA set is empty")
		skipped(SkipNoCAs)
		return w.inner.Run(ctx, id, root, mounts, process, started)
	}

	specs, err := acquireSpecs(ctx, root, mounts)
	if err != nil {
		if installFailed("mounting the container's filesystem", err) {
			return fail(fmt.Errorf("cacerts: mounting the container's filesystem (strict mode): %w", err))
		}
		return w.inner.Run(ctx, id, root, mounts, process, started)
	}
	defer specs.release(log)

	c := &Container{
		CAs:             set,
		Install:         w.opts.Install,
		ID:              id,
		Root:            specs.root,
		Mounts:          specs.mounts,
		Env:             process.Meta.Env,
		IdentityMapping: specs.idmap,
		Runner: &sibling{
			inner:    w.inner,
			root:     root,
			mounts:   mounts,
			hostname: process.Meta.Hostname,
			timeout:  w.opts.SiblingTimeout,
			log:      log,
			meta:     process.Meta,
			rootSpec: specs.root.Mounts,
			specs:    specs.byDest(),
		},
	}
	revert, err := w.opts.Installer.Install(ctx, c)
	rep.Install = time.Since(start)
	if err != nil {
		if revert != nil {
			if rerr := w.timedRevert(ctx, revert, &rep); rerr != nil {
				return fail(fmt.Errorf("cacerts: install failed (%v) and reverting it failed: %w", err, rerr))
			}
			revert = nil
		}
		if installFailed("the install", err) {
			return fail(fmt.Errorf("cacerts: installing CA certificates: %w", err))
		}
	}
	installed := time.Since(start)

	rec, runErr := w.inner.Run(ctx, id, root, mounts, process, started)

	if revert == nil {
		if err == nil {
			skipped(SkipNothingToDo) // the installer changed nothing
		}
		return rec, runErr
	}
	if rerr := w.timedRevert(ctx, revert, &rep); rerr != nil {
		// The exec fails, so BuildKit neither caches nor exports the layer.
		rerr = fmt.Errorf("cacerts: reverting CA certificates failed, failing the step so the layer is not used: %w", rerr)
		rep.Outcome, rep.Err = OutcomeFailedClosed, rerr
		return nil, errors.Join(runErr, rerr)
	}
	rep.Outcome = OutcomeInstalled
	log.WithField("ms", time.Since(start).Milliseconds()).
		WithField("install_ms", installed.Milliseconds()).
		Debug("cacerts: installed and reverted")
	return rec, runErr
}

// timedRevert runs w.revert and records its duration and failure in rep.
func (w *wrapped) timedRevert(ctx context.Context, revert Revert, rep *Report) error {
	t := time.Now()
	err := w.revert(ctx, revert)
	rep.Revert += time.Since(t)
	if err != nil {
		rep.RevertFailed = true
	}
	return err
}

// revert runs revert with a context that outlives ctx's cancellation and is
// bounded by Options.RevertTimeout.
func (w *wrapped) revert(ctx context.Context, revert Revert) error {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), w.opts.RevertTimeout)
	defer cancel()
	return revert(rctx)
}

// skipReason says why a Run gets no injection and its Skip* label, or ""
// when it does.
func (w *wrapped) skipReason(root bkexecutor.Mount, meta bkexecutor.Meta) (string, string) {
	switch {
	case w.opts.Install.Method == cacerts.MethodNone:
		return "mode off", SkipModeOff
	case optedOut(meta.Env):
		return OptOutEnv + "=off in the process environment", SkipOptOut
	case root.Src == nil:
		return "no root mount", SkipNoRoot
	case root.Readonly:
		return "read-only root mount", SkipReadonlyRoot
	}
	return "", ""
}

// Exec passes through to the inner executor: the container's CAs were
// installed by Run.
func (w *wrapped) Exec(ctx context.Context, id string, process bkexecutor.ProcessInfo) error {
	return w.inner.Exec(ctx, id, process)
}

// optedOut reports whether env sets BUILDKIT_CACERTS=off (the last
// assignment wins, like a process's getenv).
func optedOut(env []string) bool {
	off := false
	for _, kv := range env {
		if k, v, ok := strings.Cut(kv, "="); ok && k == OptOutEnv {
			off = strings.EqualFold(v, "off")
		}
	}
	return off
}

func execName(id string) string {
	if id == "" {
		return "run"
	}
	return id
}
