package cacerts

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/buildkit-cacerts/buildkit-cacerts/internal/testenv"
	"github.com/buildkit-cacerts/buildkit-cacerts/internal/treespec"
)

// overwriteLog records the paths Overwrite is asked to write in place.
type overwriteLog struct {
	FS
	paths []string
}

func (f *overwriteLog) Overwrite(p string, data []byte) error {
	f.paths = append(f.paths, p)
	return f.FS.Overwrite(p, data)
}

// hostIno returns the inode number and link count of the host path p.
func hostIno(t testing.TB, p string) (uint64, uint64) {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		t.Fatal(err)
	}
	return st.Ino, uint64(st.Nlink)
}

// TestInPlaceInstallRevert: an existing single-link bundle is written in
// place at install (same inode) and written back in place at revert, with
// its content, mode, owner, xattrs and mtime exactly the base's.
func TestInPlaceInstallRevert(t *testing.T) {
	other := newCA(t, caOpt{cn: "Image's own CA"})
	set := testSet(t, genCAs(t, 2)...)
	const bundle = "etc/ssl/certs/ca-certificates.crt"
	meta := " mode=0600 mtime=1700000000.123456789 xattr=user.origin=image"
	tests := []struct {
		name   string
		specs  []string
		method Method
		root   bool
	}{
		{name: "fast", specs: debianSpecs(t, hostCerts(t, 3)), method: MethodFast},
		{name: "fast owned by 1000", specs: debianSpecs(t, hostCerts(t, 3)), method: MethodFast, root: true},
		{
			name: "generic",
			specs: []string{
				"file etc/alpine-release 3.20.3",
				"file " + bundle + " " + quote(other.pem),
				"symlink etc/ssl/cert.pem -> certs/ca-certificates.crt",
			},
			method: MethodGeneric,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.root {
				testenv.RequiresRoot(t)
			}
			root := filepath.Join(t.TempDir(), "root")
			treespec.Build(t, root, tc.specs...)
			extra := bundle + " " + quote(readFile(t, filepath.Join(root, bundle))) + meta
			if tc.root {
				extra += " owner=1000:1001"
			}
			treespec.Build(t, root, "file "+extra)
			before := snap(t, root)
			p := filepath.Join(root, bundle)
			ino, _ := hostIno(t, p)

			fsys := openRoot(t, root)
			j, err := Install(context.Background(), fsys, detect(t, fsys), set, Exec{}, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if j.Method() != tc.method {
				t.Fatalf("method %s, want %s", j.Method(), tc.method)
			}
			if now, _ := hostIno(t, p); now != ino {
				t.Errorf("install gave the bundle a new inode (%d, was %d): not written in place", now, ino)
			}
			if !bytes.Contains(readFile(t, p), set.Certs[0].PEM) {
				t.Errorf("our CA is not in the bundle")
			}
			rfs := &overwriteLog{FS: openRoot(t, root)}
			if err := j.Revert(context.Background(), rfs); err != nil {
				t.Fatal(err)
			}
			if !slices.Contains(rfs.paths, "/"+bundle) {
				t.Errorf("revert did not write the bundle in place (Overwrite calls: %v)", rfs.paths)
			}
			if now, n := hostIno(t, p); now != ino || n != 1 {
				t.Errorf("revert left inode %d nlink %d, want %d written back in place", now, n, ino)
			}
			assertSame(t, "tree after revert", before, snap(t, root))
		})
	}
}

// TestInPlaceNotForImageHardLinks: a bundle that is one inode with another
// name in the image (a tar hard link, BuildKit's merge snapshotter) is never
// written in place: the other name keeps the base content at install and
// after revert.
func TestInPlaceNotForImageHardLinks(t *testing.T) {
	set := testSet(t, genCAs(t, 1)...)
	root := filepath.Join(t.TempDir(), "root")
	treespec.Build(t, root, debianSpecs(t, hostCerts(t, 3))...)
	const bundle = "etc/ssl/certs/ca-certificates.crt"
	p, other := filepath.Join(root, bundle), filepath.Join(root, "other-snapshot.crt")
	must(t, os.Link(p, other))
	base := readFile(t, p)
	otherBefore := treespecDescribe(t, other)
	ino, _ := hostIno(t, p)

	fsys := openRoot(t, root)
	j, err := Install(context.Background(), fsys, detect(t, fsys), set, Exec{}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if now, _ := hostIno(t, p); now == ino {
		t.Errorf("a hard-linked bundle was written in place")
	}
	if !bytes.Equal(readFile(t, other), base) {
		t.Errorf("the other name of the bundle changed at install")
	}
	if err := j.Revert(context.Background(), openRoot(t, root)); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(readFile(t, p), base) {
		t.Errorf("bundle not restored")
	}
	if oi, _ := hostIno(t, other); oi != ino || stripMtime(treespecDescribe(t, other)) != stripMtime(otherBefore) {
		t.Errorf("the other name changed: inode %d (was %d), %s (was %s)", oi, ino, treespecDescribe(t, other), otherBefore)
	}
}

// TestInPlaceRevertProcessHardLink: the process hard-linked the bundle we
// wrote in place to another name. Revert must not write that inode in
// place (the other name would change): the bundle's name gets a new inode
// with the base content and metadata, and the other name keeps the inode
// and the content it has.
func TestInPlaceRevertProcessHardLink(t *testing.T) {
	set := testSet(t, genCAs(t, 1)...)
	root := filepath.Join(t.TempDir(), "root")
	treespec.Build(t, root, debianSpecs(t, hostCerts(t, 3))...)
	const bundle = "etc/ssl/certs/ca-certificates.crt"
	treespec.Build(t, root, "file "+bundle+" "+quote(readFile(t, filepath.Join(root, bundle)))+" mode=0644 mtime=1700000000.5")
	p, keep := filepath.Join(root, bundle), filepath.Join(root, "root/keep.crt")
	before := snap(t, root)
	ino, _ := hostIno(t, p)

	fsys := openRoot(t, root)
	j, err := Install(context.Background(), fsys, detect(t, fsys), set, Exec{}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if now, _ := hostIno(t, p); now != ino {
		t.Fatalf("not written in place at install")
	}
	ours := readFile(t, p)
	// The process: mkdir /root; ln /etc/ssl/certs/ca-certificates.crt /root/keep.crt
	must(t, os.Mkdir(filepath.Join(root, "root"), 0o700))
	must(t, os.Link(p, keep))

	rfs := &overwriteLog{FS: openRoot(t, root)}
	if err := j.Revert(context.Background(), rfs); err != nil {
		t.Fatal(err)
	}
	if slices.Contains(rfs.paths, "/"+bundle) {
		t.Errorf("revert tried to write the hard-linked bundle in place (the vfs refused it)")
	}
	if now, n := hostIno(t, p); now == ino || n != 1 {
		t.Errorf("bundle inode %d nlink %d: the linked inode %d was written in place", now, n, ino)
	}
	if ki, n := hostIno(t, keep); ki != ino || n != 1 || !bytes.Equal(readFile(t, keep), ours) {
		t.Errorf("the process's name changed: inode %d nlink %d (want %d, 1), content ours: %v", ki, n, ino, bytes.Equal(readFile(t, keep), ours))
	}
	after := snap(t, root)
	for _, p := range []string{".", "root", "root/keep.crt"} {
		delete(before, p) // "/" holds the process's new directory
		delete(after, p)
	}
	assertSame(t, "tree after revert, the process's /root aside", before, after)
}

func treespecDescribe(t testing.TB, p string) string {
	t.Helper()
	d, err := treespec.Describe(p)
	if err != nil {
		t.Fatal(err)
	}
	return d
}
