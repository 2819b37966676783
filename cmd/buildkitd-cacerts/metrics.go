package main

import (
	"context"
	"sync"
	"time"

	"github.com/moby/buildkit/util/bklog"
	"github.com/moby/buildkit/util/tracing/detect"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/buildkit-cacerts/buildkit-cacerts/cacerts"
	"github.com/buildkit-cacerts/buildkit-cacerts/executor"
)

// cacertsMetrics are the daemon's own Prometheus metrics, served on
// --debugaddr's /metrics next to upstream's (docs/run.md lists them). It
// implements executor.Observer. Every label takes a fixed set of values:
// nothing an image controls becomes a label.
type cacertsMetrics struct {
	execs           *prometheus.CounterVec
	installSeconds  *prometheus.HistogramVec
	revertSeconds   *prometheus.HistogramVec
	revertFailures  prometheus.Counter
	caSetSize       prometheus.Gauge
	caSetLastReload prometheus.Gauge

	mu      sync.Mutex
	lastSet *cacerts.Set
	now     func() time.Time
}

// execBuckets span a fast-path install (~1 ms) to a slow distro tool in a
// sibling container (tens of seconds).
var execBuckets = []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}

// newCACertsMetrics creates the metrics and registers them with reg.
func newCACertsMetrics(reg prometheus.Registerer) (*cacertsMetrics, error) {
	m := &cacertsMetrics{
		execs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "buildkit_cacerts_execs_total",
			Help: "RUN containers handled, by outcome (installed, skipped, failed_open, failed_closed), skip reason and install path (fast, command, generic).",
		}, []string{"outcome", "reason", "path"}),
		installSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "buildkit_cacerts_install_duration_seconds",
			Help:    "Time to install the CA set into one container (before its process starts), by install path.",
			Buckets: execBuckets,
		}, []string{"path"}),
		revertSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "buildkit_cacerts_revert_duration_seconds",
			Help:    "Time to revert the install after the process exited, by install path.",
			Buckets: execBuckets,
		}, []string{"path"}),
		revertFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "buildkit_cacerts_revert_failures_total",
			Help: "Reverts that failed (the exec was failed so its layer is not used).",
		}),
		caSetSize: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "buildkit_cacerts_ca_certificates",
			Help: "CA certificates in the engine's CA set at its last load.",
		}),
		caSetLastReload: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "buildkit_cacerts_ca_set_last_reload_timestamp_seconds",
			Help: "Unix time the engine's CA set was last (re)read from its directory.",
		}),
		now: time.Now,
	}
	for _, c := range []prometheus.Collector{m.execs, m.installSeconds, m.revertSeconds, m.revertFailures, m.caSetSize, m.caSetLastReload} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// ObserveExec implements executor.Observer.
func (m *cacertsMetrics) ObserveExec(_ context.Context, r executor.Report) {
	m.execs.WithLabelValues(string(r.Outcome), r.SkipReason, r.Path).Inc()
	if r.Path != "" && r.Install > 0 {
		m.installSeconds.WithLabelValues(r.Path).Observe(r.Install.Seconds())
	}
	if r.Path != "" && r.Revert > 0 && !r.RevertFailed {
		m.revertSeconds.WithLabelValues(r.Path).Observe(r.Revert.Seconds())
	}
	if r.RevertFailed {
		m.revertFailures.Inc()
	}
}

// watch returns a CASource that loads through src and records the set's
// size, and the time whenever src hands out a new set (the directory was
// re-read because it changed).
func (m *cacertsMetrics) watch(src executor.CASource) executor.CASource {
	if src == nil {
		return nil
	}
	return casSourceFunc(func(ctx context.Context) (*cacerts.Set, error) {
		set, err := src.Load(ctx)
		if err != nil {
			return set, err
		}
		m.mu.Lock()
		if set != m.lastSet || m.lastSet == nil {
			m.lastSet = set
			m.caSetSize.Set(float64(set.Len()))
			m.caSetLastReload.Set(float64(m.now().UnixNano()) / 1e9)
		}
		m.mu.Unlock()
		return set, nil
	})
}

type casSourceFunc func(ctx context.Context) (*cacerts.Set, error)

func (f casSourceFunc) Load(ctx context.Context) (*cacerts.Set, error) { return f(ctx) }

// daemonMetrics is the process-wide set, registered with Prometheus'
// default registry that /metrics serves (promhttp.Handler, like upstream).
var daemonMetrics = sync.OnceValue(func() *cacertsMetrics {
	m, err := newCACertsMetrics(prometheus.DefaultRegisterer)
	if err != nil {
		bklog.L.WithError(err).Error("cacerts: registering metrics failed")
		m, _ = newCACertsMetrics(prometheus.NewRegistry())
	}
	return m
})

// setupMeterProvider makes upstream's OpenTelemetry metrics (gRPC server
// metrics, exported like upstream's newMeterProvider through the OTel
// Prometheus exporter into the default registry) the process's global
// meter provider. It returns a shutdown function.
func setupMeterProvider(ctx context.Context) (func(context.Context) error, error) {
	opts := []sdkmetric.Option{sdkmetric.WithResource(detect.Resource())}
	if r, err := otelprom.New(); err != nil {
		bklog.G(ctx).WithError(err).Error("failed prometheus metrics configuration")
	} else {
		opts = append(opts, sdkmetric.WithReader(r))
	}
	if exp, err := detect.NewMetricExporter(ctx); err != nil {
		return nil, err
	} else if !detect.IsNoneMetricExporter(exp) {
		opts = append(opts, sdkmetric.WithReader(sdkmetric.NewPeriodicReader(exp)))
	}
	mp := sdkmetric.NewMeterProvider(opts...)
	otel.SetMeterProvider(mp)
	return mp.Shutdown, nil
}
