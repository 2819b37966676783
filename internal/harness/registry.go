package harness

import (
	"context"
	"fmt"
	"io"
	"log"
	"net/http/httptest"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// Registry is an in-memory OCI registry (go-containerregistry's
// pkg/registry) served over plain HTTP on 127.0.0.1.
type Registry struct {
	// Host is host:port, the prefix of every reference pushed here.
	Host string
	srv  *httptest.Server
}

// StartRegistry starts an empty registry on a free loopback port. The caller
// must call Close.
func StartRegistry() *Registry {
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	return &Registry{Host: strings.TrimPrefix(srv.URL, "http://"), srv: srv}
}

// Close stops the registry.
func (r *Registry) Close() { r.srv.Close() }

// TOML is the buildkitd.toml text that lets a daemon pull from the registry
// over plain HTTP.
func (r *Registry) TOML() string {
	return fmt.Sprintf("[registry.%q]\n  http = true\n", r.Host)
}

// Push uploads img as repoTag ("debian:tls") and returns the full reference
// (Host/debian:tls) for a Dockerfile's FROM.
func (r *Registry) Push(ctx context.Context, img v1.Image, repoTag string) (string, error) {
	ref, err := name.NewTag(r.Host+"/"+repoTag, name.Insecure)
	if err != nil {
		return "", err
	}
	if err := remote.Write(ref, img, remote.WithContext(ctx)); err != nil {
		return "", fmt.Errorf("pushing %s: %w", ref, err)
	}
	return ref.String(), nil
}

// PushLayout uploads the single image of an OCI layout directory (as
// hack/images writes them) as repoTag and returns its full reference.
func (r *Registry) PushLayout(ctx context.Context, layoutDir, repoTag string) (string, error) {
	img, err := LayoutImage(layoutDir)
	if err != nil {
		return "", err
	}
	return r.Push(ctx, img, repoTag)
}

// LayoutImage reads the single image of an OCI layout directory.
func LayoutImage(layoutDir string) (v1.Image, error) {
	idx, err := layout.ImageIndexFromPath(layoutDir)
	if err != nil {
		return nil, fmt.Errorf("reading layout %s: %w", layoutDir, err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, fmt.Errorf("reading layout %s: %w", layoutDir, err)
	}
	if len(im.Manifests) != 1 {
		return nil, fmt.Errorf("layout %s: %d manifests, want 1", layoutDir, len(im.Manifests))
	}
	img, err := idx.Image(im.Manifests[0].Digest)
	if err != nil {
		return nil, fmt.Errorf("reading layout %s: %w", layoutDir, err)
	}
	return img, nil
}
