package main

import (
	"fmt"
	"path/filepath"
	"runtime/debug"

	bkversion "github.com/moby/buildkit/version"
)

// Package is this module's path, printed by --version like upstream prints
// github.com/moby/buildkit.
const Package = "github.com/buildkit-cacerts/buildkit-cacerts"

// version and revision are set at link time, the way upstream stamps
// buildkitd (the Dockerfile and hack/build-binaries.sh pass them):
//
//	-ldflags "-X main.version=v0.1.0 -X main.revision=$(git rev-parse HEAD)
//	          -X github.com/moby/buildkit/version.Version=v0.34.2"
var (
	version  = ""
	revision = ""
)

// setBuildKitVersion reports the BuildKit module version we were built with
// instead of "v0.0.0+unknown" when the link did not stamp it.
func setBuildKitVersion() {
	if bkversion.Version != "v0.0.0+unknown" {
		return
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			if d.Path == bkversion.Package {
				bkversion.Version = d.Version
				if d.Replace != nil && d.Replace.Version != "" {
					bkversion.Version = d.Replace.Version
				}
			}
		}
	}
}

// Version is the buildkit-cacerts version: the link-time value, else the
// main module's version from the build info, else "dev" with the VCS
// revision when the build recorded one ("dev-33bc3fd0a1b2", "-dirty" when
// the tree had changes).
func Version() string {
	if version != "" {
		return version
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "dev"
	}
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	rev, dirty := vcsRevision(bi)
	if rev == "" {
		return "dev"
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	return "dev-" + rev + dirty
}

// Revision is the link-time revision, else the VCS revision the build
// recorded, else "".
func Revision() string {
	if revision != "" {
		return revision
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		rev, dirty := vcsRevision(bi)
		return rev + dirty
	}
	return ""
}

func vcsRevision(bi *debug.BuildInfo) (rev, dirty string) {
	for _, s := range bi.Settings {
		switch {
		case s.Key == "vcs.revision":
			rev = s.Value
		case s.Key == "vcs.modified" && s.Value == "true":
			dirty = "-dirty"
		}
	}
	return rev, dirty
}

// versionLine is what --version prints: upstream's "NAME PACKAGE VERSION
// REVISION" for us, then the BuildKit release embedded:
//
//	buildkitd github.com/buildkit-cacerts/buildkit-cacerts v0.1.0 4f0c… buildkit github.com/moby/buildkit v0.34.2 <rev>
func versionLine(argv0 string) string {
	rev := Revision()
	if rev == "" {
		rev = "unknown"
	}
	bkrev := bkversion.Revision
	if bkrev == "" {
		bkrev = "unknown"
	}
	return fmt.Sprintf("%s %s %s %s buildkit %s %s %s", filepath.Base(argv0), Package, Version(), rev, bkversion.Package, bkversion.Version, bkrev)
}

// workerLabels are the labels every worker of ours carries: our version
// and the BuildKit release it embeds (buildctl debug workers -v).
func workerLabels() map[string]string {
	return map[string]string{
		labelCACerts:         Version(),
		labelCACertsBuildKit: bkversion.Version,
	}
}
