#!/usr/bin/env bash
# Benchmark: `ecrupdater --once` (the static release binary) over N namespaces against the fake
# API server (tests/testkit's fake-kube) and moto's server as ECR, with ECR_CREATE_MISSING=true.
# Prints the binary's size and the image's (the scratch image is the binary alone), then, for the
# first cycle (every secret created) and a second one (every secret updated): wall time (the
# cycle time: one whole `--once` process), peak RSS, and API requests by verb; last, one line of
# the figures the README quotes. Figures only; nothing is asserted.
# Usage: scripts/bench.sh [N...]   (default 1000). Needs moto_server (pip install 'moto[server]'),
# GNU time (/usr/bin/time, Debian package `time`), curl and python3.
# ECRUPDATER_BIN=path benchmarks that binary instead of building the static one.
set -euo pipefail
cd "$(dirname "$0")/.."

counts=("$@")
[ ${#counts[@]} -gt 0 ] || counts=(1000)

missing=()
command -v moto_server >/dev/null || missing+=("moto_server: pip install 'moto[server]'")
[ -x /usr/bin/time ] || missing+=("/usr/bin/time: apt-get install time")
command -v curl >/dev/null || missing+=("curl: apt-get install curl")
command -v python3 >/dev/null || missing+=("python3")
if [ ${#missing[@]} -gt 0 ]; then
  printf 'bench: missing:\n' >&2
  printf '  %s\n' "${missing[@]}" >&2
  exit 1
fi

target_dir=${CARGO_TARGET_DIR:-target}
if [ -n "${ECRUPDATER_BIN:-}" ]; then
  bin=$ECRUPDATER_BIN
else
  scripts/build-static.sh >/dev/null
  bin=$target_dir/x86_64-unknown-linux-musl/release/ecrupdater
fi
cargo build --quiet --release -p ecrupdater-testkit --bin fake-kube
fake=$target_dir/release/fake-kube
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 1 200); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.05; done; echo "port $1 never opened" >&2; exit 1; }

moto_port=$(free_port)
moto_server -H 127.0.0.1 -p "$moto_port" >"$work/moto.log" 2>&1 &
pids+=($!)
wait_port "$moto_port"

bin_size=$(stat -c %s "$bin")
printf 'binary: %s (%s bytes)\n' "$bin" "$bin_size"
# No Docker engine is needed: Dockerfile.scratch's final stage is FROM scratch plus this one
# file, so the image's payload is the binary (the image adds a few hundred bytes of JSON).
awk -v s="$bin_size" 'BEGIN { printf "image: FROM scratch, payload = the binary alone: %d bytes (%.2f MiB); not built here (no Docker engine)\n", s, s / 1048576 }'
for other in "$target_dir"/aarch64-unknown-linux-musl/release/ecrupdater "$target_dir"/armv7-unknown-linux-musleabihf/release/ecrupdater; do
  if [ -f "$other" ]; then
    printf 'binary: %s (%s bytes; built earlier, not benchmarked)\n' "$other" "$(stat -c %s "$other")"
  fi
done
summary=()
for n in "${counts[@]}"; do
  "$fake" --namespaces "$n" --no-default-sa >"$work/fake.out" 2>"$work/fake.err" &
  fake_pid=$!
  pids+=($fake_pid)
  for _ in $(seq 1 200); do grep -q '^listening on' "$work/fake.out" && break; sleep 0.05; done
  url=$(sed -n 's/^listening on //p' "$work/fake.out")
  for run in first steady; do
    curl -s -X POST "$url/_admin/stats/reset" >/dev/null
    env -i PATH="$PATH" K8S_PULL_SECRET_NAME=ecr-pull AWS_REGION=eu-west-1 \
      AWS_ENDPOINT_URL="http://127.0.0.1:$moto_port" AWS_ACCESS_KEY_ID=AKIABENCHBENCHBENCH \
      AWS_SECRET_ACCESS_KEY=bench-secret-key ECR_CREATE_MISSING=true KUBERNETES_API_ENDPOINT="$url" \
      LOG_CONFIG=/nonexistent LOG_LEVEL=WARNING AWS_EC2_METADATA_DISABLED=true \
      /usr/bin/time -f '%e %M' -o "$work/time" "$bin" --once >/dev/null 2>"$work/daemon.err" || {
        echo "ecrupdater failed:"; cat "$work/daemon.err"; exit 1; }
    read -r wall rss_kib <"$work/time"
    stats=$(curl -s "$url/_admin/stats")
    verbs=$(python3 -c 'import json,sys; d=json.load(sys.stdin)["requests_by_verb"]; print(" ".join(f"{k}={v}" for k,v in sorted(d.items()) if v))' <<<"$stats")
    total=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["total"])' <<<"$stats")
    awk -v n="$n" -v r="$run" -v w="$wall" -v m="$rss_kib" -v v="$verbs" -v t="$total" \
      'BEGIN { printf "namespaces=%d cycle=%-6s wall=%.2fs peak_rss=%.2fMiB requests=%d (%s)\n", n, r, w, m/1024, t, v }'
    summary+=("$(awk -v n="$n" -v r="$run" -v w="$wall" -v m="$rss_kib" 'BEGIN { printf "%s cycle over %d namespaces %.2f s, %.2f MiB peak RSS", r, n, w, m/1024 }')")
  done
  kill "$fake_pid" 2>/dev/null || true
done
scripts/bench-image.sh "${counts[0]}" # the images: sizes, container start to first cycle, peak RSS (podman)
awk -v s="$bin_size" 'BEGIN { printf "summary: binary and image payload %.2f MiB; ", s / 1048576 }'
(IFS=';'; echo "${summary[*]}" | sed 's/;/; /g')
