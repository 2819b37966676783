package main

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/buildkit-cacerts/buildkit-cacerts/cacerts"
	"github.com/buildkit-cacerts/buildkit-cacerts/executor"
)

type setSeq struct {
	sets []*cacerts.Set
	i    int
}

func (s *setSeq) Load(context.Context) (*cacerts.Set, error) {
	set := s.sets[s.i]
	if s.i < len(s.sets)-1 {
		s.i++
	}
	return set, nil
}

// TestMetrics: reports become the documented series with the documented
// labels, and the CA set's size and reload time follow the source. (Proven
// able to fail: counting a failed revert's duration in the revert histogram
// makes the histogram count 2, not 1.)
func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := newCACertsMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	m.ObserveExec(ctx, executor.Report{Outcome: executor.OutcomeInstalled, Path: executor.PathFast, Install: 3 * time.Millisecond, Revert: 2 * time.Millisecond})
	m.ObserveExec(ctx, executor.Report{Outcome: executor.OutcomeInstalled, Path: executor.PathFast, Install: time.Millisecond, Revert: time.Millisecond})
	m.ObserveExec(ctx, executor.Report{Outcome: executor.OutcomeSkipped, SkipReason: executor.SkipOptOut})
	m.ObserveExec(ctx, executor.Report{Outcome: executor.OutcomeFailedOpen, Err: errors.New("x")})
	m.ObserveExec(ctx, executor.Report{Outcome: executor.OutcomeFailedClosed, Path: executor.PathCommand, Install: time.Second, Revert: time.Second, RevertFailed: true})

	if got := testutil.ToFloat64(m.execs.WithLabelValues("installed", "", "fast")); got != 2 {
		t.Errorf("installed/fast = %v, want 2", got)
	}
	if got := testutil.ToFloat64(m.execs.WithLabelValues("skipped", "opt_out", "")); got != 1 {
		t.Errorf("skipped/opt_out = %v, want 1", got)
	}
	if got := testutil.ToFloat64(m.revertFailures); got != 1 {
		t.Errorf("revert failures = %v, want 1", got)
	}
	if n := testutil.CollectAndCount(m.revertSeconds); n != 1 {
		t.Errorf("revert histogram series = %d, want 1 (fast only; a failed revert is not a latency)", n)
	}

	one := &cacerts.Set{Certs: []*cacerts.Cert{{Name: "a"}}}
	two := &cacerts.Set{Certs: []*cacerts.Cert{{Name: "a"}, {Name: "b"}}}
	clock := time.Unix(1000, 0)
	m.now = func() time.Time { return clock }
	src := m.watch(&setSeq{sets: []*cacerts.Set{one, one, two}})
	src.Load(ctx)
	if testutil.ToFloat64(m.caSetSize) != 1 || testutil.ToFloat64(m.caSetLastReload) != 1000 {
		t.Errorf("after first load: size %v reload %v", testutil.ToFloat64(m.caSetSize), testutil.ToFloat64(m.caSetLastReload))
	}
	clock = time.Unix(2000, 0)
	src.Load(ctx) // same set: not a reload
	if testutil.ToFloat64(m.caSetLastReload) != 1000 {
		t.Errorf("unchanged set counted as a reload")
	}
	src.Load(ctx)
	if testutil.ToFloat64(m.caSetSize) != 2 || testutil.ToFloat64(m.caSetLastReload) != 2000 {
		t.Errorf("after reload: size %v reload %v", testutil.ToFloat64(m.caSetSize), testutil.ToFloat64(m.caSetLastReload))
	}

	// The text exposition names every documented series.
	rec := httptest.NewRecorder()
	promhttp.HandlerFor(reg, promhttp.HandlerOpts{}).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	for _, name := range []string{
		"buildkit_cacerts_execs_total", "buildkit_cacerts_install_duration_seconds_bucket",
		"buildkit_cacerts_revert_duration_seconds_bucket", "buildkit_cacerts_revert_failures_total",
		"buildkit_cacerts_ca_certificates", "buildkit_cacerts_ca_set_last_reload_timestamp_seconds",
	} {
		if !strings.Contains(rec.Body.String(), name) {
			t.Errorf("/metrics lacks %s", name)
		}
	}
}

func TestVersionLine(t *testing.T) {
	old, oldRev := version, revision
	defer func() { version, revision = old, oldRev }()
	version, revision = "v1.2.3", "abc"
	got := versionLine("/usr/bin/buildkitd")
	want := "buildkitd github.com/buildkit-cacerts/buildkit-cacerts v1.2.3 abc buildkit github.com/moby/buildkit "
	if !strings.HasPrefix(got, want) || strings.Contains(got, "v0.0.0+unknown") {
		t.Errorf("versionLine = %q, want prefix %q and no v0.0.0+unknown", got, want)
	}
	if l := workerLabels(); l[labelCACerts] != "v1.2.3" || l[labelCACertsBuildKit] == "" || l[labelCACertsBuildKit] == "v0.0.0+unknown" {
		t.Errorf("worker labels = %v", l)
	}
}
