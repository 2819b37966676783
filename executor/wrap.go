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
// exec's own root snapshot is written. See DESIGN.md at the repository root.
package executor

import (
	"context"

	bkexecutor "github.com/moby/buildkit/executor"
	resourcestypes "github.com/moby/buildkit/executor/resources/types"
)

// Wrap returns an executor that runs every container through inner, with the
// engine's CAs installed for the duration of Run. A nil inner is refused by
// panicking: there is nothing to wrap.
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

// Run implements executor.Executor.
func (w *wrapped) Run(ctx context.Context, id string, root bkexecutor.Mount, mounts []bkexecutor.Mount, process bkexecutor.ProcessInfo, started chan<- struct{}) (resourcestypes.Recorder, error) {
	return w.inner.Run(ctx, id, root, mounts, process, started)
}

// Exec implements executor.Executor; it passes through to the inner executor.
func (w *wrapped) Exec(ctx context.Context, id string, process bkexecutor.ProcessInfo) error {
	return w.inner.Exec(ctx, id, process)
}
