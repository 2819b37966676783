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
// main module's version from the build info, else "dev".
func Version() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}
