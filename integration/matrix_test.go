package integration

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/buildkit/client"
	"golang.org/x/sync/errgroup"

	"github.com/buildkit-cacerts/buildkit-cacerts/cacerts"
	"github.com/buildkit-cacerts/buildkit-cacerts/internal/harness"
	"github.com/buildkit-cacerts/buildkit-cacerts/internal/layerdiff"
	"github.com/buildkit-cacerts/buildkit-cacerts/internal/testenv"
	"github.com/buildkit-cacerts/buildkit-cacerts/internal/testimages"
)

// TestMatrix is the end-to-end matrix of issue 5: every test image × every
// case (cases_test.go). Each case builds the same Dockerfile, without cache,
// on two daemons at once — one whose engine CA set holds the test CA, one
// with an empty CA directory — checks what the TLS clients in the RUN steps
// reported against each server, and compares the two
// exported images layer by layer (compare_test.go). The matrix table is
// logged at the end and written to matrix.md in the test's artifact
// directory (go test -artifacts).
//
// Run one cell: CACERTS_ROOT_TESTS=1 go test ./integration -run 'TestMatrix/debian-bookworm-tls/curl'
func TestMatrix(t *testing.T) {
	testenv.RequiresRoot(t)
	e := newMatrixEnv(t)
	t.Cleanup(func() { e.results.report(t) })
	// t.Run from several goroutines (allowed, and the subtests keep their
	// names): the semaphore, not -parallel (GOMAXPROCS by default), bounds
	// the cases building at once, across images, so a slow image (Java's
	// command path) overlaps with the others.
	var images sync.WaitGroup
	for _, im := range e.images {
		cases := matrixCases(e, im)
		e.results.register(im.Name, cases) // the table's order
		images.Add(1)
		go func() {
			defer images.Done()
			t.Run(im.Name, func(t *testing.T) {
				var wg sync.WaitGroup
				for _, c := range cases {
					if c.skip != "" {
						e.results.set(im.Name, c.Name, "n/a")
						continue
					}
					wg.Add(1)
					go func() {
						defer wg.Done()
						e.sem <- struct{}{}
						defer func() { <-e.sem }()
						t.Run(c.Name, func(t *testing.T) { e.runCase(t, im, c) })
					}()
				}
				wg.Wait()
			})
		}()
	}
	images.Wait()
}

// daemonKind names the two daemons every case builds on.
type daemonKind int

const (
	withCA  daemonKind = iota // the engine's CA set holds the test CA
	emptyCA                   // the engine's CA directory is empty
)

func (k daemonKind) String() string {
	if k == withCA {
		return "with-ca"
	}
	return "empty-ca"
}

// server is one HTTPS server on loopback.
type server struct {
	Name     string // ca, chain, control
	URL      string // https://127.0.0.1:PORT/
	HostPort string // 127.0.0.1:PORT
	LeafPEM  []byte // the leaf's certificate, for offline verification
}

// matrixEnv is everything the cases share: the registry holding the test
// images, the two daemons, the PKI and the servers.
type matrixEnv struct {
	reg     *harness.Registry
	daemons [2]*harness.Daemon
	clients [2]*client.Client

	testCA, inter, controlCA *harness.CA
	servers                  map[string]server // ca, chain, control

	scratchGoRef, busyboxRef string
	images                   []*mxImage
	// debDirs are the directories the named context "debs" can be (mxCase.Debs):
	// a suite ("bookworm", "trixie": only its ca-certificates .deb), or
	// a .deb set (debsJRE, debsCACertsMin, debsDerive).
	debDirs map[string]string
	needles []layerdiff.Needle // the test CA and the intermediate, for the CA scan

	sem     chan struct{}
	results *matrixResults
	started time.Time // before any build: entries newer than this were written by a build step
}

// matrixParallel is how many cases run at once (each builds on both
// daemons): CACERTS_MATRIX_PARALLEL, default 4.
func matrixParallel() int {
	if n, err := strconv.Atoi(os.Getenv("CACERTS_MATRIX_PARALLEL")); err == nil && n > 0 {
		return n
	}
	return 4
}

func newMatrixEnv(t *testing.T) *matrixEnv {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	e := &matrixEnv{sem: make(chan struct{}, matrixParallel()), results: newMatrixResults(), debDirs: map[string]string{}, started: time.Now()}

	// PKI: the test CA (installed by the engine), an intermediate under
	// it, and a control CA nobody installs.
	var err error
	if e.testCA, err = harness.NewCA("buildkit-cacerts matrix test CA"); err != nil {
		t.Fatal(err)
	}
	if e.inter, err = e.testCA.Intermediate("buildkit-cacerts matrix intermediate"); err != nil {
		t.Fatal(err)
	}
	if e.controlCA, err = harness.NewCA("buildkit-cacerts matrix control CA (not installed)"); err != nil {
		t.Fatal(err)
	}
	body := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, "matrix ok\n") })
	e.servers = map[string]server{}
	serve := func(name string, issuer *harness.CA, sendIssuer bool) {
		var hs *httptest.Server
		var leaf []byte
		var err error
		if sendIssuer {
			hs, leaf, err = harness.ServeHTTPSVia(issuer, nil, body)
		} else {
			hs, leaf, err = harness.ServeHTTPSLeaf(issuer, body)
		}
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(hs.Close)
		e.servers[name] = server{Name: name, URL: hs.URL + "/", HostPort: hs.Listener.Addr().String(), LeafPEM: leaf}
	}
	serve("ca", e.testCA, false)
	serve("chain", e.inter, true) // leaf ← intermediate ← test CA
	serve("control", e.controlCA, false)

	// Images into the in-process registry.
	e.reg = harness.StartRegistry()
	t.Cleanup(e.reg.Close)
	e.images = matrixImages()
	var mu sync.Mutex
	refs := map[string]string{}
	eg, ectx := errgroup.WithContext(ctx)
	eg.SetLimit(3)
	for _, name := range testimages.Images() {
		layout := testimages.Layout(t, name) // builds a missing image (minutes)
		eg.Go(func() error {
			ref, err := e.reg.PushLayout(ectx, layout, name+":latest")
			mu.Lock()
			refs[name] = ref
			mu.Unlock()
			return err
		})
	}
	if err := eg.Wait(); err != nil {
		t.Fatal(err)
	}
	for _, im := range e.images {
		im.Ref = refs[im.Name]
		if im.Ref == "" {
			t.Fatalf("image %s: not among testimages.Images() %v", im.Name, testimages.Images())
		}
	}
	e.scratchGoRef, e.busyboxRef = refs[testimages.ScratchGo], refs[testimages.Busybox]
	copyDebs := func(debs ...string) string {
		dir := t.TempDir()
		for _, deb := range debs {
			b, err := os.ReadFile(deb)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, filepath.Base(deb)), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		return dir
	}
	for _, suite := range []string{"bookworm", "trixie"} {
		e.debDirs[suite] = copyDebs(testimages.CACertsDeb(t, suite))
	}
	e.debDirs[debsJRE] = copyDebs(testimages.Debs(t, testimages.JREDebsBookworm)...)
	e.debDirs[debsCACertsMin] = copyDebs(testimages.Debs(t, testimages.CACertsClosureBookworm)...)
	e.debDirs[debsDerive] = buildDeriveDeb(t)
	for _, ca := range []struct {
		name string
		ca   *harness.CA
	}{{"test CA", e.testCA}, {"intermediate", e.inter}} {
		h, err := cacerts.SubjectHash(ca.ca.Cert.RawSubject)
		if err != nil {
			t.Fatal(err)
		}
		e.needles = append(e.needles, layerdiff.Needle{Name: ca.name, Cert: ca.ca.Cert, SubjectHash: fmt.Sprintf("%08x", h)})
	}

	// Two daemons, on the binary every test of the process shares. The
	// update tool's sibling gets 5 minutes, not the default minute: the
	// concurrent-8 cell runs eight Java keystore hooks at once, and on a
	// loaded 2-core machine a timed-out tool means an exec without the CAs
	// (not strict), which the cell's TLS probes then report.
	bin := daemonBinary(t)
	toml := e.reg.TOML() + "[cacerts]\n  sibling_timeout = \"5m\"\n"
	for k, dir := range map[daemonKind]string{withCA: caDir(t, e.testCA), emptyCA: caDir(t)} {
		d, err := harness.StartDaemon(ctx, harness.DaemonConfig{Binary: bin, CADir: dir, TOML: toml, Debug: true})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if err := d.Stop(context.Background()); err != nil {
				t.Errorf("stopping the %s daemon: %v", k, err)
			}
		})
		c, err := d.Client(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		e.daemons[k], e.clients[k] = d, c
	}
	return e
}

// daemonLogFor returns the daemon's log lines about CA certificates
// (cacerts: …), at most max of the last ones.
func daemonLogFor(d *harness.Daemon, max int) string {
	var out []string
	for _, l := range strings.Split(d.Log(), "\n") {
		if strings.Contains(l, `msg="cacerts`) || strings.Contains(l, `msg="CA certificates`) {
			out = append(out, l)
		}
	}
	if len(out) > max {
		out = out[len(out)-max:]
	}
	return strings.Join(out, "\n")
}
