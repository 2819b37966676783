package harness

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/buildkit-cacerts/buildkit-cacerts/internal/testenv"
	"github.com/buildkit-cacerts/buildkit-cacerts/internal/testimages/factory"
)

// TestDaemonBuild is the harness end to end: build the daemon, start it on a
// temporary root with one CA, push busybox to the registry, run a no-cache
// build of two RUN steps, read the daemon's peak RSS, stop it and check
// nothing is left mounted under its root.
func TestDaemonBuild(t *testing.T) {
	testenv.RequiresRoot(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	bins, err := BuildBinaries(ctx, t.TempDir(), false)
	if err != nil {
		t.Fatal(err)
	}
	layout, err := ImageLayout(ctx, factory.Busybox, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	reg := StartRegistry()
	defer reg.Close()
	ref, err := reg.PushLayout(ctx, layout, "busybox:latest")
	if err != nil {
		t.Fatal(err)
	}
	caDir, err := WriteCADir(filepath.Join(t.TempDir(), "cas"), 1)
	if err != nil {
		t.Fatal(err)
	}
	d, err := StartDaemon(ctx, DaemonConfig{Binary: bins.Daemon, CADir: caDir, Mode: "auto", TOML: reg.TOML()})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Stop(context.Background())
	c, err := d.Client(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	res, err := Build(ctx, c, BuildOpt{Dockerfile: "FROM " + ref + "\nRUN echo one\nRUN echo two\n", NoCache: true})
	if err != nil {
		t.Fatalf("%v\n%s", err, d.Log())
	}
	if runs := res.Runs(); len(runs) != 2 || runs[0].Duration() <= 0 {
		t.Errorf("runs = %+v", runs)
	}
	if !strings.Contains(res.Logs, "one") {
		t.Errorf("logs = %q", res.Logs)
	}
	if p, err := d.PeakRSS(); err != nil || p < 1<<20 {
		t.Errorf("peak RSS = %d, %v", p, err)
	}
	root := d.Root
	if err := d.Stop(ctx); err != nil {
		t.Error(err)
	}
	if _, err := os.Stat(root); !os.IsNotExist(err) {
		t.Errorf("daemon root %s left behind: %v", root, err)
	}
	mi, _ := os.ReadFile("/proc/self/mountinfo")
	if strings.Contains(string(mi), root) {
		t.Errorf("mounts left under %s", root)
	}
}
