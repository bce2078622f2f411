#!/bin/sh
# Builds and runs the predictor benchmark against a CMake build tree
# (default ./build): 10,000 series x 720 points with auto, median of 7 runs.
# usage: bench/predictor/run_bench.sh [BUILD_DIR] [bench_predictor options...]
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$here/../..
build=${1:-$root/build}
[ $# -ge 1 ] && shift
bin=$build/bench/predictor/bench_predictor
if [ ! -x "$bin" ]; then
    # Not wired into bench/CMakeLists.txt: compile it here with the project's
    # release flags against the libraries of that build tree.
    make -C "$build" sc_predictor sc_common >/dev/null
    mkdir -p "$build/bench-predictor"
    bin=$build/bench-predictor/bench_predictor
    ${CC:-cc} -std=c11 -O2 -DNDEBUG -D_GNU_SOURCE -I"$root/predictor" -I"$root/common" \
        "$here/bench_predictor.c" "$build/predictor/libsc_predictor.a" \
        "$build/common/libsc_common.a" $(pkg-config --libs gsl inih) -lm -o "$bin"
fi
exec "$bin" "$@"
