package main

import (
	"os"
	"path/filepath"
	"time"

	"github.com/containerd/platforms"
	"github.com/moby/buildkit/cmd/buildkitd/config"
	sessionauth "github.com/moby/buildkit/session/auth"
	"github.com/moby/buildkit/util/appdefaults"
	"github.com/moby/buildkit/util/archutil"
	"github.com/moby/buildkit/util/bklog"
	"github.com/moby/buildkit/util/resolver/limited"
	"github.com/moby/sys/userns"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/pelletier/go-toml/v2"
	"github.com/pkg/errors"
	"github.com/urfave/cli/v3"

	"github.com/buildkit-cacerts/buildkit-cacerts/cacerts"
	"github.com/buildkit-cacerts/buildkit-cacerts/executor"
)

// cacertsConfig is the [cacerts] section of buildkitd.toml. BuildKit's own
// config loader ignores the section; loadCACertsConfig reads it from the same
// file with the same TOML library.
//
//	[cacerts]
//	  dir = "/usr/local/share/ca-certificates"  # PEM CA files to trust in RUN containers
//	  mode = "auto"                   # auto | command | fast | off
//	  strict = false                  # fail a RUN whose install failed
//	  sibling_timeout = "60s"         # bound on one run of the distro's tool
//	  combine_above = 16              # more CAs than this: one combined anchor; -1: never
//	  registry_cas = false            # also trust every [registry.*].ca file (buildx: registrycas.go)
//	  max_read_mib = 64               # per-RUN limits on what an image can multiply (0: default)
//	  max_files = 4096
//	  max_certifi_bundles = 64
//	  max_cert_dirs = 16
type cacertsConfig struct {
	Dir string `toml:"dir"`
	// Mode is parsed where it is read (cacerts.Method's UnmarshalText):
	// the file's value by the TOML decoder, the flag's by applyCACertsFlags.
	Mode           cacerts.Method  `toml:"mode"`
	Strict         bool            `toml:"strict"`
	SiblingTimeout config.Duration `toml:"sibling_timeout"`
	// CombineAbove is executor.Options.CombineAbove: 0 (or absent) means
	// cacerts.DefaultCombineAbove, a negative value never combines.
	CombineAbove int `toml:"combine_above"`
	// RegistryCAs also trusts the CA files of every [registry.*].ca in RUN
	// containers (how a buildx builder gets CAs: registrycas.go).
	RegistryCAs bool `toml:"registry_cas"`

	// Per-exec limits (cacerts.Limits): 0 or absent means the default, a
	// negative value is refused.
	MaxReadMiB        int64 `toml:"max_read_mib"`
	MaxFiles          int   `toml:"max_files"`
	MaxCertifiBundles int   `toml:"max_certifi_bundles"`
	MaxCertDirs       int   `toml:"max_cert_dirs"`
}

// limits returns the [cacerts] limits as cacerts.Limits (zero: default), or
// an error naming a negative or oversized one.
func (cc cacertsConfig) limits() (cacerts.Limits, error) {
	for _, v := range []struct {
		key string
		n   int64
	}{{"max_read_mib", cc.MaxReadMiB}, {"max_files", int64(cc.MaxFiles)}, {"max_certifi_bundles", int64(cc.MaxCertifiBundles)}, {"max_cert_dirs", int64(cc.MaxCertDirs)}} {
		if v.n < 0 {
			return cacerts.Limits{}, errors.Errorf("[cacerts] %s = %d: want a positive number, or 0 for the default", v.key, v.n)
		}
	}
	if cc.MaxReadMiB > 1<<20 {
		return cacerts.Limits{}, errors.Errorf("[cacerts] max_read_mib = %d: want at most %d", cc.MaxReadMiB, 1<<20)
	}
	return cacerts.Limits{
		MaxReadBytes:      cc.MaxReadMiB << 20,
		MaxFiles:          cc.MaxFiles,
		MaxCertifiBundles: cc.MaxCertifiBundles,
		MaxCertDirs:       cc.MaxCertDirs,
	}, nil
}

// defaultCACertsDir is the CA directory when neither [cacerts] dir nor
// --cacerts-dir is given: cacerts.DefaultDir, /usr/local/share/ca-certificates,
// where the engine's host (Debian, Ubuntu, Alpine — the moby/buildkit image)
// keeps its locally added CAs and where users already mount their CAs into a
// BuildKit container. Only CAs are taken; a file holding a private key is
// refused.
func defaultCACertsDir() string {
	return cacerts.DefaultDir
}

// loadCACertsConfig reads the [cacerts] section of the buildkitd.toml at
// path. A missing file gives the defaults, like BuildKit's config.LoadFile.
func loadCACertsConfig(path string) (cacertsConfig, error) {
	var file struct {
		CACerts cacertsConfig `toml:"cacerts"`
	}
	b, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return cacertsConfig{}, errors.Wrapf(err, "reading %s", path)
	}
	if err == nil {
		if err := toml.Unmarshal(b, &file); err != nil {
			return cacertsConfig{}, errors.Wrapf(err, "parsing [cacerts] in %s", path)
		}
	}
	cc := file.CACerts
	if cc.Dir == "" {
		cc.Dir = defaultCACertsDir()
	}
	if _, err := cc.limits(); err != nil {
		return cacertsConfig{}, errors.Wrapf(err, "in %s", path)
	}
	return cc, nil
}

// applyCACertsFlags lets --cacerts-* flags override the [cacerts] section.
func applyCACertsFlags(c *cli.Command, cc *cacertsConfig) error {
	if c.IsSet("cacerts-dir") {
		cc.Dir = c.String("cacerts-dir")
	}
	if c.IsSet("cacerts-mode") {
		if err := cc.Mode.UnmarshalText([]byte(c.String("cacerts-mode"))); err != nil {
			return err
		}
	}
	if c.IsSet("cacerts-strict") {
		cc.Strict = c.Bool("cacerts-strict")
	}
	abs, err := filepath.Abs(cc.Dir)
	if err != nil {
		return err
	}
	cc.Dir = abs
	return nil
}

// siblingTimeout is the configured timeout or the executor's default.
func (cc cacertsConfig) siblingTimeout() time.Duration {
	if cc.SiblingTimeout.Duration > 0 {
		return cc.SiblingTimeout.Duration
	}
	return executor.DefaultSiblingTimeout
}

func defaultConfigPath() string {
	if isRootlessConfig() {
		return filepath.Join(appdefaults.UserConfigDir(), "buildkitd.toml")
	}
	return filepath.Join(appdefaults.ConfigDir, "buildkitd.toml")
}

// defaultConf loads the default config file, if any, for the flags' defaults.
func defaultConf() (config.Config, error) {
	cfg, err := config.LoadFile(defaultConfigPath())
	if err != nil {
		var pe *os.PathError
		if !errors.As(err, &pe) {
			return config.Config{}, err
		}
		bklog.L.Warnf("failed to load default config: %v", err)
	}
	setDefaultConfig(&cfg)
	return cfg, nil
}

// setDefaultConfig fills in upstream's defaults.
func setDefaultConfig(cfg *config.Config) {
	orig := *cfg
	if cfg.Root == "" {
		cfg.Root = appdefaults.Root
	}
	if len(cfg.GRPC.Address) == 0 {
		cfg.GRPC.Address = []string{appdefaults.Address}
	}
	if cfg.Workers.OCI.Platforms == nil {
		cfg.Workers.OCI.Platforms = formatPlatforms(archutil.SupportedPlatforms(false))
	}
	cfg.Workers.OCI.NetworkConfig = setDefaultNetworkConfig(cfg.Workers.OCI.NetworkConfig)
	if isRootlessConfig() {
		if orig.Root == "" {
			cfg.Root = appdefaults.UserRoot()
		}
		if len(orig.GRPC.Address) == 0 {
			cfg.GRPC.Address = []string{appdefaults.UserAddress()}
		}
		appdefaults.EnsureUserAddressDir()
	}
	if len(cfg.CDI.SpecDirs) == 0 {
		cfg.CDI.SpecDirs = appdefaults.CDISpecDirs
	}
}

func setDefaultNetworkConfig(nc config.NetworkConfig) config.NetworkConfig {
	if nc.Mode == "" {
		nc.Mode = "auto"
	}
	if nc.CNIConfigPath == "" {
		if isRootlessConfig() {
			nc.CNIConfigPath = appdefaults.UserCNIConfigPath
		} else {
			nc.CNIConfigPath = appdefaults.DefaultCNIConfigPath
		}
	}
	if nc.CNIBinaryPath == "" {
		nc.CNIBinaryPath = appdefaults.DefaultCNIBinDir
	}
	if nc.BridgeName == "" {
		nc.BridgeName = appdefaults.BridgeName
	}
	if nc.BridgeSubnet == "" {
		nc.BridgeSubnet = appdefaults.BridgeSubnet
	}
	return nc
}

// isRootlessConfig is true when running as a non-root user mapped in a user
// namespace, like upstream.
func isRootlessConfig() bool {
	if !userns.RunningInUserNS() {
		return false
	}
	u := os.Getenv("USER")
	return u != "" && u != "root"
}

// applySystemConfig applies the [system] section, like upstream.
func applySystemConfig(cfg *config.Config) error {
	sc := cfg.System
	if sc == nil {
		return nil
	}
	if v := sc.PlatformsCacheMaxAge; v != nil {
		archutil.CacheMaxAge = v.Duration
	}
	if v := sc.MaxRegistryConcurrency; v != nil {
		if *v <= 0 {
			return errors.Errorf("maxRegistryConcurrency must be greater than zero; set to %d in the configuration file", *v)
		}
		limited.SetMaxConcurrency(int64(*v))
	}
	if v := sc.SessionAuthTimeout; v != nil {
		sessionauth.SessionAuthTimeout = v.Duration
	}
	return nil
}

func formatPlatforms(p []ocispecs.Platform) []string {
	out := make([]string, 0, len(p))
	for _, pp := range p {
		out = append(out, platforms.Format(platforms.Normalize(pp)))
	}
	return out
}

func parsePlatforms(in []string) ([]ocispecs.Platform, error) {
	out := make([]ocispecs.Platform, 0, len(in))
	for _, s := range in {
		p, err := platforms.Parse(s)
		if err != nil {
			return nil, err
		}
		out = append(out, platforms.Normalize(p))
	}
	return out, nil
}
