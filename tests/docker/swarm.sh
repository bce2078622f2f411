#!/bin/bash
# Shares a single-node Swarm between test processes that may run at once.
#
#   swarm.sh acquire PID   make sure this engine is a swarm manager, and note
#                          PID as a user; a swarm that existed before the
#                          first user is left alone for good
#   swarm.sh release PID   drop PID (and users that died); when the last
#                          user is gone and we made the swarm, leave it and
#                          remove docker_gwbridge if the init created it
#
# State lives in /tmp/scalecast-swarm.* (one engine per machine), changed
# under a lock. Users are process IDs so that a test killed before it could
# release does not keep the swarm forever: the next acquire or release
# forgets dead ones.
set -u
cmd=${1:-}
pid=${2:-}
if [ -z "$cmd" ] || [ -z "$pid" ]; then
    echo "usage: $0 acquire|release PID" >&2
    exit 2
fi
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
. "$here/lib.sh"

users=/tmp/scalecast-swarm.users
ours=/tmp/scalecast-swarm.ours

exec 9>/tmp/scalecast-swarm.lock
flock 9
touch "$users"

# Drops $1 and every user that is no longer running.
prune() {
    local p keep=()
    while read -r p; do
        [ -n "$p" ] && [ "$p" != "$1" ] && sc_alive "$p" && keep+=("$p")
    done <"$users"
    if [ ${#keep[@]} -gt 0 ]; then printf '%s\n' "${keep[@]}"; fi >"$users"
}

state() { docker info -f '{{.Swarm.LocalNodeState}}' 2>/dev/null; }

case $cmd in
acquire)
    prune "$pid"
    s=$(state)
    if [ "$s" = active ]; then
        echo "swarm: active$([ -f "$ours" ] && echo ' (made by the tests)' || echo ' (not ours: left alone)')"
    elif [ "$s" = inactive ]; then
        gw=0
        docker network inspect docker_gwbridge >/dev/null 2>&1 && gw=1
        if ! out=$(docker swarm init --advertise-addr 127.0.0.1 2>&1); then
            echo "swarm: init failed: $out"
            exit 1
        fi
        echo "gwbridge_existed=$gw" >"$ours"
        echo "swarm: initialised on 127.0.0.1 for the tests"
    else
        echo "swarm: node state '$s'; cannot use it"
        exit 1
    fi
    echo "$pid" >>"$users"
    ;;
release)
    prune "$pid"
    if [ -s "$users" ]; then
        echo "swarm: still used by $(tr '\n' ' ' <"$users")"
    elif [ -f "$ours" ]; then
        docker swarm leave --force >/dev/null 2>&1 && echo "swarm: left (the tests had made it)"
        if grep -q gwbridge_existed=0 "$ours"; then
            # Its endpoints go with the swarm; give the engine a moment.
            for _ in 1 2 3 4 5 6 7 8 9 10; do
                docker network rm docker_gwbridge >/dev/null 2>&1 && break
                docker network inspect docker_gwbridge >/dev/null 2>&1 || break
                sleep 0.5
            done
        fi
        rm -f "$ours"
    else
        echo "swarm: not ours; left alone"
    fi
    ;;
*)
    echo "unknown command $cmd" >&2
    exit 2
    ;;
esac
