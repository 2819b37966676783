package main

import (
	"context"
	"path/filepath"

	"github.com/moby/buildkit/cache/remotecache"
	"github.com/moby/buildkit/cache/remotecache/gha"
	inlineremotecache "github.com/moby/buildkit/cache/remotecache/inline"
	localremotecache "github.com/moby/buildkit/cache/remotecache/local"
	registryremotecache "github.com/moby/buildkit/cache/remotecache/registry"
	"github.com/moby/buildkit/client"
	"github.com/moby/buildkit/cmd/buildkitd/config"
	"github.com/moby/buildkit/control"
	"github.com/moby/buildkit/frontend"
	dockerfile "github.com/moby/buildkit/frontend/dockerfile/builder"
	dockerfileversion "github.com/moby/buildkit/frontend/dockerfile/version"
	"github.com/moby/buildkit/frontend/gateway"
	"github.com/moby/buildkit/frontend/gateway/forwarder"
	"github.com/moby/buildkit/session"
	"github.com/moby/buildkit/solver"
	"github.com/moby/buildkit/solver/bboltcachestorage"
	"github.com/moby/buildkit/util/archutil"
	"github.com/moby/buildkit/util/bklog"
	"github.com/moby/buildkit/util/db/boltutil"
	"github.com/moby/buildkit/util/resolver"
	"github.com/moby/buildkit/util/tracing/detect"
	bkversion "github.com/moby/buildkit/version"
	"github.com/moby/buildkit/worker"
	policy "github.com/moby/policy-helpers"
	"github.com/pkg/errors"
	bolt "go.etcd.io/bbolt"

	"github.com/buildkit-cacerts/buildkit-cacerts/cacerts"
	"github.com/buildkit-cacerts/buildkit-cacerts/executor"
)

// newController wires the worker, frontends, caches and history into
// BuildKit's control API, like upstream's newController.
func newController(ctx context.Context, cfg *config.Config, cc cacertsConfig) (*control.Controller, error) {
	sessionManager, err := session.NewManager()
	if err != nil {
		return nil, err
	}
	wrapOpts, err := executorOptions(cc)
	if err != nil {
		return nil, err
	}
	w, err := newOCIWorker(ctx, cfg, wrapOpts)
	if err != nil {
		return nil, err
	}
	if w == nil {
		return nil, errors.New("no worker found: the OCI worker is disabled or no runc binary is in PATH (install runc, or set --oci-worker-binary)")
	}
	wc := &worker.Controller{}
	if err := wc.Add(w); err != nil {
		return nil, err
	}
	p := w.Platforms(false)
	bklog.L.Infof("found worker %q, labels=%v, platforms=%v", w.ID(), w.Labels(), formatPlatforms(p))
	archutil.WarnIfUnsupported(p)
	logCAs(ctx, cc, wrapOpts)

	frontends := map[string]frontend.Frontend{}
	if e := cfg.Frontends.Dockerfile.Enabled; e == nil || *e {
		frontends["dockerfile.v0"] = forwarder.NewGatewayForwarder(wc.Infos(), dockerfile.Build)
	}
	if e := cfg.Frontends.Gateway.Enabled; e == nil || *e {
		gw, err := gateway.NewGatewayFrontend(wc.Infos(), cfg.Frontends.Gateway.AllowedRepositories)
		if err != nil {
			return nil, err
		}
		frontends["gateway.v0"] = gw
	}

	cacheStorage, err := bboltcachestorage.NewStore(filepath.Join(cfg.Root, "cache.db"))
	if err != nil {
		return nil, err
	}
	historyDB, err := boltutil.SafeOpen(filepath.Join(cfg.Root, "history.db"), 0o600, &bolt.Options{
		FreelistType:   bolt.FreelistMapType,
		NoFreelistSync: true,
	})
	if err != nil {
		return nil, err
	}

	hosts := resolver.NewRegistryConfig(cfg.Registries)
	// Signed GitHub Actions caches (cache.gha.verify) need upstream's
	// policy verifier, which this daemon does not build in: say so instead
	// of calling a nil provider.
	noVerifier := gha.VerifierProvider(func() (*policy.Verifier, error) {
		return nil, errors.New("gha cache signature verification is not supported by buildkitd-cacerts")
	})
	exporters := map[string]remotecache.ResolveCacheExporterFunc{
		"registry": registryremotecache.ResolveCacheExporterFunc(sessionManager, hosts),
		"local":    localremotecache.ResolveCacheExporterFunc(sessionManager),
		"inline":   inlineremotecache.ResolveCacheExporterFunc(),
		"gha":      gha.ResolveCacheExporterFunc(cfg.Cache.GHA, noVerifier),
	}
	importers := map[string]remotecache.ResolveCacheImporterFunc{
		"registry": registryremotecache.ResolveCacheImporterFunc(sessionManager, w.ContentStore(), hosts),
		"local":    localremotecache.ResolveCacheImporterFunc(sessionManager),
		"gha":      gha.ResolveCacheImporterFunc(cfg.Cache.GHA, noVerifier),
	}
	if cfg.CDI.Disabled == nil || !*cfg.CDI.Disabled {
		cfg.Entitlements = append(cfg.Entitlements, "device")
	}
	return control.NewController(control.Opt{
		SessionManager:            sessionManager,
		WorkerController:          wc,
		Frontends:                 frontends,
		ResolveCacheExporterFuncs: exporters,
		ResolveCacheImporterFuncs: importers,
		CacheManager:              solver.NewCacheManager(ctx, "local", cacheStorage, worker.NewCacheResultStorage(wc)),
		Entitlements:              cfg.Entitlements,
		TraceCollector:            detect.Recorder, // a real value, never a typed nil
		HistoryDB:                 historyDB,
		CacheStore:                cacheStorage,
		LeaseManager:              w.LeaseManager(),
		ContentStore:              w.ContentStore(),
		HistoryConfig:             cfg.History,
		ProxyNetwork:              cfg.ProxyNetwork,
		GarbageCollect:            w.GarbageCollect,
		GracefulStop:              ctx.Done(),
	})
}

// logCAs says at startup which CAs RUN containers will trust.
func logCAs(ctx context.Context, cc cacertsConfig, o executor.Options) {
	log := bklog.L.WithField("dir", cc.Dir).WithField("mode", cc.Mode)
	if o.Install.Method == cacerts.MethodNone {
		log.Info("cacerts: off; RUN containers get no CA certificates")
		return
	}
	set, err := o.CAs.Load(ctx)
	switch {
	case err != nil:
		log.WithError(err).Warn("cacerts: cannot read the CA directory yet; it is read again for every RUN")
	case set.Len() == 0:
		log.Warn("cacerts: no CA certificates in the CA directory yet; RUN containers get none until some are added")
	default:
		log.WithField("cas", set.Len()).Infof("cacerts: RUN containers trust %d CA certificate(s) from %s", set.Len(), cc.Dir)
	}
}

// executorOptions turns the [cacerts] section into executor.Wrap's options.
func executorOptions(cc cacertsConfig) (executor.Options, error) {
	limits, err := cc.limits()
	if err != nil {
		return executor.Options{}, err
	}
	return executor.Options{
		CAs:            cacerts.NewStore(cacerts.StoreOpt{Dir: cc.Dir}),
		Install:        cacerts.Options{Method: cc.Mode, CombineAbove: cc.CombineAbove, Limits: limits},
		Strict:         cc.Strict,
		SiblingTimeout: cc.siblingTimeout(),
	}, nil
}

func buildkitVersion() client.BuildkitVersion {
	v := client.BuildkitVersion{Package: bkversion.Package, Version: bkversion.Version, Revision: bkversion.Revision}
	if dv := dockerfileversion.Version(); dv != "" {
		v.DockerfileVersion = dv
	}
	return v
}
