package cacerts

import (
	"bytes"
	"context"
	"encoding/pem"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/buildkit-cacerts/buildkit-cacerts/internal/treespec"
	"github.com/buildkit-cacerts/buildkit-cacerts/vfs"
)

func readFile(t testing.TB, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func countBlock(data, blk []byte) int { return bytes.Count(data, blk) }

func TestGenericPath(t *testing.T) {
	other := newCA(t, caOpt{cn: "Image's own CA"})
	cas := genCAs(t, 2)
	set := testSet(t, cas...)
	ours := set.Certs[0].PEM

	type check func(t *testing.T, root string)
	fileHas := func(p string, n int) check {
		return func(t *testing.T, root string) {
			if got := countBlock(readFile(t, filepath.Join(root, p)), ours); got != n {
				t.Errorf("%s holds our CA %d times, want %d", p, got, n)
			}
		}
	}
	isLink := func(p, target string) check {
		return func(t *testing.T, root string) {
			if got, err := os.Readlink(filepath.Join(root, p)); err != nil || got != target {
				t.Errorf("%s -> %q (%v), want a link to %q", p, got, err, target)
			}
		}
	}
	notLink := func(p string) check {
		return func(t *testing.T, root string) {
			if fi, err := os.Lstat(filepath.Join(root, p)); err != nil || !fi.Mode().IsRegular() {
				t.Errorf("%s is not a regular file: %v", p, err)
			}
		}
	}
	hashFile := func(t *testing.T, root string) {
		p := filepath.Join(root, "etc/ssl/certs", hex8(set.Certs[0].SubjectHash)+".0")
		if !bytes.Equal(readFile(t, p), ours) {
			t.Errorf("no hash file %s", p)
		}
	}
	tests := []struct {
		name   string
		specs  []string
		env    []string
		mounts func(t *testing.T, dir string) []vfs.Spec
		checks []check
		family string
	}{
		{
			name:   "busybox",
			specs:  []string{"file bin/busybox x mode=0755", "symlink bin/sh -> busybox", "file etc/passwd root:x:0:0::/root:/bin/sh"},
			family: "busybox",
			checks: []check{fileHas("etc/ssl/certs/ca-certificates.crt", 1), hashFile},
		},
		{
			name:   "scratch",
			specs:  []string{"file tlsget x mode=0755"},
			family: "unknown",
			checks: []check{fileHas("etc/ssl/certs/ca-certificates.crt", 1), hashFile},
		},
		{
			name: "alpine bundle behind cert.pem link",
			specs: []string{
				"file etc/alpine-release 3.20.3",
				"file etc/ssl/certs/ca-certificates.crt " + quote(other.pem),
				"symlink etc/ssl/cert.pem -> certs/ca-certificates.crt",
			},
			family: "alpine",
			checks: []check{fileHas("etc/ssl/certs/ca-certificates.crt", 1), isLink("etc/ssl/cert.pem", "certs/ca-certificates.crt")},
		},
		{
			name: "nixos read-only store",
			specs: []string{
				"file etc/NIXOS \"\"",
				"symlink etc/static -> /nix/store/abc-etc/etc",
				"symlink etc/ssl/certs/ca-certificates.crt -> /etc/static/ssl/certs/ca-certificates.crt",
				"file nix/store/abc-etc/etc/ssl/certs/ca-certificates.crt " + quote(other.pem) + " mode=0444",
			},
			family: "nixos",
			checks: []check{
				fileHas("etc/ssl/certs/ca-certificates.crt", 1), notLink("etc/ssl/certs/ca-certificates.crt"),
				fileHas("nix/store/abc-etc/etc/ssl/certs/ca-certificates.crt", 0),
			},
		},
		{
			name: "bundle link into a read-only mount",
			specs: []string{
				"dir etc/ssl/ro",
				"symlink etc/ssl/certs/ca-certificates.crt -> /etc/ssl/ro/bundle.crt",
			},
			mounts: func(t *testing.T, dir string) []vfs.Spec {
				src := filepath.Join(dir, "rosrc")
				treespec.Build(t, src, "file bundle.crt "+quote(other.pem))
				return []vfs.Spec{bindSpec("/etc/ssl/ro", src, true)}
			},
			family: "unknown",
			checks: []check{fileHas("etc/ssl/certs/ca-certificates.crt", 1), notLink("etc/ssl/certs/ca-certificates.crt")},
		},
		{
			name:  "cache mount over the cert dir",
			specs: []string{"dir etc/ssl/certs"},
			mounts: func(t *testing.T, dir string) []vfs.Spec {
				src := filepath.Join(dir, "cache")
				treespec.Build(t, src, "file ca-certificates.crt "+quote(other.pem))
				return []vfs.Spec{bindSpec("/etc/ssl/certs", src, false)}
			},
			family: "unknown",
		},
		{
			name: "bundle links to /etc/shadow",
			specs: []string{
				"file etc/shadow root:*:19000:0:99999:7::: mode=0640",
				"symlink etc/ssl/certs/ca-certificates.crt -> /etc/shadow",
			},
			family: "unknown",
			checks: []check{isLink("etc/ssl/certs/ca-certificates.crt", "/etc/shadow"), fileHas("etc/shadow", 0)},
		},
		{
			name: "dangling link escaping upwards",
			specs: []string{
				"symlink etc/ssl/certs/ca-certificates.crt -> ../../../../../../host/etc/bundle.crt",
			},
			family: "unknown",
			checks: []check{fileHas("etc/ssl/certs/ca-certificates.crt", 1), notLink("etc/ssl/certs/ca-certificates.crt")},
		},
		{
			name: "pip's certifi bundle",
			specs: []string{
				"file usr/local/lib/python3.12/site-packages/certifi/cacert.pem " + quote(other.pem),
				"file usr/local/lib/python3.12/site-packages/pip/_vendor/certifi/cacert.pem junk",
			},
			family: "unknown",
			checks: []check{
				fileHas("usr/local/lib/python3.12/site-packages/certifi/cacert.pem", 1),
				fileHas("usr/local/lib/python3.12/site-packages/pip/_vendor/certifi/cacert.pem", 0),
			},
		},
		{
			name:   "cert dir is a magic link",
			specs:  []string{"symlink etc/ssl/certs -> /proc/self/root/etc/ssl/certs"},
			family: "unknown",
			checks: []check{isLink("etc/ssl/certs", "/proc/self/root/etc/ssl/certs")},
		},
		{
			name:   "cert dir is a regular file",
			specs:  []string{"file etc/ssl/certs not a dir"},
			family: "unknown",
		},
		{
			name:   "bundle is a FIFO",
			specs:  []string{"fifo etc/ssl/certs/ca-certificates.crt"},
			family: "unknown",
			checks: []check{hashFile},
		},
		{
			name:   "bundle over the size cap",
			specs:  []string{"file etc/ssl/certs/ca-certificates.crt x"},
			family: "unknown",
			mounts: func(t *testing.T, dir string) []vfs.Spec {
				// Sparse: 11 MiB of holes, refused by size before any read.
				if err := os.Truncate(filepath.Join(dir, "root/etc/ssl/certs/ca-certificates.crt"), 11<<20); err != nil {
					t.Fatal(err)
				}
				return nil
			},
			checks: []check{fileHas("etc/ssl/certs/ca-certificates.crt", 0), hashFile},
		},
		{
			name: "SSL_CERT_FILE and SSL_CERT_DIR",
			specs: []string{
				"file opt/app/ca.pem " + quote(other.pem),
				"file etc/shadow root:*:19000 mode=0640",
				"file opt/app/notes.txt hello",
				"dir etc/ssl/mycerts",
				"dir opt/certs",
			},
			env: []string{
				"SSL_CERT_FILE=/opt/app/ca.pem", "SSL_CERT_FILE=/etc/shadow", "SSL_CERT_FILE=relative.pem",
				"SSL_CERT_FILE=/opt/app/notes.txt", "SSL_CERT_DIR=/etc/ssl/mycerts:/opt/certs:rel",
			},
			family: "unknown",
			checks: []check{
				fileHas("opt/app/ca.pem", 1), fileHas("etc/shadow", 0), fileHas("opt/app/notes.txt", 0),
				fileHas("etc/ssl/mycerts/"+hex8(set.Certs[0].SubjectHash)+".0", 1),
				func(t *testing.T, root string) {
					if ents, _ := os.ReadDir(filepath.Join(root, "opt/certs")); len(ents) != 0 {
						t.Error("wrote into SSL_CERT_DIR outside trust-store paths")
					}
				},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			root := filepath.Join(dir, "root")
			treespec.Build(t, root, tc.specs...)
			var mounts []vfs.Spec
			if tc.mounts != nil {
				mounts = tc.mounts(t, dir)
			}
			outside := map[string]*treespec.Canary{}
			for _, m := range mounts {
				outside[m.Dest] = treespec.NewCanary(t, m.Mounts[0].Source)
			}
			before := snap(t, root)
			fsys := openRoot(t, root, mounts...)
			d := detect(t, fsys)
			if string(d.Family) != tc.family {
				t.Fatalf("detected %s, want %s", d.Family, tc.family)
			}
			j, err := Install(context.Background(), fsys, d, set, Exec{Env: tc.env}, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if j.Method() != MethodGeneric {
				t.Fatalf("method %s", j.Method())
			}
			for _, c := range tc.checks {
				c(t, root)
			}
			for _, c := range outside {
				c.Check(t)
			}
			if err := j.Revert(context.Background(), openRoot(t, root, mounts...)); err != nil {
				t.Fatal(err)
			}
			assertSame(t, "tree after revert", before, snap(t, root))
			for _, c := range outside {
				c.Check(t)
			}
		})
	}
}

func TestPrivateKeyNeverWritten(t *testing.T) {
	good := newCA(t, caOpt{cn: "Good"})
	keyed := newCA(t, caOpt{cn: "Keyed"})
	key := keyed.keyPEM(t)
	caDir := t.TempDir()
	writeFiles(t, caDir, map[string][]byte{
		"good.crt":  good.pem,
		"keyed.crt": append(append([]byte(nil), keyed.pem...), key...),
		"key.pem":   key,
	})
	set, err := LoadDir(context.Background(), StoreOpt{Dir: caDir})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := pem.Decode(key)
	keyBody := strings.Split(string(key), "\n")[1] // a base64 line of the key
	for name, specs := range map[string][]string{
		"scratch": {"file x x"},
		"debian":  debianSpecs(t, hostCerts(t, 2)),
	} {
		t.Run(name, func(t *testing.T) {
			root := filepath.Join(t.TempDir(), "root")
			treespec.Build(t, root, specs...)
			fsys := openRoot(t, root)
			j, err := Install(context.Background(), fsys, detect(t, fsys), set, Exec{}, Options{})
			if err != nil {
				t.Fatal(err)
			}
			wrote := 0
			walkFiles(t, root, func(p string, data []byte) {
				if bytes.Contains(data, good.pem) {
					wrote++
				}
				if bytes.Contains(data, []byte(keyBody)) || bytes.Contains(data, b.Bytes) || bytes.Contains(data, []byte("PRIVATE KEY")) || bytes.Contains(data, keyed.pem) {
					t.Errorf("%s holds the refused file's key or certificate", p)
				}
			})
			if wrote == 0 {
				t.Error("the good CA was not installed anywhere")
			}
			if err := j.Revert(context.Background(), openRoot(t, root)); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// failingFS fails the n-th write (WriteFile or Overwrite). A failing
// Overwrite first writes half the data in place, as a write that fails
// midway (ENOSPC) would: the rollback must put the whole base back.
type failingFS struct {
	FS
	n, calls int
}

func (f *failingFS) WriteFile(p string, data []byte, perm fs.FileMode) error {
	f.calls++
	if f.calls == f.n {
		return &fs.PathError{Op: "writefile", Path: p, Err: errors.New("injected failure")}
	}
	return f.FS.WriteFile(p, data, perm)
}

func (f *failingFS) Overwrite(p string, data []byte) error {
	f.calls++
	var err error
	if f.calls == f.n {
		err = f.FS.Overwrite(p, data[:len(data)/2])
		if err == nil {
			err = &fs.PathError{Op: "overwrite", Path: p, Err: errors.New("injected failure")}
		}
	} else {
		err = f.FS.Overwrite(p, data)
	}
	if errors.Is(err, vfs.ErrNotInPlace) {
		f.calls-- // nothing written: the WriteFile that follows is the write
	}
	return err
}

func TestPartialInstallRollsBack(t *testing.T) {
	set := testSet(t, genCAs(t, 3)...)
	for name, specs := range map[string][]string{
		"fast":    debianSpecs(t, hostCerts(t, 3)),
		"generic": {"file bin/busybox x mode=0755", "file etc/ssl/cert.pem " + quote(newCA(t, caOpt{}).pem)},
	} {
		for n := 1; n <= 6; n++ {
			root := filepath.Join(t.TempDir(), "root")
			treespec.Build(t, root, specs...)
			before := snap(t, root)
			fsys := &failingFS{FS: openRoot(t, root), n: n}
			_, err := Install(context.Background(), fsys, detect(t, fsys), set, Exec{}, Options{})
			if fsys.calls < n {
				continue // fewer writes than n: nothing failed
			}
			if ie := (*InstallError)(nil); !errors.As(err, &ie) || ie.Rollback != nil {
				t.Errorf("%s, write %d fails: %v; want an InstallError, rolled back", name, n, err)
			}
			assertSame(t, name+": tree after failed install", before, snap(t, root))
			// Again, on the tree the rollback left: the same error, nothing
			// installed (the executor, not Install, decides the exec runs).
			fsys = &failingFS{FS: openRoot(t, root), n: n}
			j, err := Install(context.Background(), fsys, detect(t, fsys), set, Exec{}, Options{})
			if ie := (*InstallError)(nil); !errors.As(err, &ie) || ie.Rollback != nil || j != nil {
				t.Errorf("%s, second try: %v %s", name, err, j.Method())
			}
			assertSame(t, name+": tree after the second failed install", before, snap(t, root))
		}
	}
}
