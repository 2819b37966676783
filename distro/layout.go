package distro

// Layout is where one family keeps its CA trust store. Every path is an
// absolute container path ("/etc/ssl/certs"); use Name for the io/fs name.
// A Layout is data only: LayoutFor returns a fresh copy each time, so a caller
// may modify it freely. Paths name where the distribution's own packages put
// things; in a given image any of them may be missing, a symlink, or hostile —
// callers resolve them through their confined view and check before writing.
type Layout struct {
	// Family is the family this layout belongs to.
	Family Family `json:"family"`
	// AnchorDir is the directory the administrator drops extra CA files into
	// for the update command to pick up ("" when the family has none).
	AnchorDir string `json:"anchor_dir,omitempty"`
	// AnchorExt is the file-name suffix to give a file written into
	// AnchorDir so the update command picks it up (".crt": Debian's
	// update-ca-certificates runs `find -L $LOCALCERTSDIR -type f -name
	// '*.crt'`; Alpine's takes any name; p11-kit reads any name too); ""
	// when the family has no AnchorDir.
	AnchorExt string `json:"anchor_ext,omitempty"`
	// SystemAnchorDirs are the directories the distribution's CA package
	// ships its own anchors in. Informational: they belong to the package.
	SystemAnchorDirs []string `json:"system_anchor_dirs,omitempty"`
	// Bundles are the PEM bundle files TLS libraries read, in the order they
	// look for them; the first is the family's primary bundle.
	Bundles []Bundle `json:"bundles,omitempty"`
	// HashDir is OpenSSL's CApath for the family: the directory where it
	// looks up a CA by subject-hash link name (<hash>.0) and every file of
	// which Go's crypto/x509 also reads; "" when there is none.
	HashDir string `json:"hash_dir,omitempty"`
	// UpdateHashes reports that the update command itself writes the
	// subject-hash links in HashDir (Debian's `openssl rehash`, p11-kit's
	// pem-directory-hash). Alpine's does not: reproducing its result means
	// adding no hash link.
	UpdateHashes bool `json:"update_hashes,omitempty"`
	// Generated lists directories the update command rewrites as a whole
	// (rehash, p11-kit extract); a journal must record their entries.
	Generated []string `json:"generated,omitempty"`
	// Update lists ways to run the family's update command, best first; run
	// the first one Command.Find reports installed. Empty when the family has
	// no such command (NixOS, distroless, BusyBox, unknown).
	Update []Command `json:"update,omitempty"`
	// HookDirs are directories whose executables the update command runs
	// after it changed the store (Debian: run-parts over
	// /etc/ca-certificates/update.d, where ca-certificates-java regenerates
	// the Java keystore). A non-empty hook dir means only the real command
	// reproduces the result.
	HookDirs []string `json:"hook_dirs,omitempty"`
	// Config is the file that selects which system anchors are enabled
	// (Debian's /etc/ca-certificates.conf), or "".
	Config string `json:"config,omitempty"`
	// Java lists Java keystores (JKS/PKCS#12 "cacerts") the update command or
	// one of its hooks maintains.
	Java []string `json:"java,omitempty"`
	// JavaGlobs are path.Match patterns for keystores JDKs ship inside
	// themselves, outside the family's tool (often symlinks to a Java entry).
	// Use fs.Glob(fsys, Name(pattern)).
	JavaGlobs []string `json:"java_globs,omitempty"`
	// CertifiGlobs are path.Match patterns for Python certifi bundles
	// (certifi/cacert.pem) installed by pip; distribution-packaged certifi is
	// patched to read the system bundle and needs nothing.
	CertifiGlobs []string `json:"certifi_globs,omitempty"`
}

// Bundle is one PEM bundle file of a layout.
type Bundle struct {
	// Path is the container path TLS libraries open.
	Path string `json:"path"`
	// Target is the symlink target the distribution's package installs at
	// Path ("" when it ships a regular file). Informational: the image may
	// differ; resolve Path in the image, never trust Target.
	Target string `json:"target,omitempty"`
}

// Command is one way to run an update command inside the container.
type Command struct {
	// Argv is the command line to run; Argv[0] is Paths[0]. Find returns a
	// copy with Argv[0] set to the path it found.
	Argv []string `json:"argv"`
	// Paths are the container paths where the program may be installed
	// (merged and split /usr); the tool is installed when one of them is an
	// executable regular file.
	Paths []string `json:"paths"`
	// Interpreter is the absolute path of the interpreter a script needs
	// ("/bin/sh", "/bin/bash"), or "" for a compiled program.
	Interpreter string `json:"interpreter,omitempty"`
	// Requires names other programs the command runs, looked up in
	// DefaultPath (Debian's runs openssl rehash and run-parts).
	Requires []string `json:"requires,omitempty"`
}

// LayoutFor returns a fresh copy of the layout of family f. An unrecognised
// family gets the generic layout of FamilyUnknown (with Family set to
// FamilyUnknown).
func LayoutFor(f Family) Layout {
	switch f {
	case FamilyDebian:
		return debianLayout()
	case FamilyAlpine:
		return alpineLayout()
	case FamilyRHEL:
		return rhelLayout()
	case FamilySUSE:
		return suseLayout()
	case FamilyArch:
		return archLayout()
	case FamilyGentoo:
		return gentooLayout()
	case FamilyNixOS:
		return nixosLayout()
	case FamilyBusyBox:
		l := genericLayout()
		l.Family = FamilyBusyBox
		return l
	case FamilyDistroless:
		return distrolessLayout()
	default:
		return genericLayout()
	}
}

// Go's crypto/x509 (src/crypto/x509/root_linux.go, Go 1.26) stops at the
// first of these files that exists, unless SSL_CERT_FILE is set.
func goCertFiles() []Bundle {
	return []Bundle{
		{Path: "/etc/ssl/certs/ca-certificates.crt"},                // Debian/Ubuntu/Gentoo etc.
		{Path: "/etc/pki/tls/certs/ca-bundle.crt"},                  // Fedora/RHEL 6
		{Path: "/etc/ssl/ca-bundle.pem"},                            // OpenSUSE
		{Path: "/etc/pki/tls/cacert.pem"},                           // OpenELEC
		{Path: "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem"}, // CentOS/RHEL 7
		{Path: "/etc/ssl/cert.pem"},                                 // Alpine Linux
	}
}

// javaGlobs are keystores inside JDKs: Eclipse Temurin images install the JDK
// at /opt/java/openjdk; distribution JDK packages under /usr/lib/jvm (Java 9+
// lib/security, Java 8 jre/lib/security). On Debian and RHEL these are
// symlinks to the family's Java entry.
func javaGlobs() []string {
	return []string{
		"/opt/java/openjdk/lib/security/cacerts",
		"/usr/lib/jvm/*/lib/security/cacerts",
		"/usr/lib/jvm/*/jre/lib/security/cacerts",
	}
}

// certifiGlobs are certifi's bundle (certifi/cacert.pem, returned by
// certifi.where()) where pip installs it: site-packages of a source-built
// Python (the python:* images), dist-packages of Debian's /usr/local, and
// pip's own vendored copy (pip/_vendor/certifi).
func certifiGlobs() []string {
	return []string{
		"/usr/local/lib/python3*/site-packages/certifi/cacert.pem",
		"/usr/local/lib/python3*/dist-packages/certifi/cacert.pem",
		"/usr/lib/python3*/site-packages/certifi/cacert.pem",
		"/usr/local/lib/python3*/site-packages/pip/_vendor/certifi/cacert.pem",
	}
}

// debianLayout follows Debian's ca-certificates package (20250419,
// /usr/sbin/update-ca-certificates): CERTSCONF=/etc/ca-certificates.conf,
// CERTSDIR=/usr/share/ca-certificates,
// LOCALCERTSDIR=/usr/local/share/ca-certificates (only *.crt, found with
// find -L), ETCCERTSDIR=/etc/ssl/certs (a <name>.pem symlink per CA, then
// `openssl rehash .`), CERTBUNDLE=ca-certificates.crt in ETCCERTSDIR,
// HOOKSDIR=/etc/ca-certificates/update.d (run-parts). The script starts
// `#!/bin/sh -e`. The Java keystore is ca-certificates-java's, written by
// its hook /etc/ca-certificates/update.d/jks-keystore. OpenSSL's
// OPENSSLDIR on Debian is /usr/lib/ssl, whose certs is a symlink to
// /etc/ssl/certs (package openssl), so the hash dir covers it.
func debianLayout() Layout {
	return Layout{
		Family:           FamilyDebian,
		AnchorDir:        "/usr/local/share/ca-certificates",
		AnchorExt:        ".crt",
		SystemAnchorDirs: []string{"/usr/share/ca-certificates"},
		Bundles:          []Bundle{{Path: "/etc/ssl/certs/ca-certificates.crt"}},
		HashDir:          "/etc/ssl/certs",
		UpdateHashes:     true,
		Generated:        []string{"/etc/ssl/certs"},
		Update: []Command{{
			Argv:        []string{"/usr/sbin/update-ca-certificates"},
			Paths:       []string{"/usr/sbin/update-ca-certificates", "/sbin/update-ca-certificates"},
			Interpreter: "/bin/sh",
			Requires:    []string{"openssl", "run-parts"},
		}},
		HookDirs:     []string{"/etc/ca-certificates/update.d"},
		Config:       "/etc/ca-certificates.conf",
		Java:         []string{"/etc/ssl/certs/java/cacerts"},
		JavaGlobs:    javaGlobs(),
		CertifiGlobs: certifiGlobs(),
	}
}

// alpineLayout follows Alpine's ca-certificates (update-ca.c, installed as
// /usr/sbin/update-ca-certificates, a compiled program): it reads
// /etc/ca-certificates.conf (names under /usr/share/ca-certificates), then
// every regular file — lstat, so not symlinks; any name, a ".crt" suffix is
// dropped — directly in /usr/local/share/ca-certificates; it links each as
// /etc/ssl/certs/ca-cert-<name>.pem, writes the bundle through a temporary
// file renamed to /etc/ssl/certs/ca-certificates.crt, then execs
// `run-parts /etc/ca-certificates/update.d` (/usr/bin or /bin run-parts; it
// exits 1 when neither exists). It makes no subject-hash links
// (UpdateHashes is false), though /etc/ssl/certs is OpenSSL's CApath. The
// ca-certificates-bundle subpackage — all a base image has — ships only
// the bundle and /etc/ssl/cert.pem, a symlink to it (OPENSSLDIR is /etc/ssl).
// Wolfi and Chainguard build the same package. The Java keystore comes from
// java-cacerts, whose hook is /etc/ca-certificates/update.d/java-cacerts.
func alpineLayout() Layout {
	return Layout{
		Family:           FamilyAlpine,
		AnchorDir:        "/usr/local/share/ca-certificates",
		AnchorExt:        ".crt",
		SystemAnchorDirs: []string{"/usr/share/ca-certificates"},
		Bundles: []Bundle{
			{Path: "/etc/ssl/certs/ca-certificates.crt"},
			{Path: "/etc/ssl/cert.pem", Target: "certs/ca-certificates.crt"},
		},
		HashDir:   "/etc/ssl/certs",
		Generated: []string{"/etc/ssl/certs"},
		Update: []Command{{
			Argv:     []string{"/usr/sbin/update-ca-certificates"},
			Paths:    []string{"/usr/sbin/update-ca-certificates", "/sbin/update-ca-certificates"},
			Requires: []string{"run-parts"},
		}},
		HookDirs:     []string{"/etc/ca-certificates/update.d"},
		Config:       "/etc/ca-certificates.conf",
		Java:         []string{"/etc/ssl/certs/java/cacerts"},
		JavaGlobs:    javaGlobs(),
		CertifiGlobs: certifiGlobs(),
	}
}

// rhelLayout follows Fedora's and RHEL's ca-certificates package
// (update-ca-trust(8)): local anchors in /etc/pki/ca-trust/source/anchors,
// the package's in /usr/share/pki/ca-trust-source; `update-ca-trust extract`
// (a #!/bin/sh script) runs `p11-kit extract` into
// /etc/pki/ca-trust/extracted/{pem,openssl,java,edk2}. The package ships the
// legacy names as absolute symlinks: /etc/pki/tls/certs/ca-bundle.crt,
// /etc/pki/tls/cert.pem and /etc/pki/tls/certs/ca-bundle.trust.crt into the
// extracted dir, /etc/pki/java/cacerts to extracted/java/cacerts, and
// /etc/ssl/certs -> /etc/pki/tls/certs. Since ca-certificates 2023
// (Fedora 39, RHEL 9.4) the extract also writes an OpenSSL hash directory,
// extracted/pem/directory-hash; older releases have none.
func rhelLayout() Layout {
	const ex = "/etc/pki/ca-trust/extracted"
	return Layout{
		Family:           FamilyRHEL,
		AnchorDir:        "/etc/pki/ca-trust/source/anchors",
		AnchorExt:        ".pem",
		SystemAnchorDirs: []string{"/usr/share/pki/ca-trust-source/anchors", "/usr/share/pki/ca-trust-source"},
		Bundles: []Bundle{
			{Path: "/etc/pki/tls/certs/ca-bundle.crt", Target: ex + "/pem/tls-ca-bundle.pem"},
			{Path: ex + "/pem/tls-ca-bundle.pem"},
			{Path: "/etc/pki/tls/cert.pem", Target: ex + "/pem/tls-ca-bundle.pem"},
			{Path: "/etc/pki/tls/certs/ca-bundle.trust.crt", Target: ex + "/openssl/ca-bundle.trust.crt"},
			{Path: ex + "/openssl/ca-bundle.trust.crt"},
		},
		HashDir:      ex + "/pem/directory-hash",
		UpdateHashes: true,
		Generated:    []string{ex + "/pem", ex + "/openssl", ex + "/java", ex + "/edk2"},
		Update: []Command{{
			Argv:        []string{"/usr/bin/update-ca-trust", "extract"},
			Paths:       []string{"/usr/bin/update-ca-trust", "/bin/update-ca-trust"},
			Interpreter: "/bin/sh",
			Requires:    []string{"p11-kit"},
		}},
		Java:         []string{ex + "/java/cacerts", "/etc/pki/java/cacerts"},
		JavaGlobs:    javaGlobs(),
		CertifiGlobs: certifiGlobs(),
	}
}

// suseLayout follows openSUSE's ca-certificates package: local anchors in
// /etc/pki/trust/anchors (the package's in /usr/share/pki/trust/anchors);
// /usr/sbin/update-ca-certificates is a #!/bin/bash script that runs the
// hooks in /usr/lib/ca-certificates/update.d and /etc/ca-certificates/update.d
// (each calls `trust extract`), writing /var/lib/ca-certificates/ca-bundle.pem,
// the hash dir /var/lib/ca-certificates/pem, /var/lib/ca-certificates/openssl
// and java-cacerts. /etc/ssl/ca-bundle.pem and /etc/ssl/certs are symlinks
// into /var/lib/ca-certificates.
func suseLayout() Layout {
	const vl = "/var/lib/ca-certificates"
	return Layout{
		Family:           FamilySUSE,
		AnchorDir:        "/etc/pki/trust/anchors",
		AnchorExt:        ".pem",
		SystemAnchorDirs: []string{"/usr/share/pki/trust/anchors"},
		Bundles: []Bundle{
			{Path: vl + "/ca-bundle.pem"},
			{Path: "/etc/ssl/ca-bundle.pem", Target: vl + "/ca-bundle.pem"},
		},
		HashDir:      vl + "/pem",
		UpdateHashes: true,
		Generated:    []string{vl + "/pem", vl + "/openssl"},
		Update: []Command{{
			Argv:        []string{"/usr/sbin/update-ca-certificates"},
			Paths:       []string{"/usr/sbin/update-ca-certificates", "/sbin/update-ca-certificates"},
			Interpreter: "/bin/bash",
			Requires:    []string{"trust"},
		}},
		HookDirs:     []string{"/usr/lib/ca-certificates/update.d", "/etc/ca-certificates/update.d"},
		Java:         []string{vl + "/java-cacerts"},
		JavaGlobs:    javaGlobs(),
		CertifiGlobs: certifiGlobs(),
	}
}

// archLayout follows Arch's ca-certificates-utils: local anchors in
// /etc/ca-certificates/trust-source/anchors (the package's in
// /usr/share/ca-certificates/trust-source); update-ca-trust (a #!/bin/bash
// script) extracts into /etc/ca-certificates/extracted and p11-kit's
// `trust extract-compat` calls it. /etc/ssl/certs/ca-certificates.crt,
// /etc/ssl/cert.pem and /etc/ssl/certs/java/cacerts are symlinks into the
// extracted dir; the hash links live in /etc/ssl/certs.
func archLayout() Layout {
	const ex = "/etc/ca-certificates/extracted"
	return Layout{
		Family:           FamilyArch,
		AnchorDir:        "/etc/ca-certificates/trust-source/anchors",
		AnchorExt:        ".pem",
		SystemAnchorDirs: []string{"/usr/share/ca-certificates/trust-source/anchors", "/usr/share/ca-certificates/trust-source"},
		Bundles: []Bundle{
			{Path: "/etc/ssl/certs/ca-certificates.crt", Target: "../../ca-certificates/extracted/tls-ca-bundle.pem"},
			{Path: ex + "/tls-ca-bundle.pem"},
			{Path: "/etc/ssl/cert.pem", Target: "../ca-certificates/extracted/tls-ca-bundle.pem"},
		},
		HashDir:      "/etc/ssl/certs",
		UpdateHashes: true,
		Generated:    []string{ex, "/etc/ssl/certs"},
		Update: []Command{
			{
				Argv:        []string{"/usr/bin/update-ca-trust"},
				Paths:       []string{"/usr/bin/update-ca-trust"},
				Interpreter: "/bin/bash",
				Requires:    []string{"trust"},
			},
			{
				Argv:  []string{"/usr/bin/trust", "extract-compat"},
				Paths: []string{"/usr/bin/trust"},
			},
		},
		Java:         []string{"/etc/ssl/certs/java/cacerts", ex + "/java-cacerts.jks"},
		JavaGlobs:    javaGlobs(),
		CertifiGlobs: certifiGlobs(),
	}
}

// gentooLayout follows Gentoo's app-misc/ca-certificates, which installs
// Debian's update-ca-certificates and directories unchanged (see
// debianLayout); Gentoo's own OpenSSL reads /etc/ssl/cert.pem, which the
// ebuild does not ship, so only the Debian bundle is listed first.
func gentooLayout() Layout {
	l := debianLayout()
	l.Family = FamilyGentoo
	l.Java = nil // dev-java packages do not maintain a hook-driven keystore
	return l
}

// nixosLayout follows nixpkgs' nixos/modules/security/ca.nix: environment.etc
// links /etc/ssl/certs/ca-certificates.crt, /etc/ssl/certs/ca-bundle.crt and
// /etc/pki/tls/certs/ca-bundle.crt (through /etc/static) to the cacert
// bundle in the read-only /nix/store. There is no anchor directory and no
// update command: the bundle is rebuilt by nixos-rebuild, so a writer must
// replace the link, never write through it into the store.
func nixosLayout() Layout {
	return Layout{
		Family: FamilyNixOS,
		Bundles: []Bundle{
			{Path: "/etc/ssl/certs/ca-certificates.crt", Target: "/etc/static/ssl/certs/ca-certificates.crt"},
			{Path: "/etc/ssl/certs/ca-bundle.crt", Target: "/etc/static/ssl/certs/ca-bundle.crt"},
			{Path: "/etc/pki/tls/certs/ca-bundle.crt", Target: "/etc/static/pki/tls/certs/ca-bundle.crt"},
		},
		CertifiGlobs: certifiGlobs(),
	}
}

// distrolessLayout follows GoogleContainerTools/distroless: the base images
// unpack Debian's ca-certificates data (only /etc/ssl/certs/ca-certificates.crt
// is kept, no hash links) without dpkg, a shell or update-ca-certificates;
// the java images add ca-certificates-java's /etc/ssl/certs/java/cacerts.
// The generic files follow, for Go programs and OpenSSL built elsewhere.
func distrolessLayout() Layout {
	l := genericLayout()
	l.Family = FamilyDistroless
	l.Java = []string{"/etc/ssl/certs/java/cacerts"}
	return l
}

// genericLayout is for roots with no known trust store (scratch, BusyBox,
// unrecognised distributions): the bundle files Go's crypto/x509 searches
// (which include OpenSSL's defaults on Alpine, /etc/ssl/cert.pem, and on
// RHEL, the tls-ca-bundle.pem behind /etc/pki/tls/cert.pem), and
// /etc/ssl/certs, the first directory Go reads and the CApath of Debian's
// and Alpine's OpenSSL. OpenSSL's upstream default OPENSSLDIR,
// /usr/local/ssl, and Debian's /usr/lib/ssl (cert.pem absent, certs a link
// to /etc/ssl/certs) are deliberately not listed: they lie outside the
// trust-store paths this project may write.
func genericLayout() Layout {
	return Layout{
		Family:       FamilyUnknown,
		Bundles:      goCertFiles(),
		HashDir:      "/etc/ssl/certs",
		JavaGlobs:    javaGlobs(),
		CertifiGlobs: certifiGlobs(),
	}
}
