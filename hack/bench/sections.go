package main

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/buildkit-cacerts/buildkit-cacerts/internal/harness"
)

// stepsDockerfile is n near-empty RUN steps on im, each with a unique
// argument (token-i), so no two steps or builds share a cache key.
func stepsDockerfile(im *image, n int, token string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "FROM %s\n", im.Ref)
	for i := 1; i <= n; i++ {
		if im.Exec {
			fmt.Fprintf(&b, "RUN [\"/true\", \"%s-%d\"]\n", token, i)
		} else {
			fmt.Fprintf(&b, "RUN true %s-%d\n", token, i)
		}
	}
	return b.String()
}

// buildResult is one build's measurements.
type buildResult struct {
	Steps []time.Duration // RUN steps' durations
	Wall  time.Duration
	// CPU time of the daemon itself and of its reaped children (runc,
	// containers) during the build; meaningful when the build ran alone on
	// its daemon.
	CPUSelf, CPUChildren time.Duration
}

var tokenSeq struct {
	sync.Mutex
	n int
}

func nextToken() string {
	tokenSeq.Lock()
	defer tokenSeq.Unlock()
	tokenSeq.n++
	return fmt.Sprintf("b%d-%d", time.Now().Unix()%100000, tokenSeq.n)
}

// build runs one no-cache build of n RUN steps on the daemon of s.
func (e *env) build(ctx context.Context, s daemonSpec, im *image, n int) (buildResult, error) {
	d, err := e.daemon(ctx, s)
	if err != nil {
		return buildResult{}, err
	}
	c, err := d.Client(ctx)
	if err != nil {
		return buildResult{}, err
	}
	defer c.Close()
	bctx, cancel := context.WithTimeout(ctx, 30*time.Minute)
	defer cancel()
	self0, child0, cpuErr := d.CPU()
	token := nextToken()
	e.installs.expect(token, im.Key)
	res, err := harness.Build(bctx, c, harness.BuildOpt{Dockerfile: stepsDockerfile(im, n, token), NoCache: true})
	if err != nil {
		logs := ""
		if res != nil {
			logs = lastLines(res.Logs, 20)
		}
		return buildResult{}, fmt.Errorf("%s on %s: %w\n%s", im.Key, s.Name, err, logs)
	}
	runs := res.Runs()
	if len(runs) != n {
		return buildResult{}, fmt.Errorf("%s on %s: %d RUN steps ran, want %d", im.Key, s.Name, len(runs), n)
	}
	out := buildResult{Wall: res.Wall}
	if self1, child1, err := d.CPU(); err == nil && cpuErr == nil {
		out.CPUSelf, out.CPUChildren = self1-self0, child1-child0
	}
	for _, r := range runs {
		out.Steps = append(out.Steps, r.Duration())
	}
	return out, nil
}

func lastLines(s string, n int) string {
	ls := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(ls) > n {
		ls = ls[len(ls)-n:]
	}
	return strings.Join(ls, "\n")
}

// warm pulls and unpacks im on the daemon of s (a one-step build), so the
// measured builds start from a local image.
func (e *env) warm(ctx context.Context, s daemonSpec, im *image) error {
	_, err := e.build(ctx, s, im, 1)
	return err
}

// cell is one configuration at one point.
type cell struct {
	Spec   daemonSpec
	Image  *image
	Steps  int // RUN steps per build
	Sample Sample
	Wall   Floats // seconds per build
	// Daemon CPU per RUN step, ms, one value per build: itself, and its
	// reaped children (runc and the containers).
	CPUSelf, CPUChildren Floats
	Err                  string // the first failure, if any
}

func (c *cell) record(r buildResult, err error) {
	if err != nil {
		if c.Err == "" {
			c.Err = err.Error()
		}
		logf("FAILED %s/%s: %v", c.Image.Key, c.Spec.Name, err)
		return
	}
	c.Sample.Add(r.Steps)
	c.Wall = append(c.Wall, r.Wall.Seconds())
	if n := len(r.Steps); n > 0 {
		c.CPUSelf = append(c.CPUSelf, msf(r.CPUSelf)/float64(n))
		c.CPUChildren = append(c.CPUChildren, msf(r.CPUChildren)/float64(n))
	}
}

// grid is a set of cells keyed by image key and daemon name.
type grid map[string]map[string]*cell

func (g grid) get(im *image, s daemonSpec, steps int) *cell {
	if g[im.Key] == nil {
		g[im.Key] = map[string]*cell{}
	}
	c := g[im.Key][s.Name]
	if c == nil {
		c = &cell{Spec: s, Image: im, Steps: steps}
		g[im.Key][s.Name] = c
	}
	return c
}

// pair is one measurement point: an image on a daemon.
type pair struct {
	im *image
	s  daemonSpec
	n  int
}

// interleave runs every pair once per round, rotating the order each round
// (A B C D, B C D A, …), after one warm-up build of each pair.
func (e *env) interleave(ctx context.Context, name string, pairs []pair, rounds int, g grid) error {
	for _, p := range pairs {
		if err := e.warm(ctx, p.s, p.im); err != nil {
			g.get(p.im, p.s, p.n).record(buildResult{}, fmt.Errorf("warm-up: %w", err))
		}
	}
	for r := range rounds {
		logf("%s: round %d/%d (load %s)", name, r+1, rounds, loadAvg())
		for _, p := range rotate(pairs, r) {
			if err := ctx.Err(); err != nil {
				return err
			}
			c := g.get(p.im, p.s, p.n)
			if c.Err != "" && c.Sample.N() == 0 {
				continue // failed at warm-up: do not repeat it every round
			}
			c.record(e.build(ctx, p.s, p.im, p.n))
		}
	}
	return nil
}

// overhead is section 1: every image under every configuration.
func (e *env) overhead(ctx context.Context) (grid, error) {
	g := grid{}
	var pairs []pair
	for _, key := range e.o.Images {
		im, err := e.image(ctx, key)
		if err != nil {
			return nil, err
		}
		for _, s := range []daemonSpec{specPlain, specFast, specCommand, specUpstream} {
			n := e.o.Steps
			if s.Mode == "command" {
				n = e.o.SlowSteps
			}
			pairs = append(pairs, pair{im, s, n})
		}
	}
	return g, e.interleave(ctx, "overhead", pairs, e.o.Rounds, g)
}

// scaling is section 2: CA count, layer count and bundle size, each point
// against plain on the same image.
func (e *env) scaling(ctx context.Context) (grid, error) {
	g := grid{}
	base, err := e.image(ctx, "debian-bookworm-tls")
	if err != nil {
		return nil, err
	}
	steps := e.o.ScalingSteps
	pairs := []pair{{base, specPlain, steps}}
	for _, n := range e.o.CACounts {
		// Above [cacerts] combine_above (16) the CAs are one combined
		// anchor: 1000 CAs cost about what 17 do, so every point gets the
		// same steps.
		pairs = append(pairs, pair{base, specCAs(n), steps})
	}
	for _, n := range e.o.LayerCounts {
		if n <= base.Layers {
			continue // the base image is the 1-layer point
		}
		im, err := e.image(ctx, fmt.Sprintf("debian-bookworm-tls+%dlayers", n))
		if err != nil {
			return nil, err
		}
		pairs = append(pairs, pair{im, specPlain, steps}, pair{im, specFast, steps})
	}
	for _, n := range e.o.BundleSizes {
		if n == 0 || n <= base.Bundle {
			continue // the base image's own bundle is the first point
		}
		im, err := e.image(ctx, fmt.Sprintf("debian-bookworm-tls+bundle%d", n))
		if err != nil {
			return nil, err
		}
		pairs = append(pairs, pair{im, specPlain, steps}, pair{im, specFast, steps})
	}
	return g, e.interleave(ctx, "scaling", pairs, e.o.Rounds, g)
}

// concPoint is one level of concurrency under one configuration.
type concPoint struct {
	Spec      daemonSpec
	Builds    int
	StepsPerS Floats
	Sample    Sample
	Err       string
}

// concurrency is section 3: k builds at once on one daemon, plain and fast
// interleaved; throughput is RUN steps completed per second of the batch.
func (e *env) concurrency(ctx context.Context) ([]*concPoint, error) {
	im, err := e.image(ctx, "debian-bookworm-tls")
	if err != nil {
		return nil, err
	}
	specs := []daemonSpec{specPlain, specFast}
	points := map[string]*concPoint{}
	var order []*concPoint
	for _, k := range e.o.Concurrency {
		for _, s := range specs {
			p := &concPoint{Spec: s, Builds: k}
			points[fmt.Sprint(s.Name, k)] = p
			order = append(order, p)
		}
	}
	for _, s := range specs {
		if err := e.warm(ctx, s, im); err != nil {
			return nil, err
		}
	}
	for r := range e.o.ConcRounds {
		logf("concurrency: round %d/%d (load %s)", r+1, e.o.ConcRounds, loadAvg())
		for _, k := range e.o.Concurrency {
			for _, s := range rotate(specs, r) {
				p := points[fmt.Sprint(s.Name, k)]
				steps, wall, err := e.batch(ctx, s, im, k)
				if err != nil {
					if p.Err == "" {
						p.Err = err.Error()
					}
					logf("FAILED concurrency %d on %s: %v", k, s.Name, err)
					continue
				}
				p.Sample.Add(steps)
				p.StepsPerS = append(p.StepsPerS, float64(len(steps))/wall.Seconds())
			}
		}
	}
	return order, nil
}

// batch runs k builds at once and returns all their step durations and the
// batch's wall time.
func (e *env) batch(ctx context.Context, s daemonSpec, im *image, k int) ([]time.Duration, time.Duration, error) {
	var (
		mu    sync.Mutex
		steps []time.Duration
		errs  []error
		wg    sync.WaitGroup
	)
	start := time.Now()
	for range k {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := e.build(ctx, s, im, e.o.ConcSteps)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
				return
			}
			steps = append(steps, r.Steps...)
		}()
	}
	wg.Wait()
	if len(errs) > 0 {
		return nil, 0, errs[0]
	}
	return steps, time.Since(start), nil
}

// memPoint is one daemon's peak RSS.
type memPoint struct {
	Spec  daemonSpec
	Peak  int64            // the latest reading
	After map[string]int64 // section → peak RSS when it ended
	Err   string
}

// memory is section 4: every running daemon's peak RSS.
func (e *env) memory() []memPoint {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []memPoint
	for _, name := range []string{"plain", "fast", "command", "upstream", "cas-10", "cas-100", "cas-1000"} {
		d, ok := e.daemons[name]
		if !ok {
			continue
		}
		p, err := d.PeakRSS()
		out = append(out, memPoint{Spec: e.specs[name], Peak: p, Err: errText(err)})
	}
	return out
}

// errText is err's text, "" for nil.
func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
