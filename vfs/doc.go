// Package vfs is a confined, symlink-aware view of a container's filesystem,
// assembled from the mount specs BuildKit hands an executor, without building
// the container's mount namespace.
//
// # Threat model
//
// The image is hostile. Every byte under a mount source — names, symlink
// targets, file types, sizes, xattrs — may have been chosen by an attacker
// (a base image, an earlier build step, a context directory), and a process
// may run concurrently and rename, swap and replace entries while we work.
// The mount specs themselves (host sources, types, options, destinations)
// come from BuildKit and are trusted, except that mount destinations are
// resolved inside the (untrusted) container tree, as the kernel would.
//
// Confinement means: no host path outside the exec's own mount sources is
// ever opened, created, changed or removed through this package, whatever
// the trees hold (the only other paths it touches are the daemon's own
// /proc/self, checked to be procfs, to reopen its own handles). Concretely:
//   - Paths are resolved by this package, one component at a time, from a
//     handle (an O_PATH file descriptor) on each mount source, never by the
//     host kernel: each lookup is openat2 with RESOLVE_BENEATH,
//     RESOLVE_NO_SYMLINKS, RESOLVE_NO_MAGICLINKS and RESOLVE_NO_XDEV on a
//     single name, or, only when openat2 itself is unavailable (ENOSYS, or
//     EPERM from a seccomp filter, probed once in New), openat with O_PATH
//     and O_NOFOLLOW on a single name plus a mount-ID check. A failed
//     openat2 lookup never falls back to the weaker walker; EAGAIN and
//     EINTR are retried at most 32 times.
//   - An FS keeps the handles of directories it walked (at most 256), by
//     canonical container path, so a later call starts from the longest
//     cached prefix of its path instead of the root. The FS forgets a
//     directory it removes; a change made by anything else (a container run
//     on the tree) needs Invalidate. A stale handle is still confined: it is
//     a directory a confined walk opened.
//   - Symlinks are read with readlinkat on the link's own handle and
//     followed by this package inside the container: absolute targets
//     restart at the container's "/", ".." never rises above it and crosses
//     mount boundaries like the kernel (the parent of a mount's root is the
//     directory holding the mount point); more than 40 links gives ELOOP.
//     One loop (the walker's walkTo) applies these rules to every
//     resolution: paths, mount destinations and selectors alike.
//   - Every other syscall acts on a handle or on one name relative to a
//     directory handle, never on a path string rebuilt from a resolution.
//     Metadata calls use AT_EMPTY_PATH on the entry's own handle, so a
//     final symlink is never followed. Files are only ever opened for
//     reading by reopening a handle whose fstat said "regular file" (FIFOs,
//     sockets and devices are never opened), and reads are size-capped.
//   - Writes go only to the root mount (never to another mount, a lower
//     layer or a read-only mount: invariant 7 of docs/design.md). WriteFile
//     never writes a file in place: a new inode is created in the same
//     directory and renamed over the name, keeping the old file's mode,
//     owner and xattrs. Overwrite writes in place only a regular file with
//     exactly one link (no other name, such as a hard link BuildKit's merge
//     snapshotter made across snapshots, sees the change), reopened from
//     its handle and checked to be the same inode; anything else gives
//     ErrNotInPlace and the caller uses WriteFile.
//   - Every descriptor is O_CLOEXEC; Close releases all of them.
//   - Paths under mounts the package cannot see into (tmpfs, proc, any
//     unknown type) give an [OpaqueMountError]; overlay layer xattrs that
//     cannot be read make New fail (fail closed); crafted overlay redirect
//     and metacopy xattrs are refused, never honoured.
//
// What it does not defend against, and what the caller must still do:
//   - Races inside the container tree. A process running concurrently may
//     change any entry between two calls (or between the lookup and the
//     rename of one WriteFile); results are always inside the mount
//     sources, but may describe a tree that no longer exists. Callers that
//     come back to a path after an untrusted process ran (a revert) must
//     resolve it again and compare (dev, ino, size, mtime) from Lstat
//     before changing it.
//   - Policy. The package confines; it does not decide. Callers choose
//     which paths may be written (trust-store locations only), refuse
//     paths that EvalSymlinks reports in another mount, and cap reads with
//     ReadFileLimit.
//   - The mount sources themselves. Whatever the caller passes as a mount
//     source is trusted and may be written (the root) or read.
//   - Close must be called before the container's process starts: an open
//     handle on a layer leaks the host into a child (CVE-2024-21626).
//
// # Mount types
//
//   - bind and rbind of a directory or a file, read-write or read-only
//     (Spec.Readonly or the "ro" option), with an optional Selector (a
//     sub-path of the source, resolved inside the source like a path inside
//     a root). BuildKit's writable root is a bind of the overlay it already
//     mounted, so writes to it go through the kernel's overlay (copy-up is
//     the kernel's).
//   - overlay with lowerdir only (a read-only multi-layer mount): the
//     layers are read by the vfs with overlay's lookup rules (topmost entry
//     wins, char 0:0 and xattr whiteouts, opaque directories, in the
//     trusted.overlay.* namespace or user.overlay.* with "userxattr"). No
//     mount is made and no privilege is needed, except that reading
//     trusted.* needs CAP_SYS_ADMIN in the initial user namespace: without
//     it New fails rather than show opaque directories as merged.
//     WithKernelOverlay mounts such overlays read-only instead. Why reading
//     layers is the default (measured by BenchmarkOverlayStrategy, CPU time
//     on a loaded 2-core VM): New stays cheap (~70 µs against ~105-125 µs
//     with a kernel mount per overlay, and most execs never look inside a
//     --mount=from), it needs no privilege (rootless BuildKit uses
//     userxattr), creates no mount that could outlive a crash, and refuses
//     layer features (redirect, metacopy) instead of trusting a crafted
//     layer to the kernel's overlay code. The price is lookups: ~50 µs to
//     read a file four levels deep in a three-layer overlay, against
//     ~20 µs through a kernel mount. The kernel differential test checks
//     both against a real overlay mount.
//   - overlay with an upperdir (an embedder's raw writable overlay): mounted
//     by the kernel as a detached mount (fsopen/fsmount, CAP_SYS_ADMIN),
//     never attached to any mount namespace, released by Close.
//   - anything else (tmpfs, proc, sysfs, several mounts for one
//     destination): opaque, see OpaqueMountError.
//
// Mount destinations are resolved like runc resolves them: through the
// container's symlinks (the final one included) over the mounts before
// them; missing components are taken lexically (runc creates them). A later
// mount at or above an earlier one shadows it. Directories that lead to a
// mount point but do not exist yet (runc creates them when it mounts), and
// those inside an opaque mount, can be walked through to reach the mount; on
// their own they read as not existing (or opaque) and cannot be written
// under.
//
// Names passed to the io/fs methods (Open, Stat, ReadDir, ReadFile,
// ReadLink, Lstat) follow fs.ValidPath ("." is the container's root) so
// testing/fstest can check the package. All other methods take an
// unsafePath: a container path, absolute or relative to "/", that may
// contain ".", "..", repeated and trailing slashes, resolved like the
// kernel resolves it inside the container.
//
// Errors are *fs.PathError values carrying container paths (never host
// paths) and wrapping syscall errnos, so errors.Is(err, fs.ErrNotExist)
// and friends work.
package vfs
