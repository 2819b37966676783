package integration

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/buildkit-cacerts/buildkit-cacerts/internal/harness"
	"github.com/buildkit-cacerts/buildkit-cacerts/internal/testimages"
)

// Docker-in-docker, the way CI engines run BuildKit (issue 14): Debian's
// dockerd (package docker.io, installed by hack/setup.sh) on a data-root,
// exec-root and socket of its own, stopped when the test ends; our image
// and the upstream control image loaded into it; `docker run --privileged`
// of each with a CA directory mounted; builds with buildctl over the
// published unix socket and over TCP with mutual TLS; buildx (built from its
// module at buildxVersion) with the docker-container driver and a
// buildkitd.toml whose [cacerts] registry_cas hands the builder its CAs.
//
// Every container uses the host network: dockerd runs without a bridge or
// iptables (--bridge=none), and the test's registry and HTTPS server are on
// 127.0.0.1.

// buildxVersion is the docker/buildx release the test builds (its go.mod
// embeds the same BuildKit release as ours).
const buildxVersion = "v0.38.2"

// dockerEnv is one private dockerd.
type dockerEnv struct {
	dir  string // short temp dir holding everything
	host string // unix://dir/docker.sock
	cfg  string // DOCKER_CONFIG (buildx plugin)
}

// startDockerd starts Debian's dockerd on its own state and stops it (and
// every container in it) when the test ends.
func startDockerd(t *testing.T) *dockerEnv {
	t.Helper()
	dockerd, err := exec.LookPath("dockerd")
	if err != nil {
		t.Fatal("dockerd not found: run hack/setup.sh (installs Debian's docker.io)")
	}
	dir, err := os.MkdirTemp("", "dind-")
	if err != nil {
		t.Fatal(err)
	}
	e := &dockerEnv{dir: dir, host: "unix://" + filepath.Join(dir, "docker.sock"), cfg: filepath.Join(dir, "config")}
	logf, err := os.Create(filepath.Join(dir, "dockerd.log"))
	if err != nil {
		t.Fatal(err)
	}
	args := []string{}
	if missingCaps(t) {
		args = append(args, "--add-runtime", "capfit="+capFitRuntime(t, dir), "--default-runtime", "capfit")
		t.Log("this machine's capability bounding set lacks capabilities the kernel knows: dockerd's containers run through the capfit runtime (dind_runtime_test.go)")
	}
	cmd := exec.Command(dockerd, append(args,
		"--data-root", filepath.Join(dir, "data"),
		"--exec-root", filepath.Join(dir, "exec"),
		"--pidfile", filepath.Join(dir, "docker.pid"),
		"-H", e.host,
		"--containerd-namespace", "dind-test", "--containerd-plugins-namespace", "dind-test-plugins",
		"--bridge=none", "--iptables=false", "--ip-masq=false",
		"--storage-driver", "overlay2",
	)...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		// Containers first (dockerd stops them too, but not the buildx
		// builders' volumes), then dockerd and its containerd.
		if ids := strings.Fields(e.dockerOut(t, "ps", "-aq")); len(ids) > 0 {
			e.dockerOut(t, append([]string{"rm", "-f"}, ids...)...)
		}
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(60 * time.Second):
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		}
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(dir, "dockerd.log"))
			t.Logf("dockerd log (tail):\n%s", lastBytes(string(b), 4000))
		}
		harness.UnmountUnder(dir)
		if err := os.RemoveAll(dir); err != nil {
			t.Errorf("removing dockerd's state: %v", err)
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for {
		if _, err := e.docker("version", "--format", "{{.Server.Version}}"); err == nil {
			break
		}
		select {
		case <-exited:
			b, _ := os.ReadFile(filepath.Join(dir, "dockerd.log"))
			t.Fatalf("dockerd exited:\n%s", lastBytes(string(b), 4000))
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("dockerd did not answer within 60s")
		}
		time.Sleep(200 * time.Millisecond)
	}
	return e
}

func lastBytes(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// dockerCLI is Debian's docker client (the docker.io package), not another
// one earlier in PATH.
func dockerCLI() string {
	if _, err := os.Stat("/usr/bin/docker"); err == nil {
		return "/usr/bin/docker"
	}
	return "docker"
}

// docker runs the docker CLI against this dockerd.
func (e *dockerEnv) docker(args ...string) (string, error) {
	cmd := exec.Command(dockerCLI(), args...)
	cmd.Env = append(os.Environ(), "DOCKER_HOST="+e.host, "DOCKER_CONFIG="+e.cfg, "BUILDX_NO_DEFAULT_ATTESTATIONS=1")
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func (e *dockerEnv) dockerOut(t *testing.T, args ...string) string {
	t.Helper()
	out, err := e.docker(args...)
	if err != nil {
		t.Fatalf("docker %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// freePort returns a free TCP port on 127.0.0.1.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// bkContainer is one buildkitd container.
type bkContainer struct {
	id      string
	sock    string // host path of the published unix socket
	tcp     string // tcp://127.0.0.1:PORT (mutual TLS)
	debug   string // 127.0.0.1:PORT (--debugaddr)
	startup time.Duration
}

// runBuildkitd starts image privileged, like a CI job's BuildKit service:
// the CA directory mounted at /usr/local/share/ca-certificates, the config
// at /etc/buildkit/buildkitd.toml, the socket directory published, a TCP
// listener with mutual TLS. It waits until buildctl lists a worker.
func (e *dockerEnv) runBuildkitd(t *testing.T, image, name, caDir, toml string, tls *tlsFiles, buildctl string) *bkContainer {
	t.Helper()
	dir := filepath.Join(e.dir, name)
	sockDir := filepath.Join(dir, "run")
	if err := os.MkdirAll(sockDir, 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "buildkitd.toml")
	if err := os.WriteFile(cfg, []byte(toml), 0o644); err != nil {
		t.Fatal(err)
	}
	c := &bkContainer{
		sock:  filepath.Join(sockDir, "buildkitd.sock"),
		tcp:   fmt.Sprintf("tcp://127.0.0.1:%d", freePort(t)),
		debug: fmt.Sprintf("127.0.0.1:%d", freePort(t)),
	}
	start := time.Now()
	c.id = strings.TrimSpace(e.dockerOut(t, "run", "-d", "--privileged", "--network", "host", "--name", name,
		"-v", caDir+":/usr/local/share/ca-certificates:ro",
		"-v", cfg+":/etc/buildkit/buildkitd.toml:ro",
		"-v", sockDir+":/run/buildkit",
		"-v", tls.dir+":/certs:ro",
		image,
		"--addr", "unix:///run/buildkit/buildkitd.sock",
		"--addr", c.tcp,
		"--tlscacert", "/certs/ca.pem", "--tlscert", "/certs/server.pem", "--tlskey", "/certs/server-key.pem",
		"--debugaddr", c.debug,
	))
	deadline := time.Now().Add(60 * time.Second)
	for {
		if _, err := exec.Command(buildctl, "--addr", "unix://"+c.sock, "debug", "workers").CombinedOutput(); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not answer within 60s; logs:\n%s", name, e.dockerOut(t, "logs", name))
		}
		time.Sleep(50 * time.Millisecond)
	}
	c.startup = time.Since(start)
	return c
}

// runRootlessBuildkitd starts the rootless image the way upstream documents
// moby/buildkit:rootless (docs/rootless.md: `docker run --security-opt
// seccomp=unconfined --security-opt apparmor=unconfined moby/buildkit:rootless
// --oci-worker-no-process-sandbox`): uid 1000, RootlessKit, no --privileged.
// The CA directory is mounted at /usr/local/share/ca-certificates, the
// config at ~/.config/buildkit/buildkitd.toml, and the directory of the
// default socket (BUILDKIT_HOST) is published. It waits until buildctl lists
// a worker.
func (e *dockerEnv) runRootlessBuildkitd(t *testing.T, image, name, caDir, toml, buildctl string) *bkContainer {
	t.Helper()
	dir := filepath.Join(e.dir, name)
	sockDir := filepath.Join(dir, "run")
	if err := os.MkdirAll(sockDir, 0o700); err != nil {
		t.Fatal(err)
	}
	// The daemon is uid 1000 on the host (RootlessKit maps it to root
	// inside): it creates the socket there.
	if err := os.Chown(sockDir, 1000, 1000); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "buildkitd.toml")
	if err := os.WriteFile(cfg, []byte(toml), 0o644); err != nil {
		t.Fatal(err)
	}
	c := &bkContainer{sock: filepath.Join(sockDir, "buildkitd.sock"), debug: fmt.Sprintf("127.0.0.1:%d", freePort(t))}
	start := time.Now()
	c.id = strings.TrimSpace(e.dockerOut(t, "run", "-d", "--name", name, "--network", "host",
		"--security-opt", "seccomp=unconfined", "--security-opt", "apparmor=unconfined",
		"-v", caDir+":/usr/local/share/ca-certificates:ro",
		"-v", cfg+":/home/user/.config/buildkit/buildkitd.toml:ro",
		"-v", sockDir+":/run/user/1000/buildkit",
		image,
		"--oci-worker-no-process-sandbox", "--debugaddr", c.debug,
	))
	deadline := time.Now().Add(60 * time.Second)
	for {
		if _, err := exec.Command(buildctl, "--addr", "unix://"+c.sock, "debug", "workers").CombinedOutput(); err == nil {
			break
		}
		if time.Now().After(deadline) || !strings.Contains(e.dockerOut(t, "inspect", "--format", "{{.State.Status}}", name), "running") {
			t.Fatalf("%s did not answer within 60s (or exited); logs:\n%s", name, lastBytes(e.dockerOut(t, "logs", name), 4000))
		}
		time.Sleep(50 * time.Millisecond)
	}
	c.startup = time.Since(start)
	return c
}

// tlsFiles are the daemon's and the client's certificates for mutual TLS.
type tlsFiles struct {
	dir                      string // ca.pem, server.pem, server-key.pem
	ca, cert, key            string // client side
	serverCert, serverKeyPEM string
}

func newTLSFiles(t *testing.T) *tlsFiles {
	t.Helper()
	ca, err := harness.NewCA("buildkitd mTLS CA")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	f := &tlsFiles{dir: dir, ca: filepath.Join(dir, "ca.pem"), cert: filepath.Join(dir, "client.pem"), key: filepath.Join(dir, "client-key.pem")}
	if err := os.WriteFile(f.ca, ca.PEM, 0o644); err != nil {
		t.Fatal(err)
	}
	srv, err := ca.Leaf("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	if err := harness.WriteKeyPair(srv, filepath.Join(dir, "server.pem"), filepath.Join(dir, "server-key.pem")); err != nil {
		t.Fatal(err)
	}
	cl, err := ca.ClientLeaf("buildctl")
	if err != nil {
		t.Fatal(err)
	}
	if err := harness.WriteKeyPair(cl, f.cert, f.key); err != nil {
		t.Fatal(err)
	}
	// The container's daemon runs as root and reads them through the mount.
	for _, n := range []string{"server.pem", "server-key.pem"} {
		os.Chmod(filepath.Join(dir, n), 0o644)
	}
	return f
}

// buildxBinary builds docker-buildx from its module at buildxVersion once
// into the image cache's tools directory (minutes cold, seconds warm).
func buildxBinary(t *testing.T) string {
	t.Helper()
	cache := os.Getenv("CACERTS_IMAGE_CACHE")
	if cache == "" {
		cache = "/var/cache/buildkit-cacerts/images"
	}
	dir := filepath.Join(filepath.Dir(cache), "tools", "buildx-"+buildxVersion)
	bin := filepath.Join(dir, "buildx")
	if _, err := os.Stat(bin); err == nil {
		return bin
	}
	t0 := time.Now()
	cmd := exec.Command("go", "install", "github.com/docker/buildx/cmd/buildx@"+buildxVersion)
	cmd.Env = append(os.Environ(), "GOBIN="+dir, "GOFLAGS=", "GOWORK=off", "CGO_ENABLED=0")
	cmd.Dir = os.TempDir()
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building buildx %s: %v\n%s", buildxVersion, err, out)
	}
	t.Logf("built buildx %s in %v", buildxVersion, time.Since(t0).Round(time.Second))
	return bin
}

// TestDind is the docker-in-docker end-to-end test.
func TestDind(t *testing.T) {
	images := shipImages(t)
	bins := filepath.Join(os.TempDir(), "buildkit-cacerts-ship-binaries")
	buildctl := filepath.Join(bins, "buildctl")
	t0 := time.Now()
	e := startDockerd(t)
	t.Logf("dockerd %s up in %v", strings.TrimSpace(e.dockerOut(t, "version", "--format", "{{.Server.Version}}")), time.Since(t0).Round(time.Millisecond))
	for _, tar := range []string{images.ours, images.upstream, images.rootless} {
		e.dockerOut(t, "load", "-i", tar)
	}
	for _, img := range []string{shipImage, upstreamImage} {
		t.Logf("image %s: %s bytes (docker image inspect .Size)", img, strings.TrimSpace(e.dockerOut(t, "image", "inspect", "--format", "{{.Size}}", img)))
	}
	// Versions, as a user reads them.
	ver := strings.TrimSpace(e.dockerOut(t, "run", "--rm", shipImage, "--version"))
	bctlVer := strings.TrimSpace(e.dockerOut(t, "run", "--rm", "--entrypoint", "buildctl", shipImage, "--version"))
	t.Logf("buildkitd --version: %s", ver)
	t.Logf("buildctl --version: %s", bctlVer)
	if strings.Contains(ver+bctlVer, "v0.0.0+unknown") || !strings.Contains(ver, "buildkit-cacerts") || !strings.Contains(ver, harness.UpstreamVersion) {
		t.Errorf("versions do not name ours and BuildKit %s: %q, %q", harness.UpstreamVersion, ver, bctlVer)
	}

	// The engine CA signs the HTTPS server; the CA directory holds it.
	engineCA, err := harness.NewCA("dind engine CA")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := harness.ServeHTTPS(engineCA, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, "fetched through the engine CA\n") }))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	cas := caDir(t, engineCA)
	os.Chmod(cas, 0o755)
	reg := harness.StartRegistry()
	defer reg.Close()
	base, err := reg.PushLayout(context.Background(), testimages.Layout(t, testimages.DebianBookwormTLS), "debian:tls")
	if err != nil {
		t.Fatal(err)
	}
	ctxDir := t.TempDir()
	dockerfile := fmt.Sprintf("FROM %s\nRUN curl -fsS %s -o /fetched.txt\n", base, srv.URL)
	if err := os.WriteFile(filepath.Join(ctxDir, "Dockerfile"), []byte(dockerfile), 0o644); err != nil {
		t.Fatal(err)
	}
	tlsf := newTLSFiles(t)

	ours := e.runBuildkitd(t, shipImage, "ours", cas, reg.TOML(), tlsf, buildctl)
	up := e.runBuildkitd(t, upstreamImage, "upstream", cas, reg.TOML(), tlsf, buildctl)
	t.Logf("start to first answer (docker run → buildctl debug workers): ours %v, upstream %v", ours.startup.Round(time.Millisecond), up.startup.Round(time.Millisecond))
	if w := e.dockerOut(t, "exec", "ours", "buildctl", "debug", "workers", "-v"); !strings.Contains(w, labelCACertsName) {
		t.Errorf("worker labels lack %s:\n%s", labelCACertsName, w)
	} else {
		t.Logf("worker: %s", grepLines(w, "buildkit-cacerts"))
	}

	buildctlBuild := func(c *bkContainer, viaTCP bool) (string, error) {
		out := filepath.Join(t.TempDir(), "image.tar")
		args := []string{"--addr", "unix://" + c.sock}
		if viaTCP {
			args = []string{"--addr", c.tcp, "--tlscacert", tlsf.ca, "--tlscert", tlsf.cert, "--tlskey", tlsf.key}
		}
		args = append(args, "build", "--progress", "plain", "--no-cache", "--frontend", "dockerfile.v0",
			"--local", "context="+ctxDir, "--local", "dockerfile="+ctxDir, "--output", "type=oci,dest="+out)
		b, err := exec.Command(buildctl, args...).CombinedOutput()
		if err != nil {
			return string(b), err
		}
		return out, nil
	}
	checkOnlyFetched := func(what, ociTar string) { checkOnlyFetched(t, what, ociTar) }
	for _, viaTCP := range []bool{false, true} {
		what := "buildctl over the published unix socket"
		if viaTCP {
			what = "buildctl over tcp with mutual TLS"
		}
		out, err := buildctlBuild(ours, viaTCP)
		if err != nil {
			t.Fatalf("%s: %v\n%s", what, err, out)
		}
		checkOnlyFetched(what, out)
	}
	// Negative control: upstream's buildkitd, same CA mount, same build.
	if out, err := buildctlBuild(up, false); err == nil {
		t.Error("negative control: the build on upstream's buildkitd passed; want the unknown-authority failure")
	} else if !strings.Contains(out, "SSL certificate problem") {
		t.Errorf("negative control failed, but not on the certificate:\n%s", lastBytes(out, 3000))
	} else {
		t.Logf("negative control (upstream image, buildctl): failed as expected: %s", grepLines(out, "SSL certificate problem"))
	}
	// The rootless image, run as upstream documents its -rootless image: not
	// privileged, seccomp and AppArmor unconfined, no process sandbox. The
	// socket is the image's default (BUILDKIT_HOST), published from the
	// container; the config is the rootless one, ~/.config/buildkit.
	rl := e.runRootlessBuildkitd(t, shipRootlessImage, "rootless", cas, reg.TOML(), buildctl)
	t.Logf("rootless: start to first answer %v", rl.startup.Round(time.Millisecond))
	if w := e.dockerOut(t, "exec", "rootless", "buildctl", "debug", "workers", "-v"); !strings.Contains(w, labelCACertsName) {
		t.Errorf("rootless: worker labels lack %s (or buildctl in the container did not reach BUILDKIT_HOST):\n%s", labelCACertsName, w)
	} else {
		t.Logf("rootless worker (buildctl in the container, BUILDKIT_HOST): %s", grepLines(w, "snapshotter")+" "+grepLines(w, "executor"))
	}
	if out, err := buildctlBuild(rl, false); err != nil {
		t.Errorf("buildctl on the rootless container: %v\n%s\ndaemon log:\n%s", err, lastBytes(out, 3000), lastBytes(e.dockerOut(t, "logs", "rootless"), 3000))
	} else {
		checkOnlyFetched("buildctl on the rootless image (RootlessKit, uid 1000)", out)
		if l := grepLines(e.dockerOut(t, "logs", "rootless"), "cacerts: exec"); !strings.Contains(l, "outcome=installed") {
			t.Errorf("rootless: no installed exec in the daemon's log")
		} else {
			t.Logf("rootless per-exec log line:\n%s", l)
		}
	}

	// Our counters after the builds, as `curl <debugaddr>/metrics` shows them.
	metrics := httpGet(t, "http://"+ours.debug+"/metrics")
	t.Logf("curl http://%s/metrics | grep buildkit_cacerts:\n%s", ours.debug, grepLines(metrics, "buildkit_cacerts_"))
	if !strings.Contains(metrics, `buildkit_cacerts_execs_total{outcome="installed",path=`) {
		t.Errorf("/metrics lacks an installed exec")
	}
	logs := e.dockerOut(t, "logs", "ours")
	if l := grepLines(logs, "cacerts: exec"); !strings.Contains(l, "outcome=installed") {
		t.Errorf("no per-exec info line in the daemon's log:\n%s", lastBytes(logs, 3000))
	} else {
		t.Logf("per-exec log lines:\n%s", l)
	}

	// buildx with the docker-container driver, exactly as docs/run.md
	// tells a user (plus network=host: the test's servers are on loopback).
	buildx := buildxBinary(t)
	plugins := filepath.Join(e.cfg, "cli-plugins")
	os.MkdirAll(plugins, 0o755)
	if b, err := os.ReadFile(buildx); err != nil {
		t.Fatal(err)
	} else if err := os.WriteFile(filepath.Join(plugins, "docker-buildx"), b, 0o755); err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(t.TempDir(), "corp-root.pem")
	if err := os.WriteFile(caFile, engineCA.PEM, 0o644); err != nil {
		t.Fatal(err)
	}
	bxToml := filepath.Join(t.TempDir(), "buildkitd.toml")
	if err := os.WriteFile(bxToml, []byte(fmt.Sprintf("[registry.%q]\n  http = true\n  ca = [%q]\n\n[cacerts]\n  registry_cas = true\n", reg.Host, caFile)), 0o644); err != nil {
		t.Fatal(err)
	}
	buildxBuild := func(builder, image string) (string, string, error) {
		t.Helper()
		t1 := time.Now()
		e.dockerOut(t, "buildx", "create", "--name", builder, "--driver", "docker-container",
			"--driver-opt", "image="+image, "--driver-opt", "network=host",
			"--buildkitd-config", bxToml, "--bootstrap")
		t.Logf("docker buildx create %s: %v", builder, time.Since(t1).Round(time.Millisecond))
		out := filepath.Join(t.TempDir(), "image.tar")
		b, err := e.docker("buildx", "build", "--builder", builder, "--progress", "plain", "--no-cache",
			"--output", "type=oci,dest="+out, ctxDir)
		return out, string(b), err
	}
	if out, logs, err := buildxBuild("cacerts", shipImage); err != nil {
		t.Errorf("docker buildx build on our image: %v\n%s", err, lastBytes(logs, 3000))
	} else {
		checkOnlyFetched("buildx docker-container on our image", out)
	}
	if _, logs, err := buildxBuild("upstream", upstreamImage); err == nil {
		t.Error("negative control: buildx on upstream's buildkitd passed")
	} else if !strings.Contains(logs, "SSL certificate problem") {
		t.Errorf("buildx negative control failed, but not on the certificate:\n%s", lastBytes(logs, 3000))
	} else {
		t.Logf("negative control (upstream image, buildx): failed as expected: %s", grepLines(logs, "SSL certificate problem"))
	}
	// buildx's remote driver on the running container's tcp+mTLS listener,
	// as docs/run.md tells a user (the CA set is the container's mount).
	e.dockerOut(t, "buildx", "create", "--name", "remote", "--driver", "remote",
		"--driver-opt", fmt.Sprintf("cacert=%s,cert=%s,key=%s", tlsf.ca, tlsf.cert, tlsf.key), ours.tcp)
	out := filepath.Join(t.TempDir(), "image.tar")
	if logs, err := e.docker("buildx", "build", "--builder", "remote", "--progress", "plain", "--no-cache", "--output", "type=oci,dest="+out, ctxDir); err != nil {
		t.Errorf("docker buildx build with the remote driver: %v\n%s", err, lastBytes(logs, 3000))
	} else {
		checkOnlyFetched("buildx remote driver (tcp+mTLS) on our container", out)
	}
	t.Logf("TestDind wall time after the image build: %v", time.Since(t0).Round(time.Second))
}

// checkOnlyFetched: the RUN's layer holds exactly what the RUN wrote,
// fetched.txt with the test server's body. (Proven able to fail: with the
// RUN also touching /etc/planted, all four builds on our daemon report
// ["etc" "etc/planted" "fetched.txt"].)
func checkOnlyFetched(t *testing.T, what, ociTar string) {
	t.Helper()
	layers := imageLayers(t, ociTar)
	last := layers[len(layers)-1]
	var names []string
	for _, e := range last {
		names = append(names, e.name)
	}
	if len(names) != 1 || names[0] != "fetched.txt" || !strings.Contains(last[0].body, "engine CA") {
		t.Errorf("%s: the RUN's layer holds %q, want only fetched.txt with the server's body", what, names)
	} else {
		t.Logf("%s: passed; the RUN's layer holds only %q", what, names)
	}
}

// labelCACertsName is the worker label cmd/buildkitd-cacerts sets.
const labelCACertsName = "buildkit-cacerts.buildkit"

func grepLines(s, sub string) string {
	var out []string
	sc := bufio.NewScanner(strings.NewReader(s))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if strings.Contains(sc.Text(), sub) {
			out = append(out, sc.Text())
		}
	}
	return strings.Join(out, "\n")
}

func httpGet(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
