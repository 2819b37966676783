package layerdiff

import (
	"archive/tar"
	"bytes"
	"io"
	"reflect"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

func imageOf(t *testing.T, layers ...*bytes.Buffer) v1.Image {
	t.Helper()
	img := empty.Image
	for _, b := range layers {
		data := b.Bytes()
		l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil })
		if err != nil {
			t.Fatal(err)
		}
		if img, err = mutate.AppendLayers(img, l); err != nil {
			t.Fatal(err)
		}
	}
	return img
}

func TestCompareImagesAndWrittenSince(t *testing.T) {
	old := time.Unix(1704067200, 0)
	start := time.Unix(1800000000, 0)
	base := buildTar(t, tarEntry{h: tar.Header{Name: "etc/os-release", Typeflag: tar.TypeReg, Mode: 0o644, ModTime: old}, body: "ID=debian\n"})
	run := func(written time.Time, extra ...tarEntry) *bytes.Buffer {
		return buildTar(t, append([]tarEntry{
			{h: tar.Header{Name: "var/lib/dpkg/status", Typeflag: tar.TypeReg, Mode: 0o644, ModTime: written}, body: "status"},
			{h: tar.Header{Name: "usr/bin/tool", Typeflag: tar.TypeReg, Mode: 0o755, ModTime: old}, body: "elf"},
		}, extra...)...)
	}
	want := imageOf(t, base, run(start.Add(time.Second)))
	opts := func(w Layer) Options { return Options{IgnoreMtime: w.WrittenSince(start)} }

	same := imageOf(t, buildTar(t, tarEntry{h: tar.Header{Name: "etc/os-release", Typeflag: tar.TypeReg, Mode: 0o644, ModTime: old}, body: "ID=debian\n"}), run(start.Add(2*time.Second)))
	if d, err := CompareImages(want, same, opts); err != nil || d != nil {
		t.Errorf("written mtimes only: %q, %v; want no difference", d, err)
	}

	trace := imageOf(t, base, run(start.Add(2*time.Second),
		tarEntry{h: tar.Header{Name: "usr/local/share/ca-certificates/ours.crt", Typeflag: tar.TypeReg, Mode: 0o644, ModTime: start}, body: "pem"}))
	d, err := CompareImages(want, trace, opts)
	if err != nil {
		t.Fatal(err)
	}
	if wantD := []string{"layer 1: usr/local/share/ca-certificates/ours.crt: only with injection (file, 3 bytes)"}; !reflect.DeepEqual(d, wantD) {
		t.Errorf("trace: %q, want %q", d, wantD)
	}

	// An old mtime changed: not written by the process, so it counts.
	touched := imageOf(t, base, buildTar(t,
		tarEntry{h: tar.Header{Name: "var/lib/dpkg/status", Typeflag: tar.TypeReg, Mode: 0o644, ModTime: start}, body: "status"},
		tarEntry{h: tar.Header{Name: "usr/bin/tool", Typeflag: tar.TypeReg, Mode: 0o755, ModTime: old.Add(1)}, body: "elf"}))
	d, err = CompareImages(want, touched, opts)
	if err != nil {
		t.Fatal(err)
	}
	if len(d) != 1 || d[0] != "layer 1: usr/bin/tool: mtime 2024-01-01T00:00:00Z without, 2024-01-01T00:00:00.000000001Z with injection" {
		t.Errorf("touched: %q", d)
	}

	if d, _ := CompareImages(want, imageOf(t, base), opts); len(d) != 1 || d[0] != "image: 2 layers without, 1 with injection" {
		t.Errorf("layer count: %q", d)
	}
}
