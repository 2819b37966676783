package executor

import (
	"context"
	"errors"
	"testing"

	bkexecutor "github.com/moby/buildkit/executor"
	"github.com/moby/buildkit/util/bklog"
	"github.com/sirupsen/logrus"
	"github.com/sirupsen/logrus/hooks/test"
)

// TestExecFieldReachesInstaller: every line logged through bklog.G(ctx)
// during an exec — the installer's (cacerts') at install and at revert, and
// Wrap's own warning for a failed install — carries the exec id, and a
// failed install is warned about exactly once.
func TestExecFieldReachesInstaller(t *testing.T) {
	logger, hook := test.NewNullLogger()
	logger.SetLevel(logrus.DebugLevel)
	ctx := bklog.WithLogger(context.Background(), logrus.NewEntry(logger))
	h := newHarness(t)
	fail := false
	inst := InstallerFunc(func(ctx context.Context, c *Container) (Revert, error) {
		bklog.G(ctx).Debug("installing")
		if fail {
			return nil, errors.New("no bundle")
		}
		return func(ctx context.Context) error {
			bklog.G(ctx).Debug("reverting")
			return nil
		}, nil
	})
	w := Wrap(h.inner, Options{CAs: oneCA, Installer: inst})
	for _, f := range []bool{false, true} {
		fail = f
		hook.Reset()
		if _, err := w.Run(ctx, "ctr7", h.root, h.mnts, bkexecutor.ProcessInfo{Meta: bkexecutor.Meta{Args: []string{"user"}}}, nil); err != nil {
			t.Fatal(err)
		}
		warnings := 0
		for _, e := range hook.AllEntries() {
			if e.Data["exec"] != "ctr7" {
				t.Errorf("log line %q without exec=ctr7: %v", e.Message, e.Data)
			}
			if e.Level <= logrus.WarnLevel {
				warnings++
			}
		}
		want := map[bool]int{false: 0, true: 1}[f]
		if warnings != want {
			t.Errorf("install fails: %v: %d warnings, want %d", f, warnings, want)
		}
	}
}
