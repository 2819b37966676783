package executor

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/buildkit-cacerts/buildkit-cacerts/cacerts"
	"github.com/buildkit-cacerts/buildkit-cacerts/distro"
	bkexecutor "github.com/moby/buildkit/executor"
)

// reports collects the Observer's reports.
type reports struct {
	mu  sync.Mutex
	got []Report
}

func (r *reports) ObserveExec(_ context.Context, rep Report) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, rep)
}

// TestObserverOutcomes: every Run gets exactly one Report whose outcome,
// skip reason and revert flag match what Wrap did. (Proven able to fail:
// with the revert-failure branch reporting OutcomeInstalled, the "revert
// fails" case fails.)
func TestObserverOutcomes(t *testing.T) {
	nonEmpty := &cacerts.Set{Certs: []*cacerts.Cert{{Name: "buildkit-x"}}}
	tests := []struct {
		name       string
		opts       Options
		setup      func(h *harness)
		env        []string
		readonly   bool
		want       Outcome
		reason     string
		revertFail bool
		cas        int
	}{
		{name: "installed", want: OutcomeInstalled, cas: 1},
		{name: "mode off", opts: Options{Install: cacerts.Options{Method: cacerts.MethodNone}}, want: OutcomeSkipped, reason: SkipModeOff},
		{name: "opt out", env: []string{OptOutEnv + "=off"}, want: OutcomeSkipped, reason: SkipOptOut},
		{name: "read-only root", readonly: true, want: OutcomeSkipped, reason: SkipReadonlyRoot},
		{name: "install fails, open", setup: func(h *harness) { h.inst.installErr = errors.New("boom") }, want: OutcomeFailedOpen, cas: 1},
		{name: "install fails, strict", opts: Options{Strict: true}, setup: func(h *harness) { h.inst.installErr = errors.New("boom") }, want: OutcomeFailedClosed, cas: 1},
		{name: "revert fails", setup: func(h *harness) { h.inst.revertErr = errors.New("stuck") }, want: OutcomeFailedClosed, revertFail: true, cas: 1},
		{name: "default installer, empty set", opts: Options{CAs: staticCAs{set: &cacerts.Set{}}}, want: OutcomeSkipped, reason: SkipNoCAs},
		{name: "default installer, view fails", opts: Options{CAs: staticCAs{set: nonEmpty}}, want: OutcomeFailedOpen, cas: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			if tc.setup != nil {
				tc.setup(h)
			}
			obs := &reports{}
			opts := tc.opts
			opts.Observer = obs
			if opts.CAs == nil {
				opts.CAs, opts.Installer = oneCA, h.inst
			}
			root := h.root
			root.Readonly = tc.readonly
			w := Wrap(h.inner, opts)
			w.Run(context.Background(), "e1", root, h.mnts, bkexecutor.ProcessInfo{Meta: bkexecutor.Meta{Args: []string{"user"}, Env: tc.env}}, nil)
			if len(obs.got) != 1 {
				t.Fatalf("%d reports, want 1", len(obs.got))
			}
			r := obs.got[0]
			if r.ID != "e1" || r.Outcome != tc.want || r.SkipReason != tc.reason || r.RevertFailed != tc.revertFail || r.CAs != tc.cas {
				t.Errorf("report = %+v, want outcome %s reason %q revertFailed %v cas %d", r, tc.want, tc.reason, tc.revertFail, tc.cas)
			}
			if (tc.want == OutcomeFailedOpen || tc.want == OutcomeFailedClosed) && r.Err == nil {
				t.Error("a failed outcome without Err")
			}
			if r.Total <= 0 {
				t.Error("Total not set")
			}
		})
	}
}

// TestExecInfoNotes: the default installer's notes reach the report's
// distro and path, and image-controlled distro text is cleaned and capped.
func TestExecInfoNotes(t *testing.T) {
	ctx, info := withExecInfo(context.Background())
	noteDistro(ctx, &distro.Distro{Family: "debian", ID: "Debian\x1b[31m", VersionID: "12 ; rm"})
	notePath(ctx, cacerts.MethodCommand)
	if info.distro != "debian/debian31m:12rm" || info.path != PathCommand {
		t.Errorf("info = %+v", *info)
	}
	long := make([]byte, 500)
	for i := range long {
		long[i] = 'a'
	}
	noteDistro(ctx, &distro.Distro{Family: "unknown", ID: string(long), VersionID: string(long)})
	if len(info.distro) > len("unknown/")+maxDistroLabel {
		t.Errorf("distro label not capped: %d bytes", len(info.distro))
	}
	// Without exec info in ctx the notes are no-ops.
	noteDistro(context.Background(), &distro.Distro{Family: "debian"})
	notePath(context.Background(), cacerts.MethodFast)
}
