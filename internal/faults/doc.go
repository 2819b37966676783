// Package faults is the fault-injection kit of the daemon's fault suite
// (integration/fault_*_test.go) and soak: a scanner that finds the engine's
// test CAs in any bytes an image, a cache export or a daemon root can hold
// (PEM text or raw DER, through gzip), a small tmpfs to fill for ENOSPC, and
// the helpers that swap or vanish a CA directory mid-build.
//
// Nothing here is used by the daemon: it is test tooling, kept out of the
// product's packages.
package faults
