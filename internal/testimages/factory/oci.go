package factory

import (
	"compress/gzip"
	"os"
	"path/filepath"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// RefName is the org.opencontainers.image.ref.name of every image in its layout.
const RefName = "latest"

// writeOCI writes an OCI image layout at dir holding one image: rootfsTar as
// its single layer and the recipe's config, for linux/amd64. It returns the
// manifest digest.
func writeOCI(dir, rootfsTar string, r Recipe, hash string) (string, error) {
	created := v1.Time{Time: time.Unix(r.Epoch, 0).UTC()}
	layer, err := tarball.LayerFromFile(rootfsTar,
		tarball.WithMediaType(types.OCILayer),
		tarball.WithCompressionLevel(gzip.BestSpeed))
	if err != nil {
		return "", err
	}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err = mutate.Append(img, mutate.Addendum{
		Layer: layer,
		History: v1.History{
			Created:   created,
			CreatedBy: "hack/images " + r.Name,
			Comment:   "recipe " + hash[:16],
		},
	})
	if err != nil {
		return "", err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return "", err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture, cf.Created = "linux", "amd64", created
	if c := r.Config; c != nil {
		cf.Config.Env = append([]string(nil), c.Env...)
		cf.Config.Cmd = append([]string(nil), c.Cmd...)
		cf.Config.User = c.User
	}
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		return "", err
	}
	p, err := layout.Write(dir, mutate.IndexMediaType(empty.Index, types.OCIImageIndex))
	if err != nil {
		return "", err
	}
	err = p.AppendImage(img,
		layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": RefName}),
		layout.WithPlatform(v1.Platform{OS: "linux", Architecture: "amd64"}))
	if err != nil {
		return "", err
	}
	d, err := img.Digest()
	if err != nil {
		return "", err
	}
	// Blobs are content-addressed and shared read-only: make them world-readable.
	blobs, _ := filepath.Glob(filepath.Join(dir, "blobs", "*", "*"))
	for _, b := range blobs {
		if err := os.Chmod(b, 0o644); err != nil {
			return "", err
		}
	}
	return d.String(), nil
}
