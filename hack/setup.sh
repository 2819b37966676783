#!/usr/bin/env bash
# hack/setup.sh — installs what the daemon and the tests need on a fresh
# Debian machine: apt packages (only those missing), Go modules. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."

export PATH="/usr/local/go/bin:$PATH"
if ! command -v go >/dev/null; then
	echo "setup: Go 1.26 is needed (not found in PATH or /usr/local/go/bin); install it first" >&2
	exit 1
fi

# Debian packages: runc (the runtime BuildKit's OCI worker calls), mmdebstrap
# (test images), openssl/curl (differential tests and TLS clients), uidmap
# (rootless), iptables (CNI bridge networking), libseccomp-dev (building runc),
# docker.io (the docker-in-docker test starts its own dockerd; services are
# not started: RUNLEVEL=1).
pkgs=(runc mmdebstrap openssl curl ca-certificates uidmap iptables libseccomp-dev pkg-config docker.io)
missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
	if [[ $(id -u) -ne 0 ]]; then
		echo "setup: missing Debian packages: ${missing[*]} (run as root, or apt-get install them)" >&2
		exit 1
	fi
	echo "setup: installing ${missing[*]}"
	apt-get update -qq
	RUNLEVEL=1 DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

go mod download
