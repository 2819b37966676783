// Package cacerts decides how the engine's CA certificates enter a container
// root, writes them, journals every change and reverts them without a trace.
//
// Threat model. The container root is hostile: any path may be a symlink, a
// FIFO, a device, a huge file or a directory where a file is expected, and the
// user process runs between install and revert, so it may have changed, swapped
// or removed anything we wrote. This package never touches the host: every
// access goes through an [FS] (the confined container view from package vfs),
// whose paths are io/fs style names inside the container root. Writes land only
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
// Per exec, an executor does:
//
//	set, err := store.Load(ctx)                    // *Store, shared by all execs
//	fsys, err := vfs.New(ctx, root, mounts)        // closed before the process starts
//	d, err := distro.Detect(fsys)
//	j, err := cacerts.Install(ctx, fsys, d, set, cacerts.Options{Env: env, Runner: sibling})
//	fsys.Close()
//	... run the process ...
//	fsys, err = vfs.New(ctx, root, mounts)         // a fresh view
//	err = j.Revert(ctx, fsys)                      // an error fails the exec
package cacerts
