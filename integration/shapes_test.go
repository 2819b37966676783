package integration

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/moby/buildkit/session/secrets/secretsprovider"

	"github.com/buildkit-cacerts/buildkit-cacerts/internal/harness"
	"github.com/buildkit-cacerts/buildkit-cacerts/internal/testimages"
)

// trustStorePrefixes are the paths an install may touch; no RUN layer may
// hold an entry under them unless the RUN itself wrote there.
var trustStorePrefixes = []string{
	"etc/ssl", "etc/pki", "etc/ca-certificates", "usr/local/share/ca-certificates",
	"usr/share/ca-certificates", "var/lib/ca-certificates",
}

// TestExecShapes runs the container shapes BuildKit hands the executor
// through one daemon: a scratch root with no trust store (generic path), an
// llb.Scratch root whose only file is a Selector bind of one file, a
// non-root USER, a cache mount over the anchor directory (never written),
// and a RUN that writes nothing. Each must build and leave no trace.
func TestExecShapes(t *testing.T) {
	e := newSmokeEnv(t)
	images := map[string]string{
		"scratch-go": testimages.ScratchGo,
		"nonroot":    testimages.RootlessNonroot,
		"busybox":    testimages.Busybox,
	}
	for repo, name := range images {
		if _, err := e.reg.PushLayout(context.Background(), testimages.Layout(t, name), repo+":latest"); err != nil {
			t.Fatal(err)
		}
	}
	reg := e.reg.Host
	d := startDaemon(t, harness.DaemonConfig{TOML: e.toml, CADir: caDir(t, e.ca)})

	// runcDirs are the mount points runc creates in a root that lacks them;
	// BuildKit commits them for any RUN on such a root, with or without
	// injection (the differential cases below show it).
	runcDirs := []string{"dev", "proc", "sys"}
	tests := []struct {
		name       string
		dockerfile string
		// wantLayer lists the RUN layers' entries (all RUN layers, in
		// order, flattened); nil means "no entry under a trust-store path"
		// only.
		wantLayer []string
		checkLogs func(t *testing.T, logs string)
		// differential: the RUN succeeds without CAs too; build it again
		// with BUILDKIT_CACERTS=off and require the same RUN layers.
		differential bool
	}{
		{
			name:       "scratch image with a Go client: generic bundle",
			dockerfile: fmt.Sprintf("FROM %s/scratch-go:latest\nRUN [\"/tlsget\", %q]\n", reg, e.url),
			wantLayer:  runcDirs,
		},
		{
			name: "llb.Scratch root, tool bound in by Selector",
			dockerfile: fmt.Sprintf("FROM %s/scratch-go:latest AS tool\nFROM scratch\n"+
				"RUN --mount=from=tool,source=/tlsget,target=/tlsget [\"/tlsget\", %q]\n", reg, e.url),
			wantLayer: runcDirs,
		},
		{
			name: "differential: scratch image, a RUN that needs no CA",
			dockerfile: fmt.Sprintf("FROM %s/busybox:latest AS bb\nFROM %s/scratch-go:latest\n"+
				"RUN --mount=from=bb,source=/bin/busybox,target=/busybox [\"/busybox\", \"true\"]\n", reg, reg),
			differential: true,
		},
		{
			name: "differential: llb.Scratch root, a RUN that needs no CA",
			dockerfile: fmt.Sprintf("FROM %s/busybox:latest AS bb\nFROM scratch\n"+
				"RUN --mount=from=bb,source=/bin/busybox,target=/busybox [\"/busybox\", \"true\"]\n", reg),
			differential: true,
		},
		{
			name:         "differential: Debian, a RUN that writes a file",
			dockerfile:   fmt.Sprintf("FROM %s\nRUN echo hi > /hi\n", e.image),
			wantLayer:    []string{"hi"},
			differential: true,
		},
		{
			name:       "non-root USER",
			dockerfile: fmt.Sprintf("FROM %s/nonroot:latest\nRUN curl -fsS %s -o /tmp/got && test \"$(id -u)\" = 1000\n", reg, e.url),
		},
		{
			// The listing runs while an install is active (the inline
			// BUILDKIT_CACERTS=off is not the process environment), so it
			// would show an anchor written into the cache mount.
			name: "cache mount over the anchor directory is never written",
			dockerfile: fmt.Sprintf("FROM %s\n"+
				"RUN --mount=type=cache,id=cas,target=/usr/local/share/ca-certificates curl -fsS %s -o /dev/null || true\n"+
				"RUN --mount=type=cache,id=cas,target=/usr/local/share/ca-certificates BUILDKIT_CACERTS=off ls -A /usr/local/share/ca-certificates | sed 's/^/cache-holds: /'; echo cache-listed\n", e.image, e.url),
			checkLogs: func(t *testing.T, logs string) {
				if !strings.Contains(logs, "cache-listed") {
					t.Fatalf("second RUN did not run:\n%s", logs)
				}
				if strings.Contains(logs, "cache-holds:") {
					t.Errorf("the cache mount holds files after the first RUN:\n%s", logs)
				}
			},
		},
		{
			name:       "RUN that writes nothing, with a read-only bind by Selector",
			dockerfile: fmt.Sprintf("FROM %s/busybox:latest AS bb\nFROM %s\nRUN --mount=from=bb,source=/bin,target=/mnt/bb /mnt/bb/busybox true && curl -fsS %s -o /dev/null\n", reg, e.image, e.url),
			wantLayer:  []string{},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, logs, err := e.build(t, d, tc.dockerfile)
			if err != nil {
				t.Fatalf("build: %v\n%s", err, logs)
			}
			if tc.checkLogs != nil {
				tc.checkLogs(t, logs)
			}
			got := runEntries(t, e, tc.dockerfile, out)
			var names []string
			for _, en := range got {
				names = append(names, en.name)
				for _, p := range trustStorePrefixes {
					if en.name == p || strings.HasPrefix(en.name, p+"/") {
						t.Errorf("RUN layer holds %s: a trace of the install", en.name)
					}
				}
			}
			if tc.wantLayer != nil && strings.Join(names, ",") != strings.Join(tc.wantLayer, ",") {
				t.Errorf("RUN layers hold %q, want %q", names, tc.wantLayer)
			}
			if !tc.differential {
				return
			}
			off := optOut(tc.dockerfile)
			outOff, logs, err := e.build(t, d, off)
			if err != nil {
				t.Fatalf("build with %s=off: %v\n%s", "BUILDKIT_CACERTS", err, logs)
			}
			want := runEntries(t, e, off, outOff)
			if a, b := describe(got), describe(want); a != b {
				t.Errorf("RUN layers differ from the same RUN without injection:\nwith:    %s\nwithout: %s", a, b)
			}
		})
	}
}

// optOut adds ENV BUILDKIT_CACERTS=off after the Dockerfile's last FROM.
func optOut(dockerfile string) string {
	lines := strings.Split(strings.TrimSpace(dockerfile), "\n")
	last := 0
	for i, l := range lines {
		if strings.HasPrefix(l, "FROM ") {
			last = i
		}
	}
	out := append([]string{}, lines[:last+1]...)
	out = append(out, "ENV BUILDKIT_CACERTS=off")
	out = append(out, lines[last+1:]...)
	return strings.Join(out, "\n") + "\n"
}

// runEntries lists the entries of the layers the Dockerfile's RUNs made.
func runEntries(t *testing.T, e *smokeEnv, dockerfile, ociTar string) []layerEntry {
	t.Helper()
	layers := imageLayers(t, ociTar)
	var out []layerEntry
	for _, l := range layers[runLayerStart(t, dockerfile, e, layers):] {
		out = append(out, l...)
	}
	return out
}

// describe renders entries for comparison: name, type, mode, owner, size
// and content; mtimes are left out (runc's mount points are made fresh on
// every run).
func describe(entries []layerEntry) string {
	var b strings.Builder
	for _, en := range entries {
		fmt.Fprintf(&b, "%s(%c %o %d:%d %d %q) ", en.name, en.hdr.Typeflag, en.hdr.Mode, en.hdr.Uid, en.hdr.Gid, en.hdr.Size, en.body)
	}
	return b.String()
}

// TestSiblingMounts runs the command path (the image's update-ca-certificates
// in a sibling container) on a RUN with a secret, a tmpfs and a cache mount:
// the sibling's mount stubs (/run/secrets) must not end up in the layer,
// which must equal the same RUN's layer without injection.
func TestSiblingMounts(t *testing.T) {
	e := newSmokeEnv(t)
	d := startDaemon(t, harness.DaemonConfig{TOML: e.toml, CADir: caDir(t, e.ca), Mode: "command"})
	secret := secretsprovider.FromMap(map[string][]byte{"tok": []byte("s3cret")})
	run := "RUN --mount=type=secret,id=tok,required=true --mount=type=tmpfs,target=/scratch --mount=type=cache,target=/var/cache/x " +
		"test \"$(cat /run/secrets/tok)\" = s3cret && echo hi > /hi\n"
	dockerfile := "FROM " + e.image + "\n" + run
	out, logs, err := e.build(t, d, dockerfile, secret)
	if err != nil {
		t.Fatalf("build: %v\n%s", err, logs)
	}
	if !strings.Contains(d.Log(), "cacerts: sibling ran") {
		t.Fatal("no sibling ran in command mode")
	}
	got := runEntries(t, e, dockerfile, out)
	off := optOut(dockerfile)
	outOff, logs, err := e.build(t, d, off, secret)
	if err != nil {
		t.Fatalf("build with BUILDKIT_CACERTS=off: %v\n%s", err, logs)
	}
	want := runEntries(t, e, off, outOff)
	if a, b := describe(got), describe(want); a != b {
		t.Errorf("RUN layer differs from the same RUN without injection:\nwith:    %s\nwithout: %s", a, b)
	}

	// A cache mount over /etc/ssl/certs: the sibling sees it read-only, so
	// the tool cannot write the user's cache (docs/design.md invariant 7); the
	// RUN runs (without the CAs) and the cache stays empty. The listing
	// runs while an install is active, so it would see a write.
	cacheRun := "RUN --mount=type=cache,id=certs,target=/etc/ssl/certs true\n" +
		"RUN --mount=type=cache,id=certs,target=/etc/ssl/certs ls -A /etc/ssl/certs | sed 's/^/cache-holds: /'; echo cache-listed\n"
	_, logs, err = e.build(t, d, "FROM "+e.image+"\n"+cacheRun)
	if err != nil {
		t.Fatalf("cache over /etc/ssl/certs: %v\n%s", err, logs)
	}
	if !strings.Contains(logs, "cache-listed") || strings.Contains(logs, "cache-holds: ") {
		t.Errorf("the user's cache mount over /etc/ssl/certs was written:\n%s", logs)
	}
}

// runLayerStart is the index of the first layer the Dockerfile's RUNs made:
// after the final stage's base image layers.
func runLayerStart(t *testing.T, dockerfile string, e *smokeEnv, layers [][]layerEntry) int {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(dockerfile), "\n")
	from := ""
	for _, l := range lines {
		if strings.HasPrefix(l, "FROM ") {
			from = strings.Fields(l)[1]
		}
	}
	switch {
	case from == "scratch":
		return 0
	case from == e.image:
		return e.baseLen
	}
	// Another pushed image: count its layers from the registry-less name.
	repo := strings.TrimSuffix(strings.TrimPrefix(from, e.reg.Host+"/"), ":latest")
	names := map[string]string{"scratch-go": testimages.ScratchGo, "nonroot": testimages.RootlessNonroot, "busybox": testimages.Busybox}
	return layoutLayers(t, testimages.Layout(t, names[repo]))
}

// TestStrict: with --cacerts-strict, a RUN whose install cannot happen (the
// image's tool would write the anchor into a cache mount) fails instead of
// running without the CAs; without strict the same RUN runs.
func TestStrict(t *testing.T) {
	e := newSmokeEnv(t)
	dockerfile := "FROM " + e.image + "\nRUN --mount=type=cache,target=/usr/local/share/ca-certificates true\n"
	strict := startDaemon(t, harness.DaemonConfig{TOML: e.toml, CADir: caDir(t, e.ca), Mode: "command", Args: []string{"--cacerts-strict"}})
	_, logs, err := e.build(t, strict, dockerfile)
	if err == nil || !strings.Contains(err.Error(), "cacerts") {
		t.Fatalf("strict build: err = %v, want the install error\n%s", err, logs)
	}
	lax := startDaemon(t, harness.DaemonConfig{TOML: e.toml, CADir: caDir(t, e.ca), Mode: "command"})
	if _, logs, err := e.build(t, lax, dockerfile); err != nil {
		t.Fatalf("non-strict build: %v\n%s", err, logs)
	}
}
