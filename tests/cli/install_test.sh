#!/bin/bash
# `cmake --install` end to end: binaries, man pages, example configuration
# and systemd units land where they should for a plain prefix and for a
# packager's /usr + DESTDIR, the units name the installed paths and pass
# `systemd-analyze verify`, an edited configuration survives a reinstall,
# and the installed scalecastd starts on the installed configuration.
#
# Usage: install_test.sh BUILD_DIR
set -u
build=$1
tmp=$(mktemp -d /tmp/scalecast-install-test.XXXXXX)
srv_pid=
cleanup() {
    [ -n "$srv_pid" ] && kill "$srv_pid" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
has() { [ -e "$1" ] || fail "missing $1"; }

# 1. A plain prefix given at install time.
p=$tmp/x
cmake --install "$build" --prefix "$p" >"$tmp/install.log" 2>&1 || { cat "$tmp/install.log"; exit 1; }
for f in sbin/scalecastd bin/scalecast bin/scalecast-agent share/man/man8/scalecastd.8 \
    share/man/man1/scalecast.1 share/man/man1/scalecast-agent.1 etc/scalecast/scalecast.conf \
    lib/systemd/system/scalecastd.service lib/systemd/system/scalecast-agent.service; do
    has "$p/$f"
done
unit=$p/lib/systemd/system/scalecastd.service
agent=$p/lib/systemd/system/scalecast-agent.service
grep -qx "ExecStart=$p/sbin/scalecastd --config $p/etc/scalecast/scalecast.conf" "$unit" ||
    fail "scalecastd.service ExecStart: $(grep ExecStart "$unit")"
grep -qx "ExecStart=$p/bin/scalecast-agent" "$agent" || fail "agent ExecStart: $(grep ExecStart "$agent")"
grep -qx "Environment=NODE_ID=%H" "$agent" || fail "agent unit lacks Environment=NODE_ID=%H"
cmp -s "$p/etc/scalecast/scalecast.conf" "$(dirname "$0")/../../config/scalecast.conf" ||
    fail "installed scalecast.conf differs from config/scalecast.conf"
if command -v systemd-analyze >/dev/null; then
    if ! systemd-analyze verify --man=no "$unit" "$agent" >"$tmp/verify.log" 2>&1; then
        fail "systemd-analyze verify:"
        cat "$tmp/verify.log"
    elif [ -s "$tmp/verify.log" ]; then
        # Unknown keys and bad values are only warnings to it.
        fail "systemd-analyze verify warned:"
        cat "$tmp/verify.log"
    fi
else
    echo "note: no systemd-analyze here; units not verified"
fi
if command -v groff >/dev/null; then
    for m in "$p"/share/man/man*/*; do
        out=$(LC_ALL=C.UTF-8 groff -man -ww -z "$m" 2>&1) || fail "groff $m"
        [ -z "$out" ] || fail "groff warnings in $m: $out"
    done
else
    echo "note: no groff here; man pages not checked"
fi

# 2. An edited configuration is kept on reinstall; the example goes beside it.
echo "# edited by the admin" >>"$p/etc/scalecast/scalecast.conf"
cmake --install "$build" --prefix "$p" >"$tmp/install2.log" 2>&1 || { cat "$tmp/install2.log"; exit 1; }
tail -n 1 "$p/etc/scalecast/scalecast.conf" | grep -q "edited by the admin" ||
    fail "reinstall overwrote the edited scalecast.conf"
has "$p/etc/scalecast/scalecast.conf.dist"

# 3. A packager's layout: /usr with DESTDIR staging, /etc for the config.
s=$tmp/stage
DESTDIR=$s cmake --install "$build" --prefix /usr >"$tmp/install3.log" 2>&1 ||
    { cat "$tmp/install3.log"; exit 1; }
for f in usr/sbin/scalecastd usr/bin/scalecast usr/bin/scalecast-agent etc/scalecast/scalecast.conf \
    usr/lib/systemd/system/scalecastd.service usr/share/man/man8/scalecastd.8; do
    has "$s/$f"
done
grep -qx "ExecStart=/usr/sbin/scalecastd --config /etc/scalecast/scalecast.conf" \
    "$s/usr/lib/systemd/system/scalecastd.service" || fail "/usr unit ExecStart"

# 4. The installed server starts on the installed example configuration.
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$p/sbin/scalecastd" --config "$p/etc/scalecast/scalecast.conf" --listen "127.0.0.1:$port" \
    --db "$tmp/db/scalecast.db" >"$tmp/server.log" 2>&1 &
srv_pid=$!
ok=0
for _ in $(seq 50); do
    if curl -sf "http://127.0.0.1:$port/healthz" >/dev/null; then ok=1; break; fi
    sleep 0.1
done
[ $ok = 1 ] || { fail "installed scalecastd did not answer:"; cat "$tmp/server.log"; }
"$p/bin/scalecast" nodes --server "http://127.0.0.1:$port" >/dev/null 2>&1 ||
    fail "installed scalecast cannot query the installed server"
kill "$srv_pid"
wait "$srv_pid" || fail "scalecastd exit status $? after SIGTERM"
srv_pid=

if [ $fails -ne 0 ]; then
    echo "$fails failed"
    exit 1
fi
echo "ok packaging.install"
