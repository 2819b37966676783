package executor

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/containerd/containerd/v2/core/mount"
	"github.com/moby/buildkit/util/bklog"

	"github.com/buildkit-cacerts/buildkit-cacerts/cacerts"
	"github.com/buildkit-cacerts/buildkit-cacerts/internal/treespec"
	"github.com/buildkit-cacerts/buildkit-cacerts/vfs"
)

// caSet writes n self-signed CA certificates to a directory and loads them
// as the store would.
func caSet(t *testing.T, n int) *cacerts.Set {
	t.Helper()
	dir := t.TempDir()
	for i := 0; i < n; i++ {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		tmpl := &x509.Certificate{
			SerialNumber:          big.NewInt(int64(i + 1)),
			Subject:               pkix.Name{CommonName: fmt.Sprintf("Executor Test Root %03d", i)},
			NotBefore:             time.Now().Add(-time.Hour),
			NotAfter:              time.Now().Add(time.Hour),
			IsCA:                  true,
			BasicConstraintsValid: true,
			KeyUsage:              x509.KeyUsageCertSign,
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
		if err != nil {
			t.Fatal(err)
		}
		b := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("ca%03d.crt", i)), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	set, err := cacerts.LoadDir(context.Background(), cacerts.StoreOpt{Dir: dir})
	if err != nil || set.Len() != n {
		t.Fatalf("loading %d CAs: %d, %v", n, set.Len(), err)
	}
	return set
}

// TestDefaultInstallerCombineAbove: Options.Install.CombineAbove reaches the
// install: 17 CAs are one combined anchor by default, one anchor each when
// combining is off.
func TestDefaultInstallerCombineAbove(t *testing.T) {
	set := caSet(t, cacerts.DefaultCombineAbove+1)
	ctx := bklog.WithLogger(context.Background(), testLog())
	for _, tc := range []struct {
		above   int
		anchors int
	}{{0, 1}, {-1, set.Len()}, {set.Len(), set.Len()}} {
		t.Run(fmt.Sprintf("above=%d", tc.above), func(t *testing.T) {
			root := filepath.Join(t.TempDir(), "root")
			treespec.Build(t, root, debianToolTree("# none\n")...)
			before, err := treespec.Snapshot(root)
			if err != nil {
				t.Fatal(err)
			}
			inst := defaultInstaller{}
			c := &Container{CAs: set, Install: cacerts.Options{Method: cacerts.MethodFast, CombineAbove: tc.above}, Root: vfs.Spec{Dest: "/", Mounts: []mount.Mount{{Type: "bind", Source: root, Options: []string{"rbind"}}}}}
			revert, err := inst.Install(ctx, c)
			if err != nil {
				t.Fatal(err)
			}
			ents, err := os.ReadDir(filepath.Join(root, "usr/local/share/ca-certificates"))
			if err != nil {
				t.Fatal(err)
			}
			if len(ents) != tc.anchors {
				t.Errorf("%d anchors, want %d", len(ents), tc.anchors)
			}
			if tc.anchors == 1 && ents[0].Name() != cacerts.CombinedName+".crt" {
				t.Errorf("anchor %s, want %s.crt", ents[0].Name(), cacerts.CombinedName)
			}
			if err := revert(ctx); err != nil {
				t.Fatal(err)
			}
			after, err := treespec.Snapshot(root)
			if err != nil {
				t.Fatal(err)
			}
			if d := treespec.Diff(before, after); len(d) > 0 {
				t.Errorf("tree after revert: %v", d)
			}
		})
	}
}
