// Package layerdiff compares image layers entry by entry, for the no-trace
// tests: the layer of an exec run with CA injection must equal the layer of
// the same exec run without it.
//
// A difference is reported as a readable list of paths and what differs
// (type, mode, owner, link target, content, xattrs, mtime), never as a hash
// mismatch. Layers are read from OCI image layouts as BuildKit's `type=oci`
// exporter writes them (`tar=false`, or an untarred export).
package layerdiff

import (
	"archive/tar"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"path"
	"sort"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
)

// Entry is one tar entry of a layer, reduced to what BuildKit's differ and a
// container runtime can observe.
type Entry struct {
	Name     string
	Type     byte
	Mode     int64
	UID, GID int
	Size     int64
	Linkname string
	ModTime  time.Time
	Xattrs   map[string]string
	DevMajor int64
	DevMinor int64
	Digest   string // SHA-256 of the content, regular files only
}

// Layer is a layer's entries by cleaned path ("etc/ssl/certs/x.pem").
type Layer map[string]Entry

// ReadLayer reads an uncompressed layer tar.
func ReadLayer(r io.Reader) (Layer, error) {
	l := Layer{}
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return l, nil
		}
		if err != nil {
			return nil, fmt.Errorf("reading layer tar: %w", err)
		}
		e := Entry{
			Name:     cleanName(h.Name),
			Type:     h.Typeflag,
			Mode:     h.Mode,
			UID:      h.Uid,
			GID:      h.Gid,
			Size:     h.Size,
			Linkname: h.Linkname,
			ModTime:  h.ModTime,
			DevMajor: h.Devmajor,
			DevMinor: h.Devminor,
		}
		for k, v := range h.PAXRecords {
			if x, ok := strings.CutPrefix(k, "SCHILY.xattr."); ok {
				if e.Xattrs == nil {
					e.Xattrs = map[string]string{}
				}
				e.Xattrs[x] = v
			}
		}
		if h.Typeflag == tar.TypeReg {
			d := sha256.New()
			if _, err := io.Copy(d, tr); err != nil {
				return nil, fmt.Errorf("reading %s: %w", e.Name, err)
			}
			e.Digest = hex.EncodeToString(d.Sum(nil))
		}
		l[e.Name] = e
	}
}

func cleanName(n string) string {
	n = path.Clean("/" + n)
	if n == "/" {
		return "."
	}
	return n[1:]
}

// ReadImageLayers returns the layers of the only image in the OCI layout at
// dir, bottom first.
func ReadImageLayers(dir string) ([]Layer, error) {
	p, err := layout.FromPath(dir)
	if err != nil {
		return nil, fmt.Errorf("opening OCI layout %s: %w", dir, err)
	}
	idx, err := p.ImageIndex()
	if err != nil {
		return nil, fmt.Errorf("reading index of %s: %w", dir, err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, fmt.Errorf("reading index of %s: %w", dir, err)
	}
	if len(im.Manifests) != 1 {
		return nil, fmt.Errorf("OCI layout %s holds %d manifests, want 1", dir, len(im.Manifests))
	}
	img, err := idx.Image(im.Manifests[0].Digest)
	if err != nil {
		return nil, fmt.Errorf("reading image of %s: %w", dir, err)
	}
	return readLayers(img)
}

func readLayers(img v1.Image) ([]Layer, error) {
	ls, err := img.Layers()
	if err != nil {
		return nil, fmt.Errorf("listing layers: %w", err)
	}
	out := make([]Layer, 0, len(ls))
	for i, l := range ls {
		rc, err := l.Uncompressed()
		if err != nil {
			return nil, fmt.Errorf("layer %d: %w", i, err)
		}
		layer, err := ReadLayer(rc)
		rc.Close()
		if err != nil {
			return nil, fmt.Errorf("layer %d: %w", i, err)
		}
		out = append(out, layer)
	}
	return out, nil
}

// Options tune Compare.
type Options struct {
	// IgnoreMtime lists paths (and, with a trailing "/", subtrees) whose
	// mtimes may differ: paths the process itself wrote, where the two runs
	// cannot agree on a clock.
	IgnoreMtime []string
	// IgnoreContent lists paths (and subtrees, with a trailing "/") whose
	// contents may differ: files two runs of the same step never write
	// alike (a Java keystore records when each entry was added). A CA scan
	// (ScanImages) must then cover what the comparison no longer sees.
	IgnoreContent []string
}

func (o Options) ignoreMtime(name string) bool { return matchPaths(o.IgnoreMtime, name) }

func matchPaths(paths []string, name string) bool {
	for _, p := range paths {
		if p == name || (strings.HasSuffix(p, "/") && strings.HasPrefix(name, p)) {
			return true
		}
	}
	return false
}

// Compare lists every difference between want (without injection) and got
// (with injection), one readable line each, sorted by path. Nil means equal.
func Compare(want, got Layer, opts Options) []string {
	names := map[string]bool{}
	for n := range want {
		names[n] = true
	}
	for n := range got {
		names[n] = true
	}
	sorted := make([]string, 0, len(names))
	for n := range names {
		sorted = append(sorted, n)
	}
	sort.Strings(sorted)
	var diffs []string
	for _, n := range sorted {
		w, inW := want[n]
		g, inG := got[n]
		switch {
		case !inW:
			diffs = append(diffs, fmt.Sprintf("%s: only with injection (%s)", n, describe(g)))
		case !inG:
			diffs = append(diffs, fmt.Sprintf("%s: only without injection (%s)", n, describe(w)))
		default:
			for _, d := range entryDiffs(w, g, !opts.ignoreMtime(n), !matchPaths(opts.IgnoreContent, n)) {
				diffs = append(diffs, n+": "+d)
			}
		}
	}
	return diffs
}

func entryDiffs(w, g Entry, mtime, content bool) []string {
	var d []string
	add := func(what string, a, b any) {
		d = append(d, fmt.Sprintf("%s %v without, %v with injection", what, a, b))
	}
	if w.Type != g.Type {
		add("type", typeName(w.Type), typeName(g.Type))
		return d
	}
	if w.Mode != g.Mode {
		add("mode", fmt.Sprintf("%#o", w.Mode), fmt.Sprintf("%#o", g.Mode))
	}
	if w.UID != g.UID || w.GID != g.GID {
		add("owner", fmt.Sprintf("%d:%d", w.UID, w.GID), fmt.Sprintf("%d:%d", g.UID, g.GID))
	}
	if w.Linkname != g.Linkname {
		add("link target", w.Linkname, g.Linkname)
	}
	if content && (w.Size != g.Size || w.Digest != g.Digest) {
		add("content", fmt.Sprintf("%d bytes", w.Size), fmt.Sprintf("%d bytes", g.Size))
	}
	if w.DevMajor != g.DevMajor || w.DevMinor != g.DevMinor {
		add("device", fmt.Sprintf("%d:%d", w.DevMajor, w.DevMinor), fmt.Sprintf("%d:%d", g.DevMajor, g.DevMinor))
	}
	if fmt.Sprint(sortedXattrs(w.Xattrs)) != fmt.Sprint(sortedXattrs(g.Xattrs)) {
		add("xattrs", sortedXattrs(w.Xattrs), sortedXattrs(g.Xattrs))
	}
	if mtime && !w.ModTime.Equal(g.ModTime) {
		add("mtime", w.ModTime.UTC().Format(time.RFC3339Nano), g.ModTime.UTC().Format(time.RFC3339Nano))
	}
	return d
}

func sortedXattrs(x map[string]string) []string {
	out := make([]string, 0, len(x))
	for k, v := range x {
		out = append(out, fmt.Sprintf("%s=%q", k, v))
	}
	sort.Strings(out)
	return out
}

func describe(e Entry) string {
	s := typeName(e.Type)
	if e.Linkname != "" {
		s += " -> " + e.Linkname
	}
	if e.Type == tar.TypeReg {
		s += fmt.Sprintf(", %d bytes", e.Size)
	}
	return s
}

func typeName(t byte) string {
	switch t {
	case tar.TypeReg:
		return "file"
	case tar.TypeDir:
		return "dir"
	case tar.TypeSymlink:
		return "symlink"
	case tar.TypeLink:
		return "hardlink"
	case tar.TypeChar:
		return "char device"
	case tar.TypeBlock:
		return "block device"
	case tar.TypeFifo:
		return "fifo"
	default:
		return fmt.Sprintf("type %q", t)
	}
}
