package cacerts

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/buildkit-cacerts/buildkit-cacerts/internal/treespec"
)

// The hostile images of issue 12, with the cost of one Install measured by
// measure (hostile_test.go). Figures before the limits (same scenarios, same
// machine, 5 CAs; measure's "allocated" is every byte allocated during the
// install, "peak" the sampled heap above the start; writes include a
// rollback's):
//
//	certifi, one 8 MiB file hard-linked x8:  allocated 244 MiB, peak +96 MiB,  65 MiB written
//	                                    x32: allocated 977 MiB, peak +417 MiB, 260 MiB written
//	                                    x64: allocated 1954 MiB, peak +812 MiB, 520 MiB written
//	certifi, 16 distinct 8 MiB files:        allocated 490 MiB, peak +187 MiB, 130 MiB written
//	local anchors, 32 links to one 8 MiB:    allocated 1604 MiB, peak +756 MiB (then the install failed;
//	                                         measured with a small bundle, the 9 MiB one only adds to it)
//	SSL_CERT_DIR with 4000 directories:      20007 entries written (4000 x 5 hash files + bundle)
//
// The assertions below are the figures after, with some margin.

func wantLimit(t *testing.T, err error, knob string) {
	t.Helper()
	var le *LimitError
	if !errors.Is(err, ErrLimit) || !errors.As(err, &le) {
		t.Fatalf("error %v, want one matching ErrLimit", err)
	}
	if le.Knob != knob {
		t.Fatalf("limit %s hit, want %s (%v)", le.Knob, knob, err)
	}
	if !strings.Contains(err.Error(), "[cacerts] "+knob) {
		t.Errorf("error does not name the knob to raise: %v", err)
	}
}

func TestLimitsCertifiHardLinks(t *testing.T) {
	set := testSet(t, genCAs(t, 5)...)
	for _, n := range []int{8, 32, 64} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			root := certifiRoot(t, n, false)
			before := snap(t, root)
			c, err := measure(t, root, set, Exec{}, Options{})
			t.Logf("%d hard links to one 8 MiB certifi bundle: %s", n, c)
			if err != nil {
				t.Fatal(err)
			}
			// One inode is read (twice: to check it, to keep it for
			// revert) and written once, whatever n is.
			if c.allocMiB > 40 || c.peakMiB > 48 || c.wroteMiB > 9 || c.files > 10 {
				t.Errorf("cost %s: hard links are not merged", c)
			}
			// The edited name is restored as a new inode: its hard link
			// to the others is not (a known limit of revert, as for any
			// hard-linked bundle); everything else is as before.
			assertSame(t, "tree after revert (link counts aside)", noNlink(before), noNlink(snap(t, root)))
		})
	}
	t.Run("65 names", func(t *testing.T) {
		root := certifiRoot(t, 65, false)
		before := snap(t, root)
		c, err := measure(t, root, set, Exec{}, Options{})
		t.Logf("65 hard links: %s", c)
		wantLimit(t, err, "max_certifi_bundles")
		if c.allocMiB > 1 || c.files > 20 {
			t.Errorf("cost %s: the bundles were read before the count was checked", c)
		}
		assertSame(t, "tree after the failed install", before, snap(t, root))
		// Raised, the same image installs.
		_, err = measure(t, root, set, Exec{}, Options{Limits: Limits{MaxCertifiBundles: 65}})
		if err != nil {
			t.Fatalf("with max_certifi_bundles = 65: %v", err)
		}
	})
}

func TestLimitsCertifiDistinct(t *testing.T) {
	set := testSet(t, genCAs(t, 5)...)
	root := certifiRoot(t, 16, true)
	before := snap(t, root)
	c, err := measure(t, root, set, Exec{}, Options{})
	t.Logf("16 distinct 8 MiB certifi bundles: %s", c)
	wantLimit(t, err, "max_read_mib")
	// Stopped at 64 MiB read: three bundles read twice each, written once
	// and restored by the rollback.
	if c.allocMiB > 160 || c.peakMiB > 100 || c.wroteMiB > 64 {
		t.Errorf("cost %s over the read limit's bound", c)
	}
	assertSame(t, "tree after the failed install", before, snap(t, root))

	// Install returns the limit to its caller (the executor decides
	// whether the exec runs without the CAs): a second try, on a fresh
	// view, fails the same way and leaves nothing either.
	fsys := openRoot(t, root)
	j, err := Install(context.Background(), fsys, detect(t, fsys), set, Exec{}, Options{})
	if !errors.Is(err, ErrLimit) || j != nil {
		t.Fatalf("second install: %v, journal %v; want ErrLimit and no journal", err, j.Paths())
	}
	assertSame(t, "tree after the second failed install", before, snap(t, root))
}

func TestLimitsAnchorLinks(t *testing.T) {
	set := testSet(t, genCAs(t, 5)...)
	root := anchorLinksRoot(t, 32)
	before := snap(t, root)
	c, err := measure(t, root, set, Exec{}, Options{Method: MethodFast})
	t.Logf("32 links to one 8 MiB local anchor: %s", c)
	if !errors.Is(err, ErrStaleBundle) {
		t.Fatalf("error %v, want the bundle mismatch", err)
	}
	// The anchors are larger together than the bundle: none is read, only
	// the 9 MiB bundle (to see whether it already holds our CAs, and kept
	// for revert). Reading the last anchor first (no check of the sizes
	// together) reads 8 MiB of anchors; reading them all as before, 256 MiB
	// (1.6 GiB allocated).
	if c.anchorMiB > 0 || c.allocMiB > 24 || c.peakMiB > 12 {
		t.Errorf("cost %s: anchors were read", c)
	}
	assertSame(t, "tree after the failed install", before, snap(t, root))
}

// TestLocalAnchorsHardLinksReadOnce: n hard links to one local anchor the
// bundle ends with n times: the fast path works and reads the file once.
func TestLocalAnchorsHardLinksReadOnce(t *testing.T) {
	host := hostCerts(t, 2)
	theirs := newCA(t, caOpt{cn: "Theirs"})
	anchor := theirs.pem[:len(theirs.pem)-1] // no final newline
	const n = 20
	specs := debianSpecs(t, host)
	for i, s := range specs {
		if strings.HasPrefix(s, "file etc/ssl/certs/ca-certificates.crt ") {
			var b bytes.Buffer
			for _, k := range sortedKeys(host) {
				b.Write(withNewline(host[k]))
			}
			for k := 0; k < n; k++ {
				b.Write(theirs.pem)
			}
			specs[i] = "file etc/ssl/certs/ca-certificates.crt " + quote(b.Bytes())
		}
	}
	specs = append(specs, "file usr/local/share/ca-certificates/t00.crt "+quote(anchor))
	for k := 1; k < n; k++ {
		specs = append(specs, fmt.Sprintf("hardlink usr/local/share/ca-certificates/t%02d.crt -> usr/local/share/ca-certificates/t00.crt", k))
	}
	root := filepath.Join(t.TempDir(), "root")
	treespec.Build(t, root, specs...)
	before := snap(t, root)
	bundle0, _ := os.ReadFile(filepath.Join(root, "etc/ssl/certs/ca-certificates.crt"))

	fsys := openRoot(t, root)
	set := testSet(t, newCA(t, caOpt{cn: "Mine"}))
	p, err := NewPlan(context.Background(), fsys, detect(t, fsys), set, Exec{}, Options{Method: MethodFast})
	if err != nil {
		t.Fatal(err)
	}
	j, err := p.Apply(context.Background(), fsys)
	if err != nil {
		t.Fatal(err)
	}
	// Read during Apply: the anchor once, the hash links' targets of our
	// bucket (none: a fresh bucket). The bundle was read once, by the
	// plan (to see whether it already holds our CAs), and is kept from
	// there: Apply does not read it again.
	u := p.budget.use()
	if u.ReadBytes != int64(len(anchor)) {
		t.Errorf("read %d bytes, want one anchor: %d (the bundle is the plan's read, %d bytes)", u.ReadBytes, len(anchor), len(bundle0))
	}
	// Our anchor, its .pem link, its hash link, the bundle (in place).
	if u.Files != 4 {
		t.Errorf("%d entries written, want 4", u.Files)
	}
	bundle, _ := os.ReadFile(filepath.Join(root, "etc/ssl/certs/ca-certificates.crt"))
	if !bytes.HasSuffix(bundle, append(append([]byte(nil), set.Certs[0].PEM...), bytes.Repeat(theirs.pem, n)...)) {
		t.Error("our anchor (buildkit-*) is not at its sorted place before the local ones (t*)")
	}
	if err := j.Revert(context.Background(), openRoot(t, root)); err != nil {
		t.Fatal(err)
	}
	assertSame(t, "tree after revert", before, snap(t, root))
}

func TestLimitsCertDirs(t *testing.T) {
	set := testSet(t, genCAs(t, 5)...)
	t.Run("4000", func(t *testing.T) {
		root, env := certDirsRoot(t, 4000)
		before := snap(t, root)
		c, err := measure(t, root, set, Exec{Env: []string{env}}, Options{})
		t.Logf("SSL_CERT_DIR with 4000 directories: %s", c)
		wantLimit(t, err, "max_cert_dirs")
		// The generic bundle (directory, file) and its rollback; no hash
		// file: the list is checked before any.
		if c.files > 20 || c.allocMiB > 2 {
			t.Errorf("cost %s", c)
		}
		assertSame(t, "tree after the failed install", before, snap(t, root))
	})
	t.Run("16", func(t *testing.T) {
		root, env := certDirsRoot(t, 16)
		before := snap(t, root)
		c, err := measure(t, root, set, Exec{Env: []string{env}}, Options{})
		t.Logf("SSL_CERT_DIR with 16 directories: %s", c)
		if err != nil {
			t.Fatal(err)
		}
		if c.files != 17*5+2 {
			t.Errorf("%d entries written, want 16 x 5 hash files, the generic bundle and its directory and hash files", c.files)
		}
		assertSame(t, "tree after revert", before, snap(t, root))
	})
	t.Run("1000 raised: files stop", func(t *testing.T) {
		root, env := certDirsRoot(t, 1000)
		before := snap(t, root)
		c, err := measure(t, root, set, Exec{Env: []string{env}}, Options{Limits: Limits{MaxCertDirs: 1000}})
		t.Logf("SSL_CERT_DIR with 1000 directories, max_cert_dirs = 1000: %s", c)
		wantLimit(t, err, "max_files")
		// 4096 written, then the rollback removes them.
		if c.files > 2*DefaultMaxFiles+8 {
			t.Errorf("cost %s", c)
		}
		assertSame(t, "tree after the failed install", before, snap(t, root))
	})
}

// TestLimitSkippedStillFails: a limit hit where the caller only skips (a
// bundle left alone at debug level) still fails the install.
func TestLimitSkippedStillFails(t *testing.T) {
	set := testSet(t, genCAs(t, 1)...)
	root := filepath.Join(t.TempDir(), "root")
	treespec.Build(t, root, "dir etc/ssl/certs")
	writeFile(t, filepath.Join(root, "etc/ssl/certs/ca-certificates.crt"), bigBundle(2<<20))
	before := snap(t, root)
	_, err := measure(t, root, set, Exec{}, Options{Limits: Limits{MaxReadBytes: 1 << 20}})
	wantLimit(t, err, "max_read_mib")
	assertSame(t, "tree after the failed install", before, snap(t, root))
}

// noNlink drops the link counts from a treespec snapshot.
func noNlink(s map[string]string) map[string]string {
	out := make(map[string]string, len(s))
	for k, v := range s {
		if i := strings.Index(v, " nlink="); i >= 0 {
			j := strings.IndexByte(v[i+1:], ' ')
			if j < 0 {
				v = v[:i]
			} else {
				v = v[:i] + v[i+1+j:]
			}
		}
		out[k] = v
	}
	return out
}
