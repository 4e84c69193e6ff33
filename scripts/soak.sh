#!/usr/bin/env bash
# Soak benchmark: N short refresh cycles (default 10,000) of the daemon, built from the library
# in one process (examples/soak.rs), against tests/testkit's fake-kube and fake-ecr processes,
# with a random fault injected before about one cycle in five (API 500/503/429/reset/404/409/410,
# slow answers and timeouts, namespace churn; ECR throttling, 5xx, reset, refusal, timeout).
# Prints the daemon side's RSS (start, every 1,000 cycles, peak, end) and open file descriptors,
# which must stay flat, and the cycle outcomes. Figures only; nothing is asserted.
# Usage: scripts/soak.sh [CYCLES] [--seed N]   (a few minutes for 10,000 on 2 cores)
set -euo pipefail
cd "$(dirname "$0")/.."

cycles=10000
if [[ ${1:-} =~ ^[0-9]+$ ]]; then
  cycles=$1
  shift
fi

cargo build --quiet --release -p ecrupdater-testkit --bin fake-kube --bin fake-ecr
cargo build --quiet --release --example soak

target_dir=${CARGO_TARGET_DIR:-target}
work=$(mktemp -d)
soak_pid=
cleanup() {
  # The fakes are the soak's children and go with it; after an abnormal end, end them by id.
  if [ -n "$soak_pid" ]; then kill "$soak_pid" 2>/dev/null || true; fi
  if [ -f "$work/out" ]; then
    for pid in $(sed -n 's/^started .* (pid \([0-9]*\))$/\1/p' "$work/out"); do
      kill "$pid" 2>/dev/null || true
    done
  fi
  rm -rf "$work"
}
trap cleanup EXIT

: >"$work/out"
"$target_dir/release/examples/soak" "$cycles" "$@" \
  --fake-kube "$target_dir/release/fake-kube" --fake-ecr "$target_dir/release/fake-ecr" \
  >>"$work/out" 2>"$work/log" &
soak_pid=$!
tail -n +1 -f --pid="$soak_pid" "$work/out" 2>/dev/null || true
status=0
wait "$soak_pid" || status=$?
soak_pid=
printf 'daemon log: %d WARNING and %d ERROR lines\n' \
  "$(grep -c '^WARNING' "$work/log" || true)" "$(grep -c '^ERROR' "$work/log" || true)"
if [ "$status" -ne 0 ]; then
  echo "soak failed (status $status):"
  grep -v '^WARNING\|^ERROR' "$work/log" | tail -20
  exit "$status"
fi
