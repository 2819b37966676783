package executor

import (
	"bytes"
	"context"
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
)

// SiblingPath is the PATH of every sibling container, whatever the image's.
const SiblingPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// maxSiblingOutput caps the output of a sibling kept for the log.
const maxSiblingOutput = 64 << 10

// sibling runs the distro's tool in a container next to the exec's: the same
// root and mounts through the same inner executor, as uid 0, cwd /, PATH
// SiblingPath and nothing else in the environment, no network, no TTY, no
// stdin. Its output goes to the daemon's log (debug; warning on failure),
// never to the build's output.
//
// Only the root is writable: the exec's other mounts are mounted read-only
// (a tool must never write a cache mount, a bind of a context or a secret:
// docs/design.md invariant 7), and /tmp is a private tmpfs, so temporary files of
// the tool or its hooks (a JVM's hsperfdata) never reach the layer or the
// user's /tmp.
type sibling struct {
	inner    bkexecutor.Executor
	root     bkexecutor.Mount
	mounts   []bkexecutor.Mount
	hostname string
	timeout  time.Duration
	log      *logrus.Entry
}

var _ Runner = (*sibling)(nil)

// Run runs argv to completion, bounded by the sibling timeout, and returns
// its combined output (capped), also on failure.
func (s *sibling) Run(ctx context.Context, argv []string) ([]byte, error) {
	if len(argv) == 0 {
		return nil, fmt.Errorf("running sibling: empty argv")
	}
	ctx, cancel := context.WithTimeoutCause(ctx, s.timeout, fmt.Errorf("sibling %s timed out after %s", argv[0], s.timeout))
	defer cancel()
	out := &cappedBuffer{max: maxSiblingOutput}
	meta := bkexecutor.Meta{
		Args:     argv,
		Env:      []string{"PATH=" + SiblingPath},
		User:     "0:0",
		Cwd:      "/",
		Hostname: s.hostname,
		NetMode:  pb.NetMode_NONE,
		// Remove every mount stub the sibling's runtime created, parents
		// included, so the user process starts on the tree it would have
		// had without the sibling (a stub left here would not be the user
		// process's stub to clean, and would be committed).
		RemoveMountStubsRecursive: true,
	}
	start := time.Now()
	_, err := s.inner.Run(ctx, "", s.root, siblingMounts(s.mounts), bkexecutor.ProcessInfo{
		Meta:   meta,
		Stdout: out,
		Stderr: out,
	}, nil)
	if err != nil && context.Cause(ctx) != nil && ctx.Err() != nil {
		err = fmt.Errorf("%w: %w", context.Cause(ctx), err)
	}
	log := s.log.WithField("argv", strings.Join(argv, " ")).WithField("ms", time.Since(start).Milliseconds())
	if err != nil {
		log.WithError(err).WithField("output", out.String()).Warn("cacerts: sibling failed")
		return out.Bytes(), fmt.Errorf("running %s in a sibling container: %w", argv[0], err)
	}
	log.WithField("output", out.String()).Debug("cacerts: sibling ran")
	return out.Bytes(), nil
}

// siblingMounts is the exec's mounts as the sibling gets them: read-only, a
// mount at /tmp replaced by a private tmpfs, one added when there is none.
func siblingMounts(mounts []bkexecutor.Mount) []bkexecutor.Mount {
	out := make([]bkexecutor.Mount, 0, len(mounts)+1)
	out = append(out, bkexecutor.Mount{Src: tmpfs{}, Dest: "/tmp"})
	for _, m := range mounts {
		if path.Clean("/"+m.Dest) == "/tmp" {
			continue
		}
		m.Readonly = true
		out = append(out, m)
	}
	return out
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
