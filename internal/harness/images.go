package harness

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"path"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/buildkit-cacerts/buildkit-cacerts/internal/testimages/factory"
)

// ImageLayout returns the OCI layout directory of one of hack/images' test
// images (factory.DebianBookwormTLS, …), building it into the shared cache
// when it is missing (needs root and apt then; minutes). The directory is
// shared: do not modify it.
func ImageLayout(ctx context.Context, imageName string, logf func(string, ...any)) (string, error) {
	if logf == nil {
		logf = func(string, ...any) {}
	}
	b := factory.New(factory.Options{Logf: logf})
	if res, ok, err := b.Lookup(imageName); err != nil {
		return "", err
	} else if ok {
		return res.Layout, nil
	}
	logf("building test image %s into %s (go run ./hack/images builds them all)", imageName, b.CacheDir())
	res, err := b.Ensure(ctx, imageName)
	if err != nil {
		return "", err
	}
	for _, r := range res {
		if r.Name == imageName {
			return r.Layout, nil
		}
	}
	return "", fmt.Errorf("test image %s: not built", imageName)
}

// File is one regular file for a layer.
type File struct {
	Path string // absolute container path
	Data []byte
	Mode int64 // permission bits; 0 means 0644
}

// fileEpoch is the mtime of the files the harness adds (hack/images' epoch),
// so derived images are reproducible.
var fileEpoch = time.Unix(factory.Epoch, 0)

// Layer makes an uncompressed-tar layer holding files (and their parent
// directories, 0755 root:root), owned by root.
func Layer(files ...File) (v1.Layer, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	dirs := map[string]bool{}
	for _, f := range files {
		p := strings.TrimPrefix(path.Clean("/"+f.Path), "/")
		if p == "" {
			return nil, fmt.Errorf("layer: bad path %q", f.Path)
		}
		var parents []string
		for d := path.Dir(p); d != "." && !dirs[d]; d = path.Dir(d) {
			parents = append(parents, d)
			dirs[d] = true
		}
		for i := len(parents) - 1; i >= 0; i-- {
			if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: parents[i] + "/", Mode: 0o755, ModTime: fileEpoch, Format: tar.FormatPAX}); err != nil {
				return nil, err
			}
		}
		mode := f.Mode
		if mode == 0 {
			mode = 0o644
		}
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: p, Mode: mode, Size: int64(len(f.Data)), ModTime: fileEpoch, Format: tar.FormatPAX}); err != nil {
			return nil, err
		}
		if _, err := tw.Write(f.Data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	b := buf.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil })
}

// WithFiles returns img with one more layer holding files.
func WithFiles(img v1.Image, files ...File) (v1.Image, error) {
	l, err := Layer(files...)
	if err != nil {
		return nil, err
	}
	return mutate.AppendLayers(img, l)
}

// WithLayers returns img with n more small layers, each adding one file
// (/var/lib/harness/layer-NNN), so the root is a deeper overlay.
func WithLayers(img v1.Image, n int) (v1.Image, error) {
	ls := make([]v1.Layer, 0, n)
	for i := range n {
		l, err := Layer(File{Path: fmt.Sprintf("/var/lib/harness/layer-%03d", i), Data: fmt.Appendf(nil, "layer %d\n", i)})
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
	}
	return mutate.AppendLayers(img, ls...)
}

// LayerCount is the number of layers of img.
func LayerCount(img v1.Image) (int, error) {
	ls, err := img.Layers()
	return len(ls), err
}

// ReadImageFile returns the content of the regular file at container path p
// in img's flattened filesystem.
func ReadImageFile(img v1.Image, p string) ([]byte, error) {
	want := strings.TrimPrefix(path.Clean("/"+p), "/")
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil, fmt.Errorf("%s: not in the image", p)
		}
		if err != nil {
			return nil, fmt.Errorf("reading the image's files: %w", err)
		}
		if strings.TrimPrefix(path.Clean("/"+h.Name), "/") != want {
			continue
		}
		if h.Typeflag != tar.TypeReg {
			return nil, fmt.Errorf("%s: not a regular file in the image (type %c)", p, h.Typeflag)
		}
		return io.ReadAll(tr)
	}
}
