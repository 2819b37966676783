package cacerts

import (
	"path"
	"strings"

	"github.com/buildkit-cacerts/buildkit-cacerts/distro"
)

// ToolMayWrite reports whether the distribution's update tool, run by the
// command path in a sibling container, may change the clean absolute
// container path p: a trust-store path (IsTrustStorePath), or the tool's own
// bookkeeping that the command path journals and restores (debianToolState:
// dpkg's status, triggers and log, ca-certificates-java's state, /tmp). A
// runner that sees the tool change anything else must fail the install: the
// journal cannot undo it, and it would be committed with the layer.
func ToolMayWrite(p string) bool {
	if IsTrustStorePath(p) {
		return true
	}
	for _, ts := range debianToolState {
		if p == ts.path {
			return true
		}
		if rel, ok := strings.CutPrefix(p, ts.path+"/"); ok && strings.Count(rel, "/") < ts.depth {
			return true
		}
	}
	return false
}

// AboveToolPaths reports whether the clean absolute container path p is "/"
// or a directory above a path ToolMayWrite allows (/etc, /usr/local/share,
// /var/lib): such a directory is copied up, and its time stamps change, when
// the tool writes below it.
func AboveToolPaths(p string) bool {
	if p != path.Clean(p) || !path.IsAbs(p) {
		return false
	}
	if p == "/" {
		return true
	}
	above := func(root string) bool { return strings.HasPrefix(root, p+"/") }
	for _, pre := range distro.TrustStoreDirs() {
		if above(pre) {
			return true
		}
	}
	for _, ts := range debianToolState {
		if above(ts.path) {
			return true
		}
	}
	return false
}
