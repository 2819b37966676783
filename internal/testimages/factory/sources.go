package factory

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Source is one apt source entry: one URI with its suites and components,
// as read from deb822 (.sources) or one-line (sources.list) files.
type Source struct {
	Type       string   // "deb" or "deb-src"
	URI        string   // e.g. the mirror's base URI
	Suites     []string // e.g. bookworm, bookworm-updates
	Components []string // e.g. main
	SignedBy   string   // keyring path, fingerprint(s) or an embedded key; may be empty
	Origin     string   // file the entry came from (for messages)
}

// ParseDeb822 parses a deb822-style .sources file. Stanzas are separated by
// blank lines; fields may continue on lines starting with white space; lines
// starting with '#' are comments. Stanzas with "Enabled: no" are dropped, and
// a stanza with several Types and URIs yields one Source per (type, URI).
func ParseDeb822(text, origin string) ([]Source, error) {
	var out []Source
	var stanzas []map[string]string
	cur := map[string]string{}
	last := ""
	flush := func() {
		if len(cur) > 0 {
			stanzas = append(stanzas, cur)
		}
		cur = map[string]string{}
		last = ""
	}
	for n, line := range strings.Split(text, "\n") {
		line = strings.TrimRight(line, "\r")
		switch {
		case strings.TrimSpace(line) == "":
			flush()
		case strings.HasPrefix(line, "#"):
			// comment
		case line[0] == ' ' || line[0] == '\t':
			if last == "" {
				return nil, fmt.Errorf("%s:%d: continuation line without a field", origin, n+1)
			}
			v := strings.TrimSpace(line)
			if v == "." {
				v = ""
			}
			cur[last] += "\n" + v
		default:
			k, v, ok := strings.Cut(line, ":")
			if !ok {
				return nil, fmt.Errorf("%s:%d: not a field: %q", origin, n+1, line)
			}
			last = strings.ToLower(strings.TrimSpace(k))
			cur[last] = strings.TrimSpace(v)
		}
	}
	flush()
	for i, st := range stanzas {
		if e, ok := st["enabled"]; ok && strings.EqualFold(strings.TrimSpace(e), "no") {
			continue
		}
		types := strings.Fields(st["types"])
		uris := strings.Fields(st["uris"])
		suites := strings.Fields(st["suites"])
		if len(types) == 0 || len(uris) == 0 || len(suites) == 0 {
			return nil, fmt.Errorf("%s: stanza %d: Types, URIs and Suites are required", origin, i+1)
		}
		comps := strings.Fields(st["components"])
		for _, t := range types {
			for _, u := range uris {
				out = append(out, Source{
					Type: t, URI: u, Suites: suites, Components: comps,
					SignedBy: strings.TrimSpace(st["signed-by"]), Origin: origin,
				})
			}
		}
	}
	return out, nil
}

// ParseOneLine parses the one-line sources.list format:
//
//	deb [ option1=value1 option2=value2 ] uri suite [component1] [component2] [...]
func ParseOneLine(text, origin string) ([]Source, error) {
	var out []Source
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	n := 0
	for sc.Scan() {
		n++
		line := sc.Text()
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		typ, rest, _ := strings.Cut(line, " ")
		if typ != "deb" && typ != "deb-src" {
			return nil, fmt.Errorf("%s:%d: unknown type %q", origin, n, typ)
		}
		rest = strings.TrimSpace(rest)
		opts := map[string]string{}
		if strings.HasPrefix(rest, "[") {
			end := strings.IndexByte(rest, ']')
			if end < 0 {
				return nil, fmt.Errorf("%s:%d: unterminated option list", origin, n)
			}
			for _, o := range strings.Fields(rest[1:end]) {
				k, v, _ := strings.Cut(o, "=")
				opts[strings.ToLower(strings.TrimRight(k, "+-"))] = v
			}
			rest = rest[end+1:]
		}
		f := strings.Fields(rest)
		if len(f) < 2 {
			return nil, fmt.Errorf("%s:%d: want a URI and a suite", origin, n)
		}
		out = append(out, Source{
			Type: typ, URI: f[0], Suites: []string{f[1]}, Components: f[2:],
			SignedBy: opts["signed-by"], Origin: origin,
		})
	}
	return out, sc.Err()
}

// ReadSystemSources reads the machine's apt sources under root (normally "/"):
// etc/apt/sources.list and etc/apt/sources.list.d/*.list and *.sources.
func ReadSystemSources(root string) ([]Source, error) {
	var out []Source
	etc := filepath.Join(root, "etc", "apt")
	files := []string{filepath.Join(etc, "sources.list")}
	for _, pat := range []string{"*.list", "*.sources"} {
		m, _ := filepath.Glob(filepath.Join(etc, "sources.list.d", pat))
		sort.Strings(m)
		files = append(files, m...)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			return nil, err
		}
		var s []Source
		if strings.HasSuffix(f, ".sources") {
			s, err = ParseDeb822(string(b), f)
		} else {
			s, err = ParseOneLine(string(b), f)
		}
		if err != nil {
			return nil, err
		}
		out = append(out, s...)
	}
	return out, nil
}

// Mirrors are the machine's Debian archive URIs found in its apt sources.
type Mirrors struct {
	Archive    string // the main archive (suites <codename>, <codename>-updates, ...)
	Security   string // the security archive (suite <codename>-security); may be empty
	Components []string
	SignedBy   string // keyring file for both, if the sources name one
	Updates    bool   // whether the machine uses <codename>-updates
}

// DefaultKeyring is Debian's archive keyring as installed by debian-archive-keyring.
const DefaultKeyring = "/usr/share/keyrings/debian-archive-keyring.gpg"

// FindMirrors picks the Debian archive and security URIs out of srcs: among
// "deb" entries, the archive is the first whose suites include a bare code
// name (no dash), and the security archive the first with a "-security" suite.
// Third-party entries are skipped: an entry counts only when it has a "main"
// component and names no keyring other than Debian's archive keyrings.
func FindMirrors(srcs []Source) (Mirrors, error) {
	var m Mirrors
	for _, s := range srcs {
		if s.Type != "deb" || !contains(s.Components, "main") || !debianKeyring(s.SignedBy) {
			continue
		}
		for _, suite := range s.Suites {
			_, suffix, _ := strings.Cut(suite, "-")
			switch {
			case suffix == "" && m.Archive == "":
				m.Archive = strings.TrimRight(s.URI, "/")
				m.Components = []string{"main"}
				if isPath(s.SignedBy) {
					m.SignedBy = s.SignedBy
				}
			case suffix == "security" && m.Security == "":
				m.Security = strings.TrimRight(s.URI, "/")
			case suffix == "updates":
				m.Updates = true
			}
		}
	}
	if m.Archive == "" {
		return m, fmt.Errorf("no Debian archive found in the machine's apt sources (want a \"deb\" entry with component main and a plain code-name suite)")
	}
	return m, nil
}

// Lines returns one-line sources.list entries for suite on these mirrors:
// suite itself, suite-updates when the machine uses updates, and
// suite-security on the security archive when there is one.
func (m Mirrors) Lines(suite string) []string {
	opt := ""
	if m.SignedBy != "" {
		opt = "[signed-by=" + m.SignedBy + "] "
	}
	comps := strings.Join(m.Components, " ")
	lines := []string{fmt.Sprintf("deb %s%s %s %s", opt, m.Archive, suite, comps)}
	if m.Updates {
		lines = append(lines, fmt.Sprintf("deb %s%s %s-updates %s", opt, m.Archive, suite, comps))
	}
	if m.Security != "" {
		lines = append(lines, fmt.Sprintf("deb %s%s %s-security %s", opt, m.Security, suite, comps))
	}
	return lines
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func isPath(s string) bool { return strings.HasPrefix(s, "/") && !strings.ContainsAny(s, "\n ") }

// debianKeyring reports whether a Signed-By value is empty (apt's trusted
// keyrings) or one of Debian's archive keyring files.
func debianKeyring(signedBy string) bool {
	if signedBy == "" {
		return true
	}
	if !isPath(signedBy) {
		return false
	}
	b := filepath.Base(signedBy)
	return strings.HasPrefix(b, "debian-archive-") || strings.HasPrefix(b, "debian-keyring")
}
