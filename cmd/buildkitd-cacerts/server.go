package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"expvar"
	"fmt"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"strings"
	"time"

	"github.com/containerd/containerd/v2/defaults"
	"github.com/containerd/containerd/v2/pkg/sys"
	"github.com/moby/buildkit/cmd/buildkitd/config"
	"github.com/moby/buildkit/util/bklog"
	"github.com/moby/buildkit/util/grpcerrors"
	"github.com/moby/buildkit/util/stack"
	"github.com/moby/buildkit/util/tracing"
	"github.com/moby/buildkit/util/tracing/detect"
	"github.com/pkg/errors"
	"github.com/sirupsen/logrus"
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"
)

// newTracerProvider records the daemon's spans in memory for the history API
// (buildctl debug / buildx history), and exports them when OTEL_* asks to.
func newTracerProvider(ctx context.Context) (*sdktrace.TracerProvider, error) {
	opts := []sdktrace.TracerProviderOption{
		sdktrace.WithResource(detect.Resource()),
		sdktrace.WithSyncer(detect.Recorder),
	}
	exp, err := detect.NewSpanExporter(ctx)
	if err != nil {
		return nil, err
	}
	if !detect.IsNoneSpanExporter(exp) {
		opts = append(opts, sdktrace.WithBatcher(exp))
	}
	return sdktrace.NewTracerProvider(opts...), nil
}

func newGRPCServer(tp trace.TracerProvider) *grpc.Server {
	propagators := propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})
	return grpc.NewServer(
		grpc.StatsHandler(tracing.ServerStatsHandler(otelgrpc.WithTracerProvider(tp), otelgrpc.WithPropagators(propagators))),
		grpc.ChainUnaryInterceptor(unaryInterceptor, grpcerrors.UnaryServerInterceptor),
		grpc.StreamInterceptor(grpcerrors.StreamServerInterceptor),
		grpc.MaxRecvMsgSize(defaults.DefaultMaxRecvMsgSize),
		grpc.MaxSendMsgSize(defaults.DefaultMaxSendMsgSize),
	)
}

// unaryInterceptor logs failed calls, like upstream.
func unaryInterceptor(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	resp, err := handler(ctx, req)
	if err != nil && !strings.HasSuffix(info.FullMethod, "TraceService/Export") {
		bklog.G(ctx).Errorf("%s returned error: %v", info.FullMethod, err)
		if logrus.GetLevel() >= logrus.DebugLevel {
			fmt.Fprintf(os.Stderr, "%+v", stack.Formatter(grpcerrors.FromGRPC(err)))
		}
	}
	return resp, err
}

func newGRPCListeners(cfg config.GRPCConfig) ([]net.Listener, error) {
	if len(cfg.Address) == 0 {
		return nil, errors.New("--addr cannot be empty")
	}
	tlsConfig, err := serverCredentials(cfg.TLS)
	if err != nil {
		return nil, err
	}
	var listeners []net.Listener
	for _, addr := range cfg.Address {
		l, err := getListener(addr, *cfg.UID, *cfg.GID, tlsConfig, true)
		if err != nil {
			for _, l := range listeners {
				l.Close()
			}
			return nil, err
		}
		listeners = append(listeners, l)
	}
	return listeners, nil
}

// getListener listens on unix://PATH or tcp://HOST:PORT (TLS when
// configured), like upstream. fd:// (socket activation) is not supported.
func getListener(addr string, uid, gid int, tlsConfig *tls.Config, warnTLS bool) (net.Listener, error) {
	proto, listenAddr, ok := strings.Cut(addr, "://")
	if !ok {
		return nil, errors.Errorf("address %s does not contain proto, you meant unix://%s ?", addr, addr)
	}
	switch proto {
	case "unix":
		if tlsConfig != nil {
			bklog.L.Warnf("TLS is disabled for %s", addr)
		}
		return sys.GetLocalListener(listenAddr, uid, gid)
	case "tcp":
		l, err := (&net.ListenConfig{}).Listen(context.TODO(), "tcp", listenAddr)
		if err != nil {
			return nil, err
		}
		if tlsConfig == nil {
			if warnTLS {
				bklog.L.Warnf("TLS is not enabled for %s. enabling mutual TLS authentication is highly recommended", addr)
			}
			return l, nil
		}
		return tls.NewListener(l, tlsConfig), nil
	default:
		return nil, errors.Errorf("addr %s not supported", addr)
	}
}

func serverCredentials(cfg config.TLSConfig) (*tls.Config, error) {
	if cfg.Cert == "" && cfg.Key == "" {
		return nil, nil
	}
	if cfg.Cert == "" || cfg.Key == "" {
		return nil, errors.New("you must specify key and cert file if one is specified")
	}
	cert, err := tls.LoadX509KeyPair(cfg.Cert, cfg.Key)
	if err != nil {
		return nil, errors.Wrap(err, "could not load server key pair")
	}
	tc := &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"h2"}}
	if cfg.CA != "" {
		pool := x509.NewCertPool()
		ca, err := os.ReadFile(cfg.CA)
		if err != nil {
			return nil, errors.Wrap(err, "could not read ca certificate")
		}
		if !pool.AppendCertsFromPEM(ca) {
			return nil, errors.New("failed to append ca cert")
		}
		tc.ClientAuth = tls.RequireAndVerifyClientCert
		tc.ClientCAs = pool
	}
	return tc, nil
}

// serveGRPC serves on every listener; the first error ends up on errCh.
func serveGRPC(server *grpc.Server, listeners []net.Listener, errCh chan<- error) {
	var eg errgroup.Group
	for _, l := range listeners {
		eg.Go(func() error {
			defer l.Close()
			bklog.L.Infof("running server on %s", l.Addr())
			return server.Serve(l)
		})
	}
	go func() { errCh <- eg.Wait() }()
}

// setupDebugHandlers serves pprof and expvar on addr (--debugaddr).
func setupDebugHandlers(addr string) error {
	m := http.NewServeMux()
	m.Handle("/debug/vars", expvar.Handler())
	m.HandleFunc("/debug/pprof/", pprof.Index)
	m.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	m.HandleFunc("/debug/pprof/profile", pprof.Profile)
	m.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	m.HandleFunc("/debug/pprof/trace", pprof.Trace)
	m.Handle("/metrics", promhttp.Handler()) // upstream's and ours (metrics.go)
	if !strings.Contains(addr, "://") {
		addr = "tcp://" + addr
	}
	l, err := getListener(addr, os.Getuid(), os.Getgid(), nil, false)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: m, ReadHeaderTimeout: time.Minute}
	bklog.L.Debugf("debug handlers listening at %s", addr)
	go func() {
		if err := srv.Serve(l); err != nil {
			bklog.L.Errorf("failed to serve debug handlers: %v", err)
		}
	}()
	return nil
}
