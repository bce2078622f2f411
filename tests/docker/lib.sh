# shellcheck shell=bash
# Shared shell functions for the Docker test scripts (sourced, not run).
#
# sc_start_dockerd LOG PIDFILE ARGS...  starts dockerd in the background and
#     waits until it answers; if it dies, reads its log and retries with the
#     fallback flags that the failure asks for (see README.md). Prints the
#     flags that worked and leaves the fallback ones in SC_DOCKERD_EXTRA.
#     Returns 1 if no configuration starts.
# sc_import_image IMAGE [DOCKER_ARGS...]  builds the busybox test image.

SC_TEST_IMAGE=${SC_TEST_IMAGE:-scalecast-busybox:test}

sc_say() { printf '%s\n' "$*"; }

# Whether process $1 runs. Not kill -0: where PID 1 does not reap, a dead
# daemon stays a zombie that kill -0 still finds.
sc_alive() {
    [ -n "$1" ] && [ -r "/proc/$1/stat" ] || return 1
    ! sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | grep -q '^[ZX]'
}

# Waits up to $3 seconds until `docker $1 version` answers or pid $2 dies.
sc_wait_engine() {
    _host=$1 _pid=$2 _limit=$3 _i=0
    while [ "$_i" -lt $((_limit * 4)) ]; do
        # shellcheck disable=SC2086
        if docker $_host version >/dev/null 2>&1; then return 0; fi
        if ! sc_alive "$_pid"; then return 1; fi
        sleep 0.25
        _i=$((_i + 1))
    done
    return 1
}

# The flag a failed start's log asks for, or nothing.
sc_fallback_flag() {
    _log=$1 _have=$2
    if ! printf '%s' "$_have" | grep -q -- '--storage-driver' &&
        tail -n 50 "$_log" | grep -qiE 'overlay|storage driver|graphdriver|driver not supported'; then
        echo "--storage-driver=vfs"
    elif ! printf '%s' "$_have" | grep -q -- '--iptables' &&
        tail -n 50 "$_log" | grep -qiE 'iptables|nat chain|xtables'; then
        echo "--iptables=false"
    elif ! printf '%s' "$_have" | grep -q -- '--bridge' &&
        tail -n 50 "$_log" | grep -qiE 'bridge|network controller|netlink'; then
        echo "--bridge=none"
    fi
}

sc_start_dockerd() {
    _log=$1 _pidfile=$2
    shift 2
    _extra=""
    _hostarg=""
    for _a in "$@"; do
        case $_a in unix://*) _hostarg="-H $_a" ;; esac
    done
    while :; do
        _flags=$(echo "$* $_extra" | xargs)
        sc_say "starting: dockerd${_flags:+ $_flags} (log: $_log)"
        # fd 9 is engine.sh's lock: the daemon must not inherit it, or every
        # later engine.sh would wait for the lock as long as dockerd runs.
        # shellcheck disable=SC2086
        setsid dockerd "$@" $_extra >>"$_log" 2>&1 </dev/null 9>&- &
        _dpid=$!
        if sc_wait_engine "$_hostarg" "$_dpid" 60; then
            sc_say "dockerd is up (pid $_dpid) with flags: ${_flags:-none}"
            # shellcheck disable=SC2034 # read by the scripts that source this
            SC_DOCKERD_EXTRA=$_extra
            return 0
        fi
        kill "$_dpid" 2>/dev/null
        wait "$_dpid" 2>/dev/null
        rm -f "$_pidfile"
        _flag=$(sc_fallback_flag "$_log" "$_extra")
        if [ -z "$_flag" ]; then
            sc_say "dockerd did not start; last lines of $_log:"
            tail -n 15 "$_log"
            return 1
        fi
        sc_say "dockerd failed; its log asks for $_flag, retrying with it"
        _extra="$_extra $_flag"
    done
}

# A tarball holding /bin/busybox (Debian's busybox-static) and one symlink per
# applet, so that sh, sleep, cat... exist; /tmp for programs that want it.
sc_busybox_tar() {
    _out=$1
    _bb=$(command -v busybox || echo /bin/busybox)
    if [ ! -x "$_bb" ]; then
        sc_say "no busybox: apt-get install -y busybox-static" >&2
        return 1
    fi
    if ldd "$_bb" >/dev/null 2>&1; then
        sc_say "$_bb is dynamically linked; the image needs busybox-static" >&2
        return 1
    fi
    _root=$(mktemp -d)
    mkdir -p "$_root/bin" "$_root/tmp" "$_root/etc"
    chmod 1777 "$_root/tmp"
    cp "$_bb" "$_root/bin/busybox"
    for _app in $("$_bb" --list); do
        [ "$_app" = busybox ] || ln -s busybox "$_root/bin/$_app"
    done
    printf 'root:x:0:0:root:/:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' >"$_root/etc/passwd"
    printf 'root:x:0:\nnogroup:x:65534:\n' >"$_root/etc/group"
    tar --numeric-owner --owner=0 --group=0 -C "$_root" -cf "$_out" .
    rm -rf "$_root"
}

sc_import_image() {
    _image=$1
    shift
    # shellcheck disable=SC2068
    if docker $@ image inspect "$_image" >/dev/null 2>&1; then
        sc_say "image $_image: present"
        return 0
    fi
    _tar=$(mktemp)
    sc_busybox_tar "$_tar" || return 1
    # shellcheck disable=SC2068
    docker $@ import -c 'CMD ["sh"]' -m "scalecast test image: busybox-static" "$_tar" "$_image" >/dev/null ||
        { rm -f "$_tar"; return 1; }
    rm -f "$_tar"
    sc_say "image $_image: imported from $(command -v busybox) ($(busybox | head -n 1 | cut -d' ' -f1-2))"
}
