#!/usr/bin/env bash
# hack/bench.sh — end-to-end benchmarks: builds the four test images the
# benchmarks use (cached after the first time), then runs hack/bench with the
# given flags (see `go -C hack/bench run . -h`). Needs root. A full run takes
# ~15 minutes on 2 cores and rewrites docs/benchmarks.md and .svg; -quick is
# a ~2-minute smoke run that writes nothing unless -out is given.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/local/go/bin:$PATH"
if [[ $(id -u) -ne 0 ]]; then
	echo "bench: needs root (BuildKit's runc worker)" >&2
	exit 1
fi
go run ./hack/images -q debian-bookworm-tls debian-bookworm-min busybox scratch-go >/dev/null
exec go -C hack/bench run . "$@"
