package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// profilePoint is one daemon building one image while it is profiled.
type profilePoint struct {
	Spec  daemonSpec
	Image string
}

func (p profilePoint) label() string { return p.Spec.Name + " on " + p.Image }

// profilePoints are the fast path where it costs most, and plain for
// reference.
func profilePoints() []profilePoint {
	const tls = "debian-bookworm-tls"
	return []profilePoint{
		{specFast, tls},
		{specPlain, tls},
		{specCAs(1000), tls},
		{specFast, tls + "+60layers"},
		{specFast, tls + "+bundle5000"},
	}
}

// profiles takes a CPU profile of each profile point's daemon while it runs
// builds back to back, and keeps `go tool pprof -top` (flat) and the
// cumulative view of the project's own functions.
func (e *env) profiles(ctx context.Context, r *results) error {
	dir := e.o.profileDir
	if dir == "" {
		var err error
		if dir, err = os.MkdirTemp("", "bench-profiles-"); err != nil {
			return err
		}
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	r.ProfileDir = dir
	for _, pt := range profilePoints() {
		im, err := e.image(ctx, pt.Image)
		if err != nil {
			return err
		}
		steps := e.o.ScalingSteps
		if err := e.warm(ctx, pt.Spec, im); err != nil {
			return err
		}
		logf("profiling %s for %ds", pt.label(), e.o.profileSecs)
		file := filepath.Join(dir, strings.NewReplacer("+", "-", " ", "-").Replace(pt.label())+".pprof")
		done := make(chan error, 1)
		url := fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", e.debug[pt.Spec.Name], e.o.profileSecs)
		go func() { done <- fetch(ctx, url, file) }()
		builds := 0
		var perr error
	loop:
		for {
			select {
			case perr = <-done:
				break loop
			default:
			}
			if _, err := e.build(ctx, pt.Spec, im, steps); err != nil {
				<-done
				return err
			}
			builds++
		}
		if perr != nil {
			return perr
		}
		flat, err := pprofTop(ctx, file, "-nodecount=25")
		if err != nil {
			return err
		}
		cum, err := pprofTop(ctx, file, "-cum", "-nodecount=30", "-focus=buildkit-cacerts/buildkit-cacerts/(executor|cacerts|vfs|distro)", "-hide=^(runtime|sync|github.com/moby|internal/runtime)")
		if err != nil {
			cum = err.Error()
		}
		r.Profiles = append(r.Profiles, profileResult{Label: pt.label(), File: file, Builds: builds, Flat: flat, Cum: cum})
	}
	return nil
}

// profileResult is one profile's summary.
type profileResult struct {
	Label  string
	File   string
	Builds int // builds started while profiling
	Flat   string
	Cum    string
}

func pprofTop(ctx context.Context, file string, args ...string) (string, error) {
	out, err := exec.CommandContext(ctx, "go", append(append([]string{"tool", "pprof", "-top"}, args...), file)...).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("pprof %s: %v\n%s", file, err, out)
	}
	// Drop the header lines up to the table.
	s := string(out)
	if i := strings.Index(s, "Duration:"); i >= 0 {
		s = s[i:]
	}
	return strings.TrimSpace(s), nil
}
