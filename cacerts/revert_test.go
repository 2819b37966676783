package cacerts

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/buildkit-cacerts/buildkit-cacerts/internal/treespec"
)

// replaceFile writes data to p through a new inode, as tools do.
func replaceFile(t testing.TB, p string, data []byte) {
	t.Helper()
	tmp := p + ".new"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, p); err != nil {
		t.Fatal(err)
	}
}

// fakeUpdate mimics update-ca-certificates on the host side of a test root:
// every local anchor gets its .pem link and the bundle is rebuilt from the
// conf certificates plus the local anchors in sort order.
func fakeUpdate(t testing.TB, root string) {
	t.Helper()
	conf := readFile(t, filepath.Join(root, "etc/ca-certificates.conf"))
	var bundle bytes.Buffer
	for _, line := range strings.Split(string(conf), "\n") {
		if line == "" || line[0] == '#' || line[0] == '!' {
			continue
		}
		bundle.Write(withNewline(readFile(t, filepath.Join(root, "usr/share/ca-certificates", line))))
	}
	local, _ := filepath.Glob(filepath.Join(root, "usr/local/share/ca-certificates/*.crt"))
	sort.Strings(local)
	for _, f := range local {
		bundle.Write(withNewline(readFile(t, f)))
		name := strings.TrimSuffix(filepath.Base(f), ".crt") + ".pem"
		link := filepath.Join(root, "etc/ssl/certs", name)
		os.Remove(link)
		if err := os.Symlink(strings.TrimPrefix(f, root), link); err != nil {
			t.Fatal(err)
		}
	}
	replaceFile(t, filepath.Join(root, "etc/ssl/certs/ca-certificates.crt"), bundle.Bytes())
}

func TestProcessChangesWin(t *testing.T) {
	host := hostCerts(t, 6)
	theirs := newCA(t, caOpt{cn: "Theirs"})
	set := testSet(t, genCAs(t, 2)...)
	bundlePath := "etc/ssl/certs/ca-certificates.crt"
	tests := []struct {
		name    string
		process func(t *testing.T, root string)
		// wantChanged lists paths the process changed, where only content and
		// type are compared between the two runs (not mtimes).
		wantChanged []string
	}{
		{name: "nothing", process: func(*testing.T, string) {}},
		{
			name: "appends to the bundle",
			process: func(t *testing.T, root string) {
				p := filepath.Join(root, bundlePath)
				replaceFile(t, p, append(readFile(t, p), theirs.pem...))
			},
			wantChanged: []string{bundlePath, "etc/ssl/certs"},
		},
		{
			name: "appends to the bundle in place",
			process: func(t *testing.T, root string) {
				f, err := os.OpenFile(filepath.Join(root, bundlePath), os.O_WRONLY|os.O_APPEND, 0)
				if err != nil {
					t.Fatal(err)
				}
				_, err = f.Write(theirs.pem)
				must(t, errors.Join(err, f.Close()))
			},
			wantChanged: []string{bundlePath},
		},
		{
			name: "adds an anchor and runs the update tool",
			process: func(t *testing.T, root string) {
				if err := os.WriteFile(filepath.Join(root, "usr/local/share/ca-certificates/theirs.crt"), theirs.pem, 0o644); err != nil {
					t.Fatal(err)
				}
				fakeUpdate(t, root)
			},
			wantChanged: []string{bundlePath, "etc/ssl/certs", "usr/local/share/ca-certificates", "usr/local/share/ca-certificates/theirs.crt", "etc/ssl/certs/theirs.pem"},
		},
		{
			name:        "deletes /etc/ssl",
			process:     func(t *testing.T, root string) { os.RemoveAll(filepath.Join(root, "etc/ssl")) },
			wantChanged: []string{"etc"},
		},
		{
			name: "removes the ca-certificates package",
			process: func(t *testing.T, root string) {
				// What dpkg --remove does to the paths we care about: the
				// md5sums go (.list stays until purge), postrm rmdirs the
				// anchor directory (which fails while our anchors are in it).
				os.Remove(filepath.Join(root, "var/lib/dpkg/info/ca-certificates.md5sums"))
				os.Remove(filepath.Join(root, "usr/local/share/ca-certificates"))
			},
			wantChanged: []string{"var/lib/dpkg/info", "usr/local/share"},
		},
		{
			name: "replaces our anchor with a FIFO",
			process: func(t *testing.T, root string) {
				p := filepath.Join(root, "usr/local/share/ca-certificates", set.Certs[0].Name+".crt")
				os.Remove(p)
				if err := syscall.Mkfifo(p, 0o644); err != nil {
					t.Fatal(err)
				}
			},
			wantChanged: []string{"usr/local/share/ca-certificates", "usr/local/share/ca-certificates/" + set.Certs[0].Name + ".crt"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			checkProcessChangesWin(t, host, set, Options{}, tc.process, tc.wantChanged)
		})
	}
}

// checkProcessChangesWin runs process on two equal Debian trees holding
// host, one without injection and one between Install(set, Exec{}, opt) and Revert,
// and checks the trees are then equal; mtimes are not compared for the paths
// in wantChanged, which the process changed.
func checkProcessChangesWin(t *testing.T, host map[string][]byte, set *Set, opt Options, process func(t *testing.T, root string), wantChanged []string) {
	t.Helper()
	// Without injection.
	plain := filepath.Join(t.TempDir(), "root")
	treespec.Build(t, plain, debianSpecs(t, host)...)
	// With injection: the same tree, copied with its times.
	with := filepath.Join(t.TempDir(), "root")
	treespec.Build(t, with, debianSpecs(t, host)...)
	copyTimes(t, plain, with)
	assertSame(t, "the two trees differ before the test", snap(t, plain), snap(t, with))

	process(t, plain)
	fsys := openRoot(t, with)
	j, err := Install(context.Background(), fsys, detect(t, fsys), set, Exec{}, opt)
	if err != nil {
		t.Fatal(err)
	}
	process(t, with)
	if err := j.Revert(context.Background(), openRoot(t, with)); err != nil {
		t.Fatal(err)
	}
	a, b := snap(t, plain), snap(t, with)
	for _, p := range wantChanged {
		if a[p] != "" && b[p] != "" {
			a[p], b[p] = stripMtime(a[p]), stripMtime(b[p])
		}
	}
	assertSame(t, "with injection vs without, after revert", a, b)
}

// stripMtime drops the mtime and nlink fields of a treespec description.
func stripMtime(desc string) string {
	var out []string
	for _, f := range strings.Fields(desc) {
		if strings.HasPrefix(f, "mtime=") || strings.HasPrefix(f, "nlink=") {
			continue
		}
		out = append(out, f)
	}
	return strings.Join(out, " ")
}

// copyTimes gives every entry of dst the times of the same path in src.
func copyTimes(t testing.TB, src, dst string) {
	t.Helper()
	var paths []string
	filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err == nil {
			paths = append(paths, p)
		}
		return nil
	})
	sort.Slice(paths, func(a, b int) bool { return len(paths[a]) > len(paths[b]) })
	for _, p := range paths {
		var st syscall.Stat_t
		if err := syscall.Lstat(p, &st); err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(src, p)
		ts := []unix.Timespec{{Sec: st.Atim.Sec, Nsec: st.Atim.Nsec}, {Sec: st.Mtim.Sec, Nsec: st.Mtim.Nsec}}
		if err := unix.UtimesNanoAt(unix.AT_FDCWD, filepath.Join(dst, rel), ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			t.Fatal(err)
		}
	}
}

// TestRevertAfterParentSwap: the process replaced a directory we created
// with a symlink to / and put a file at the root named like our bundle.
// Revert must not touch anything through the link.
func TestRevertAfterParentSwap(t *testing.T) {
	set := testSet(t, genCAs(t, 1)...)
	root := filepath.Join(t.TempDir(), "root")
	treespec.Build(t, root, "file app x mode=0755")
	fsys := openRoot(t, root)
	j, err := Install(context.Background(), fsys, detect(t, fsys), set, Exec{}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	certs := filepath.Join(root, "etc/ssl/certs")
	if err := os.RemoveAll(certs); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/", certs); err != nil {
		t.Fatal(err)
	}
	theirs := append([]byte("# theirs\n"), set.Certs[0].PEM...)
	if err := os.WriteFile(filepath.Join(root, "ca-certificates.crt"), theirs, 0o600); err != nil {
		t.Fatal(err)
	}
	before := snap(t, root)
	if err := j.Revert(context.Background(), openRoot(t, root)); err != nil {
		t.Fatal(err)
	}
	after := snap(t, root)
	for p := range before {
		if p != "." && p != "etc" && p != "etc/ssl" && before[p] != after[p] {
			t.Errorf("revert changed %s through the swapped directory", p)
		}
	}
}

func TestCommandPath(t *testing.T) {
	host := hostCerts(t, 4)
	set := testSet(t, genCAs(t, 2)...)
	hook := "file etc/ca-certificates/update.d/jks-keystore \"#!/bin/sh\\n\" mode=0755"

	t.Run("tool runs", func(t *testing.T) {
		root := filepath.Join(t.TempDir(), "root")
		treespec.Build(t, root, append(debianSpecs(t, host), hook, "dir etc/ssl/certs/java", "file etc/ssl/certs/java/cacerts \"\\xfe\\xed\\xfe\\xed\"")...)
		before := snap(t, root)
		run := runnerFunc(func(ctx context.Context, argv []string) ([]byte, error) {
			if argv[0] != "/usr/sbin/update-ca-certificates" {
				t.Errorf("argv %v", argv)
			}
			fakeUpdate(t, root)
			replaceFile(t, filepath.Join(root, "etc/ssl/certs/java/cacerts"), []byte("\xfe\xed\xfe\xed keystore with ours"))
			return []byte("2 added, 0 removed; done.\n"), nil
		})
		fsys := openRoot(t, root)
		j, err := Install(context.Background(), fsys, detect(t, fsys), set, Exec{Runner: run}, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if j.Method() != MethodCommand {
			t.Fatalf("method %s", j.Method())
		}
		if n := countBlock(readFile(t, filepath.Join(root, "etc/ssl/certs/ca-certificates.crt")), set.Certs[1].PEM); n != 1 {
			t.Errorf("bundle holds our CA %d times", n)
		}
		if err := j.Revert(context.Background(), openRoot(t, root)); err != nil {
			t.Fatal(err)
		}
		assertSame(t, "tree after revert", before, snap(t, root))
	})

	t.Run("tool fails", func(t *testing.T) {
		root := filepath.Join(t.TempDir(), "root")
		treespec.Build(t, root, append(debianSpecs(t, host), hook)...)
		before := snap(t, root)
		run := runnerFunc(func(ctx context.Context, argv []string) ([]byte, error) {
			fakeUpdate(t, root) // half done, then it fails
			return []byte("E: /etc/ca-certificates/update.d/jks-keystore exited with code 1.\n"), errors.New("exit status 1")
		})
		fsys := openRoot(t, root)
		_, err := Install(context.Background(), fsys, detect(t, fsys), set, Exec{Runner: run}, Options{})
		te, ie := (*ToolError)(nil), (*InstallError)(nil)
		if !errors.As(err, &te) || !bytes.Contains(te.Output, []byte("jks-keystore exited")) || !strings.Contains(err.Error(), "jks-keystore exited") {
			t.Fatalf("error %v does not carry the tool's output", err)
		}
		if !errors.As(err, &ie) || ie.Rollback != nil {
			t.Fatalf("error %v: want an InstallError, rolled back", err)
		}
		assertSame(t, "tree after failed tool", before, snap(t, root))
	})

	t.Run("tool cannot run", func(t *testing.T) {
		root := filepath.Join(t.TempDir(), "root")
		treespec.Build(t, root, append(debianSpecs(t, host), hook, "file bin/sh x mode=0644")...)
		called := false
		run := runnerFunc(func(context.Context, []string) ([]byte, error) { called = true; return nil, nil })
		fsys := openRoot(t, root)
		p, err := NewPlan(context.Background(), fsys, detect(t, fsys), set, Exec{Runner: run}, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if p.Method != MethodGeneric || !strings.Contains(p.Reason, "/bin/sh") {
			t.Errorf("method %s (%s), want generic because /bin/sh cannot run", p.Method, p.Reason)
		}
		if called {
			t.Error("runner called")
		}
	})
}

type runnerFunc func(ctx context.Context, argv []string) ([]byte, error)

func (f runnerFunc) Run(ctx context.Context, argv []string) ([]byte, error) { return f(ctx, argv) }

func TestSimulateRehash(t *testing.T) {
	d := func(b byte) (out [20]byte) { out[0] = b; return }
	tests := []struct {
		name    string
		files   []rehashFile
		links   []rehashLink
		want    map[int]string
		removed []int
	}{
		{name: "new bucket", files: []rehashFile{{"ours.pem", d(1)}}, want: map[int]string{0: "ours.pem"}},
		{
			name:  "existing link kept, ours next",
			files: []rehashFile{{"A.pem", d(1)}, {"ours.pem", d(2)}},
			links: []rehashLink{{"aabbccdd.0", 0, "A.pem"}},
			want:  map[int]string{0: "A.pem", 1: "ours.pem"},
		},
		{
			name:  "gap filled",
			files: []rehashFile{{"A.pem", d(1)}, {"B.pem", d(2)}, {"ours.pem", d(3)}},
			links: []rehashLink{{"aabbccdd.0", 0, "A.pem"}, {"aabbccdd.2", 2, "B.pem"}},
			want:  map[int]string{0: "A.pem", 1: "ours.pem", 2: "B.pem"},
		},
		{
			name:  "duplicate of an earlier file gets no link",
			files: []rehashFile{{"A.pem", d(1)}, {"ours.pem", d(1)}},
			links: []rehashLink{{"aabbccdd.0", 0, "A.pem"}},
			want:  map[int]string{0: "A.pem"},
		},
		{
			name:  "duplicate sorting first takes the link's place",
			files: []rehashFile{{"Z.pem", d(1)}, {"B-ours.pem", d(1)}},
			links: []rehashLink{{"aabbccdd.0", 0, "Z.pem"}},
			// B-ours.pem registers first; Z.pem is skipped as its duplicate,
			// so its old link (id 0 < 1 needed) is kept as it is and ours
			// gets the next id.
			want: map[int]string{0: "Z.pem", 1: "B-ours.pem"},
		},
		{
			name:    "stale link removed",
			files:   []rehashFile{{"ours.pem", d(2)}},
			links:   []rehashLink{{"aabbccdd.0", 0, "gone.pem"}, {"aabbccdd.1", 1, "gone2.pem"}},
			want:    map[int]string{0: "gone.pem", 1: "ours.pem"},
			removed: nil,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res, err := simulateRehash(tc.files, tc.links)
			if err != nil {
				t.Fatal(err)
			}
			if len(res.links) != len(tc.want) {
				t.Fatalf("links %v, want %v", res.links, tc.want)
			}
			for id, tg := range tc.want {
				if res.links[id] != tg {
					t.Errorf("links %v, want %v", res.links, tc.want)
				}
			}
		})
	}
}

// removeFailFS fails every Remove.
type removeFailFS struct{ FS }

func (f removeFailFS) Remove(p string) error {
	return &fs.PathError{Op: "remove", Path: p, Err: syscall.EROFS}
}

func TestRevertFailureNamesWhatIsLeft(t *testing.T) {
	set := testSet(t, genCAs(t, 1)...)
	root := filepath.Join(t.TempDir(), "root")
	treespec.Build(t, root, debianSpecs(t, hostCerts(t, 2))...)
	fsys := openRoot(t, root)
	j, err := Install(context.Background(), fsys, detect(t, fsys), set, Exec{}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	err = j.Revert(context.Background(), removeFailFS{openRoot(t, root)})
	if err == nil {
		t.Fatal("revert with failing removals reported no error")
	}
	anchor := "/usr/local/share/ca-certificates/" + set.Certs[0].Name + ".crt"
	re := (*RevertError)(nil)
	if !errors.As(err, &re) {
		t.Fatalf("error is not a RevertError: %v", err)
	}
	for _, want := range []string{anchor, "/etc/ssl/certs/" + set.Certs[0].Name + ".pem"} {
		if !slices.Contains(re.Left, want) || !strings.Contains(err.Error(), want) {
			t.Errorf("error does not name %s (left %q):\n%v", want, re.Left, err)
		}
	}
	if !errors.Is(err, syscall.EROFS) {
		t.Errorf("error does not wrap the cause: %v", err)
	}
	// A second Revert is a no-op.
	if err := j.Revert(context.Background(), openRoot(t, root)); err != nil {
		t.Errorf("second revert: %v", err)
	}
}

// failThenNoRemoveFS fails the n-th WriteFile and every Remove, so the
// rollback of the failed install cannot finish.
type failThenNoRemoveFS struct{ *failingFS }

func (f failThenNoRemoveFS) Remove(p string) error {
	return &fs.PathError{Op: "remove", Path: p, Err: syscall.EROFS}
}

// TestFailedRollbackIsAnError: an install whose rollback failed says so
// (ErrRollbackFailed), so the executor fails the exec even when not strict.
func TestFailedRollbackIsAnError(t *testing.T) {
	set := testSet(t, genCAs(t, 1)...)
	root := filepath.Join(t.TempDir(), "root")
	treespec.Build(t, root, debianSpecs(t, hostCerts(t, 2))...)
	base := openRoot(t, root)
	d := detect(t, base)
	// Fail the second write: the first (the anchor) is then ours to remove,
	// and removing it fails.
	fsys := failThenNoRemoveFS{&failingFS{FS: base, n: 2}}
	j, err := Install(context.Background(), fsys, d, set, Exec{}, Options{})
	if err == nil {
		t.Fatalf("install whose rollback failed returned no error (journal %v)", j.Paths())
	}
	if !errors.Is(err, ErrRollbackFailed) || !errors.Is(err, syscall.EROFS) {
		t.Errorf("error does not wrap ErrRollbackFailed and the cause: %v", err)
	}
}
