#!/usr/bin/env bash
# hack/fuzz.sh — runs every Go fuzz target of the repository (each
# `func FuzzX` in a *_test.go) for FUZZTIME each (default 60s; CI: 10s from
# hack/test.sh), one after another, at low priority. Targets are found, not
# listed, so a new one is fuzzed without editing this script.
#
#   FUZZTIME=10m bash hack/fuzz.sh          # a long campaign
#   FUZZTIME=10s bash hack/fuzz.sh          # CI's bounded run
#
# A failing input is written by `go test` under the package's
# testdata/fuzz/FuzzX/ (commit it: it becomes a regression case). Ends with
# "fuzz: N targets, M failed" and exits non-zero on any failure.
set -uo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/local/go/bin:$PATH"
fuzztime=${FUZZTIME:-60s}
nice=${FUZZ_NICE:-10}
targets=$(grep -rn --include='*_test.go' -E '^func Fuzz[A-Za-z0-9_]*\(' . |
	sed -E 's#^\./(.*)/[^/]*:[0-9]+:func (Fuzz[A-Za-z0-9_]*)\(.*#\1 \2#' | sort -u)
n=0 failed=0
while read -r dir name; do
	[[ -z "$dir" ]] && continue
	n=$((n + 1))
	start=$(date +%s)
	if nice -n "$nice" go test -run '^$' -fuzz "^${name}\$" -fuzztime "$fuzztime" "./$dir" >"/tmp/fuzz-$name.log" 2>&1; then
		echo "fuzz: ok   ./$dir $name ($(($(date +%s) - start))s, $(grep -Eo 'elapsed: [^,]*, execs: [0-9]+' "/tmp/fuzz-$name.log" | tail -1))"
	else
		failed=$((failed + 1))
		echo "fuzz: FAIL ./$dir $name"
		tail -30 "/tmp/fuzz-$name.log"
	fi
done <<<"$targets"
echo "fuzz: $n targets, $failed failed"
[[ $failed -eq 0 ]]
