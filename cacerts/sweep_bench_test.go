package cacerts

import (
	"crypto/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/buildkit-cacerts/buildkit-cacerts/internal/testenv"
	"github.com/buildkit-cacerts/buildkit-cacerts/internal/testimages"
	"github.com/buildkit-cacerts/buildkit-cacerts/vfs"
)

// BenchmarkSweep measures the post-revert sweep (docs/design.md invariant 8)
// alone, on a Debian root mounted as BuildKit's pooled overlay, after an
// exec that wrote nothing (RUN true), one that wrote a 100 MB file, and one
// that installed a JRE (the java image's /usr/lib/jvm and
// /etc/ssl/certs/java copied in: ~ the files `apt-get install
// default-jre-headless` writes). Its cost follows what the exec wrote.
func BenchmarkSweep(b *testing.B) {
	testenv.RequiresRoot(b)
	set := testSet(b, genCAs(b, 1)...)
	cases := []struct {
		name  string
		write func(b *testing.B, merged string)
	}{
		{"run-true", func(b *testing.B, merged string) {}},
		{"write-100MB", func(b *testing.B, merged string) {
			data := make([]byte, 100<<20)
			rand.Read(data)
			if err := os.WriteFile(filepath.Join(merged, "big.bin"), data, 0o644); err != nil {
				b.Fatal(err)
			}
		}},
		{"goroot-src", func(b *testing.B, merged string) {
			// Many small files, like a RUN go mod download or npm install:
			// this machine's GOROOT/src (~10k files).
			goroot, err := exec.Command("go", "env", "GOROOT").Output()
			if err != nil {
				b.Fatal(err)
			}
			if out, err := exec.Command("cp", "-a", filepath.Join(strings.TrimSpace(string(goroot)), "src"), filepath.Join(merged, "gosrc")).CombinedOutput(); err != nil {
				b.Fatalf("cp: %v: %s", err, out)
			}
		}},
		{"jre-install", func(b *testing.B, merged string) {
			java := testimages.Rootfs(b, testimages.DebianBookwormJava)
			for _, d := range []string{"usr/lib/jvm", "etc/ssl/certs/java", "usr/share/ca-certificates-java"} {
				if err := os.MkdirAll(filepath.Join(merged, filepath.Dir(d)), 0o755); err != nil {
					b.Fatal(err)
				}
				if out, err := exec.Command("cp", "-a", filepath.Join(java, d), filepath.Join(merged, filepath.Dir(d))+"/").CombinedOutput(); err != nil {
					b.Fatalf("cp: %v: %s", err, out)
				}
			}
		}},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			lower := testimages.Rootfs(b, testimages.DebianBookwormTLS)
			merged, _ := overlayRootTB(b, lower)
			spec := bindSpec("/", merged, false)
			ctx := quietCtx()
			fsys, err := vfs.New(ctx, spec, nil)
			if err != nil {
				b.Fatal(err)
			}
			since := time.Now()
			j, err := Install(ctx, View(fsys), detect(b, View(fsys)), set, Exec{}, Options{})
			fsys.Close()
			if err != nil {
				b.Fatal(err)
			}
			c.write(b, merged)
			fsys, err = vfs.New(ctx, spec, nil)
			if err != nil {
				b.Fatal(err)
			}
			defer fsys.Close()
			if err := j.Revert(ctx, View(fsys)); err != nil {
				b.Fatal(err)
			}
			var st SweepStats
			b.ResetTimer()
			for b.Loop() {
				fsys.Invalidate()
				st, err = j.SweepRoot(ctx, fsys, spec, since)
				if err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(st.Entries), "entries")
			b.ReportMetric(float64(st.Bytes)/1e6, "MB-read")
		})
	}
}

// overlayRootTB is overlayRoot for benchmarks.
func overlayRootTB(tb testing.TB, lower string) (merged, upper string) {
	tb.Helper()
	base := tb.TempDir()
	merged, upper, work := filepath.Join(base, "merged"), filepath.Join(base, "upper"), filepath.Join(base, "work")
	for _, d := range []string{merged, upper, work} {
		if err := os.Mkdir(d, 0o755); err != nil {
			tb.Fatal(err)
		}
	}
	opts := "lowerdir=" + lower + ",upperdir=" + upper + ",workdir=" + work + ",index=off,redirect_dir=off"
	if out, err := exec.Command("mount", "-t", "overlay", "overlay", "-o", opts, merged).CombinedOutput(); err != nil {
		tb.Fatalf("mount overlay: %v: %s", err, out)
	}
	tb.Cleanup(func() { exec.Command("umount", "-l", merged).Run() })
	return merged, upper
}
