package vfs

import (
	"context"
	"os"
	"runtime"
	"strings"
	"testing"

	"github.com/containerd/containerd/v2/core/mount"
	"golang.org/x/sys/unix"

	"github.com/buildkit-cacerts/buildkit-cacerts/internal/testenv"
	"github.com/buildkit-cacerts/buildkit-cacerts/internal/treespec"
)

const bundlePath = "/etc/ssl/certs/ca-certificates.crt"

// threadCPU measures the CPU time (user+system) the benchmark's own OS
// thread spends, so results mean something on a loaded machine where wall
// time mostly measures waiting for a core. Call the returned func after
// the loop.
func threadCPU(b *testing.B) func() {
	runtime.LockOSThread()
	start := rusageThread(b)
	return func() {
		d := rusageThread(b) - start
		runtime.UnlockOSThread()
		b.ReportMetric(float64(d)/float64(b.N), "cpu-ns/op")
	}
}

func rusageThread(b *testing.B) int64 {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_THREAD, &ru); err != nil {
		b.Fatal(err)
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// benchWorld is a root holding a Debian-sized bundle (220 KiB) and five
// mounts: a cache bind, a file bind, a read-only bind, a three-layer
// lowerdir-only overlay and a tmpfs.
func benchWorld(b *testing.B, kernelOverlay bool) (Spec, []Spec, []Option) {
	sb := newSandbox(b,
		"dir etc/ssl/certs", "symlink etc/ssl/cert.pem -> certs/ca-certificates.crt",
		"dir root/.cache", "dir run/secrets", "file run/secrets/token x", "dir src", "dir from", "dir tmp",
	)
	bundle := strings.Repeat("-----BEGIN CERTIFICATE-----\n"+strings.Repeat("A", 64)+"\n", 220<<10/93)
	if err := os.WriteFile(sb.path("root/etc/ssl/certs/ca-certificates.crt"), []byte(bundle), 0o644); err != nil {
		b.Fatal(err)
	}
	treespec.Build(b, sb.path("cache"), "file x x")
	treespec.Build(b, sb.path("src"), "file go.mod module x")
	treespec.Build(b, sb.dir, "file token secret")
	layers := treespec.Layers(b, sb.path("layers"),
		[]string{"file etc/ssl/certs/ca-certificates.crt base", "dir usr/bin"},
		[]string{"file etc/ssl/certs/ca-certificates.crt mid"},
		[]string{"file etc/ssl/certs/ca-certificates.crt top"},
	)
	mounts := []Spec{
		bindSpec("/root/.cache", sb.path("cache"), false),
		bindSpec("/run/secrets/token", sb.path("token"), true),
		bindSpec("/src", sb.path("src"), true),
		lowerSpec("/from", !kernelOverlay, layers[2], layers[1], layers[0]),
		{Dest: "/tmp", Mounts: []mount.Mount{{Type: "tmpfs", Source: "tmpfs"}}},
	}
	var opts []Option
	if kernelOverlay {
		opts = append(opts, WithKernelOverlay())
	}
	return bindSpec("/", sb.root, false), mounts, opts
}

// BenchmarkNew is the cost of assembling the view: open every source,
// resolve every destination, Close.
func BenchmarkNew(b *testing.B) {
	root, mounts, opts := benchWorld(b, false)
	b.ReportAllocs()
	defer threadCPU(b)()
	for b.Loop() {
		fsys, err := New(context.Background(), root, mounts, opts...)
		if err != nil {
			b.Fatal(err)
		}
		fsys.Close()
	}
}

// BenchmarkResolveRead resolves and reads the bundle after New.
func BenchmarkResolveRead(b *testing.B) {
	for _, mode := range []struct {
		name string
		opts []Option
	}{{"openat2", nil}, {"fallback", []Option{WithoutOpenat2()}}, {"nocache", []Option{WithoutDirCache()}}} {
		b.Run(mode.name, func(b *testing.B) {
			root, mounts, opts := benchWorld(b, false)
			fsys := mustNew(b, root, mounts, append(opts, mode.opts...)...)
			for _, p := range []string{bundlePath, "/etc/ssl/cert.pem"} {
				b.Run(strings.ReplaceAll(p[1:], "/", "_"), func(b *testing.B) {
					b.ReportAllocs()
					defer threadCPU(b)()
					for b.Loop() {
						data, err := fsys.ReadFileLimit(p, 10<<20)
						if err != nil || len(data) < 200<<10 {
							b.Fatal(len(data), err)
						}
					}
				})
			}
			b.Run("EvalSymlinks", func(b *testing.B) {
				b.ReportAllocs()
				defer threadCPU(b)()
				for b.Loop() {
					if _, _, err := fsys.EvalSymlinks("/etc/ssl/cert.pem"); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}

// BenchmarkNewResolveRead is one exec's whole read path.
func BenchmarkNewResolveRead(b *testing.B) {
	root, mounts, opts := benchWorld(b, false)
	b.ReportAllocs()
	defer threadCPU(b)()
	for b.Loop() {
		fsys, err := New(context.Background(), root, mounts, opts...)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := fsys.ReadFileLimit(bundlePath, 10<<20); err != nil {
			b.Fatal(err)
		}
		fsys.Close()
	}
}

// BenchmarkOverlayStrategy compares reading a lowerdir-only overlay's
// layers in the vfs with mounting it read-only (fsmount, root only).
func BenchmarkOverlayStrategy(b *testing.B) {
	for _, kernel := range []bool{false, true} {
		name := "layers"
		if kernel {
			name = "kernel-mount"
		}
		b.Run(name, func(b *testing.B) {
			if kernel {
				testenv.RequiresRoot(b)
			}
			root, mounts, opts := benchWorld(b, kernel)
			b.Run("New", func(b *testing.B) {
				b.ReportAllocs()
				defer threadCPU(b)()
				for b.Loop() {
					fsys, err := New(context.Background(), root, mounts, opts...)
					if err != nil {
						b.Fatal(err)
					}
					fsys.Close()
				}
			})
			fsys := mustNew(b, root, mounts, opts...)
			b.Run("read", func(b *testing.B) {
				b.ReportAllocs()
				defer threadCPU(b)()
				for b.Loop() {
					if s, err := fsys.ReadFileLimit("/from"+bundlePath, 1<<20); err != nil || string(s) != "top" {
						b.Fatal(string(s), err)
					}
				}
			})
			b.Run("readdir", func(b *testing.B) {
				b.ReportAllocs()
				defer threadCPU(b)()
				for b.Loop() {
					if _, err := fsys.ReadDir("from/etc/ssl/certs"); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}

// BenchmarkBaselineOSReadFile is the floor: os.ReadFile of the same bundle
// by host path (the host kernel resolves, unconfined).
func BenchmarkBaselineOSReadFile(b *testing.B) {
	root, _, _ := benchWorld(b, false)
	p := root.Mounts[0].Source + bundlePath
	b.ReportAllocs()
	defer threadCPU(b)()
	for b.Loop() {
		if _, err := os.ReadFile(p); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkResolveReadSmall isolates the resolution overhead: a 1 KiB file
// at the same depth.
func BenchmarkResolveReadSmall(b *testing.B) {
	root, mounts, opts := benchWorld(b, false)
	if err := os.WriteFile(root.Mounts[0].Source+"/etc/ssl/certs/small.pem", make([]byte, 1024), 0o644); err != nil {
		b.Fatal(err)
	}
	fsys := mustNew(b, root, mounts, opts...)
	b.Run("vfs", func(b *testing.B) {
		b.ReportAllocs()
		defer threadCPU(b)()
		for b.Loop() {
			if _, err := fsys.ReadFileLimit("/etc/ssl/certs/small.pem", 1<<20); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("os.ReadFile", func(b *testing.B) {
		b.ReportAllocs()
		defer threadCPU(b)()
		for b.Loop() {
			if _, err := os.ReadFile(root.Mounts[0].Source + "/etc/ssl/certs/small.pem"); err != nil {
				b.Fatal(err)
			}
		}
	})
}
