#!/usr/bin/env bash
# Benchmark: `ecrupdater --once` (the static release binary) over N namespaces against the fake
# API server (tests/testkit's fake-kube) and the fake ECR (tests/testkit's fake-ecr, which hands
# out whatever token it is told: a new one for each rotating cycle), with ECR_CREATE_MISSING=true.
# Prints the binary's size and the image's (the scratch image is the binary alone), then three
# cycles, each one whole `--once` process:
#   first    no secret exists yet: every secret created (POST);
#   rotated  the fake ECR hands out a NEW token: every secret rewritten (PATCH) with it;
#   current  the same token again: every secret already holds it, nothing is written (GET only).
# For each: wall time of the process, its peak RSS (GNU time's maximum resident set), the API
# requests the fake API server received by verb, and the daemon's own count of secrets created,
# updated and unchanged. Last, one line of the figures the README quotes. Figures only; nothing
# is asserted.
# Usage: scripts/bench.sh [N...]   (default 1000). Needs GNU time (/usr/bin/time, Debian package
# `time`), curl and python3.
# ECRUPDATER_BIN=path benchmarks that binary instead of building the static one.
set -euo pipefail
cd "$(dirname "$0")/.."

counts=("$@")
[ ${#counts[@]} -gt 0 ] || counts=(1000)

missing=()
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
cargo build --quiet --release -p ecrupdater-testkit --bin fake-kube --bin fake-ecr
fake=$target_dir/release/fake-kube
fake_ecr=$target_dir/release/fake-ecr
work=$(mktemp -d)
pids=()
cleanup() {
  exec 3>&- 2>/dev/null || true
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

# ---- the fake ECR, driven through a FIFO on fd 3: one command per line, one answer per line
mkfifo "$work/ecr.in"
"$fake_ecr" <"$work/ecr.in" >"$work/ecr.out" 2>"$work/ecr.err" &
pids+=($!)
exec 3>"$work/ecr.in"
for _ in $(seq 1 200); do grep -q '^listening on' "$work/ecr.out" && break; sleep 0.05; done
ecr_url=$(sed -n 's/^listening on //p' "$work/ecr.out")
[ -n "$ecr_url" ] || { echo "fake-ecr did not start:" >&2; cat "$work/ecr.err" >&2; exit 1; }
# Sets the token the fake ECR hands out (valid for 12 hours) and waits for its `ok`.
set_token() {
  local answers
  answers=$(grep -c '^ok\|^error' "$work/ecr.out" || true)
  echo "token AWS $1 $(($(date +%s) + 43200))" >&3
  for _ in $(seq 1 200); do
    [ "$(grep -c '^ok\|^error' "$work/ecr.out" || true)" -gt "$answers" ] && break
    sleep 0.01
  done
  tail -n 1 "$work/ecr.out" | grep -q '^ok' || { echo "fake-ecr refused the token:" >&2; tail -n 1 "$work/ecr.out" >&2; exit 1; }
}

bin_size=$(stat -c %s "$bin")
printf 'binary: %s (%s bytes)\n' "$bin" "$bin_size"
# The images themselves (built with podman, sizes compressed and unpacked) come at the end,
# from scripts/bench-image.sh.
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
  for run in first rotated current; do
    case $run in
      first) set_token "bench-token-$n-first-0123456789abcdef" ;;
      rotated) set_token "bench-token-$n-rotated-0123456789abcdef" ;;
      current) ;; # the rotated token again: every secret already holds it
    esac
    curl -s -X POST "$url/_admin/stats/reset" >/dev/null
    env -i PATH="$PATH" K8S_PULL_SECRET_NAME=ecr-pull AWS_REGION=eu-west-1 \
      AWS_ENDPOINT_URL="$ecr_url" AWS_ACCESS_KEY_ID=AKIABENCHBENCHBENCH \
      AWS_SECRET_ACCESS_KEY=bench-secret-key ECR_CREATE_MISSING=true KUBERNETES_API_ENDPOINT="$url" \
      LOG_CONFIG=/nonexistent LOG_LEVEL=INFO AWS_EC2_METADATA_DISABLED=true ECR_HEALTH_ADDR= ECR_VERIFY=off \
      /usr/bin/time -f '%e %M' -o "$work/time" "$bin" --once >/dev/null 2>"$work/daemon.err" || {
        echo "ecrupdater failed:"; cat "$work/daemon.err"; exit 1; }
    read -r wall rss_kib <"$work/time"
    stats=$(curl -s "$url/_admin/stats")
    verbs=$(python3 -c 'import json,sys; d=json.load(sys.stdin)["requests_by_verb"]; print(" ".join(f"{k}={v}" for k,v in sorted(d.items()) if v))' <<<"$stats")
    total=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["total"])' <<<"$stats")
    # The daemon's own count, from its "cycle done: C created, U updated, K unchanged, ..." line.
    written=$(sed -n 's/.*cycle done: \([0-9]*\) created, \([0-9]*\) updated, \([0-9]*\) unchanged.*/created=\1 updated=\2 unchanged=\3/p' "$work/daemon.err" | tail -n 1)
    awk -v n="$n" -v r="$run" -v w="$wall" -v m="$rss_kib" -v v="$verbs" -v t="$total" -v s="${written:-(no cycle line)}" \
      'BEGIN { printf "namespaces=%d cycle=%-7s process wall=%.2fs peak_rss=%.2fMiB api_requests=%d (%s) secrets: %s\n", n, r, w, m/1024, t, v, s }'
    summary+=("$(awk -v n="$n" -v r="$run" -v w="$wall" -v m="$rss_kib" 'BEGIN { printf "%s cycle over %d namespaces %.2f s, %.2f MiB peak RSS", r, n, w, m/1024 }')")
  done
  kill "$fake_pid" 2>/dev/null || true
done
scripts/bench-image.sh "${counts[0]}" # the images: sizes, container start to first cycle, peak RSS (podman)
awk -v s="$bin_size" 'BEGIN { printf "summary: x86_64 binary %.2f MiB; ", s / 1048576 }'
(IFS=';'; echo "${summary[*]}" | sed 's/;/; /g')
