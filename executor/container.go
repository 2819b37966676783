package executor

import (
	"context"
	"errors"
	"fmt"

	"github.com/moby/sys/user"

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
	// IdentityMapping is the root snapshot's user-namespace mapping
	// (BuildKit's MountableRef.IdentityMapping: the worker's userns remap),
	// nil when it has none. Files and directories an Installer creates must
	// be owned by its root pair (RootOwner), the container's root as the
	// host sees it; under a remap the host's root is nobody in the container.
	IdentityMapping *user.IdentityMapping
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
// program could not run, timed out or exited non-zero. It is cacerts.Runner,
// defined once at its consumer, the command path.
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

// ErrUnmappedRoot is matched (errors.Is) by the error RootOwner returns for
// an identity mapping that maps no container root.
var ErrUnmappedRoot = errors.New("the root snapshot's identity mapping has no container root")

// RootOwner returns the vfs options that make the files, directories and
// symlinks a view of c creates owned by the container's root: its
// IdentityMapping's root pair (vfs.WithRootOwner), or none without a
// mapping (the daemon's own ids are the container's root then, for a root
// and a rootless daemon alike). A mapping that maps no container root is
// refused: what we created would belong to nobody the container knows.
func (c *Container) RootOwner() ([]vfs.Option, error) {
	if c.IdentityMapping == nil || c.IdentityMapping.Empty() {
		return nil, nil
	}
	uid, gid, err := c.IdentityMapping.ToHost(0, 0)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnmappedRoot, err)
	}
	return []vfs.Option{vfs.WithRootOwner(uid, gid)}, nil
}
