#!/usr/bin/env bash
# Builds the libFuzzer harnesses with clang (libFuzzer + ASan + UBSan, every
# library coverage-instrumented) and runs each for a fixed time.
#
# usage: tests/fuzz/run.sh [-t SECONDS] [-m] [BUILD_DIR [NAME...]]
#   -t SECONDS  fuzzing time per harness (default 20)
#   -m          merge what was found into tests/fuzz/corpus/NAME (minimised)
#   BUILD_DIR   clang build directory (default build-fuzz)
#   NAME...     harnesses to run (default all: json lineproto query config
#               trace docker)
#
# Any crash, memory error, undefined behaviour, leak, timeout (> 10 s per
# input) or out-of-memory fails the run (exit 1) after all harnesses ran; the
# input is saved as tests/fuzz/regressions/NAME/KIND-SHA1 and printed in
# base64, so it can be committed from a CI log too. Every build's ctest
# fuzz.NAME then replays it forever.
set -euo pipefail

secs=20
merge=0
while getopts "t:mh" opt; do
  case $opt in
    t) secs=$OPTARG ;;
    m) merge=1 ;;
    *) sed -n '2,17p' "$0"; exit 2 ;;
  esac
done
shift $((OPTIND - 1))
if ! [[ $secs =~ ^[0-9]+$ ]] || ((secs < 1)); then
  echo "run.sh: -t wants a whole number of seconds, got '$secs'" >&2
  exit 2
fi

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=${1:-build-fuzz}
shift || true
[[ $build = /* ]] || build=$root/$build
names=("$@")
((${#names[@]})) || names=(json lineproto query config trace docker)
for n in "${names[@]}"; do
  if [[ ! -d $here/corpus/$n ]]; then
    echo "run.sh: no harness '$n' (no $here/corpus/$n)" >&2
    exit 2
  fi
done

# Everything instrumented: the sanitizers through the project's SANITIZE
# option, coverage through fuzzer-no-link; the harnesses add -fsanitize=fuzzer.
CC=clang cmake -S "$root" -B "$build" -DFUZZ=ON -DSANITIZE=address,undefined \
  -DCMAKE_C_FLAGS="-fsanitize=fuzzer-no-link" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
targets=()
for n in "${names[@]}"; do targets+=("${n}_fuzzer"); done
cmake --build "$build" -j2 --target "${targets[@]}"

if [[ -z ${ASAN_SYMBOLIZER_PATH:-} ]] && command -v llvm-symbolizer >/dev/null; then
  export ASAN_SYMBOLIZER_PATH=$(command -v llvm-symbolizer)
fi
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:symbolize=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
work=$(mktemp -d "${TMPDIR:-/tmp}/scalecast-fuzz-run.XXXXXX")
trap 'rm -rf "$work"' EXIT

failed=()
for n in "${names[@]}"; do
  bin=$build/tests/fuzz/${n}_fuzzer
  mkdir -p "$work/$n/new" "$work/$n/artifacts" "$work/$n/tmp" "$here/regressions/$n"
  dict=()
  [[ -f $here/dict/$n.dict ]] && dict=(-dict="$here/dict/$n.dict")
  echo "== fuzz $n for ${secs}s"
  rc=0
  # New inputs go to the first (scratch) directory; the committed corpus and
  # regressions are read only.
  # TMPDIR: what a crashed harness leaves (its temporary store or config
  # file) goes with the work directory.
  TMPDIR=$work/$n/tmp "$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$work/$n/artifacts/" "${dict[@]}" \
    "$work/$n/new" "$here/corpus/$n" "$here/regressions/$n" >"$work/$n/log" 2>&1 || rc=$?
  grep -E '^(stat::number_of_executed_units|stat::new_units_added|stat::peak_rss_mb)' \
    "$work/$n/log" || true
  found=0
  for f in "$work/$n/artifacts"/*; do
    [[ -f $f ]] || continue
    kind=$(basename "$f" | cut -d- -f1)
    [[ $kind = slow ]] && continue # slow-unit: a note, not a failure
    found=1
    sum=$(sha1sum "$f" | cut -c1-40)
    known=$(cd "$here/regressions/$n" && { sha1sum -- * 2>/dev/null || true; } |
      awk -v s="$sum" '$1 == s { print $2; exit }')
    if [[ -n $known ]]; then
      echo "FUZZ FAILURE ($kind) in harness '$n': the known regression regressions/$n/$known still fails"
      continue
    fi
    dest=$here/regressions/$n/$kind-$sum
    cp "$f" "$dest"
    echo "FUZZ FAILURE ($kind) in harness '$n': input saved as ${dest#$root/}"
    echo "  replay: $build/tests/fuzz/${n}_fuzzer $dest"
    echo "  commit it (it becomes the ctest fuzz.$n forever); base64 of the input:"
    base64 -w 76 "$f" | head -c 16384 | sed 's/^/    /'
    echo
  done
  if ((rc != 0 || found)); then
    failed+=("$n")
    echo "---- the $n fuzzer's report:"
    # From the first report line on (sanitizer, harness check or signal).
    sed -n '/ERROR: \|runtime error:\|^fuzz_[a-z]*: \|deadly signal\|ERROR: libFuzzer/,$p' \
      "$work/$n/log" | grep -v -e '^    #[0-9]* 0x[0-9a-f]* in fuzzer::' -e '^stat::' | head -n 80
  fi
  if ((merge)); then
    "$bin" -merge=1 "$here/corpus/$n" "$work/$n/new" >"$work/$n/merge.log" 2>&1 ||
      { echo "run.sh: merging into corpus/$n failed:"; tail -n 20 "$work/$n/merge.log"; }
    echo "corpus/$n: $(find "$here/corpus/$n" -type f | wc -l) files"
  fi
done

if ((${#failed[@]})); then
  echo "FUZZING FAILED: ${failed[*]}"
  exit 1
fi
echo "fuzzing: ${names[*]}: no failure in ${secs}s each"
