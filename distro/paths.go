package distro

import (
	"path"
	"strings"
)

// DefaultPath is the PATH BuildKit gives a RUN step whose image sets none
// (BuildKit's system.DefaultPathEnvUnix). Command.Find looks
// Command.Requires up in it, and the executor runs the update command in
// its sibling container with exactly this PATH, so the programs found are
// the programs run.
const DefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// TrustStoreDirs returns the container directories where distributions
// keep their CA trust stores, in a fresh slice: every layout's anchor
// directory, bundles, hash directory, generated directories and Java
// stores lie under one of them (TestLayouts holds them to it), and they are
// the only directories the cacerts package writes under (docs/design.md
// invariant 6), besides the certifi bundles a layout names and a file the
// image's own SSL_CERT_FILE names. Files a layout only reads, such as
// Debian's /etc/ca-certificates.conf (update-ca-certificates reads it and
// never writes it), are not in them.
func TrustStoreDirs() []string {
	return []string{
		"/etc/ssl",
		"/etc/pki",
		"/etc/ca-certificates",
		"/usr/local/share/ca-certificates",
		"/usr/share/ca-certificates",
		"/var/lib/ca-certificates",
	}
}

// IsTrustStorePath reports whether the clean absolute container path p is
// one of TrustStoreDirs or lies under one. A path that is not clean and
// absolute ("/etc/ssl/../shadow", "etc/ssl") is not.
func IsTrustStorePath(p string) bool {
	if p != path.Clean(p) || !path.IsAbs(p) {
		return false
	}
	for _, dir := range TrustStoreDirs() {
		if p == dir || strings.HasPrefix(p, dir+"/") {
			return true
		}
	}
	return false
}
