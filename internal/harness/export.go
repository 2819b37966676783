package harness

import (
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"time"

	"github.com/moby/buildkit/client"
	"github.com/opencontainers/go-digest"
	"github.com/tonistiigi/fsutil"
	"golang.org/x/sync/errgroup"
)

// PushTo returns the exporter entry that pushes a build's image to ref (a
// reference on the harness Registry, "127.0.0.1:PORT/out:tag"). Pushing to
// the in-process registry moves only the layers it does not hold yet: a
// test that builds on a 60 MB base image transfers the RUN layers alone,
// where an OCI tarball export would copy the base every time.
func PushTo(ref string) client.ExportEntry {
	return client.ExportEntry{Type: client.ExporterImage, Attrs: map[string]string{"name": ref, "push": "true"}}
}

// BuildExport is Build with explicit exporters (PushTo, or any
// client.ExportEntry); opt.OCITar is ignored. It returns the result also
// when the build fails, for its logs.
//
// It duplicates Build's setup because build.go has no exporter field; fold
// it into BuildOpt (an Exports field) when build.go's owner agrees.
func BuildExport(ctx context.Context, c *client.Client, opt BuildOpt, exports []client.ExportEntry) (*BuildResult, error) {
	dir, err := os.MkdirTemp("", "harness-context-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(opt.Dockerfile), 0o644); err != nil {
		return nil, err
	}
	for name, data := range opt.ContextFiles {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return nil, err
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			return nil, err
		}
	}
	fsys, err := fsutil.NewFS(dir)
	if err != nil {
		return nil, err
	}
	locals := map[string]fsutil.FS{"context": fsys, "dockerfile": fsys}
	for name, d := range opt.Locals {
		l, err := fsutil.NewFS(d)
		if err != nil {
			return nil, fmt.Errorf("local %s: %w", name, err)
		}
		locals[name] = l
	}
	attrs := maps.Clone(opt.Attrs)
	if attrs == nil {
		attrs = map[string]string{}
	}
	if opt.NoCache {
		attrs["no-cache"] = ""
	}
	for name, v := range opt.Contexts {
		attrs["context:"+name] = v
	}
	so := client.SolveOpt{Frontend: "dockerfile.v0", FrontendAttrs: attrs, LocalMounts: locals, Exports: exports}

	rec := &recorder{steps: map[digest.Digest]*Step{}}
	ch := make(chan *client.SolveStatus)
	eg, ectx := errgroup.WithContext(ctx)
	start := time.Now()
	var wall time.Duration
	eg.Go(func() error {
		_, err := c.Solve(ectx, nil, so, ch)
		wall = time.Since(start)
		return err
	})
	eg.Go(func() error {
		for s := range ch {
			rec.add(s)
		}
		return nil
	})
	err = eg.Wait()
	res := rec.result()
	res.Wall = wall
	if err != nil {
		return res, fmt.Errorf("build: %w", err)
	}
	return res, nil
}
