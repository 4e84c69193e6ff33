#!/usr/bin/env bash
# Renders every shipped install (example_deployment and each of its variants) with
# `kubectl kustomize` into tests/rendered/*.json, the objects the integration tests' fake API
# server takes its RBAC from (tests/common/fake.rs). Those tests then need neither kubectl nor
# python3's yaml module; tests/shipping.rs (which does need them) fails when a snapshot differs
# from a fresh render, so run this after changing example_deployment and commit the result.
# Usage: scripts/render-manifests.sh
set -euo pipefail
cd "$(dirname "$0")/.."
command -v kubectl >/dev/null || { echo "render-manifests.sh: kubectl is needed" >&2; exit 1; }
python3 -c 'import yaml' 2>/dev/null || { echo "render-manifests.sh: python3's yaml module is needed (pip install pyyaml)" >&2; exit 1; }
out=tests/rendered
rm -rf "$out"
mkdir -p "$out/variants"
render() { # DIR FILE
  kubectl kustomize "$1" | python3 -c '
import json, sys, yaml
docs = [d for d in yaml.safe_load_all(sys.stdin) if d]
json.dump(docs, sys.stdout, indent=1, sort_keys=True)
sys.stdout.write("\n")' >"$2"
  echo "rendered $1 -> $2"
}
render example_deployment "$out/default.json"
for dir in example_deployment/variants/*/; do
  name=$(basename "$dir")
  render "$dir" "$out/variants/$name.json"
done
