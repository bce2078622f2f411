#!/usr/bin/env bash
# One command for a newcomer and for CI: install what is missing, build with
# warnings as errors, and run the whole test suite (ctest), then the same
# suite again under AddressSanitizer + UndefinedBehaviorSanitizer.
#   SCALECAST_SKIP_ASAN=1 ./test.sh   skips the sanitizer pass
#   SCALECAST_SKIP_FUZZ=1 ./test.sh   skips the short fuzzing pass
set -euo pipefail
cd "$(dirname "$0")"
scripts/deps.sh --test
if [[ -x tests/docker/engine.sh ]]; then
  tests/docker/engine.sh
fi
# Style: every C file as .clang-format says (clang-format is on Debian's
# build machines; installed by deps.sh otherwise).
clang-format --dry-run -Werror $(git ls-files '*.c' '*.h')
BUILD_DIR=build-test scripts/build.sh -DWERROR=ON
(cd build-test && ctest --output-on-failure --timeout 600)
if [[ -z "${SCALECAST_SKIP_ASAN:-}" ]]; then
  BUILD_DIR=build-asan scripts/build.sh -DWERROR=ON -DSANITIZE=address,undefined
  (cd build-asan && ASAN_OPTIONS=detect_leaks=1 ctest --output-on-failure --timeout 600 -LE no-asan)
fi
# Every parser fed from outside, fuzzed for a short fixed time (libFuzzer);
# a crash found is saved under tests/fuzz/regressions/ and fails the run.
if [[ -z "${SCALECAST_SKIP_FUZZ:-}" ]]; then
  tests/fuzz/run.sh -t "${SCALECAST_FUZZ_SECONDS:-10}" build-fuzz
fi
