package integration

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/buildkit/client"
	"github.com/moby/buildkit/session"

	"github.com/buildkit-cacerts/buildkit-cacerts/internal/harness"
	"github.com/buildkit-cacerts/buildkit-cacerts/internal/testenv"
	"github.com/buildkit-cacerts/buildkit-cacerts/internal/testimages"
)

// What the smoke, shapes, strict, gateway and flags tests share, on
// internal/harness: the helpers here adapt it (it returns errors) to a
// *testing.T, failing the test and tying each lifetime to it.

// smokeEnv is one HTTPS server signed by a test CA and a registry holding
// debian-bookworm-tls.
type smokeEnv struct {
	ca      *harness.CA
	url     string // https://127.0.0.1:PORT/
	reg     *harness.Registry
	image   string // reg.Host/debian:tls
	baseLen int    // layers in the base image
	toml    string
}

func newSmokeEnv(t *testing.T) *smokeEnv {
	t.Helper()
	testenv.RequiresRoot(t)
	layoutDir := testimages.Layout(t, testimages.DebianBookwormTLS)
	ca, err := harness.NewCA("buildkit-cacerts smoke test CA")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := harness.ServeHTTPS(ca, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprint(w, smokeBody)
	}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	e := &smokeEnv{ca: ca, url: srv.URL, reg: harness.StartRegistry()}
	t.Cleanup(e.reg.Close)
	if e.image, err = e.reg.PushLayout(context.Background(), layoutDir, "debian:tls"); err != nil {
		t.Fatal(err)
	}
	e.baseLen = layoutLayers(t, layoutDir)
	e.toml = e.reg.TOML()
	return e
}

// build runs the Dockerfile with the Dockerfile frontend, with the session
// attachables, and returns the exported OCI tarball's path and the build's
// log lines.
func (e *smokeEnv) build(t *testing.T, d *harness.Daemon, dockerfile string, attachables ...session.Attachable) (string, string, error) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "image.tar")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	c, err := d.Client(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	res, err := harness.Build(ctx, c, harness.BuildOpt{Dockerfile: dockerfile, OCITar: out, Session: attachables})
	if res == nil {
		t.Fatal(err)
	}
	return out, res.Logs, err
}

var (
	buildOnce sync.Once
	builtBin  string
	buildErr  error
)

// daemonBinary builds cmd/buildkitd-cacerts once per test process, into one
// fixed directory under the temp dir, replaced by each run so nothing piles
// up (go build replaces the file; a daemon still running from the old one
// keeps its inode).
func daemonBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir := filepath.Join(os.TempDir(), "buildkitd-cacerts-integration")
		var bins harness.Binaries
		bins, buildErr = harness.BuildBinaries(context.Background(), dir, false)
		builtBin = bins.Daemon
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return builtBin
}

// startDaemon starts buildkitd-cacerts with cfg (Binary and Debug are
// filled in) and stops it when the test ends, unmounting what it left. The
// daemon's log is logged when the test failed; its CA certificate lines
// are logged under -v.
func startDaemon(t *testing.T, cfg harness.DaemonConfig) *harness.Daemon {
	t.Helper()
	cfg.Binary, cfg.Debug = daemonBinary(t), true
	d, err := harness.StartDaemon(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := d.Stop(context.Background()); err != nil {
			t.Errorf("stopping the daemon: %v", err)
		}
		if t.Failed() {
			t.Logf("daemon log:\n%s", d.Log())
		} else if testing.Verbose() {
			for _, l := range strings.Split(d.Log(), "\n") {
				if strings.Contains(l, "CA certificates") || strings.Contains(l, "cacerts:") {
					t.Log(l)
				}
			}
		}
	})
	return d
}

// caDir writes the CAs into a new directory, the engine's CA directory
// (empty when there is none).
func caDir(t *testing.T, cas ...*harness.CA) string {
	t.Helper()
	dir, err := harness.WriteCAs(t.TempDir(), cas...)
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// daemonClient connects a client to d, closed when the test ends.
func daemonClient(t *testing.T, d *harness.Daemon) *client.Client {
	t.Helper()
	c, err := d.Client(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}
