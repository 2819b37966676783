package distro

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
)

// update rewrites the expected-output goldens under testdata/golden and
// testdata/layouts from the current code: go test ./distro/ -update.
// Review the diff; never edit those files by hand. The inputs under
// testdata/os-release are hand-written from each distribution's documented
// fields and are never rewritten.
var update = flag.Bool("update", false, "rewrite testdata/golden and testdata/layouts")

// goldenView is what a detection golden records: everything but the layout,
// which has goldens of its own per family.
type goldenView struct {
	Family    Family            `json:"family"`
	ID        string            `json:"id,omitempty"`
	IDLike    []string          `json:"id_like,omitempty"`
	MatchedID string            `json:"matched_id,omitempty"`
	VersionID string            `json:"version_id,omitempty"`
	Name      string            `json:"name,omitempty"`
	Source    string            `json:"source,omitempty"`
	OSRelease map[string]string `json:"os_release,omitempty"`
}

func marshalGolden(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return append(b, '\n')
}

// checkGolden compares got with the file, or rewrites the file under -update.
func checkGolden(t *testing.T, file string, got []byte) {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(file, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("reading golden (run go test -update to create it): %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the output (run go test -update and review the diff):\n--- got\n%s\n--- want\n%s", file, got, want)
	}
}

// TestDetectOSRelease runs every os-release text under testdata/os-release
// as /etc/os-release of an otherwise empty root, checks the family and the
// ID that decided it, and compares the whole detection with its golden.
func TestDetectOSRelease(t *testing.T) {
	want := map[string]struct {
		family  Family
		id      string
		matched string
	}{
		"debian-12":                  {FamilyDebian, "debian", "debian"},
		"debian-13":                  {FamilyDebian, "debian", "debian"},
		"ubuntu-24.04":               {FamilyDebian, "ubuntu", "ubuntu"},
		"linuxmint-22":               {FamilyDebian, "linuxmint", "ubuntu"}, // ID_LIKE="ubuntu debian"
		"linuxmint-19.3":             {FamilyDebian, "linuxmint", "ubuntu"}, // ID_LIKE=ubuntu → Debian
		"kali-2024.3":                {FamilyDebian, "kali", "debian"},
		"distroless-static-debian12": {FamilyDistroless, "debian", "debian"},
		"alpine-3.20":                {FamilyAlpine, "alpine", "alpine"},
		"wolfi":                      {FamilyAlpine, "wolfi", "wolfi"},
		"chainguard":                 {FamilyAlpine, "chainguard", "chainguard"},
		"rhel-9.4":                   {FamilyRHEL, "rhel", "rhel"},
		"fedora-40-container":        {FamilyRHEL, "fedora", "fedora"},
		"centos-7":                   {FamilyRHEL, "centos", "centos"},
		"centos-stream-9":            {FamilyRHEL, "centos", "centos"},
		"rocky-9.4":                  {FamilyRHEL, "rocky", "rhel"}, // ID_LIKE="rhel centos fedora"
		"almalinux-9.4":              {FamilyRHEL, "almalinux", "rhel"},
		"oraclelinux-9.4":            {FamilyRHEL, "ol", "fedora"},
		"amzn-2":                     {FamilyRHEL, "amzn", "centos"},
		"amzn-2023":                  {FamilyRHEL, "amzn", "fedora"},
		"opensuse-leap-15.6":         {FamilySUSE, "opensuse-leap", "suse"},
		"opensuse-tumbleweed":        {FamilySUSE, "opensuse-tumbleweed", "opensuse"},
		"sles-15-sp6":                {FamilySUSE, "sles", "sles"},
		"arch":                       {FamilyArch, "arch", "arch"},
		"manjaro":                    {FamilyArch, "manjaro", "arch"},
		"gentoo":                     {FamilyGentoo, "gentoo", "gentoo"},
		"nixos-24.05":                {FamilyNixOS, "nixos", "nixos"},
		"photon-5.0":                 {FamilyUnknown, "photon", ""},
		"quoting":                    {FamilyDebian, "example", "ubuntu"},
		"crlf":                       {FamilyDebian, "debian", "debian"},
	}
	files, err := os.ReadDir("testdata/os-release")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, f := range files {
		name := f.Name()
		seen[name] = true
		t.Run(name, func(t *testing.T) {
			w, ok := want[name]
			if !ok {
				t.Fatalf("no expectation for testdata/os-release/%s: add one to the table", name)
			}
			text, err := os.ReadFile(filepath.Join("testdata/os-release", name))
			if err != nil {
				t.Fatal(err)
			}
			d, err := Detect(fstest.MapFS{"etc/os-release": {Data: text, Mode: 0o644}})
			if err != nil {
				t.Fatal(err)
			}
			if d.Family != w.family || d.ID != w.id || d.MatchedID != w.matched {
				t.Errorf("family, id, matched = %s, %q, %q; want %s, %q, %q", d.Family, d.ID, d.MatchedID, w.family, w.id, w.matched)
			}
			if d.Source != "/etc/os-release" {
				t.Errorf("source = %q, want /etc/os-release", d.Source)
			}
			if d.Layout.Family != d.Family {
				t.Errorf("layout family = %s, want %s", d.Layout.Family, d.Family)
			}
			if len(d.Problems) != 0 {
				t.Errorf("problems: %v", d.Problems)
			}
			checkGolden(t, filepath.Join("testdata/golden", name+".json"), marshalGolden(t, goldenView{
				Family: d.Family, ID: d.ID, IDLike: d.IDLike, MatchedID: d.MatchedID,
				VersionID: d.VersionID, Name: d.Name, Source: d.Source, OSRelease: d.OSRelease,
			}))
		})
	}
	for name := range want {
		if !seen[name] {
			t.Errorf("expectation %q has no testdata/os-release file", name)
		}
	}
	// Every family that os-release can name has a case above.
	covered := map[Family]bool{}
	for _, w := range want {
		covered[w.family] = true
	}
	for _, f := range Families() {
		if f != FamilyBusyBox && !covered[f] {
			t.Errorf("no os-release case for family %s", f)
		}
	}
}

// TestLayoutGoldens records each family's layout, so that a change to a
// path shows up in review as a golden diff.
func TestLayoutGoldens(t *testing.T) {
	for _, f := range Families() {
		t.Run(string(f), func(t *testing.T) {
			checkGolden(t, filepath.Join("testdata/layouts", string(f)+".json"), marshalGolden(t, LayoutFor(f)))
		})
	}
}

// TestGoldensHaveInputs fails on a golden whose input was removed, so stale
// goldens do not linger.
func TestGoldensHaveInputs(t *testing.T) {
	entries, err := os.ReadDir("testdata/golden")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		in := strings.TrimSuffix(e.Name(), ".json")
		if _, err := os.Stat(filepath.Join("testdata/os-release", in)); err != nil {
			t.Errorf("golden %s has no input: %v", e.Name(), err)
		}
	}
	entries, err = os.ReadDir("testdata/layouts")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !slices.Contains(Families(), Family(strings.TrimSuffix(e.Name(), ".json"))) {
			t.Errorf("layout golden %s names no family", e.Name())
		}
	}
}
