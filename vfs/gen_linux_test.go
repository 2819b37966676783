package vfs

import (
	"math/rand"
	"strings"
)

// genNames are the names random trees and random paths are made of, so
// paths often hit existing entries, links and mount points.
var genNames = []string{"a", "b", "c", "etc", "ssl", "certs", "m1", "m2", "x"}

// genTree returns treespec lines for a random tree: directories, files and
// symlinks whose targets mix absolute and relative paths, "..", ".", and
// escapes, plus the fixed dirs in mustDirs (mount points).
func genTree(rng *rand.Rand, n int, mustDirs ...string) []string {
	var specs []string
	used := map[string]bool{}
	for _, d := range mustDirs {
		specs = append(specs, "dir "+d)
		for p := d; p != "." && p != ""; p = parentOf(p) {
			used[p] = true
		}
	}
	var dirs []string
	dirs = append(dirs, mustDirs...)
	for i := 0; i < n; i++ {
		parent := ""
		if len(dirs) > 0 && rng.Intn(3) > 0 {
			parent = dirs[rng.Intn(len(dirs))] + "/"
		}
		name := parent + genNames[rng.Intn(len(genNames))]
		if used[name] {
			continue
		}
		used[name] = true
		switch rng.Intn(6) {
		case 0, 1:
			specs = append(specs, "dir "+name)
			dirs = append(dirs, name)
		case 2:
			specs = append(specs, "file "+name+" content-of-"+strings.ReplaceAll(name, "/", "_"))
		default:
			specs = append(specs, "symlink "+name+" -> "+genPath(rng, 4))
		}
	}
	return specs
}

func parentOf(p string) string {
	i := strings.LastIndexByte(p, '/')
	if i < 0 {
		return ""
	}
	return p[:i]
}

// genPath returns a random container path of up to depth components.
func genPath(rng *rand.Rand, depth int) string {
	var b strings.Builder
	switch rng.Intn(4) {
	case 0:
		b.WriteString("/")
	case 1:
		b.WriteString("/../")
	}
	k := 1 + rng.Intn(depth)
	for i := 0; i < k; i++ {
		if i > 0 {
			b.WriteString("/")
			if rng.Intn(10) == 0 {
				b.WriteString("/")
			}
		}
		switch r := rng.Intn(10); {
		case r == 0:
			b.WriteString("..")
		case r == 1:
			b.WriteString(".")
		case r == 2:
			b.WriteString("nonexistent")
		default:
			b.WriteString(genNames[rng.Intn(len(genNames))])
		}
	}
	if rng.Intn(8) == 0 {
		b.WriteString("/")
	}
	return b.String()
}
