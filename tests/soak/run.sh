#!/bin/bash
# Soak test of scalecastd (issue 7): 200 simulated agents pushing every second
# plus periodic queries and exports, for --duration seconds (default 600).
# Prints per-minute ingest latency, errors and the server's RSS, then a
# summary; exit status 1 on any error, lost sample or RSS growth over 10 %
# (median of minute 2, once exports have run, to the median of the last minute).
# Not a ctest (too long); figures in docs/robustness.md.
#
#   tests/soak/run.sh [--build DIR] [--duration S] [--agents N] [soak.py options]
#
# Builds scalecastd in DIR (default $BUILD, else build-soak) first. The
# database goes under $TMPDIR (default /tmp): it should be a disk, not a
# tmpfs, or fsync costs nothing.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${BUILD:-$root/build-soak}
args=()
while [ $# -gt 0 ]; do
    case $1 in
    --build) build=$2; shift 2 ;;
    --build=*) build=${1#--build=}; shift ;;
    -h|--help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; python3 "$root/tests/soak/soak.py" --help; exit 0 ;;
    *) args+=("$1"); shift ;;
    esac
done
case $build in /*) ;; *) build=$root/$build ;; esac
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j2 --target scalecastd >/dev/null
tmp=${TMPDIR:-/tmp}
if [ "$(stat -f -c %T "$tmp")" = tmpfs ]; then
    echo "warning: $tmp is a tmpfs: fsync costs nothing there, latencies will look better than on a disk" >&2
fi
echo "soak: $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg), $(uname -r)"
exec python3 "$root/tests/soak/soak.py" --bin "$build/server/scalecastd" "${args[@]+"${args[@]}"}"
