#!/usr/bin/env bash
# A demo with no cluster and no AWS account: ecrupdater runs one cycle (--once) against moto's
# server standing in for AWS ECR and the project's fake Kubernetes API server (tests/testkit's
# fake-kube), both on 127.0.0.1, and the script shows the pull secrets before and after
# (decoded, passwords masked). Four namespaces show the four cases:
#   demo-stale      a kubernetes.io/dockerconfigjson secret holding an old token -> updated
#   demo-dockercfg  a kubernetes.io/dockercfg secret (the legacy format)        -> updated, same format
#   demo-opaque     an Opaque secret with the same name (not a pull secret)     -> left alone, warning
#   demo-empty      no secret                                                   -> created (ECR_CREATE_MISSING)
# Everything it starts is stopped on exit; nothing outside 127.0.0.1 is contacted.
# Usage: scripts/demo.sh   Needs: cargo, python3 and curl; moto's server is installed into the
# project's virtual environment (.venv, the one scripts/test.sh uses; ECRUPDATER_VENV moves it)
# when it is not on the PATH.
# ECRUPDATER_BIN and FAKE_KUBE_BIN, both set, name prebuilt binaries: nothing is built then
# (tests/shipping.rs runs the demo so, inside `cargo test`).
set -euo pipefail
cd "$(dirname "$0")/.."

SECRET=ecr-pull
REGION=eu-west-1

# ---- prerequisites, all checked before anything starts
prebuilt=false
[ -n "${ECRUPDATER_BIN:-}" ] && [ -n "${FAKE_KUBE_BIN:-}" ] && prebuilt=true
missing=()
$prebuilt || command -v cargo >/dev/null || missing+=("cargo (Rust: https://rustup.rs)")
command -v python3 >/dev/null || missing+=("python3")
command -v curl >/dev/null || missing+=("curl (apt-get install curl)")
venv=${ECRUPDATER_VENV:-.venv}
[ -x "$venv/bin/moto_server" ] && PATH="$(cd "$venv/bin" && pwd):$PATH"
install_moto=false
if ! command -v moto_server >/dev/null; then
  if command -v python3 >/dev/null; then install_moto=true; fi
fi
if [ ${#missing[@]} -gt 0 ]; then
  echo "demo: missing prerequisites:" >&2
  printf '  - %s\n' "${missing[@]}" >&2
  exit 1
fi
if $install_moto; then
  echo "== installing moto's server (AWS stand-in) into $venv: pip install 'moto[server]>=5.1,<6' (once)"
  if [ ! -x "$venv/bin/python3" ]; then
    python3 -m venv "$venv" ||
      { echo "demo: python3 -m venv $venv failed: apt-get install python3-venv, then re-run" >&2; exit 1; }
  fi
  "$venv/bin/python3" -m pip install --quiet --disable-pip-version-check 'moto[server]>=5.1,<6' ||
    { echo "demo: pip install 'moto[server]' into $venv failed (see above): check the network to PyPI" >&2; exit 1; }
  PATH="$(cd "$venv/bin" && pwd):$PATH"
fi

if $prebuilt; then
  bin=$ECRUPDATER_BIN
  fake=$FAKE_KUBE_BIN
else
  echo "== building ecrupdater and the fake API server (cargo build; a few minutes the first time)"
  cargo build --locked --bin ecrupdater
  cargo build --locked -p ecrupdater-testkit --bin fake-kube
  target_dir=${CARGO_TARGET_DIR:-target}
  bin="$target_dir/debug/ecrupdater"
  fake="$target_dir/debug/fake-kube"
fi

work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() {
  for _ in $(seq 1 300); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.05; done
  echo "demo: $2 never listened on 127.0.0.1:$1; its log:" >&2
  cat "$3" >&2
  exit 1
}

# ---- moto's server as AWS (ECR's GetAuthorizationToken; it checks no signatures by default)
moto_port=$(free_port)
moto_server -H 127.0.0.1 -p "$moto_port" >"$work/moto.log" 2>&1 &
pids+=($!)
wait_port "$moto_port" moto_server "$work/moto.log"
echo "== moto_server (AWS stand-in) on http://127.0.0.1:$moto_port"

# ---- the fake API server, seeded with three secrets; the four namespaces are created below
old_token=$(printf 'AWS:an-old-token-from-yesterday' | base64 | tr -d '\n')
old_json="{\"auths\":{\"123456789012.dkr.ecr.$REGION.amazonaws.com\":{\"username\":\"AWS\",\"password\":\"an-old-token-from-yesterday\",\"auth\":\"$old_token\"}}}"
old_cfg="{\"https://123456789012.dkr.ecr.$REGION.amazonaws.com\":{\"username\":\"AWS\",\"password\":\"an-old-token-from-yesterday\",\"auth\":\"$old_token\"}}"
b64() { printf '%s' "$1" | base64 | tr -d '\n'; }
cat >"$work/seed.json" <<EOF
[
  {"namespace": "demo-stale", "secret": {"metadata": {"name": "$SECRET", "labels": {"team": "blue"}},
    "type": "kubernetes.io/dockerconfigjson", "data": {".dockerconfigjson": "$(b64 "$old_json")"}}},
  {"namespace": "demo-dockercfg", "secret": {"metadata": {"name": "$SECRET"},
    "type": "kubernetes.io/dockercfg", "data": {".dockercfg": "$(b64 "$old_cfg")"}}},
  {"namespace": "demo-opaque", "secret": {"metadata": {"name": "$SECRET"},
    "type": "Opaque", "data": {"db-password": "$(b64 'not-a-registry-credential')"}}}
]
EOF
"$fake" --seed "$work/seed.json" >"$work/fake.out" 2>"$work/fake.log" &
pids+=($!)
for _ in $(seq 1 300); do grep -q '^listening on' "$work/fake.out" && break; sleep 0.05; done
kube=$(sed -n 's/^listening on //p' "$work/fake.out")
[ -n "$kube" ] || { echo "demo: fake-kube did not start:" >&2; cat "$work/fake.log" >&2; exit 1; }
for ns in demo-stale demo-dockercfg demo-opaque demo-empty; do
  curl -sf -o /dev/null -X POST -H 'Content-Type: application/json' \
    --data "{\"name\":\"$ns\"}" "$kube/_admin/namespaces"
done
echo "== fake Kubernetes API server on $kube: namespaces demo-stale, demo-dockercfg, demo-opaque, demo-empty"

# Prints every secret in the fake API server, decoded, with passwords and other values masked.
show_secrets() {
  curl -sf "$kube/_admin/secrets" | python3 -c '
import base64, json, sys

def mask(value):
    return value[:4] + "..." + "(%d chars)" % len(value) if len(value) > 8 else "***"

def masked_entry(entry):
    out = {}
    for key, value in entry.items():
        if key == "password":
            out[key] = mask(value)
        elif key == "auth":
            user, _, password = base64.b64decode(value).decode().partition(":")
            out[key] = "base64(%s:%s)" % (user, mask(password))
        else:
            out[key] = value
    return out

namespaces = ["demo-stale", "demo-dockercfg", "demo-opaque", "demo-empty"]
found = {item["namespace"]: item["secret"] for item in json.load(sys.stdin)}
for ns in namespaces:
    secret = found.get(ns)
    if secret is None:
        print("  %-15s (no secret)" % ns)
        continue
    meta = secret.get("metadata", {})
    print("  %-15s %s  type=%s" % (ns, meta.get("name"), secret.get("type")))
    for key, value in sorted((meta.get("labels") or {}).items()):
        print("  %-15s   label %s=%s" % ("", key, value))
    for key, value in sorted((meta.get("annotations") or {}).items()):
        print("  %-15s   annotation %s=%s" % ("", key, value))
    for key, value in sorted((secret.get("data") or {}).items()):
        raw = base64.b64decode(value).decode()
        if key == ".dockerconfigjson":
            doc = json.loads(raw)
            doc["auths"] = {h: masked_entry(e) for h, e in doc.get("auths", {}).items()}
        elif key == ".dockercfg":
            doc = {h: masked_entry(e) for h, e in json.loads(raw).items()}
        else:
            doc = mask(raw)
        print("  %-15s   %s: %s" % ("", key, json.dumps(doc)))
'
}

echo
echo "== secrets BEFORE"
show_secrets

echo
echo "== ecrupdater --once (K8S_PULL_SECRET_NAME=$SECRET ECR_CREATE_MISSING=true, dummy AWS keys)"
status=0
env -i PATH="$PATH" HOME="$work" \
  K8S_PULL_SECRET_NAME="$SECRET" AWS_REGION="$REGION" \
  AWS_ACCESS_KEY_ID=AKIADEMODEMODEMODEMO AWS_SECRET_ACCESS_KEY=demo-secret-key-not-a-real-one \
  AWS_ENDPOINT_URL="http://127.0.0.1:$moto_port" AWS_EC2_METADATA_DISABLED=true \
  ECR_VERIFY=off \
  KUBERNETES_API_ENDPOINT="$kube" ECR_CREATE_MISSING=true \
  LOG_CONFIG="$work/no-logging.json" LOG_LEVEL=INFO \
  "$bin" --once 2>&1 | sed 's/^/  | /' || status=$?
[ "$status" -eq 0 ] || { echo "demo: ecrupdater --once failed (status $status)" >&2; exit 1; }

echo
echo "== secrets AFTER"
show_secrets
echo
echo "(moto hands out a fixed token whose expiry is in 2015; the daemon takes an expiry that implausible as fetch time + 12 h, with a warning, hence the annotation's date.)"
