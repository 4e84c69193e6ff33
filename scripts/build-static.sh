#!/usr/bin/env bash
# Builds the static musl release binaries, the same steps Dockerfile.scratch's builder stage runs,
# and prints each binary's size. Usage: scripts/build-static.sh [TARGET...]
# Default target: x86_64-unknown-linux-musl. Others (aarch64-unknown-linux-musl, ...) need their
# rustup target and a C cross compiler for ring (see README "Building").
set -euo pipefail
cd "$(dirname "$0")/.."

targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(x86_64-unknown-linux-musl)

for target in "${targets[@]}"; do
  # ring compiles C and assembly: point cc at musl's wrapper (or the cross compiler).
  case "$target" in
    x86_64-unknown-linux-musl) export CC_x86_64_unknown_linux_musl="${CC_x86_64_unknown_linux_musl:-musl-gcc}" ;;
    aarch64-unknown-linux-musl) export CC_aarch64_unknown_linux_musl="${CC_aarch64_unknown_linux_musl:-aarch64-linux-gnu-gcc}"
                                export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_MUSL_LINKER="${CARGO_TARGET_AARCH64_UNKNOWN_LINUX_MUSL_LINKER:-aarch64-linux-gnu-gcc}" ;;
    armv7-unknown-linux-musleabihf) export CC_armv7_unknown_linux_musleabihf="${CC_armv7_unknown_linux_musleabihf:-arm-linux-gnueabihf-gcc}"
                                    export CARGO_TARGET_ARMV7_UNKNOWN_LINUX_MUSLEABIHF_LINKER="${CARGO_TARGET_ARMV7_UNKNOWN_LINUX_MUSLEABIHF_LINKER:-arm-linux-gnueabihf-gcc}" ;;
  esac
  cargo build --locked --release --target "$target" --bin ecrupdater
  bin="target/$target/release/ecrupdater"
  size=$(stat -c %s "$bin")
  awk -v b="$bin" -v s="$size" 'BEGIN { printf "%s: %d bytes (%.2f MiB)\n", b, s, s / 1048576 }'
  file "$bin" 2>/dev/null || true
done
