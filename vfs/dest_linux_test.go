package vfs

import (
	"errors"
	"io/fs"
	"math/rand"
	"path"
	"syscall"
	"testing"
)

// TestResolveDestAgreesWithWalk resolves random mount destinations in
// random trees (links, files, binds, a tmpfs, a lowerdir overlay) and holds
// resolveDest to the walker's other modes: the result is a clean absolute
// path, and wherever EvalSymlinks resolves the path it is the same one
// (resolveDest differs only where a component is missing or cannot be
// looked into — a file, a tmpfs —, which it takes lexically as runc
// creates it).
func TestResolveDestAgreesWithWalk(t *testing.T) {
	n, same := 0, 0
	for seed := int64(0); seed < 4; seed++ {
		var opts []Option
		if seed%2 == 1 {
			opts = []Option{WithoutOpenat2()}
		}
		w := newFuzzWorld(t, seed, opts)
		rng := rand.New(rand.NewSource(seed + 1000))
		for i := 0; i < 1500; i++ {
			p := genPath(rng, 1+rng.Intn(8))
			if rng.Intn(4) == 0 {
				p += "/"
			}
			got, err := w.fsys.resolveDest(p)
			want, _, everr := w.fsys.EvalSymlinks(p)
			if err != nil {
				if everr == nil {
					t.Fatalf("resolveDest(%q): %v; EvalSymlinks gives %q", p, err, want)
				}
				continue
			}
			n++
			if !path.IsAbs(got) || path.Clean(got) != got {
				t.Fatalf("resolveDest(%q) = %q: not clean and absolute", p, got)
			}
			if everr == nil {
				same++
				if got != want {
					t.Fatalf("resolveDest(%q) = %q; EvalSymlinks gives %q", p, got, want)
				}
			} else if !errors.Is(everr, fs.ErrNotExist) && !errors.Is(everr, ErrOpaqueMount) && !errors.Is(everr, syscall.ENOTDIR) {
				t.Fatalf("resolveDest(%q) = %q; EvalSymlinks fails with %v", p, got, everr)
			}
		}
	}
	if same == 0 || n == same {
		t.Fatalf("%d destinations resolved, %d also by EvalSymlinks: the trees exercise neither or only one case", n, same)
	}
	t.Logf("%d destinations resolved, %d of them also by EvalSymlinks", n, same)
}
