package cacerts

import (
	"io/fs"
	"path"
	"strings"
)

// glob is fs.Glob for the layouts' certifi patterns, on container paths
// ("/usr/lib/python3*/site-packages/certifi/cacert.pem"). Where the pattern
// has exactly one wildcard component, the directory before it is listed by
// name only and each candidate is checked with one Lstat — instead of
// fs.Glob's ReadDir of every directory on the way, which looks up every
// entry of /usr/lib (1.5–3 ms per exec, docs/benchmarks.md). The result is
// what fs.Glob returns, as container paths: sorted, I/O errors ignored.
func glob(fsys FS, pattern string) ([]string, error) { return globN(fsys, pattern, -1) }

// globN is glob stopping after max matches (max < 0: no limit), so a
// directory of an image holding any number of matching names costs at most
// max+1 lookups when the caller passes its limit plus one.
func globN(fsys FS, pattern string, max int) ([]string, error) {
	ok := true
	name := fsName(pattern)
	parts := strings.Split(name, "/")
	wild := -1
	for i, p := range parts {
		if strings.ContainsAny(p, `*?[\`) {
			if wild >= 0 {
				ok = false // more than one: leave it to fs.Glob
			}
			wild = i
		}
	}
	if !ok || wild < 0 || !path.IsAbs(pattern) || !fs.ValidPath(name) {
		if !path.IsAbs(pattern) {
			return nil, nil // not a container path: matches nothing
		}
		names, err := fs.Glob(ioFS{fsys}, name)
		if max >= 0 && len(names) > max {
			names = names[:max]
		}
		out := make([]string, len(names))
		for i, n := range names {
			out[i] = "/" + n
		}
		return out, err
	}
	if _, err := path.Match(parts[wild], ""); err != nil {
		return nil, err
	}
	dir := "/" + path.Join(parts[:wild]...)
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
