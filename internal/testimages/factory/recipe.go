package factory

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"
)

// FormatVersion is mixed into every recipe hash. Bump it when the build code
// changes in a way that changes its output (the recipes below are hashed
// as data, the Go code that carries them out is not).
const FormatVersion = "hack/images v2"

// Image and artifact names.
const (
	DebianBookwormMin  = "debian-bookworm-min"
	DebianBookwormTLS  = "debian-bookworm-tls"
	DebianTrixieTLS    = "debian-trixie-tls"
	DebianBookwormJava = "debian-bookworm-java"
	Busybox            = "busybox"
	ScratchGo          = "scratch-go"
	RootlessNonroot    = "rootless-nonroot"
	// DebianBookwormUidmap is minbase + uidmap (newuidmap and newgidmap)
	// and libcap2-bin (setcap): the base of the rootless image the
	// docker-in-docker test runs (RootlessKit maps /etc/subuid's range
	// through them; the Dockerfile turns their setuid bit into file
	// capabilities with setcap).
	DebianBookwormUidmap = "debian-bookworm-uidmap"
	// DebianBookwormGoBuild is minbase + a C toolchain and libseccomp-dev,
	// pkg-config: with this machine's Go added on top (hack/from-source.sh),
	// the local stand-in for the golang image the Dockerfile's Go stage
	// uses. Built on demand only (OnDemand).
	DebianBookwormGoBuild = "debian-bookworm-gobuild"

	// CACertsDebPrefix + suite names the cached ca-certificates .deb of a suite.
	CACertsDebPrefix = "ca-certificates-deb-"

	// JREDebsBookworm is the .deb set that installs a Java runtime
	// (default-jre-headless → openjdk-17-jre-headless, ca-certificates-java)
	// with dpkg -i on DebianBookwormTLS, which has no Java: the packages
	// and dependencies that image lacks (issue 11: a postinst that builds
	// /etc/ssl/certs/java/cacerts from /etc/ssl/certs/*.pem).
	JREDebsBookworm = "jre-debs-bookworm"
	// CACertsClosureBookworm is ca-certificates with the dependencies
	// DebianBookwormMin lacks (openssl, libssl3), for dpkg -i there.
	CACertsClosureBookworm = "ca-certificates-closure-bookworm"
)

// jrePackages is what DebianBookwormTLS lacks for default-jre-headless: the
// packages of DebianBookwormJava's dpkg status (plus the default-jre-headless
// metapackage) that DebianBookwormTLS's does not list. To recompute after a
// change of either image:
//
//	comm -13 <(pkgs debian-bookworm-tls) <(pkgs debian-bookworm-java)
//
// with pkgs listing the installed packages of rootfs.tar's var/lib/dpkg/status.
var jrePackages = []string{
	"ca-certificates-java", "default-jre-headless", "fontconfig-config", "fonts-dejavu-core", "java-common",
	"libasound2", "libasound2-data", "libavahi-client3", "libavahi-common-data", "libavahi-common3",
	"libcups2", "libdbus-1-3", "libfontconfig1", "libfreetype6", "libglib2.0-0", "libgraphite2-3",
	"libharfbuzz0b", "libjpeg62-turbo", "liblcms2-2", "libnspr4", "libnss3", "libpcsclite1",
	"libpng16-16", "openjdk-17-jre-headless",
}

// Kinds of recipes.
const (
	KindMmdebstrap = "mmdebstrap" // a Debian root from mmdebstrap
	KindBusybox    = "busybox"    // busybox-static's binary plus applet links
	KindGoStatic   = "go-static"  // one static Go binary
	KindDeb        = "deb"        // downloaded .deb files (no image)
)

// Epoch is the SOURCE_DATE_EPOCH of every build (2024-01-01T00:00:00Z):
// mmdebstrap clamps file times to it and the image configs use it as "created".
const Epoch = 1704067200

// TLSGetPath is where the scratch-go image holds its binary.
const TLSGetPath = "/tlsget"

// NonrootUser, NonrootUID and NonrootGID describe rootless-nonroot's default user.
const (
	NonrootUser = "nonroot"
	NonrootUID  = 1000
	NonrootGID  = 1000
)

// DefaultPath is the PATH in every image config.
const DefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// Config is the part of the OCI image config a recipe sets.
type Config struct {
	Env  []string `json:"env,omitempty"`
	Cmd  []string `json:"cmd,omitempty"`
	User string   `json:"user,omitempty"`
}

// Recipe says how to build one cached artifact. Everything in it is hashed.
type Recipe struct {
	Name     string   `json:"name"`
	Kind     string   `json:"kind"`
	Suite    string   `json:"suite,omitempty"`
	Variant  string   `json:"variant,omitempty"`  // mmdebstrap --variant
	Packages []string `json:"packages,omitempty"` // --include, or the .debs to download
	DpkgOpts []string `json:"dpkgOpts,omitempty"` // mmdebstrap --dpkgopt
	// EssentialHooks and Hooks are mmdebstrap --essential-hook and --customize-hook
	// shell snippets ($1 is the root).
	EssentialHooks []string `json:"essentialHooks,omitempty"`
	Hooks          []string `json:"hooks,omitempty"`
	Config         *Config  `json:"config,omitempty"` // nil for KindDeb
	// GoPackage is the package built for KindGoStatic, relative to the module root.
	GoPackage string `json:"goPackage,omitempty"`
	// OnDemand recipes are left out of Images and Names (so out of
	// `go run ./hack/images` with no names and of the tests that take
	// every image): they are built when named.
	OnDemand bool  `json:"onDemand,omitempty"`
	Epoch    int64 `json:"epoch"`
}

// IsImage reports whether the recipe makes an image (rootfs + OCI layout).
func (r Recipe) IsImage() bool { return r.Kind != KindDeb }

var tlsPackages = []string{"ca-certificates", "curl", "openssl", "python3", "wget"}

// slim keeps images small: no manuals, docs (but copyrights) or translations.
var slim = []string{
	"path-exclude=/usr/share/man/*",
	"path-exclude=/usr/share/info/*",
	"path-exclude=/usr/share/doc/*",
	"path-include=/usr/share/doc/*/copyright",
	"path-exclude=/usr/share/locale/*",
}

// manDirs keeps man-page alternatives working without man pages
// (openjdk's postinst links /usr/share/man/man1/java.1.gz).
const manDirs = `mkdir -p "$1"/usr/share/man/man1`

// cleanup drops files that only record when the build ran.
const cleanup = `rm -f "$1"/var/log/dpkg.log "$1"/var/log/alternatives.log "$1"/var/log/bootstrap.log ` +
	`"$1"/var/log/apt/history.log "$1"/var/log/apt/term.log "$1"/var/log/apt/eipp.log.xz ` +
	`"$1"/var/cache/ldconfig/aux-cache "$1"/var/lib/dpkg/*-old "$1"/var/cache/debconf/*-old`

var debianConfig = &Config{Env: []string{"PATH=" + DefaultPath}, Cmd: []string{"/bin/bash"}}

func debian(name, suite string, pkgs []string, hooks ...string) Recipe {
	return Recipe{
		Name: name, Kind: KindMmdebstrap, Suite: suite, Variant: "minbase",
		Packages: pkgs, DpkgOpts: slim, EssentialHooks: []string{manDirs}, Hooks: append(hooks, cleanup),
		Config: debianConfig, Epoch: Epoch,
	}
}

// Recipes returns every recipe by name.
func Recipes() map[string]Recipe {
	rs := []Recipe{
		debian(DebianBookwormMin, "bookworm", nil),
		debian(DebianBookwormUidmap, "bookworm", []string{"libcap2-bin", "uidmap"}),
		func() Recipe {
			r := debian(DebianBookwormGoBuild, "bookworm", []string{"gcc", "libc6-dev", "libseccomp-dev", "pkg-config"})
			r.OnDemand = true
			return r
		}(),
		debian(DebianBookwormTLS, "bookworm", tlsPackages),
		debian(DebianTrixieTLS, "trixie", tlsPackages),
		debian(DebianBookwormJava, "bookworm", []string{"ca-certificates", "ca-certificates-java", "openjdk-17-jre-headless"}),
		{
			Name: Busybox, Kind: KindBusybox, Suite: "bookworm", Packages: []string{"busybox-static"},
			Config: &Config{Env: []string{"PATH=" + DefaultPath}, Cmd: []string{"/bin/sh"}}, Epoch: Epoch,
		},
		{
			Name: ScratchGo, Kind: KindGoStatic, GoPackage: "./hack/images/tlsget",
			Config: &Config{Env: []string{"PATH=/"}, Cmd: []string{TLSGetPath}}, Epoch: Epoch,
		},
		func() Recipe {
			r := debian(RootlessNonroot, "bookworm", tlsPackages,
				fmt.Sprintf(`chroot "$1" useradd --create-home --uid %d --user-group --shell /bin/bash %s`, NonrootUID, NonrootUser))
			r.Config = &Config{Env: debianConfig.Env, Cmd: debianConfig.Cmd, User: fmt.Sprintf("%d:%d", NonrootUID, NonrootGID)}
			return r
		}(),
		{Name: CACertsDebPrefix + "bookworm", Kind: KindDeb, Suite: "bookworm", Packages: []string{"ca-certificates"}, Epoch: Epoch},
		{Name: CACertsDebPrefix + "trixie", Kind: KindDeb, Suite: "trixie", Packages: []string{"ca-certificates"}, Epoch: Epoch},
		{Name: JREDebsBookworm, Kind: KindDeb, Suite: "bookworm", Packages: jrePackages, Epoch: Epoch},
		{Name: CACertsClosureBookworm, Kind: KindDeb, Suite: "bookworm", Packages: []string{"ca-certificates", "libssl3", "openssl"}, Epoch: Epoch},
	}
	m := make(map[string]Recipe, len(rs))
	for _, r := range rs {
		m[r.Name] = r
	}
	return m
}

// Images returns the names of the image recipes, sorted.
func Images() []string {
	var n []string
	for name, r := range Recipes() {
		if r.IsImage() && !r.OnDemand {
			n = append(n, name)
		}
	}
	sort.Strings(n)
	return n
}

// Names returns every recipe name (images, then .deb artifacts), sorted within each group.
func Names() []string {
	n := Images()
	var debs []string
	for name, r := range Recipes() {
		if !r.IsImage() && !r.OnDemand {
			debs = append(debs, name)
		}
	}
	sort.Strings(debs)
	return append(n, debs...)
}

// Hash returns the recipe's cache key: SHA-256 over FormatVersion, the
// recipe's canonical JSON, and extra inputs (for KindGoStatic the source
// tree and Go version, see GoInputs). The mirror URIs are not part of it.
func Hash(r Recipe, extra ...string) string {
	h := sha256.New()
	b, err := json.Marshal(r)
	if err != nil {
		panic(err) // a Recipe always marshals
	}
	fmt.Fprintf(h, "%s\x00%d\x00%s\x00", FormatVersion, len(b), b)
	for _, e := range extra {
		fmt.Fprintf(h, "%d\x00%s\x00", len(e), e)
	}
	return hex.EncodeToString(h.Sum(nil))
}
