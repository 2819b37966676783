package vfs

import (
	"errors"
	"fmt"
	"io/fs"
	"math/rand"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/containerd/containerd/v2/core/mount"
	"golang.org/x/sys/unix"

	"github.com/buildkit-cacerts/buildkit-cacerts/internal/testenv"
	"github.com/buildkit-cacerts/buildkit-cacerts/internal/treespec"
)

// nsThread runs functions on one OS thread in a private mount namespace
// (propagation private), so mounts made there are never seen by the host.
// The thread stays locked and dies with its goroutine.
type nsThread struct{ reqs chan func() }

func newNSThread(t *testing.T) *nsThread {
	t.Helper()
	ns := &nsThread{reqs: make(chan func())}
	ready := make(chan error)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread exits with us
		if err := unix.Unshare(unix.CLONE_NEWNS); err != nil {
			ready <- err
			return
		}
		if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
			ready <- err
			return
		}
		ready <- nil
		for f := range ns.reqs {
			f()
		}
	}()
	if err := <-ready; err != nil {
		t.Fatalf("private mount namespace: %v", err)
	}
	t.Cleanup(func() { close(ns.reqs) })
	return ns
}

func (ns *nsThread) do(f func()) {
	done := make(chan struct{})
	ns.reqs <- func() { defer close(done); f() }
	<-done
}

func procThreadFd(fd int) string { return "/proc/thread-self/fd/" + strconv.Itoa(fd) }

// assemble mounts specs onto root the way runc does: each destination is
// resolved inside the assembled tree (openat2 RESOLVE_IN_ROOT) and mounted
// on through its handle. Runs on the namespace thread.
func assemble(root string, specs []Spec) error {
	rootfd, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(rootfd)
	for _, s := range specs {
		fd, err := unix.Openat2(rootfd, s.Dest, &unix.OpenHow{Flags: unix.O_PATH | unix.O_CLOEXEC, Resolve: unix.RESOLVE_IN_ROOT})
		if err != nil {
			return fmt.Errorf("mount point %s: %w", s.Dest, err)
		}
		m := s.Mounts[0]
		target := procThreadFd(fd)
		switch m.Type {
		case "bind":
			src := m.Source
			if s.Selector != "" {
				src = filepath.Join(src, s.Selector)
			}
			err = unix.Mount(src, target, "", unix.MS_BIND|unix.MS_REC, "")
			if err == nil && s.Readonly {
				// The handle still names the covered directory: reopen
				// to reach the new mount.
				var fd2 int
				fd2, err = unix.Openat2(rootfd, s.Dest, &unix.OpenHow{Flags: unix.O_PATH | unix.O_CLOEXEC, Resolve: unix.RESOLVE_IN_ROOT})
				if err == nil {
					err = unix.Mount("", procThreadFd(fd2), "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY, "")
					unix.Close(fd2)
				}
			}
		case "overlay":
			err = unix.Mount("overlay", target, "overlay", unix.MS_RDONLY, strings.Join(m.Options, ","))
		default:
			err = unix.Mount(m.Source, target, m.Type, 0, "")
		}
		unix.Close(fd)
		if err != nil {
			return fmt.Errorf("mounting %s: %w", s.Dest, err)
		}
	}
	return nil
}

// kernelView answers lookups through the kernel on the assembled tree.
type kernelView struct {
	root   string
	rootfd int
	mnts   map[uint64]string // mount ID -> container mount point
}

type lookupResult struct {
	errno   syscall.Errno
	typ     uint32
	perm    uint32
	uid     uint32
	gid     uint32
	size    int64
	target  string
	content string
	path    string // canonical container path (follow only)
	mount   string // container mount point holding it (follow only)
}

func (r lookupResult) String() string {
	if r.errno != 0 {
		return "errno " + r.errno.Error()
	}
	return fmt.Sprintf("type=%o perm=%o owner=%d:%d size=%d target=%q content=%q path=%q mount=%q",
		r.typ, r.perm, r.uid, r.gid, r.size, r.target, r.content, r.path, r.mount)
}

func errnoOf(err error) syscall.Errno {
	var e syscall.Errno
	if errors.As(err, &e) {
		return e
	}
	if err != nil {
		return syscall.Errno(0xffff)
	}
	return 0
}

func fromStat(st *syscall.Stat_t) lookupResult {
	r := lookupResult{typ: st.Mode & syscall.S_IFMT, perm: st.Mode & 0o7777, uid: st.Uid, gid: st.Gid}
	if r.typ == syscall.S_IFREG || r.typ == syscall.S_IFLNK {
		r.size = st.Size
	}
	return r
}

func (k *kernelView) lookup(p string, follow bool) lookupResult {
	flags := unix.O_PATH | unix.O_CLOEXEC
	if !follow {
		flags |= unix.O_NOFOLLOW
	}
	var fd int
	var err error
	for i := 0; i < 1000; i++ {
		// EAGAIN: a rename or mount somewhere on the machine raced the
		// ".." check of RESOLVE_IN_ROOT.
		fd, err = unix.Openat2(k.rootfd, p, &unix.OpenHow{Flags: uint64(flags), Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS})
		if err != unix.EAGAIN {
			break
		}
	}
	if err != nil {
		return lookupResult{errno: errnoOf(err)}
	}
	defer unix.Close(fd)
	var st syscall.Stat_t
	if err := syscall.Fstat(fd, &st); err != nil {
		return lookupResult{errno: errnoOf(err)}
	}
	r := fromStat(&st)
	switch r.typ {
	case syscall.S_IFLNK:
		r.target, _ = readLink(fd)
	case syscall.S_IFREG:
		b, err := os.ReadFile(procThreadFd(fd))
		if err != nil {
			r.content = "ERR " + err.Error()
		} else {
			r.content = string(b)
		}
	}
	if follow {
		hp, err := os.Readlink(procThreadFd(fd))
		if err != nil {
			r.path = "ERR " + err.Error()
		} else if hp == k.root {
			r.path = "/"
		} else {
			r.path = strings.TrimPrefix(hp, k.root)
		}
		var sx unix.Statx_t
		if err := unix.Statx(fd, "", unix.AT_EMPTY_PATH, unix.STATX_MNT_ID, &sx); err == nil {
			r.mount = k.mnts[sx.Mnt_id]
		}
	}
	return r
}

func vfsLookup(fsys *FS, p string, follow bool) lookupResult {
	f, err := fsys.resolve(p, follow)
	if err == nil && f.n == nil {
		err = &OpaqueMountError{Mount: &f.m.info}
	}
	if err != nil {
		return lookupResult{errno: errnoOf(err)}
	}
	defer f.n.close()
	r := fromStat(&f.n.st)
	switch r.typ {
	case syscall.S_IFLNK:
		r.target, _ = readLink(f.n.fd)
	case syscall.S_IFREG:
		b, err := readNode(f.n, 1<<20)
		if err != nil {
			r.content = "ERR " + err.Error()
		} else {
			r.content = string(b)
		}
	}
	if follow {
		r.path = f.path
		r.mount = f.m.info.Dest
	}
	return r
}

// diffWorld is a random root, binds (nested, read-only, behind a symlink,
// shadowed, a file) and a lowerdir-only overlay, as specs.
func diffWorld(t *testing.T, rng *rand.Rand) (*sandbox, []Spec) {
	sb := newSandbox(t, append(genTree(rng, 60, "m1", "m2", "mnt/target", "ov", "etc/ssl", "sel"),
		"symlink mlink -> ../mnt/./target",
		"file etc/ssl/file placeholder",
	)...)
	src := func(name string, n int, dirs ...string) string {
		d := sb.path(name)
		treespec.Build(t, d, genTree(rng, n, dirs...)...)
		return d
	}
	s1 := src("s1", 30, "nest")
	s2 := src("s2", 20)
	s3 := src("s3", 20)
	s4 := src("s4", 10)
	s5 := src("s5", 10)
	sel := src("sel", 20, "inner/deep")
	treespec.Build(t, sb.dir, "file filebind FILE-BIND mode=0600")
	layers := treespec.Layers(t, sb.path("layers"),
		append(genTree(rng, 25, "d", "o"), "file wa base", "dir wd/b", "file wd/b/f f", "file op/hidden h", "file wx wx"),
		append(genTree(rng, 15, "d", "o"), "whiteout wa", "whiteout wd/b", "opaque op", "file op/only-mid mid"),
		append(genTree(rng, 15, "d"), "file top top", "whiteout wx"),
	)
	specs := []Spec{
		bindSpec("/m1", s1, false),
		bindSpec("/m1/nest", s2, true),
		bindSpec("/mlink", s3, false),
		bindSpec("/etc/ssl/file", sb.path("filebind"), true),
		lowerSpec("/ov", false, layers[2], layers[1], layers[0]),
		bindSpec("/m2", s4, false),
		bindSpec("/m2", s5, true),
		{Dest: "/sel", Mounts: []mount.Mount{{Type: "bind", Source: sel}}, Selector: "inner"},
	}
	return sb, specs
}

func TestKernelDifferential(t *testing.T) {
	testenv.RequiresRoot(t)
	seeds := 12
	if testing.Short() {
		seeds = 2
	}
	for seed := 1; seed <= seeds; seed++ {
		t.Run("seed"+strconv.Itoa(seed), func(t *testing.T) {
			modes(t, func(t *testing.T, opts []Option) {
				kernelDifferential(t, int64(seed), opts)
			})
			t.Run("kernel-overlay", func(t *testing.T) {
				kernelDifferential(t, int64(seed), []Option{WithKernelOverlay()})
			})
		})
	}
}

func kernelDifferential(t *testing.T, seed int64, opts []Option) {
	rng := rand.New(rand.NewSource(seed))
	sb, specs := diffWorld(t, rng)
	fsys := mustNew(t, bindSpec("/", sb.root, false), specs, opts...)
	ns := newNSThread(t)
	var k *kernelView
	var setupErr error
	ns.do(func() { k, setupErr = setupKernel(sb.root, specs, fsys) })
	if setupErr != nil {
		t.Fatal(setupErr)
	}
	defer func() { ns.do(func() { unix.Close(k.rootfd) }) }()

	compareAll := func(stage string) int {
		var paths []string
		ns.do(func() { paths = kernelWalk(t, sb.root, fsys) })
		for i := 0; i < 400; i++ {
			paths = append(paths, genPath(rng, 7))
		}
		paths = append(paths, "/ov/wa", "/ov/wd/b/f", "/ov/op/only-mid", "/ov/op/hidden", "/ov/wx", "/mlink/../m1/nest/..", "/sel/..", "/etc/ssl/file/", "/m1/nest/../../m2")
		for _, p := range paths {
			for _, follow := range []bool{false, true} {
				var kr lookupResult
				ns.do(func() { kr = k.lookup(p, follow) })
				vr := vfsLookup(fsys, p, follow)
				if kr != vr {
					t.Errorf("%s: %q follow=%v:\n kernel %v\n vfs    %v", stage, p, follow, kr, vr)
				}
			}
		}
		return len(paths)
	}
	n := compareAll("before writes")

	// Writes through the vfs, then the kernel must see exactly them.
	var writes int
	for i := 0; i < 60; i++ {
		p := genPath(rng, 5)
		data := fmt.Sprintf("written-%d", i)
		var err error
		switch i % 5 {
		case 0, 1:
			err = fsys.WriteFile(p, []byte(data), 0o640)
		case 2:
			_, err = fsys.MkdirAll(p+"/new"+strconv.Itoa(i), 0o750)
		case 3:
			err = fsys.Symlink("/etc/ssl/file", p)
		case 4:
			ts := time.Unix(1500000000+int64(i), int64(i))
			if err = fsys.Lchtimes(p, ts, ts); err == nil {
				var st syscall.Stat_t
				ns.do(func() {
					fd, oerr := unix.Openat2(k.rootfd, p, &unix.OpenHow{Flags: unix.O_PATH | unix.O_NOFOLLOW | unix.O_CLOEXEC, Resolve: unix.RESOLVE_IN_ROOT})
					if oerr == nil {
						syscall.Fstat(fd, &st)
						unix.Close(fd)
					}
				})
				if st.Mtim.Sec != ts.Unix() || st.Mtim.Nsec != int64(i) {
					t.Errorf("Lchtimes(%q): kernel sees mtime %v", p, st.Mtim)
				}
			}
		}
		if err != nil {
			var kr lookupResult
			ns.do(func() { kr = k.lookup(p, true) })
			if errors.Is(err, ErrNotRootMount) && kr.errno == 0 && kr.mount == "/" && kr.typ == syscall.S_IFREG && !isMountPoint(fsys, kr.path) && i%5 <= 1 {
				t.Errorf("write %q refused as not in the root mount, but the kernel resolves it to %s in /", p, kr.path)
			}
			continue
		}
		writes++
		if i%5 <= 1 {
			var kr lookupResult
			ns.do(func() { kr = k.lookup(p, true) })
			if kr.content != data || kr.mount != "/" || kr.perm&0o777 == 0 {
				t.Errorf("WriteFile(%q): kernel sees %v", p, kr)
			}
		}
	}
	// Assemble again, from scratch, in a new namespace: the kernel must see
	// exactly what the vfs wrote.
	ns.do(func() { unix.Close(k.rootfd) })
	ns = newNSThread(t)
	ns.do(func() { k, setupErr = setupKernel(sb.root, specs, fsys) })
	if setupErr != nil {
		t.Fatal(setupErr)
	}
	compareAll("after writes, reassembled")
	t.Logf("seed %d: %d paths compared twice (follow and not) before and after %d writes", seed, n, writes)
}

// setupKernel assembles the tree and maps mount IDs to mount points. Runs
// on the namespace thread, so it must not call t.Fatal.
func setupKernel(root string, specs []Spec, fsys *FS) (*kernelView, error) {
	if err := assemble(root, specs); err != nil {
		return nil, fmt.Errorf("assemble: %w", err)
	}
	fd, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	k := &kernelView{root: root, rootfd: fd, mnts: map[uint64]string{}}
	for _, m := range append([]string{"/"}, mountDests(fsys)...) {
		mfd, err := unix.Openat2(fd, m, &unix.OpenHow{Flags: unix.O_PATH | unix.O_CLOEXEC, Resolve: unix.RESOLVE_IN_ROOT})
		if err != nil {
			return nil, fmt.Errorf("mount point %s: %w", m, err)
		}
		var sx unix.Statx_t
		err = unix.Statx(mfd, "", unix.AT_EMPTY_PATH, unix.STATX_MNT_ID, &sx)
		unix.Close(mfd)
		if err != nil {
			return nil, err
		}
		k.mnts[sx.Mnt_id] = m
	}
	return k, nil
}

func mountDests(fsys *FS) []string {
	var out []string
	for _, m := range fsys.Mounts() {
		if !m.IsRoot() {
			out = append(out, m.Dest)
		}
	}
	return out
}

func isMountPoint(fsys *FS, p string) bool {
	_, ok := fsys.mounts[p]
	return ok
}

// kernelWalk lists every path of the assembled tree (never descending a
// symlink) and checks the vfs lists each directory the same.
func kernelWalk(t *testing.T, root string, fsys *FS) []string {
	var out []string
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		rel, _ := filepath.Rel(root, p)
		name := filepath.ToSlash(rel)
		out = append(out, "/"+strings.TrimPrefix(name, "."))
		if d.IsDir() {
			kes, _ := os.ReadDir(p)
			var kn, vn []string
			for _, e := range kes {
				kn = append(kn, e.Name())
			}
			ves, verr := fsys.ReadDir(name)
			for _, e := range ves {
				vn = append(vn, e.Name())
			}
			sort.Strings(kn)
			if strings.Join(kn, "\x00") != strings.Join(vn, "\x00") {
				t.Errorf("readdir %s:\n kernel %q\n vfs    %q %v", name, kn, vn, verr)
			}
		}
		return nil
	})
	return out
}

// TestHostSubmountNotCrossed: a host mount under a mount source (not part
// of the container's mount table) is never crossed, with openat2
// (RESOLVE_NO_XDEV) and with the fallback (mount ID check) alike.
func TestHostSubmountNotCrossed(t *testing.T) {
	testenv.RequiresRoot(t)
	modes(t, func(t *testing.T, opts []Option) {
		sb := newSandbox(t, "dir m", "dir sub")
		src := sb.path("src")
		treespec.Build(t, src, "dir sub", "file sub/under-the-mount x")
		ns := newNSThread(t)
		var fsys *FS
		var err error
		ns.do(func() {
			if err = unix.Mount("tmpfs", filepath.Join(src, "sub"), "tmpfs", 0, ""); err != nil {
				return
			}
			if err = os.WriteFile(filepath.Join(src, "sub/on-tmpfs"), []byte("host"), 0o644); err != nil {
				return
			}
			if err = unix.Mount("tmpfs", filepath.Join(sb.root, "sub"), "tmpfs", 0, ""); err != nil {
				return
			}
			fsys, err = New(t.Context(), bindSpec("/", sb.root, false), []Spec{bindSpec("/m", src, false)}, opts...)
		})
		if err != nil {
			t.Fatal(err)
		}
		defer fsys.Close()
		for _, p := range []string{"/m/sub/on-tmpfs", "/sub/x"} {
			_, err := fsys.ReadFileLimit(p, 100)
			wantErr(t, p, err, syscall.EXDEV)
			wantErr(t, "write "+p, fsys.WriteFile(p, []byte("x"), 0o644), syscall.EXDEV)
		}
		// Lstat of the host mount point itself (one statx under the
		// parent's handle, which would report the tmpfs's root) and of a
		// name under it.
		for _, p := range []string{"m/sub", "sub", "m/sub/on-tmpfs"} {
			fi, err := fsys.Lstat(p)
			if err == nil {
				t.Errorf("Lstat(%s) crossed into the host mount: %v", p, fi.Mode())
			}
			wantErr(t, "lstat "+p, err, syscall.EXDEV)
		}
	})
}
