package vfs

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/buildkit-cacerts/buildkit-cacerts/internal/treespec"
)

// TestRaceSwapComponents is HOSTILE 24: while the vfs writes, another
// goroutine swaps path components for symlinks to "/", "..", and the
// host's absolute path of the canary, thousands of times (renameat2
// RENAME_EXCHANGE, atomic). Every write must land inside the root or fail.
func TestRaceSwapComponents(t *testing.T) {
	if testing.Short() {
		t.Skip("race test skipped under -short")
	}
	modes(t, func(t *testing.T, opts []Option) {
		sb := newSandbox(t,
			"dir etc/ssl/certs",
			"file etc/ssl/certs/ca-certificates.crt BASE",
			"dir usr/local/share/ca-certificates",
		)
		hostEtc := sb.path("host/etc")
		treespec.Build(t, sb.root,
			"symlink swap/root -> /",
			"symlink swap/up -> ..",
			"symlink swap/up2 -> ../../..",
			"symlink swap/host -> "+hostEtc,
			"symlink swap/hostssl -> "+filepath.Join(hostEtc, "ssl"),
		)
		fsys := mustNew(t, bindSpec("/", sb.root, false), nil, opts...)
		topBefore := listDir(t, sb.dir)

		var stop atomic.Bool
		var swaps atomic.Int64
		var wg sync.WaitGroup
		pairs := [][2]string{
			{"etc/ssl", "swap/root"}, {"etc/ssl", "swap/up"}, {"etc/ssl", "swap/host"},
			{"etc/ssl/certs", "swap/up2"}, {"etc/ssl/certs", "swap/hostssl"},
			{"usr/local/share", "swap/root"}, {"usr/local/share/ca-certificates", "swap/host"},
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; !stop.Load(); i++ {
				p := pairs[i%len(pairs)]
				a, b := filepath.Join(sb.root, p[0]), filepath.Join(sb.root, p[1])
				if unix.Renameat2(unix.AT_FDCWD, a, unix.AT_FDCWD, b, unix.RENAME_EXCHANGE) == nil {
					swaps.Add(1)
					unix.Renameat2(unix.AT_FDCWD, a, unix.AT_FDCWD, b, unix.RENAME_EXCHANGE)
					swaps.Add(1)
				}
			}
		}()
		var ok, failed int
		deadline := time.Now().Add(time.Second)
		ts := time.Unix(1234, 5678)
		for i := 0; time.Now().Before(deadline) || swaps.Load() < 5000; i++ {
			var err error
			switch i % 7 {
			case 0:
				err = fsys.WriteFile("/etc/ssl/certs/ca-certificates.crt", []byte("OURS"), 0o644)
			case 1:
				_, err = fsys.MkdirAll("/usr/local/share/ca-certificates/extra/sub", 0o755)
			case 2:
				err = fsys.Symlink("/etc/ssl/certs/ca-certificates.crt", "/etc/ssl/certs/link.pem")
			case 3:
				err = fsys.Lchtimes("/etc/ssl/certs/ca-certificates.crt", ts, ts)
			case 4:
				err = fsys.Remove("/etc/ssl/certs/link.pem")
			case 5:
				_, err = fsys.ReadFileLimit("/etc/ssl/certs/ca-certificates.crt", 1<<20)
			case 6:
				err = fsys.Overwrite("/etc/ssl/certs/ca-certificates.crt", []byte("IN PLACE"))
			}
			if err == nil {
				ok++
			} else {
				failed++
			}
			if time.Since(deadline) > 30*time.Second {
				break
			}
		}
		stop.Store(true)
		wg.Wait()
		t.Logf("%d swaps, %d calls succeeded, %d failed", swaps.Load(), ok, failed)
		if swaps.Load() < 2000 {
			t.Errorf("only %d swaps", swaps.Load())
		}
		if after := listDir(t, sb.dir); !equalStrings(topBefore, after) {
			t.Errorf("sandbox top level changed: %v -> %v", topBefore, after)
		}
		filepath.WalkDir(sb.root, func(p string, d os.DirEntry, err error) error {
			if err == nil && strings.HasPrefix(d.Name(), ".vfs-") {
				t.Errorf("temporary file left: %s", p)
			}
			return nil
		})
		// The host canary (sandbox cleanup) must be unchanged.
	})
}

func listDir(t *testing.T, d string) []string {
	es, err := os.ReadDir(d)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range es {
		out = append(out, e.Name())
	}
	sort.Strings(out)
	return out
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
