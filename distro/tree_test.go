package distro

import (
	"io/fs"
	"os"
	"strconv"
	"testing"

	"github.com/buildkit-cacerts/buildkit-cacerts/internal/treespec"
)

// rootFS builds specs in a temporary directory and returns it opened with
// os.OpenRoot(dir).FS() — never os.DirFS, which lets the host kernel follow
// an image's absolute symlinks.
func rootFS(t testing.TB, specs ...string) fs.FS {
	t.Helper()
	dir := t.TempDir()
	treespec.Build(t, dir, specs...)
	r, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r.FS()
}

// osRelease returns a spec line writing an os-release text to name.
func fileSpec(name, content string) string {
	return "file " + name + " " + strconv.Quote(content)
}

const (
	debianText = "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\nID=debian\n"
	alpineText = "NAME=\"Alpine Linux\"\nID=alpine\nVERSION_ID=3.20.3\nPRETTY_NAME=\"Alpine Linux v3.20\"\n"
)

// TestDetectTree covers where os-release lives, the fallback to
// /usr/lib/os-release, and every marker file, on real directory trees.
func TestDetectTree(t *testing.T) {
	tests := []struct {
		name    string
		specs   []string
		family  Family
		id      string
		version string
		source  string
	}{
		{
			name: "etc os-release links to usr/lib (the normal case)",
			specs: []string{
				fileSpec("usr/lib/os-release", debianText),
				"symlink etc/os-release -> ../usr/lib/os-release",
			},
			family: FamilyDebian, id: "debian", version: "12", source: "/etc/os-release",
		},
		{
			name:   "usr/lib os-release used when etc has none",
			specs:  []string{"dir etc", fileSpec("usr/lib/os-release", alpineText)},
			family: FamilyAlpine, id: "alpine", version: "3.20.3", source: "/usr/lib/os-release",
		},
		{
			name: "etc os-release wins over usr/lib",
			specs: []string{
				fileSpec("etc/os-release", alpineText),
				fileSpec("usr/lib/os-release", debianText),
			},
			family: FamilyAlpine, id: "alpine", version: "3.20.3", source: "/etc/os-release",
		},
		{
			name: "dangling etc os-release falls back to usr/lib",
			specs: []string{
				"symlink etc/os-release -> ../usr/lib/missing",
				fileSpec("usr/lib/os-release", debianText),
			},
			family: FamilyDebian, id: "debian", version: "12", source: "/usr/lib/os-release",
		},
		{
			name: "os-release with unknown ID, marker decides",
			specs: []string{
				fileSpec("etc/os-release", "ID=custom\nVERSION_ID=7\n"),
				fileSpec("etc/debian_version", "12.7\n"),
			},
			family: FamilyDebian, id: "custom", version: "7", source: "/etc/debian_version",
		},
		{
			name:   "debian_version",
			specs:  []string{fileSpec("etc/debian_version", "12.7\n")},
			family: FamilyDebian, id: "debian", version: "12.7", source: "/etc/debian_version",
		},
		{
			name:   "alpine-release",
			specs:  []string{fileSpec("etc/alpine-release", "3.20.3\n")},
			family: FamilyAlpine, id: "alpine", version: "3.20.3", source: "/etc/alpine-release",
		},
		{
			name:   "redhat-release of Rocky",
			specs:  []string{fileSpec("etc/redhat-release", "Rocky Linux release 9.4 (Blue Onyx)\n")},
			family: FamilyRHEL, id: "rocky", version: "9.4", source: "/etc/redhat-release",
		},
		{
			name:   "redhat-release of CentOS 6",
			specs:  []string{fileSpec("etc/redhat-release", "CentOS release 6.10 (Final)\n")},
			family: FamilyRHEL, id: "centos", version: "6.10", source: "/etc/redhat-release",
		},
		{
			name: "fedora-release before redhat-release",
			specs: []string{
				fileSpec("etc/fedora-release", "Fedora release 40 (Forty)\n"),
				"symlink etc/redhat-release -> fedora-release",
			},
			family: FamilyRHEL, id: "fedora", version: "40", source: "/etc/fedora-release",
		},
		{
			name:   "SuSE-release",
			specs:  []string{fileSpec("etc/SuSE-release", "openSUSE 13.2 (x86_64)\nVERSION = 13.2\nCODENAME = Harlequin\n")},
			family: FamilySUSE, id: "opensuse", source: "/etc/SuSE-release",
		},
		{
			name:   "arch-release (empty)",
			specs:  []string{"file etc/arch-release \"\""},
			family: FamilyArch, id: "arch", source: "/etc/arch-release",
		},
		{
			name:   "gentoo-release",
			specs:  []string{fileSpec("etc/gentoo-release", "Gentoo Base System release 2.17\n")},
			family: FamilyGentoo, id: "gentoo", version: "2.17", source: "/etc/gentoo-release",
		},
		{
			name:   "NIXOS",
			specs:  []string{"file etc/NIXOS \"\""},
			family: FamilyNixOS, id: "nixos", source: "/etc/NIXOS",
		},
		{
			name:   "busybox without os-release",
			specs:  []string{"file bin/busybox ELF mode=0755", "symlink bin/sh -> busybox", "dir etc"},
			family: FamilyBusyBox, source: "/bin/busybox",
		},
		{
			name: "busybox with an unknown os-release is unknown",
			specs: []string{
				"file bin/busybox ELF mode=0755",
				fileSpec("etc/os-release", "ID=tinyos\n"),
			},
			family: FamilyUnknown, id: "tinyos", source: "/etc/os-release",
		},
		{
			name:   "distroless by dpkg status.d",
			specs:  []string{"file var/lib/dpkg/status.d/base Package:", fileSpec("etc/debian_version", "12.7\n")},
			family: FamilyDistroless, id: "debian", version: "12.7", source: "/etc/debian_version",
		},
		{
			name:   "distroless by status.d alone",
			specs:  []string{"file var/lib/dpkg/status.d/tzdata Package:", fileSpec("etc/ssl/certs/ca-certificates.crt", "")},
			family: FamilyDistroless, source: "/var/lib/dpkg/status.d",
		},
		{
			name: "debian with dpkg status is not distroless",
			specs: []string{
				fileSpec("etc/os-release", debianText),
				"file var/lib/dpkg/status Package:",
				"dir var/lib/dpkg/status.d",
			},
			family: FamilyDebian, id: "debian", version: "12", source: "/etc/os-release",
		},
		{
			name:   "scratch (empty root)",
			specs:  nil,
			family: FamilyUnknown,
		},
		{
			name:   "scratch with a static binary",
			specs:  []string{"file app ELF mode=0755"},
			family: FamilyUnknown,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := Detect(rootFS(t, tt.specs...))
			if err != nil {
				t.Fatal(err)
			}
			if d.Family != tt.family || d.ID != tt.id || d.VersionID != tt.version || d.Source != tt.source {
				t.Errorf("got family %s, id %q, version %q, source %q; want %s, %q, %q, %q",
					d.Family, d.ID, d.VersionID, d.Source, tt.family, tt.id, tt.version, tt.source)
			}
			if d.Layout.Family != tt.family {
				t.Errorf("layout family %s, want %s", d.Layout.Family, tt.family)
			}
		})
	}
}

// TestDetectMapFSSymlink runs the normal symlinked os-release through
// fstest.MapFS, which follows symlinks itself.
func TestDetectMapFSSymlink(t *testing.T) {
	fsys := mapFS(map[string]string{"usr/lib/os-release": debianText})
	fsys["etc/os-release"] = &mapFile{Data: []byte("../usr/lib/os-release"), Mode: fs.ModeSymlink | 0o777}
	d, err := Detect(fsys)
	if err != nil {
		t.Fatal(err)
	}
	if d.Family != FamilyDebian || d.Source != "/etc/os-release" {
		t.Errorf("got %s from %q, want debian from /etc/os-release", d.Family, d.Source)
	}
}
