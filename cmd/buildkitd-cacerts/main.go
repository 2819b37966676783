// Command buildkitd-cacerts is a drop-in buildkitd for the OCI (runc) worker
// whose RUN containers trust the engine's CA certificates, without a trace in
// the built image.
//
// It takes upstream buildkitd's flags and buildkitd.toml, plus a [cacerts]
// section (see cacertsConfig). The only difference from upstream's OCI worker
// is one line: the worker's executor is wrapped with executor.Wrap.
package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/gofrs/flock"
	"github.com/moby/buildkit/cmd/buildkitd/config"
	"github.com/moby/buildkit/util/apicaps"
	"github.com/moby/buildkit/util/appcontext"
	"github.com/moby/buildkit/util/bklog"
	_ "github.com/moby/buildkit/util/grpcutil/encoding/proto"
	"github.com/moby/buildkit/util/stack"
	"github.com/moby/buildkit/util/tracing/detect"
	bkversion "github.com/moby/buildkit/version"
	"github.com/pkg/errors"
	"github.com/sirupsen/logrus"
	"github.com/urfave/cli/v3"
	"google.golang.org/grpc/health"
	healthv1 "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"
)

func init() {
	setBuildKitVersion()
	apicaps.ExportedProduct = "buildkit"
	stack.SetVersionInfo(bkversion.Version, bkversion.Revision)
	// In-memory recording of the daemon's traces, for the history API.
	detect.Recorder = detect.NewTraceRecorder()
}

func main() {
	cli.VersionPrinter = func(c *cli.Command) {
		fmt.Println(versionLine(os.Args[0]))
	}
	defaults, err := defaultConf()
	if err != nil {
		fmt.Fprintf(os.Stderr, "buildkitd-cacerts: %+v\n", err)
		os.Exit(1)
	}
	app := &cli.Command{
		Name:                      "buildkitd-cacerts",
		Usage:                     "build daemon whose RUN containers trust the engine's CA certificates",
		Version:                   Version(),
		DisableSliceFlagSeparator: true,
		Flags:                     append(mainFlags(defaults), ociFlags(defaults)...),
		Action:                    run,
	}
	if err := app.Run(context.Background(), os.Args); err != nil {
		if logrus.IsLevelEnabled(logrus.DebugLevel) {
			fmt.Fprintf(os.Stderr, "buildkitd-cacerts: %+v\n", err) // with stacks, like upstream
		} else {
			fmt.Fprintf(os.Stderr, "buildkitd-cacerts: %v\n", err)
		}
		os.Exit(1)
	}
}

// run is the daemon: load the config, start the worker and the controller,
// serve gRPC until a signal or a listener error.
func run(_ context.Context, c *cli.Command) error {
	if os.Geteuid() > 0 {
		return errors.New("rootless mode requires to be executed as the mapped root in a user namespace; you may use RootlessKit for setting up the namespace")
	}
	ctx, cancel := context.WithCancelCause(appcontext.Context())
	defer cancel(errors.WithStack(context.Canceled))

	cfgPath := c.String("config")
	cfg, err := config.LoadFile(cfgPath)
	if err != nil {
		return err
	}
	cc, err := loadCACertsConfig(cfgPath)
	if err != nil {
		return err
	}
	var warnings []string
	setDefaultConfig(&cfg)
	if err := applyMainFlags(c, &cfg, &warnings); err != nil {
		return err
	}
	if err := applyCACertsFlags(c, &cc); err != nil {
		return err
	}
	registryCAsEnabled = cc.RegistryCAs
	if err := applyOCIFlags(c, &cfg); err != nil {
		return err
	}
	if err := setupLogging(&cfg); err != nil {
		return err
	}
	for _, w := range warnings {
		bklog.G(ctx).Warn(w)
	}
	if err := applySystemConfig(&cfg); err != nil {
		return err
	}
	if cfg.GRPC.DebugAddress != "" {
		if err := setupDebugHandlers(cfg.GRPC.DebugAddress); err != nil {
			return err
		}
	}

	root, err := filepath.Abs(cfg.Root)
	if err != nil {
		return err
	}
	cfg.Root = root
	if err := os.MkdirAll(root, 0o700); err != nil {
		return errors.Wrapf(err, "creating root %s", root)
	}
	lockPath := filepath.Join(root, "buildkitd.lock")
	lock := flock.New(lockPath)
	locked, err := lock.TryLock()
	if err != nil {
		return errors.Wrapf(err, "could not lock %s", lockPath)
	}
	if !locked {
		return errors.Errorf("could not lock %s, another instance running?", lockPath)
	}
	defer func() {
		lock.Unlock()
		os.RemoveAll(lockPath)
	}()

	// Listeners come before the controller, like upstream
	// (https://github.com/moby/buildkit/issues/4618).
	listeners, err := newGRPCListeners(cfg.GRPC)
	if err != nil {
		return err
	}
	mpShutdown, err := setupMeterProvider(ctx)
	if err != nil {
		return err
	}
	defer func() {
		sctx, scancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer scancel()
		mpShutdown(sctx)
	}()
	tp, err := newTracerProvider(ctx)
	if err != nil {
		return err
	}
	defer func() {
		sctx, scancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer scancel()
		tp.Shutdown(sctx)
	}()
	server := newGRPCServer(tp)

	controller, err := newController(ctx, &cfg, cc)
	if err != nil {
		for _, l := range listeners {
			l.Close()
		}
		return err
	}
	defer controller.Close()

	healthv1.RegisterHealthServer(server, health.NewServer())
	controller.Register(server)
	reflection.Register(server)

	errCh := make(chan error, 1)
	serveGRPC(server, listeners, errCh)

	select {
	case err = <-errCh:
		cancel(err)
	case <-ctx.Done():
		// A signal: a clean stop, unlike upstream's exit status 1.
		bklog.G(ctx).Infof("%v", context.Cause(ctx))
	}
	bklog.G(ctx).Infof("stopping server")
	server.GracefulStop()
	return err
}

// setupLogging applies log.format and log.level like upstream.
func setupLogging(cfg *config.Config) error {
	switch cfg.Log.Format {
	case "json":
		logrus.SetFormatter(&logrus.JSONFormatter{})
	case "text", "":
		logrus.SetFormatter(&logrus.TextFormatter{FullTimestamp: true})
	default:
		return errors.Errorf("unsupported log type %q", cfg.Log.Format)
	}
	if cfg.Debug { //nolint:staticcheck // deprecated key, still honoured upstream
		logrus.SetLevel(logrus.DebugLevel)
	}
	if cfg.Trace { //nolint:staticcheck // deprecated key, still honoured upstream
		logrus.SetLevel(logrus.TraceLevel)
	}
	if cfg.Log.Level != "" {
		level, err := logrus.ParseLevel(cfg.Log.Level)
		if err != nil {
			return errors.Wrap(err, "unsupported log level")
		}
		logrus.SetLevel(level)
	}
	return nil
}
