package integration

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/buildkit-cacerts/buildkit-cacerts/internal/harness"
)

// TestMatrixPieces checks the matrix's pure parts without root: the
// expectations (negative controls included), the exec-form RUN lines and the
// probe accounting.
func TestMatrixPieces(t *testing.T) {
	for _, tc := range []struct {
		x        expect
		k        daemonKind
		srv      string
		ok, must bool
	}{
		{expectTrusted, withCA, "ca", true, true},
		{expectTrusted, withCA, "chain", true, true},
		{expectTrusted, withCA, "control", false, true},
		{expectTrusted, emptyCA, "ca", false, true},
		{expectUntrusted, withCA, "ca", false, true},
		{expectAppended, emptyCA, "control", true, true},
		{expectAppended, emptyCA, "ca", false, true},
		{expectAppended, withCA, "ca", true, true},
		{expectInfo, withCA, "ca", false, false},
		{expectOwnCA, emptyCA, "ca", true, true},
		{expectOwnCA, emptyCA, "chain", true, true},
		{expectOwnCA, withCA, "control", false, true},
		{expectOwnCA, emptyCA, "control", false, true},
	} {
		ok, must := tc.x.want(tc.k, tc.srv)
		if ok != tc.ok || must != tc.must {
			t.Errorf("expect %d on %s against %s = (%v, %v), want (%v, %v)", tc.x, tc.k, tc.srv, ok, must, tc.ok, tc.must)
		}
	}

	e := &matrixEnv{servers: map[string]server{
		"ca": {URL: "https://127.0.0.1:1/", HostPort: "127.0.0.1:1"}, "chain": {URL: "https://127.0.0.1:2/", HostPort: "127.0.0.1:2"},
		"control": {URL: "https://127.0.0.1:3/", HostPort: "127.0.0.1:3"},
	}}
	for _, im := range []*mxImage{{Name: "deb", Ref: "r/deb"}, {Name: "scratch", Ref: "r/s", Scratch: true}} {
		script := e.probes(im, "main", "tlsget")
		line := im.run("--network=none", script)
		flags, argv, ok := strings.Cut(strings.TrimPrefix(strings.TrimSpace(line), "RUN "), " [")
		if !ok {
			t.Fatalf("%s: RUN line %q has no exec form", im.Name, line)
		}
		var args []string
		if err := json.Unmarshal([]byte("["+argv), &args); err != nil {
			t.Fatalf("%s: exec form is not JSON: %v\n%s", im.Name, err, line)
		}
		if args[len(args)-1] != script {
			t.Errorf("%s: the script did not survive quoting", im.Name)
		}
		if im.Scratch != strings.Contains(flags, "--mount=from=bb") {
			t.Errorf("%s: flags %q", im.Name, flags)
		}
		df := im.from("") + line
		if n := strings.Count(df, `echo \"@@probe `); n != 3 {
			t.Errorf("%s: %d probes counted in the Dockerfile, want 3", im.Name, n)
		}
	}

	logs := "@@probe main curl ca rc=0\n@@probe main curl chain rc=0\n@@probe main curl control rc=60\n@@why main curl control: curl: (60) SSL certificate problem\n"
	if got := probeLine.FindAllStringSubmatch(logs, -1); len(got) != 3 || got[2][4] != "60" {
		t.Errorf("probe lines = %q", got)
	}
	if w := whyLine(logs, "main", "curl", "control"); !strings.Contains(w, "SSL certificate problem") {
		t.Errorf("whyLine = %q", w)
	}
}

// TestKnownBugsNameCells: every knownBugs key is "image/case" of a case that
// runs on that image (a stale key would hide nothing and mislead).
func TestKnownBugsNameCells(t *testing.T) {
	e := &matrixEnv{servers: map[string]server{"ca": {}, "chain": {}, "control": {}}}
	var err error
	for _, ca := range []**harness.CA{&e.testCA, &e.inter, &e.controlCA} {
		if *ca, err = harness.NewCA("unit"); err != nil {
			t.Fatal(err)
		}
	}
	cells := map[string]bool{}
	for _, im := range matrixImages() {
		im.Ref = "r/" + im.Name
		for _, c := range matrixCases(e, im) {
			if c.skip == "" {
				cells[im.Name+"/"+c.Name] = true
			}
		}
	}
	for k := range knownBugs {
		if !cells[k] {
			t.Errorf("knownBugs[%q]: no such cell runs", k)
		}
	}
}

func TestLeakDiffs(t *testing.T) {
	paths := []string{"tmp/leak.pem"}
	if !leakDiffs([]string{"layer 2: tmp: only with injection (dir)", "layer 2: tmp/leak.pem: only with injection (file, 692 bytes)"}, paths) {
		t.Error("the leak and its directory: not accepted")
	}
	for _, d := range []string{"layer 2: tmp/other: only with injection (file, 1 bytes)", "layer 2: tm: only with injection (dir)", "layer 1: etc/ssl/certs/x.pem: only with injection (file, 9 bytes)"} {
		if leakDiffs([]string{d}, paths) {
			t.Errorf("%q accepted as the leak's", d)
		}
	}
}
