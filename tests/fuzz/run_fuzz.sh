#!/usr/bin/env bash
# Runs one libFuzzer target for the fuzz suite (tests/fuzz/meson.build).
#
#   run_fuzz.sh TARGET SEED_CORPUS SECONDS ARTIFACT_DIR [DICT]
#
# The seed corpus is copied into a fresh directory (on tmpfs when there is
# one) and the target runs over the copy for SECONDS, so new inputs never
# land in the source tree. A crash, leak, UBSan report, timeout or OOM is a
# failure; its input is saved under ARTIFACT_DIR (kept for the report) and
# the command to reproduce it is printed. The last line gives the figures:
#   fuzz <name>: <N> executions in <S> s, corpus <seeds> -> <units> inputs
set -uo pipefail
target=$1 seeds=$2 secs=$3 artifacts=$4 dict=${5:-}
name=$(basename "$target")

base=/dev/shm
[ -d "$base" ] && [ -w "$base" ] || base=${TMPDIR:-/tmp}
work=$(mktemp -d "$base/bulkhead-$name-XXXXXX") || exit 1
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/corpus" "$work/tmp" "$artifacts"
if [ -d "$seeds" ]; then
  cp -R "$seeds/." "$work/corpus/"
fi
nseeds=$(find "$work/corpus" -type f | wc -l)

args=(-max_total_time="$secs" -timeout=20 -rss_limit_mb=2560 -error_exitcode=1 -timeout_exitcode=1
      -print_final_stats=1 -artifact_prefix="$artifacts/")
[ -n "$dict" ] && [ -f "$dict" ] && args+=(-dict="$dict")

# Scratch files of file-based targets go under the run's own directory.
TMPDIR="$work/tmp" "$target" "${args[@]}" "$work/corpus" >"$work/log" 2>&1
rc=$?
# The log is the test's output (meson keeps it); libFuzzer's per-input
# progress lines are dropped to keep it short.
grep -v -E '^#[0-9]+[[:space:]]+(NEW|REDUCE|pulse)' "$work/log"

# Any sanitizer report fails the run, even one that did not stop it.
if grep -q -E 'ERROR: (AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer|libFuzzer)|runtime error:|fuzz invariant broken' "$work/log"; then
  [ "$rc" -eq 0 ] && rc=1
fi
execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/log" | tail -1)
units=$(find "$work/corpus" -type f | wc -l)
echo "fuzz ${name#fuzz_}: ${execs:-?} executions in $secs s, corpus $nseeds -> $units inputs"
if [ "$rc" -ne 0 ]; then
  echo "FAILED (exit $rc); reproduce with: $target $artifacts/<crash-file>" >&2
  ls -l "$artifacts" >&2
  exit 1
fi
exit 0
