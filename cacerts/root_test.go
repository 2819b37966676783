package cacerts

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/buildkit-cacerts/buildkit-cacerts/internal/testenv"
	"github.com/buildkit-cacerts/buildkit-cacerts/internal/testimages"
)

// chrootRunner runs argv in root with chroot(8), a clean environment (PATH
// only) and no locale, as the sibling container does. Root only.
type chrootRunner struct {
	root string
	proc bool // mount a proc at /proc for the run (Java needs it)
	tmp  bool // a private tmpfs at /tmp, as the sibling container has
}

func (r chrootRunner) Run(ctx context.Context, argv []string) ([]byte, error) {
	if r.proc {
		p := filepath.Join(r.root, "proc")
		if out, err := exec.Command("mount", "-t", "proc", "proc", p).CombinedOutput(); err != nil {
			return out, err
		}
		defer exec.Command("umount", "-l", p).Run()
	}
	if r.tmp {
		p := filepath.Join(r.root, "tmp")
		if out, err := exec.Command("mount", "-t", "tmpfs", "tmpfs", p).CombinedOutput(); err != nil {
			return out, err
		}
		defer exec.Command("umount", "-l", p).Run()
	}
	cmd := exec.CommandContext(ctx, "chroot", append([]string{r.root}, argv...)...)
	cmd.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
	return cmd.CombinedOutput()
}

var _ Runner = chrootRunner{}

func suiteOf(image string) string {
	if strings.Contains(image, "trixie") {
		return "trixie"
	}
	return "bookworm"
}

// diffNoMtime compares two snapshots ignoring mtimes (and nlink).
func diffNoMtime(a, b map[string]string) []string {
	a2, b2 := map[string]string{}, map[string]string{}
	for k, v := range a {
		a2[k] = stripMtime(v)
	}
	for k, v := range b {
		b2[k] = stripMtime(v)
	}
	return diffSnap(a2, b2)
}

func diffSnap(a, b map[string]string) []string {
	var out []string
	for k, v := range a {
		if w, ok := b[k]; !ok {
			out = append(out, "only in first: "+k+" ("+v+")")
		} else if v != w {
			out = append(out, "differs: "+k+": "+v+" vs "+w)
		}
	}
	for k, w := range b {
		if _, ok := a[k]; !ok {
			out = append(out, "only in second: "+k+" ("+w+")")
		}
	}
	sort.Strings(out)
	return out
}

// TestDifferentialUpdateCACertificates proves the fast path leaves the same
// trust store as copying the anchors and running the real
// update-ca-certificates by chroot, and that revert restores every path of
// the original tree, mtimes included. The 1, 3 and 50 CA cases never
// combine (one anchor per CA); the 100 CA case uses the default threshold,
// so the tool gets the one combined anchor the fast path writes.
func TestDifferentialUpdateCACertificates(t *testing.T) {
	testenv.RequiresRoot(t)
	cases := []struct {
		n     int
		above int // Options.CombineAbove
	}{{1, -1}, {3, -1}, {50, -1}, {100, 0}}
	for _, image := range []string{testimages.DebianBookwormTLS, testimages.DebianTrixieTLS} {
		for _, tc := range cases {
			n := tc.n
			opt := Options{Method: MethodFast, CombineAbove: tc.above}
			combined := opt.combines(n)
			name := fmt.Sprintf("%s/%d", image, n)
			if combined {
				name += "/combined"
			}
			t.Run(name, func(t *testing.T) {
				set := testSet(t, genCAs(t, n)...)
				fast := testimages.Rootfs(t, image)
				tool := testimages.Rootfs(t, image)
				orig := snap(t, fast)
				if d := diffSnap(orig, snap(t, tool)); len(d) > 0 {
					t.Fatalf("two extractions differ:\n%s", strings.Join(d, "\n"))
				}

				fsys := openRoot(t, fast)
				start := time.Now()
				j, err := Install(context.Background(), fsys, detect(t, fsys), set, Exec{}, opt)
				if err != nil {
					t.Fatal(err)
				}
				fastTime := time.Since(start)

				anchors := map[string][]byte{}
				if combined {
					anchors[CombinedName] = concatPEM(set)
				} else {
					for _, c := range set.Certs {
						anchors[c.Name] = c.PEM
					}
				}
				for name, data := range anchors {
					p := filepath.Join(tool, "usr/local/share/ca-certificates", name+".crt")
					if err := os.WriteFile(p, data, 0o644); err != nil {
						t.Fatal(err)
					}
				}
				start = time.Now()
				out, err := chrootRunner{root: tool}.Run(context.Background(), []string{"update-ca-certificates"})
				if err != nil {
					t.Fatalf("update-ca-certificates: %v\n%s", err, out)
				}
				t.Logf("fast path %v, update-ca-certificates by chroot %v: %s", fastTime, time.Since(start), strings.TrimSpace(string(out)))

				if d := diffNoMtime(snap(t, fast), snap(t, tool)); len(d) > 0 {
					t.Errorf("fast path vs update-ca-certificates:\n%s", strings.Join(d, "\n"))
				}
				_, err = os.Lstat(filepath.Join(fast, combinedAnchor))
				if got := err == nil; got != combined {
					t.Errorf("combined anchor present: %v, want %v", got, combined)
				}
				if err := j.Revert(context.Background(), openRoot(t, fast)); err != nil {
					t.Fatal(err)
				}
				if d := diffSnap(orig, snap(t, fast)); len(d) > 0 {
					t.Errorf("tree after revert vs original:\n%s", strings.Join(d, "\n"))
				}
			})
		}
	}
}

// TestProcessChangesWinChroot runs real processes by chroot in a real
// Debian root, once without injection and once between install and revert,
// and compares the trees: equal in paths, types, contents, modes and owners,
// and in mtimes wherever the process did not touch the path.
func TestProcessChangesWinChroot(t *testing.T) {
	testenv.RequiresRoot(t)
	scenarios := []struct {
		name string
		argv []string
		deb  bool
	}{
		{name: "nothing", argv: []string{"true"}},
		{name: "update-ca-certificates", argv: []string{"update-ca-certificates"}},
		{name: "update-ca-certificates --fresh", argv: []string{"update-ca-certificates", "--fresh"}},
		{name: "reinstall ca-certificates", argv: []string{"dpkg", "-i", "/ca-certificates.deb"}, deb: true},
		{name: "remove ca-certificates", argv: []string{"dpkg", "--remove", "--force-depends", "ca-certificates"}},
		{name: "purge ca-certificates", argv: []string{"dpkg", "--purge", "--force-depends", "ca-certificates"}},
		{name: "write to the bundle", argv: []string{"sh", "-c", "echo '# appended by the process' >> /etc/ssl/certs/ca-certificates.crt"}},
		{name: "rm -rf /etc/ssl", argv: []string{"rm", "-rf", "/etc/ssl"}},
	}
	type run struct {
		image  string
		method Method
		cas    int
		only   []string // scenarios to run; all when empty
	}
	combined := DefaultCombineAbove + 4 // one combined anchor
	runs := []run{
		{testimages.DebianBookwormTLS, MethodAuto, 3, nil}, // fast
		{testimages.DebianTrixieTLS, MethodAuto, 3, nil},
		{testimages.DebianBookwormTLS, MethodCommand, 3, nil},
		// A combined anchor through what rebuilds the bundle or removes the
		// package; the other scenarios run with it in TestProcessChangesWinCombined.
		{testimages.DebianBookwormTLS, MethodAuto, combined, []string{"update-ca-certificates", "reinstall ca-certificates", "purge ca-certificates"}},
		{testimages.DebianTrixieTLS, MethodAuto, combined, []string{"update-ca-certificates"}},
		{testimages.DebianBookwormTLS, MethodCommand, combined, []string{"update-ca-certificates", "purge ca-certificates"}},
	}
	for _, r := range runs {
		image := r.image
		for _, sc := range scenarios {
			if len(r.only) > 0 && !slices.Contains(r.only, sc.name) {
				continue
			}
			name := image + "/" + r.method.String() + "/" + sc.name
			if r.cas > DefaultCombineAbove {
				name = image + "/" + r.method.String() + "/combined/" + sc.name
			}
			t.Run(name, func(t *testing.T) {
				set := testSet(t, genCAs(t, r.cas)...)
				plain := testimages.Rootfs(t, image)
				with := testimages.Rootfs(t, image)
				if sc.deb {
					deb := testimages.CACertsDeb(t, suiteOf(image))
					epoch := time.Unix(1704067200, 0)
					for _, r := range []string{plain, with} {
						copyFile(t, deb, filepath.Join(r, "ca-certificates.deb"))
						for _, p := range []string{filepath.Join(r, "ca-certificates.deb"), r} {
							if err := os.Chtimes(p, epoch, epoch); err != nil {
								t.Fatal(err)
							}
						}
					}
				}
				orig := snap(t, plain)
				run := func(root string) {
					out, err := chrootRunner{root: root}.Run(context.Background(), sc.argv)
					if err != nil {
						t.Fatalf("%v: %v\n%s", sc.argv, err, out)
					}
				}
				run(plain)

				fsys := openRoot(t, with)
				j, err := Install(context.Background(), fsys, detect(t, fsys), set, Exec{Runner: chrootRunner{root: with}}, Options{Method: r.method})
				if err != nil {
					t.Fatal(err)
				}
				t.Logf("method %s", j.Method())
				if r.cas > DefaultCombineAbove {
					if _, err := os.Lstat(filepath.Join(with, combinedAnchor)); err != nil {
						t.Fatalf("no combined anchor after install: %v", err)
					}
				}
				run(with)
				if err := j.Revert(context.Background(), openRoot(t, with)); err != nil {
					t.Fatal(err)
				}

				a, b := snap(t, plain), snap(t, with)
				for p := range a {
					if orig[p] != a[p] {
						// Touched by the process (in the run without
						// injection): compare without mtimes.
						if _, ok := b[p]; ok {
							a[p], b[p] = stripMtime(a[p]), stripMtime(b[p])
						}
					}
				}
				for _, p := range volatile(a, b) {
					delete(a, p)
					delete(b, p)
				}
				if d := diffSnap(a, b); len(d) > 0 {
					t.Errorf("with injection vs without, after revert:\n%s", strings.Join(d, "\n"))
				}
			})
		}
	}
}

// volatile lists paths whose content records when it was written (dpkg's
// log and its status backups), which differ between any two runs.
func volatile(a, b map[string]string) []string {
	var out []string
	for p := range a {
		if p == "var/log/dpkg.log" || p == "var/log/alternatives.log" {
			out = append(out, p)
		}
	}
	_ = b
	return out
}

func copyFile(t testing.TB, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestCommandPathChroot runs the real update-ca-certificates (and, on the
// Java image, its jks-keystore hook) by chroot through the command path, and
// checks the CAs landed and that revert, which never runs the tool, restores
// the original tree: every path, mtimes included.
func TestCommandPathChroot(t *testing.T) {
	testenv.RequiresRoot(t)
	for _, image := range []string{testimages.DebianBookwormTLS, testimages.DebianBookwormJava} {
		t.Run(image, func(t *testing.T) {
			set := testSet(t, genCAs(t, 2)...)
			root := testimages.Rootfs(t, image)
			orig := snap(t, root)
			fsys := openRoot(t, root)
			m := MethodAuto
			if image == testimages.DebianBookwormTLS {
				m = MethodCommand // no hooks there: force it
			}
			start := time.Now()
			j, err := Install(context.Background(), fsys, detect(t, fsys), set, Exec{Runner: chrootRunner{root: root, proc: true}}, Options{Method: m})
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("method %s in %v: %v", j.Method(), time.Since(start), j.Paths())
			if j.Method() != MethodCommand {
				t.Fatalf("method %s", j.Method())
			}
			bundle := readFile(t, filepath.Join(root, "etc/ssl/certs/ca-certificates.crt"))
			for _, c := range set.Certs {
				if countBlock(bundle, c.PEM) != 1 {
					t.Errorf("bundle lacks %s", c.Name)
				}
			}
			if err := j.Revert(context.Background(), openRoot(t, root)); err != nil {
				t.Fatal(err)
			}
			after := snap(t, root)
			if d := diffSnap(orig, after); len(d) > 0 {
				t.Errorf("tree after revert vs original:\n%s", strings.Join(d, "\n"))
			}
		})
	}
}

// TestOverlayLayerEmptyAfterRevert installs and reverts through a real
// kernel overlay, as BuildKit's pooled root is one, and then checks the
// upper layer the way BuildKit's overlay differ does: every entry left in it
// must equal the lower one in mode, owner, size and mtime to the nanosecond
// (and content, for files), directories in mode and owner; no whiteout. So
// the exec's layer, as committed, would be empty.
func TestOverlayLayerEmptyAfterRevert(t *testing.T) {
	testenv.RequiresRoot(t)
	cases := []struct {
		image string
		m     Method
		want  Method
		cas   int
	}{
		{testimages.DebianBookwormTLS, MethodFast, MethodFast, 3},
		{testimages.DebianBookwormTLS, MethodFast, MethodFast, DefaultCombineAbove + 4}, // combined
		{testimages.DebianBookwormTLS, MethodCommand, MethodCommand, 3},
		{testimages.DebianBookwormMin, MethodAuto, MethodGeneric, 3},
		{testimages.Busybox, MethodAuto, MethodGeneric, 3},
		{testimages.ScratchGo, MethodAuto, MethodGeneric, 3},
	}
	for _, tc := range cases {
		m := tc.m
		name := tc.image + "/" + m.String()
		if tc.cas > DefaultCombineAbove {
			name += "/combined"
		}
		t.Run(name, func(t *testing.T) {
			lower := testimages.Rootfs(t, tc.image)
			dir := t.TempDir()
			upper, work, merged := filepath.Join(dir, "upper"), filepath.Join(dir, "work"), filepath.Join(dir, "merged")
			for _, d := range []string{upper, work, merged} {
				if err := os.Mkdir(d, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			opts := "lowerdir=" + lower + ",upperdir=" + upper + ",workdir=" + work + ",index=off,redirect_dir=off"
			if out, err := exec.Command("mount", "-t", "overlay", "overlay", "-o", opts, merged).CombinedOutput(); err != nil {
				t.Skipf("overlay mount: %v: %s", err, out)
			}
			mounted := true
			umount := func() {
				if mounted {
					exec.Command("umount", merged).Run()
					mounted = false
				}
			}
			defer umount()

			set := testSet(t, genCAs(t, tc.cas)...)
			vfsys := openVFS(t, merged)
			fsys := View(vfsys)
			j, err := Install(context.Background(), fsys, detect(t, fsys), set, Exec{Runner: chrootRunner{root: merged}}, Options{Method: m})
			if err != nil {
				t.Fatal(err)
			}
			if j.Method() != tc.want {
				t.Fatalf("method %s, want %s", j.Method(), tc.want)
			}
			if ents, _ := os.ReadDir(filepath.Join(upper, "etc/ssl/certs")); len(ents) == 0 {
				t.Fatal("nothing reached the upper layer: the test would prove nothing")
			}
			fsys2 := openVFS(t, merged)
			if err := j.Revert(context.Background(), View(fsys2)); err != nil {
				t.Fatal(err)
			}
			vfsys.Close()
			fsys2.Close()
			umount()

			left := 0
			err = filepath.WalkDir(upper, func(p string, d os.DirEntry, err error) error {
				if err != nil || p == upper {
					return err
				}
				rel, _ := filepath.Rel(upper, p)
				left++
				var us, ls syscall.Stat_t
				if err := syscall.Lstat(p, &us); err != nil {
					return err
				}
				if us.Mode&syscall.S_IFMT == syscall.S_IFCHR && us.Rdev == 0 {
					t.Errorf("%s: whiteout left in the upper layer", rel)
					return nil
				}
				if err := syscall.Lstat(filepath.Join(lower, rel), &ls); err != nil {
					t.Errorf("%s: in the upper layer but not in the lower: %v", rel, err)
					return nil
				}
				if us.Mode != ls.Mode || us.Uid != ls.Uid || us.Gid != ls.Gid {
					t.Errorf("%s: mode/owner %o %d:%d, lower %o %d:%d", rel, us.Mode, us.Uid, us.Gid, ls.Mode, ls.Uid, ls.Gid)
				}
				if us.Mode&syscall.S_IFMT == syscall.S_IFDIR {
					return nil
				}
				if us.Size != ls.Size || us.Mtim != ls.Mtim {
					t.Errorf("%s: size/mtime %d %v, lower %d %v", rel, us.Size, us.Mtim, ls.Size, ls.Mtim)
				}
				switch us.Mode & syscall.S_IFMT {
				case syscall.S_IFREG:
					a, _ := os.ReadFile(p)
					b, _ := os.ReadFile(filepath.Join(lower, rel))
					if string(a) != string(b) {
						t.Errorf("%s: content differs from the lower", rel)
					}
				case syscall.S_IFLNK:
					a, _ := os.Readlink(p)
					b, _ := os.Readlink(filepath.Join(lower, rel))
					if a != b {
						t.Errorf("%s: link %q, lower %q", rel, a, b)
					}
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%d entries left in the upper layer, all equal to the lower", left)
		})
	}
}
