#!/usr/bin/env bash
# Mutation testing of the files that decide correctness, with cargo-mutants: each mutant (a
# change to the code that should break some test) is built and tested; "caught" means a test
# failed, "missed" that every test still passed, "unviable" that it did not build, "timeout" that
# the tests hung past cargo-mutants' limit (the mutant was noticed: counted as caught). It prints
# the four counts and the score, (caught + timeout) / (caught + missed + timeout), per file and
# in all, once counting every missed mutant and once leaving out those listed in
# mutants-equivalent.txt (survivors judged equivalent or not worth a test, each with its reason).
#
# Two passes, so that it ends in about an hour on two cores instead of most of a day:
#   1. every mutant against the unit tests (`--lib`: a build of one crate and about 3 s of tests);
#   2. each mutant pass 1 missed (or that timed out) again, against the unit tests and the
#      integration suites on the fakes that drive its file (the groups below), run by
#      cargo-nextest side by side, stopping at the first failure.
# A mutant the unit tests catch is caught whatever else runs, so this gives the answer of one
# run with all of those tests. Left out of pass 2: the suites that need a peer (they are
# `#[ignore]`d, and the image, e2e and credentials_e2e suites are nothing else), and the
# suites of other modules: configuration (config_refused alone takes 15 s per mutant,
# checks_config, help), the manifests (shipping, rbac_policy), the credential chain
# (credentials_chain) and the health port (hostile_health). Verification (hostile_registry) runs
# for the work group only: refresh.rs writes its verdict into the secret.
#
#   scripts/mutants.sh                      # both passes
#   MUTANTS_PASS=2 scripts/mutants.sh       # pass 2 only, on the pass-1 results in mutants.out/
#   MUTANTS_PASS=again scripts/mutants.sh   # pass 2 once more, on what it missed (after new tests)
#                                           # (a group without results starts from pass 1's)
#   MUTANTS_PASS=report scripts/mutants.sh  # print the figures of the last run again
#   MUTANTS_JOBS=1 scripts/mutants.sh       # one build at a time (default 2)
#   MUTANTS_BASELINE=skip scripts/mutants.sh # pass 2 without first running every suite on the
#                                           # unmutated tree (saves ~8 min per group; only on a
#                                           # commit whose test command is green)
#   MUTANTS_GROUPS="kube work" MUTANTS_PASS=again scripts/mutants.sh  # only those groups
# It is not part of CI. The builds use the `mutants` profile of Cargo.toml (the test profile
# without debug info). Results: mutants.out/ (pass 1) and mutants.out.pass2/GROUP/mutants.out/.
set -euo pipefail
cd "$(dirname "$0")/.."

files=(src/dockercfg.rs src/refresh.rs src/select.rs src/schedule.rs src/sensitive.rs
       src/logging.rs src/kube/ src/aws/ecr.rs)
# Pass 2, by group: NAME|FILES|SUITES, the suites that drive those files (fewer suites, fewer
# test binaries to link per mutant; logging_python runs Python 45 times: only for the logs).
# MUTANTS_GROUPS="logs ecr" runs only those, in that order.
all_groups=(
  "logs|src/logging.rs src/sensitive.rs|daemon_fake daemon_logging hostile_aws hostile_kube log_masking logging_python"
  "ecr|src/aws/ecr.rs|clock_skew daemon_fake faults hostile_aws targeting"
  "kube|src/kube/|daemon_fake events faults health_metrics hostile_kube preflight shutdown_watch status targeting"
  "work|src/dockercfg.rs src/refresh.rs src/select.rs src/schedule.rs|clock_skew daemon_fake events faults health_metrics hostile_aws hostile_kube hostile_registry shutdown_watch status targeting"
)
groups=()
for name in ${MUTANTS_GROUPS:-logs ecr kube work}; do
  found=
  for g in "${all_groups[@]}"; do
    if [ "${g%%|*}" = "$name" ]; then groups+=("$g"); found=1; fi
  done
  [ -n "$found" ] || { echo "MUTANTS_GROUPS: no group named $name" >&2; exit 2; }
done

for tool in cargo-mutants cargo-nextest; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "$tool is missing: cargo install --locked $tool" >&2
    exit 2
  fi
done

file_args() { # FILE... -> --file arguments
  local f
  for f in "$@"; do
    if [ -d "$f" ]; then printf '%s\n' --file "${f%/}/**/*.rs"; else printf '%s\n' --file "$f"; fi
  done
}

common=(--no-shuffle --jobs "${MUTANTS_JOBS:-2}" --profile mutants)
# Most of a mutant's time is linking the test binaries again: with mold installed
# (`apt-get install mold`), link with it.
if command -v mold >/dev/null 2>&1; then
  export RUSTFLAGS="${RUSTFLAGS:-} -C link-arg=-fuse-ld=mold"
fi

# cargo mutants exits 2 when some mutants were missed and 3 when some timed out: results.
mutants() {
  set +e
  nice -n 19 cargo mutants "${common[@]}" "$@"
  local status=$?
  set -e
  if [ "$status" -ne 0 ] && [ "$status" -ne 2 ] && [ "$status" -ne 3 ]; then
    echo "cargo mutants failed (exit $status)" >&2
    exit "$status"
  fi
}

started=$(date +%s)
pass="${MUTANTS_PASS:-all}"
mapfile -t file_flags < <(file_args "${files[@]}")

if [ "$pass" = all ]; then
  echo "== pass 1: every mutant of ${files[*]} against the unit tests"
  mutants "${file_flags[@]}" --cargo-arg=--lib --timeout-multiplier 3
fi

if [ "$pass" = all ] || [ "$pass" = 2 ] || [ "$pass" = again ]; then
  [ -d mutants.out ] || { echo "no pass-1 results in mutants.out/" >&2; exit 2; }
  [ "$pass" = again ] || rm -rf mutants.out.pass2
  for g in "${groups[@]}"; do
    IFS='|' read -r name group_files group_suites <<<"$g"
    read -r -a gf <<<"$group_files"
    read -r -a gs <<<"$group_suites"
    dir="mutants.out.pass2/$name"
    if [ -d "$dir/mutants.out" ]; then
      echo "== pass 2 again, $name: what it missed in ${gf[*]}, against ${gs[*]}"
    else
      echo "== pass 2, $name: what pass 1 missed in ${gf[*]}, against ${gs[*]}"
      mkdir -p "$dir"
      cp -r mutants.out "$dir/mutants.out"
    fi
    mapfile -t gflags < <(file_args "${gf[@]}")
    # The unit tests again too: a mutant whose line moved since pass 1 (code edited in
    # between) is not recognised as caught and is tested afresh.
    targets=(--cargo-arg=--lib)
    for t in "${gs[@]}"; do targets+=("--cargo-arg=--test" "--cargo-arg=$t"); done
    # nextest's `mutants` profile (.config/nextest.toml): 32 tests at a time, and the first
    # failure ends the run at once.
    # Without a baseline there is no measured test time to scale: then a fixed limit, 10 times
    # the slowest suite's 25 s.
    if [ "${MUTANTS_BASELINE:-run}" = skip ]; then
      limits=(--baseline skip --timeout 240 --build-timeout 900)
    else
      limits=(--timeout-multiplier 3)
    fi
    NEXTEST_PROFILE=mutants mutants "${gflags[@]}" "${targets[@]}" --test-tool nextest \
      "${limits[@]}" --iterate --output "$dir"
  done
fi

# ---- The figures, from both passes: a mutant counts as caught when either pass caught it.
# Only the mutants of the code as it is now count: a result for a mutant that no longer exists
# (its line moved, or its code changed, since that run) is left out, and a mutant of today's
# code that no run has tried counts as missed ("untried").
lines() { cat "$@" 2>/dev/null | grep . || true; }
current_list=$(cargo mutants --list "${file_flags[@]}" 2>/dev/null | sort -u)
[ -n "$current_list" ] || { echo "cargo mutants --list gave no mutants" >&2; exit 2; }
current() { grep -xF -f <(printf '%s\n' "$current_list") || true; }
p2() { lines mutants.out.pass2/*/mutants.out/"$1"; }
unviable_list=$( { lines mutants.out/unviable.txt; p2 unviable.txt; } | sort -u | current)
# (--iterate files what an earlier run found unviable under previously_caught.txt too.)
caught_list=$( { lines mutants.out/caught.txt mutants.out/previously_caught.txt; p2 caught.txt
  p2 previously_caught.txt; } |
  sort -u | current | grep -vxF -f <(printf '%s\n' "$unviable_list" | grep . || echo '//none//') || true)
without() { # LIST: the lines of stdin not in LIST
  grep -vxF -f <(printf '%s\n' "$1" | grep . || echo '//none//') || true
}
# What no run caught: missed by pass 1 and, by pass 2, missed again or not tried yet (a pass 2
# cut short), and today's mutants that no run tried: all count as missed.
timeout_list=$( { lines mutants.out/timeout.txt; p2 timeout.txt; } | sort -u | current |
  without "$caught_list")
tried=$( { lines mutants.out/caught.txt mutants.out/missed.txt mutants.out/timeout.txt \
    mutants.out/unviable.txt mutants.out/previously_caught.txt
  if [ -d mutants.out.pass2 ]; then p2 caught.txt; p2 missed.txt; p2 timeout.txt; p2 unviable.txt
  p2 previously_caught.txt; fi; } | sort -u)
if [ -d mutants.out.pass2 ]; then
  tried2=$( { p2 caught.txt; p2 missed.txt; p2 timeout.txt; p2 unviable.txt; } | sort -u)
else
  tried2=$tried
fi
missed_list=$( { lines mutants.out/missed.txt; p2 missed.txt; printf '%s\n' "$current_list" |
  without "$tried"; } | grep . | sort -u | current | without "$caught_list" |
  without "$timeout_list" | without "$unviable_list")
untried=$(printf '%s\n' "$missed_list" | grep . | without "$tried2" | grep -c . || true)

# A missed mutant is listed as equivalent when mutants-equivalent.txt has a line starting with the
# same "FILE: MUTATION" (line and column left out, so the list survives edits elsewhere).
strip() { sed -E 's/^([^:]+):[0-9]+:[0-9]+: /\1: /'; }
equivalents=$(grep -v '^#' mutants-equivalent.txt 2>/dev/null | sed 's/  --.*//' | strip | grep . || true)
is_listed() { [ -n "$equivalents" ] && printf '%s\n' "$equivalents" | grep -qxF -- "$(printf '%s\n' "$1" | strip)"; }

count_in() { # LIST PREFIX
  if [ -z "$1" ]; then echo 0; else printf '%s\n' "$1" | grep -c "^$2" || true; fi
}
score() { # caught, missed, timeout
  local viable=$(($1 + $2 + $3))
  if [ "$viable" -eq 0 ]; then echo "n/a"; else awk -v c="$(($1 + $3))" -v v="$viable" 'BEGIN { printf "%.1f %%", 100 * c / v }'; fi
}

unlisted=()
listed=0
while IFS= read -r m; do
  [ -n "$m" ] || continue
  if is_listed "$m"; then listed=$((listed + 1)); else unlisted+=("$m"); fi
done <<<"$missed_list"

echo
echo "== mutation testing ($(($(date +%s) - started)) s)"
printf '%-28s %7s %7s %8s %8s %9s\n' file caught missed timeout unviable score
for f in $(printf '%s\n' "$caught_list" "$missed_list" "$timeout_list" "$unviable_list" | cut -d: -f1 | grep . | sort -u); do
  c=$(count_in "$caught_list" "$f:"); m=$(count_in "$missed_list" "$f:")
  t=$(count_in "$timeout_list" "$f:"); u=$(count_in "$unviable_list" "$f:")
  printf '%-28s %7s %7s %8s %8s %9s\n' "$f" "$c" "$m" "$t" "$u" "$(score "$c" "$m" "$t")"
done
caught=$(count_in "$caught_list" ""); missed=$(count_in "$missed_list" "")
timeout=$(count_in "$timeout_list" ""); unviable=$(count_in "$unviable_list" "")
echo "caught:   $caught"
echo "missed:   $missed ($listed of them listed in mutants-equivalent.txt)"
echo "unviable: $unviable (did not build; not counted)"
echo "timeout:  $timeout (the tests hung: counted as caught)"
if [ "$untried" -gt 0 ]; then
  echo "untried:  $untried of the missed were not tried by pass 2 (cut short, or code changed since): counted as missed"
fi
echo "score:    $(score "$caught" "$missed" "$timeout") of viable mutants caught"
echo "score:    $(score "$caught" "$((missed - listed))" "$timeout") leaving out the listed equivalents"
if [ ${#unlisted[@]} -gt 0 ]; then
  echo
  echo "missed and not listed (add a test, or a line with the reason to mutants-equivalent.txt):"
  printf '  %s\n' "${unlisted[@]}"
fi
