package harness

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/buildkit-cacerts/buildkit-cacerts/internal/testimages/factory"
)

// Package paths of the daemons the harness builds.
const (
	DaemonPackage   = "github.com/buildkit-cacerts/buildkit-cacerts/cmd/buildkitd-cacerts"
	UpstreamPackage = "github.com/moby/buildkit/cmd/buildkitd"
	// UpstreamVersion is the BuildKit version go.mod pins; the upstream
	// binary reports it (buildkitd --version).
	UpstreamVersion = "v0.34.2"
)

// Binaries are the built daemon executables.
type Binaries struct {
	Daemon   string // buildkitd-cacerts
	Upstream string // upstream buildkitd, empty unless asked for
}

// BuildBinaries builds buildkitd-cacerts, and upstream's buildkitd when
// upstream is true, into dir (created if needed) from the module that holds
// the working directory. The upstream binary comes from the BuildKit module
// go.mod pins (its `tool` line keeps the go.sum entries).
func BuildBinaries(ctx context.Context, dir string, upstream bool) (Binaries, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return Binaries{}, err
	}
	var b Binaries
	b.Daemon = filepath.Join(dir, "buildkitd-cacerts")
	if err := GoBuild(ctx, b.Daemon, DaemonPackage, ""); err != nil {
		return Binaries{}, err
	}
	if upstream {
		b.Upstream = filepath.Join(dir, "buildkitd")
		ldflags := "-X github.com/moby/buildkit/version.Version=" + UpstreamVersion
		if err := GoBuild(ctx, b.Upstream, UpstreamPackage, ldflags); err != nil {
			return Binaries{}, err
		}
	}
	return b, nil
}

// GoBuild runs `go build -o out [-ldflags ldflags] pkg` in the module's root
// directory.
func GoBuild(ctx context.Context, out, pkg, ldflags string) error {
	root, err := factory.FindRepoRoot()
	if err != nil {
		return fmt.Errorf("finding the module root: %w", err)
	}
	args := []string{"build", "-o", out}
	if ldflags != "" {
		args = append(args, "-ldflags", ldflags)
	}
	args = append(args, pkg)
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = root
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go build %s: %w\n%s", pkg, err, buf.Bytes())
	}
	return nil
}

// BuildTrue builds a static executable that exits 0 (the shell-less images'
// `true`) into dir and returns its path.
func BuildTrue(ctx context.Context, dir string) (string, error) {
	src, err := os.MkdirTemp("", "harness-true")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(src)
	if err := os.WriteFile(filepath.Join(src, "main.go"), []byte("package main\n\nfunc main() {}\n"), 0o644); err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(src, "go.mod"), []byte("module true\n\ngo 1.21\n"), 0o644); err != nil {
		return "", err
	}
	out, err := filepath.Abs(filepath.Join(dir, "true"))
	if err != nil {
		return "", err
	}
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags=-s -w", "-o", out, ".")
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=", "GOWORK=off")
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("building true: %w\n%s", err, buf.Bytes())
	}
	return out, nil
}
