#!/usr/bin/env bash
# Mutation testing of the files that decide correctness, with cargo-mutants: each mutant (a
# change to the code that should break some test) is built and tested; "caught" means a test
# failed, "missed" that every test still passed, "unviable" that it did not build, "timeout" that
# the tests hung past cargo-mutants' limit (the mutant was noticed: counted as caught). It prints
# the four counts and the score, (caught + timeout) / (caught + missed + timeout),
# once counting every missed mutant and once leaving out those listed in mutants-equivalent.txt
# (survivors judged equivalent or not worth a test, each with its reason).
#
# It takes long (a build and a test run per mutant): it is not part of CI. Run it niced:
#   scripts/mutants.sh                              # every file below
#   scripts/mutants.sh src/select.rs src/dockercfg.rs
#   MUTANTS_JOBS=2 scripts/mutants.sh               # parallel builds (default 1)
#   MUTANTS_TEST_ARGS='--lib --test daemon_fake --test targeting' scripts/mutants.sh src/select.rs
#   MUTANTS_FLAGS=--iterate scripts/mutants.sh     # test again only what earlier runs missed
# MUTANTS_TEST_ARGS goes to `cargo test` for each mutant (default: every test of the package;
# tests needing a missing peer are ignored there, so install the peers first to count them).
# A quick first pass with MUTANTS_TEST_ARGS=--lib, then MUTANTS_FLAGS=--iterate with the
# integration tests, gives the same answer as one run with every test, in far less time: a
# mutant the unit tests catch is caught whatever else runs. The builds use the `mutants`
# profile of Cargo.toml (the test profile without debug info).
# Results stay in mutants.out/ (caught.txt, previously_caught.txt, missed.txt, unviable.txt,
# timeout.txt).
set -euo pipefail
cd "$(dirname "$0")/.."

files=("$@")
if [ ${#files[@]} -eq 0 ]; then
  files=(src/dockercfg.rs src/refresh.rs src/select.rs src/schedule.rs src/sensitive.rs
         src/logging.rs src/kube/ src/aws/ecr.rs)
fi

if ! cargo mutants --version >/dev/null 2>&1; then
  echo "cargo-mutants is missing: cargo install --locked cargo-mutants" >&2
  exit 2
fi

args=(--no-shuffle --jobs "${MUTANTS_JOBS:-1}" --timeout-multiplier 3 --profile mutants)
if [ -n "${MUTANTS_FLAGS:-}" ]; then
  read -r -a extra_flags <<<"$MUTANTS_FLAGS"
  args+=("${extra_flags[@]}")
fi
for f in "${files[@]}"; do
  if [ -d "$f" ]; then
    args+=(--file "${f%/}/**/*.rs")
  else
    args+=(--file "$f")
  fi
done
test_args=()
if [ -n "${MUTANTS_TEST_ARGS:-}" ]; then
  read -r -a test_args <<<"$MUTANTS_TEST_ARGS"
fi

echo "== cargo mutants over: ${files[*]}"
started=$(date +%s)
# Exit status 2 means "some mutants were missed": that is a result, not a failure of the script.
set +e
nice -n 19 cargo mutants "${args[@]}" -- "${test_args[@]}"
status=$?
set -e
if [ "$status" -ne 0 ] && [ "$status" -ne 2 ] && [ "$status" -ne 3 ]; then
  echo "cargo mutants failed (exit $status)" >&2
  exit "$status"
fi

count() { if [ -f "mutants.out/$1" ]; then grep -c . "mutants.out/$1" || true; else echo 0; fi; }
# With --iterate, what earlier runs caught is in previously_caught.txt.
caught=$(($(count caught.txt) + $(count previously_caught.txt)))
missed=$(count missed.txt)
unviable=$(count unviable.txt)
timeout=$(count timeout.txt)

# A missed mutant is listed as equivalent when mutants-equivalent.txt has a line starting with the
# same "FILE: MUTATION" (line and column left out, so the list survives edits elsewhere).
strip() { sed -E 's/^([^:]+):[0-9]+:[0-9]+: /\1: /'; }
listed=0
unlisted=()
if [ -f mutants.out/missed.txt ]; then
  while IFS= read -r line; do
    key=$(printf '%s\n' "$line" | strip)
    if grep -v '^#' mutants-equivalent.txt 2>/dev/null | strip | grep -qF -- "$key"; then
      listed=$((listed + 1))
    else
      unlisted+=("$line")
    fi
  done <mutants.out/missed.txt
fi

score() { # caught, missed, timeout
  local viable=$(($1 + $2 + $3))
  if [ "$viable" -eq 0 ]; then echo "n/a"; else awk -v c="$(($1 + $3))" -v v="$viable" 'BEGIN { printf "%.1f %%", 100 * c / v }'; fi
}
echo
echo "== mutation testing of ${files[*]} ($(($(date +%s) - started)) s)"
echo "caught:   $caught"
echo "missed:   $missed ($listed of them listed in mutants-equivalent.txt)"
echo "unviable: $unviable (did not build; not counted)"
echo "timeout:  $timeout (the tests hung: counted as caught)"
echo "score:    $(score "$caught" "$missed" "$timeout") of viable mutants caught"
echo "score:    $(score "$caught" "$((missed - listed))" "$timeout") leaving out the listed equivalents"
if [ ${#unlisted[@]} -gt 0 ]; then
  echo
  echo "missed and not listed (add a test, or a line with the reason to mutants-equivalent.txt):"
  printf '  %s\n' "${unlisted[@]}"
fi
