#!/usr/bin/env bash
# hack/k8s-driver.sh ROOTLESS_IMAGE_TAR — buildx's kubernetes driver against a
# one-node cluster stood up on this machine from what it reaches, as root:
#
#   - kube-apiserver, kube-controller-manager, kube-scheduler and kubelet
#     built from the k8s.io/kubernetes module (K8S_VERSION) through the Go
#     module proxy: `go install k8s.io/kubernetes/cmd/...@v` refuses the
#     module (replace directives), so a scratch module repeats its staging
#     replaces at the matching k8s.io/* v0 releases. Cached under
#     /var/cache/buildkit-cacerts/tools/k8s-$K8S_VERSION (about 40 min of
#     compiling on this 2-core machine, cold);
#   - Debian's etcd-server 3.4, containerd 1.6 (CRI) and
#     containernetworking-plugins; a pause image made from hack/images'
#     busybox (no registry is reachable);
#   - everything in a network namespace of its own (bkc8s): the pods'
#     bridge, the node's address (10.89.0.1) and the API server
#     (127.0.0.1:16443 in that namespace) exist only there.
#
# ROOTLESS_IMAGE_TAR is the rootless target as a docker-format tarball
# (TestShipImage writes $TMPDIR/buildkit-cacerts-ship-images/rootless.tar).
# Then, as docs/run.md tells a user:
#   buildx create --driver kubernetes --driver-opt image=buildkit-cacerts:rootless,rootless=true,namespace=buildkit \
#     --buildkitd-config buildkitd.toml --bootstrap
# with [cacerts] registry_cas = true and the engine CA under a
# [registry."corp.example"] ca, and a build whose RUN verifies a leaf the
# engine CA signed (openssl verify against the image's own store; the base
# image comes from an OCI layout through the client, so no registry). The
# layer must hold only the RUN's output. Everything is stopped and removed
# at the end. Not part of hack/test.sh.
#
# Known settings this machine needs: cgroup v1 (kubelet failCgroupV1=false),
# no CAP_SYS_RESOURCE in the bounding set (containerd
# restrict_oom_score_adj, else the pause container cannot lower its OOM
# score: "can't get final child's PID from pipe"), kubelet and containerd
# entered with nsenter --net (ip netns exec remounts /sys without cgroups).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
image_tar=${1:?usage: hack/k8s-driver.sh ROOTLESS_IMAGE_TAR}
export PATH="/usr/local/go/bin:$PATH"
K8S_VERSION=${K8S_VERSION:-v1.37.2}
tools=/var/cache/buildkit-cacerts/tools
bins=$tools/k8s-$K8S_VERSION
buildx=$tools/buildx-$(sed -n 's/^const buildxVersion = "\(.*\)"/\1/p' integration/dind_test.go)/buildx
[[ -x $buildx ]] || { echo "k8s-driver: no buildx at $buildx (TestDind builds it)" >&2; exit 1; }

missing=()
for p in etcd-server containerd containernetworking-plugins openssl curl; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
	apt-get update -qq && RUNLEVEL=1 DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [[ ! -x $bins/kubelet ]]; then
	src=$(mktemp -d)
	(
		cd "$src"
		printf 'module k8sbuild\n\ngo 1.26.0\n\nrequire k8s.io/kubernetes %s\n' "$K8S_VERSION" >go.mod
		go mod download -json "k8s.io/kubernetes@$K8S_VERSION" >/dev/null
		mod=$(go env GOMODCACHE)/cache/download/k8s.io/kubernetes/@v/$K8S_VERSION.mod
		v0=v0.${K8S_VERSION#v1.}
		awk -v v="$v0" '/=> \.\/staging/ {print "replace " $1 " => " $1 " " v}' "$mod" >>go.mod
		printf '//go:build tools\n\npackage tools\n\nimport (\n\t_ "k8s.io/kubernetes/cmd/kube-apiserver"\n\t_ "k8s.io/kubernetes/cmd/kube-controller-manager"\n\t_ "k8s.io/kubernetes/cmd/kube-scheduler"\n\t_ "k8s.io/kubernetes/cmd/kubelet"\n)\n' >tools.go
		GOFLAGS=-mod=mod go mod tidy
		mkdir -p "$bins.tmp"
		go build -o "$bins.tmp/" k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubelet
	)
	rm -rf "$src" "$bins"
	mv "$bins.tmp" "$bins"
fi

w=$(mktemp -d /tmp/k8s-driver.XXXXXX)
ns=bkc8s
pids=()
cleanup() {
	# The pods' containers first, while containerd runs: their shims exit
	# with their tasks.
	if [[ -S $w/ctd/containerd.sock ]]; then
		local c=(ctr --address "$w/ctd/containerd.sock" -n k8s.io)
		for t in $("${c[@]}" tasks ls -q 2>/dev/null); do
			"${c[@]}" tasks kill -s SIGKILL "$t" >/dev/null 2>&1 || true
		done
		sleep 2
		for t in $("${c[@]}" tasks ls -q 2>/dev/null); do
			"${c[@]}" tasks delete -f "$t" >/dev/null 2>&1 || true
		done
	fi
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	sleep 3
	for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
	grep " $w" /proc/self/mounts | awk '{print $2}' | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
	# The pods' network namespaces (containerd's cni-*) live in our
	# namespace's mounts only when the runtime cleaned them; remove what
	# it left.
	for n in $(ip netns list | awk '/^cni-/ {print $1}'); do
		[[ -n $(ip -n "$n" addr 2>/dev/null | grep 10.88.0.) ]] && ip netns del "$n"
	done
	ip netns del "$ns" 2>/dev/null || true
	rm -rf "$w"
}
trap cleanup EXIT
ip netns add "$ns"
ip -n "$ns" link set lo up
ip -n "$ns" link add node0 type veth peer name node0p
ip -n "$ns" addr add 10.89.0.1/32 dev node0
ip -n "$ns" link set node0 up
ip -n "$ns" link set node0p up
inns() { ip netns exec "$ns" "$@"; }            # own /sys: fine for servers
innet() { nsenter --net=/run/netns/$ns "$@"; } # the host's /sys (cgroups)
# Background servers: ip netns exec and nsenter exec the server, so $! is
# its pid (no shell function in between).
bg() { local log=$1; shift; "$@" >"$w/$log.log" 2>&1 & pids+=($!); }

cd "$w"
openssl genrsa -out sa.key 2048 2>/dev/null
echo "admintoken,admin,admin,system:masters" >tokens.csv
cat >kubeconfig <<EOF
apiVersion: v1
kind: Config
clusters: [{name: local, cluster: {server: "https://127.0.0.1:16443", insecure-skip-tls-verify: true}}]
users: [{name: admin, user: {token: admintoken}}]
contexts: [{name: local, context: {cluster: local, user: admin}}]
current-context: local
EOF
cat >kubelet.yaml <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
cgroupDriver: cgroupfs
failSwapOn: false
failCgroupV1: false
authentication: {anonymous: {enabled: true}, webhook: {enabled: false}}
authorization: {mode: AlwaysAllow}
address: 10.89.0.1
port: 10350
readOnlyPort: 0
healthzPort: 10348
containerRuntimeEndpoint: unix://$w/ctd/containerd.sock
EOF
mkdir -p ctd cni
cat >ctd/config.toml <<EOF
version = 2
root = "$w/ctd/root"
state = "$w/ctd/state"
[grpc]
  address = "$w/ctd/containerd.sock"
[plugins."io.containerd.grpc.v1.cri"]
  restrict_oom_score_adj = true
  sandbox_image = "k8s-local/pause:1"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$w/cni"
EOF
cat >cni/10-bridge.conflist <<'EOF'
{"cniVersion":"1.0.0","name":"bkc8s","plugins":[
 {"type":"bridge","bridge":"cni0","isGateway":true,"ipMasq":false,"ipam":{"type":"host-local","ranges":[[{"subnet":"10.88.0.0/24"}]]}},
 {"type":"loopback"}]}
EOF
api() { inns curl -sk -m 10 -H "Authorization: Bearer admintoken" "$@"; }
bg etcd ip netns exec "$ns" etcd --data-dir "$w/etcd" --listen-client-urls http://127.0.0.1:23790 --advertise-client-urls http://127.0.0.1:23790 --listen-peer-urls http://127.0.0.1:23800
bg apiserver ip netns exec "$ns" "$bins/kube-apiserver" --etcd-servers http://127.0.0.1:23790 --bind-address 127.0.0.1 --secure-port 16443 \
	--cert-dir "$w/certs" --service-account-issuer https://kubernetes.default.svc --service-account-key-file sa.key \
	--service-account-signing-key-file sa.key --token-auth-file tokens.csv --authorization-mode AlwaysAllow \
	--service-cluster-ip-range 10.0.0.0/24 --advertise-address 127.0.0.1 --endpoint-reconciler-type none \
	--kubelet-preferred-address-types InternalIP
bg containerd nsenter --net=/run/netns/$ns containerd --config ctd/config.toml
for _ in $(seq 90); do api https://127.0.0.1:16443/readyz 2>/dev/null | grep -q '^ok' && break; sleep 2; done
api https://127.0.0.1:16443/readyz | grep -q '^ok' || { tail -20 apiserver.log; exit 1; }
bg kcm ip netns exec "$ns" "$bins/kube-controller-manager" --kubeconfig kubeconfig --service-account-private-key-file sa.key \
	--use-service-account-credentials=false --root-ca-file certs/apiserver.crt --bind-address 127.0.0.1 --secure-port 10357 --leader-elect=false
bg scheduler ip netns exec "$ns" "$bins/kube-scheduler" --kubeconfig kubeconfig --bind-address 127.0.0.1 --secure-port 10359 --leader-elect=false
bg kubelet nsenter --net=/run/netns/$ns "$bins/kubelet" --kubeconfig kubeconfig --config kubelet.yaml --root-dir "$w/kubelet" --hostname-override node1 --node-ip 10.89.0.1

# Images: the pause image (busybox sleeping) and ours, in the CRI namespace.
(cd "$repo" && go run ./hack/images busybox >/dev/null)
cat >"$w/pause.go" <<'EOF'
package main

import (
	"os"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

func main() {
	p, err := layout.FromPath(os.Args[1])
	if err != nil {
		panic(err)
	}
	idx, err := p.ImageIndex()
	if err != nil {
		panic(err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		panic(err)
	}
	img, err := p.Image(im.Manifests[0].Digest)
	if err != nil {
		panic(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		panic(err)
	}
	cf.Config.Cmd = []string{"/bin/sleep", "2147483647"}
	if img, err = mutate.Config(img, cf.Config); err != nil {
		panic(err)
	}
	tag, _ := name.NewTag(os.Args[3])
	if err := tarball.WriteToFile(os.Args[2], tag, img); err != nil {
		panic(err)
	}
}
EOF
(cd "$repo" && go run "$w/pause.go" /var/cache/buildkit-cacerts/images/busybox/oci "$w/pause.tar" k8s-local/pause:1)
ctr=(ctr --address "$w/ctd/containerd.sock" -n k8s.io)
"${ctr[@]}" images import "$w/pause.tar" >/dev/null
"${ctr[@]}" images import "$image_tar" >/dev/null
src=$("${ctr[@]}" images ls -q | grep -m1 'buildkit-cacerts:')
"${ctr[@]}" images tag --force "$src" docker.io/library/buildkit-cacerts:rootless >/dev/null
for _ in $(seq 60); do api https://127.0.0.1:16443/api/v1/nodes/node1 2>/dev/null | grep -q '"reason": "KubeletReady"' && break; sleep 2; done
api -X POST -H 'Content-Type: application/json' -d '{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"buildkit"}}' \
	https://127.0.0.1:16443/api/v1/namespaces >/dev/null

# The engine CA, as a buildx user hands it over, and a leaf it signed.
mkdir -p bx ctx
openssl req -x509 -newkey rsa:2048 -nodes -keyout bx/ca.key -out bx/corp-root.pem -days 2 -subj "/CN=k8s driver engine CA" 2>/dev/null
openssl req -newkey rsa:2048 -nodes -keyout bx/leaf.key -out bx/leaf.csr -subj "/CN=leaf.corp.example" 2>/dev/null
openssl x509 -req -in bx/leaf.csr -CA bx/corp-root.pem -CAkey bx/ca.key -CAcreateserial -out ctx/leaf.pem -days 1 2>/dev/null
printf '[registry."corp.example"]\n  ca = ["%s"]\n\n[cacerts]\n  registry_cas = true\n' "$w/bx/corp-root.pem" >bx/buildkitd.toml
printf 'FROM base\nRUN --mount=type=bind,source=leaf.pem,target=/leaf.pem openssl verify /leaf.pem > /verified.txt\n' >ctx/Dockerfile
digest=$(cat /var/cache/buildkit-cacerts/images/debian-bookworm-tls/digest)
(cd "$repo" && go run ./hack/images debian-bookworm-tls >/dev/null)
cp -r /var/cache/buildkit-cacerts/images/debian-bookworm-tls/oci base

bx() { innet env KUBECONFIG="$w/kubeconfig" BUILDX_CONFIG="$w/buildx" BUILDX_NO_DEFAULT_ATTESTATIONS=1 "$buildx" "$@"; }
t0=$(date +%s)
bx create --name cacerts-k8s --driver kubernetes \
	--driver-opt image=buildkit-cacerts:rootless,rootless=true,namespace=buildkit \
	--buildkitd-config bx/buildkitd.toml --bootstrap
echo "k8s-driver: builder up in $(($(date +%s) - t0)) s"
bx inspect cacerts-k8s | grep -E 'Status|buildkit-cacerts'
status=0
bx build --builder cacerts-k8s --progress plain --no-cache --build-context "base=oci-layout://$w/base@$digest" \
	--output "type=oci,dest=$w/out.tar" ctx || status=$?
if ((status == 0)); then
	mkdir out && tar -xf out.tar -C out
	layer=$(python3 -c "
import json,sys
idx=json.load(open('out/index.json'))
m=json.load(open('out/blobs/sha256/'+idx['manifests'][0]['digest'].split(':')[1]))
print(m['layers'][-1]['digest'].split(':')[1])")
	files=$(tar -tzf "out/blobs/sha256/$layer" | tr '\n' ' ')
	echo "k8s-driver: the RUN's layer holds: $files"
	[[ "$files" == "verified.txt " ]] || status=1
fi
pod=$(api https://127.0.0.1:16443/api/v1/namespaces/buildkit/pods | python3 -c "import json,sys; print(json.load(sys.stdin)['items'][0]['metadata']['name'])")
api "https://127.0.0.1:16443/api/v1/namespaces/buildkit/pods/$pod/log" | grep 'cacerts' || true
bx rm cacerts-k8s || true
if ((status == 0)); then echo "k8s-driver: passed"; else echo "k8s-driver: FAILED"; fi
exit $status
