package integration

import (
	"strings"
	"testing"

	"github.com/moby/buildkit/session/secrets/secretsprovider"

	"github.com/buildkit-cacerts/buildkit-cacerts/internal/harness"
)

// hostileTool replaces the image's update-ca-certificates with a script that
// first runs body, then the real tool.
func hostileTool(body string) string {
	script := "#!/bin/sh\n" + body + "\nexec /usr/sbin/update-ca-certificates.real \"$@\"\n"
	return "RUN mv /usr/sbin/update-ca-certificates /usr/sbin/update-ca-certificates.real && " +
		"printf '" + strings.ReplaceAll(script, "\n", `\n`) + "' > /usr/sbin/update-ca-certificates && " +
		"chmod 755 /usr/sbin/update-ca-certificates\n"
}

// TestSiblingHostileTool runs the command path with an image whose update
// tool is hostile (issue 12): it must not see the step's secret or SSH
// agent, and a write outside the trust store must fail the step (strict or
// not) instead of being committed with the layer; the same step without
// injection builds.
func TestSiblingHostileTool(t *testing.T) {
	e := newSmokeEnv(t)
	secret := secretsprovider.FromMap(map[string][]byte{"tok": []byte("s3cret-value")})
	t.Run("no secret in the sibling", func(t *testing.T) {
		d := startDaemon(t, harness.DaemonConfig{TOML: e.toml, CADir: caDir(t, e.ca), Mode: "command"})
		dockerfile := "FROM " + e.image + "\n" +
			hostileTool(`echo "tool-""ran: $(ls /run/secrets 2>&1) $(cat /run/secrets/tok 2>&1)"`) +
			"RUN --mount=type=secret,id=tok,required=true grep -q s3cret-val /run/secrets/tok && echo user-saw-secret\n"
		_, logs, err := e.build(t, d, dockerfile, secret)
		if err != nil {
			t.Fatalf("build: %v\n%s", err, logs)
		}
		if !strings.Contains(logs, "user-saw-secret") {
			t.Fatalf("the RUN did not see its secret:\n%s", logs)
		}
		// "tool-ran:" is only in the tool's output (the Dockerfile, which
		// the log quotes, has tool-""ran).
		if !strings.Contains(d.Log(), "tool-ran:") {
			t.Fatalf("the hostile tool did not run in the sibling:\n%s", d.Log())
		}
		// The value is nowhere in the Dockerfile (the RUN greps a prefix):
		// only a tool that read the secret could log it.
		if strings.Contains(d.Log(), "s3cret-value") {
			t.Error("the image's update tool read the step's secret")
		}
	})
	t.Run("write outside the trust store fails the step", func(t *testing.T) {
		d := startDaemon(t, harness.DaemonConfig{TOML: e.toml, CADir: caDir(t, e.ca), Mode: "command"})
		run := "RUN echo user-ran\n"
		dockerfile := "FROM " + e.image + "\n" + hostileTool("echo exfil > /exfil") + run
		_, logs, err := e.build(t, d, dockerfile)
		if err == nil || !strings.Contains(err.Error(), "wrote outside the trust store") || !strings.Contains(err.Error(), "/exfil") {
			t.Fatalf("build error = %v, want the step failed for /exfil\n%s", err, logs)
		}
		if _, logs, err := e.build(t, d, optOut(dockerfile)); err != nil {
			t.Fatalf("the same build with BUILDKIT_CACERTS=off: %v\n%s", err, logs)
		}
	})
	t.Run("native snapshotter: the whole root is checked", func(t *testing.T) {
		// The root is a bind of a full copy of the image: the scan walks
		// all of it, before and after; the real tool passes.
		d := startDaemon(t, harness.DaemonConfig{TOML: e.toml, CADir: caDir(t, e.ca), Mode: "command", Args: []string{"--oci-worker-snapshotter", "native"}})
		dockerfile := "FROM " + e.image + "\nRUN curl -fsS " + e.url + " -o /got\n"
		out, logs, err := e.build(t, d, dockerfile)
		if err != nil {
			t.Fatalf("build: %v\n%s", err, logs)
		}
		if !strings.Contains(d.Log(), "cacerts: sibling ran") {
			t.Fatal("no sibling ran in command mode")
		}
		e.requireOnlyGot(t, out)
		_, logs, err = e.build(t, d, "FROM "+e.image+"\n"+hostileTool("echo exfil > /exfil")+"RUN true\n")
		if err == nil || !strings.Contains(err.Error(), "/exfil") {
			t.Fatalf("hostile tool on native: error = %v, want the step failed for /exfil\n%s", err, logs)
		}
	})
}
