package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moby/buildkit/cmd/buildkitd/config"

	"github.com/buildkit-cacerts/buildkit-cacerts/cacerts"
	"github.com/buildkit-cacerts/buildkit-cacerts/executor"
)

func writeTOML(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "buildkitd.toml")
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadCACertsConfig(t *testing.T) {
	tests := []struct {
		name    string
		toml    string
		want    cacertsConfig
		wantErr bool
	}{
		{name: "no section", toml: "debug = true\n", want: cacertsConfig{Dir: cacerts.DefaultDir}},
		{
			name: "full section next to upstream keys",
			toml: `
root = "/var/lib/x"
[worker.oci]
  gc = false
[cacerts]
  dir = "/etc/engine-cas"
  mode = "command"
  strict = true
  sibling_timeout = "90s"
  combine_above = 32
[registry."example.com"]
  http = true
`,
			want: cacertsConfig{Dir: "/etc/engine-cas", Mode: cacerts.MethodCommand, Strict: true, SiblingTimeout: config.Duration{Duration: 90 * time.Second}, CombineAbove: 32},
		},
		{name: "never combine", toml: "[cacerts]\ncombine_above = -1\n", want: cacertsConfig{Dir: cacerts.DefaultDir, CombineAbove: -1}},
		{name: "combine_above not a number", toml: "[cacerts]\ncombine_above = \"many\"\n", wantErr: true},
		{name: "bad mode", toml: "[cacerts]\nmode = \"sometimes\"\n", wantErr: true},
		{name: "bad duration", toml: "[cacerts]\nsibling_timeout = \"soon\"\n", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := writeTOML(t, tc.toml)
			got, err := loadCACertsConfig(p)
			if tc.wantErr {
				if err == nil {
					t.Fatalf("got %+v, want an error", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
			// BuildKit's own loader must still accept the file.
			if _, err := config.LoadFile(p); err != nil {
				t.Errorf("config.LoadFile: %v", err)
			}
		})
	}
}

func TestLoadCACertsConfigMissingFile(t *testing.T) {
	got, err := loadCACertsConfig(filepath.Join(t.TempDir(), "absent.toml"))
	if err != nil || got.Dir != cacerts.DefaultDir || got.siblingTimeout() != executor.DefaultSiblingTimeout {
		t.Fatalf("got %+v, %v; want the defaults", got, err)
	}
}

func TestStringToGCConfig(t *testing.T) {
	cfg, err := stringToGCConfig("100,200,300")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.GCReservedSpace.Bytes != 100e6 || cfg.GCMinFreeSpace.Bytes != 200e6 || cfg.GCMaxUsedSpace.Bytes != 300e6 {
		t.Errorf("got %+v", cfg)
	}
	if _, err := stringToGCConfig("x"); err == nil {
		t.Error("accepted a non-number")
	}
}

func TestAttrMap(t *testing.T) {
	m, err := attrMap([]string{"a=b", "c=d=e"})
	if err != nil || m["a"] != "b" || m["c"] != "d=e" {
		t.Fatalf("got %v, %v", m, err)
	}
	if _, err := attrMap([]string{"novalue"}); err == nil {
		t.Error("accepted a label without =")
	}
}

func TestExecutorOptions(t *testing.T) {
	cc := cacertsConfig{Dir: t.TempDir(), Mode: cacerts.MethodFast, Strict: true, CombineAbove: -1}
	o, err := executorOptions(cc)
	if err != nil {
		t.Fatal(err)
	}
	if o.Install.Method != cacerts.MethodFast || !o.Strict || o.Install.CombineAbove != -1 || o.SiblingTimeout != executor.DefaultSiblingTimeout || o.CAs == nil {
		t.Errorf("got %+v from %+v", o, cc)
	}
	// The mode is parsed where the configuration is read (the TOML
	// decoder and the flag both use cacerts.Method's UnmarshalText).
	var m cacerts.Method
	if err := m.UnmarshalText([]byte("sometimes")); err == nil {
		t.Error("accepted an unknown mode")
	}
}

// TestCACertsLimits: the [cacerts] limit knobs reach executor.Options.Install as
// cacerts.Limits (MiB turned into bytes, 0 the default); a negative one is
// refused with the key named.
func TestCACertsLimits(t *testing.T) {
	p := writeTOML(t, "[cacerts]\nmax_read_mib = 128\nmax_files = 10000\nmax_certifi_bundles = 200\nmax_cert_dirs = 40\n")
	cc, err := loadCACertsConfig(p)
	if err != nil {
		t.Fatal(err)
	}
	o, err := executorOptions(cc)
	if err != nil {
		t.Fatal(err)
	}
	want := cacerts.Limits{MaxReadBytes: 128 << 20, MaxFiles: 10000, MaxCertifiBundles: 200, MaxCertDirs: 40}
	if o.Install.Limits != want {
		t.Errorf("limits %+v, want %+v", o.Install.Limits, want)
	}
	if _, err := config.LoadFile(p); err != nil {
		t.Errorf("config.LoadFile: %v", err)
	}
	cc, err = loadCACertsConfig(writeTOML(t, "[cacerts]\nmode = \"auto\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := executorOptions(cc); o.Install.Limits != (cacerts.Limits{}) || o.Install.Limits.WithDefaults().MaxReadBytes != cacerts.DefaultMaxReadBytes {
		t.Errorf("absent limits: %+v, want zero (the defaults)", o.Install.Limits)
	}
	for _, bad := range []string{"max_read_mib = -1", "max_files = -5", "max_certifi_bundles = -1", "max_cert_dirs = -1", "max_read_mib = 2000000"} {
		_, err := loadCACertsConfig(writeTOML(t, "[cacerts]\n"+bad+"\n"))
		key, _, _ := strings.Cut(bad, " ")
		if err == nil || !strings.Contains(err.Error(), key) {
			t.Errorf("%s: error %v, want one naming %s", bad, err, key)
		}
	}
}
