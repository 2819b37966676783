package vfs

import (
	"math/rand"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/containerd/containerd/v2/core/mount"

	"github.com/buildkit-cacerts/buildkit-cacerts/internal/treespec"
)

// fuzzWorld is a random root with two binds and a lowerdir-only overlay.
type fuzzWorld struct {
	sb      *sandbox
	fsys    *FS
	allowed []string // host directories results may lie in
}

func newFuzzWorld(t testing.TB, seed int64, opts []Option) *fuzzWorld {
	rng := rand.New(rand.NewSource(seed))
	sb := newSandbox(t, genTree(rng, 50, "m1", "m2", "ov")...)
	s1, s2 := sb.path("s1"), sb.path("s2")
	treespec.Build(t, s1, genTree(rng, 20)...)
	treespec.Build(t, s2, genTree(rng, 20)...)
	layers := treespec.Layers(t, sb.path("layers"),
		append(genTree(rng, 15, "d"), "file wa a"),
		append(genTree(rng, 15, "d"), "whiteout wa", "opaque d user"),
	)
	fsys := mustNew(t, bindSpec("/", sb.root, false), []Spec{
		bindSpec("/m1", s1, false),
		bindSpec("/m2", s2, true),
		lowerSpec("/ov", true, layers[1], layers[0]),
		{Dest: "/m1/t", Mounts: []mount.Mount{{Type: "tmpfs", Source: "tmpfs"}}},
		bindSpec("/m1/t/x/y", s2, false),
		bindSpec("/missing/a/b", s1, true),
	}, opts...)
	return &fuzzWorld{sb: sb, fsys: fsys, allowed: []string{sb.root, s1, s2, layers[0], layers[1]}}
}

// FuzzResolve resolves and writes random paths in random trees: no panic,
// no result outside the mount sources, the host canary unchanged.
func FuzzResolve(f *testing.F) {
	var worlds []*fuzzWorld
	for i := int64(0); i < 4; i++ {
		var opts []Option
		if i%2 == 1 {
			opts = []Option{WithoutOpenat2()}
		}
		worlds = append(worlds, newFuzzWorld(f, i, opts))
	}
	rng := rand.New(rand.NewSource(99))
	for i := 0; i < 64; i++ {
		f.Add(uint8(i), genPath(rng, 6), uint8(rng.Intn(256)))
	}
	f.Add(uint8(0), "/nonexistent/../../../../outside", uint8(0))
	f.Add(uint8(1), strings.Repeat("../", 30)+"m1/../ov/d/..", uint8(3))
	f.Add(uint8(2), "/m1/t/x/y/../../x/y/a", uint8(1))
	f.Add(uint8(3), "/missing/a/../a/b/m1", uint8(4))
	f.Fuzz(func(t *testing.T, world uint8, unsafePath string, op uint8) {
		w := worlds[int(world)%len(worlds)]
		fsys := w.fsys
		switch op % 8 {
		case 0:
			p, m, err := fsys.EvalSymlinks(unsafePath)
			if err == nil && (p != path.Clean(p) || !path.IsAbs(p) || m == nil) {
				t.Fatalf("EvalSymlinks(%q) = %q, %v", unsafePath, p, m)
			}
		case 1, 2:
			f, err := fsys.resolve(unsafePath, op%8 == 1)
			if err == nil && f.n != nil {
				host, rerr := os.Readlink(procFdPath(f.n.fd))
				f.n.close()
				if rerr != nil {
					t.Fatal(rerr)
				}
				if !under(host, w.allowed) {
					t.Fatalf("resolve(%q) reached host %q", unsafePath, host)
				}
			}
		case 3:
			fsys.ReadFileLimit(unsafePath, 1<<16)
		case 4:
			fsys.WriteFile(unsafePath, []byte("fuzz"), 0o644)
		case 5:
			fsys.MkdirAll(unsafePath, 0o755)
		case 6:
			fsys.Symlink(unsafePath, "/m1/../fuzzlink"+strconv.Itoa(int(op)))
			fsys.Remove(unsafePath)
		case 7:
			fsys.Lchtimes(unsafePath, time.Unix(1, 0), time.Unix(1, 0))
			fsys.Chmod(unsafePath, 0o755)
		}
		if op%8 >= 4 {
			w.sb.canary.Check(t)
		}
	})
}

func under(p string, dirs []string) bool {
	for _, d := range dirs {
		if p == d || strings.HasPrefix(p, d+string(filepath.Separator)) {
			return true
		}
	}
	return false
}
