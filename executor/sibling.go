package executor

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/containerd/containerd/v2/core/mount"
	bkexecutor "github.com/moby/buildkit/executor"
	"github.com/moby/buildkit/solver/pb"
	"github.com/moby/sys/user"
	"github.com/sirupsen/logrus"

	"github.com/buildkit-cacerts/buildkit-cacerts/cacerts"
	"github.com/buildkit-cacerts/buildkit-cacerts/distro"
	"github.com/buildkit-cacerts/buildkit-cacerts/vfs"
)

// ErrSiblingTimeout is matched (errors.Is) by the error of a sibling that
// ran longer than Options.SiblingTimeout.
var ErrSiblingTimeout = errors.New("timed out")

// SessionMountError is the error of a sibling that was not run because a
// session mount (a secret, an SSH agent socket) sits among the trust store's
// paths: the tool would see the image's files instead of what the process
// sees, and must never get the mount.
type SessionMountError struct {
	// Dest is the mount's destination in the container.
	Dest string
}

// Error says which mount and what to do.
func (e *SessionMountError) Error() string {
	return fmt.Sprintf("a secret or SSH mount is at %s, among the trust store's paths: the image's update tool is not run with it; move the mount", e.Dest)
}

// maxSiblingOutput caps the output of a sibling kept for the log.
const maxSiblingOutput = 64 << 10

// sibling runs the distro's tool in a container next to the exec's: the same
// root through the same inner executor, as uid 0, cwd /, PATH
// distro.DefaultPath whatever the image's (the PATH the tool's required
// programs were looked up in) and nothing else in the environment, no
// network, no TTY, no stdin. Its output goes to the daemon's log at debug,
// never to the build's output; a failure is returned, and Wrap logs it
// once.
//
// It holds no more than the tool needs. The tool is image content, so
// untrusted:
//   - Mounts: only the exec's mounts at, under or above trust-store paths
//     (cacerts.IsTrustStorePath, cacerts.AboveToolPaths), all read-only (a
//     tool must never write a cache mount or a bind of a context: DESIGN.md
//     invariant 7); never a secret or SSH-agent mount (sessionMount: a
//     read-only socket still connects to the agent), which refuse the run
//     where they sit in those paths. /tmp is a private tmpfs, so temporary
//     files of the tool or its hooks (a JVM's hsperfdata) never reach the
//     layer or the user's /tmp.
//   - Limits: the exec's cgroup parent, resource limits and ulimits.
//   - Privileges: uid 0 (the trust store is root's, whatever the RUN's
//     USER), in BuildKit's sandbox security mode even when the exec is
//     insecure. BuildKit's executor API (Meta) cannot narrow the capability
//     set further: the tool gets the runtime's default set for uid 0.
//   - Writes: the root's writable layer is scanned before and after; a
//     change outside the tool's paths (cacerts.ToolMayWrite) fails the run
//     with ErrSiblingWroteOutside, which fails the exec (such a change
//     cannot be rolled back).
type sibling struct {
	inner    bkexecutor.Executor
	root     bkexecutor.Mount
	mounts   []bkexecutor.Mount
	hostname string
	timeout  time.Duration
	log      *logrus.Entry
	// meta is the exec's: its cgroup parent, resources and ulimits bound
	// the sibling too.
	meta bkexecutor.Meta
	// rootSpec is the root as mounted for the install: where its writes
	// land (nil: not checked, tests only).
	rootSpec []mount.Mount
	// specs are the exec's mounted specs by destination, to recognise
	// session mounts.
	specs map[string]vfs.Spec
}

var _ Runner = (*sibling)(nil)

// Run runs argv to completion, bounded by the sibling timeout, and returns
// its combined output (capped), also on failure.
func (s *sibling) Run(ctx context.Context, argv []string) ([]byte, error) {
	if len(argv) == 0 {
		return nil, fmt.Errorf("running sibling: empty argv")
	}
	ctx, cancel := context.WithTimeoutCause(ctx, s.timeout, fmt.Errorf("sibling %s %w after %s", argv[0], ErrSiblingTimeout, s.timeout))
	defer cancel()
	mounts, err := siblingMounts(s.mounts, s.specs)
	if err != nil {
		return nil, fmt.Errorf("running %s in a sibling container: %w", argv[0], err)
	}
	out := &cappedBuffer{max: maxSiblingOutput}
	meta := bkexecutor.Meta{
		Args:     argv,
		Env:      []string{"PATH=" + distro.DefaultPath},
		User:     "0:0",
		Cwd:      "/",
		Hostname: s.hostname,
		NetMode:  pb.NetMode_NONE,
		// The exec's bounds; never its security mode (sandbox is the zero
		// value), TTY, devices, hosts or proxy.
		CgroupParent:   s.meta.CgroupParent,
		LinuxResources: s.meta.LinuxResources,
		Ulimit:         s.meta.Ulimit,
		SecurityMode:   pb.SecurityMode_SANDBOX,
		// Remove every mount stub the sibling's runtime created, parents
		// included, so the user process starts on the tree it would have
		// had without the sibling (a stub left here would not be the user
		// process's stub to clean, and would be committed).
		RemoveMountStubsRecursive: true,
	}
	var layer string
	var before map[string]scanEntry
	if s.rootSpec != nil {
		if layer, err = writableLayer(s.rootSpec); err == nil {
			before, err = scanLayer(layer)
		}
		if err != nil {
			return nil, fmt.Errorf("running %s in a sibling container: %w", argv[0], err)
		}
	}
	start := time.Now()
	_, err = s.inner.Run(ctx, "", s.root, mounts, bkexecutor.ProcessInfo{
		Meta:   meta,
		Stdout: out,
		Stderr: out,
	}, nil)
	if err != nil && context.Cause(ctx) != nil && ctx.Err() != nil {
		err = fmt.Errorf("%w: %w", context.Cause(ctx), err)
	}
	log := s.log.WithField("argv", strings.Join(argv, " ")).WithField("ms", time.Since(start).Milliseconds())
	if before != nil {
		// Checked whether the tool succeeded or not: a failed tool may
		// have written too.
		after, serr := scanLayer(layer)
		if serr == nil {
			if bad := outsideWrites(before, after); len(bad) > 0 {
				serr = &siblingWriteError{paths: bad}
			}
		} else {
			// Unscannable after the run: what it wrote is unknown.
			serr = &siblingWriteError{paths: []string{serr.Error()}}
		}
		if serr != nil {
			// Logged at debug with the whole output; the error goes to Wrap,
			// which logs it once (or fails the exec).
			log.WithError(serr).WithField("output", out.String()).Debug("cacerts: sibling wrote outside the trust store")
			return out.Bytes(), fmt.Errorf("running %s in a sibling container: %w", argv[0], errors.Join(serr, err))
		}
	}
	if err != nil {
		log.WithError(err).WithField("output", out.String()).Debug("cacerts: sibling failed")
		return out.Bytes(), fmt.Errorf("running %s in a sibling container: %w", argv[0], err)
	}
	log.WithField("output", out.String()).Debug("cacerts: sibling ran")
	return out.Bytes(), nil
}

// siblingMounts is the exec's mounts as the sibling gets them: only those
// at, under or above trust-store paths, read-only, behind a private tmpfs at
// /tmp. A session mount (secret, SSH agent) is never passed; where one sits
// in those paths the tool does not run (it would see the image's files
// instead of what the process sees). specs are the mounted specs by
// destination (nil: no session mount is recognised, tests only).
func siblingMounts(mounts []bkexecutor.Mount, specs map[string]vfs.Spec) ([]bkexecutor.Mount, error) {
	out := make([]bkexecutor.Mount, 0, len(mounts)+1)
	out = append(out, bkexecutor.Mount{Src: tmpfs{}, Dest: "/tmp"})
	for _, m := range mounts {
		dest := path.Clean("/" + m.Dest)
		if dest == "/tmp" || !(cacerts.IsTrustStorePath(dest) || cacerts.AboveToolPaths(dest)) {
			continue
		}
		if sp, ok := specs[dest]; ok && sessionMount(sp) {
			return nil, &SessionMountError{Dest: dest}
		}
		m.Readonly = true
		out = append(out, m)
	}
	return out, nil
}

// tmpfs is a fresh tmpfs for every mount (executor.Mountable).
type tmpfs struct{}

// Mount implements executor.Mountable.
func (tmpfs) Mount(context.Context, bool) (bkexecutor.MountableRef, error) { return tmpfsRef{}, nil }

type tmpfsRef struct{}

// Mount implements executor.MountableRef.
func (tmpfsRef) Mount() ([]mount.Mount, func() error, error) {
	return []mount.Mount{{
		Type:    "tmpfs",
		Source:  "tmpfs",
		Options: []string{"nosuid", "nodev", "mode=1777", "size=268435456"},
	}}, func() error { return nil }, nil
}

// IdentityMapping implements executor.MountableRef.
func (tmpfsRef) IdentityMapping() *user.IdentityMapping { return nil }

// cappedBuffer is an io.WriteCloser keeping the first max bytes written.
type cappedBuffer struct {
	mu        sync.Mutex
	buf       bytes.Buffer
	max       int
	truncated bool
}

func (b *cappedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if room := b.max - b.buf.Len(); room < len(p) {
		b.truncated = true
		if room > 0 {
			b.buf.Write(p[:room])
		}
		return len(p), nil
	}
	return b.buf.Write(p)
}

func (b *cappedBuffer) Close() error { return nil }

// Bytes returns a copy of what was kept.
func (b *cappedBuffer) Bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return bytes.Clone(b.buf.Bytes())
}

func (b *cappedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.truncated {
		return b.buf.String() + "…(truncated)"
	}
	return b.buf.String()
}
