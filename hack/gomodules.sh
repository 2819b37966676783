#!/usr/bin/env bash
# hack/gomodules.sh OUT — a directory laid out as a Go module proxy
# (GOPROXY=file://OUT) holding every module the Dockerfile's Go stage
# downloads, and nothing else: our module's build and test dependencies
# (`go mod download`), and the build lists of buildctl, runc and RootlessKit
# at the releases the Dockerfile names. hack/from-source.sh passes it to the
# image build as a named context, so the compile-from-source path runs with
# no network.
#
# Modules come from this machine's module cache, else from GOPROXY (the
# Go module proxy); a warm run needs no network. OUT is replaced.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:?usage: hack/gomodules.sh OUT}
export PATH="/usr/local/go/bin:$PATH"

hostcache=$(go env GOMODCACHE)/cache/download
upstream=$(go env GOPROXY)
work=$(mktemp -d)
trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' EXIT
# A fresh module cache records exactly what the downloads below need.
export GOMODCACHE="$work/modcache" GOPROXY="file://$hostcache,$upstream" GOFLAGS=-modcacherw

go mod download

arg() { sed -n "s/^ARG $1=//p" Dockerfile; }
bk=$(arg BUILDKIT_VERSION)
if [[ "$bk" != "$(go list -m -f '{{.Version}}' github.com/moby/buildkit)" ]]; then
	echo "gomodules: Dockerfile's BUILDKIT_VERSION $bk is not go.mod's BuildKit" >&2
	exit 1
fi
# buildctl: a scratch module at the release (as the Dockerfile builds it).
mkdir "$work/buildctl"
(
	cd "$work/buildctl"
	go mod init buildctl-build >/dev/null 2>&1
	go get "github.com/moby/buildkit/cmd/buildctl@$bk" >/dev/null
	go list -deps github.com/moby/buildkit/cmd/buildctl >/dev/null
)
# `go install MOD/PKG@V` loads MOD@V as the main module: `go list -deps` in
# a copy of it downloads the same build list.
while read -r mod ver pkg tags; do
	dir=$(go mod download -json "$mod@$ver" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
	cp -r "$dir" "$work/src"
	(cd "$work/src" && go list -deps ${tags:+-tags "$tags"} "$pkg" >/dev/null)
	chmod -R u+w "$work/src" && rm -rf "$work/src"
done <<EOF
github.com/opencontainers/runc $(arg RUNC_VERSION) . seccomp
github.com/rootless-containers/rootlesskit/v2 $(arg ROOTLESSKIT_VERSION) ./cmd/rootlesskit
EOF

rm -rf "$out"
mkdir -p "$out"
# The proxy layout is the cache's download directory, less its sumdb data
# and lock files.
cp -r "$GOMODCACHE/cache/download/." "$out/"
rm -rf "$out/sumdb"
find "$out" -name '*.lock' -delete
echo "gomodules: $(find "$out" -name '*.zip' | wc -l) modules, $(du -sh "$out" | cut -f1) in $out"
