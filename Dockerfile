# buildkit-cacerts: the image a moby/buildkit user swaps in.
#
#   docker build -t buildkit-cacerts .                      # privileged, like moby/buildkit
#   docker build -t buildkit-cacerts:rootless --target rootless .
#
# Like upstream's image: `buildkitd` is the entry command (extra arguments
# pass through), buildctl and runc are inside, the config is
# /etc/buildkit/buildkitd.toml, the state is VOLUME /var/lib/buildkit
# (rootless: /home/user/.local/share/buildkit). The CA certificates RUN
# containers trust are read from /usr/local/share/ca-certificates (both
# targets): mount your CA directory there (docs/run.md).
#
# Every base image and version is a build argument whose default is what a
# user would pull. Our tests build this file offline with our own daemon:
# they point BASE_IMAGE at a local image and take the `binaries` stage from
# prebuilt binaries (BINARIES=prebuilt and a named context), so no registry or module proxy is used.
# The compile-from-source path (the default) is built offline by
# hack/from-source.sh: GOLANG_IMAGE is a local Go image, and the modules come
# from a module proxy directory passed as a named context (GOMODULES below).

ARG GO_VERSION=1.26
ARG DEBIAN_VERSION=bookworm
ARG GOLANG_IMAGE=golang:${GO_VERSION}-${DEBIAN_VERSION}
ARG BASE_IMAGE=debian:${DEBIAN_VERSION}-slim
# The BuildKit release buildkit-cacerts embeds (go.mod) and whose buildctl
# ships in the image; runc and RootlessKit releases.
ARG BUILDKIT_VERSION=v0.34.2
ARG RUNC_VERSION=v1.5.2
ARG ROOTLESSKIT_VERSION=v2.3.6
# Packages of the runtime image, like upstream's (git for git contexts,
# pigz/xz for layers, iptables for CNI, fuse3 for fuse-overlayfs, uidmap
# and libcap2-bin's setcap for rootless). Empty installs none (the offline
# test images, whose bases carry what each target needs).
ARG RUNTIME_PACKAGES="ca-certificates git openssh-client pigz xz-utils iptables fuse3 uidmap libcap2-bin"
ARG BINARIES=binaries-from-source
# Where the Go stage's modules come from: by default nothing is mounted and
# GOPROXY is Go's own default. Offline, from a directory laid out as a
# module proxy (hack/gomodules.sh DIR):
#   --build-arg GOMODULES=gomodproxy --build-context gomodproxy=DIR \
#   --build-arg GOPROXY=file:///gomodules --build-arg GOSUMDB=off
# mounts DIR at /gomodules in each RUN that downloads.
ARG GOMODULES=gomodules-none

FROM scratch AS gomodules-none
FROM ${GOMODULES} AS gomodules

FROM ${GOLANG_IMAGE} AS gobuild
# libseccomp-dev and pkg-config for runc's seccomp support (cgo), unless the
# Go image already has them.
RUN if [ ! -e /usr/include/seccomp.h ] || ! command -v pkg-config >/dev/null; then \
		apt-get update && apt-get install -y --no-install-recommends libseccomp-dev pkg-config && rm -rf /var/lib/apt/lists/*; \
	fi
ARG GOPROXY
ARG GOSUMDB
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=bind,from=gomodules,target=/gomodules go mod download
COPY . .
ARG VERSION=""
ARG REVISION=""
ARG BUILDKIT_VERSION
# The stamps upstream's binaries carry (hack/build-binaries.sh does the same).
RUN --mount=type=bind,from=gomodules,target=/gomodules set -e; \
	v=${VERSION:-$(git describe --tags --always --dirty 2>/dev/null || echo dev)}; \
	r=${REVISION:-$(git rev-parse HEAD 2>/dev/null || true)}; \
	bk="-X github.com/moby/buildkit/version.Version=${BUILDKIT_VERSION} -X github.com/moby/buildkit/version.Package=github.com/moby/buildkit"; \
	CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=$v -X main.revision=$r $bk" -o /out/buildkitd ./cmd/buildkitd-cacerts
# buildctl in a scratch module at the BuildKit release, like
# hack/build-binaries.sh: our go.sum does not cover its dependencies, and
# `go install buildctl@version` refuses BuildKit's go.mod (it has exclude
# directives).
RUN --mount=type=bind,from=gomodules,target=/gomodules set -e; \
	bk="-X github.com/moby/buildkit/version.Version=${BUILDKIT_VERSION} -X github.com/moby/buildkit/version.Package=github.com/moby/buildkit"; \
	mkdir /tmp/buildctl && cd /tmp/buildctl && go mod init buildctl-build && \
	go get github.com/moby/buildkit/cmd/buildctl@${BUILDKIT_VERSION} && \
	CGO_ENABLED=0 go build -trimpath -ldflags "-s -w $bk" -o /out/buildctl github.com/moby/buildkit/cmd/buildctl
ARG RUNC_VERSION
ARG ROOTLESSKIT_VERSION
RUN --mount=type=bind,from=gomodules,target=/gomodules GOBIN=/out go install -trimpath -tags seccomp -ldflags "-s -w -X main.version=${RUNC_VERSION#v}" github.com/opencontainers/runc@${RUNC_VERSION} && \
	CGO_ENABLED=0 GOBIN=/out go install -trimpath -ldflags "-s -w" github.com/rootless-containers/rootlesskit/v2/cmd/rootlesskit@${ROOTLESSKIT_VERSION}

# binaries: buildkitd, buildctl, runc, rootlesskit at the root, compiled
# above by default. BINARIES names another source: the tests pass prebuilt
# ones (hack/build-binaries.sh) as a named context, so the Go stage is not
# reached at all:
#   --build-arg BINARIES=prebuilt --build-context prebuilt=DIR      (buildx)
#   --opt build-arg:BINARIES=prebuilt --local prebuilt=DIR --opt context:prebuilt=local:prebuilt  (buildctl)
FROM scratch AS binaries-from-source
COPY --from=gobuild /out/ /

FROM ${BINARIES} AS binaries

FROM ${BASE_IMAGE} AS base
ARG RUNTIME_PACKAGES
RUN if [ -n "$RUNTIME_PACKAGES" ]; then \
		apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $RUNTIME_PACKAGES && rm -rf /var/lib/apt/lists/*; \
	fi
COPY --from=binaries /buildkitd /buildctl /runc /usr/bin/
RUN mkdir -p /etc/buildkit /usr/local/share/ca-certificates /var/lib/buildkit

# release: privileged, like moby/buildkit:<version>.
FROM base AS release
VOLUME /var/lib/buildkit
ENTRYPOINT ["buildkitd"]

# rootless: like moby/buildkit:<version>-rootless (uid 1000, RootlessKit,
# state under the user's home). Run with --security-opt seccomp=unconfined
# --security-opt apparmor=unconfined (or --privileged) and
# --oci-worker-no-process-sandbox, as upstream documents.
FROM base AS rootless
COPY --from=binaries /rootlesskit /usr/bin/
# Debian installs newuidmap and newgidmap setuid root, and its build keeps
# root while writing the map: in a container without CAP_SYS_ADMIN (the way
# this image runs) the write fails, "newuidmap: write to uid_map failed:
# Operation not permitted", and RootlessKit with it. With file capabilities
# instead they run as uid 1000 holding only CAP_SETUID / CAP_SETGID, which
# the container's default set has.
RUN chmod u-s /usr/bin/newuidmap /usr/bin/newgidmap && \
	setcap cap_setuid=ep /usr/bin/newuidmap && setcap cap_setgid=ep /usr/bin/newgidmap
# ~/.config/buildkit, where a rootless buildkitd reads buildkitd.toml, is
# /etc/buildkit: buildx's kubernetes driver mounts its config there (with
# rootless=true too, and passes no --config), and the other documented path
# keeps working.
RUN echo user:x:1000:1000:user:/home/user:/bin/sh >>/etc/passwd && \
	echo user:x:1000: >>/etc/group && \
	echo user:100000:65536 >/etc/subuid && echo user:100000:65536 >/etc/subgid && \
	mkdir -p /run/user/1000 /home/user/.local/tmp /home/user/.local/share/buildkit /home/user/.config && \
	ln -s /etc/buildkit /home/user/.config/buildkit && \
	chown -R 1000:1000 /run/user/1000 /home/user && chmod 0700 /run/user/1000
USER 1000:1000
ENV HOME=/home/user
ENV USER=user
ENV XDG_RUNTIME_DIR=/run/user/1000
ENV TMPDIR=/home/user/.local/tmp
ENV BUILDKIT_HOST=unix:///run/user/1000/buildkit/buildkitd.sock
VOLUME /home/user/.local/share/buildkit
ENTRYPOINT ["rootlesskit", "buildkitd"]

# The default target is the privileged image, like upstream.
FROM release
