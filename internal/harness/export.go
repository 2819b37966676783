package harness

import (
	"context"

	"github.com/moby/buildkit/client"
)

// PushTo returns the exporter entry that pushes a build's image to ref (a
// reference on the harness Registry, "127.0.0.1:PORT/out:tag"). Pushing to
// the in-process registry moves only the layers it does not hold yet: a
// test that builds on a 60 MB base image transfers the RUN layers alone,
// where an OCI tarball export would copy the base every time.
func PushTo(ref string) client.ExportEntry {
	return client.ExportEntry{Type: client.ExporterImage, Attrs: map[string]string{"name": ref, "push": "true"}}
}

// BuildExport is Build with explicit exporters (BuildOpt.Exports); opt.OCITar
// is ignored. It returns the result also when the build fails, for its logs.
func BuildExport(ctx context.Context, c *client.Client, opt BuildOpt, exports []client.ExportEntry) (*BuildResult, error) {
	opt.Exports, opt.OCITar = exports, ""
	return Build(ctx, c, opt)
}
