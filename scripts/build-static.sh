#!/usr/bin/env bash
# Builds the static musl release binaries of ecrupdater: the same steps Dockerfile.scratch's
# builder stage runs (no Docker engine runs in CI, so .ci/run calls this script directly, and
# tests/shipping.rs checks that the Dockerfile still names it). Prints, per target: the binary's
# path and size, `file`'s verdict, and the build time. Fails when a binary is not statically
# linked or the x86_64 binary is over its size budget (2.5 MiB).
#
# Usage: scripts/build-static.sh [TARGET | ARCH ...]
#        scripts/build-static.sh --all          every target this machine can build (see below)
#   TARGET  x86_64-unknown-linux-musl (the default), aarch64-unknown-linux-musl,
#           armv7-unknown-linux-musleabihf
#   ARCH    Docker's TARGETARCH names for the same three: amd64, arm64, arm
#   ECR_BUILD_CROSS=1 in the environment adds aarch64 (and armv7 when possible) to the default,
#   like --all. --all skips armv7 with a note when its rust-std is not installed.
#        scripts/build-static.sh --print-targets [TARGET | ARCH ...]
#   prints the target triples it would build, one a line, and builds nothing.
#
# Needs, per target: the rustup target (`rustup target add TARGET`) and a C compiler for ring's
# C and assembly, which is also the linker of the cross targets (Debian packages):
#   x86_64   musl-gcc                  (musl-tools)
#   aarch64  aarch64-linux-gnu-gcc     (gcc-aarch64-linux-gnu)
#   armv7    arm-linux-gnueabihf-gcc   (gcc-arm-linux-gnueabihf)
# The gcc cross compilers target glibc, but nothing of glibc ends up in the binary: rustc links
# musl's crt objects and libc.a from the rust-std it ships for the musl target.
#
# Static, not static-pie: `-C target-feature=+crt-static -C relocation-model=static` (`file` says
# "statically linked"; without relocation-model=static it says "static-pie linked", and the
# x86_64 binary is 86,504 bytes, 4 %, larger). The trade: the executable's code loads at a fixed
# address (no ASLR for it; the stack, heap and mmaps are still randomized). The flags go
# in CARGO_TARGET_<TRIPLE>_RUSTFLAGS, so they apply to these musl targets only; a RUSTFLAGS set
# in the environment overrides them (cargo's precedence), and the script then warns.
# CARGO_TARGET_DIR is honoured.
#
# Each binary is also copied to target/dist/linux/<ARCH>/ecrupdater (ARCH in Docker's TARGETARCH
# names): the layout Dockerfile.scratch's `prebuilt` stage reads (BINARY_SOURCE=prebuilt), so
# `scripts/build-image.sh` and multi-platform `docker buildx build` take these very binaries.
set -euo pipefail
cd "$(dirname "$0")/.."

readonly BUDGET_X86_64=$((5 * 1024 * 1024 / 2)) # 2.5 MiB
readonly STATIC_FLAGS="-C target-feature=+crt-static -C relocation-model=static"
target_dir=${CARGO_TARGET_DIR:-target}

die() { echo "build-static: $*" >&2; exit 1; }

triple_of() {
  case "$1" in
    amd64 | x86_64 | x86_64-unknown-linux-musl) echo x86_64-unknown-linux-musl ;;
    arm64 | aarch64 | aarch64-unknown-linux-musl) echo aarch64-unknown-linux-musl ;;
    arm | armv7 | armv7-unknown-linux-musleabihf) echo armv7-unknown-linux-musleabihf ;;
    *) die "unknown target or arch '$1' (x86_64-unknown-linux-musl, aarch64-unknown-linux-musl, armv7-unknown-linux-musleabihf, or amd64, arm64, arm)" ;;
  esac
}

# The C compiler for ring (also the linker for the cross targets), and its Debian package.
cc_of() {
  case "$1" in
    x86_64-unknown-linux-musl) echo "musl-gcc musl-tools" ;;
    aarch64-unknown-linux-musl) echo "aarch64-linux-gnu-gcc gcc-aarch64-linux-gnu" ;;
    armv7-unknown-linux-musleabihf) echo "arm-linux-gnueabihf-gcc gcc-arm-linux-gnueabihf" ;;
  esac
}

# Docker's TARGETARCH name of a target triple (the folder under target/dist/linux/).
arch_of() {
  case "$1" in
    x86_64-unknown-linux-musl) echo amd64 ;;
    aarch64-unknown-linux-musl) echo arm64 ;;
    armv7-unknown-linux-musleabihf) echo arm ;;
  esac
}

# Whether rustc has the standard library for the target (rustup target add puts it there).
std_installed() { [ -d "$(rustc --print sysroot)/lib/rustlib/$1/lib" ]; }

all=false
[ "${ECR_BUILD_CROSS:-0}" = 1 ] && all=true
print_only=false
requested=()
for arg in "$@"; do
  case "$arg" in
    --all) all=true ;;
    --print-targets) print_only=true ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) requested+=("$(triple_of "$arg")") ;;
  esac
done
if [ ${#requested[@]} -eq 0 ]; then
  requested=(x86_64-unknown-linux-musl)
  if $all; then
    requested+=(aarch64-unknown-linux-musl)
    if std_installed armv7-unknown-linux-musleabihf; then
      requested+=(armv7-unknown-linux-musleabihf)
    else
      echo "build-static: skipping armv7-unknown-linux-musleabihf: its rust-std is not installed (rustup target add armv7-unknown-linux-musleabihf)" >&2
    fi
  fi
fi

if $print_only; then
  printf '%s\n' "${requested[@]}"
  exit 0
fi

[ -z "${RUSTFLAGS:-}" ] || echo "build-static: warning: RUSTFLAGS is set and overrides the static flags ($STATIC_FLAGS)" >&2

# Check every prerequisite before building anything, naming what is missing and how to get it.
missing=()
for target in "${requested[@]}"; do
  read -r cc package <<<"$(cc_of "$target")"
  std_installed "$target" || missing+=("rust-std for $target: rustup target add $target")
  upper=$(tr 'a-z-' 'A-Z_' <<<"$target")
  lower=$(tr '-' '_' <<<"$target")
  cc_var="CC_$lower"
  command -v "${!cc_var:-$cc}" >/dev/null || missing+=("${!cc_var:-$cc} for $target: apt-get install $package")
done
command -v file >/dev/null || missing+=("file: apt-get install file")
if [ ${#missing[@]} -gt 0 ]; then
  printf 'build-static: missing:\n' >&2
  printf '  %s\n' "${missing[@]}" >&2
  exit 1
fi

for target in "${requested[@]}"; do
  read -r cc _ <<<"$(cc_of "$target")"
  upper=$(tr 'a-z-' 'A-Z_' <<<"$target")
  lower=$(tr '-' '_' <<<"$target")
  # ring's build script reads CC_<target>; cargo reads the linker and rustflags per target.
  export "CC_$lower=$(v="CC_$lower"; echo "${!v:-$cc}")"
  export "CARGO_TARGET_${upper}_RUSTFLAGS=$(v="CARGO_TARGET_${upper}_RUSTFLAGS"; echo "${!v:-$STATIC_FLAGS}")"
  if [ "$target" != x86_64-unknown-linux-musl ]; then
    export "CARGO_TARGET_${upper}_LINKER=$(v="CARGO_TARGET_${upper}_LINKER"; echo "${!v:-$cc}")"
  fi

  started=$SECONDS
  cargo build --locked --release --target "$target" --bin ecrupdater
  took=$((SECONDS - started))

  bin="$target_dir/$target/release/ecrupdater"
  size=$(stat -c %s "$bin")
  verdict=$(file -b "$bin")
  awk -v b="$bin" -v s="$size" -v t="$took" \
    'BEGIN { printf "%s: %d bytes (%.2f MiB), built in %ds\n", b, s, s / 1048576, t }'
  echo "  file: $verdict"
  case "$verdict" in
    *"statically linked"* | *"static-pie linked"*) ;;
    *) die "$bin is not statically linked" ;;
  esac
  if [ "$target" = x86_64-unknown-linux-musl ] && [ "$size" -gt "$BUDGET_X86_64" ]; then
    die "$bin is $size bytes, over the budget of $BUDGET_X86_64 bytes (2.5 MiB)"
  fi
  dist="$target_dir/dist/linux/$(arch_of "$target")"
  mkdir -p "$dist"
  cp -f "$bin" "$dist/ecrupdater"
  echo "  for the image: $dist/ecrupdater"
done
