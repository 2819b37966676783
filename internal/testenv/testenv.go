// Package testenv holds the one switch that enables root-only and slow tests.
//
// `go test ./...` stays fast and rootless: tests that need root (mounts, chroot,
// runc, a daemon) or take long call RequiresRoot or RequiresSlow, which skip —
// never fail — unless the switch is on. The README's test command (hack/test.sh)
// turns it on by exporting CACERTS_ROOT_TESTS=1 and running as root.
package testenv

import (
	"os"
	"testing"
)

// Switch is the environment variable that enables root-only and slow tests.
const Switch = "CACERTS_ROOT_TESTS"

// Enabled reports whether root-only and slow tests were asked for.
func Enabled() bool { return os.Getenv(Switch) == "1" }

// RequiresRoot skips t unless the switch is on and the test runs as root.
func RequiresRoot(t testing.TB) {
	t.Helper()
	if !Enabled() {
		t.Skipf("root-only test: set %s=1 and run as root (hack/test.sh does)", Switch)
	}
	if os.Geteuid() != 0 {
		t.Skipf("root-only test: %s=1 is set but euid is %d", Switch, os.Geteuid())
	}
}

// RequiresSlow skips t unless the switch is on; it does not need root.
func RequiresSlow(t testing.TB) {
	t.Helper()
	if !Enabled() {
		t.Skipf("slow test: set %s=1 (hack/test.sh does)", Switch)
	}
}
