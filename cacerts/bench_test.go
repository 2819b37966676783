package cacerts

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/moby/buildkit/util/bklog"
	"github.com/sirupsen/logrus"

	"github.com/buildkit-cacerts/buildkit-cacerts/internal/treespec"
)

// cpuTime returns the process's user+system CPU time, so benchmarks can
// report CPU per op, which a loaded machine does not inflate the way it
// inflates wall time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// loop runs f b.N times and reports cpu-ns/op besides ns/op.
func loop(b *testing.B, f func()) {
	b.ReportAllocs()
	start := cpuTime()
	n := 0
	for b.Loop() {
		f()
		n++
	}
	b.ReportMetric(float64(cpuTime()-start)/float64(n), "cpu-ns/op")
}

func quietCtx() context.Context {
	l := logrus.New()
	l.SetOutput(io.Discard)
	return bklog.WithLogger(context.Background(), logrus.NewEntry(l))
}

// BenchmarkFastPath measures one exec's install and revert on a Debian
// layout the size of debian-bookworm-tls (every host Mozilla certificate in
// the bundle, a .pem link and a hash link each in /etc/ssl/certs). With the
// default threshold, cas=16 is the largest set installed one anchor per CA
// and cas=17, 50 and 1000 are one combined anchor; combine=never installs
// one anchor per CA whatever the count.
func BenchmarkFastPath(b *testing.B) {
	host := hostCerts(b, 1000)
	cases := []struct {
		n     int
		above int // Options.CombineAbove
	}{{1, 0}, {DefaultCombineAbove, 0}, {DefaultCombineAbove + 1, 0}, {50, 0}, {1000, 0}, {50, -1}}
	for _, tc := range cases {
		name := fmt.Sprintf("cas=%d", tc.n)
		if tc.above < 0 {
			name += ",combine=never"
		}
		b.Run(name, func(b *testing.B) {
			root := filepath.Join(b.TempDir(), "root")
			treespec.Build(b, root, debianSpecs(b, host)...)
			set := testSet(b, genCAs(b, tc.n)...)
			fsys := openRoot(b, root)
			d := detect(b, fsys)
			ctx := quietCtx()
			loop(b, func() {
				j, err := Install(ctx, fsys, d, set, Exec{}, Options{CombineAbove: tc.above})
				if err != nil {
					b.Fatal(err)
				}
				if j.Method() != MethodFast {
					b.Fatalf("method %s", j.Method())
				}
				if err := j.Revert(ctx, fsys); err != nil {
					b.Fatal(err)
				}
			})
		})
	}
}

// BenchmarkGenericPath measures install and revert on a scratch root.
func BenchmarkGenericPath(b *testing.B) {
	root := filepath.Join(b.TempDir(), "root")
	treespec.Build(b, root, "file app x mode=0755")
	set := testSet(b, genCAs(b, 1)...)
	fsys := openRoot(b, root)
	d := detect(b, fsys)
	ctx := quietCtx()
	loop(b, func() {
		j, err := Install(ctx, fsys, d, set, Exec{}, Options{})
		if err != nil {
			b.Fatal(err)
		}
		if err := j.Revert(ctx, fsys); err != nil {
			b.Fatal(err)
		}
	})
}
