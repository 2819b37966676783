package cacerts

import (
	"io/fs"
	"path/filepath"
	"slices"
	"testing"

	"github.com/buildkit-cacerts/buildkit-cacerts/internal/treespec"
)

// TestGlobMatchesFSGlob: the names-only glob finds exactly what fs.Glob
// finds on the vfs view, as container paths, for every certifi pattern and a
// few harder ones.
func TestGlobMatchesFSGlob(t *testing.T) {
	root := filepath.Join(t.TempDir(), "root")
	treespec.Build(t, root,
		"file usr/lib/python3.11/site-packages/certifi/cacert.pem A",
		"dir usr/lib/python3.12/site-packages",
		"dir usr/lib/python3/dist-packages",
		"file usr/lib/python3x not-a-dir",
		"symlink usr/lib/python3.9 -> python3.11",
		"symlink usr/local/lib/python3.13/site-packages/certifi/cacert.pem -> /nowhere",
		"file usr/local/lib/python3.10/dist-packages/certifi/cacert.pem B",
		"file usr/local/lib/python3.10/site-packages/pip/_vendor/certifi/cacert.pem C",
		"dir usr/lib/other",
	)
	raw := openVFS(t, root)
	fsys := View(raw)
	patterns := []string{
		"usr/lib/python3*/site-packages/certifi/cacert.pem",
		"usr/local/lib/python3*/site-packages/certifi/cacert.pem",
		"usr/local/lib/python3*/dist-packages/certifi/cacert.pem",
		"usr/local/lib/python3*/site-packages/pip/_vendor/certifi/cacert.pem",
		"usr/lib/python3.1?",
		"usr/lib/*/site-packages",
		"usr/*/python3*/site-packages", // two wildcards: fs.Glob
		"usr/missing/python3*/x",
		"usr/lib/python3x/*",
	}
	for _, p := range patterns {
		names, werr := fs.Glob(raw, p)
		var want []string
		for _, n := range names {
			want = append(want, "/"+n)
		}
		got, gerr := glob(fsys, "/"+p)
		if (werr == nil) != (gerr == nil) || !slices.Equal(got, want) {
			t.Errorf("glob(%q) = %q, %v; fs.Glob = %q, %v", p, got, gerr, want, werr)
		}
	}
	if _, err := glob(fsys, "/usr/lib/[python3"); err == nil {
		t.Error("bad pattern: no error")
	}
}
