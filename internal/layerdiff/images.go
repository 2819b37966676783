package layerdiff

import (
	"fmt"
	"sort"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// ImageLayers reads every layer of img, bottom first.
func ImageLayers(img v1.Image) ([]Layer, error) { return readLayers(img) }

// ReadImageLayer reads one layer of an image (decompressed).
func ReadImageLayer(l v1.Layer) (Layer, error) {
	rc, err := l.Uncompressed()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return ReadLayer(rc)
}

// WrittenSince lists, sorted, the entries whose mtime is at or after since:
// what a process that started at since wrote itself (files it unpacked with
// older mtimes, as dpkg does, are not among them and keep their mtimes
// compared). Pass it as Options.IgnoreMtime.
func (l Layer) WrittenSince(since time.Time) []string {
	var out []string
	for n, e := range l {
		if !e.ModTime.Before(since) {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out
}

// CompareImages compares want (built without injection) and got (with
// injection) layer by layer, bottom first. Layers with the same digest are
// equal and not read; for the others, opts(wantLayer) gives the Options
// (typically IgnoreMtime: wantLayer.WrittenSince(buildStart)). Every
// difference is prefixed with "layer N: "; a different layer count is a
// difference too. Nil means equal.
func CompareImages(want, got v1.Image, opts func(want Layer) Options) ([]string, error) {
	wl, err := want.Layers()
	if err != nil {
		return nil, fmt.Errorf("listing layers without injection: %w", err)
	}
	gl, err := got.Layers()
	if err != nil {
		return nil, fmt.Errorf("listing layers with injection: %w", err)
	}
	var diffs []string
	if len(wl) != len(gl) {
		diffs = append(diffs, fmt.Sprintf("image: %d layers without, %d with injection", len(wl), len(gl)))
	}
	for i := range min(len(wl), len(gl)) {
		wd, err := wl[i].Digest()
		if err != nil {
			return nil, err
		}
		gd, err := gl[i].Digest()
		if err != nil {
			return nil, err
		}
		if wd == gd {
			continue
		}
		w, err := ReadImageLayer(wl[i])
		if err != nil {
			return nil, fmt.Errorf("layer %d without injection: %w", i, err)
		}
		g, err := ReadImageLayer(gl[i])
		if err != nil {
			return nil, fmt.Errorf("layer %d with injection: %w", i, err)
		}
		var o Options
		if opts != nil {
			o = opts(w)
		}
		for _, d := range Compare(w, g, o) {
			diffs = append(diffs, fmt.Sprintf("layer %d: %s", i, d))
		}
	}
	return diffs, nil
}
