package main

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/moby/buildkit/cmd/buildkitd/config"
	resolverconfig "github.com/moby/buildkit/util/resolver/config"

	"github.com/buildkit-cacerts/buildkit-cacerts/cacerts"
	"github.com/buildkit-cacerts/buildkit-cacerts/internal/harness"
)

// TestRegistryCAs: with registry_cas the set is the CA directory's plus
// every [registry.*].ca file, deduplicated, names unique, the same *Set
// while nothing changes, re-read when a registry CA file changes; without
// it the source is the directory alone. (Proven able to fail: with the
// registry store left out of the union, the count is 1, not 3.)
func TestRegistryCAs(t *testing.T) {
	tmp := t.TempDir()
	pem := func(cn string) []byte {
		ca, err := harness.NewCA(cn)
		if err != nil {
			t.Fatal(err)
		}
		return ca.PEM
	}
	dirCA, regCA, otherCA := pem("dir"), pem("registry"), pem("other")
	caDir := filepath.Join(tmp, "cas")
	os.MkdirAll(caDir, 0o755)
	write := func(p string, b []byte) {
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(caDir, "ca.pem"), dirCA)
	write(filepath.Join(tmp, "ca.pem"), regCA)      // same base name as the dir's
	write(filepath.Join(tmp, "dup.pem"), dirCA)     // a duplicate of the dir's CA
	write(filepath.Join(tmp, "other.crt"), otherCA) // a second registry
	cfg := &config.Config{Root: filepath.Join(tmp, "root"), Registries: map[string]resolverconfig.RegistryConfig{
		"proxy.corp.example:5000": {RootCAs: []string{filepath.Join(tmp, "ca.pem"), filepath.Join(tmp, "dup.pem")}},
		"other.example":           {RootCAs: []string{filepath.Join(tmp, "other.crt")}},
	}}
	ctx := context.Background()
	dirStore := cacerts.NewStore(cacerts.StoreOpt{Dir: caDir})

	src, err := withRegistryCAs(dirStore, cfg, false)
	if err != nil || src != dirStore {
		t.Fatalf("disabled: got %v, %v; want the directory's store", src, err)
	}
	src, err = withRegistryCAs(dirStore, cfg, true)
	if err != nil {
		t.Fatal(err)
	}
	set, err := src.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if set.Len() != 3 {
		t.Fatalf("union has %d CAs, want 3 (dir, registry, other; the duplicate dropped)", set.Len())
	}
	names := map[string]bool{}
	for _, c := range set.Certs {
		if names[c.Name] {
			t.Errorf("duplicate anchor name %s", c.Name)
		}
		names[c.Name] = true
	}
	again, _ := src.Load(ctx)
	if again != set {
		t.Error("unchanged sources gave a new set")
	}
	write(filepath.Join(tmp, "other.crt"), append(otherCA, pem("added")...))
	changed, err := src.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if changed.Len() != 4 {
		t.Errorf("after a registry CA file changed: %d CAs, want 4", changed.Len())
	}

	cfg.Registries["bad"] = resolverconfig.RegistryConfig{RootCAs: []string{filepath.Join(tmp, "missing.pem")}}
	if _, err := withRegistryCAs(dirStore, cfg, true); err == nil {
		t.Error("a missing registry CA file was accepted")
	}
}
