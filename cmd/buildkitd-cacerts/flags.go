package main

import (
	"maps"
	"os"
	"os/user"
	"strconv"
	"strings"

	"github.com/moby/buildkit/cmd/buildkitd/config"
	"github.com/moby/buildkit/util/disk"
	"github.com/moby/sys/userns"
	"github.com/pkg/errors"
	"github.com/urfave/cli/v3"
)

// mainFlags are upstream buildkitd's daemon flags, same names and defaults,
// plus the --cacerts-* flags that override the [cacerts] section.
func mainFlags(d config.Config) []cli.Flag {
	gid := ""
	if d.GRPC.GID != nil {
		gid = strconv.Itoa(*d.GRPC.GID)
	}
	return []cli.Flag{
		&cli.BoolFlag{Name: "rootless", Usage: "set all the default options to be compatible with rootless containers", Value: userns.RunningInUserNS()},
		&cli.StringFlag{Name: "config", Usage: "path to config file", Value: defaultConfigPath(), Sources: cli.EnvVars("BUILDKITD_CONFIG")},
		&cli.BoolFlag{Name: "debug", Usage: "enable debug output in logs"},
		&cli.BoolFlag{Name: "trace", Usage: "enable trace output in logs (highly verbose, could affect performance)", Hidden: true},
		&cli.StringFlag{Name: "root", Usage: "path to state directory", Value: d.Root},
		&cli.StringSliceFlag{Name: "addr", Usage: "listening address (socket or tcp)", Value: []string{d.GRPC.Address[0]}},
		&cli.StringFlag{Name: "log-format", Usage: "log formatter: json or text", Value: "text"},
		&cli.StringFlag{Name: "log-level", Usage: "set the log level", Value: "info", Sources: cli.EnvVars("BUILDKITD_LOG_LEVEL")},
		&cli.StringFlag{Name: "group", Usage: "group (name or gid) which will own all Unix socket listening addresses", Value: gid},
		&cli.StringFlag{Name: "debugaddr", Usage: "debugging address (eg. 0.0.0.0:6060)", Value: d.GRPC.DebugAddress, Sources: cli.EnvVars("BUILDKITD_DEBUGADDR")},
		&cli.StringFlag{Name: "tlscert", Usage: "certificate file to use", Value: d.GRPC.TLS.Cert},
		&cli.StringFlag{Name: "tlskey", Usage: "key file to use", Value: d.GRPC.TLS.Key},
		&cli.StringFlag{Name: "tlscacert", Usage: "ca certificate to verify clients", Value: d.GRPC.TLS.CA},
		&cli.StringSliceFlag{Name: "allow-insecure-entitlement", Usage: "allows insecure entitlements e.g. network.host, security.insecure, device"},
		&cli.BoolFlag{Name: "proxy-network", Usage: "enable proxy network enforcement for all builds"},
		&cli.BoolFlag{Name: "cdi-disabled", Usage: "disables support of the Container Device Interface (CDI)"},
		&cli.StringSliceFlag{Name: "cdi-spec-dir", Usage: "list of directories to scan for CDI spec files"},

		&cli.StringFlag{Name: "cacerts-dir", Usage: "directory of PEM CA certificates installed into every RUN container (overrides [cacerts] dir; default " + defaultCACertsDir() + ")"},
		&cli.StringFlag{Name: "cacerts-mode", Usage: "how CAs are installed: auto, command, fast or off (overrides [cacerts] mode)"},
		&cli.BoolFlag{Name: "cacerts-strict", Usage: "fail a RUN whose CA install failed instead of running it without the CAs (overrides [cacerts] strict)"},
	}
}

// ociFlags are upstream's --oci-worker* flags.
func ociFlags(d config.Config) []cli.Flag {
	oci := d.Workers.OCI
	enabled := "auto"
	if oci.Enabled != nil {
		enabled = strconv.FormatBool(*oci.Enabled)
	}
	snapshotter := oci.Snapshotter
	if snapshotter == "" {
		snapshotter = "auto"
	}
	gc := oci.GC == nil || *oci.GC
	dstat, _ := disk.GetDiskStat(d.Root)
	return []cli.Flag{
		&cli.StringFlag{Name: "oci-worker", Usage: "enable oci workers (true/false/auto)", Value: enabled},
		&cli.StringSliceFlag{Name: "oci-worker-labels", Usage: "user-specific annotation labels (com.example.foo=bar)"},
		&cli.StringFlag{Name: "oci-worker-snapshotter", Usage: "name of snapshotter (overlayfs, native, auto)", Value: snapshotter},
		&cli.StringSliceFlag{Name: "oci-worker-platform", Usage: "override supported platforms for worker"},
		&cli.StringFlag{Name: "oci-worker-net", Usage: "worker network type (auto, bridge, cni or host)", Value: oci.Mode},
		&cli.StringFlag{Name: "oci-cni-config-path", Usage: "path of cni config file", Value: oci.CNIConfigPath},
		&cli.StringFlag{Name: "oci-cni-binary-dir", Usage: "path of cni binary files", Value: oci.CNIBinaryPath},
		&cli.IntFlag{Name: "oci-cni-pool-size", Usage: "size of cni network namespace pool", Value: oci.CNIPoolSize},
		&cli.StringFlag{Name: "oci-worker-binary", Usage: "name of specified oci worker binary", Value: oci.Binary},
		&cli.StringFlag{Name: "oci-worker-apparmor-profile", Usage: "set the name of the apparmor profile applied to containers"},
		&cli.BoolFlag{Name: "oci-worker-selinux", Usage: "apply SELinux labels"},
		&cli.IntFlag{Name: "oci-max-parallelism", Usage: "limit the number of parallel build steps that can run at the same time", Value: oci.MaxParallelism},
		&cli.BoolFlag{Name: "oci-worker-rootless", Usage: "enable rootless mode", Value: userns.RunningInUserNS()},
		&cli.BoolFlag{Name: "oci-worker-no-process-sandbox", Usage: "use the host PID namespace and procfs (WARNING: allows build containers to kill (and potentially ptrace) an arbitrary process in the host namespace)"},
		&cli.BoolFlag{Name: "oci-worker-gc", Usage: "Enable automatic garbage collection on worker", Value: gc},
		&cli.StringFlag{
			Name:   "oci-worker-gc-keepstorage",
			Usage:  "Amount of storage GC keep locally, format \"Reserved[,Free[,Maximum]]\" (MB)",
			Value:  gcConfigToString(oci.GCConfig, dstat),
			Hidden: len(oci.GCPolicy) != 0,
		},
	}
}

// applyMainFlags mirrors upstream's applyMainFlags: a flag that was set wins
// over buildkitd.toml.
func applyMainFlags(c *cli.Command, cfg *config.Config, warnings *[]string) error {
	if c.IsSet("debug") && c.Bool("debug") {
		cfg.Log.Level = "debug"
	}
	if c.IsSet("trace") {
		*warnings = append(*warnings, "--trace option is deprecated; use --log-level=trace instead")
		if c.Bool("trace") {
			cfg.Log.Level = "trace"
		}
	}
	if cfg.Debug { //nolint:staticcheck // deprecated key, still honoured upstream
		*warnings = append(*warnings, "'debug' configuration option is deprecated, use 'log.level = \"debug\"' instead")
	}
	if c.IsSet("root") {
		cfg.Root = c.String("root")
	}
	if c.IsSet("log-format") {
		cfg.Log.Format = c.String("log-format")
	}
	if c.IsSet("log-level") {
		cfg.Log.Level = c.String("log-level")
	}
	if c.IsSet("addr") || len(cfg.GRPC.Address) == 0 {
		cfg.GRPC.Address = c.StringSlice("addr")
	}
	if c.IsSet("allow-insecure-entitlement") {
		cfg.Entitlements = nil
		for _, e := range c.StringSlice("allow-insecure-entitlement") {
			switch e {
			case "security.insecure", "network.host", "device":
				cfg.Entitlements = append(cfg.Entitlements, e)
			default:
				return errors.Errorf("invalid entitlement : %s", e)
			}
		}
	}
	if c.IsSet("proxy-network") {
		cfg.ProxyNetwork = c.Bool("proxy-network")
	}
	if c.IsSet("debugaddr") {
		cfg.GRPC.DebugAddress = c.String("debugaddr")
	}
	if cfg.GRPC.UID == nil {
		uid := os.Getuid()
		cfg.GRPC.UID = &uid
	}
	if cfg.GRPC.GID == nil {
		gid := os.Getgid()
		cfg.GRPC.GID = &gid
	}
	if group := c.String("group"); group != "" {
		gid, err := groupToGID(group)
		if err != nil {
			return err
		}
		cfg.GRPC.GID = &gid
	}
	if v := c.String("tlscert"); v != "" {
		cfg.GRPC.TLS.Cert = v
	}
	if v := c.String("tlskey"); v != "" {
		cfg.GRPC.TLS.Key = v
	}
	if v := c.String("tlscacert"); v != "" {
		cfg.GRPC.TLS.CA = v
	}
	if c.IsSet("cdi-disabled") {
		v := c.Bool("cdi-disabled")
		cfg.CDI.Disabled = &v
	}
	if c.IsSet("cdi-spec-dir") {
		cfg.CDI.SpecDirs = c.StringSlice("cdi-spec-dir")
	}
	return nil
}

// applyOCIFlags mirrors upstream's applyOCIFlags.
func applyOCIFlags(c *cli.Command, cfg *config.Config) error {
	oci := &cfg.Workers.OCI
	if oci.Snapshotter == "" {
		oci.Snapshotter = "auto"
	}
	if c.IsSet("oci-worker") {
		v, err := parseBoolOrAuto(c.String("oci-worker"))
		if err != nil {
			return err
		}
		oci.Enabled = v
	}
	labels, err := attrMap(c.StringSlice("oci-worker-labels"))
	if err != nil {
		return err
	}
	if oci.Labels == nil {
		oci.Labels = map[string]string{}
	}
	maps.Copy(oci.Labels, labels)
	if c.IsSet("oci-worker-snapshotter") {
		oci.Snapshotter = c.String("oci-worker-snapshotter")
	}
	if c.IsSet("rootless") || c.Bool("rootless") {
		oci.Rootless = c.Bool("rootless")
	}
	if c.IsSet("oci-worker-rootless") {
		if !userns.RunningInUserNS() || os.Geteuid() > 0 {
			return errors.New("rootless mode requires to be executed as the mapped root in a user namespace; you may use RootlessKit for setting up the namespace")
		}
		oci.Rootless = c.Bool("oci-worker-rootless")
	}
	if c.IsSet("oci-worker-no-process-sandbox") {
		oci.NoProcessSandbox = c.Bool("oci-worker-no-process-sandbox")
	}
	if p := c.StringSlice("oci-worker-platform"); len(p) != 0 {
		oci.Platforms = p
	}
	if c.IsSet("oci-worker-gc") {
		v := c.Bool("oci-worker-gc")
		oci.GC = &v
	}
	if c.IsSet("oci-worker-gc-keepstorage") {
		gc, err := stringToGCConfig(c.String("oci-worker-gc-keepstorage"))
		if err != nil {
			return err
		}
		oci.GCReservedSpace = gc.GCReservedSpace
		oci.GCMaxUsedSpace = gc.GCMaxUsedSpace
		oci.GCMinFreeSpace = gc.GCMinFreeSpace
	}
	if c.IsSet("oci-worker-net") {
		oci.Mode = c.String("oci-worker-net")
	}
	if c.IsSet("oci-cni-config-path") {
		oci.CNIConfigPath = c.String("oci-cni-config-path")
	}
	if c.IsSet("oci-cni-binary-dir") {
		oci.CNIBinaryPath = c.String("oci-cni-binary-dir")
	}
	if c.IsSet("oci-cni-pool-size") {
		oci.CNIPoolSize = int(c.Int("oci-cni-pool-size"))
	}
	if c.IsSet("oci-worker-binary") {
		oci.Binary = c.String("oci-worker-binary")
	}
	if c.IsSet("oci-worker-apparmor-profile") {
		oci.ApparmorProfile = c.String("oci-worker-apparmor-profile")
	}
	if c.IsSet("oci-worker-selinux") {
		oci.SELinux = c.Bool("oci-worker-selinux")
	}
	if c.IsSet("oci-max-parallelism") {
		oci.MaxParallelism = int(c.Int("oci-max-parallelism"))
	}
	return nil
}

// groupToGID converts a group name or a stringified gid into a gid.
func groupToGID(group string) (int, error) {
	if group == "" {
		return os.Getgid(), nil
	}
	if id, err := strconv.Atoi(group); err == nil {
		return id, nil
	} else if !errors.Is(err, strconv.ErrSyntax) {
		return 0, err
	}
	g, err := user.LookupGroup(group)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(g.Gid)
}

// parseBoolOrAuto returns (nil, nil) for "auto".
func parseBoolOrAuto(s string) (*bool, error) {
	if s == "" || strings.EqualFold(s, "auto") {
		return nil, nil
	}
	b, err := strconv.ParseBool(s)
	return &b, err
}

// attrMap parses key=value pairs.
func attrMap(sl []string) (map[string]string, error) {
	m := map[string]string{}
	for _, v := range sl {
		k, val, ok := strings.Cut(v, "=")
		if !ok {
			return nil, errors.Errorf("invalid value %s", v)
		}
		m[k] = val
	}
	return m, nil
}
