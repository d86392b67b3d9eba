#!/usr/bin/env bash
# Runs each fuzz target of a build of fuzz/ for a bounded time over its seed
# corpus (fuzz/corpus/<target>, read only: new inputs go to a scratch copy)
# and prints the executions per target. Fails on any crash, leak, timeout or
# out-of-memory, leaving the input that caused it in BUILD_DIR/artifacts/.
#
#   fuzz/run.sh [BUILD_DIR [SECONDS_PER_TARGET [TARGET...]]]
#
# Defaults: build-fuzz, 20 s, every target. Environment: FUZZ_RSS_MB (2048),
# FUZZ_TIMEOUT_S (10, per input).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build-fuzz}
seconds=${2:-20}
shift $(($# < 2 ? $# : 2))
targets=("$@")
if ((${#targets[@]} == 0)); then
  for f in fuzz/fuzz_*.cpp; do targets+=("$(basename "$f" .cpp | sed 's/^fuzz_//')"); done
fi
artifacts=$build/artifacts
mkdir -p "$artifacts"
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

failed=()
for t in "${targets[@]}"; do
  bin=$build/fuzz_$t
  [[ -x $bin ]] || { echo "fuzz: no $bin (build fuzz/ first)" >&2; exit 2; }
  mkdir -p "$scratch/$t"
  dict=()
  [[ -f fuzz/$t.dict ]] && dict=(-dict="fuzz/$t.dict")
  log=$scratch/$t.log
  rc=0
  # New inputs go to the scratch folder first, the seeds are only read.
  ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1} \
    UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1} \
    nice "$bin" -max_total_time="$seconds" -rss_limit_mb="${FUZZ_RSS_MB:-2048}" \
    -timeout="${FUZZ_TIMEOUT_S:-10}" -print_final_stats=1 "${dict[@]}" \
    -artifact_prefix="$artifacts/$t-" "$scratch/$t" "fuzz/corpus/$t" >"$log" 2>&1 || rc=$?
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | sed 's/cov: //')
  if ((rc != 0)); then
    failed+=("$t")
    echo "fuzz_$t: FAILED (exit $rc) after ${runs:-?} executions; its log:" >&2
    tail -n 60 "$log" >&2
  else
    echo "fuzz_$t: ${runs:-?} executions in ${seconds} s, coverage ${cov:-?}, nothing found"
  fi
done
if ((${#failed[@]})); then
  echo "fuzz: crashes in ${failed[*]}; inputs in $artifacts" >&2
  exit 1
fi
rmdir "$artifacts" 2>/dev/null || true
