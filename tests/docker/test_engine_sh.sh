#!/bin/bash
# Checks engine.sh where it matters most, when no engine runs: it must start
# dockerd, import the test image, and a second run must find both and start
# nothing. Runs in mount and network namespaces of its own (unshare), with
# /run and /var/lib/docker replaced by empty directories, so the machine's
# engine is neither seen nor touched; the daemon it starts is ended by its
# process ID before the namespaces go.
#
# Exit: 0 pass, 1 fail, 77 skip (not root, or no unshare/dockerd).
set -u
here=$(cd "$(dirname "$0")" && pwd)

if [ "$(id -u)" != 0 ] || ! command -v unshare >/dev/null || ! command -v dockerd >/dev/null; then
    echo "SKIP: needs root, unshare (util-linux) and dockerd (docker.io)"
    exit 77
fi

work=$(mktemp -d "/tmp/sc-test-$$-ns.XXXXXX")
mkdir -p "$work/run" "$work/lib"

# The part that runs inside the namespaces, from a file rather than stdin:
# a command in it could otherwise read the rest of the script.
cat >"$work/inside.sh" <<'INSIDE'
set -u
here=$1 work=$2
fails=0
check() { # check WHAT COMMAND...
    local what=$1
    shift
    if "$@"; then echo "ok   $what"; else echo "FAIL $what"; fails=$((fails + 1)); fi
}
no_engine() { ! docker info >/dev/null 2>&1; }
mount --make-rprivate /
mount --bind "$work/run" /run
mount --bind "$work/lib" /var/lib/docker
ip link set lo up
unset DOCKER_HOST
export SC_DOCKERD_LOG=$work/dockerd.log

check "no engine is visible in the namespace" no_engine
first=$("$here/engine.sh" 2>&1)
rc=$?
echo "$first" | sed 's/^/  first run: /'
check "first run succeeds" [ "$rc" = 0 ]
check "first run starts dockerd" grep -q '^dockerd is up' <<<"$first"
check "first run imports the image" grep -q 'scalecast-busybox:test: imported' <<<"$first"
second=$("$here/engine.sh" 2>&1)
rc=$?
echo "$second" | sed 's/^/  second run: /'
check "second run succeeds" [ "$rc" = 0 ]
check "second run finds the engine" grep -q '^engine: running' <<<"$second"
check "second run finds the image" grep -q 'scalecast-busybox:test: present' <<<"$second"
check "the image runs" [ "$(docker run --rm scalecast-busybox:test sh -c 'echo hi')" = hi ]

if [ -f /run/docker.pid ]; then
    pid=$(cat /run/docker.pid)
    kill "$pid"
    for _ in $(seq 1 150); do
        if [ ! -r "/proc/$pid/stat" ] || sed 's/^.*) //' "/proc/$pid/stat" | grep -q '^[ZX]'; then
            break
        fi
        sleep 0.2
    done
fi
exit $((fails > 0))
INSIDE

unshare --mount --net --fork bash "$work/inside.sh" "$here" "$work" </dev/null
rc=$?
rm -rf "$work"
exit $rc
