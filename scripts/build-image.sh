#!/usr/bin/env bash
# Builds k8s-ecrupdater's scratch image for one architecture with podman, from Dockerfile.scratch's
# final stage and the static binary scripts/build-static.sh made (BINARY_SOURCE=prebuilt: the
# Dockerfile's builder stage, which needs a Rust base image, does not run). Builds the binary
# first when it is missing. Progress goes to stderr; the last line on stdout is the image
# reference, `localhost/k8s-ecrupdater/ecrupdater:VERSION-ARCH`.
#
# Usage: scripts/build-image.sh amd64|arm64|arm
#
# The image: one layer holding /ecrupdater alone, user 65534:65534, the binary as entrypoint,
# OCI labels title, description, source, version (Cargo.toml's), revision (the git commit),
# licenses. Its timestamps are the commit's time (podman build --timestamp), so the same binary
# and commit give the same image digest.
#
# Environment:
#   ECRUPDATER_IMAGE        the image name (default localhost/k8s-ecrupdater/ecrupdater); the tag is
#                           always VERSION-ARCH
#   ECRUPDATER_PODMAN_FLAGS podman's global flags (default: the ones that work in this project's
#                           sandbox and CI, see shared/reference/test-peers.md:
#                           --runtime /usr/sbin/runc --cgroup-manager cgroupfs --storage-driver vfs)
#   CARGO_TARGET_DIR        where build-static.sh's binaries are (default target)
#
# To publish one multi-architecture tag (the Deployment's ghcr.io/k8s-ecrupdater/ecrupdater:VERSION):
#   podman manifest create ghcr.io/k8s-ecrupdater/ecrupdater:0.1.0
#   podman manifest add ghcr.io/k8s-ecrupdater/ecrupdater:0.1.0 containers-storage:$(scripts/build-image.sh amd64 | tail -n1)
#   podman manifest add ghcr.io/k8s-ecrupdater/ecrupdater:0.1.0 containers-storage:$(scripts/build-image.sh arm64 | tail -n1)
#   podman manifest push --all ghcr.io/k8s-ecrupdater/ecrupdater:0.1.0 docker://ghcr.io/k8s-ecrupdater/ecrupdater:0.1.0
set -euo pipefail
cd "$(dirname "$0")/.."

die() { echo "build-image: $*" >&2; exit 1; }

[ $# -eq 1 ] || die "usage: scripts/build-image.sh amd64|arm64|arm"
case "$1" in
  amd64) platform=linux/amd64 variant= ;;
  arm64) platform=linux/arm64 variant= ;;
  arm) platform=linux/arm/v7 variant=v7 ;;
  -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
  *) die "unknown architecture '$1' (amd64, arm64 or arm)" ;;
esac
arch=$1

command -v podman >/dev/null || die "podman is missing: apt-get install podman runc"
# shellcheck disable=SC2206 # the flags are words on purpose
podman=(podman ${ECRUPDATER_PODMAN_FLAGS---runtime /usr/sbin/runc --cgroup-manager cgroupfs --storage-driver vfs})

target_dir=${CARGO_TARGET_DIR:-target}
context="$target_dir/dist"
binary="$context/linux/$arch/ecrupdater"
if [ ! -f "$binary" ]; then
  echo "build-image: $binary is missing; building it (scripts/build-static.sh $arch)" >&2
  scripts/build-static.sh "$arch" >&2
  [ -f "$binary" ] || die "scripts/build-static.sh did not leave $binary"
fi

version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n1)
[ -n "$version" ] || die "no version in Cargo.toml"
revision=unknown
timestamp=0
if git rev-parse --git-dir >/dev/null 2>&1; then
  revision=$(git rev-parse HEAD)
  timestamp=$(git log -1 --format=%ct HEAD)
  git diff --quiet HEAD -- src Cargo.toml Cargo.lock 2>/dev/null ||
    echo "build-image: note: src/ or Cargo.* differ from $revision; the revision label names the commit only" >&2
fi
image="${ECRUPDATER_IMAGE:-localhost/k8s-ecrupdater/ecrupdater}:$version-$arch"

previous=$("${podman[@]}" image inspect --format '{{.Id}}' "$image" 2>/dev/null || true)
echo "build-image: building $image for $platform from $binary ($(stat -c %s "$binary") bytes)" >&2
# --layers=false: no intermediate images and no cache (podman 4.3's cache reuses a LABEL step
# whose build arguments changed, which left a stale revision label).
"${podman[@]}" build \
  --file Dockerfile.scratch \
  --platform "$platform" \
  --pull=never \
  --layers=false \
  --build-arg TARGETVARIANT="$variant" \
  --timestamp "$timestamp" \
  --build-arg BINARY_SOURCE=prebuilt \
  --build-arg PREBUILT_DIR=. \
  --build-arg VERSION="$version" \
  --build-arg REVISION="$revision" \
  --tag "$image" \
  "$context" >&2
current=$("${podman[@]}" image inspect --format '{{.Id}}' "$image")
# The image this tag named before is now untagged: remove it unless a container still uses it.
if [ -n "$previous" ] && [ "$previous" != "$current" ]; then
  "${podman[@]}" rmi "$previous" >/dev/null 2>&1 || true
fi
echo "$image"
