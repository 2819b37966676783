package factory

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
)

// aptIndex is one suite's private apt state (lists), shared by the builds
// of one Ensure call and removed when the last concurrent Ensure returns.
type aptIndex struct {
	once sync.Once
	dir  string
	opts []string
	err  error
}

// aptOptions returns apt-get options for a private apt state under dir that
// reads only the given sources list and leaves the host's apt untouched.
func aptOptions(dir string) []string {
	opts := []string{
		"-o", "Dir::Etc::SourceList=" + filepath.Join(dir, "sources.list"),
		"-o", "Dir::Etc::SourceParts=" + filepath.Join(dir, "parts"),
		"-o", "Dir::Etc::Preferences=" + filepath.Join(dir, "preferences"),
		"-o", "Dir::Etc::PreferencesParts=" + filepath.Join(dir, "prefs"),
		"-o", "Dir::State=" + dir,
		"-o", "Dir::State::Lists=" + filepath.Join(dir, "lists"),
		"-o", "Dir::State::status=" + filepath.Join(dir, "status"),
		"-o", "Dir::Cache=" + dir,
		"-o", "Dir::Cache::Archives=" + filepath.Join(dir, "archives"),
		"-o", "APT::Architecture=amd64",
		"-o", "APT::Architectures=amd64",
		"-o", "Acquire::Languages=none",
		"-o", "APT::Sandbox::User=root",
		"-o", "Debug::NoLocking=1",
		"-q",
	}
	// Only Packages indices: hosts may enable AppStream or Contents targets.
	for _, t := range []string{"DEP-11", "DEP-11-icons", "DEP-11-icons-small", "DEP-11-icons-hidpi", "Contents-deb", "Contents-udeb", "Contents-deb-legacy"} {
		opts = append(opts, "-o", "Acquire::IndexTargets::deb::"+t+"::DefaultEnabled=false")
	}
	return opts
}

func (b *Builder) aptIndex(ctx context.Context, suite string, log io.Writer) ([]string, error) {
	b.aptMu.Lock()
	ix := b.apt[suite]
	if ix == nil {
		ix = &aptIndex{}
		b.apt[suite] = ix
	}
	b.aptMu.Unlock()
	ix.once.Do(func() {
		ix.dir, ix.err = os.MkdirTemp("", "hack-images-apt-"+suite+"-")
		if ix.err != nil {
			return
		}
		for _, d := range []string{"lists/partial", "archives/partial", "parts", "prefs"} {
			if ix.err = os.MkdirAll(filepath.Join(ix.dir, d), 0o755); ix.err != nil {
				return
			}
		}
		list := strings.Join(b.mirrors.Lines(suite), "\n") + "\n"
		if ix.err = os.WriteFile(filepath.Join(ix.dir, "sources.list"), []byte(list), 0o644); ix.err != nil {
			return
		}
		if ix.err = os.WriteFile(filepath.Join(ix.dir, "status"), nil, 0o644); ix.err != nil {
			return
		}
		ix.opts = aptOptions(ix.dir)
		ix.err = run(ctx, log, nil, ix.dir, "apt-get", append(ix.opts, "update")...)
	})
	if ix.err != nil {
		return nil, fmt.Errorf("apt index for %s: %w", suite, ix.err)
	}
	if ix.opts != nil {
		fmt.Fprintf(log, "apt index for %s in %s\n", suite, ix.dir)
	}
	return ix.opts, nil
}

// dropAptIndexes removes the private apt states; b.aptMu is held.
func (b *Builder) dropAptIndexes() {
	for s, ix := range b.apt {
		if ix.dir != "" {
			os.RemoveAll(ix.dir)
		}
		delete(b.apt, s)
	}
}

// aptDownload downloads the .debs of pkgs for suite (the candidate version
// across suite, suite-updates and suite-security) into outDir, with a private
// apt state so the host's apt is neither used nor changed.
func (b *Builder) aptDownload(ctx context.Context, suite string, pkgs []string, outDir string, log io.Writer) ([]string, error) {
	opts, err := b.aptIndex(ctx, suite, log)
	if err != nil {
		return nil, err
	}
	if err := run(ctx, log, nil, outDir, "apt-get", append(append(opts, "download"), pkgs...)...); err != nil {
		return nil, err
	}
	var debs []string
	for _, p := range pkgs {
		m, _ := filepath.Glob(filepath.Join(outDir, p+"_*.deb"))
		if len(m) != 1 {
			return nil, fmt.Errorf("apt-get download %s: want one .deb in %s, found %d", p, outDir, len(m))
		}
		debs = append(debs, m[0])
	}
	return debs, nil
}
