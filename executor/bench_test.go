package executor

import (
	"context"
	"testing"

	"github.com/buildkit-cacerts/buildkit-cacerts/cacerts"
	bkexecutor "github.com/moby/buildkit/executor"
)

// BenchmarkWrapRun measures what Wrap adds to every Run around an installer
// and inner executor that do nothing: mounting specs, the sibling wiring and
// the revert call.
func BenchmarkWrapRun(b *testing.B) {
	h := newHarness(b)
	h.inst = &fakeInstaller{rec: &recorder{}}
	rec := &recorder{}
	h.inner.rec = rec
	w := Wrap(h.inner, Options{CAs: oneCA, Installer: InstallerFunc(func(ctx context.Context, c *Container) (Revert, error) {
		return func(context.Context) error { return nil }, nil
	})})
	p := bkexecutor.ProcessInfo{Meta: bkexecutor.Meta{Args: []string{"user"}}}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := w.Run(ctx, "", h.root, h.mnts, p, nil); err != nil {
			b.Fatal(err)
		}
		rec.events = rec.events[:0]
		h.root.Src.(*fakeMountable).rec.events = nil
		h.inner.metas = h.inner.metas[:0]
		h.inner.mounts = h.inner.mounts[:0]
	}
}

// BenchmarkWrapRunOptOut is the cost of a Run that opted out.
func BenchmarkWrapRunOptOut(b *testing.B) {
	h := newHarness(b)
	w := Wrap(h.inner, Options{CAs: oneCA, Installer: h.inst})
	p := bkexecutor.ProcessInfo{Meta: bkexecutor.Meta{Args: []string{"user"}, Env: []string{"PATH=/bin", OptOutEnv + "=off"}}}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := w.Run(ctx, "", h.root, h.mnts, p, nil); err != nil {
			b.Fatal(err)
		}
		h.rec.events = h.rec.events[:0]
		h.inner.metas = h.inner.metas[:0]
		h.inner.mounts = h.inner.mounts[:0]
	}
}

// BenchmarkWrapRunEmptyCASet is the cost of a Run when the engine's CA set is
// empty (the default installer, nothing to install): what every exec of a
// daemon without CAs pays.
func BenchmarkWrapRunEmptyCASet(b *testing.B) {
	h := newHarness(b)
	w := Wrap(h.inner, Options{CAs: staticCAs{set: &cacerts.Set{}}})
	p := bkexecutor.ProcessInfo{Meta: bkexecutor.Meta{Args: []string{"user"}}}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := w.Run(ctx, "", h.root, h.mnts, p, nil); err != nil {
			b.Fatal(err)
		}
		h.rec.events = h.rec.events[:0]
		h.inner.metas = h.inner.metas[:0]
		h.inner.mounts = h.inner.mounts[:0]
	}
}
