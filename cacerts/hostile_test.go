package cacerts

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/buildkit-cacerts/buildkit-cacerts/internal/treespec"
)

// Hostile images: each builds what an image can multiply (issue 12) and
// measures one Install's cost — bytes allocated, peak heap, entries and
// bytes written — through countingFS and heapMeter. These helpers use only
// the package's long-standing API, so the same scenarios ran on the code
// before the limits to give the "before" figures quoted in limits_test.go.

// countingFS counts what an install writes (the rollback included).
type countingFS struct {
	FS
	files atomic.Int64
	bytes atomic.Int64
	// anchorReads are the bytes read from the local anchor directory.
	anchorReads atomic.Int64
}

func (c *countingFS) ReadFileLimit(p string, max int64) ([]byte, error) {
	data, err := c.FS.ReadFileLimit(p, max)
	if strings.HasPrefix(p, "/usr/local/share/ca-certificates/") {
		c.anchorReads.Add(int64(len(data)))
	}
	return data, err
}

func (c *countingFS) add(n int) { c.files.Add(1); c.bytes.Add(int64(n)) }

func (c *countingFS) WriteFile(p string, data []byte, perm fs.FileMode) error {
	c.add(len(data))
	return c.FS.WriteFile(p, data, perm)
}

func (c *countingFS) Overwrite(p string, data []byte) error {
	c.add(len(data))
	return c.FS.Overwrite(p, data)
}

func (c *countingFS) Symlink(o, n string) error { c.add(0); return c.FS.Symlink(o, n) }
func (c *countingFS) Remove(p string) error     { c.add(0); return c.FS.Remove(p) }

func (c *countingFS) MkdirAll(p string, perm fs.FileMode) (string, error) {
	c.add(0)
	return c.FS.MkdirAll(p, perm)
}

// cost is what one Install cost.
type cost struct {
	allocMiB  float64 // bytes allocated during the install (an upper bound of the peak)
	peakMiB   float64 // peak heap above the start, sampled every 100µs
	files     int64   // entries written (files, links, directories, removals)
	wroteMiB  float64 // bytes written
	anchorMiB float64 // bytes read from the local anchor directory
}

func (c cost) String() string {
	return fmt.Sprintf("allocated %.1f MiB, peak heap +%.1f MiB, %d entries written, %.1f MiB written, %.1f MiB of local anchors read", c.allocMiB, c.peakMiB, c.files, c.wroteMiB, c.anchorMiB)
}

// measure runs Install on the root with x and opt and returns its cost and
// error; the journal is reverted (on a fresh view) when there is one.
func measure(t *testing.T, root string, set *Set, x Exec, opt Options) (cost, error) {
	t.Helper()
	fsys := &countingFS{FS: openRoot(t, root)}
	d := detect(t, fsys)
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base, alloc0 := ms.HeapAlloc, ms.TotalAlloc
	var peak atomic.Uint64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		var m runtime.MemStats
		for {
			runtime.ReadMemStats(&m)
			if m.HeapAlloc > peak.Load() {
				peak.Store(m.HeapAlloc)
			}
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Microsecond):
			}
		}
	}()
	j, err := Install(context.Background(), fsys, d, set, x, opt)
	close(stop)
	wg.Wait()
	runtime.ReadMemStats(&ms)
	c := cost{
		allocMiB:  float64(ms.TotalAlloc-alloc0) / (1 << 20),
		files:     fsys.files.Load(),
		wroteMiB:  float64(fsys.bytes.Load()) / (1 << 20),
		anchorMiB: float64(fsys.anchorReads.Load()) / (1 << 20),
	}
	if p := peak.Load(); p > base {
		c.peakMiB = float64(p-base) / (1 << 20)
	}
	if j != nil {
		if rerr := j.Revert(context.Background(), openRoot(t, root)); rerr != nil {
			t.Fatalf("revert: %v", rerr)
		}
	}
	return c, err
}

// bigBundle returns a PEM "bundle" of about size bytes: one CERTIFICATE
// block certs.IsPEMBundle accepts (it does not parse the certificate).
func bigBundle(size int) []byte {
	raw := bytes.Repeat([]byte{0x30}, size*3/4)
	enc := base64.StdEncoding.EncodeToString(raw)
	var b strings.Builder
	b.WriteString("-----BEGIN CERTIFICATE-----\n")
	for len(enc) > 64 {
		b.WriteString(enc[:64])
		b.WriteByte('\n')
		enc = enc[64:]
	}
	b.WriteString(enc + "\n-----END CERTIFICATE-----\n")
	return []byte(b.String())
}

func writeFile(t testing.TB, p string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func link(t testing.TB, old, new string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(new), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(old, new); err != nil {
		t.Fatal(err)
	}
}

// certifiRoot is a root without a trust store whose certifi bundle, one
// 8 MiB file, is hard-linked under n python3.* directories (distinct: n
// different files instead).
func certifiRoot(t *testing.T, n int, distinct bool) string {
	root := filepath.Join(t.TempDir(), "root")
	treespec.Build(t, root, "dir etc")
	big := bigBundle(8 << 20)
	first := ""
	for i := 0; i < n; i++ {
		p := filepath.Join(root, fmt.Sprintf("usr/local/lib/python3.%d/site-packages/certifi/cacert.pem", i))
		if first == "" || distinct {
			writeFile(t, p, big)
			first = p
			continue
		}
		link(t, first, p)
	}
	return root
}

// anchorLinksRoot is a consistent Debian root (fast path) whose local
// anchor directory holds n hard links to one 8 MiB anchor; the bundle, 9 MiB,
// does not end with them.
func anchorLinksRoot(t *testing.T, n int) string {
	root := filepath.Join(t.TempDir(), "root")
	treespec.Build(t, root, debianSpecs(t, hostCerts(t, 3))...)
	bundle := filepath.Join(root, "etc/ssl/certs/ca-certificates.crt")
	b, err := os.ReadFile(bundle)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, bundle, append(b, bigBundle(9<<20)...))
	big := bigBundle(8 << 20)
	first := filepath.Join(root, "usr/local/share/ca-certificates/a000.crt")
	writeFile(t, first, big)
	for i := 1; i < n; i++ {
		link(t, first, filepath.Join(root, fmt.Sprintf("usr/local/share/ca-certificates/a%03d.crt", i)))
	}
	return root
}

// certDirsRoot is a root without a trust store with n directories under
// /etc/ssl and the SSL_CERT_DIR value listing them all.
func certDirsRoot(t *testing.T, n int) (string, string) {
	root := filepath.Join(t.TempDir(), "root")
	specs := []string{"dir etc/ssl"}
	var dirs []string
	for i := 0; i < n; i++ {
		specs = append(specs, fmt.Sprintf("dir etc/ssl/d%04d", i))
		dirs = append(dirs, fmt.Sprintf("/etc/ssl/d%04d", i))
	}
	treespec.Build(t, root, specs...)
	return root, "SSL_CERT_DIR=" + strings.Join(dirs, ":")
}
