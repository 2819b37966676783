#!/bin/sh
# hack/run-daemon.sh — install runc if missing, build buildkitd-cacerts (and
# buildctl), and start the daemon on the default config with its socket under
# the user's runtime dir and the engine's CA dir.
#
#   sudo hack/run-daemon.sh [extra buildkitd flags...]
#
# Environment (all optional):
#   BUILDKIT_CACERTS_DIR   CA dir to trust in RUN containers (default /usr/local/share/ca-certificates)
#   BUILDKIT_CACERTS_ROOT  state dir (default /var/lib/buildkit-cacerts; never upstream's /var/lib/buildkit)
#   BUILDKITD_CONFIG       buildkitd.toml (default /etc/buildkit/buildkitd.toml; missing means defaults)
#   RUN_DIR                socket dir (default $XDG_RUNTIME_DIR/buildkit-cacerts, else /run/buildkit-cacerts)
#   BACKGROUND=1           start in the background, wait until it answers, print its pid and log
set -eu

cd "$(dirname "$0")/.."
repo=$(pwd)

if [ "$(id -u)" != 0 ]; then
	echo "run-daemon: the OCI worker needs root: sudo $0 $*" >&2
	exit 1
fi

# 1. runc (BuildKit's OCI worker runs every container with it).
if ! command -v runc >/dev/null 2>&1 && ! command -v buildkit-runc >/dev/null 2>&1; then
	echo "run-daemon: installing runc" >&2
	if command -v apt-get >/dev/null 2>&1; then
		apt-get update -qq && apt-get install -y -qq runc >/dev/null
	elif command -v apk >/dev/null 2>&1; then
		apk add --no-cache runc
	elif command -v dnf >/dev/null 2>&1; then
		dnf install -y runc
	else
		echo "run-daemon: no runc and no known package manager; install runc >= 1.1" >&2
		exit 1
	fi
fi

# 2. The daemon, and buildctl from the BuildKit version go.mod pins.
mkdir -p bin
# Stamped like upstream's releases (and the Dockerfile, hack/build-binaries.sh).
bkver=$(go list -m -f '{{.Version}}' github.com/moby/buildkit)
bk="-X github.com/moby/buildkit/version.Version=$bkver"
version=$(git describe --tags --always --dirty 2>/dev/null || echo dev)
revision=$(git rev-parse HEAD 2>/dev/null || true)
go build -ldflags "-X main.version=$version -X main.revision=$revision $bk" -o bin/buildkitd-cacerts ./cmd/buildkitd-cacerts
if [ ! -x bin/buildctl ] || bin/buildctl --version | grep -q 'v0.0.0+unknown'; then
	tmp=$(mktemp -d)
	(
		cd "$tmp"
		go mod init buildctl-build >/dev/null 2>&1
		go get "github.com/moby/buildkit/cmd/buildctl@$bkver" >/dev/null 2>&1
		go build -ldflags "$bk" -o "$repo/bin/buildctl" github.com/moby/buildkit/cmd/buildctl
	)
	rm -rf "$tmp"
fi

# 3. Start it.
if [ -n "${RUN_DIR:-}" ]; then
	run_dir=$RUN_DIR
elif [ -n "${XDG_RUNTIME_DIR:-}" ]; then
	run_dir=$XDG_RUNTIME_DIR/buildkit-cacerts
else
	run_dir=/run/buildkit-cacerts
fi
mkdir -p "$run_dir"
addr=unix://$run_dir/buildkitd.sock
ca_dir=${BUILDKIT_CACERTS_DIR:-/usr/local/share/ca-certificates}
root=${BUILDKIT_CACERTS_ROOT:-/var/lib/buildkit-cacerts}
config=${BUILDKITD_CONFIG:-/etc/buildkit/buildkitd.toml}

set -- --config "$config" --root "$root" --addr "$addr" --cacerts-dir "$ca_dir" "$@"
echo "run-daemon: export BUILDKIT_HOST=$addr   # CAs from $ca_dir" >&2
if [ "${BACKGROUND:-0}" = 1 ]; then
	bin/buildkitd-cacerts "$@" >"$run_dir/buildkitd.log" 2>&1 &
	echo $! >"$run_dir/buildkitd.pid"
	i=0
	until bin/buildctl --addr "$addr" debug workers >/dev/null 2>&1; do
		i=$((i + 1))
		if [ $i -gt 100 ] || ! kill -0 "$(cat "$run_dir/buildkitd.pid")" 2>/dev/null; then
			echo "run-daemon: daemon did not come up; log:" >&2
			cat "$run_dir/buildkitd.log" >&2
			exit 1
		fi
		sleep 0.2
	done
	echo "run-daemon: running, pid $(cat "$run_dir/buildkitd.pid"), log $run_dir/buildkitd.log" >&2
	echo "run-daemon: stop with: kill \$(cat $run_dir/buildkitd.pid)" >&2
else
	exec bin/buildkitd-cacerts "$@"
fi
