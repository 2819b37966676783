// Package distro tells which Linux distribution a container root holds and
// where that distribution keeps its CA trust store.
//
// The image is untrusted input. Everything Detect reads — /etc/os-release,
// marker files such as /etc/debian_version — was written by whoever built the
// image and may be junk, huge, a FIFO, a device, a directory, a symlink loop or
// a symlink that points outside the root. Detect therefore:
//
//   - reads only through the fs.FS it is given (names in io/fs form,
//     "etc/os-release", no leading slash); it never touches the host's
//     filesystem itself, so confinement is the fs.FS's job (use the vfs, or
//     os.OpenRoot(dir).FS() in tests — never os.DirFS, which lets the host
//     kernel follow absolute symlinks);
//   - never reads a file that is not a regular file (a FIFO would block, a
//     device could be anything) and never reads more than a fixed cap
//     (MaxOSReleaseSize for os-release, MaxMarkerSize for marker files);
//   - treats every unreadable, oversized or unparsable file as absent and
//     records why in Distro.Problems, so a hostile image yields FamilyUnknown
//     (with the generic layout) rather than an error, a panic or a hang.
//
// What Detect does not defend against: an fs.FS that itself follows symlinks
// out of the root, or a root that changes while it is read. If fsys does not
// implement LimitedReadFS, Detect stats a name and then opens it; an image
// swapped between the two calls could hand it a FIFO. The vfs implements
// LimitedReadFS on a single handle to close that window.
//
// The layouts (layout.go) are data: anchor directory, bundle files in the
// order TLS libraries look for them, hash directory, update command and how to
// tell it is installed, hook directories, Java and Python certifi stores. All
// layout paths are absolute container paths ("/etc/ssl/certs"); Name turns
// one into an io/fs name.
//
// The package also holds the other facts about a container's layout that
// more than one package needs, so each is defined once: the PATH a RUN
// step gets (DefaultPath: where Command.Requires are looked up, and what
// the executor's sibling runs the update command with), the trust-store
// directories (TrustStoreDirs: the only places the cacerts package writes,
// docs/design.md invariant 6), a container path's io/fs name (Name) and
// what counts as an executable (Command.Find). It imports only the
// standard library and, for its error values, the vfs.
package distro

import (
	"io/fs"
	"strings"

	"github.com/buildkit-cacerts/buildkit-cacerts/vfs"
)

// Family is the group of distributions that share one trust-store layout.
// The zero value is not a valid family; Detect always sets one.
type Family string

// The families Detect knows. Derivatives join their parent's family through
// os-release's ID_LIKE (Linux Mint → ubuntu → FamilyDebian).
const (
	// FamilyDebian is Debian, Ubuntu and their derivatives: update-ca-certificates
	// from Debian's ca-certificates package.
	FamilyDebian Family = "debian"
	// FamilyAlpine is Alpine, Wolfi and Chainguard: Alpine's
	// update-ca-certificates (a C program) or only the ca-certificates-bundle file.
	FamilyAlpine Family = "alpine"
	// FamilyRHEL is RHEL, Fedora, CentOS, Rocky, AlmaLinux, Oracle Linux, Amazon
	// Linux and their kin: p11-kit's trust store driven by update-ca-trust.
	FamilyRHEL Family = "rhel"
	// FamilySUSE is openSUSE and SLES: SUSE's update-ca-certificates over p11-kit.
	FamilySUSE Family = "suse"
	// FamilyArch is Arch Linux and derivatives: ca-certificates-utils' update-ca-trust.
	FamilyArch Family = "arch"
	// FamilyGentoo is Gentoo: app-misc/ca-certificates, which ships Debian's
	// update-ca-certificates.
	FamilyGentoo Family = "gentoo"
	// FamilyNixOS is NixOS: the bundle is a link into the read-only Nix store
	// and there is no update command.
	FamilyNixOS Family = "nixos"
	// FamilyBusyBox is a BusyBox-only root (/bin/busybox, no os-release): no
	// trust store of its own; the generic bundle paths apply.
	FamilyBusyBox Family = "busybox"
	// FamilyDistroless is Google's distroless images (Debian packages unpacked
	// without dpkg, a shell or update-ca-certificates): a bundle file and no tool.
	FamilyDistroless Family = "distroless"
	// FamilyUnknown is anything else, scratch images included: the generic
	// layout lists the files Go's crypto/x509 and OpenSSL search.
	FamilyUnknown Family = "unknown"
)

// Families lists every Family in a fixed order, for tests and documentation.
func Families() []Family {
	return []Family{
		FamilyDebian, FamilyAlpine, FamilyRHEL, FamilySUSE, FamilyArch,
		FamilyGentoo, FamilyNixOS, FamilyBusyBox, FamilyDistroless, FamilyUnknown,
	}
}

// String returns the family's name as used in logs ("debian", "rhel", ...).
func (f Family) String() string { return string(f) }

// Distro is what Detect found in a container root.
type Distro struct {
	// Family decides the layout. Never empty.
	Family Family `json:"family"`
	// ID is os-release's ID (lowercased), or the ID a marker file implies
	// ("debian" for /etc/debian_version), or "" when nothing was found.
	ID string `json:"id,omitempty"`
	// IDLike is os-release's ID_LIKE, split on whitespace and lowercased.
	IDLike []string `json:"id_like,omitempty"`
	// MatchedID is the entry of ID or IDLike that decided Family ("ubuntu"
	// for Linux Mint), or "" when a marker file or nothing decided it.
	MatchedID string `json:"matched_id,omitempty"`
	// VersionID is os-release's VERSION_ID, or the version a marker file
	// holds (/etc/alpine-release, /etc/debian_version), or "".
	VersionID string `json:"version_id,omitempty"`
	// Name is os-release's PRETTY_NAME, else NAME, else the first line of a
	// marker file such as /etc/redhat-release. Informational only: it is
	// image-controlled text; quote it when logging.
	Name string `json:"name,omitempty"`
	// Source is the container path that decided Family ("/etc/os-release",
	// "/usr/lib/os-release", "/etc/alpine-release", "/var/lib/dpkg/status.d",
	// "/bin/busybox", ...), or "" for FamilyUnknown with no evidence.
	Source string `json:"source,omitempty"`
	// OSRelease holds every field of the os-release file that was used, or is
	// nil when none was readable.
	OSRelease map[string]string `json:"os_release,omitempty"`
	// Layout is the family's trust-store layout (LayoutFor(Family)).
	Layout Layout `json:"layout"`
	// Problems lists files Detect skipped and why (too large, not a regular
	// file, symlink loop, escaping link, read error). Each is an
	// *fs.PathError or wraps one with %w. Detection still succeeded; these are
	// for a debug log line.
	Problems []error `json:"-"`
}

// Errors Detect records in Distro.Problems, inside an *fs.PathError naming
// the container path. They are the vfs's own values, so a problem matches
// them with errors.Is whether Detect found it or the vfs (a LimitedReadFS)
// refused the read. Problems also carry the other errors fsys returns.
var (
	// ErrNotRegular is recorded when a file Detect would read is a
	// directory, FIFO, socket or device. Such files are never opened for
	// reading. It is vfs.ErrNotRegular.
	ErrNotRegular = vfs.ErrNotRegular
	// ErrTooLarge is recorded when a file is larger than the cap for its
	// kind. It is vfs.ErrTooLarge.
	ErrTooLarge = vfs.ErrTooLarge
)

// Size caps for the files Detect reads.
const (
	// MaxOSReleaseSize caps os-release. Real ones are under 1 KiB.
	MaxOSReleaseSize = 64 << 10
	// MaxMarkerSize caps marker files such as /etc/redhat-release.
	MaxMarkerSize = 4 << 10
)

// LimitedReadFS is an optional interface of the fs.FS given to Detect.
// ReadFileLimit reads the named file (following symlinks inside the root)
// only if it is a regular file of at most max bytes, checking both on the
// open handle; else it returns an error (wrapping ErrNotRegular or
// ErrTooLarge for those two reasons) and reads nothing. *vfs.FS implements it. Detect prefers it
// over Stat-then-Open, which cannot exclude a swap between the two calls.
type LimitedReadFS interface {
	fs.FS
	ReadFileLimit(name string, max int64) ([]byte, error)
}

// Name turns an absolute container path ("/etc/ssl/certs") into an io/fs
// name ("etc/ssl/certs"); "/" becomes ".". It does not clean or validate:
// layout paths are already clean; check fs.ValidPath for anything else.
func Name(containerPath string) string {
	n := strings.TrimLeft(containerPath, "/")
	if n == "" {
		return "."
	}
	return n
}
