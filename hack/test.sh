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
# hack/bench is a module of its own (its plotting library stays out of the
# daemon's go.mod): ./... above does not reach it.
go -C hack/bench vet ./...

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

echo "== go test ./... (and hack/bench's module)"
set +e
benchrc=$(mktemp)
{
	go test -json -count=1 -timeout 40m ./...
	# hack/bench's unit tests go through the same summary; its exit code is
	# kept too, since an error loading its module prints no test event.
	go -C hack/bench test -json -count=1 ./...
	echo "$?" >"$benchrc"
} | bin/testsum
rc=${PIPESTATUS[1]}
if [[ $rc -eq 0 && $(cat "$benchrc") != 0 ]]; then
	echo "hack/test.sh: go test in hack/bench failed (exit $(cat "$benchrc"))" >&2
	rc=1
fi
rm -f "$benchrc"
set -e

# Fuzz targets for a bounded time each (hack/fuzz.sh; long runs: FUZZTIME=10m).
echo "== fuzz (every Fuzz target, ${CI_FUZZTIME:-10s} each)"
FUZZTIME=${CI_FUZZTIME:-10s} bash hack/fuzz.sh || rc=1
echo "hack/test.sh: total $(($(date +%s) - start))s"
exit "$rc"
