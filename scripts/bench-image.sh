#!/usr/bin/env bash
# Benchmark of the scratch image (scripts/build-image.sh), per architecture: the binary's size,
# the image's size uncompressed (the one layer as stored and unpacked) and compressed (what a
# registry stores and a node downloads: the gzip layer, the config and the manifest, as
# `podman push` writes them), then the container in-cluster as the Deployment runs it
# (restricted: user 65534, read-only root, no capabilities, no new privileges, 64m memory)
# against the fake API server over TLS (tests/testkit's fake-kube, N namespaces, every secret
# missing and created) and the fake ECR (fake-kube's sibling fake-ecr, a token valid 12 h):
#   start   `podman run` to the process running (podman's own `--version` run, to the end)
#   ready   `podman run -d` to /readyz answering 200, i.e. the first completed cycle, polled
#           every 10 ms; and the cycle's own time from its "cycle done" log line
#   memory  peak RSS of the container's process (VmHWM in /proc/PID/status, read after the
#           first cycle)
# The arm64 image runs where this machine executes arm64 (binfmt_misc), else under
# qemu-aarch64-static given as the entrypoint's interpreter (its time and memory are then qemu's,
# not an arm64 machine's, and are marked so), else not at all (said so). Figures only.
#
# Usage: scripts/bench-image.sh [N]   (default 1000 namespaces)
# Needs podman and runc, curl, python3; cargo builds fake-kube and fake-ecr.
set -euo pipefail
cd "$(dirname "$0")/.."

n=${1:-1000}
missing=()
command -v podman >/dev/null || missing+=("podman: apt-get install podman runc")
command -v curl >/dev/null || missing+=("curl: apt-get install curl")
command -v python3 >/dev/null || missing+=("python3")
if [ ${#missing[@]} -gt 0 ]; then
  printf 'bench-image: missing:\n' >&2
  printf '  %s\n' "${missing[@]}" >&2
  exit 1
fi
# shellcheck disable=SC2206 # the flags are words on purpose
podman=(podman ${ECRUPDATER_PODMAN_FLAGS---runtime /usr/sbin/runc --cgroup-manager cgroupfs --storage-driver vfs})
restricted=(--network host --read-only --read-only-tmpfs=false --cap-drop ALL --security-opt no-new-privileges
  --user 65534:65534 --memory 64m --ulimit nofile=1024:1024 --ulimit nproc=1024:1024 --pull never)

target_dir=${CARGO_TARGET_DIR:-target}
cargo build --quiet --release -p ecrupdater-testkit --bin fake-kube --bin fake-ecr
fake_kube=$target_dir/release/fake-kube
fake_ecr=$target_dir/release/fake-ecr

work=$(mktemp -d)
pids=()
containers=()
cleanup() {
  for c in "${containers[@]}"; do "${podman[@]}" rm --force --time 0 "$c" >/dev/null 2>&1 || true; done
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
now_ns() { date +%s%N; }
mib() { awk -v b="$1" 'BEGIN { printf "%.2f MiB", b / 1048576 }'; }

# Sizes of one image: uncompressed (podman's Size) and compressed (pushed to an OCI layout).
sizes() {
  local image=$1 dir=$work/oci-$2
  local uncompressed compressed
  uncompressed=$("${podman[@]}" image inspect --format '{{.Size}}' "$image")
  "${podman[@]}" push --quiet --compression-format gzip "$image" "oci:$dir" >/dev/null
  compressed=$(python3 - "$dir" <<'EOF'
import json, os, sys
d = sys.argv[1]
def blob(digest):
    algo, hexd = digest.split(":")
    return os.path.join(d, "blobs", algo, hexd)
index = json.load(open(os.path.join(d, "index.json")))
m = index["manifests"][0]
manifest = json.load(open(blob(m["digest"])))
print(m["size"] + manifest["config"]["size"] + sum(l["size"] for l in manifest["layers"]))
EOF
)
  echo "$uncompressed $compressed"
}

# One in-cluster run; sets ready (s), cycle (s) and peak (KiB). Not run in a subshell, so the
# EXIT trap knows every process and container it started.
run_in_cluster() {
  local image=$1 label=$2
  shift 2
  local token=bench-service-account-token-0123456789
  local dir=$work/run-$label
  mkdir -p "$dir/sa"
  "$fake_kube" --namespaces "$n" --no-default-sa --tls-ca-out "$dir/sa/ca.crt" --bearer-token "$token" \
    >"$dir/kube.out" 2>"$dir/kube.err" &
  local kube_pid=$!
  pids+=("$kube_pid")
  for _ in $(seq 1 200); do grep -q '^listening on' "$dir/kube.out" && break; sleep 0.05; done
  local kube_port
  kube_port=$(sed -n 's/^listening on https:\/\/127.0.0.1://p' "$dir/kube.out")
  [ -n "$kube_port" ] || { echo "bench-image: fake-kube did not start" >&2; cat "$dir/kube.err" >&2; exit 1; }
  printf '%s' "$token" >"$dir/sa/token"
  printf 'ecr-updater' >"$dir/sa/namespace"
  chmod 0755 "$dir" "$dir/sa"
  chmod 0644 "$dir/sa/"*

  mkfifo "$dir/ecr.in"
  "$fake_ecr" <"$dir/ecr.in" >"$dir/ecr.out" 2>"$dir/ecr.err" &
  pids+=($!)
  exec {ecr_in}>"$dir/ecr.in"
  for _ in $(seq 1 200); do grep -q '^listening on' "$dir/ecr.out" && break; sleep 0.05; done
  local ecr_url
  ecr_url=$(sed -n 's/^listening on //p' "$dir/ecr.out")
  echo "token AWS bench-ecr-password-$label $(($(date +%s) + 43200))" >&"$ecr_in"

  local health_port
  health_port=$(free_port)
  cat >"$dir/env" <<EOF
K8S_PULL_SECRET_NAME=ecr-pull
AWS_REGION=eu-west-1
ECR_CREATE_MISSING=true
ECR_SKIP_NAMESPACES=kube-system,kube-public,kube-node-lease
ECR_HEALTH_ADDR=127.0.0.1:$health_port
AWS_ACCESS_KEY_ID=AKIABENCHBENCHBENCH0
AWS_SECRET_ACCESS_KEY=bench-secret-access-key
AWS_ENDPOINT_URL=$ecr_url
ECR_VERIFY=off
KUBERNETES_SERVICE_HOST=127.0.0.1
KUBERNETES_SERVICE_PORT=$kube_port
EOF
  local name=ecrupdater-bench-$$-$label
  containers+=("$name")
  local started
  started=$(now_ns)
  "${podman[@]}" run -d --name "$name" "${restricted[@]}" --env-file "$dir/env" \
    -v "$dir/sa:/var/run/secrets/kubernetes.io/serviceaccount:ro" "$@" >/dev/null 2>"$dir/run.err" || {
    cat "$dir/run.err" >&2; exit 1; }
  local answered=no
  for _ in $(seq 1 12000); do
    if [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$health_port/readyz" 2>/dev/null)" = 200 ]; then
      answered=yes
      break
    fi
    sleep 0.01
  done
  ready=$(now_ns)
  [ "$answered" = yes ] || { echo "bench-image: /readyz never answered 200:" >&2; "${podman[@]}" logs "$name" >&2; exit 1; }
  local pid
  pid=$("${podman[@]}" inspect --format '{{.State.Pid}}' "$name")
  peak=$(awk '/^VmHWM:/ { print $2 }' "/proc/$pid/status")
  cycle=$("${podman[@]}" logs "$name" 2>&1 | sed -n 's/.*cycle done: .* in \([0-9.]*\) s;.*/\1/p' | head -n1)
  [ -n "$cycle" ] || { echo "bench-image: no completed cycle:" >&2; "${podman[@]}" logs "$name" >&2; exit 1; }
  "${podman[@]}" rm --force --time 5 "$name" >/dev/null
  exec {ecr_in}>&-
  kill "$kube_pid" 2>/dev/null || true
  ready=$(awk -v s="$started" -v r="$ready" 'BEGIN { printf "%.2f", (r - s) / 1e9 }')
}

# podman run to the end of `--version`: the engine's cost of starting this container.
start_cost() {
  local started ended
  started=$(now_ns)
  "${podman[@]}" run --rm "${restricted[@]}" "$@" --version >/dev/null 2>"$work/start.err" || {
    cat "$work/start.err" >&2; exit 1; }
  ended=$(now_ns)
  awk -v s="$started" -v e="$ended" 'BEGIN { printf "%.2f", (e - s) / 1e9 }'
}

summary=()
for arch in amd64 arm64; do
  image=$(scripts/build-image.sh "$arch" 2>"$work/build-$arch.err" | tail -n1) || {
    cat "$work/build-$arch.err" >&2; exit 1; }
  binary=$target_dir/dist/linux/$arch/ecrupdater
  bin_size=$(stat -c %s "$binary")
  read -r uncompressed compressed <<<"$(sizes "$image" "$arch")"
  printf 'image %s: %s\n' "$arch" "$image"
  printf '  binary %d bytes (%s); image uncompressed %d bytes (%s); compressed %d bytes (%s: gzip layer + config + manifest)\n' \
    "$bin_size" "$(mib "$bin_size")" "$uncompressed" "$(mib "$uncompressed")" "$compressed" "$(mib "$compressed")"

  emulated=""
  run_args=("$image")
  native=$(uname -m | sed 's/x86_64/amd64/; s/aarch64/arm64/')
  if [ "$arch" != "$native" ] && "$binary" --version >/dev/null 2>&1; then
    emulated=" (emulated: qemu through binfmt_misc; time and memory are qemu's)"
  elif [ "$arch" != "$native" ]; then
    if [ -x /usr/bin/qemu-aarch64-static ]; then
      emulated=" (emulated: qemu-aarch64-static as the entrypoint's interpreter, no binfmt_misc handler here; time and memory are qemu's)"
      run_args=(-v /usr/bin/qemu-aarch64-static:/qemu:ro --entrypoint /qemu "$image" /ecrupdater)
    else
      echo "  not run: this machine cannot execute arm64 (no binfmt_misc handler, no qemu-aarch64-static)"
      summary+=("$arch image $(mib "$compressed") compressed, $(mib "$uncompressed") uncompressed (binary $(mib "$bin_size")), not run")
      continue
    fi
  fi
  start=$(start_cost "${run_args[@]}")
  run_in_cluster "$image" "$arch" "${run_args[@]}"
  printf '  podman run --version to its end %s s; podman run -d to /readyz 200 (first cycle over %d namespaces, every secret created) %s s, the cycle itself %s s; peak RSS %.2f MiB%s\n' \
    "$start" "$n" "$ready" "$cycle" "$(awk -v p="$peak" 'BEGIN { print p / 1024 }')" "$emulated"
  summary+=("$arch image $(mib "$compressed") compressed, $(mib "$uncompressed") uncompressed (binary $(mib "$bin_size")), start to first cycle ${ready} s, peak RSS $(awk -v p="$peak" 'BEGIN { printf "%.2f", p / 1024 }') MiB${emulated:+ (qemu)}")
done
(IFS=';'; echo "summary image: ${summary[*]}" | sed 's/;/; /g')
