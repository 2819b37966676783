package cacerts

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/containerd/containerd/v2/core/mount"

	"github.com/buildkit-cacerts/buildkit-cacerts/certs"
	"github.com/buildkit-cacerts/buildkit-cacerts/distro"
	"github.com/buildkit-cacerts/buildkit-cacerts/internal/treespec"
	"github.com/buildkit-cacerts/buildkit-cacerts/vfs"
)

func bindSpec(dest, src string, ro bool) vfs.Spec {
	s := vfs.Spec{Dest: dest, Mounts: []mount.Mount{{Type: "bind", Source: src, Options: []string{"rbind"}}}, Readonly: ro}
	if ro {
		s.Mounts[0].Options = append(s.Mounts[0].Options, "ro")
	}
	return s
}

// openRoot opens the vfs of a root directory with extra mounts; it is
// closed when the test ends.
func openRoot(t testing.TB, root string, mounts ...vfs.Spec) FS {
	t.Helper()
	return View(openVFS(t, root, mounts...))
}

// openVFS is openRoot's vfs view itself (io/fs names for its reads).
func openVFS(t testing.TB, root string, mounts ...vfs.Spec) *vfs.FS {
	t.Helper()
	fsys, err := vfs.New(context.Background(), bindSpec("/", root, false), mounts)
	if err != nil {
		t.Fatalf("vfs.New: %v", err)
	}
	t.Cleanup(func() { fsys.Close() })
	return fsys
}

func snap(t testing.TB, root string) map[string]string {
	t.Helper()
	s, err := treespec.Snapshot(root)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func assertSame(t testing.TB, what string, before, after map[string]string) {
	t.Helper()
	if d := treespec.Diff(before, after); len(d) > 0 {
		t.Errorf("%s:\n%s", what, strings.Join(d, "\n"))
	}
}

// testSet builds a Set from generated CAs, as the store would.
func testSet(t testing.TB, cas ...testCA) *Set {
	t.Helper()
	dir := t.TempDir()
	for i, c := range cas {
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("ca%03d.crt", i)), c.pem, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	set, err := LoadDir(context.Background(), StoreOpt{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if set.Len() != len(cas) {
		t.Fatalf("set has %d certs, want %d", set.Len(), len(cas))
	}
	return set
}

func genCAs(t testing.TB, n int) []testCA {
	out := make([]testCA, n)
	for i := range out {
		out[i] = newCA(t, caOpt{cn: fmt.Sprintf("Test Root %03d", i)})
	}
	return out
}

// hostCerts returns up to n of the host's Mozilla certificates (name
// without .crt -> PEM).
func hostCerts(t testing.TB, n int) map[string][]byte {
	t.Helper()
	files, _ := filepath.Glob("/usr/share/ca-certificates/mozilla/*.crt")
	if len(files) == 0 {
		t.Skip("no /usr/share/ca-certificates/mozilla on this host")
	}
	sort.Strings(files)
	out := map[string][]byte{}
	for _, f := range files {
		if len(out) == n {
			break
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		out[strings.TrimSuffix(filepath.Base(f), ".crt")] = b
	}
	return out
}

// debianSpecs returns treespec lines for a Debian root whose trust store is
// consistent, as update-ca-certificates leaves it, holding certs (name ->
// PEM) under /usr/share/ca-certificates/mozilla. Hash links are assigned as
// openssl rehash does for a fresh directory: per hash, in name order.
func debianSpecs(t testing.TB, certs map[string][]byte) []string {
	t.Helper()
	specs := []string{
		"file etc/os-release \"ID=debian\\nVERSION_ID=\\\"12\\\"\\n\"",
		"file etc/debian_version 12.0",
		"file bin/sh \"#!\" mode=0755",
		"file bin/run-parts x mode=0755",
		"file usr/bin/openssl x mode=0755",
		"file usr/sbin/update-ca-certificates \"#!/bin/sh -e\\n\" mode=0755",
		"dir etc/ca-certificates/update.d",
		"dir usr/local/share/ca-certificates",
		"dir etc/ssl/private mode=0700",
		"file etc/ssl/openssl.cnf x",
		"file var/lib/dpkg/info/ca-certificates.list \"/.\\n/etc/ssl/certs\\n\"",
		"file var/lib/dpkg/info/ca-certificates.md5sums x",
	}
	names := make([]string, 0, len(certs))
	for n := range certs {
		names = append(names, n)
	}
	sort.Strings(names)
	var conf, bundle bytes.Buffer
	conf.WriteString("# comment\n")
	type link struct{ pem string }
	buckets := map[uint32][]string{}
	for _, n := range names {
		data := certs[n]
		specs = append(specs, fmt.Sprintf("file usr/share/ca-certificates/mozilla/%s.crt %q", n, data))
		conf.WriteString("mozilla/" + n + ".crt\n")
		bundle.Write(withNewline(data))
		pemName := n + ".pem"
		specs = append(specs, fmt.Sprintf("symlink etc/ssl/certs/%s -> /usr/share/ca-certificates/mozilla/%s.crt", pemName, n))
		b, _ := pem.Decode(data)
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		h, err := SubjectHash(c.RawSubject)
		if err != nil {
			t.Fatal(err)
		}
		buckets[h] = append(buckets[h], pemName)
	}
	for h, pems := range buckets {
		sort.Strings(pems)
		for i, p := range pems {
			specs = append(specs, fmt.Sprintf("symlink etc/ssl/certs/%08x.%d -> %s", h, i, p))
		}
	}
	specs = append(specs,
		fmt.Sprintf("file etc/ca-certificates.conf %q", conf.String()),
		fmt.Sprintf("file etc/ssl/certs/ca-certificates.crt %q", bundle.String()),
	)
	return specs
}

func detect(t testing.TB, fsys FS) *distro.Distro {
	t.Helper()
	d, err := distro.Detect(ioFS{fsys})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// walkFiles calls f for every regular file under root.
func walkFiles(t testing.TB, root string, f func(p string, data []byte)) {
	t.Helper()
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			f(p, b)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// withNewline returns p ending in "\n", as update-ca-certificates' `sed -e
// '$a\'` adds a file to its bundle (certs.AppendPEM to an empty bundle).
func withNewline(p []byte) []byte {
	out, _ := certs.AppendPEM(nil, [][]byte{p})
	return out
}
