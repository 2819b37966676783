package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/moby/buildkit/cmd/buildkitd/config"

	"github.com/buildkit-cacerts/buildkit-cacerts/cacerts"
)

// FuzzLoadConfig reads random buildkitd.toml texts the way the daemon does
// (BuildKit's loader, then our [cacerts] section): no panic; a [cacerts]
// section that loads has a valid mode, a directory, and a positive sibling
// timeout.
func FuzzLoadConfig(f *testing.F) {
	f.Add("[cacerts]\n  dir = \"/etc/engine-cas\"\n  mode = \"command\"\n  strict = true\n  sibling_timeout = \"90s\"\n  combine_above = -1\n")
	f.Add("debug = true\n[worker.oci]\n  gc = false\n[cacerts]\n  mode = \"auto\"\n")
	f.Add("[cacerts]\nmode = \"bogus\"\n")
	f.Add("[cacerts]\nsibling_timeout = \"-5s\"\n")
	f.Add("[cacerts]\nsibling_timeout = 12\n")
	f.Add("cacerts = 3\n")
	f.Add("[[cacerts]]\n")
	f.Fuzz(func(t *testing.T, text string) {
		p := filepath.Join(t.TempDir(), "buildkitd.toml")
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		_, _ = config.LoadFile(p)
		cc, err := loadCACertsConfig(p)
		if err != nil {
			return
		}
		if b, err := cc.Mode.MarshalText(); err != nil {
			t.Errorf("loaded a config with mode %v: %v", cc.Mode, err)
		} else if m, err := cacerts.ParseMethod(string(b)); err != nil || m != cc.Mode {
			t.Errorf("loaded a config with mode %v (%q: %v)", cc.Mode, b, err)
		}
		if cc.Dir == "" {
			t.Error("loaded a config without a CA directory")
		}
		if cc.siblingTimeout() <= 0 {
			t.Errorf("sibling timeout %s from %q", cc.siblingTimeout(), text)
		}
	})
}
