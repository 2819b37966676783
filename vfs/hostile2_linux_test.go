package vfs

import (
	"errors"
	"io/fs"
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

	"github.com/buildkit-cacerts/buildkit-cacerts/internal/treespec"
)

func init() {
	hostileCases = append(hostileCases, hostileCases2...)
}

// specialTypes checks FIFO and socket (and, as root, devices) at the
// bundle and as a path component: never opened (a FIFO open would hang).
func specialTypes(t *testing.T, opts []Option, devices bool) {
	specs := []string{"fifo etc/ssl/certs/fifo", "sock etc/ssl/certs/sock", "fifo etc/fifodir"}
	if devices {
		specs = append(specs, "char etc/ssl/certs/null 1 3", "block etc/ssl/certs/blk 7 0", "char etc/ssl/certs/tty 5 0")
	}
	sb := newSandbox(t, specs...)
	fsys := mustNew(t, bindSpec("/", sb.root, false), nil, opts...)
	done := make(chan struct{})
	go func() {
		defer close(done)
		es, _ := fsys.ReadDir("etc/ssl/certs")
		for _, e := range es {
			p := "/etc/ssl/certs/" + e.Name()
			_, err := fsys.ReadFileLimit(p, 1<<20)
			wantErr(t, "read "+p, err, ErrNotRegular)
			wantErr(t, "write "+p, fsys.WriteFile(p, []byte("x"), 0o644), ErrNotRegular)
			wantErr(t, "overwrite "+p, fsys.Overwrite(p, []byte("x")), ErrNotInPlace)
			f, err := fsys.Open(p[1:])
			if err != nil {
				t.Errorf("open %s: %v", p, err)
				continue
			}
			_, err = f.Read(make([]byte, 1))
			wantErr(t, "Open+Read "+p, err, ErrNotRegular)
			f.Close()
		}
		_, err := fsys.ReadFileLimit("/etc/fifodir/x", 10)
		wantErr(t, "fifo as component", err, syscall.ENOTDIR)
		wantErr(t, "write under fifo", fsys.WriteFile("/etc/fifodir/x", nil, 0o644), syscall.ENOTDIR)
		wantErr(t, "overwrite under fifo", fsys.Overwrite("/etc/fifodir/x", nil), syscall.ENOTDIR)
	}()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("hung on a special file")
	}
}

var hostileCases2 = []hostileCase{
	{name: "12-special-files", run: func(t *testing.T, opts []Option) { specialTypes(t, opts, false) }},
	{name: "12-devices", root: true, run: func(t *testing.T, opts []Option) { specialTypes(t, opts, true) }},
	{name: "13-huge-bundles", run: func(t *testing.T, opts []Option) {
		sb := newSandbox(t, "dir etc/ssl/certs")
		for name, size := range map[string]int64{"big.crt": 100 << 20, "sparse.crt": 10 << 30} {
			f, err := os.Create(filepath.Join(sb.root, "etc/ssl/certs", name))
			if err != nil {
				t.Fatal(err)
			}
			if err := f.Truncate(size); err != nil {
				t.Fatal(err)
			}
			f.Close()
		}
		line := strings.Repeat("A", 5<<20)
		if err := os.WriteFile(filepath.Join(sb.root, "etc/ssl/certs/line.crt"), []byte(line), 0o644); err != nil {
			t.Fatal(err)
		}
		fsys := mustNew(t, bindSpec("/", sb.root, false), nil, append(opts, WithMaxReadFile(6<<20))...)
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		for _, name := range []string{"big.crt", "sparse.crt", "line.crt"} {
			_, err := fsys.ReadFileLimit("/etc/ssl/certs/"+name, 1<<20)
			wantErr(t, name, err, ErrTooLarge)
			_, err = fsys.ReadFile("etc/ssl/certs/" + name)
			wantErr(t, "ReadFile "+name, err, ErrTooLarge, nil)
		}
		runtime.ReadMemStats(&after)
		if d := after.TotalAlloc - before.TotalAlloc; d > 6<<20+1<<20 {
			t.Errorf("refusing allocated %d bytes", d)
		}
	}},
	{name: "14-hardlinked-bundle", run: func(t *testing.T, opts []Option) {
		sb := newSandbox(t, "file etc/ssl/certs/ca-certificates.crt BASE", "hardlink other-snapshot -> etc/ssl/certs/ca-certificates.crt")
		fsys := mustNew(t, bindSpec("/", sb.root, false), nil, opts...)
		wantErr(t, "overwrite", fsys.Overwrite("/etc/ssl/certs/ca-certificates.crt", []byte("NEW")), ErrNotInPlace)
		if err := fsys.WriteFile("/etc/ssl/certs/ca-certificates.crt", []byte("NEW"), 0o644); err != nil {
			t.Fatal(err)
		}
		if b, _ := os.ReadFile(filepath.Join(sb.root, "other-snapshot")); string(b) != "BASE" {
			t.Errorf("other link sees %q: written in place", b)
		}
		if st := lstatHost(t, filepath.Join(sb.root, "other-snapshot")); st.Nlink != 1 {
			t.Errorf("nlink %d", st.Nlink)
		}
	}},
	{name: "15-huge-directory", run: func(t *testing.T, opts []Option) {
		sb := newSandbox(t, "dir etc/ssl/certs")
		for i := 0; i < 1500; i++ {
			if err := os.WriteFile(filepath.Join(sb.root, "etc/ssl/certs", "c"+strconv.Itoa(i)), nil, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		fsys := mustNew(t, bindSpec("/", sb.root, false), nil, append(opts, WithMaxDirEntries(1000))...)
		start := time.Now()
		_, err := fsys.ReadDir("etc/ssl/certs")
		wantErr(t, "readdir", err, ErrDirTooLarge)
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("refusal took %v", d)
		}
		fsys2 := mustNew(t, bindSpec("/", sb.root, false), nil, opts...)
		if es, err := fsys2.ReadDir("etc/ssl/certs"); err != nil || len(es) != 1500 {
			t.Errorf("readdir under the limit: %d, %v", len(es), err)
		}
	}},
	{name: "16-create-over-whiteout-raw-overlay", root: true, run: func(t *testing.T, opts []Option) {
		sb := newSandbox(t)
		lower, upper, work := sb.path("lower"), sb.path("upper"), sb.path("work")
		treespec.Build(t, lower, "file etc/ssl/certs/old.pem OLD", "file etc/ssl/certs/ca-certificates.crt LOWER")
		treespec.Build(t, upper, "dir etc/ssl", "whiteout etc/ssl/certs")
		os.MkdirAll(work, 0o755)
		guard(t, lower)
		before := openFDs(t)
		root := Spec{Dest: "/", Mounts: []mount.Mount{{Type: "overlay", Source: "overlay",
			Options: []string{"lowerdir=" + lower, "upperdir=" + upper, "workdir=" + work}}}}
		fsys, err := New(t.Context(), root, nil, opts...)
		if err != nil {
			t.Fatal(err)
		}
		_, err = readStr(fsys, "/etc/ssl/certs/ca-certificates.crt")
		wantErr(t, "whited-out bundle", err, fs.ErrNotExist)
		if c, err := fsys.MkdirAll("/etc/ssl/certs", 0o755); err != nil || c != "/etc/ssl/certs" {
			t.Fatalf("MkdirAll over whiteout = %q, %v", c, err)
		}
		if es, err := fsys.ReadDir("etc/ssl/certs"); err != nil || len(es) != 0 {
			t.Errorf("new directory over a whiteout shows %v, %v (want opaque, empty)", es, err)
		}
		buf := make([]byte, 4)
		if n, err := unix.Lgetxattr(filepath.Join(upper, "etc/ssl/certs"), "trusted.overlay.opaque", buf); err != nil || string(buf[:n]) != "y" {
			t.Errorf("kernel did not make it opaque: %q %v", buf[:n], err)
		}
		if err := fsys.Close(); err != nil {
			t.Fatal(err)
		}
		for fd := range openFDs(t) {
			if !before[fd] {
				t.Errorf("fd %s left open after Close (the detached overlay stays mounted)", fd)
			}
		}
	}},
	{name: "16-17-18-whiteouts-and-opaque", run: func(t *testing.T, opts []Option) {
		sb := newSandbox(t, "dir from")
		layers := treespec.Layers(t, sb.path("layers"),
			[]string{"file etc/ssl/certs/ca-certificates.crt L0", "file etc/ssl/certs/only-l0 x", "file etc/pki/bundle L0", "file usr/b L0"},
			[]string{"whiteout etc/ssl/certs", "file etc/pki/keep L1", "opaque etc/pki user", "whiteout usr/b"},
			[]string{"file etc/ssl/certs/new L2"},
		)
		guard(t, layers...)
		fsys := mustNew(t, bindSpec("/", sb.root, false), []Spec{lowerSpec("/from", true, layers[2], layers[1], layers[0])}, opts...)
		for _, p := range []string{"/from/etc/ssl/certs/ca-certificates.crt", "/from/etc/ssl/certs/only-l0", "/from/etc/pki/bundle", "/from/usr/b"} {
			_, err := readStr(fsys, p)
			wantErr(t, p, err, fs.ErrNotExist)
		}
		if s, _ := readStr(fsys, "/from/etc/ssl/certs/new"); s != "L2" {
			t.Errorf("top layer entry: %q", s)
		}
		es, _ := fsys.ReadDir("from/etc/ssl/certs")
		if len(es) != 1 {
			t.Errorf("whited-out dir lists %v", es)
		}
		es, _ = fsys.ReadDir("from/usr")
		if len(es) != 0 {
			t.Errorf("whiteout listed: %v", es)
		}
		wantErr(t, "write into overlay", fsys.WriteFile("/from/usr/b", nil, 0o644), ErrNotRootMount)
	}},
	{name: "19-userxattr-and-trusted-fail-closed", root: true, run: func(t *testing.T, opts []Option) {
		sb := newSandbox(t, "dir from")
		layers := treespec.Layers(t, sb.path("layers"),
			[]string{"file d/hidden h"},
			[]string{"opaque d", "file d/shown s"},
		)
		// trusted.overlay.opaque is honoured as root...
		fsys := mustNew(t, bindSpec("/", sb.root, false), []Spec{lowerSpec("/from", false, layers[1], layers[0])}, opts...)
		_, err := readStr(fsys, "/from/d/hidden")
		wantErr(t, "trusted opaque", err, fs.ErrNotExist)
		// ... and ignored under userxattr, as the kernel does.
		fsysU := mustNew(t, bindSpec("/", sb.root, false), []Spec{lowerSpec("/from", true, layers[1], layers[0])}, opts...)
		if s, _ := readStr(fsysU, "/from/d/hidden"); s != "h" {
			t.Errorf("userxattr read %q", s)
		}
		// Without CAP_SYS_ADMIN trusted.* reads as absent: New fails closed.
		errc := make(chan error)
		go func() {
			runtime.LockOSThread() // never unlocked: the thread dies with this goroutine
			hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
			var data [2]unix.CapUserData
			if err := unix.Capget(&hdr, &data[0]); err != nil {
				errc <- err
				return
			}
			data[0].Effective &^= 1 << unix.CAP_SYS_ADMIN
			if err := unix.Capset(&hdr, &data[0]); err != nil {
				errc <- err
				return
			}
			f, err := New(t.Context(), bindSpec("/", sb.root, false), []Spec{lowerSpec("/from", false, layers[1], layers[0])}, opts...)
			if err == nil {
				f.Close()
				err = errors.New("New succeeded without CAP_SYS_ADMIN")
			} else {
				err = nil
			}
			errc <- err
		}()
		if err := <-errc; err != nil {
			t.Error(err)
		}
	}},
	{name: "20-xattr-whiteouts", run: func(t *testing.T, opts []Option) {
		sb := newSandbox(t, "dir from")
		layers := treespec.Layers(t, sb.path("layers"),
			[]string{"file x/gone g", "file plain/kept k"},
			[]string{"opaque x x user", "xwhiteout x/gone user", "dir plain", "xwhiteout plain/kept user"},
		)
		fsys := mustNew(t, bindSpec("/", sb.root, false), []Spec{lowerSpec("/from", true, layers[1], layers[0])}, opts...)
		_, err := readStr(fsys, "/from/x/gone")
		wantErr(t, "xattr whiteout in opaque=x dir", err, fs.ErrNotExist)
		if s, err := readStr(fsys, "/from/plain/kept"); s != "" || err != nil {
			t.Errorf("xattr whiteout without marker should read as an empty file: %q %v", s, err)
		}
		es, _ := fsys.ReadDir("from/x")
		if len(es) != 0 {
			t.Errorf("listed %v", es)
		}
	}},
	{name: "21-redirect-metacopy-refused", run: func(t *testing.T, opts []Option) {
		sb := newSandbox(t, "dir from")
		layers := treespec.Layers(t, sb.path("layers"),
			[]string{"file real/data secret-lower", "file meta full"},
			[]string{"dir redir xattr=user.overlay.redirect=/real", "file meta \"\" xattr=user.overlay.metacopy="},
		)
		fsys := mustNew(t, bindSpec("/", sb.root, false), []Spec{lowerSpec("/from", true, layers[1], layers[0])}, opts...)
		_, err := readStr(fsys, "/from/redir/data")
		wantErr(t, "redirect", err, ErrOverlayFeature)
		_, err = readStr(fsys, "/from/meta")
		wantErr(t, "metacopy", err, ErrOverlayFeature)
	}},
	{name: "22-mount-at-cert-path", run: func(t *testing.T, opts []Option) {
		sb := newSandbox(t, "dir etc/ssl/certs", "dir run/secrets", "dir cache")
		cache := sb.path("cache")
		treespec.Build(t, cache, "file ca-certificates.crt CACHE")
		secret := sb.path("secret")
		treespec.Build(t, sb.dir, "file secret TOKEN")
		guard(t, cache)
		fsys := mustNew(t, bindSpec("/", sb.root, false), []Spec{
			bindSpec("/etc/ssl/certs", cache, false),
			bindSpec("/run/secrets/token", secret, true),
		}, opts...)
		for _, p := range []string{"/etc/ssl/certs/ca-certificates.crt", "/etc/ssl/certs/new.pem", "/run/secrets/token"} {
			wantErr(t, "write "+p, fsys.WriteFile(p, []byte("x"), 0o644), ErrNotRootMount)
			if p != "/etc/ssl/certs/new.pem" {
				wantErr(t, "overwrite "+p, fsys.Overwrite(p, []byte("x")), ErrNotRootMount)
			}
			wantErr(t, "chtimes "+p, fsys.Lchtimes(p, time.Unix(1, 0), time.Unix(1, 0)), ErrNotRootMount, fs.ErrNotExist)
		}
		_, err := fsys.MkdirAll("/etc/ssl/certs/sub", 0o755)
		wantErr(t, "mkdir", err, ErrNotRootMount)
		wantErr(t, "remove", fsys.Remove("/etc/ssl/certs/ca-certificates.crt"), ErrNotRootMount)
		wantErr(t, "symlink", fsys.Symlink("x", "/etc/ssl/certs/l"), ErrNotRootMount)
		wantErr(t, "chmod", fsys.Chmod("/etc/ssl/certs/ca-certificates.crt", 0o777), ErrNotRootMount)
		wantErr(t, "chown", fsys.Lchown("/etc/ssl/certs", 0, 0), ErrNotRootMount)
		wantErr(t, "remove mount point", fsys.Remove("/run/secrets/token"), ErrNotRootMount)
		if s, _ := os.ReadFile(secret); string(s) != "TOKEN" {
			t.Errorf("secret changed")
		}
	}},
	{name: "22-mount-destination-through-escaping-links", run: func(t *testing.T, opts []Option) {
		sb := newSandbox(t, "dir host/etc")
		treespec.Build(t, sb.root,
			"symlink cache -> ../../../../host/etc",
			"symlink abs -> "+sb.path("host/etc"),
		)
		src := sb.path("src")
		treespec.Build(t, src, "file f mounted")
		guard(t, src)
		fsys := mustNew(t, bindSpec("/", sb.root, false), []Spec{
			bindSpec("/cache/x", src, false),
			bindSpec("/abs", src, true),
		}, opts...)
		var dests []string
		for _, m := range fsys.Mounts() {
			dests = append(dests, m.Dest)
		}
		sort.Strings(dests)
		want := "/:/host/etc/x:" + sb.path("host/etc")
		if got := strings.Join(dests, ":"); got != want {
			t.Errorf("mount table %s, want %s (destinations resolved inside the container)", got, want)
		}
		if s, err := readStr(fsys, "/cache/x/f"); s != "mounted" {
			t.Errorf("read through the clamped destination: %q %v", s, err)
		}
		wantErr(t, "write under the bind", fsys.WriteFile("/cache/x/g", []byte("x"), 0o644), ErrNotRootMount)
	}},
	{name: "23-link-into-mount-or-tmpfs", run: func(t *testing.T, opts []Option) {
		sb := newSandbox(t, "dir etc/ssl", "symlink etc/ssl/certs -> /cache/certs", "symlink etc/pki -> /dev/shm/pki", "dir cache", "dir dev/shm")
		cache := sb.path("cache")
		treespec.Build(t, cache, "dir certs")
		guard(t, cache)
		fsys := mustNew(t, bindSpec("/", sb.root, false), []Spec{
			bindSpec("/cache", cache, false),
			{Dest: "/dev/shm", Mounts: []mount.Mount{{Type: "tmpfs", Source: "tmpfs"}}},
		}, opts...)
		p, m, err := fsys.EvalSymlinks("/etc/ssl/certs")
		if err != nil || p != "/cache/certs" || m.IsRoot() || m.Dest != "/cache" {
			t.Errorf("EvalSymlinks = %q %+v %v", p, m, err)
		}
		wantErr(t, "write into cache", fsys.WriteFile("/etc/ssl/certs/ca.pem", []byte("x"), 0o644), ErrNotRootMount)
		_, _, err = fsys.EvalSymlinks("/etc/pki/tls")
		wantErr(t, "into tmpfs", err, ErrOpaqueMount)
		wantErr(t, "write into tmpfs", fsys.WriteFile("/etc/pki/tls/x", []byte("x"), 0o644), ErrOpaqueMount)
	}},
	{name: "25-created-dir-replaced-by-link-to-root", run: func(t *testing.T, opts []Option) {
		sb := newSandbox(t, "dir usr/local/share", "file keep k")
		fsys := mustNew(t, bindSpec("/", sb.root, false), nil, opts...)
		created, err := fsys.MkdirAll("/usr/local/share/ca-certificates", 0o755)
		if err != nil {
			t.Fatal(err)
		}
		// The process swaps our directory for a link to "/" (and one to the host's /).
		d := filepath.Join(sb.root, "usr/local/share/ca-certificates")
		os.Remove(d)
		os.Symlink("/", d)
		// The FS still holds the handle of the removed directory (its
		// directory cache): calls through it stay in that empty directory.
		if !fsys.cfg.noDirCache {
			wantErr(t, "remove through stale handle", fsys.Remove(created+"/keep"), fs.ErrNotExist)
			if _, err := os.Lstat(filepath.Join(sb.root, "keep")); err != nil {
				t.Errorf("container's /keep removed through a stale handle: %v", err)
			}
		}
		// Something else changed the tree: the caller says so.
		fsys.Invalidate()
		fi, err := fsys.Lstat(created[1:])
		if err != nil || fi.Mode()&fs.ModeSymlink == 0 {
			t.Errorf("Lstat sees %v, %v", fi, err)
		}
		// Removing under it stays in the container; removing it removes the link.
		wantErr(t, "remove through link", fsys.Remove(created+"/keep"), nil)
		if _, err := os.Lstat(filepath.Join(sb.root, "keep")); err == nil {
			t.Errorf("container's /keep still there (the confined result is removing it)")
		}
		wantErr(t, "remove link", fsys.Remove(created), nil)
		if _, err := os.Lstat(d); err == nil {
			t.Errorf("link not removed")
		}
		os.Symlink(sb.path("host/etc"), d)
		wantErr(t, "remove through host link", fsys.Remove(created+"/shadow"), fs.ErrNotExist)
	}},
	{name: "26-cert-replaced-by-special", run: func(t *testing.T, opts []Option) {
		sb := newSandbox(t, "dir etc/ssl/certs", "file etc/ssl/certs/dir/inner x")
		fsys := mustNew(t, bindSpec("/", sb.root, false), nil, opts...)
		certs := filepath.Join(sb.root, "etc/ssl/certs")
		os.Symlink(sb.path("host/etc/shadow"), filepath.Join(certs, "ours-link.pem"))
		unix.Mkfifo(filepath.Join(certs, "ours-fifo.pem"), 0o644)
		for _, p := range []string{"ours-link.pem", "ours-fifo.pem"} {
			_, err := fsys.ReadFileLimit("/etc/ssl/certs/"+p, 1<<20)
			wantErr(t, "read "+p, err, fs.ErrNotExist, ErrNotRegular)
			fi, err := fsys.Lstat("etc/ssl/certs/" + p)
			if err != nil || fi.Mode().IsRegular() {
				t.Errorf("Lstat %s: %v %v", p, fi, err)
			}
			wantErr(t, "remove "+p, fsys.Remove("/etc/ssl/certs/"+p), nil)
		}
		wantErr(t, "remove non-empty dir", fsys.Remove("/etc/ssl/certs/dir"), syscall.ENOTEMPTY)
	}},
	{name: "27-parent-swapped-to-host-etc", run: func(t *testing.T, opts []Option) {
		sb := newSandbox(t, "dir etc/ssl/certs", "file etc/ssl/certs/ours x")
		fsys := mustNew(t, bindSpec("/", sb.root, false), nil, opts...)
		ssl := filepath.Join(sb.root, "etc/ssl")
		os.RemoveAll(ssl)
		os.Symlink(sb.path("host/etc"), ssl)
		ts := time.Unix(1000, 1)
		for _, p := range []string{"/etc/ssl", "/etc/ssl/shadow", "/etc/ssl/certs/ours"} {
			err := fsys.Lchtimes(p, ts, ts)
			if p == "/etc/ssl" {
				wantErr(t, "chtimes link itself", err, nil)
				continue
			}
			wantErr(t, "chtimes "+p, err, fs.ErrNotExist)
			wantErr(t, "chown "+p, fsys.Lchown(p, 0, 0), fs.ErrNotExist)
			wantErr(t, "chmod "+p, fsys.Chmod(p, 0o777), fs.ErrNotExist)
		}
	}},
	{name: "29-no-fd-leaks-all-cloexec", run: func(t *testing.T, opts []Option) {
		sb := newSandbox(t, "file etc/ssl/certs/ca-certificates.crt x")
		src := sb.path("src")
		treespec.Build(t, src, "file a a")
		layers := treespec.Layers(t, sb.path("layers"), []string{"file l l"}, []string{"file m m"})
		treespec.Build(t, sb.root, "dir m", "dir o")
		before := openFDs(t)
		fsys, err := New(t.Context(), bindSpec("/", sb.root, false), []Spec{bindSpec("/m", src, true), lowerSpec("/o", true, layers[1], layers[0])}, opts...)
		if err != nil {
			t.Fatal(err)
		}
		readStr(fsys, "/etc/ssl/certs/ca-certificates.crt")
		readStr(fsys, "/o/l")
		fsys.WriteFile("/etc/ssl/certs/ca-certificates.crt", []byte("y"), 0o644)
		fsys.Overwrite("/etc/ssl/certs/ca-certificates.crt", []byte("z"))
		fsys.ReadDir("o")
		for fd := range openFDs(t) {
			if before[fd] {
				continue
			}
			b, err := os.ReadFile("/proc/self/fdinfo/" + fd)
			if err != nil {
				continue
			}
			for _, line := range strings.Split(string(b), "\n") {
				if v, ok := strings.CutPrefix(line, "flags:"); ok {
					flags, _ := strconv.ParseUint(strings.TrimSpace(v), 8, 64)
					if flags&unix.O_CLOEXEC == 0 {
						t.Errorf("fd %s without O_CLOEXEC (flags %o)", fd, flags)
					}
				}
			}
		}
		if err := fsys.Close(); err != nil {
			t.Fatal(err)
		}
		after := openFDs(t)
		for fd := range after {
			if !before[fd] {
				target, _ := os.Readlink("/proc/self/fd/" + fd)
				if strings.HasPrefix(target, sb.dir) {
					t.Errorf("fd %s -> %s still open after Close", fd, target)
				}
			}
		}
	}},
	{name: "30-openat2-refused-by-seccomp", run: func(t *testing.T, opts []Option) {
		seccompFallback(t, opts)
	}},
	{name: "31-owner-of-created-files", root: true, run: func(t *testing.T, opts []Option) {
		sb := newSandbox(t, "dir etc/ssl/certs")
		fsys := mustNew(t, bindSpec("/", sb.root, false), nil, append(opts, WithRootOwner(100000, 100000))...)
		if err := fsys.WriteFile("/etc/ssl/certs/new.pem", []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := fsys.MkdirAll("/usr/local/share/ca-certificates", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := fsys.Symlink("new.pem", "/etc/ssl/certs/link.pem"); err != nil {
			t.Fatal(err)
		}
		for _, p := range []string{"etc/ssl/certs/new.pem", "usr/local/share", "usr/local/share/ca-certificates", "etc/ssl/certs/link.pem"} {
			if st := lstatHost(t, filepath.Join(sb.root, p)); st.Uid != 100000 || st.Gid != 100000 {
				t.Errorf("%s owned by %d:%d", p, st.Uid, st.Gid)
			}
		}
	}},
}

func openFDs(t *testing.T) map[string]bool {
	es, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]bool{}
	for _, e := range es {
		m[e.Name()] = true
	}
	return m
}
