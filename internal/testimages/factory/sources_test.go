package factory

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// Example hosts use reserved names (RFC 2606); no real mirror is named here.
const deb822 = `# a comment
Types: deb deb-src
URIs: http://mirror.example/debian
Suites: bookworm bookworm-updates
Components: main contrib
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
# an interleaved comment
URIs: http://security.example/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
Enabled: no
URIs: http://disabled.example/debian
Suites: bookworm
Components: main

Types: deb
URIs: https://thirdparty.example/linux/debian
Suites: bookworm
Components: stable main
Signed-By:
 -----BEGIN PGP PUBLIC KEY BLOCK-----
 .
 mQINBFit2ioBEADhWpZ8/wvZ6hUTiXOwQHXMAlaFHcPH9hAtr4F1y2+OYdbtMuth
 -----END PGP PUBLIC KEY BLOCK-----
`

func TestParseDeb822(t *testing.T) {
	got, err := ParseDeb822(deb822, "x.sources")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 4 {
		t.Fatalf("got %d sources, want 4: %+v", len(got), got)
	}
	want0 := Source{Type: "deb", URI: "http://mirror.example/debian", Suites: []string{"bookworm", "bookworm-updates"},
		Components: []string{"main", "contrib"}, SignedBy: "/usr/share/keyrings/debian-archive-keyring.gpg", Origin: "x.sources"}
	if !reflect.DeepEqual(got[0], want0) {
		t.Errorf("got[0] = %+v\nwant %+v", got[0], want0)
	}
	if got[1].Type != "deb-src" || got[1].URI != want0.URI {
		t.Errorf("got[1] = %+v, want the deb-src twin", got[1])
	}
	if got[2].URI != "http://security.example/debian-security" || got[2].Suites[0] != "bookworm-security" {
		t.Errorf("got[2] = %+v", got[2])
	}
	if !strings.HasPrefix(got[3].SignedBy, "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nmQINB") || !strings.HasSuffix(got[3].SignedBy, "-----END PGP PUBLIC KEY BLOCK-----") {
		t.Errorf("embedded key not kept: %q", got[3].SignedBy)
	}
}

func TestParseDeb822Errors(t *testing.T) {
	for _, bad := range []string{
		" continuation first\n",
		"Types: deb\nnot a field\n",
		"Types: deb\nSuites: bookworm\n", // no URIs
	} {
		if _, err := ParseDeb822(bad, "bad.sources"); err == nil {
			t.Errorf("ParseDeb822(%q): no error", bad)
		}
	}
	// CRLF line ends and trailing blank lines are fine.
	got, err := ParseDeb822("Types: deb\r\nURIs: http://m.example/debian\r\nSuites: trixie\r\nComponents: main\r\n\r\n\r\n", "crlf")
	if err != nil || len(got) != 1 || got[0].Suites[0] != "trixie" {
		t.Errorf("CRLF: %+v, %v", got, err)
	}
}

func TestParseOneLine(t *testing.T) {
	text := `# comment
deb http://mirror.example/debian bookworm main contrib non-free-firmware
deb-src http://mirror.example/debian bookworm main

deb [ arch=amd64 signed-by=/usr/share/keyrings/debian-archive-keyring.gpg ] http://security.example/debian-security bookworm-security main # trailing
deb [signed-by=/etc/apt/keyrings/vendor.gpg arch=amd64] https://thirdparty.example/apt bookworm main
`
	got, err := ParseOneLine(text, "sources.list")
	if err != nil {
		t.Fatal(err)
	}
	want := []Source{
		{Type: "deb", URI: "http://mirror.example/debian", Suites: []string{"bookworm"}, Components: []string{"main", "contrib", "non-free-firmware"}, Origin: "sources.list"},
		{Type: "deb-src", URI: "http://mirror.example/debian", Suites: []string{"bookworm"}, Components: []string{"main"}, Origin: "sources.list"},
		{Type: "deb", URI: "http://security.example/debian-security", Suites: []string{"bookworm-security"}, Components: []string{"main"}, SignedBy: "/usr/share/keyrings/debian-archive-keyring.gpg", Origin: "sources.list"},
		{Type: "deb", URI: "https://thirdparty.example/apt", Suites: []string{"bookworm"}, Components: []string{"main"}, SignedBy: "/etc/apt/keyrings/vendor.gpg", Origin: "sources.list"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
	for _, bad := range []string{"rpm http://x.example/ a\n", "deb [arch=amd64 http://x.example/ bookworm\n", "deb http://x.example/\n"} {
		if _, err := ParseOneLine(bad, "bad"); err == nil {
			t.Errorf("ParseOneLine(%q): no error", bad)
		}
	}
}

func TestFindMirrorsAndLines(t *testing.T) {
	srcs, err := ParseDeb822(deb822, "x.sources")
	if err != nil {
		t.Fatal(err)
	}
	// A third-party source listed first must not win.
	third, _ := ParseOneLine("deb [signed-by=/etc/apt/keyrings/vendor.gpg] https://thirdparty.example/apt bookworm main\n", "l")
	m, err := FindMirrors(append(third, srcs...))
	if err != nil {
		t.Fatal(err)
	}
	if m.Archive != "http://mirror.example/debian" || m.Security != "http://security.example/debian-security" || !m.Updates {
		t.Fatalf("mirrors = %+v", m)
	}
	want := []string{
		"deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://mirror.example/debian trixie main",
		"deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://mirror.example/debian trixie-updates main",
		"deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://security.example/debian-security trixie-security main",
	}
	if got := m.Lines("trixie"); !reflect.DeepEqual(got, want) {
		t.Errorf("Lines(trixie) = %q\nwant %q", got, want)
	}

	// One-line sources without updates, security or keyring.
	srcs, _ = ParseOneLine("deb http://mirror.example/debian/ bookworm main\n", "l")
	m, err = FindMirrors(srcs)
	if err != nil {
		t.Fatal(err)
	}
	if got := m.Lines("bookworm"); !reflect.DeepEqual(got, []string{"deb http://mirror.example/debian bookworm main"}) {
		t.Errorf("Lines = %q", got)
	}

	if _, err := FindMirrors(third); err == nil {
		t.Error("FindMirrors with only a third-party source: no error")
	}
}

func TestReadSystemSources(t *testing.T) {
	root := t.TempDir()
	d := filepath.Join(root, "etc", "apt", "sources.list.d")
	if err := os.MkdirAll(d, 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(root, "etc", "apt", "sources.list"), []byte("deb http://a.example/debian bookworm main\n"), 0o644)
	os.WriteFile(filepath.Join(d, "b.sources"), []byte("Types: deb\nURIs: http://b.example/debian-security\nSuites: bookworm-security\nComponents: main\n"), 0o644)
	os.WriteFile(filepath.Join(d, "c.list"), []byte("deb http://c.example/debian bookworm-updates main\n"), 0o644)
	os.WriteFile(filepath.Join(d, "ignored.save"), []byte("garbage"), 0o644)
	srcs, err := ReadSystemSources(root)
	if err != nil {
		t.Fatal(err)
	}
	var uris []string
	for _, s := range srcs {
		uris = append(uris, s.URI)
	}
	if want := []string{"http://a.example/debian", "http://c.example/debian", "http://b.example/debian-security"}; !reflect.DeepEqual(uris, want) {
		t.Errorf("URIs = %q, want %q", uris, want)
	}
	m, err := FindMirrors(srcs)
	if err != nil || m.Archive != "http://a.example/debian" || m.Security != "http://b.example/debian-security" || !m.Updates {
		t.Errorf("FindMirrors = %+v, %v", m, err)
	}
}

// The machine's own sources parse (whatever they are); nothing is asserted about hosts.
func TestReadThisMachine(t *testing.T) {
	srcs, err := ReadSystemSources("/")
	if err != nil {
		t.Fatalf("this machine's apt sources: %v", err)
	}
	if len(srcs) == 0 {
		t.Skip("no apt sources on this machine")
	}
	if _, err := FindMirrors(srcs); err != nil {
		t.Logf("no Debian mirror here: %v", err)
	}
}
