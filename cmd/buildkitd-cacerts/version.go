package main

import (
	"runtime/debug"

	bkversion "github.com/moby/buildkit/version"
)

// version is set at link time: -ldflags "-X main.version=v0.1.0".
var version = ""

// setBuildKitVersion reports the BuildKit module version we were built with
// instead of "v0.0.0+unknown" (upstream sets it at link time).
func setBuildKitVersion() {
	if bi, ok := debug.ReadBuildInfo(); ok && bkversion.Version == "v0.0.0+unknown" {
		for _, d := range bi.Deps {
			if d.Path == bkversion.Package {
				bkversion.Version = d.Version
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
	rev, dirty := "", ""
	for _, s := range bi.Settings {
		switch {
		case s.Key == "vcs.revision" && len(s.Value) >= 12:
			rev = "-" + s.Value[:12]
		case s.Key == "vcs.modified" && s.Value == "true":
			dirty = "-dirty"
		}
	}
	if rev == "" {
		return "dev"
	}
	return "dev" + rev + dirty
}
