#!/usr/bin/env bash
# Configures and builds scalecast into BUILD_DIR (default build/).
#   EXTRA cmake flags may follow, e.g. scripts/build.sh -DSANITIZE=address,undefined
set -euo pipefail
cd "$(dirname "$0")/.."
build=${BUILD_DIR:-build}
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >/dev/null
cmake --build "$build" -j"$(nproc)"
