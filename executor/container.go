package executor

import (
	"context"

	"github.com/buildkit-cacerts/buildkit-cacerts/cacerts"
	"github.com/buildkit-cacerts/buildkit-cacerts/vfs"
)

// Container is what an Installer gets for one Run: the CA set to install
// (loaded by Wrap, never empty), how to install it, the container's mount
// specs (already mounted; they stay mounted until Run returns), the user
// process's environment (read for SSL_CERT_FILE and friends, never passed to
// the sibling) and a Runner for the distro's tool.
type Container struct {
	// CAs is the engine's CA set, as Options.CAs yielded it for this Run.
	CAs *cacerts.Set
	// Install is Options.Install.
	Install cacerts.Options
	// ID is the container ID BuildKit chose, "" for an ExecOp.
	ID string
	// Root is the container's root filesystem ("/").
	Root vfs.Spec
	// Mounts are the container's other mounts, in BuildKit's order.
	Mounts []vfs.Spec
	// Env is the user process's environment.
	Env []string
	// Runner runs a program in a sibling container on the same root: uid 0,
	// no network, no TTY, PATH only in the environment, cwd /, the exec's
	// cgroup parent, resources and ulimits, only the exec's mounts in the
	// trust store's paths (read-only, never a secret or SSH agent). A
	// change it makes outside the trust store fails the run with
	// ErrSiblingWroteOutside. Its output goes to the daemon's log (and is
	// returned), never to the build's output.
	Runner Runner
}

// Runner runs argv to completion in a sibling container of the exec and
// returns its combined output (capped), also on failure. An error means the
// program could not run, timed out or exited non-zero.
type Runner = cacerts.Runner

// Revert undoes an install. It is called exactly once, after the user
// process exited, with a context that is not cancelled with the exec's.
type Revert func(ctx context.Context) error

// Installer installs the engine's CAs into one container. On success it
// returns the Revert for what it did (nil when it did nothing). On failure it
// may also return a Revert for a partial install; Wrap calls it before going
// on.
type Installer interface {
	Install(ctx context.Context, c *Container) (Revert, error)
}

// InstallerFunc adapts a function to Installer.
type InstallerFunc func(ctx context.Context, c *Container) (Revert, error)

// Install calls f.
func (f InstallerFunc) Install(ctx context.Context, c *Container) (Revert, error) { return f(ctx, c) }
