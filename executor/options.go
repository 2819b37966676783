package executor

import (
	"context"
	"fmt"
	"time"

	"github.com/buildkit-cacerts/buildkit-cacerts/cacerts"
)

// CASource yields the engine's current CA set; *cacerts.Store is one.
type CASource interface {
	Load(ctx context.Context) (*cacerts.Set, error)
}

var _ CASource = (*cacerts.Store)(nil)

// Mode selects how CAs are installed into a container's root.
type Mode string

const (
	// ModeAuto uses the fast path for layouts modelled exactly, the distro's
	// tool in a sibling container otherwise.
	ModeAuto Mode = "auto"
	// ModeCommand always runs the distro's tool in a sibling container.
	ModeCommand Mode = "command"
	// ModeFast never starts a sibling container; layouts the fast path does
	// not model get the generic bundle.
	ModeFast Mode = "fast"
	// ModeOff disables injection: Wrap passes every call through.
	ModeOff Mode = "off"
)

// ParseMode parses a mode name; the empty string means ModeAuto.
func ParseMode(s string) (Mode, error) {
	switch m := Mode(s); m {
	case "":
		return ModeAuto, nil
	case ModeAuto, ModeCommand, ModeFast, ModeOff:
		return m, nil
	}
	return "", fmt.Errorf("unknown cacerts mode %q (want auto, command, fast or off)", s)
}

// Default timeouts.
const (
	DefaultSiblingTimeout = 60 * time.Second
	DefaultRevertTimeout  = 2 * time.Minute
)

// OptOutEnv is the variable that, set to "off" in a process's environment,
// turns injection off for that exec (RUN --env, ENV).
const OptOutEnv = "BUILDKIT_CACERTS"

// Options configures Wrap.
type Options struct {
	// CAs yields the engine's CA set, read for every Run (a
	// *cacerts.Store re-reads its directory only when it changed). Used by
	// the default Installer; nil, or an empty set, means nothing to install,
	// and Run then passes straight through to the inner executor (nothing
	// is mounted). Ignored when Installer is set.
	CAs CASource
	// Installer installs and reverts the CAs in one container. Nil means
	// the default: the vfs, distro and cacerts packages with CAs and Mode.
	Installer Installer
	// Mode selects the install path; empty means ModeAuto.
	Mode Mode
	// Strict fails an exec whose install failed instead of running it
	// without the CAs.
	Strict bool
	// CombineAbove installs a set of more CAs than this as one combined
	// anchor file instead of one per CA, so an exec's cost does not grow
	// with the number of CAs (cacerts.Options.CombineAbove): zero means
	// cacerts.DefaultCombineAbove, a negative value never combines.
	CombineAbove int
	// SiblingTimeout bounds one run of the distro's tool in a sibling
	// container; zero means DefaultSiblingTimeout.
	SiblingTimeout time.Duration
	// RevertTimeout bounds the revert after the process exits; zero means
	// DefaultRevertTimeout. Revert runs even when the exec's context is done.
	RevertTimeout time.Duration
	// Observer, when set, receives a Report for every Run (metrics).
	Observer Observer
}

func (o Options) withDefaults() Options {
	if o.Mode == "" {
		o.Mode = ModeAuto
	}
	if o.SiblingTimeout <= 0 {
		o.SiblingTimeout = DefaultSiblingTimeout
	}
	if o.RevertTimeout <= 0 {
		o.RevertTimeout = DefaultRevertTimeout
	}
	if o.Installer == nil {
		o.Installer = newDefaultInstaller(o)
	}
	return o
}
