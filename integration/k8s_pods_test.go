package integration

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/buildkit-cacerts/buildkit-cacerts/internal/harness"
	"github.com/buildkit-cacerts/buildkit-cacerts/internal/testimages"
	"github.com/buildkit-cacerts/buildkit-cacerts/internal/testimages/factory"
)

// TestKubernetesPodsInDocker runs the containers of
// examples/kubernetes/deployment+service.{privileged,rootless}.yaml the way a
// kubelet would, with Debian's dockerd standing in for the node (no cluster
// can be stood up on this machine: docs/run.md). From each Deployment,
// decoded strictly into the k8s.io/api types, it takes the image, args,
// securityContext (privileged, seccomp/AppArmor Unconfined, runAsUser and
// runAsGroup) and volumeMounts as written; the volumes are laid out like
// the kubelet's (Secret and ConfigMap volumes are AtomicWriter directories:
// each key a symlink through ..data to a timestamped directory), the
// ConfigMap of trust-manager's Bundle holding the engine CA under the
// Bundle's key. The exec readiness probe is run with `docker exec`. Then a
// build goes in through the Service port (TCP with mutual TLS, the Secret's
// certificates) and its RUN fetches from an HTTPS server signed by the
// engine CA; then trust-manager's update is played (a second CA, the ..data
// swap) and a build that needs the second CA passes with no restart.
//
// The one change to the manifests: the Service port tcp://0.0.0.0:1234 is a
// free port on 127.0.0.1 (the containers share the host's network, where
// the test's registry and HTTPS servers are); the ConfigMap's buildkitd.toml
// gets the test registry's section appended (plain HTTP).
func TestKubernetesPodsInDocker(t *testing.T) {
	images := shipImages(t)
	bins := filepath.Join(os.TempDir(), "buildkit-cacerts-ship-binaries")
	buildctl := filepath.Join(bins, "buildctl")
	repo, err := factory.FindRepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	e := startDockerd(t)
	e.dockerOut(t, "load", "-i", images.ours)
	e.dockerOut(t, "load", "-i", images.rootless)
	// The image names the manifests use.
	e.dockerOut(t, "tag", shipImage, "buildkit-cacerts:latest")
	e.dockerOut(t, "tag", shipRootlessImage, "buildkit-cacerts:rootless")

	engineCA, err := harness.NewCA("k8s engine CA")
	if err != nil {
		t.Fatal(err)
	}
	addedCA, err := harness.NewCA("k8s CA added by trust-manager")
	if err != nil {
		t.Fatal(err)
	}
	serve := func(ca *harness.CA, body string) string {
		srv, err := harness.ServeHTTPS(ca, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, body) }))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(srv.Close)
		return srv.URL
	}
	url1 := serve(engineCA, "fetched through the engine CA\n")
	url2 := serve(addedCA, "fetched through the engine CA trust-manager added\n")
	reg := harness.StartRegistry()
	defer reg.Close()
	base, err := reg.PushLayout(t.Context(), testimages.Layout(t, testimages.DebianBookwormTLS), "debian:tls")
	if err != nil {
		t.Fatal(err)
	}
	buildDir := func(url string) string {
		d := t.TempDir()
		if err := os.WriteFile(filepath.Join(d, "Dockerfile"), []byte(fmt.Sprintf("FROM %s\nRUN curl -fsS %s -o /fetched.txt\n", base, url)), 0o644); err != nil {
			t.Fatal(err)
		}
		return d
	}
	ctx1, ctx2 := buildDir(url1), buildDir(url2)

	// The ConfigMap and the trust-manager Bundle's target key.
	var cm corev1.ConfigMap
	decodeStrict(t, filepath.Join(repo, "examples/kubernetes/buildkitd-config.yaml"), 0, &cm)
	toml := cm.Data["buildkitd.toml"] + "\n" + reg.TOML()
	var b bundleTarget
	decodeStrict(t, filepath.Join(repo, "examples/kubernetes/trust-bundle.yaml"), 0, &b)
	key := b.Spec.Target.ConfigMap.Key
	if key == "" {
		t.Fatal("trust-bundle.yaml: no target configMap key")
	}
	tlsf := newTLSFiles(t)
	secret := map[string][]byte{}
	for k, f := range map[string]string{"ca.pem": "ca.pem", "cert.pem": "server.pem", "key.pem": "server-key.pem"} {
		b, err := os.ReadFile(filepath.Join(tlsf.dir, f))
		if err != nil {
			t.Fatal(err)
		}
		secret[k] = b
	}

	for _, file := range []string{"deployment+service.privileged.yaml", "deployment+service.rootless.yaml"} {
		t.Run(strings.TrimSuffix(strings.TrimPrefix(file, "deployment+service."), ".yaml"), func(t *testing.T) {
			var dep appsv1.Deployment
			decodeStrict(t, filepath.Join(repo, "examples/kubernetes", file), 0, &dep)
			pod := dep.Spec.Template.Spec
			if len(pod.Containers) != 1 {
				t.Fatalf("%d containers", len(pod.Containers))
			}
			c := pod.Containers[0]
			name := strings.ReplaceAll(strings.TrimSuffix(file, ".yaml"), "+", "-")
			port := freePort(t)
			// Volumes, laid out as the kubelet does.
			cacerts := newAtomicDir(t, map[string][]byte{key: engineCA.PEM})
			vols := map[string]string{}
			for _, v := range pod.Volumes {
				switch {
				case v.Secret != nil && v.Secret.SecretName == "buildkit-daemon-certs":
					vols[v.Name] = newAtomicDir(t, secret).dir
				case v.ConfigMap != nil && v.ConfigMap.Name == "buildkit-cacerts":
					vols[v.Name] = cacerts.dir
				case v.ConfigMap != nil && v.ConfigMap.Name == "buildkitd-config":
					vols[v.Name] = newAtomicDir(t, map[string][]byte{"buildkitd.toml": []byte(toml)}).dir
				case v.EmptyDir != nil:
					d := filepath.Join(t.TempDir(), v.Name)
					os.Mkdir(d, 0o777)
					os.Chmod(d, 0o777) // the kubelet's emptyDir mode
					vols[v.Name] = d
				default:
					t.Fatalf("volume %s: a kind this test does not lay out: %+v", v.Name, v.VolumeSource)
				}
			}
			args := []string{"run", "-d", "--name", name, "--network", "host"}
			if sc := c.SecurityContext; sc != nil {
				if sc.Privileged != nil && *sc.Privileged {
					args = append(args, "--privileged")
				}
				if sc.SeccompProfile != nil && sc.SeccompProfile.Type == corev1.SeccompProfileTypeUnconfined {
					args = append(args, "--security-opt", "seccomp=unconfined")
				}
				if sc.AppArmorProfile != nil && sc.AppArmorProfile.Type == corev1.AppArmorProfileTypeUnconfined {
					args = append(args, "--security-opt", "apparmor=unconfined")
				}
				if sc.RunAsUser != nil {
					u := fmt.Sprint(*sc.RunAsUser)
					if sc.RunAsGroup != nil {
						u += fmt.Sprintf(":%d", *sc.RunAsGroup)
					}
					args = append(args, "--user", u)
				}
			}
			for _, m := range c.VolumeMounts {
				if m.SubPath != "" {
					t.Errorf("mount %s uses subPath: trust-manager's updates would not reach it", m.MountPath)
				}
				spec := vols[m.Name] + ":" + m.MountPath
				if m.ReadOnly {
					spec += ":ro"
				}
				args = append(args, "-v", spec)
			}
			args = append(args, c.Image)
			serviceAddr := fmt.Sprintf("tcp://127.0.0.1:%d", port)
			for _, a := range c.Args {
				if a == "tcp://0.0.0.0:1234" {
					a = serviceAddr
				}
				args = append(args, a)
			}
			t.Logf("docker %s", strings.Join(args, " "))
			t0 := time.Now()
			e.dockerOut(t, args...)
			// The readiness probe, as the kubelet runs it.
			probe := append([]string{"exec", name}, c.ReadinessProbe.Exec.Command...)
			for {
				if _, err := e.docker(probe...); err == nil {
					break
				}
				if time.Since(t0) > 60*time.Second || !strings.Contains(e.dockerOut(t, "inspect", "--format", "{{.State.Status}}", name), "running") {
					t.Fatalf("the readiness probe %q did not pass within 60s; logs:\n%s", c.ReadinessProbe.Exec.Command, lastBytes(e.dockerOut(t, "logs", name), 4000))
				}
				time.Sleep(100 * time.Millisecond)
			}
			t.Logf("ready (probe %q) %v after docker run", c.ReadinessProbe.Exec.Command, time.Since(t0).Round(time.Millisecond))

			build := func(what, ctxDir string) {
				t.Helper()
				out := filepath.Join(t.TempDir(), "image.tar")
				b, err := exec.Command(buildctl, "--addr", serviceAddr, "--tlscacert", tlsf.ca, "--tlscert", tlsf.cert, "--tlskey", tlsf.key,
					"build", "--progress", "plain", "--no-cache", "--frontend", "dockerfile.v0",
					"--local", "context="+ctxDir, "--local", "dockerfile="+ctxDir, "--output", "type=oci,dest="+out).CombinedOutput()
				if err != nil {
					t.Fatalf("%s: %v\n%s\ndaemon log:\n%s", what, err, lastBytes(string(b), 3000), lastBytes(e.dockerOut(t, "logs", name), 3000))
				}
				checkOnlyFetched(t, what, out)
			}
			build(file+": buildctl through the Service port (mTLS), engine CA from the trust-manager ConfigMap", ctx1)
			// trust-manager adds a CA: a new timestamped directory, ..data
			// swapped. No restart.
			cacerts.update(t, map[string][]byte{key: append(append([]byte{}, engineCA.PEM...), addedCA.PEM...)})
			build(file+": after trust-manager's update (..data swapped, no restart), a RUN that needs the added CA", ctx2)
			if l := grepLines(e.dockerOut(t, "logs", name), "cacerts: exec"); !strings.Contains(l, "cas=2") {
				t.Errorf("no exec with the 2 CAs of the updated bundle in the log:\n%s", l)
			}
		})
	}
}

// bundleTarget is the part of trust-manager's Bundle this test reads.
type bundleTarget struct {
	Spec struct {
		Target struct {
			ConfigMap struct {
				Key string `json:"key"`
			} `json:"configMap"`
		} `json:"target"`
	} `json:"spec"`
}

// decodeStrict decodes document n of a YAML file into v (unknown fields
// fail, except for bundleTarget, which reads a part).
func decodeStrict(t *testing.T, file string, n int, v any) {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	docs := bytes.Split(b, []byte("\n---\n"))
	if n >= len(docs) {
		t.Fatalf("%s: no document %d", file, n)
	}
	dec := yaml.UnmarshalStrict
	if _, ok := v.(*bundleTarget); ok {
		dec = func(y []byte, o any, _ ...yaml.JSONOpt) error { return yaml.Unmarshal(y, o) }
	}
	if err := dec(docs[n], v); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
}

// atomicDir is a Secret or ConfigMap volume as the kubelet's AtomicWriter
// lays it out: DIR/..<timestamp>/KEY holds the data, DIR/..data links to
// the current timestamped directory, and DIR/KEY links to ..data/KEY. An
// update writes a new timestamped directory and renames a new ..data link
// over the old one.
type atomicDir struct {
	dir string
	n   int
}

func newAtomicDir(t *testing.T, files map[string][]byte) *atomicDir {
	t.Helper()
	d := &atomicDir{dir: t.TempDir()}
	os.Chmod(d.dir, 0o755) // t.TempDir is 0700; the rootless daemon is uid 1000
	d.update(t, files)
	return d
}

func (d *atomicDir) update(t *testing.T, files map[string][]byte) {
	t.Helper()
	d.n++
	ts := fmt.Sprintf("..2026_12_01_00_00_%02d.%09d", d.n, d.n)
	if err := os.Mkdir(filepath.Join(d.dir, ts), 0o755); err != nil {
		t.Fatal(err)
	}
	for k, b := range files {
		if err := os.WriteFile(filepath.Join(d.dir, ts, k), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	tmp := filepath.Join(d.dir, "..data_tmp")
	if err := os.Symlink(ts, tmp); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(d.dir, "..data")); err != nil {
		t.Fatal(err)
	}
	for k := range files {
		if _, err := os.Lstat(filepath.Join(d.dir, k)); os.IsNotExist(err) {
			if err := os.Symlink(filepath.Join("..data", k), filepath.Join(d.dir, k)); err != nil {
				t.Fatal(err)
			}
		}
	}
}
