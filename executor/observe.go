package executor

import (
	"context"
	"strings"
	"time"

	"github.com/buildkit-cacerts/buildkit-cacerts/cacerts"
	"github.com/buildkit-cacerts/buildkit-cacerts/distro"
	"github.com/moby/buildkit/util/bklog"
)

// Outcome is what Wrap did for one exec.
type Outcome string

const (
	// OutcomeInstalled: the CAs were installed, the process ran and the
	// install was reverted.
	OutcomeInstalled Outcome = "installed"
	// OutcomeSkipped: nothing was installed, by design (Report.SkipReason).
	OutcomeSkipped Outcome = "skipped"
	// OutcomeFailedOpen: the install failed and the process ran without
	// the CAs (non-strict mode).
	OutcomeFailedOpen Outcome = "failed_open"
	// OutcomeFailedClosed: the exec was failed by us — strict mode, a
	// failed rollback or a failed revert — so no layer with our CAs is used.
	OutcomeFailedClosed Outcome = "failed_closed"
)

// Reasons an exec is skipped (Report.SkipReason); a fixed set, so they can
// be metric labels.
const (
	SkipModeOff      = "mode_off"
	SkipOptOut       = "opt_out"
	SkipNoRoot       = "no_root_mount"
	SkipReadonlyRoot = "readonly_root"
	SkipNoCAs        = "no_cas"
	SkipNothingToDo  = "nothing_to_do" // the installer chose to change nothing
)

// Install paths (Report.Path): cacerts.Method names.
const (
	PathFast    = "fast"
	PathCommand = "command"
	PathGeneric = "generic"
)

// Report describes one exec Wrap handled. Only the fields the outcome
// reached are set.
type Report struct {
	// ID is the exec id (BuildKit's), "run" when empty.
	ID      string
	Outcome Outcome
	// SkipReason is one of the Skip* constants, for OutcomeSkipped.
	SkipReason string
	// Distro is "<family>/<id>[:<version>]" as detected in the container
	// (image-controlled text, sanitized and capped), "" when not detected.
	Distro string
	// Path is PathFast, PathCommand or PathGeneric when something was
	// installed.
	Path string
	// CAs is the size of the engine's CA set used for this exec.
	CAs int
	// Install and Revert are how long the install and the revert took
	// (zero when they did not happen).
	Install, Revert time.Duration
	// RevertFailed says the revert failed (the exec failed closed).
	RevertFailed bool
	// Total is the whole Run, the process included.
	Total time.Duration
	// Err is the install or revert error, if any.
	Err error
}

// Observer receives one Report per Run that Wrap handles (Exec calls are
// passed through and not reported). ObserveExec is called after the exec,
// from the exec's goroutine; it must be quick and safe for concurrent use.
// The daemon implements it with Prometheus metrics; executor itself has no
// metrics dependency.
type Observer interface {
	ObserveExec(ctx context.Context, r Report)
}

// ObserverFunc adapts a function to Observer.
type ObserverFunc func(ctx context.Context, r Report)

// ObserveExec implements Observer.
func (f ObserverFunc) ObserveExec(ctx context.Context, r Report) { f(ctx, r) }

// execInfo collects what the default installer learns about one exec
// (distro, path); it travels in the exec's context.
type execInfo struct {
	distro string
	path   string
}

type execInfoKey struct{}

func withExecInfo(ctx context.Context) (context.Context, *execInfo) {
	info := &execInfo{}
	return context.WithValue(ctx, execInfoKey{}, info), info
}

// noteDistro records the detected distro in ctx's exec info, if any.
func noteDistro(ctx context.Context, d *distro.Distro) {
	if info, ok := ctx.Value(execInfoKey{}).(*execInfo); ok && d != nil {
		info.distro = distroLabel(*d)
	}
}

// notePath records the install path in ctx's exec info, if any.
func notePath(ctx context.Context, m cacerts.Method) {
	if info, ok := ctx.Value(execInfoKey{}).(*execInfo); ok {
		switch m {
		case cacerts.MethodFast:
			info.path = PathFast
		case cacerts.MethodCommand:
			info.path = PathCommand
		case cacerts.MethodGeneric:
			info.path = PathGeneric
		}
	}
}

// maxDistroLabel caps the image-controlled part of Report.Distro.
const maxDistroLabel = 64

// distroLabel is "<family>/<id>[:<version>]" with only [a-z0-9._-] kept
// from the image's text, capped: the image chooses these strings.
func distroLabel(d distro.Distro) string {
	s := clean(d.ID)
	if v := clean(d.VersionID); v != "" {
		s += ":" + v
	}
	if len(s) > maxDistroLabel {
		s = s[:maxDistroLabel]
	}
	return d.Family.String() + "/" + s
}

func clean(s string) string {
	if len(s) > maxDistroLabel {
		s = s[:maxDistroLabel]
	}
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '.', r == '_', r == '-':
			return r
		case r >= 'A' && r <= 'Z':
			return r + ('a' - 'A')
		}
		return -1
	}, s)
}

// report logs the per-exec info line (every outcome but a skip, which logs
// at debug) and hands r to the Observer.
func (w *wrapped) report(ctx context.Context, r Report) {
	log := bklog.G(ctx).WithField("exec", r.ID).
		WithField("outcome", string(r.Outcome)).
		WithField("cas", r.CAs).
		WithField("ms", r.Total.Milliseconds())
	switch r.Outcome {
	case OutcomeSkipped:
		log.WithField("reason", r.SkipReason).Debug("cacerts: exec")
	default:
		log = log.WithField("distro", r.Distro).
			WithField("path", r.Path).
			WithField("install_ms", r.Install.Milliseconds()).
			WithField("revert_ms", r.Revert.Milliseconds())
		if r.Err != nil {
			log = log.WithError(r.Err)
		}
		log.Info("cacerts: exec")
	}
	if w.opts.Observer != nil {
		w.opts.Observer.ObserveExec(ctx, r)
	}
}
