#!/usr/bin/env bash
# hack/soak.sh — the soak of issue 12 (root only): BUILDS concurrent builds
# (default 8) of STEPS RUN steps each (default 100) on one base image, on a
# daemon with an empty CA directory (baseline) and one with the test CA;
# reports failures, p50/p99 per RUN step and the difference (overhead), and
# goroutines, fds, RSS and mounts before and after. CI runs 2 × 10 inside
# `go test ./...`.
#
#   sudo BUILDS=8 STEPS=100 bash hack/soak.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/local/go/bin:$PATH"
out=${OUT:-/tmp/soak}
mkdir -p "$out"
export CACERTS_ROOT_TESTS=1
export CACERTS_SOAK_BUILDS=${BUILDS:-8}
export CACERTS_SOAK_STEPS=${STEPS:-100}
export CACERTS_SOAK_TIMEOUT=${SOAK_TIMEOUT:-60m}
export CACERTS_SOAK_REPORT="$out/report.json"
start=$(date +%s)
set +e
nice -n 10 go test -count=1 -timeout 3h -run '^TestSoak$' -v ./integration >"$out/go-test.log" 2>&1
rc=$?
set -e
grep -E '^(--- |ok|FAIL|PASS)|soak_test.go' "$out/go-test.log" || true
echo "hack/soak.sh: exit $rc, $(($(date +%s) - start))s; log $out/go-test.log"
exit "$rc"
