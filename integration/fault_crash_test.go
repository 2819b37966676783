package integration

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moby/buildkit/client"

	"github.com/buildkit-cacerts/buildkit-cacerts/internal/faults"
	"github.com/buildkit-cacerts/buildkit-cacerts/internal/harness"
)

// TestCrashRecovery answers the crash question of issue 12 by test: a RUN
// holds our CA (installed, process sleeping), the daemon is SIGKILLed, a new
// daemon starts on the same root. The test proves the fault state first —
// our CA is under the root while the exec runs and still there right after
// the kill (so the checks below can fail) — then, after the restart and
// before any build: no file under the root's state holds our CA, and no
// mutable cache record is left to reuse; finally a build on the restarted
// daemon succeeds and its image, cache export and the root are clean.
//
// Without the daemon's start-up recovery (cmd/buildkitd-cacerts/recover.go)
// this test fails: 4 files under the root held the CA after the restart —
// the exec snapshot's upper (anchor and bundle) and the runc bundle's
// rootfs, still mounted — and in some runs a mutable "regular" record was
// left for that snapshot (measured before recover.go existed, and with its
// call removed).
func TestCrashRecovery(t *testing.T) {
	e := newFaultEnv(t)
	fd := e.startFaultDaemon(t, "crash", harness.DaemonConfig{}, "")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	state := filepath.Join(fd.d.Root, "state")
	fd.serving(t, ctx)

	nonce := rand.Int64()
	df := fmt.Sprintf("FROM %s\nRUN echo @@run-%d; sleep 20; echo %d > /out\n", e.image, nonce, nonce)
	held := make(chan []faults.Finding, 1)
	bctx, bcancel := context.WithCancel(ctx)
	defer bcancel()
	go fd.build(bctx, trialBuild{Dockerfile: df, Marker: fmt.Sprintf("@@run-%d", nonce), OnLog: func() {
		found, err := e.scan.Tree(state)
		if err != nil {
			t.Error(err)
		}
		held <- found
	}})
	var during []faults.Finding
	select {
	case during = <-held:
	case <-ctx.Done():
		t.Fatal("the RUN never started")
	}
	if len(during) == 0 {
		t.Fatal("while the RUN runs, nothing under the daemon root holds our CA: the scan cannot see the fault state, so the checks below prove nothing")
	}
	if err := fd.d.Kill(); err != nil {
		t.Fatal(err)
	}
	bcancel()
	afterKill, err := e.scan.Tree(state)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("while the RUN ran: %d findings under the root, e.g. %s", len(during), during[0])
	t.Logf("right after SIGKILL: %d findings (%s)", len(afterKill), strings.Join(findingStrings(afterKill[:min(len(afterKill), 8)]), "; "))

	d, err := harness.StartDaemonOn(ctx, fd.cfg, fd.d.Root)
	if err != nil {
		t.Fatal(err)
	}
	fd.d = d
	afterRestart, err := e.scan.Tree(state)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range afterRestart {
		t.Errorf("after the restart, before any build: %s", f)
	}
	c := daemonClient(t, fd.d)
	du, err := c.DiskUsage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range du {
		if r.Mutable && r.RecordType == client.UsageRecordTypeRegular {
			t.Errorf("after the restart: a mutable record is left: %s (%s, in use %v, %d bytes)", r.ID, r.RecordType, r.InUse, r.Size)
		}
	}
	t.Logf("after the restart: %d findings, %d cache records", len(afterRestart), len(du))

	ref := trialRef(e, "crash", 1)
	_, err = fd.build(ctx, trialBuild{Dockerfile: df, Push: ref})
	fd.check(t, ctx, trialOutcome{name: "crash/rebuild", pushed: ref, buildErr: err, mustOK: true}, 10*time.Second)
}

// TestCrashRecoveryKeepsCacheMounts: the start-up recovery removes only
// what a killed exec left; a cache mount (a mutable record too) written by
// a finished build survives a SIGKILL and restart with its contents.
func TestCrashRecoveryKeepsCacheMounts(t *testing.T) {
	e := newFaultEnv(t)
	fd := e.startFaultDaemon(t, "crash-cache", harness.DaemonConfig{}, "")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	nonce := rand.Int64()
	df := fmt.Sprintf("FROM %s\nRUN --mount=type=cache,target=/c,id=keep echo kept-%d > /c/f\n", e.image, nonce)
	if logs, err := fd.build(ctx, trialBuild{Dockerfile: df}); err != nil {
		t.Fatalf("build: %v\n%s", err, logs)
	}
	if err := fd.restart(ctx); err != nil {
		t.Fatal(err)
	}
	df = fmt.Sprintf("FROM %s\nRUN --mount=type=cache,target=/c,id=keep echo read-%d; cat /c/f\n", e.image, rand.Int64())
	logs, err := fd.build(ctx, trialBuild{Dockerfile: df})
	if err != nil {
		t.Fatalf("build after the restart: %v\n%s", err, logs)
	}
	if want := fmt.Sprintf("kept-%d", nonce); !strings.Contains(logs, want) {
		t.Errorf("the cache mount lost its contents across the restart: want %q in\n%s", want, logs)
	}
	fd.check(t, ctx, trialOutcome{name: "crash-cache", mustOK: true, warm: true}, 10*time.Second)
}
