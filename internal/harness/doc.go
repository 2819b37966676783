// Package harness runs the project end to end, outside `go test` as well as
// inside it: it builds the daemon (and upstream BuildKit's buildkitd from the
// same pinned module), starts daemons on temporary roots and stops them
// without leftovers, serves test images from an in-process registry on
// loopback, derives image variants (more layers, a bigger bundle, an extra
// file), makes CA certificates and HTTPS servers, runs Dockerfile builds
// through the BuildKit client and reads a process's peak memory.
//
// Every function takes a context where it can block and returns errors; none
// needs a *testing.T, so hack/bench and the integration tests share it.
// Starting a daemon needs root (BuildKit's runc worker); building binaries,
// images, certificates and statistics does not.
//
// Daemons run in their own process group with a parent-death signal, so a
// crashed caller does not leave them behind; Stop ends the group, lazily
// unmounts whatever BuildKit left mounted under the daemon's root and
// removes it. Daemons never use /var/lib/buildkit.
package harness
