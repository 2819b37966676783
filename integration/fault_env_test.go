package integration

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/moby/buildkit/client"
	"github.com/tonistiigi/fsutil"
	"golang.org/x/sync/errgroup"

	"github.com/buildkit-cacerts/buildkit-cacerts/internal/faults"
	"github.com/buildkit-cacerts/buildkit-cacerts/internal/harness"
	"github.com/buildkit-cacerts/buildkit-cacerts/internal/testenv"
	"github.com/buildkit-cacerts/buildkit-cacerts/internal/testimages"
	"github.com/buildkit-cacerts/buildkit-cacerts/internal/testimages/factory"
)

// The fault suite's environment (issue 12): one registry holding
// debian-bookworm-tls, test CAs, a scanner that knows every one of them,
// and per fault kind a daemon whose trials all end with the same checks
// (faultDaemon.check): the pushed image, the local cache export and the
// daemon's whole root hold none of our CAs, and the daemon still answers.

var (
	faultBinOnce sync.Once
	faultBin     string
	faultBinErr  error
)

// faultBinary builds cmd/buildkitd-cacerts once per test process into a
// directory named after this module's root, not the fixed
// /tmp/buildkitd-cacerts-integration of daemonBinary: that path is shared by
// every checkout on the machine, so a restart (a kill trial) could start
// another checkout's daemon, built between our build and our restart.
func faultBinary(t *testing.T) string {
	t.Helper()
	faultBinOnce.Do(func() {
		root, err := factory.FindRepoRoot()
		if err != nil {
			faultBinErr = err
			return
		}
		sum := sha256.Sum256([]byte(root))
		dir := filepath.Join(os.TempDir(), "buildkitd-cacerts-faults-"+hex.EncodeToString(sum[:6]))
		var bins harness.Binaries
		bins, faultBinErr = harness.BuildBinaries(context.Background(), dir, false)
		faultBin = bins.Daemon
	})
	if faultBinErr != nil {
		t.Fatal(faultBinErr)
	}
	return faultBin
}

// faultTrials is how many trials each kind runs: CACERTS_FAULT_TRIALS, 1 by
// default (the CI sample; hack/faults.sh runs the full campaign).
func faultTrials(t *testing.T) int {
	v := os.Getenv("CACERTS_FAULT_TRIALS")
	if v == "" {
		return 1
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		t.Fatalf("CACERTS_FAULT_TRIALS=%q: want a positive number", v)
	}
	return n
}

// faultDeadline is when trials stop starting: CACERTS_FAULT_BUDGET (a
// duration, e.g. 75m) after the suite starts; zero means no bound. The
// campaign reports what ran.
func faultDeadline(t *testing.T) time.Time {
	v := os.Getenv("CACERTS_FAULT_BUDGET")
	if v == "" {
		return time.Time{}
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		t.Fatalf("CACERTS_FAULT_BUDGET=%q: %v", v, err)
	}
	return time.Now().Add(d)
}

type faultEnv struct {
	deadline time.Time     // zero: none
	ca       *harness.CA   // the engine's CA
	pool     []*harness.CA // CAs a swapped CA directory brings
	reg      *harness.Registry
	image    string // reg.Host/debian:tls
	toml     string
	scan     *faults.Scanner

	mu    sync.Mutex
	skip  map[v1.Hash]bool // layers scanned clean
	stats map[string]*kindStats
}

// kindStats counts one kind's trials.
type kindStats struct {
	Trials      int           `json:"trials"`
	Hit         int           `json:"faults_hit"` // trials whose fault landed before the build ended
	BuildsOK    int           `json:"builds_ok"`
	BuildsErr   int           `json:"builds_failed"`
	Findings    int           `json:"ca_findings"`
	Crashes     int           `json:"daemon_crashes"`
	Unexpected  int           `json:"unexpected_failures"`
	Wall        time.Duration `json:"wall_ns"`
	ScannedMB   int64         `json:"-"`
	FirstErrors []string      `json:"first_errors,omitempty"`
}

func newFaultEnv(t *testing.T, extraCAs ...*harness.CA) *faultEnv {
	t.Helper()
	testenv.RequiresRoot(t)
	layoutDir := testimages.Layout(t, testimages.DebianBookwormTLS)
	ca, err := harness.NewCA("buildkit-cacerts fault suite CA")
	if err != nil {
		t.Fatal(err)
	}
	e := &faultEnv{ca: ca, reg: harness.StartRegistry(), stats: map[string]*kindStats{}}
	t.Cleanup(e.reg.Close)
	for i := range 4 {
		c, err := harness.NewCA(fmt.Sprintf("buildkit-cacerts fault suite swap CA %d", i))
		if err != nil {
			t.Fatal(err)
		}
		e.pool = append(e.pool, c)
	}
	certs := []*x509.Certificate{ca.Cert}
	for _, c := range append(e.pool, extraCAs...) {
		certs = append(certs, c.Cert)
	}
	e.scan = faults.NewScanner(certs...)
	img, err := harness.LayoutImage(layoutDir)
	if err != nil {
		t.Fatal(err)
	}
	if e.skip, err = faults.BaseLayers(img); err != nil {
		t.Fatal(err)
	}
	if e.image, err = e.reg.Push(context.Background(), img, "debian:tls"); err != nil {
		t.Fatal(err)
	}
	e.toml = e.reg.TOML()
	return e
}

// report logs every kind's counts and, with CACERTS_FAULT_REPORT=FILE,
// writes them there as JSON (hack/faults.sh reads it).
func (e *faultEnv) report(t *testing.T) {
	e.mu.Lock()
	defer e.mu.Unlock()
	var kinds []string
	total := kindStats{}
	for k, s := range e.stats {
		kinds = append(kinds, k)
		total.Trials += s.Trials
		total.Hit += s.Hit
		total.Findings += s.Findings
		total.Crashes += s.Crashes
		total.Unexpected += s.Unexpected
	}
	sort.Strings(kinds)
	var b strings.Builder
	fmt.Fprintf(&b, "%-18s %6s %6s %8s %9s %8s %7s %10s %8s\n", "kind", "trials", "hit", "build-ok", "build-err", "CA-found", "crashes", "unexpected", "wall")
	for _, k := range kinds {
		s := e.stats[k]
		fmt.Fprintf(&b, "%-18s %6d %6d %8d %9d %8d %7d %10d %8s\n", k, s.Trials, s.Hit, s.BuildsOK, s.BuildsErr, s.Findings, s.Crashes, s.Unexpected, s.Wall.Round(time.Second))
	}
	fmt.Fprintf(&b, "total: %d trials (%d with the fault landing mid-build), %d CA findings, %d daemon crashes, %d unexpected failures; %d MB scanned\n",
		total.Trials, total.Hit, total.Findings, total.Crashes, total.Unexpected, e.scan.Bytes>>20)
	t.Logf("fault trials:\n%s", b.String())
	if p := os.Getenv("CACERTS_FAULT_REPORT"); p != "" {
		j, _ := json.MarshalIndent(e.stats, "", "  ")
		if err := os.WriteFile(p, append(j, '\n'), 0o644); err != nil {
			t.Errorf("writing the report: %v", err)
		}
		if err := os.WriteFile(p+".txt", []byte(b.String()), 0o644); err != nil {
			t.Errorf("writing the report: %v", err)
		}
	}
}

func (e *faultEnv) statsFor(kind string) *kindStats {
	e.mu.Lock()
	defer e.mu.Unlock()
	s, ok := e.stats[kind]
	if !ok {
		s = &kindStats{}
		e.stats[kind] = s
	}
	return s
}

// faultDaemon is one kind's daemon; a kill trial replaces d with a new
// daemon on the same root.
type faultDaemon struct {
	e        *faultEnv
	kind     string
	cfg      harness.DaemonConfig
	d        *harness.Daemon
	cacheDir string // every trial's cache export (type=local, mode=max)
	stats    *kindStats
}

// startFaultDaemon starts a daemon for one kind, on root when it is not
// empty (a tmpfs), and stops it when the test ends.
func (e *faultEnv) startFaultDaemon(t *testing.T, kind string, cfg harness.DaemonConfig, root string) *faultDaemon {
	t.Helper()
	cfg.Binary, cfg.Debug = faultBinary(t), true
	if cfg.TOML == "" {
		cfg.TOML = e.toml
	}
	if cfg.CADir == "" {
		cfg.CADir = caDir(t, e.ca)
	}
	if root == "" {
		root = filepath.Join(t.TempDir(), "daemon")
	}
	if err := os.MkdirAll(root, 0o700); err != nil {
		t.Fatal(err)
	}
	d, err := harness.StartDaemonOn(context.Background(), cfg, root)
	if err != nil {
		t.Fatal(err)
	}
	fd := &faultDaemon{e: e, kind: kind, cfg: cfg, d: d, cacheDir: filepath.Join(t.TempDir(), "cache"), stats: e.statsFor(kind)}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("daemon log (tail):\n%s", tail(fd.d.Log(), 200))
		}
		if err := fd.d.Stop(context.Background()); err != nil {
			t.Errorf("stopping the daemon: %v", err)
		}
	})
	return fd
}

// restart SIGKILLs the daemon (a crash) and starts a new one on its root.
func (fd *faultDaemon) restart(ctx context.Context) error {
	if err := fd.d.Kill(); err != nil {
		return err
	}
	d, err := harness.StartDaemonOn(ctx, fd.cfg, fd.d.Root)
	if err != nil {
		return fmt.Errorf("restarting after SIGKILL: %w", err)
	}
	fd.d = d
	return nil
}

// trialBuild is one build of a trial.
type trialBuild struct {
	Dockerfile string
	Context    map[string][]byte
	Push       string // image reference to push to; empty: no export
	// OnRunStart is called (once, in its own goroutine) when the first RUN
	// vertex starts; OnLog when the build output holds the marker.
	OnRunStart func()
	Marker     string
	OnLog      func()
}

// build runs b on the daemon with the image pushed and the cache exported
// to the kind's local cache directory.
func (fd *faultDaemon) build(ctx context.Context, b trialBuild) (logs string, err error) {
	c, err := fd.d.Client(ctx)
	if err != nil {
		return "", err
	}
	defer c.Close()
	dir, err := os.MkdirTemp("", "faults-context-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(dir)
	files := map[string][]byte{"Dockerfile": []byte(b.Dockerfile)}
	for k, v := range b.Context {
		files[k] = v
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o755); err != nil {
			return "", err
		}
	}
	fsys, err := fsutil.NewFS(dir)
	if err != nil {
		return "", err
	}
	so := client.SolveOpt{
		Frontend:    "dockerfile.v0",
		LocalMounts: map[string]fsutil.FS{"context": fsys, "dockerfile": fsys},
		CacheExports: []client.CacheOptionsEntry{{
			Type:  "local",
			Attrs: map[string]string{"dest": fd.cacheDir, "mode": "max"},
		}},
	}
	if b.Push != "" {
		so.Exports = []client.ExportEntry{harness.PushTo(b.Push)}
	}
	ch := make(chan *client.SolveStatus)
	eg, ectx := errgroup.WithContext(ctx)
	var out strings.Builder
	eg.Go(func() error {
		_, err := c.Solve(ectx, nil, so, ch)
		return err
	})
	eg.Go(func() error {
		started, logged := false, false
		for s := range ch {
			for _, v := range s.Vertexes {
				if !started && v.Started != nil && strings.Contains(v.Name, "] RUN ") {
					started = true
					if b.OnRunStart != nil {
						go b.OnRunStart()
					}
				}
			}
			for _, l := range s.Logs {
				out.Write(l.Data)
			}
			if !logged && b.Marker != "" && strings.Contains(out.String(), b.Marker) {
				logged = true
				if b.OnLog != nil {
					go b.OnLog()
				}
			}
		}
		return nil
	})
	err = eg.Wait()
	return out.String(), err
}

// trialOutcome is what one trial did, for check.
type trialOutcome struct {
	name     string
	pushed   string // reference of the pushed image; "" when the build failed
	buildErr error
	mustOK   bool // the kind's builds must succeed (fail open)
	hit      bool // the fault landed before the build ended
	warm     bool // not a trial: a warm-up or the closing build
}

// check ends every trial: the pushed image, the cache export and the daemon
// root hold none of our CAs (a finding in the root is given settle to go:
// a cancelled exec may still be reverting when the client returns), and
// the daemon answers. It counts the outcome and reports problems on t.
func (fd *faultDaemon) check(t *testing.T, ctx context.Context, o trialOutcome, settle time.Duration) {
	t.Helper()
	s := fd.stats
	fd.e.mu.Lock()
	if !o.warm {
		s.Trials++
		if o.hit {
			s.Hit++
		}
		if o.buildErr == nil {
			s.BuildsOK++
		} else {
			s.BuildsErr++
		}
	}
	fd.e.mu.Unlock()
	fail := func(count *int, format string, args ...any) {
		msg := fmt.Sprintf("%s: ", o.name) + fmt.Sprintf(format, args...)
		fd.e.mu.Lock()
		*count++
		if len(s.FirstErrors) < 5 {
			s.FirstErrors = append(s.FirstErrors, msg)
		}
		fd.e.mu.Unlock()
		t.Error(msg)
	}
	if o.buildErr != nil && o.mustOK {
		fail(&s.Unexpected, "build failed; this fault must fail open: %v", o.buildErr)
	}
	if o.pushed != "" && o.buildErr == nil {
		fd.e.mu.Lock()
		skip := fd.e.skip
		fd.e.mu.Unlock()
		found, err := fd.e.scanImage(ctx, o.pushed, skip)
		if err != nil {
			fail(&s.Unexpected, "scanning the pushed image: %v", err)
		}
		for _, f := range found {
			fail(&s.Findings, "our CA in the exported image: %s", f)
		}
	}
	if found, err := fd.e.scan.Tree(fd.cacheDir); err != nil && !os.IsNotExist(err) {
		fail(&s.Unexpected, "scanning the cache export: %v", err)
	} else {
		for _, f := range found {
			fail(&s.Findings, "our CA in the cache export: %s", f)
		}
	}
	deadline := time.Now().Add(settle)
	for {
		found, err := fd.e.scan.Tree(filepath.Join(fd.d.Root, "state"))
		if err != nil {
			fail(&s.Unexpected, "scanning the daemon root: %v", err)
			break
		}
		if len(found) == 0 {
			break
		}
		if time.Now().After(deadline) {
			for _, f := range found {
				fail(&s.Findings, "our CA in the daemon root (a cache record or snapshot): %s", f)
			}
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	select {
	case <-fd.d.Exited():
		fail(&s.Crashes, "the daemon exited: %v", fd.d.ExitErr())
		return
	default:
	}
	// Answering: a 2s ListWorkers, retried for 60s (the machine is shared;
	// one slow answer under load is not a hung daemon).
	for start := time.Now(); ; time.Sleep(time.Second) {
		_, err := fd.d.Workers(ctx)
		if err == nil {
			break
		}
		if time.Since(start) > time.Minute {
			fail(&s.Crashes, "the daemon does not answer for a minute: %v", err)
			break
		}
	}
}

// scanImage scans a pushed image, sharing the clean-layer set.
func (e *faultEnv) scanImage(ctx context.Context, ref string, skip map[v1.Hash]bool) ([]faults.Finding, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.scan.Image(ctx, ref, skip)
}

// serving proves the daemon still builds: a RUN that trusts nothing
// special, pushed and scanned like any trial.
func (fd *faultDaemon) serving(t *testing.T, ctx context.Context) {
	t.Helper()
	ref := fmt.Sprintf("%s/out/%s:serving-%d", fd.e.reg.Host, fd.kind, rand.Int64())
	df := fmt.Sprintf("FROM %s\nRUN echo serving-%d > /serving\n", fd.e.image, rand.Int64())
	logs, err := fd.build(ctx, trialBuild{Dockerfile: df, Push: ref})
	if err != nil {
		t.Errorf("%s: the daemon no longer builds after its faults: %v\n%s", fd.kind, err, tail(logs, 20))
		return
	}
	fd.check(t, ctx, trialOutcome{name: fd.kind + "/serving", pushed: ref, mustOK: true, warm: true}, 10*time.Second)
}

// randDur is a uniformly random duration in [lo, hi).
func randDur(lo, hi time.Duration) time.Duration {
	return lo + time.Duration(rand.Int64N(int64(hi-lo)))
}

var _ = io.Discard
