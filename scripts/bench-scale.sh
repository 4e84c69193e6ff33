#!/usr/bin/env bash
# Scale benchmark: first and steady-state cycle time, requests per cycle by verb, peak RSS and
# new-namespace latency for several namespace counts (default 100 1000 5000), against the
# testkit's fake API server and fake ECR. Figures only; nothing is asserted.
# Usage: scripts/bench-scale.sh [N...]
set -euo pipefail
cd "$(dirname "$0")/.."
target_dir=${CARGO_TARGET_DIR:-target}
scripts/build-static.sh x86_64-unknown-linux-musl >/dev/null
cargo build --quiet --release -p ecrupdater-testkit --bins
cargo run --quiet --release --example scale -- \
  --daemon "$target_dir/x86_64-unknown-linux-musl/release/ecrupdater" \
  --fake-kube "$target_dir/release/fake-kube" \
  --fake-ecr "$target_dir/release/fake-ecr" "$@"
