#!/usr/bin/env bash
# The README's test command: installs what the tests need that is not there, then runs every tier
# (unit, integration against the fake API server, hostile peers, end-to-end with the real peers):
#   cargo test --workspace --no-fail-fast -- --include-ignored
# The end-to-end tests are `#[ignore = "needs PEER (install: ...)"]`, so plain `cargo test` reports
# them as ignored; here they run, and a peer still missing fails its test by name.
#
# What it installs, each only when missing (a second run installs nothing):
#   - the rustup targets in RUST_TARGETS (the static builds);
#   - the Debian packages in DEBIAN_PACKAGES (apt-get, when running as root);
#   - the Python peers in PYTHON_PACKAGES into a project-local virtual environment, .venv
#     (ECRUPDATER_VENV to move it), put first on PATH for the tests.
# Before installing it names every missing piece at once with the command that installs it; what
# it cannot install (not root, no rustup, no kubectl) stops it with one line saying what and how.
# Usage: scripts/test.sh [ARGS...]   (ARGS go to the test binaries, after --include-ignored)
#        scripts/test.sh --install-only   (install what is missing, run nothing; .ci/run uses it)
set -euo pipefail
cd "$(dirname "$0")/.."

RUST_TARGETS="x86_64-unknown-linux-musl aarch64-unknown-linux-musl"
# Static builds (musl-tools, the aarch64 cross gcc and libc), the end-to-end peers (prometheus
# for promtool, docker-registry, skopeo, apache2-utils for htpasswd, curl), GNU time for the
# benchmark, and the container tests' engine (podman, runc, qemu-user-static).
DEBIAN_PACKAGES="musl-tools gcc-aarch64-linux-gnu libc6-dev-arm64-cross file prometheus curl docker-registry skopeo apache2-utils time podman runc qemu-user-static"
# moto's server as AWS (with boto3 for its set-up), prometheus-client's parser for /metrics,
# PyYAML to read rendered manifests.
PYTHON_PACKAGES="moto[server]>=5.1,<6 boto3 prometheus-client pyyaml"
VENV=${ECRUPDATER_VENV:-.venv}

install_only=false
if [ "${1:-}" = "--install-only" ]; then
  install_only=true
  shift
fi

die() {
  echo "test.sh: $*" >&2
  exit 1
}

# ---- what is there and what is not (all checked before anything is installed)
command -v cargo >/dev/null || die "cargo is missing: install Rust with rustup (https://rustup.rs), then re-run"
command -v python3 >/dev/null || die "python3 is missing: apt-get install python3 python3-venv, then re-run"

missing_targets=""
if command -v rustup >/dev/null; then
  installed=$(rustup target list --installed)
  for t in $RUST_TARGETS; do
    grep -qx "$t" <<<"$installed" || missing_targets="$missing_targets $t"
  done
else
  for t in $RUST_TARGETS; do
    [ -d "$(rustc --print sysroot)/lib/rustlib/$t" ] || missing_targets="$missing_targets $t"
  done
fi
missing_targets=${missing_targets# }

missing_debs=""
if command -v dpkg-query >/dev/null; then
  for p in $DEBIAN_PACKAGES; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
      missing_debs="$missing_debs $p"
  done
else
  missing_debs=" $DEBIAN_PACKAGES"
fi
missing_debs=${missing_debs# }

# The Python peers: each distribution installed in the venv at a version its requirement allows.
python_check='
import sys
from importlib import metadata
missing = []
for req in sys.argv[1:]:
    name = req.split("[")[0].split(">")[0].split("<")[0].split("=")[0]
    try:
        version = metadata.version(name)
    except metadata.PackageNotFoundError:
        missing.append(req)
        continue
    if name == "moto" and not (version.split(".")[0] == "5" and int(version.split(".")[1]) >= 1):
        missing.append(req)
print(" ".join(missing))
'
missing_py=""
if [ -x "$VENV/bin/python3" ]; then
  # shellcheck disable=SC2086
  missing_py=$("$VENV/bin/python3" -c "$python_check" $PYTHON_PACKAGES)
  [ -x "$VENV/bin/moto_server" ] || missing_py=${missing_py:-moto[server]>=5.1,<6}
else
  missing_py=$PYTHON_PACKAGES
fi

missing_kubectl=false
command -v kubectl >/dev/null || missing_kubectl=true

quote_all() { local out="" w; for w in "$@"; do out="$out '$w'"; done; echo "${out# }"; }
if $missing_kubectl || [ -n "$missing_targets$missing_debs$missing_py" ]; then
  echo "== test peers missing (installing each with the command shown)"
  ! $missing_kubectl || echo "  kubectl    <- by hand (no Debian package): https://kubernetes.io/docs/tasks/tools/"
  [ -z "$missing_targets" ] || echo "  rustup targets: $missing_targets    <- rustup target add $missing_targets"
  [ -z "$missing_debs" ] || echo "  Debian packages: $missing_debs    <- apt-get update && apt-get install -y --no-install-recommends $missing_debs"
  if [ -n "$missing_py" ]; then
    [ -x "$VENV/bin/python3" ] || echo "  Python virtual environment $VENV    <- python3 -m venv $VENV"
    # shellcheck disable=SC2086
    echo "  Python packages: $missing_py    <- $VENV/bin/pip install $(quote_all $missing_py)"
  fi
  # What cannot be installed here stops the run before anything is installed.
  if $missing_kubectl; then
    die "kubectl is missing and has no Debian package: install it (https://kubernetes.io/docs/tasks/tools/), then re-run"
  fi
  if [ -n "$missing_targets" ] && ! command -v rustup >/dev/null; then
    die "cannot add the rust targets $missing_targets without rustup: install Rust with rustup (https://rustup.rs), then re-run"
  fi
  if [ -n "$missing_debs" ]; then
    command -v apt-get >/dev/null ||
      die "cannot install $missing_debs: no apt-get here; install them with your package manager, then re-run"
    [ "$(id -u)" = 0 ] ||
      die "cannot install Debian packages as $(id -un): run sudo apt-get install -y $missing_debs, then re-run"
  fi
fi

# ---- install what is missing
if [ -n "$missing_targets" ]; then
  # shellcheck disable=SC2086
  rustup target add $missing_targets ||
    die "rustup target add $missing_targets failed (see above): check the network to static.rust-lang.org, then re-run"
fi
if [ -n "$missing_debs" ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq || die "apt-get update failed: check the network and /etc/apt/sources.list, then re-run"
  # shellcheck disable=SC2086
  apt-get install -y -qq --no-install-recommends $missing_debs >/dev/null ||
    die "apt-get install $missing_debs failed (see above): fix it, then re-run"
fi
if [ -n "$missing_py" ]; then
  if [ ! -x "$VENV/bin/python3" ]; then
    python3 -m venv "$VENV" ||
      die "python3 -m venv $VENV failed: apt-get install python3-venv, then re-run"
  fi
  # shellcheck disable=SC2086
  "$VENV/bin/python3" -m pip install --quiet --disable-pip-version-check $missing_py ||
    die "pip install into $VENV failed (see above): check the network to PyPI, then re-run"
fi
VENV_BIN=$(cd "$VENV/bin" && pwd)
export PATH="$VENV_BIN:$PATH"
echo "== test peers: all present (rustup targets, Debian packages, Python peers in $VENV)"
$install_only && exit 0

# ---- every tier
export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}
log=$(mktemp)
trap 'rm -f "$log"' EXIT
echo "== cargo test --workspace --no-fail-fast -- --include-ignored $*"
status=0
cargo test --workspace --no-fail-fast -- --include-ignored "$@" 2>&1 | tee "$log" || status=$?

# One line per test binary: passed, failed, ignored (none should be ignored here).
echo
echo "== summary (per test binary: passed / failed / ignored)"
awk '
  /^ *Running / {
    name = $NF; sub(/\)$/, "", name); sub(/^.*\//, "", name); sub(/-[0-9a-f]+$/, "", name)
    if ($2 == "unittests") name = "unittests " name " (" $3 ")"
  }
  /^ *Doc-tests / { name = "doc-tests " $2 }
  /^test result: / {
    passed = $4; failed = $6; ignored = $8
    sub(/;/, "", passed); sub(/;/, "", failed); sub(/;/, "", ignored)
    printf "  %-44s %5d passed %3d failed %3d ignored\n", name, passed, failed, ignored
    tp += passed; tf += failed; ti += ignored
  }
  END { printf "  %-44s %5d passed %3d failed %3d ignored\n", "total", tp, tf, ti }
' "$log"
if [ "$status" -ne 0 ]; then
  echo "test.sh: some tests failed (status $status): see the failures above"
fi
exit "$status"
