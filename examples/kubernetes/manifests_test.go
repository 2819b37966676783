// Package kubernetes holds the Kubernetes examples; its test checks them.
package kubernetes

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	bkconfig "github.com/moby/buildkit/cmd/buildkitd/config"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/pelletier/go-toml/v2"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

// The paths the Dockerfile and docs/run.md promise.
const (
	caMount          = "/usr/local/share/ca-certificates"
	configPrivileged = "/etc/buildkit"
	configRootless   = "/home/user/.config/buildkit"
	stateRootless    = "/home/user/.local/share/buildkit"
	imagePrivileged  = "buildkit-cacerts:latest"
	imageRootless    = "buildkit-cacerts:rootless"
)

// bundle is trust-manager's Bundle (trust.cert-manager.io/v1alpha1), the
// fields the example uses; decoded strictly like the rest.
type bundle struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		Sources []struct {
			UseDefaultCAs *bool `json:"useDefaultCAs,omitempty"`
			Secret        *struct {
				Name string `json:"name"`
				Key  string `json:"key"`
			} `json:"secret,omitempty"`
			ConfigMap *struct {
				Name string `json:"name"`
				Key  string `json:"key"`
			} `json:"configMap,omitempty"`
		} `json:"sources"`
		Target struct {
			ConfigMap *struct {
				Key string `json:"key"`
			} `json:"configMap,omitempty"`
			NamespaceSelector *metav1.LabelSelector `json:"namespaceSelector,omitempty"`
		} `json:"target"`
	} `json:"spec"`
}

type workload struct {
	file string
	kind string
	pod  corev1.PodSpec
}

// decodeAll strictly decodes every document of every example.
func decodeAll(t *testing.T) (workloads []workload, cms map[string]corev1.ConfigMap, bundles []bundle, services []corev1.Service) {
	t.Helper()
	files, _ := filepath.Glob("*.yaml")
	if len(files) == 0 {
		t.Fatal("no examples")
	}
	cms = map[string]corev1.ConfigMap{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for i, doc := range bytes.Split(b, []byte("\n---\n")) {
			var tm metav1.TypeMeta
			if err := yaml.Unmarshal(doc, &tm); err != nil {
				t.Fatalf("%s doc %d: %v", f, i, err)
			}
			strict := func(v any) {
				t.Helper()
				if err := yaml.UnmarshalStrict(doc, v); err != nil {
					t.Fatalf("%s doc %d (%s): strict decode: %v", f, i, tm.Kind, err)
				}
			}
			switch tm.APIVersion + "/" + tm.Kind {
			case "apps/v1/Deployment":
				var d appsv1.Deployment
				strict(&d)
				workloads = append(workloads, workload{f, tm.Kind, d.Spec.Template.Spec})
			case "apps/v1/StatefulSet":
				var s appsv1.StatefulSet
				strict(&s)
				workloads = append(workloads, workload{f, tm.Kind, s.Spec.Template.Spec})
				for _, v := range s.Spec.VolumeClaimTemplates {
					s.Spec.Template.Spec.Volumes = append(s.Spec.Template.Spec.Volumes, corev1.Volume{Name: v.Name})
				}
				workloads[len(workloads)-1].pod = s.Spec.Template.Spec
			case "batch/v1/Job":
				var j batchv1.Job
				strict(&j)
				workloads = append(workloads, workload{f, tm.Kind, j.Spec.Template.Spec})
			case "v1/Service":
				var s corev1.Service
				strict(&s)
				services = append(services, s)
			case "v1/ConfigMap":
				var c corev1.ConfigMap
				strict(&c)
				cms[c.Name] = c
			case "trust.cert-manager.io/v1alpha1/Bundle":
				var bd bundle
				strict(&bd)
				bundles = append(bundles, bd)
			default:
				t.Fatalf("%s doc %d: unexpected %s %s", f, i, tm.APIVersion, tm.Kind)
			}
		}
	}
	return workloads, cms, bundles, services
}

// TestManifests: every example decodes strictly into the k8s.io/api types,
// and the images, mounts, probes, security settings and config agree with
// the Dockerfile and docs/run.md. (Proven able to fail: a subPath on the
// CA mount, a typo'd field such as `readOnlyy`, or the rootless config
// mounted at /etc/buildkit each fail it.)
func TestManifests(t *testing.T) {
	workloads, cms, bundles, services := decodeAll(t)
	if len(bundles) != 1 || bundles[0].Spec.Target.ConfigMap == nil {
		t.Fatalf("want one Bundle with a ConfigMap target, got %d", len(bundles))
	}
	bundleName := bundles[0].Name
	df := dockerfileFacts(t)

	kinds := map[string]bool{}
	for _, w := range workloads {
		rootless := strings.Contains(w.file, "rootless")
		kinds[w.kind+"/"+map[bool]string{true: "rootless", false: "privileged"}[rootless]] = true
		c := w.pod.Containers[0]
		what := w.file + " " + w.kind
		wantImage, wantConfig := imagePrivileged, configPrivileged
		if rootless {
			wantImage, wantConfig = imageRootless, configRootless
		}
		for _, ic := range append(slices.Clone(w.pod.InitContainers), w.pod.Containers...) {
			if ic.Image != wantImage {
				t.Errorf("%s: container %s image %q, want %q", what, ic.Name, ic.Image, wantImage)
			}
		}
		vols := map[string]corev1.Volume{}
		for _, v := range w.pod.Volumes {
			vols[v.Name] = v
		}
		mounts := map[string]corev1.VolumeMount{}
		for _, m := range c.VolumeMounts {
			mounts[m.MountPath] = m
			if _, ok := vols[m.Name]; !ok {
				t.Errorf("%s: mount %s names no volume %q", what, m.MountPath, m.Name)
			}
		}
		// The CA directory: trust-manager's ConfigMap, whole (no subPath,
		// so its ..data swaps reach the daemon), read-only.
		m, ok := mounts[caMount]
		switch {
		case !ok:
			t.Errorf("%s: no mount at %s", what, caMount)
		case m.SubPath != "" || !m.ReadOnly:
			t.Errorf("%s: CA mount must be read-only without subPath: %+v", what, m)
		case vols[m.Name].ConfigMap == nil || vols[m.Name].ConfigMap.Name != bundleName:
			t.Errorf("%s: CA mount is not the Bundle's ConfigMap %q", what, bundleName)
		}
		if !slices.Contains(df.caDirs, caMount) {
			t.Errorf("the Dockerfile does not create %s", caMount)
		}
		// buildkitd.toml where the daemon looks for it.
		m, ok = mounts[wantConfig]
		if !ok || vols[m.Name].ConfigMap == nil || m.SubPath != "" {
			t.Errorf("%s: no config ConfigMap mounted at %s", what, wantConfig)
		} else {
			checkConfig(t, what, cms[vols[m.Name].ConfigMap.Name])
		}
		args := strings.Join(append(slices.Clone(c.Command), c.Args...), " ")
		if rootless {
			sc := c.SecurityContext
			if sc == nil || sc.RunAsUser == nil || *sc.RunAsUser != 1000 || sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeUnconfined || sc.AppArmorProfile == nil || sc.AppArmorProfile.Type != corev1.AppArmorProfileTypeUnconfined {
				t.Errorf("%s: rootless needs uid 1000 and unconfined seccomp and AppArmor: %+v", what, sc)
			}
			if sc != nil && sc.Privileged != nil && *sc.Privileged {
				t.Errorf("%s: rootless example is privileged", what)
			}
			if !strings.Contains(args, "--oci-worker-no-process-sandbox") {
				t.Errorf("%s: rootless without --oci-worker-no-process-sandbox", what)
			}
			if _, ok := mounts[stateRootless]; !ok || !slices.Contains(df.rootlessVolumes, stateRootless) {
				t.Errorf("%s: the rootless state %s is not both the Dockerfile's VOLUME and mounted", what, stateRootless)
			}
			if strings.Contains(args, "unix://") && !strings.Contains(args, df.rootlessHost) {
				t.Errorf("%s: the unix --addr is not the image's BUILDKIT_HOST %s (the probe's buildctl uses it)", what, df.rootlessHost)
			}
		} else if sc := c.SecurityContext; sc == nil || sc.Privileged == nil || !*sc.Privileged {
			t.Errorf("%s: privileged example not privileged", what)
		}
		if w.kind != "Job" {
			for name, p := range map[string]*corev1.Probe{"readiness": c.ReadinessProbe, "liveness": c.LivenessProbe} {
				if p == nil || p.Exec == nil || !slices.Equal(p.Exec.Command, []string{"buildctl", "debug", "workers"}) {
					t.Errorf("%s: %s probe is not `buildctl debug workers`", what, name)
				}
			}
		}
	}
	for _, k := range []string{"Deployment/privileged", "Deployment/rootless", "StatefulSet/privileged", "StatefulSet/rootless", "Job/privileged", "Job/rootless"} {
		if !kinds[k] {
			t.Errorf("no %s example", k)
		}
	}
	if len(services) == 0 {
		t.Error("no Service")
	}
	// docs/run.md names every example.
	doc, err := os.ReadFile("../../docs/run.md")
	if err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob("*.yaml")
	for _, f := range files {
		if !strings.Contains(string(doc), f) {
			t.Errorf("docs/run.md does not mention examples/kubernetes/%s", f)
		}
	}
}

// checkConfig: the buildkitd.toml loads with BuildKit's loader and its
// [cacerts] dir is the CA mount.
func checkConfig(t *testing.T, what string, cm corev1.ConfigMap) {
	t.Helper()
	text, ok := cm.Data["buildkitd.toml"]
	if !ok {
		t.Errorf("%s: ConfigMap %s has no buildkitd.toml", what, cm.Name)
		return
	}
	if _, err := bkconfig.Load(strings.NewReader(text)); err != nil {
		t.Errorf("%s: buildkitd.toml: %v", what, err)
	}
	var f struct {
		CACerts struct {
			Dir string `toml:"dir"`
		} `toml:"cacerts"`
	}
	if err := toml.Unmarshal([]byte(text), &f); err != nil {
		t.Errorf("%s: %v", what, err)
	}
	if f.CACerts.Dir != "" && f.CACerts.Dir != caMount {
		t.Errorf("%s: [cacerts] dir %q is not the CA mount %s", what, f.CACerts.Dir, caMount)
	}
}

type dfFacts struct {
	caDirs          []string
	rootlessVolumes []string
	rootlessHost    string // unix:///…
}

// dockerfileFacts parses the top-level Dockerfile with BuildKit's parser.
func dockerfileFacts(t *testing.T) dfFacts {
	t.Helper()
	b, err := os.ReadFile("../../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	res, err := parser.Parse(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	stages, _, err := instructions.Parse(res.AST, nil)
	if err != nil {
		t.Fatal(err)
	}
	var f dfFacts
	for _, s := range stages {
		for _, c := range s.Commands {
			switch c := c.(type) {
			case *instructions.RunCommand:
				if line := strings.Join(c.CmdLine, " "); strings.Contains(line, "mkdir") {
					for _, w := range strings.Fields(line) {
						f.caDirs = append(f.caDirs, w)
					}
				}
			case *instructions.VolumeCommand:
				if s.Name == "rootless" {
					f.rootlessVolumes = append(f.rootlessVolumes, c.Volumes...)
				}
			case *instructions.EnvCommand:
				for _, kv := range c.Env {
					if s.Name == "rootless" && kv.Key == "BUILDKIT_HOST" {
						f.rootlessHost = kv.Value
					}
				}
			}
		}
	}
	if f.rootlessHost == "" {
		t.Fatal("the Dockerfile's rootless stage sets no BUILDKIT_HOST")
	}
	return f
}
