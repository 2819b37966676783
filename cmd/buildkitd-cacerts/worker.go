package main

import (
	"context"
	"os/exec"
	"strconv"
	"strings"

	ctdsnapshot "github.com/containerd/containerd/v2/core/snapshots"
	"github.com/containerd/containerd/v2/plugins/snapshots/native"
	"github.com/containerd/containerd/v2/plugins/snapshots/overlay"
	"github.com/containerd/containerd/v2/plugins/snapshots/overlay/overlayutils"
	"github.com/moby/buildkit/client"
	"github.com/moby/buildkit/cmd/buildkitd/config"
	"github.com/moby/buildkit/executor/oci"
	"github.com/moby/buildkit/solver/llbsolver/cdidevices"
	"github.com/moby/buildkit/util/bklog"
	"github.com/moby/buildkit/util/disk"
	"github.com/moby/buildkit/util/network/cniprovider"
	"github.com/moby/buildkit/util/network/netproviders"
	"github.com/moby/buildkit/util/resolver"
	"github.com/moby/buildkit/worker"
	"github.com/moby/buildkit/worker/base"
	"github.com/moby/buildkit/worker/runc"
	"github.com/pkg/errors"
	"golang.org/x/sync/semaphore"
	"tags.cncf.io/container-device-interface/pkg/cdi"

	"github.com/buildkit-cacerts/buildkit-cacerts/executor"
)

// labelCACerts is the worker label that says which buildkit-cacerts runs it.
const labelCACerts = "buildkit-cacerts"

// registryCAsEnabled is [cacerts] registry_cas, set by run before the worker
// is made.
var registryCAsEnabled bool

// labelCACertsBuildKit is the worker label that says which BuildKit release
// buildkit-cacerts embeds.
const labelCACertsBuildKit = "buildkit-cacerts.buildkit"

// newOCIWorker builds the OCI (runc) worker like upstream's
// ociWorkerInitializer, with its executor wrapped. It returns (nil, nil) when
// the worker is disabled, or is "auto" and no runc binary is found.
func newOCIWorker(ctx context.Context, cfg *config.Config, wrap executor.Options) (worker.Worker, error) {
	oc := cfg.Workers.OCI
	if oc.Enabled != nil && !*oc.Enabled {
		return nil, nil
	}
	if oc.Enabled == nil && !validOCIBinary(oc.Binary) {
		return nil, nil
	}
	if oc.UserRemapUnsupported != "" {
		return nil, errors.New("userRemapUnsupported is not supported by buildkitd-cacerts")
	}
	if oc.ProxySnapshotterPath != "" {
		return nil, errors.New("proxySnapshotterPath is not supported by buildkitd-cacerts")
	}
	hosts := resolver.NewRegistryConfig(cfg.Registries)
	snFactory, err := snapshotterFactory(cfg.Root, oc.Snapshotter)
	if err != nil {
		return nil, err
	}
	if oc.Rootless {
		bklog.L.Debugf("running in rootless mode")
		if cfg.Workers.OCI.Mode == "auto" {
			cfg.Workers.OCI.Mode = "host"
		}
	}
	processMode := oci.ProcessSandbox
	if oc.NoProcessSandbox {
		bklog.L.Warn("NoProcessSandbox is enabled. Note that NoProcessSandbox allows build containers to kill (and potentially ptrace) an arbitrary process in the BuildKit host namespace. NoProcessSandbox should be enabled only when the BuildKit is running in a container as an unprivileged user.")
		if !oc.Rootless {
			return nil, errors.New("can't enable NoProcessSandbox without Rootless")
		}
		processMode = oci.NoProcessSandbox
	}
	cdiManager, err := newCDIManager(cfg.CDI)
	if err != nil {
		return nil, err
	}
	nc := netproviders.Opt{
		Mode: cfg.Workers.OCI.Mode,
		CNI: cniprovider.Opt{
			Root:         cfg.Root, // empty would be relative to the cwd
			ConfigPath:   oc.CNIConfigPath,
			BinaryDir:    oc.CNIBinaryPath,
			PoolSize:     oc.CNIPoolSize,
			BridgeName:   oc.BridgeName,
			BridgeSubnet: oc.BridgeSubnet,
		},
	}
	var sem *semaphore.Weighted
	if oc.MaxParallelism > 0 {
		sem = semaphore.NewWeighted(int64(oc.MaxParallelism))
	}
	labels := workerLabels()
	for k, v := range oc.Labels {
		labels[k] = v
	}
	opt, err := runc.NewWorkerOpt(cfg.Root, snFactory, oc.Rootless, processMode, labels, nil, nc, dnsConfig(cfg.DNS), oc.Binary, oc.ApparmorProfile, oc.SELinux, sem, "", oc.DefaultCgroupParent, cdiManager)
	if err != nil {
		return nil, err
	}
	// The seam: every container the worker starts goes through Wrap.
	cas, err := withRegistryCAs(wrap.CAs, cfg, registryCAsEnabled)
	if err != nil {
		return nil, err
	}
	if registryCAsEnabled {
		bklog.G(ctx).WithField("files", len(registryCAFiles(cfg))).Info("cacerts: registry_cas: RUN containers also trust the [registry.*] ca files")
	}
	m := daemonMetrics()
	wrap.Observer, wrap.CAs = m, m.watch(cas)
	opt.Executor = executor.Wrap(opt.Executor, wrap)

	opt.GCPolicy = gcPolicy(oc.GCConfig, cfg.Root)
	opt.BuildkitVersion = buildkitVersion()
	opt.RegistryHosts = hosts
	if len(oc.Platforms) != 0 {
		p, err := parsePlatforms(oc.Platforms)
		if err != nil {
			return nil, errors.Wrap(err, "invalid platforms")
		}
		opt.Platforms = p
	}
	w, err := base.NewWorker(ctx, opt)
	if err != nil {
		return nil, err
	}
	return w, recoverAfterCrash(ctx, w, opt)
}

// validOCIBinary reports whether a runc binary can be found, like upstream.
func validOCIBinary(binary string) bool {
	for _, name := range []string{binary, "runc", "buildkit-runc"} {
		if name == "" {
			continue
		}
		if _, err := exec.LookPath(name); err == nil {
			return true
		}
	}
	bklog.L.Warnf("skipping oci worker, as runc does not exist")
	return false
}

// snapshotterFactory supports overlayfs and native ("auto" picks overlayfs
// when the kernel allows it on root, native otherwise).
func snapshotterFactory(root, name string) (runc.SnapshotterFactory, error) {
	if name == "auto" || name == "" {
		if err := overlayutils.Supported(root); err == nil {
			name = "overlayfs"
		} else {
			bklog.L.Debugf("auto snapshotter: overlayfs is not available for %s, falling back to native: %v", root, err)
			name = "native"
		}
		bklog.L.Infof("auto snapshotter: using %s", name)
	}
	f := runc.SnapshotterFactory{Name: name}
	switch name {
	case "native":
		f.New = native.NewSnapshotter
	case "overlayfs":
		f.New = func(root string) (ctdsnapshot.Snapshotter, error) {
			return overlay.NewSnapshotter(root, overlay.AsynchronousRemove)
		}
	default:
		return f, errors.Errorf("unknown snapshotter name: %q (buildkitd-cacerts supports overlayfs and native)", name)
	}
	return f, nil
}

func dnsConfig(c *config.DNSConfig) *oci.DNSConfig {
	if c == nil {
		return nil
	}
	return &oci.DNSConfig{Nameservers: c.Nameservers, Options: c.Options, SearchDomains: c.SearchDomains}
}

func newCDIManager(cfg config.CDIConfig) (*cdidevices.Manager, error) {
	if cfg.Disabled != nil && *cfg.Disabled {
		return nil, nil
	}
	if len(cfg.SpecDirs) == 0 {
		return nil, errors.New("no CDI specification directories specified")
	}
	cache, err := cdi.NewCache(cdi.WithSpecDirs(cfg.SpecDirs...))
	if err != nil {
		return nil, errors.Wrap(err, "CDI registry initialization failure")
	}
	if err := cache.Refresh(); err != nil {
		return nil, errors.Wrap(err, "CDI registry initialization failure")
	}
	for dir, errs := range cache.GetErrors() {
		for _, err := range errs {
			bklog.L.Warnf("CDI setup error %v: %+v", dir, err)
		}
	}
	return cdidevices.NewManager(cache, cfg.AutoAllowed), nil
}

// gcPolicy turns the GC config into prune rules, like upstream's getGCPolicy.
func gcPolicy(cfg config.GCConfig, root string) []client.PruneInfo {
	if cfg.GC != nil && !*cfg.GC {
		return nil
	}
	dstat, _ := disk.GetDiskStat(root)
	if len(cfg.GCPolicy) == 0 {
		cfg.GCPolicy = config.DefaultGCPolicy(cfg, dstat)
	}
	out := make([]client.PruneInfo, 0, len(cfg.GCPolicy))
	for _, rule := range cfg.GCPolicy {
		//nolint:staticcheck // KeepBytes is the deprecated spelling of ReservedSpace
		if rule.ReservedSpace == (config.DiskSpace{}) && rule.KeepBytes != (config.DiskSpace{}) {
			rule.ReservedSpace = rule.KeepBytes
		}
		out = append(out, client.PruneInfo{
			Filter:        rule.Filters,
			All:           rule.All,
			KeepDuration:  rule.KeepDuration.Duration,
			ReservedSpace: rule.ReservedSpace.AsBytes(dstat),
			MaxUsedSpace:  rule.MaxUsedSpace.AsBytes(dstat),
			MinFreeSpace:  rule.MinFreeSpace.AsBytes(dstat),
		})
	}
	return out
}

// gcConfigToString formats the default of --oci-worker-gc-keepstorage.
func gcConfigToString(cfg config.GCConfig, dstat disk.DiskStat) string {
	if cfg.IsUnset() {
		//nolint:staticcheck // backward compatibility
		cfg.GCReservedSpace = cfg.GCKeepStorage
	}
	if cfg.IsUnset() {
		cfg = config.DetectDefaultGCCap(dstat)
	}
	out := []string{strconv.FormatInt(cfg.GCReservedSpace.AsBytes(disk.DiskStat{})/1e6, 10)}
	free := cfg.GCMinFreeSpace.AsBytes(dstat) / 1e6
	maxUsed := cfg.GCMaxUsedSpace.AsBytes(dstat) / 1e6
	if free != 0 || maxUsed != 0 {
		out = append(out, strconv.FormatInt(free, 10))
		if maxUsed != 0 {
			out = append(out, strconv.FormatInt(maxUsed, 10))
		}
	}
	return strings.Join(out, ",")
}

// stringToGCConfig parses "Reserved[,Free[,Maximum]]" in MB.
func stringToGCConfig(in string) (config.GCConfig, error) {
	var cfg config.GCConfig
	if in == "" {
		return cfg, nil
	}
	dst := []*config.DiskSpace{&cfg.GCReservedSpace, &cfg.GCMinFreeSpace, &cfg.GCMaxUsedSpace}
	for i, part := range strings.SplitN(in, ",", 3) {
		mb, err := strconv.ParseInt(part, 10, 64)
		if err != nil {
			return cfg, errors.Wrapf(err, "failed to parse storage %q", in)
		}
		*dst[i] = config.DiskSpace{Bytes: mb * 1e6}
	}
	return cfg, nil
}
