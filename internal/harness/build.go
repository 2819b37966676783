package harness

import (
	"context"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/moby/buildkit/client"
	"github.com/moby/buildkit/session"
	"github.com/opencontainers/go-digest"
	"github.com/tonistiigi/fsutil"
	"golang.org/x/sync/errgroup"
)

// BuildOpt is one Dockerfile build.
type BuildOpt struct {
	// Dockerfile is the Dockerfile's text. FROM a registry reference
	// (Registry.Push) or a named context (Contexts).
	Dockerfile string
	// ContextFiles are files of the build context (name → content).
	ContextFiles map[string][]byte
	// NoCache disables BuildKit's cache for every step (frontend attr
	// no-cache), so each build runs every RUN again.
	NoCache bool
	// Contexts are named contexts: name → value of the frontend's
	// context:NAME attr, e.g. "local:rootfs" or "docker-image://…".
	Contexts map[string]string
	// Locals are extra local directories by name (for "local:NAME" contexts).
	Locals map[string]string
	// Attrs are further frontend attrs (build-arg:X, target, platform, …).
	Attrs map[string]string
	// OCITar, when set, exports the result as an OCI tarball there.
	OCITar string
	// Exports, when set, are the exporters (PushTo, or any
	// client.ExportEntry); OCITar is then ignored.
	Exports []client.ExportEntry
	// Session are further session attachables, e.g. a secrets provider
	// for RUN --mount=type=secret.
	Session []session.Attachable
}

// Step is one vertex of a build as the client saw it.
type Step struct {
	Name      string
	Started   time.Time
	Completed time.Time
	Cached    bool
	Error     string
}

// Duration is how long the step ran (zero when it did not complete).
func (s Step) Duration() time.Duration {
	if s.Started.IsZero() || s.Completed.IsZero() {
		return 0
	}
	return s.Completed.Sub(s.Started)
}

// IsRun reports whether the step is a Dockerfile RUN instruction.
func (s Step) IsRun() bool { return strings.Contains(s.Name, "] RUN ") }

// BuildResult is what a build did.
type BuildResult struct {
	Wall  time.Duration // Solve's wall time, as the client saw it
	Steps []Step        // every vertex, in the order first seen
	Logs  string        // the processes' output
}

// Runs returns the RUN steps that executed (not cached).
func (r *BuildResult) Runs() []Step {
	var out []Step
	for _, s := range r.Steps {
		if s.IsRun() && !s.Cached {
			out = append(out, s)
		}
	}
	return out
}

// Build runs a Dockerfile build on c with the Dockerfile frontend. It returns
// the result also when the build fails (with the error), for its logs.
func Build(ctx context.Context, c *client.Client, opt BuildOpt) (*BuildResult, error) {
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
	so := client.SolveOpt{Frontend: "dockerfile.v0", FrontendAttrs: attrs, LocalMounts: locals, Session: opt.Session}
	if len(opt.Exports) > 0 {
		so.Exports = opt.Exports
	} else if opt.OCITar != "" {
		so.Exports = []client.ExportEntry{{
			Type:   client.ExporterOCI,
			Output: func(map[string]string) (io.WriteCloser, error) { return os.Create(opt.OCITar) },
		}}
	}

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

// recorder folds the status stream into steps and logs.
type recorder struct {
	mu    sync.Mutex
	order []digest.Digest
	steps map[digest.Digest]*Step
	logs  strings.Builder
}

func (r *recorder) add(s *client.SolveStatus) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, v := range s.Vertexes {
		st, ok := r.steps[v.Digest]
		if !ok {
			st = &Step{}
			r.steps[v.Digest] = st
			r.order = append(r.order, v.Digest)
		}
		st.Name = v.Name
		st.Cached = v.Cached
		if v.Started != nil {
			st.Started = *v.Started
		}
		if v.Completed != nil {
			st.Completed = *v.Completed
		}
		if v.Error != "" {
			st.Error = v.Error
		}
	}
	for _, l := range s.Logs {
		r.logs.Write(l.Data)
	}
}

func (r *recorder) result() *BuildResult {
	r.mu.Lock()
	defer r.mu.Unlock()
	res := &BuildResult{Logs: r.logs.String()}
	for _, d := range r.order {
		res.Steps = append(res.Steps, *r.steps[d])
	}
	slices.SortStableFunc(res.Steps, func(a, b Step) int { return a.Started.Compare(b.Started) })
	return res
}
