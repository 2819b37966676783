#!/usr/bin/env bash
# hack/build-binaries.sh OUT — the binaries of the image's `binaries` stage,
# prebuilt on this machine (the offline image test passes OUT as the named
# context `prebuilt`): static buildkitd (ours) and buildctl, stamped the way
# upstream stamps its releases (ldflags, like the Dockerfile), runc and
# RootlessKit.
#
#   UPSTREAM=1   also build upstream's buildkitd (the negative control image)
#                into OUT/upstream/buildkitd, with buildctl and runc beside it
#   RUNC=path    the runc to ship (default: the one in PATH, Debian's package;
#                it links libseccomp.so.2, present in Debian images)
#
# Version stamps: VERSION (default `git describe --tags --always --dirty`),
# REVISION (default `git rev-parse HEAD`), the BuildKit release from go.mod.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
out=${1:?usage: hack/build-binaries.sh OUT}
mkdir -p "$out"
out=$(cd "$out" && pwd)
export PATH="/usr/local/go/bin:$PATH" CGO_ENABLED=0 GOFLAGS=-trimpath

version=${VERSION:-$(git describe --tags --always --dirty 2>/dev/null || echo dev)}
revision=${REVISION:-$(git rev-parse HEAD 2>/dev/null || true)}
bkver=$(go list -m -f '{{.Version}}' github.com/moby/buildkit)
bk="-X github.com/moby/buildkit/version.Version=$bkver -X github.com/moby/buildkit/version.Package=github.com/moby/buildkit"

go build -ldflags "-s -w -X main.version=$version -X main.revision=$revision $bk" -o "$out/buildkitd" ./cmd/buildkitd-cacerts

# buildctl needs go.sum entries our module does not carry: build it in a
# scratch module at the same BuildKit release (cached by the Go build cache).
if [[ ! -x "$out/buildctl" ]] || [[ "$("$out/buildctl" --version 2>/dev/null)" != *" $bkver "* ]]; then
	tmp=$(mktemp -d)
	trap 'rm -rf "$tmp"' EXIT
	(
		cd "$tmp"
		go mod init buildctl-build >/dev/null 2>&1
		go get "github.com/moby/buildkit/cmd/buildctl@$bkver" >/dev/null 2>&1
		go build -ldflags "-s -w $bk" -o "$out/buildctl" github.com/moby/buildkit/cmd/buildctl
	)
fi

runc=${RUNC:-$(command -v runc)}
install -m 0755 "$runc" "$out/runc"

# RootlessKit for the rootless target, from its module at the Dockerfile's
# ROOTLESSKIT_VERSION.
rootlesskit_version=$(sed -n 's/^ARG ROOTLESSKIT_VERSION=//p' Dockerfile)
if [[ ! -x "$out/rootlesskit" ]] || [[ "$("$out/rootlesskit" --version 2>/dev/null)" != *"${rootlesskit_version#v}"* ]]; then
	(cd "$(mktemp -d)" && GOBIN="$out" go install -ldflags "-s -w" "github.com/rootless-containers/rootlesskit/v2/cmd/rootlesskit@$rootlesskit_version")
fi

if [[ "${UPSTREAM:-0}" == 1 ]]; then
	mkdir -p "$out/upstream"
	go build -ldflags "-s -w $bk" -o "$out/upstream/buildkitd" github.com/moby/buildkit/cmd/buildkitd
	install -m 0755 "$out/buildctl" "$out/runc" "$out/rootlesskit" "$out/upstream/"
fi
"$out/buildkitd" --version
