package executor

import (
	"context"
	"time"

	"github.com/buildkit-cacerts/buildkit-cacerts/cacerts"
)

// CASource yields the engine's current CA set; *cacerts.Store is one.
type CASource interface {
	Load(ctx context.Context) (*cacerts.Set, error)
}

var _ CASource = (*cacerts.Store)(nil)

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
	// CAs yields the engine's CA set, read by Wrap for every Run (a
	// *cacerts.Store re-reads its directory only when it changed) and
	// handed to the Installer in Container.CAs. Nil, or an empty set,
	// means nothing to install: Run then passes straight through to the
	// inner executor (nothing is mounted).
	CAs CASource
	// Install is how the CAs are installed (cacerts.Options: the method,
	// the combined anchor, the per-exec limits), handed to the Installer in
	// Container.Install. Install.Method cacerts.MethodNone (the mode "off")
	// passes every Run through.
	Install cacerts.Options
	// Installer installs and reverts the CAs in one container. Nil means
	// the default: the vfs, distro and cacerts packages.
	Installer Installer
	// Strict fails an exec whose install failed instead of running it
	// without the CAs.
	Strict bool
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
	if o.SiblingTimeout <= 0 {
		o.SiblingTimeout = DefaultSiblingTimeout
	}
	if o.RevertTimeout <= 0 {
		o.RevertTimeout = DefaultRevertTimeout
	}
	if o.Installer == nil {
		o.Installer = defaultInstaller{}
	}
	return o
}
