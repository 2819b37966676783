package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"sync"

	"github.com/moby/buildkit/cmd/buildkitd/config"
	"github.com/pkg/errors"

	"github.com/buildkit-cacerts/buildkit-cacerts/cacerts"
	"github.com/buildkit-cacerts/buildkit-cacerts/executor"
)

// Registry CAs ([cacerts] registry_cas = true).
//
// `docker buildx create --buildkitd-config` copies into the builder container
// the buildkitd.toml and the files its [registry.*] sections name (ca,
// keypair), nothing else. So a buildx user hands the builder their CAs the
// way they already hand it a registry CA:
//
//	[registry."proxy.corp.example"]
//	  ca = ["/home/me/corp-root.pem"]
//	[cacerts]
//	  registry_cas = true
//
// With registry_cas, every [registry.*].ca file is trusted in RUN containers
// too, next to the CA directory's certificates. The daemon links them (by
// absolute path, so a changed file is re-read) from a directory of its own
// under its root, read by a second cacerts.Store.

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// registryCAFiles lists the [registry.*].ca files of cfg, sorted by host.
func registryCAFiles(cfg *config.Config) [][2]string {
	hosts := make([]string, 0, len(cfg.Registries))
	for h := range cfg.Registries {
		hosts = append(hosts, h)
	}
	sort.Strings(hosts)
	var out [][2]string
	for _, h := range hosts {
		for _, ca := range cfg.Registries[h].RootCAs {
			out = append(out, [2]string{h, ca})
		}
	}
	return out
}

// linkRegistryCAs makes dir (replacing it) hold one symlink per
// [registry.*].ca file, named "registry-<host>-<n>-<base>", and returns dir.
func linkRegistryCAs(cfg *config.Config, dir string) (string, error) {
	if err := os.RemoveAll(dir); err != nil {
		return "", errors.Wrapf(err, "clearing %s", dir)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", errors.Wrapf(err, "creating %s", dir)
	}
	for i, hc := range registryCAFiles(cfg) {
		target, err := filepath.Abs(hc[1])
		if err != nil {
			return "", err
		}
		if _, err := os.Stat(target); err != nil {
			return "", errors.Wrapf(err, "[registry.%q] ca: %s (registry_cas is set in [cacerts]; fix the path or remove the entry)", hc[0], hc[1])
		}
		name := fmt.Sprintf("registry-%s-%d-%s", unsafeName.ReplaceAllString(hc[0], "_"), i, unsafeName.ReplaceAllString(filepath.Base(hc[1]), "_"))
		if err := os.Symlink(target, filepath.Join(dir, name)); err != nil {
			return "", errors.Wrapf(err, "linking %s", target)
		}
	}
	return dir, nil
}

// unionSource is the CA set of a primary source plus extra sources, the
// certificates deduplicated by SHA-256 (first wins) and their anchor names
// kept unique. The union is cached while every source hands out the same
// set, so an unchanged CA set stays the same *cacerts.Set.
type unionSource struct {
	srcs []executor.CASource

	mu     sync.Mutex
	inputs []*cacerts.Set
	union  *cacerts.Set
}

func newUnionSource(srcs ...executor.CASource) *unionSource {
	return &unionSource{srcs: srcs}
}

// Load implements executor.CASource.
func (u *unionSource) Load(ctx context.Context) (*cacerts.Set, error) {
	sets := make([]*cacerts.Set, len(u.srcs))
	for i, s := range u.srcs {
		set, err := s.Load(ctx)
		if err != nil {
			return nil, err
		}
		sets[i] = set
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.union != nil && samePointers(sets, u.inputs) {
		return u.union, nil
	}
	seen := map[[32]byte]bool{}
	names := map[string]bool{}
	out := &cacerts.Set{}
	for _, set := range sets {
		if set == nil {
			continue
		}
		for _, c := range set.Certs {
			if seen[c.SHA256] {
				continue
			}
			seen[c.SHA256] = true
			if names[c.Name] {
				cp := *c
				for n := 2; names[cp.Name]; n++ {
					cp.Name = fmt.Sprintf("%s-%d", c.Name, n)
				}
				c = &cp
			}
			names[c.Name] = true
			out.Certs = append(out.Certs, c)
		}
	}
	u.inputs, u.union = sets, out
	return out, nil
}

func samePointers(a, b []*cacerts.Set) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// withRegistryCAs adds the [registry.*].ca files to src when registry_cas
// is set; otherwise it returns src.
func withRegistryCAs(src executor.CASource, cfg *config.Config, enabled bool) (executor.CASource, error) {
	if !enabled || src == nil {
		return src, nil
	}
	dir, err := linkRegistryCAs(cfg, filepath.Join(cfg.Root, "cacerts-registry"))
	if err != nil {
		return nil, err
	}
	return newUnionSource(src, cacerts.NewStore(cacerts.StoreOpt{Dir: dir})), nil
}
