#!/bin/bash
# A test-private Docker engine, for tests that must stop and restart the
# engine or reconfigure it (TLS) without disturbing the shared one.
#
#   private-engine.sh start DIR [--tls]   start dockerd on unix://DIR/docker.sock
#                                         (--tls: also tcp://127.0.0.1:PORT with
#                                         a CA and certificates made in DIR/tls);
#                                         prints DOCKER_HOST= and, with --tls,
#                                         TCP_HOST= lines; imports the test image
#   private-engine.sh stop DIR            SIGTERM, wait until it has exited
#   private-engine.sh restart DIR         start again with the same flags
#   private-engine.sh destroy DIR         stop, unmount and delete DIR
#
# Its own data root, exec root, pidfile and bridge keep it apart from the
# system engine: docker0 and the iptables chains belong to that one, hence
# --bridge=OURS --iptables=false. Never --bridge=none: a dockerd started
# with it deletes docker0 from under the system engine (see README.md).
set -u
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
. "$here/lib.sh"

cmd=${1:-}
dir=${2:-}
if [ -z "$cmd" ] || [ -z "$dir" ]; then
    echo "usage: $0 start|stop|restart|destroy DIR [--tls]" >&2
    exit 2
fi

free_port() {
    local p
    for p in $(seq $((20000 + $$ % 20000)) 45000); do
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
            echo "$p"
            return 0
        fi
    done
    return 1
}

make_certs() {
    local t=$1
    mkdir -p "$t"
    (
        cd "$t" || exit 1
        openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=scalecast-test-ca \
            -keyout ca-key.pem -out ca.pem 2>/dev/null &&
            openssl req -newkey rsa:2048 -nodes -subj /CN=127.0.0.1 \
                -keyout server-key.pem -out server.csr 2>/dev/null &&
            printf 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' >server.ext &&
            openssl x509 -req -days 2 -in server.csr -CA ca.pem -CAkey ca-key.pem \
                -CAcreateserial -extfile server.ext -out server-cert.pem 2>/dev/null &&
            openssl req -newkey rsa:2048 -nodes -subj /CN=scalecast-client \
                -keyout key.pem -out client.csr 2>/dev/null &&
            printf 'extendedKeyUsage=clientAuth\n' >client.ext &&
            openssl x509 -req -days 2 -in client.csr -CA ca.pem -CAkey ca-key.pem \
                -CAcreateserial -extfile client.ext -out cert.pem 2>/dev/null &&
            # A second CA that signed nothing: a client trusting only it must refuse.
            openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=scalecast-other-ca \
                -keyout other-ca-key.pem -out other-ca.pem 2>/dev/null
    )
}

start() {
    local flags
    if [ -f "$dir/docker.pid" ] && sc_alive "$(cat "$dir/docker.pid")"; then
        echo "private engine already running (pid $(cat "$dir/docker.pid"))"
        return 0
    fi
    flags=$(cat "$dir/flags")
    # shellcheck disable=SC2086
    sc_start_dockerd "$dir/dockerd.log" "$dir/docker.pid" $flags || return 1
    # Keep any fallback flag it needed, so that restart starts the same way.
    [ -z "$SC_DOCKERD_EXTRA" ] || echo "$flags $SC_DOCKERD_EXTRA" >"$dir/flags"
}

stop() {
    local pid i
    [ -f "$dir/docker.pid" ] || return 0
    pid=$(cat "$dir/docker.pid")
    if ! sc_alive "$pid" || ! kill "$pid" 2>/dev/null; then
        rm -f "$dir/docker.pid"
        return 0
    fi
    for i in $(seq 1 120); do
        sc_alive "$pid" || break
        sleep 0.25
    done
    if sc_alive "$pid"; then
        echo "dockerd $pid did not stop within 30 s; killing it"
        kill -9 "$pid" 2>/dev/null
    fi
    rm -f "$dir/docker.pid"
    echo "private engine stopped (pid $pid)"
}

# A bridge of our own, on a /24 no route uses yet.
make_bridge() {
    local name="scb-$$" n i
    for i in $(seq 0 199); do
        n=$(((($$ + i) % 200) + 20))
        ip route | grep -q "^10\.231\.$n\." && continue
        ip link add "$name" type bridge || return 1
        if ! ip addr add "10.231.$n.1/24" dev "$name" || ! ip link set "$name" up; then
            ip link del "$name"
            return 1
        fi
        echo "$name" >"$dir/bridge"
        echo "$name"
        return 0
    done
    return 1
}

# Should the engine have died without stopping its containers, containerd
# shims (and the containers under them) outlive it. They name our exec root on their command line:
# end exactly those, by process ID.
kill_orphans() {
    local p c
    for p in /proc/[0-9]*; do
        p=${p#/proc/}
        { tr '\0' ' ' <"/proc/$p/cmdline"; } 2>/dev/null | grep -qF -- "$dir/exec/" || continue
        for c in $(pgrep -P "$p"); do kill -9 "$c" 2>/dev/null; done
        kill -9 "$p" 2>/dev/null && echo "ended orphan $p of the private engine"
    done
}

unmount_all() {
    local m
    # Deepest first: dockerd bind-mounts its data root onto itself.
    awk -v d="$dir/" 'index($2, d) == 1 { print $2 }' /proc/self/mounts | sort -r |
        while read -r m; do umount -l "$m" 2>/dev/null; done
}

case $cmd in
start)
    mkdir -p "$dir"
    sock="unix://$dir/docker.sock"
    flags="-H $sock --data-root $dir/data --exec-root $dir/exec --pidfile $dir/docker.pid"
    bridge=$(make_bridge) || { echo "cannot create a bridge for the private engine"; exit 1; }
    flags="$flags --bridge=$bridge --iptables=false"
    if [ "${3:-}" = "--tls" ]; then
        make_certs "$dir/tls" || { echo "openssl failed"; exit 1; }
        port=$(free_port) || { echo "no free port"; exit 1; }
        flags="$flags -H tcp://127.0.0.1:$port --tlsverify --tlscacert $dir/tls/ca.pem"
        flags="$flags --tlscert $dir/tls/server-cert.pem --tlskey $dir/tls/server-key.pem"
        echo "tcp://127.0.0.1:$port" >"$dir/tcp_host"
    fi
    echo "$flags" >"$dir/flags"
    start || exit 1
    sc_import_image "$SC_TEST_IMAGE" -H "$sock" || exit 1
    echo "DOCKER_HOST=$sock"
    if [ -f "$dir/tcp_host" ]; then echo "TCP_HOST=$(cat "$dir/tcp_host")"; fi
    ;;
restart)
    start || exit 1
    ;;
stop)
    stop
    ;;
destroy)
    stop
    kill_orphans
    unmount_all
    [ -f "$dir/bridge" ] && ip link del "$(cat "$dir/bridge")" 2>/dev/null
    rm -rf "$dir"
    echo "private engine in $dir removed"
    ;;
*)
    echo "unknown command $cmd" >&2
    exit 2
    ;;
esac
