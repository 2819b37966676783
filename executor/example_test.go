package executor_test

import (
	"context"
	"fmt"
	"time"

	bkexecutor "github.com/moby/buildkit/executor"
	resourcestypes "github.com/moby/buildkit/executor/resources/types"
	"github.com/moby/buildkit/worker/base"

	"github.com/buildkit-cacerts/buildkit-cacerts/cacerts"
	"github.com/buildkit-cacerts/buildkit-cacerts/executor"
)

// An engine that embeds BuildKit wraps its worker's executor between
// creating the worker options and creating the worker, the way
// cmd/buildkitd-cacerts does:
//
//	opt, err := runc.NewWorkerOpt(root, snFactory, ...)
//	opt.Executor = executor.Wrap(opt.Executor, executor.Options{...})
//	w, err := base.NewWorker(ctx, opt)
func Example() {
	wrapWorker := func(opt base.WorkerOpt) base.WorkerOpt {
		opt.Executor = executor.Wrap(opt.Executor, executor.Options{
			// The engine's CAs, re-read when the directory changes.
			CAs: cacerts.NewStore(cacerts.StoreOpt{Dir: "/etc/my-engine/ca-certificates"}),
			// auto: Go fast path where it is exact, the distro's tool
			// in a sibling container otherwise.
			Install:        cacerts.Options{Method: cacerts.MethodAuto},
			SiblingTimeout: time.Minute,
		})
		return opt
	}
	opt := wrapWorker(base.WorkerOpt{Executor: noopExecutor{}})
	fmt.Println(opt.Executor != nil)
	// Output: true
}

// noopExecutor stands in for runcexecutor in this example.
type noopExecutor struct{}

func (noopExecutor) Run(context.Context, string, bkexecutor.Mount, []bkexecutor.Mount, bkexecutor.ProcessInfo, chan<- struct{}) (resourcestypes.Recorder, error) {
	return nil, nil
}

func (noopExecutor) Exec(context.Context, string, bkexecutor.ProcessInfo) error { return nil }
