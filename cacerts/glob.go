package cacerts

import (
	"io/fs"
	"path"
	"strings"
)

// glob is fs.Glob for the layouts' certifi patterns. Where the pattern has
// exactly one wildcard component
// (/usr/lib/python3*/site-packages/certifi/cacert.pem), the directory before
// it is listed by name only and each candidate is checked with one Lstat —
// instead of fs.Glob's ReadDir of every directory on the way, which looks up
// every entry of /usr/lib (1.5–3 ms per exec, docs/benchmarks.md). The
// result is what fs.Glob returns: io/fs names, sorted, I/O errors ignored.
func glob(fsys FS, pattern string) ([]string, error) { return globN(fsys, pattern, -1) }

// globN is glob stopping after max matches (max < 0: no limit), so a
// directory of an image holding any number of matching names costs at most
// max+1 lookups when the caller passes its limit plus one.
func globN(fsys FS, pattern string, max int) ([]string, error) {
	ok := true
	parts := strings.Split(pattern, "/")
	wild := -1
	for i, p := range parts {
		if strings.ContainsAny(p, `*?[\`) {
			if wild >= 0 {
				ok = false // more than one: leave it to fs.Glob
			}
			wild = i
		}
	}
	if !ok || wild < 0 || !fs.ValidPath(pattern) {
		out, err := fs.Glob(fsys, pattern)
		if max >= 0 && len(out) > max {
			out = out[:max]
		}
		return out, err
	}
	if _, err := path.Match(parts[wild], ""); err != nil {
		return nil, err
	}
	dir := path.Join(parts[:wild]...)
	if dir == "" {
		dir = "."
	}
	names, err := fsys.ReadDirNames(dir)
	if err != nil {
		return nil, nil
	}
	var out []string
	for _, n := range names {
		if max >= 0 && len(out) >= max {
			break
		}
		if m, _ := path.Match(parts[wild], n); !m {
			continue
		}
		p := path.Join(append([]string{dir, n}, parts[wild+1:]...)...)
		if _, err := fsys.Lstat(p); err == nil {
			out = append(out, p)
		}
	}
	return out, nil
}
