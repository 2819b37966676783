package integration

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/buildkit-cacerts/buildkit-cacerts/internal/harness"
)

// TestFaultChecksCanFail proves the fault suite's checks see a CA: a build
// plants the test CA (PEM from the context, and the same certificate as raw
// DER) in its layer, and the scan of the pushed image, of the cache export
// and of the daemon's root must each report it, in both forms. A check that
// cannot see the CA here would pass every fault trial unnoticed.
func TestFaultChecksCanFail(t *testing.T) {
	e := newFaultEnv(t)
	fd := e.startFaultDaemon(t, "plant", harness.DaemonConfig{}, "")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	ref := trialRef(e, "plant", 0)
	df := "FROM " + e.image + "\nCOPY leak.pem /leak.pem\nCOPY leak.der /usr/share/leak.der\nRUN echo planted > /out\n"
	logs, err := fd.build(ctx, trialBuild{
		Dockerfile: df,
		Context:    map[string][]byte{"leak.pem": e.ca.PEM, "leak.der": e.ca.Cert.Raw},
		Push:       ref,
	})
	if err != nil {
		t.Fatalf("build: %v\n%s", err, logs)
	}
	forms := func(where string, found []string) {
		t.Helper()
		joined := strings.Join(found, "\n")
		for _, form := range []string{"(PEM)", "(DER)"} {
			if !strings.Contains(joined, form) {
				t.Errorf("%s: the planted CA %s was not found; found:\n%s", where, form, joined)
			}
		}
	}
	e.mu.Lock()
	skip := e.skip
	e.mu.Unlock()
	found, err := e.scanImage(ctx, ref, skip)
	if err != nil {
		t.Fatal(err)
	}
	forms("pushed image", findingStrings(found))
	cf, err := e.scan.Tree(fd.cacheDir)
	if err != nil {
		t.Fatal(err)
	}
	forms("cache export", findingStrings(cf))
	rf, err := e.scan.Tree(filepath.Join(fd.d.Root, "state"))
	if err != nil {
		t.Fatal(err)
	}
	forms("daemon root", findingStrings(rf))
	t.Logf("planted CA found: %d in the image, %d in the cache export, %d in the daemon root", len(found), len(cf), len(rf))
}

func findingStrings[T interface{ String() string }](fs []T) []string {
	var out []string
	for _, f := range fs {
		out = append(out, f.String())
	}
	return out
}
