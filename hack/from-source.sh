#!/usr/bin/env bash
# hack/from-source.sh — builds the Dockerfile's default, compile-from-source
# path offline with our daemon (integration/from_source_test.go): a local Go
# image (debian-bookworm-gobuild from hack/images plus this machine's Go) as
# GOLANG_IMAGE, the modules from hack/gomodules.sh as a named context, both
# targets. Heavy: the Go stage compiles BuildKit, runc and RootlessKit with
# no build cache; not part of hack/test.sh. Run as root.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/local/go/bin:$PATH"
bash hack/setup.sh
go run ./hack/images debian-bookworm-gobuild debian-bookworm-min debian-bookworm-uidmap
CACERTS_ROOT_TESTS=1 CACERTS_FROM_SOURCE=1 go test -count=1 -timeout 90m -run 'TestShipImageFromSource$' -v ./integration/
