package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/buildkit-cacerts/buildkit-cacerts/internal/harness"
	"github.com/buildkit-cacerts/buildkit-cacerts/internal/testimages/factory"
)

// daemonSpec is one daemon configuration.
type daemonSpec struct {
	Name     string // key and table label
	CAs      int    // CAs in its engine dir (0: empty dir)
	Mode     string // [cacerts] mode
	Upstream bool   // upstream's buildkitd
}

var (
	specPlain    = daemonSpec{Name: "plain", Mode: "auto"}
	specFast     = daemonSpec{Name: "fast", CAs: 1, Mode: "auto"}
	specCommand  = daemonSpec{Name: "command", CAs: 1, Mode: "command"}
	specUpstream = daemonSpec{Name: "upstream", Upstream: true}
)

func specCAs(n int) daemonSpec {
	if n == 1 {
		return specFast
	}
	return daemonSpec{Name: fmt.Sprintf("cas-%d", n), CAs: n, Mode: "auto"}
}

// Describe says what the configuration is, for the report.
func (s daemonSpec) Describe() string {
	switch {
	case s.Upstream:
		return "upstream buildkitd " + harness.UpstreamVersion
	case s.CAs == 0:
		return "buildkitd-cacerts, empty CA dir"
	}
	return fmt.Sprintf("buildkitd-cacerts, mode=%s, %d CA(s)", s.Mode, s.CAs)
}

// image is a test image pushed to the registry.
type image struct {
	Key    string // table label
	Ref    string // registry reference
	Exec   bool   // no shell: RUN in exec form with /true
	Layers int
	Bundle int // certificates in /etc/ssl/certs/ca-certificates.crt (0: none)
}

// env is everything a run shares: binaries, registry, images, daemons.
type env struct {
	o       *options
	work    string
	bins    harness.Binaries
	reg     *harness.Registry
	images  map[string]*image
	mu      sync.Mutex
	daemons map[string]*harness.Daemon
	specs   map[string]daemonSpec
	debug   map[string]string // daemon name → pprof address

	installs *installLog
}

func newEnv(ctx context.Context, o *options) (*env, error) {
	work, err := os.MkdirTemp("", "bench-")
	if err != nil {
		return nil, err
	}
	e := &env{o: o, work: work, images: map[string]*image{}, daemons: map[string]*harness.Daemon{}, specs: map[string]daemonSpec{}, debug: map[string]string{}, installs: newInstallLog()}
	logf("building buildkitd-cacerts and upstream buildkitd %s", harness.UpstreamVersion)
	if e.bins, err = harness.BuildBinaries(ctx, filepath.Join(work, "bin"), true); err != nil {
		return e, err
	}
	e.reg = harness.StartRegistry()
	return e, nil
}

// close stops every daemon and the registry and removes the work directory.
func (e *env) close() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	var errs []error
	for name, d := range e.daemons {
		errs = append(errs, e.stopLocked(name, d))
	}
	if e.reg != nil {
		e.reg.Close()
	}
	errs = append(errs, os.RemoveAll(e.work))
	return errors.Join(errs...)
}

func (e *env) stopLocked(name string, d *harness.Daemon) error {
	err := d.Stop(context.Background())
	if e.o.keepLogs != "" {
		if merr := os.MkdirAll(e.o.keepLogs, 0o755); merr == nil {
			_ = os.WriteFile(filepath.Join(e.o.keepLogs, name+".log"), []byte(d.Log()), 0o644)
		}
	}
	delete(e.daemons, name)
	return err
}

// daemon returns the running daemon of spec, starting it on first use.
func (e *env) daemon(ctx context.Context, s daemonSpec) (*harness.Daemon, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if d, ok := e.daemons[s.Name]; ok {
		return d, nil
	}
	cfg := harness.DaemonConfig{Binary: e.bins.Daemon, Mode: s.Mode, TOML: e.reg.TOML(), Debug: e.o.debug}
	if s.Upstream {
		cfg = harness.DaemonConfig{Binary: e.bins.Upstream, Upstream: true, TOML: e.reg.TOML(), Debug: e.o.debug}
	} else {
		dir, err := harness.WriteCADir(filepath.Join(e.work, "cas", s.Name), s.CAs)
		if err != nil {
			return nil, err
		}
		cfg.CADir = dir
	}
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	cfg.DebugAddr = addr
	cfg.Log = e.installs.writer(s.Name)
	logf("starting daemon %s (%s)", s.Name, s.Describe())
	d, err := harness.StartDaemon(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("daemon %s: %w", s.Name, err)
	}
	e.daemons[s.Name] = d
	e.specs[s.Name] = s
	e.debug[s.Name] = addr
	return d, nil
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// image returns a pushed test image by key: a hack/images name, or
// "<base>+<n>layers" (n small layers appended), or "<base>+bundle<n>" (the
// bundle grown to n certificates).
func (e *env) image(ctx context.Context, key string) (*image, error) {
	if im, ok := e.images[key]; ok {
		return im, nil
	}
	base, variant, _ := strings.Cut(key, "+")
	layoutDir, err := harness.ImageLayout(ctx, base, logf)
	if err != nil {
		return nil, err
	}
	img, err := harness.LayoutImage(layoutDir)
	if err != nil {
		return nil, err
	}
	im := &image{Key: key}
	if base == factory.ScratchGo {
		// No shell and no `true`: add a static one; RUNs use exec form.
		t, err := harness.BuildTrue(ctx, e.work)
		if err != nil {
			return nil, err
		}
		data, err := os.ReadFile(t)
		if err != nil {
			return nil, err
		}
		if img, err = harness.WithFiles(img, harness.File{Path: "/true", Data: data, Mode: 0o755}); err != nil {
			return nil, err
		}
		im.Exec = true
	}
	var n int
	switch {
	case variant == "":
	case sscan(variant, "%dlayers", &n):
		have, err := harness.LayerCount(img)
		if err != nil {
			return nil, err
		}
		if n > have {
			if img, err = harness.WithLayers(img, n-have); err != nil {
				return nil, err
			}
		}
	case sscan(variant, "bundle%d", &n):
		if img, err = growBundle(img, n); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("unknown image variant %q", key)
	}
	if im.Layers, err = harness.LayerCount(img); err != nil {
		return nil, err
	}
	if b, err := harness.ReadImageFile(img, bundlePath); err == nil {
		im.Bundle = strings.Count(string(b), "-----BEGIN CERTIFICATE-----")
	}
	tag := strings.NewReplacer("+", "-").Replace(key)
	if im.Ref, err = e.reg.Push(ctx, img, "bench/"+tag+":latest"); err != nil {
		return nil, err
	}
	logf("image %s: %d layers, bundle %d certificates, %s", key, im.Layers, im.Bundle, im.Ref)
	e.images[key] = im
	return im, nil
}

const bundlePath = "/etc/ssl/certs/ca-certificates.crt"

// growBundle returns img with its bundle replaced (in a new layer) by the
// bundle plus generated certificates, n certificates in all.
func growBundle(img v1.Image, n int) (v1.Image, error) {
	b, err := harness.ReadImageFile(img, bundlePath)
	if err != nil {
		return nil, err
	}
	have := strings.Count(string(b), "-----BEGIN CERTIFICATE-----")
	if n > have {
		more, err := harness.Bundle(n - have)
		if err != nil {
			return nil, err
		}
		b = append(b, more...)
	}
	return harness.WithFiles(img, harness.File{Path: bundlePath, Data: b})
}

func sscan(s, format string, p *int) bool {
	var rest string
	k, _ := fmt.Sscanf(s+" .", format+" %s", p, &rest)
	return k == 2 && rest == "."
}
