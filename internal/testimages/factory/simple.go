package factory

import (
	"archive/tar"
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// busybox builds a root holding busybox-static's /bin/busybox and a symbolic
// link to it for each applet (what `busybox --install -s` makes), nothing else.
func (b *Builder) busybox(ctx context.Context, r Recipe, work, out string, log io.Writer) error {
	debs, err := b.aptDownload(ctx, r.Suite, r.Packages, work, log)
	if err != nil {
		return err
	}
	x := filepath.Join(work, "x")
	if err := run(ctx, log, nil, "", "dpkg-deb", "-x", debs[0], x); err != nil {
		return err
	}
	bin := filepath.Join(x, "bin", "busybox")
	list, err := exec.CommandContext(ctx, bin, "--list-full").Output()
	if err != nil {
		return fmt.Errorf("%s --list-full: %w", bin, err)
	}
	content, err := os.ReadFile(bin)
	if err != nil {
		return err
	}
	links := map[string]bool{}
	for _, l := range strings.Fields(string(list)) {
		l = strings.Trim(path.Clean("/"+l), "/")
		if l != "bin/busybox" && l != "" {
			links[l] = true
		}
	}
	if !links["bin/sh"] {
		return fmt.Errorf("busybox lists no sh applet")
	}
	fmt.Fprintf(log, "busybox: %d applet links\n", len(links))
	var entries []entry
	dirs := map[string]bool{"bin": true}
	for l := range links {
		for d := path.Dir(l); d != "."; d = path.Dir(d) {
			dirs[d] = true
		}
		entries = append(entries, entry{name: l, link: "/bin/busybox"})
	}
	for d := range dirs {
		entries = append(entries, entry{name: d, dir: true})
	}
	entries = append(entries, entry{name: "bin/busybox", data: content, mode: 0o755})
	return writeTar(out, entries, r.Epoch)
}

// goStatic builds r.GoPackage with CGO_ENABLED=0 into a root that holds only it.
func (b *Builder) goStatic(ctx context.Context, r Recipe, work, out string, log io.Writer) error {
	root, err := b.repoRoot()
	if err != nil {
		return err
	}
	goBin, _, err := b.goTool()
	if err != nil {
		return err
	}
	bin := filepath.Join(work, "bin")
	env := []string{"CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64", "GOFLAGS=-mod=readonly"}
	if err := run(ctx, log, env, root, goBin, "build", "-trimpath", "-buildvcs=false", "-ldflags=-s -w -buildid=", "-o", bin, r.GoPackage); err != nil {
		return err
	}
	content, err := os.ReadFile(bin)
	if err != nil {
		return err
	}
	return writeTar(out, []entry{{name: strings.TrimPrefix(TLSGetPath, "/"), data: content, mode: 0o755}}, r.Epoch)
}

type entry struct {
	name string // relative, no leading "./"
	dir  bool
	link string
	data []byte
	mode int64
}

// writeTar writes a deterministic pax tar: a "./" entry, then entries sorted
// by name, owned by 0:0, timed at epoch.
func writeTar(out string, entries []entry, epoch int64) error {
	sort.Slice(entries, func(i, j int) bool { return entries[i].name < entries[j].name })
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	defer f.Close()
	bw := bufio.NewWriter(f)
	tw := tar.NewWriter(bw)
	t := time.Unix(epoch, 0).UTC()
	hdr := func(e entry) *tar.Header {
		h := &tar.Header{Name: "./" + e.name, ModTime: t, Format: tar.FormatPAX, Uname: "root", Gname: "root"}
		switch {
		case e.dir:
			h.Typeflag, h.Mode, h.Name = tar.TypeDir, 0o755, h.Name+"/"
		case e.link != "":
			h.Typeflag, h.Linkname, h.Mode = tar.TypeSymlink, e.link, 0o777
		default:
			h.Typeflag, h.Mode, h.Size = tar.TypeReg, e.mode, int64(len(e.data))
		}
		return h
	}
	if err := tw.WriteHeader(&tar.Header{Name: "./", Typeflag: tar.TypeDir, Mode: 0o755, ModTime: t, Format: tar.FormatPAX, Uname: "root", Gname: "root"}); err != nil {
		return err
	}
	for _, e := range entries {
		if err := tw.WriteHeader(hdr(e)); err != nil {
			return err
		}
		if len(e.data) > 0 {
			if _, err := tw.Write(e.data); err != nil {
				return err
			}
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	return f.Close()
}

// HashTree hashes the regular files under dir (names relative to dir, and
// contents), in lexical order, leaving out Go test files (they are not in a
// binary); anything else in the tree is an error.
func HashTree(dir string) (string, error) {
	h := sha256.New()
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() || strings.HasSuffix(d.Name(), "_test.go") {
			return nil
		}
		if !d.Type().IsRegular() {
			return fmt.Errorf("%s: not a regular file", p)
		}
		rel, _ := filepath.Rel(dir, p)
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		fmt.Fprintf(h, "%s\x00%d\x00", filepath.ToSlash(rel), len(b))
		h.Write(b)
		return nil
	})
	if err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
