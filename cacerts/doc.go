// Package cacerts decides how the engine's CA certificates enter a container
// root, writes them, journals every change and reverts them without a trace.
//
// Threat model. The container root is hostile: any path may be a symlink, a
// FIFO, a device, a huge file or a directory where a file is expected, and the
// user process runs between install and revert, so it may have changed, swapped
// or removed anything we wrote. This package never touches the host: every
// access goes through an [FS] (the confined container view from package vfs,
// adapted by [View]), whose paths are container paths ("/etc/ssl/certs")
// resolved inside the container root. Like those views, the package builds on
// Linux only: elsewhere the compiler stops at vfs.FS, the view it adapts. Writes land only
// under trust-store paths (see [IsTrustStorePath]) and, for a file named by the
// image's SSL_CERT_FILE, only when it already parses as a PEM bundle. Revert
// resolves every path again and removes or rewrites a file only when it is
// still what we left; where the process changed it, only our contribution (our
// PEM blocks, our anchors, links to our anchors) is removed.
//
// The engine's CA set is read from a host directory the engine owns (see
// [Store]); a file holding a private key is refused whole, so a key never
// reaches a container.
//
// Three ways to apply ([Method]): the fast path reproduces Debian's
// update-ca-certificates for our anchors in Go (no container is started); the
// command path runs the distro's tool through a [Runner]; the generic path
// writes bundles where TLS libraries look. All three return a [Journal] whose
// Revert the caller defers.
//
// This package decides how to install and journals; it does not decide what
// an install failure means for the exec. Install returns typed errors
// ([InstallError], [LimitError], [ToolError], matching [ErrRollbackFailed]
// when the rollback failed too), Revert a [RevertError], Sweep one matching
// [ErrTraceLeft]; the executor owns the policy (fail open or strict) and the
// warning. Lines are logged through bklog.G(ctx) at debug (the sweep's
// clean-up at info), so they carry the caller's fields.
//
// Per exec, an executor does:
//
//	set, err := store.Load(ctx)                    // *Store, shared by all execs
//	fsys, err := vfs.New(ctx, root, mounts)        // closed before the process starts
//	d, err := distro.Detect(fsys)
//	j, err := cacerts.Install(ctx, cacerts.View(fsys), d, set, cacerts.Exec{Env: env, Runner: sibling}, opts)
//	fsys.Close()
//	... run the process ...
//	fsys, err = vfs.New(ctx, root, mounts)         // a fresh view
//	err = j.Revert(ctx, cacerts.View(fsys))        // an error fails the exec
//	_, err = j.SweepRoot(ctx, fsys, root, since)   // so does one of ours left
package cacerts
