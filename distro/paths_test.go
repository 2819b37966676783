package distro

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/moby/buildkit/util/system"
)

// TestDefaultPathIsBuildKits pins DefaultPath to the PATH BuildKit gives a
// RUN step whose image sets none: the programs Command.Find looks for are
// the ones a RUN step, and the executor's sibling, would run.
func TestDefaultPathIsBuildKits(t *testing.T) {
	if DefaultPath != system.DefaultPathEnvUnix {
		t.Errorf("DefaultPath = %q, BuildKit's is %q", DefaultPath, system.DefaultPathEnvUnix)
	}
}

func TestIsTrustStorePath(t *testing.T) {
	for p, want := range map[string]bool{
		"/etc/ssl":                                 true,
		"/etc/ssl/certs/ca-certificates.crt":       true,
		"/etc/pki/ca-trust/extracted/pem":          true,
		"/etc/ca-certificates/update.d":            true,
		"/usr/local/share/ca-certificates/x.crt":   true,
		"/usr/share/ca-certificates/mozilla":       true,
		"/var/lib/ca-certificates/java-cacerts":    true,
		"/etc/ca-certificates.conf":                false, // read by the tool, never written
		"/etc/sslx":                                false,
		"/usr/local/share/ca-certificates-foo":     false,
		"/etc":                                     false,
		"/":                                        false,
		"/etc/shadow":                              false,
		"/etc/ssl/../shadow":                       false, // not clean
		"etc/ssl/certs":                            false, // not absolute
		"/etc/ssl/certs/":                          false, // not clean
		"/usr/lib/python3/dist-packages/certifi/x": false,
	} {
		if got := IsTrustStorePath(p); got != want {
			t.Errorf("IsTrustStorePath(%q) = %v, want %v", p, got, want)
		}
	}
	a := TrustStoreDirs()
	a[0] = "/changed"
	if TrustStoreDirs()[0] == "/changed" {
		t.Error("TrustStoreDirs hands out a shared slice")
	}
}

// TestCommandFindTree checks Command.Find on real trees (os.Root): a tool
// found through a directory symlink of a merged /usr, one without an
// execute bit, and a link that climbs out of the root, which must never
// find the host's program.
func TestCommandFindTree(t *testing.T) {
	fsys := rootFS(t,
		"file usr/bin/update-ca-certificates x mode=0755",
		"file usr/sbin/noexec x mode=0644",
		"symlink bin -> usr/bin",
		"symlink usr/local/bin/evil -> /../../../bin/sh",
		"file usr/bin/openssl x mode=0755",
	)
	for _, tc := range []struct {
		name string
		cmd  Command
		want string // "": not installed
	}{
		{"through a directory link", Command{Argv: []string{"/usr/local/bin/update-ca-certificates"},
			Paths: []string{"/usr/local/bin/update-ca-certificates", "/bin/update-ca-certificates"}}, "/bin/update-ca-certificates"},
		{"first path wins", Command{Argv: []string{"/usr/bin/update-ca-certificates"},
			Paths: []string{"/usr/bin/update-ca-certificates", "/bin/update-ca-certificates"}}, "/usr/bin/update-ca-certificates"},
		{"no execute bit", Command{Argv: []string{"/usr/sbin/noexec"}, Paths: []string{"/usr/sbin/noexec"}}, ""},
		{"link out of the root", Command{Argv: []string{"/usr/local/bin/evil"}, Paths: []string{"/usr/local/bin/evil"}}, ""},
		{"missing", Command{Argv: []string{"/usr/bin/missing"}, Paths: []string{"/usr/bin/missing"}}, ""},
		{"requires found in DefaultPath", Command{Argv: []string{"/bin/update-ca-certificates"},
			Paths: []string{"/bin/update-ca-certificates"}, Requires: []string{"openssl"}}, "/bin/update-ca-certificates"},
		{"requires not executable", Command{Argv: []string{"/bin/update-ca-certificates"},
			Paths: []string{"/bin/update-ca-certificates"}, Requires: []string{"noexec"}}, ""},
		{"requires a link out of the root", Command{Argv: []string{"/bin/update-ca-certificates"},
			Paths: []string{"/bin/update-ca-certificates"}, Requires: []string{"evil"}}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			argv, err := tc.cmd.Find(fsys)
			if tc.want == "" {
				if !errors.Is(err, ErrNotInstalled) {
					t.Errorf("Find = %q, %v; want ErrNotInstalled", argv, err)
				}
				return
			}
			if err != nil || len(argv) == 0 || argv[0] != tc.want {
				t.Errorf("Find = %q, %v; want %s", argv, err, tc.want)
			}
		})
	}
}

// TestLookPathUsesDefaultPath finds a required program only in DefaultPath's
// directories, in its order.
func TestLookPathUsesDefaultPath(t *testing.T) {
	m := fstest.MapFS{
		"opt/bin/tool":       exe("x"),
		"usr/bin/both":       exe("x"),
		"usr/local/bin/both": exe("x"),
	}
	if got := lookPath(m, "tool"); got != "" {
		t.Errorf("lookPath(tool) = %q outside DefaultPath", got)
	}
	if got := lookPath(m, "both"); got != "/usr/local/bin/both" {
		t.Errorf("lookPath(both) = %q, want the first DefaultPath entry", got)
	}
	if dirs := strings.Split(DefaultPath, ":"); !slices.Contains(dirs, "/usr/local/bin") {
		t.Errorf("DefaultPath %q", DefaultPath)
	}
}
