package integration

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/moby/buildkit/client"
	"golang.org/x/sync/errgroup"

	"github.com/buildkit-cacerts/buildkit-cacerts/internal/harness"
	"github.com/buildkit-cacerts/buildkit-cacerts/internal/layerdiff"
)

// Product bugs the matrix found are listed in knownBugs while open (see
// integration/README.md for the ones fixed since), each naming the package
// likely at fault.

// knownBugs are matrix cells that fail because of a product bug, keyed
// "image/case". They are skipped through knownBug so the tree stays green;
// CACERTS_KNOWN_BUGS=1 runs them.
var knownBugs = map[string]string{
	// Issue 11: steps that derive state from the trust store (the cases
	// of cases_derive_test.go). On main at 5229e19 all 34 cells of these
	// cases failed; with the sweep (c202c8c) these still do.
	"debian-bookworm-min/derive-deb": "issue 11 (1), cacerts: all.pem (created empty, then the store appended: 0 bytes without injection) holds exactly our generic bundle, the only *.crt of this root, so the sweep takes it for a copy of our file and removes it; a plain cp of that bundle (bundle.crt, absent without injection) looks the same in the layer",
}

// knownBug skips t naming a product bug that makes it fail.
func knownBug(t *testing.T, bug string) {
	t.Helper()
	t.Skipf("known product bug (CACERTS_KNOWN_BUGS=1 runs it): %s", bug)
}

// mxBuildOut is one build of a case on one daemon.
type mxBuildOut struct {
	ref   string // the pushed image
	start time.Time
	res   *harness.BuildResult
	err   error
}

// runCase builds the case (each variant) on both daemons at once, checks
// the probes and compares the two images.
func (e *matrixEnv) runCase(t *testing.T, im *mxImage, c mxCase) {
	cell := im.Name + "/" + c.Name
	t.Cleanup(func() {
		switch {
		case t.Failed():
			e.results.set(im.Name, c.Name, "FAIL")
		case t.Skipped():
			e.results.set(im.Name, c.Name, "bug")
		default:
			e.results.set(im.Name, c.Name, "pass")
		}
	})
	if bug := knownBugs[cell]; bug != "" && os.Getenv("CACERTS_KNOWN_BUGS") != "1" {
		knownBug(t, bug)
	}
	n := max(c.Concurrent, 1)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			df := strings.ReplaceAll(c.Dockerfile, "{{N}}", strconv.Itoa(i))
			label := ""
			if n > 1 {
				label = fmt.Sprintf("variant %d: ", i)
			}
			e.runPair(t, im, c, df, label, fmt.Sprintf("%s-%s-%d", im.Name, c.Name, i))
		}()
	}
	wg.Wait()
}

// runPair builds df on both daemons concurrently and checks the pair. It
// reports through t.Errorf only (it runs on several goroutines).
func (e *matrixEnv) runPair(t *testing.T, im *mxImage, c mxCase, df, label, repo string) {
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	opt := harness.BuildOpt{Dockerfile: df, ContextFiles: c.Files, NoCache: true}
	if c.Debs != "" {
		opt.Contexts = map[string]string{"debs": "local:debs"}
		opt.Locals = map[string]string{"debs": e.debDirs[c.Debs]}
	}
	var outs [2]mxBuildOut
	var eg errgroup.Group
	for _, k := range []daemonKind{withCA, emptyCA} {
		eg.Go(func() error {
			o := &outs[k]
			o.ref = fmt.Sprintf("%s/out/%s:%s", e.reg.Host, repo, k)
			o.start = time.Now()
			o.res, o.err = harness.BuildExport(ctx, e.clients[k], opt, []client.ExportEntry{harness.PushTo(o.ref)})
			return nil
		})
	}
	eg.Wait()
	ok := true
	for _, k := range []daemonKind{withCA, emptyCA} {
		o := outs[k]
		if o.err != nil {
			logs := ""
			if o.res != nil {
				logs = o.res.Logs
			}
			t.Errorf("%s%s daemon: %v\nbuild output:\n%s\ndaemon log (cacerts, warnings):\n%s\nDockerfile:\n%s",
				label, k, o.err, tail(logs, 60), daemonLogFor(e.daemons[k], 40), df)
			ok = false
			continue
		}
		e.checkProbes(t, label, k, c, df, o.res.Logs)
		if c.Check != nil {
			c.Check(t, k, o.res.Logs)
		}
	}
	if !ok {
		return
	}
	want, err := e.pulled(ctx, outs[emptyCA].ref)
	if err != nil {
		t.Errorf("%s%v", label, err)
		return
	}
	got, err := e.pulled(ctx, outs[withCA].ref)
	if err != nil {
		t.Errorf("%s%v", label, err)
		return
	}
	e.checkScan(t, label, c, want, got)
	diffs, err := e.compare(want, got, c)
	if err != nil {
		t.Errorf("%scomparing the images: %v", label, err)
		return
	}
	switch {
	case c.WantDiffs != nil:
		if !matchDiffs(diffs, c.WantDiffs) {
			t.Errorf("%sthe comparison reported %q, want exactly the planted differences %q", label, diffs, c.WantDiffs)
		}
	case c.WantLeaks != nil:
		var paths []string
		for _, l := range c.WantLeaks {
			paths = append(paths, strings.SplitN(l, ": ", 2)[0])
		}
		if !leakDiffs(diffs, paths) {
			t.Errorf("%sthe comparison reported %q, want differences of %q only", label, diffs, paths)
		}
	case len(diffs) > 0:
		t.Errorf("%sthe image built with injection differs from the one built without (%d differences; mtimes ignored only for entries the process wrote):\n  %s\ndaemon log (cacerts, warnings):\n%s",
			label, len(diffs), strings.Join(diffs, "\n  "), daemonLogFor(e.daemons[withCA], 40))
	}
}

// checkScan scans every layer of the image built with injection for the
// engine's CA (and the intermediate) where the image built without has
// none: PEM blocks, raw DER (JKS), PKCS#12 stores, hash links
// (layerdiff.ScanImages). It runs on every cell, whatever the
// comparison ignores.
func (e *matrixEnv) checkScan(t *testing.T, label string, c mxCase, want, got v1.Image) {
	found, err := layerdiff.ScanImages(want, got, e.needles)
	if err != nil {
		t.Errorf("%sscanning the image for the CA: %v", label, err)
		return
	}
	var lines []string
	for _, f := range found {
		lines = append(lines, f.String())
	}
	if c.WantLeaks != nil {
		if !matchDiffs(lines, c.WantLeaks) {
			t.Errorf("%sthe CA scan reported %q, want exactly the planted %q", label, lines, c.WantLeaks)
		}
		return
	}
	if len(lines) > 0 {
		t.Errorf("%sthe image built with injection holds the engine's CA (%d findings; not in the image built without):\n  %s\ndaemon log (cacerts, warnings):\n%s",
			label, len(lines), strings.Join(lines, "\n  "), daemonLogFor(e.daemons[withCA], 40))
	}
}

// compare reads both pushed images and lists their differences, layer by
// layer; mtimes are ignored only for the entries a build step wrote (newer
// than the session's start in the image built without injection).
func (e *matrixEnv) compare(want, got v1.Image, c mxCase) ([]string, error) {
	// "Written by the process": newer than the start of the session. The
	// images' files are all older (SOURCE_DATE_EPOCH 2024-01-01, package
	// mtimes); a step another build ran on the same daemon with the same
	// definition (BuildKit shares the vertex, e.g. the COPY of tlsget) is
	// older than this build but still newer than the session.
	since := e.started.Add(-time.Second) // file times use the kernel's coarse clock
	diffs, err := layerdiff.CompareImages(want, got, func(w layerdiff.Layer) layerdiff.Options {
		return layerdiff.Options{IgnoreMtime: w.WrittenSince(since), IgnoreContent: c.IgnoreContent}
	})
	if err != nil {
		return nil, err
	}
	cd, err := configDiffs(want, got)
	return append(cd, diffs...), err
}

// configDiffs compares the image configs (environment, user, entrypoint,
// labels, …, and the history's steps) without their timestamps: injection
// must not change them either.
func configDiffs(want, got v1.Image) ([]string, error) {
	wc, err := want.ConfigFile()
	if err != nil {
		return nil, err
	}
	gc, err := got.ConfigFile()
	if err != nil {
		return nil, err
	}
	var d []string
	if a, b := fmt.Sprintf("%+v", wc.Config), fmt.Sprintf("%+v", gc.Config); a != b {
		d = append(d, fmt.Sprintf("config: %s without, %s with injection", a, b))
	}
	steps := func(c *v1.ConfigFile) string {
		var s []string
		for _, h := range c.History {
			s = append(s, fmt.Sprintf("%s empty=%v", h.CreatedBy, h.EmptyLayer))
		}
		return strings.Join(s, "\n")
	}
	if a, b := steps(wc), steps(gc); a != b {
		d = append(d, fmt.Sprintf("config history: %q without, %q with injection", a, b))
	}
	return d, nil
}

func (e *matrixEnv) pulled(ctx context.Context, ref string) (v1.Image, error) {
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		return nil, err
	}
	img, err := remote.Image(r, remote.WithContext(ctx))
	if err != nil {
		return nil, fmt.Errorf("reading the pushed image %s: %w", ref, err)
	}
	return img, nil
}

// matchDiffs reports whether every difference ends with one of want and
// every want is matched once.
func matchDiffs(diffs, want []string) bool {
	if len(diffs) != len(want) {
		return false
	}
	used := make([]bool, len(diffs))
	for _, w := range want {
		found := false
		for i, d := range diffs {
			if !used[i] && strings.HasSuffix(d, w) {
				used[i], found = true, true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

var probeLine = regexp.MustCompile(`(?m)^@@probe (\S+) (\S+) (\S+) rc=(\d+)\s*$`)

// checkProbes checks every probe line of one build against the case's
// expectation, and that every probe the Dockerfile holds reported.
func (e *matrixEnv) checkProbes(t *testing.T, label string, k daemonKind, c mxCase, df, logs string) {
	want := strings.Count(df, `echo \"@@probe `)
	got := probeLine.FindAllStringSubmatch(logs, -1)
	if len(got) != want {
		t.Errorf("%s%s daemon: %d probe results, want %d\nbuild output:\n%s", label, k, len(got), want, tail(logs, 60))
	}
	var info []string
	for _, m := range got {
		tag, cl, srv, rc := m[1], m[2], m[3], m[4]
		succeeded := rc == "0"
		wantOK, asserted := c.Expect.want(k, srv)
		if !asserted {
			info = append(info, fmt.Sprintf("%s %s→%s rc=%s", tag, cl, srv, rc))
			continue
		}
		if succeeded != wantOK {
			verb := "succeeded; it must fail"
			if wantOK {
				verb = "failed; it must succeed"
			}
			t.Errorf("%s%s daemon: %s (%s) against the %s server %s (rc=%s)%s", label, k, cl, tag, srv, verb, rc, whyLine(logs, tag, cl, srv))
		}
	}
	if len(info) > 0 {
		t.Logf("%s%s daemon, outcomes not asserted: %s", label, k, strings.Join(info, ", "))
	}
}

// whyLine is the error output a failed probe printed.
func whyLine(logs, tag, cl, srv string) string {
	prefix := fmt.Sprintf("@@why %s %s %s: ", tag, cl, srv)
	i := strings.Index(logs, prefix)
	if i < 0 {
		return ""
	}
	rest := logs[i+len(prefix):]
	if j := strings.Index(rest, "\n@@"); j >= 0 {
		rest = rest[:j]
	}
	return "\n    " + strings.ReplaceAll(strings.TrimSpace(tail(rest, 8)), "\n", "\n    ")
}

// tail is the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = append([]string{fmt.Sprintf("[… %d lines]", len(lines)-n)}, lines[len(lines)-n:]...)
	}
	return strings.Join(lines, "\n")
}

// matrixResults is the table: image × case → pass, FAIL, bug, n/a.
type matrixResults struct {
	mu     sync.Mutex
	cells  map[string]map[string]string
	cases  []string // in first-seen order
	images []string
	start  time.Time
}

func newMatrixResults() *matrixResults {
	return &matrixResults{cells: map[string]map[string]string{}, start: time.Now()}
}

// register adds the image's column and the cases' rows, in order.
func (r *matrixResults) register(image string, cases []mxCase) {
	for _, c := range cases {
		r.set(image, c.Name, "")
	}
}

func (r *matrixResults) set(image, c, status string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cells[image] == nil {
		r.cells[image] = map[string]string{}
		r.images = append(r.images, image)
	}
	if !contains(r.cases, c) {
		r.cases = append(r.cases, c)
	}
	r.cells[image][c] = status
}

// table renders the results as a Markdown table, one row per case.
func (r *matrixResults) table() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var b strings.Builder
	b.WriteString("| case |")
	for _, im := range r.images {
		b.WriteString(" " + im + " |")
	}
	b.WriteString("\n|---|")
	b.WriteString(strings.Repeat("---|", len(r.images)))
	b.WriteString("\n")
	counts := map[string]int{}
	for _, c := range r.cases {
		b.WriteString("| " + c + " |")
		for _, im := range r.images {
			s := r.cells[im][c]
			if s == "" {
				s = "-" // not run (filtered by -run)
			}
			counts[s]++
			b.WriteString(" " + s + " |")
		}
		b.WriteString("\n")
	}
	keys := make([]string, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	b.WriteString("\n")
	for _, k := range keys {
		fmt.Fprintf(&b, "%s: %d  ", k, counts[k])
	}
	fmt.Fprintf(&b, "\nwall time %s\n", time.Since(r.start).Round(time.Second))
	return b.String()
}

// report logs the table and writes it to matrix.md in the artifact
// directory.
func (r *matrixResults) report(t *testing.T) {
	tab := r.table()
	t.Logf("matrix (image × case):\n%s", tab)
	if err := os.WriteFile(t.ArtifactDir()+"/matrix.md", []byte(tab), 0o644); err != nil {
		t.Errorf("writing matrix.md: %v", err)
	}
}
