#!/usr/bin/env bash
# hack/test.sh — sets up a fresh machine and runs every test.
#
# As root it enables the root-only and slow suites (CACERTS_ROOT_TESTS=1):
# kernel differential tests, real update-ca-certificates by chroot, the
# daemon end to end. As another user it runs the unit tests only.
# Ends with "N passed, M failed, K skipped" and exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)

hack/setup.sh
export PATH="/usr/local/go/bin:$PATH"

echo "== gofmt, go vet"
unformatted=$(gofmt -l $(git ls-files '*.go'))
if [[ -n "$unformatted" ]]; then
	echo "gofmt: these files need formatting:" >&2
	echo "$unformatted" >&2
	exit 1
fi
go vet ./...

go build -o bin/testsum ./hack/testsum

if [[ $(id -u) -eq 0 ]]; then
	export CACERTS_ROOT_TESTS=1
	if [[ -f hack/images/main.go ]]; then
		echo "== test images (built once, cached by recipe hash)"
		go run ./hack/images
	fi
else
	echo "== not root: root-only and slow tests will be skipped"
fi

echo "== go test ./..."
set +e
go test -json -count=1 -timeout 40m ./... | bin/testsum
rc=${PIPESTATUS[1]}
set -e

# Fuzz targets for a bounded time each (hack/fuzz.sh; long runs: FUZZTIME=10m).
echo "== fuzz (every Fuzz target, ${CI_FUZZTIME:-10s} each)"
FUZZTIME=${CI_FUZZTIME:-10s} bash hack/fuzz.sh || rc=1
echo "hack/test.sh: total $(($(date +%s) - start))s"
exit "$rc"
