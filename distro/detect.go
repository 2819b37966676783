package distro

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"
)

// osReleasePaths are read in this order, as os-release(5) prescribes: the
// first that exists wins. /usr/lib/os-release is also tried when
// /etc/os-release exists but cannot be used (not a regular file, too large,
// an escaping or looping link, no fields at all).
var osReleasePaths = [...]string{"/etc/os-release", "/usr/lib/os-release"}

// rootIDs maps the os-release IDs that head a family. Derivatives reach
// them through ID_LIKE: Linux Mint (ID_LIKE="ubuntu debian"), Rocky and
// AlmaLinux (ID_LIKE="rhel centos fedora"), Oracle Linux and Amazon Linux
// 2023 (ID_LIKE="fedora"), openSUSE Leap (ID_LIKE="suse opensuse"), Manjaro
// (ID_LIKE=arch).
var rootIDs = map[string]Family{
	"debian": FamilyDebian, "ubuntu": FamilyDebian,
	"alpine": FamilyAlpine, "wolfi": FamilyAlpine, "chainguard": FamilyAlpine,
	"rhel": FamilyRHEL, "fedora": FamilyRHEL, "centos": FamilyRHEL,
	"suse": FamilySUSE, "opensuse": FamilySUSE, "sles": FamilySUSE,
	"arch":   FamilyArch,
	"gentoo": FamilyGentoo,
	"nixos":  FamilyNixOS,
}

// derivativeIDs are consulted only when neither ID nor ID_LIKE names a
// root: IDs of well-known derivatives, for images that dropped ID_LIKE.
var derivativeIDs = map[string]Family{
	"linuxmint": FamilyDebian, "raspbian": FamilyDebian, "kali": FamilyDebian,
	"devuan": FamilyDebian, "pop": FamilyDebian, "elementary": FamilyDebian,
	"postmarketos": FamilyAlpine,
	"rocky":        FamilyRHEL, "almalinux": FamilyRHEL, "ol": FamilyRHEL, "amzn": FamilyRHEL,
	"scientific": FamilyRHEL, "circle": FamilyRHEL, "eurolinux": FamilyRHEL,
	"navy": FamilyRHEL, "cloudlinux": FamilyRHEL, "mariner": FamilyRHEL, "azurelinux": FamilyRHEL,
	"opensuse-leap": FamilySUSE, "opensuse-tumbleweed": FamilySUSE, "opensuse-microos": FamilySUSE,
	"sled": FamilySUSE, "sles_sap": FamilySUSE, "sle-micro": FamilySUSE, "sl-micro": FamilySUSE,
	"manjaro": FamilyArch, "archarm": FamilyArch, "endeavouros": FamilyArch, "artix": FamilyArch,
}

// Detect reads the container root fsys and returns its distribution and
// trust-store layout. Names are io/fs names ("etc/os-release"); symlinks are
// followed as fsys follows them, so fsys must confine them to the root.
//
// Order: /etc/os-release, else /usr/lib/os-release (ID, then each ID_LIKE
// entry, then well-known derivative IDs); when no os-release names a known
// family, marker files (/etc/NIXOS, /etc/alpine-release, /etc/arch-release,
// /etc/gentoo-release, /etc/SuSE-release, /etc/fedora-release,
// /etc/redhat-release, /etc/debian_version); then distroless (dpkg's
// status.d without a status file); then /bin/busybox when no os-release
// exists; else FamilyUnknown.
//
// Detect never fails because of what the image holds: unreadable, oversized
// or non-regular files are skipped and listed in Distro.Problems. It returns
// an error only when fsys is nil. It reads at most two os-release files of
// MaxOSReleaseSize and a few marker files of MaxMarkerSize.
func Detect(fsys fs.FS) (*Distro, error) {
	if fsys == nil {
		return nil, errors.New("detecting distribution: nil filesystem")
	}
	d := &Distro{Family: FamilyUnknown}
	osr, src := readOSRelease(fsys, d)
	if osr != nil {
		d.OSRelease = osr
		d.Source = src
		d.ID = strings.ToLower(strings.TrimSpace(osr["ID"]))
		d.IDLike = idList(osr["ID_LIKE"])
		d.VersionID = osr["VERSION_ID"]
		d.Name = osr["PRETTY_NAME"]
		if d.Name == "" {
			d.Name = osr["NAME"]
		}
		d.Family, d.MatchedID = familyOf(d.ID, d.IDLike)
	}
	switch {
	case d.Family == FamilyDebian && isDistroless(fsys, d):
		d.Family = FamilyDistroless
	case d.Family == FamilyUnknown:
		if !detectMarkers(fsys, d) && osr == nil && isRegular(fsys, "/bin/busybox", d) {
			d.Family, d.Source = FamilyBusyBox, "/bin/busybox"
		}
	}
	d.Layout = LayoutFor(d.Family)
	return d, nil
}

// readOSRelease returns the fields of the first usable os-release file and
// its container path, or nil.
func readOSRelease(fsys fs.FS, d *Distro) (map[string]string, string) {
	for _, p := range osReleasePaths {
		data, err := readCapped(fsys, p, MaxOSReleaseSize)
		if err != nil {
			if !errors.Is(err, fs.ErrNotExist) {
				d.Problems = append(d.Problems, fmt.Errorf("reading os-release: %w", err))
			}
			continue
		}
		fields := ParseOSRelease(data)
		if len(fields) == 0 {
			d.Problems = append(d.Problems, &fs.PathError{Op: "parse", Path: p, Err: errNoFields})
			continue
		}
		return fields, p
	}
	return nil, ""
}

var errNoFields = errors.New("no os-release fields")

// familyOf picks the family of id, else of the first ID_LIKE entry that heads
// one, else of a known derivative id.
func familyOf(id string, like []string) (Family, string) {
	if f, ok := rootIDs[id]; ok {
		return f, id
	}
	for _, l := range like {
		if f, ok := rootIDs[l]; ok {
			return f, l
		}
	}
	if f, ok := derivativeIDs[id]; ok {
		return f, id
	}
	for _, l := range like {
		if f, ok := derivativeIDs[l]; ok {
			return f, l
		}
	}
	return FamilyUnknown, ""
}

// isDistroless reports a Debian-family root built by distroless: its
// os-release says so (PRETTY_NAME="Distroless", HOME_URL on the distroless
// project), or dpkg's per-package status.d exists without dpkg's status file
// (distroless unpacks packages without dpkg).
func isDistroless(fsys fs.FS, d *Distro) bool {
	if d.OSRelease != nil {
		if strings.Contains(strings.ToLower(d.OSRelease["PRETTY_NAME"]), "distroless") ||
			strings.Contains(strings.ToLower(d.OSRelease["HOME_URL"]), "distroless") {
			return true
		}
	}
	return dpkgStatusDOnly(fsys)
}

// dpkgStatusDOnly reports /var/lib/dpkg/status.d as a directory with no
// /var/lib/dpkg/status beside it.
func dpkgStatusDOnly(fsys fs.FS) bool {
	fi, err := fs.Stat(fsys, "var/lib/dpkg/status.d")
	if err != nil || !fi.IsDir() {
		return false
	}
	_, err = fs.Stat(fsys, "var/lib/dpkg/status")
	return errors.Is(err, fs.ErrNotExist)
}

// marker is a file whose presence names a family.
type marker struct {
	path   string
	family Family
	id     string
	// version extracts VERSION_ID and a name from the file's first line.
	version func(first string) (id, version, name string)
}

// markers are checked in order; the first regular file found wins. Fedora
// ships both fedora-release and redhat-release, Ubuntu also has
// debian_version, so the more specific files come first.
var markers = [...]marker{
	{path: "/etc/NIXOS", family: FamilyNixOS, id: "nixos"},
	{path: "/etc/alpine-release", family: FamilyAlpine, id: "alpine", version: wholeLine},
	{path: "/etc/arch-release", family: FamilyArch, id: "arch"},
	{path: "/etc/gentoo-release", family: FamilyGentoo, id: "gentoo", version: releaseLine},
	{path: "/etc/SuSE-release", family: FamilySUSE, id: "suse", version: releaseLine},
	{path: "/etc/fedora-release", family: FamilyRHEL, id: "fedora", version: releaseLine},
	{path: "/etc/redhat-release", family: FamilyRHEL, id: "rhel", version: releaseLine},
	{path: "/etc/debian_version", family: FamilyDebian, id: "debian", version: wholeLine},
}

// wholeLine: /etc/alpine-release ("3.20.3") and /etc/debian_version
// ("12.7", or "trixie/sid") hold just a version.
func wholeLine(first string) (string, string, string) { return "", first, "" }

// releaseLine: "<Name> release <version> (<codename>)" as in
// /etc/redhat-release, /etc/fedora-release and /etc/gentoo-release; the
// first line of /etc/SuSE-release is a name ("openSUSE 13.2 (x86_64)").
func releaseLine(first string) (string, string, string) {
	name := first
	version := ""
	if _, after, ok := strings.Cut(first, " release "); ok {
		version, _, _ = strings.Cut(strings.TrimSpace(after), " ")
	}
	id := ""
	low := strings.ToLower(first)
	for _, p := range [...]struct{ prefix, id string }{
		{"red hat enterprise linux", "rhel"}, {"centos", "centos"}, {"fedora", "fedora"},
		{"rocky linux", "rocky"}, {"almalinux", "almalinux"}, {"oracle linux", "ol"},
		{"amazon linux", "amzn"}, {"opensuse", "opensuse"}, {"suse linux enterprise", "sles"},
		{"gentoo", "gentoo"},
	} {
		if strings.HasPrefix(low, p.prefix) {
			id = p.id
			break
		}
	}
	return id, version, name
}

// detectMarkers sets d from the first marker file present; it keeps an ID,
// version and name os-release already gave.
func detectMarkers(fsys fs.FS, d *Distro) bool {
	for _, m := range markers {
		if !isRegular(fsys, m.path, d) {
			continue
		}
		d.Family, d.Source = m.family, m.path
		if d.ID == "" {
			d.ID = m.id
		}
		if m.version != nil {
			data, err := readCapped(fsys, m.path, MaxMarkerSize)
			if err != nil {
				d.Problems = append(d.Problems, fmt.Errorf("reading marker: %w", err))
			} else {
				first, _, _ := bytes.Cut(data, []byte{'\n'})
				id, version, name := m.version(strings.TrimSpace(string(first)))
				if id != "" && d.ID == m.id {
					d.ID = id
				}
				if d.VersionID == "" {
					d.VersionID = version
				}
				if d.Name == "" {
					d.Name = name
				}
			}
		}
		if d.Family == FamilyDebian && dpkgStatusDOnly(fsys) {
			d.Family = FamilyDistroless
		}
		return true
	}
	if dpkgStatusDOnly(fsys) {
		d.Family, d.Source = FamilyDistroless, "/var/lib/dpkg/status.d"
		return true
	}
	return false
}

// isRegular reports whether container path p is a regular file (following
// symlinks as fsys does). Errors other than "does not exist" are recorded.
func isRegular(fsys fs.FS, p string, d *Distro) bool {
	fi, err := fs.Stat(fsys, Name(p))
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			d.Problems = append(d.Problems, fmt.Errorf("checking marker: %w", err))
		}
		return false
	}
	return fi.Mode().IsRegular()
}

// readCapped reads container path p if it is a regular file of at most max
// bytes. With a LimitedReadFS it asks fsys to check on one handle; else it
// stats (following symlinks), refuses non-regular and oversized files before
// opening anything — so a FIFO is never opened — then checks the open
// handle again and reads through io.LimitReader.
func readCapped(fsys fs.FS, p string, max int64) ([]byte, error) {
	name := Name(p)
	if lf, ok := fsys.(LimitedReadFS); ok {
		data, err := lf.ReadFileLimit(name, max)
		if err != nil {
			return nil, err
		}
		if int64(len(data)) > max {
			return nil, &fs.PathError{Op: "read", Path: p, Err: ErrTooLarge}
		}
		return data, nil
	}
	fi, err := fs.Stat(fsys, name)
	if err != nil {
		return nil, err
	}
	if err := checkRegular(fi, p, max); err != nil {
		return nil, err
	}
	f, err := fsys.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err = f.Stat()
	if err != nil {
		return nil, err
	}
	if err := checkRegular(fi, p, max); err != nil {
		return nil, err
	}
	data, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, &fs.PathError{Op: "read", Path: p, Err: err}
	}
	if int64(len(data)) > max {
		return nil, &fs.PathError{Op: "read", Path: p, Err: ErrTooLarge}
	}
	return data, nil
}

func checkRegular(fi fs.FileInfo, p string, max int64) error {
	if !fi.Mode().IsRegular() {
		return &fs.PathError{Op: "read", Path: p, Err: ErrNotRegular}
	}
	if fi.Size() > max {
		return &fs.PathError{Op: "read", Path: p, Err: ErrTooLarge}
	}
	return nil
}
