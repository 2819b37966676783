package faults

import (
	"context"
	"fmt"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// Image scans an image in a registry (plain HTTP on loopback, like the
// harness registry): its config and every layer whose digest is not in
// skip (base layers scanned once), decompressed. It adds the layers it
// scanned clean to skip, so a later image sharing them costs nothing.
func (s *Scanner) Image(ctx context.Context, ref string, skip map[v1.Hash]bool) ([]Finding, error) {
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		return nil, err
	}
	img, err := remote.Image(r, remote.WithContext(ctx))
	if err != nil {
		return nil, fmt.Errorf("fetching %s: %w", ref, err)
	}
	cfg, err := img.RawConfigFile()
	if err != nil {
		return nil, fmt.Errorf("fetching %s's config: %w", ref, err)
	}
	out, err := s.Data(ref+" config", cfg)
	if err != nil {
		return nil, err
	}
	layers, err := img.Layers()
	if err != nil {
		return nil, fmt.Errorf("fetching %s's layers: %w", ref, err)
	}
	for i, l := range layers {
		d, err := l.Digest()
		if err != nil {
			return nil, err
		}
		if skip[d] {
			continue
		}
		rc, err := l.Compressed()
		if err != nil {
			return nil, fmt.Errorf("fetching %s layer %d: %w", ref, i, err)
		}
		found, err := s.Reader(fmt.Sprintf("%s layer %d (%s)", ref, i, d), rc)
		rc.Close()
		if err != nil {
			return nil, err
		}
		if len(found) == 0 && skip != nil {
			skip[d] = true
		}
		out = append(out, found...)
	}
	return out, nil
}

// BaseLayers returns the layer digests of an image, to skip.
func BaseLayers(img v1.Image) (map[v1.Hash]bool, error) {
	layers, err := img.Layers()
	if err != nil {
		return nil, err
	}
	skip := map[v1.Hash]bool{}
	for _, l := range layers {
		d, err := l.Digest()
		if err != nil {
			return nil, err
		}
		skip[d] = true
	}
	return skip, nil
}
