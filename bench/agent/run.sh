#!/bin/bash
# Agent footprint benchmark: scalecast-agent beside prometheus-node-exporter
# and collectd, all at a 1 s interval on this machine, with CONTAINERS idle
# containers running. Prints each one's steady RSS, private and anonymous
# memory, and CPU as a percent of one core over a MEASURE-second window
# (after WARMUP seconds), median of RUNS runs. A benchmark, not a test.
#
#   bench/agent/run.sh [BUILD_DIR]        (default: build)
#   env: RUNS=3 MEASURE=60 WARMUP=10 CONTAINERS=20 AGENT_TLS=0
#
# AGENT_TLS=1: scalecastd serves HTTPS with a certificate from a CA made
# here with the openssl command, and the agent pushes to https:// with
# --ca-file (needs scalecastd in BUILD_DIR).
#
# node_exporter (Debian's prometheus-node-exporter, default collectors) is
# scraped once a second with curl. collectd (Debian's collectd-core) runs the
# cpu, memory, disk and interface plugins at Interval 1 and pushes JSON with
# write_http to a local sink (bench/agent/sink.c). The agent pushes to
# scalecastd (from BUILD_DIR) when it answers POSTs, else to the same sink.
# The three run side by side; each one's CPU is its own (utime+stime, or the
# scheduler's nanosecond count when that is larger), memory is read from
# /proc/PID/smaps_rollup at the end of the window.
# Needs root (apt-get for the peers; the Docker engine for the containers).
set -euo pipefail

BUILD=${1:-build}
RUNS=${RUNS:-3}
MEASURE=${MEASURE:-60}
WARMUP=${WARMUP:-10}
CONTAINERS=${CONTAINERS:-20}
AGENT_TLS=${AGENT_TLS:-0}
HERE=$(cd "$(dirname "$0")" && pwd)
AGENT=$BUILD/agent/scalecast-agent
SCALECASTD=$BUILD/server/scalecastd
IMAGE=scalecast-agent-test/busybox:latest

[ -x "$AGENT" ] || { echo "no $AGENT: build first (cmake --build $BUILD)" >&2; exit 1; }

need=()
for pkg in prometheus-node-exporter collectd-core libyajl2 libcurl3-gnutls curl; do
    dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
    echo "installing ${need[*]}" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${need[@]}" >/dev/null
fi

WORK=$(mktemp -d /tmp/sc_agent_bench.XXXXXX)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    if [ "$CONTAINERS" -gt 0 ] && docker info >/dev/null 2>&1; then
        docker rm -f $(seq -f "sc-bench-agent-%g" 1 "$CONTAINERS") >/dev/null 2>&1 || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null ||
        shuf -i 20000-60000 -n 1
}

# ---- the containers
running=0
if [ "$CONTAINERS" -gt 0 ]; then
    if docker info >/dev/null 2>&1; then
        if ! docker image inspect "$IMAGE" >/dev/null 2>&1; then
            mkdir -p "$WORK/img/bin" && cp /bin/busybox "$WORK/img/bin/" &&
                ln -s busybox "$WORK/img/bin/sleep" && ln -s busybox "$WORK/img/bin/sh" &&
                tar -C "$WORK/img" -cf "$WORK/img.tar" . && docker import "$WORK/img.tar" "$IMAGE" >/dev/null
        fi
        for i in $(seq 1 "$CONTAINERS"); do
            docker run -d --name "sc-bench-agent-$i" --label com.docker.compose.service=bench \
                "$IMAGE" sleep 100000 >/dev/null
        done
        running=$CONTAINERS
    else
        echo "WARNING: no Docker engine: measuring without containers" >&2
    fi
fi

# ---- sink and server
cc -O2 -o "$WORK/sink" "$HERE/sink.c"
SINK_PORT=$(free_port)
"$WORK/sink" "$SINK_PORT" 2>"$WORK/sink.log" & PIDS+=($!)
AGENT_URL=http://127.0.0.1:$SINK_PORT
AGENT_TARGET="the benchmark sink"
SCHEME=http
CURL_TLS=()
AGENT_ARGS=()
SERVER_ARGS=()
if [ "$AGENT_TLS" = 1 ]; then
    [ -x "$SCALECASTD" ] || { echo "AGENT_TLS=1 needs $SCALECASTD" >&2; exit 1; }
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
        -keyout "$WORK/ca.key" -out "$WORK/ca.pem" -subj "/CN=bench CA" \
        -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign" 2>/dev/null
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=bench" \
        -keyout "$WORK/server.key" -out "$WORK/server.csr" 2>/dev/null
    printf 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' >"$WORK/server.ext"
    openssl x509 -req -in "$WORK/server.csr" -CA "$WORK/ca.pem" -CAkey "$WORK/ca.key" \
        -CAcreateserial -days 2 -extfile "$WORK/server.ext" -out "$WORK/server.pem" 2>/dev/null
    printf '[server]\ntls_cert = %s\ntls_key = %s\n' "$WORK/server.pem" "$WORK/server.key" >"$WORK/tls.conf"
    SCHEME=https
    CURL_TLS=(--cacert "$WORK/ca.pem")
    AGENT_ARGS=(--ca-file "$WORK/ca.pem")
    SERVER_ARGS=(--config "$WORK/tls.conf")
fi
if [ -x "$SCALECASTD" ]; then
    SPORT=$(free_port)
    "$SCALECASTD" "${SERVER_ARGS[@]}" --listen 127.0.0.1:$SPORT --db "$WORK/scalecast.db" --log-level warn \
        2>"$WORK/scalecastd.log" & SPID=$!
    PIDS+=($SPID)
    for _ in $(seq 50); do curl -fs "${CURL_TLS[@]}" $SCHEME://127.0.0.1:$SPORT/healthz >/dev/null 2>&1 && break; sleep 0.1; done
    if curl -fs "${CURL_TLS[@]}" -X POST -H 'Content-Type: application/json' \
        --data "{\"node\":\"bench-probe\",\"samples\":[{\"ts\":$(date +%s),\"metrics\":{\"cpu\":1}}]}" \
        $SCHEME://127.0.0.1:$SPORT/api/v1/metrics >/dev/null 2>&1; then
        AGENT_URL=$SCHEME://127.0.0.1:$SPORT
        AGENT_TARGET="scalecastd ($SCHEME)"
    elif [ "$AGENT_TLS" = 1 ]; then
        echo "scalecastd does not take HTTPS POSTs (see $WORK/scalecastd.log)" >&2
        exit 1
    else
        echo "WARNING: scalecastd does not take POSTs (see $WORK/scalecastd.log); the agent pushes to the sink" >&2
    fi
fi

cat >"$WORK/collectd.conf" <<CONF
Hostname "bench"
FQDNLookup false
Interval 1
BaseDir "$WORK/collectd"
PIDFile "$WORK/collectd.pid"
PluginDir "/usr/lib/collectd"
TypesDB "/usr/share/collectd/types.db"
LoadPlugin cpu
LoadPlugin memory
LoadPlugin disk
LoadPlugin interface
LoadPlugin write_http
<Plugin write_http>
  <Node "sink">
    URL "http://127.0.0.1:$SINK_PORT/collectd"
    Format "JSON"
    StoreRates true
  </Node>
</Plugin>
CONF
mkdir -p "$WORK/collectd"

CLK=$(getconf CLK_TCK)
# CPU nanoseconds used so far by a process (all threads): both the tick count
# of /proc/PID/stat and the scheduler's per-thread nanoseconds.
cpu_stat_ns() { awk -v clk="$CLK" '{ sub(/^.*\) /, ""); print ($12 + $13) * 1e9 / clk }' "/proc/$1/stat"; }
cpu_sched_ns() { cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{ s += $1 } END { print s + 0 }'; }
mem_kb() { awk -v k="$2" '$1 == k":" { print $2 }' "/proc/$1/smaps_rollup"; }

RESULTS=$WORK/results
: >"$RESULTS"
# measure NAME PID: notes the start of the window; finish: appends
# "NAME RSS_KB PRIVATE_KB ANON_KB CPU_PCT" per process to $RESULTS.
measure() {
    echo "$1 $2 $(cpu_stat_ns "$2") $(cpu_sched_ns "$2")" >>"$WORK/start"
}
finish() {
    while read -r name pid s0 t0; do
        s1=$(cpu_stat_ns "$pid"); t1=$(cpu_sched_ns "$pid")
        rss=$(mem_kb "$pid" Rss)
        priv=$(( $(mem_kb "$pid" Private_Clean) + $(mem_kb "$pid" Private_Dirty) ))
        anon=$(mem_kb "$pid" Anonymous)
        awk -v n="$name" -v r="$rss" -v p="$priv" -v a="$anon" \
            -v ds="$(awk "BEGIN{print $s1-$s0}")" -v dt="$(awk "BEGIN{print $t1-$t0}")" -v m="$MEASURE" \
            'BEGIN { d = ds > dt ? ds : dt; printf "%s %d %d %d %.4f\n", n, r, p, a, 100 * d / (m * 1e9) }' \
            >>"$RESULTS"
    done <"$WORK/start"
    : >"$WORK/start"
}

echo "scalecast-agent pushes to $AGENT_TARGET; $running containers running; $RUNS runs of ${WARMUP}s warm-up + ${MEASURE}s measured" >&2
for run in $(seq 1 "$RUNS"); do
    NE_PORT=$(free_port)
    NODE_ID=bench "$AGENT" --server "$AGENT_URL" "${AGENT_ARGS[@]}" --interval 1 --spool-dir "$WORK/spool-$run" \
        --log-level warn 2>>"$WORK/agent.log" & APID=$!
    prometheus-node-exporter --web.listen-address=127.0.0.1:$NE_PORT --log.level=warn \
        2>>"$WORK/node_exporter.log" & NPID=$!
    (while sleep 1; do curl -s -o /dev/null http://127.0.0.1:$NE_PORT/metrics; done) & SPID_LOOP=$!
    collectd -f -C "$WORK/collectd.conf" >>"$WORK/collectd.log" 2>&1 & CPID=$!
    PIDS+=($APID $NPID $SPID_LOOP $CPID)
    sleep "$WARMUP"
    : >"$WORK/start"
    measure scalecast-agent $APID
    measure node_exporter $NPID
    measure collectd $CPID
    sleep "$MEASURE"
    finish
    if [ "${AGENT_TARGET%% *}" = scalecastd ] && ! kill -0 "$SPID" 2>/dev/null; then
        st=0
        wait "$SPID" || st=$?
        echo "WARNING: scalecastd died during run $run (exit status $st); the agent was spooling, not pushing:" >&2
        tail -n 5 "$WORK/scalecastd.log" >&2
        AGENT_TARGET="scalecastd (dead)"
    fi
    kill $APID $NPID $SPID_LOOP $CPID 2>/dev/null || true
    wait $APID $NPID $CPID 2>/dev/null || true
    echo "run $run:" >&2
    tail -n 3 "$RESULTS" | awk '{ printf "  %-16s RSS %6.2f MB  private %5.2f MB  anon %5.2f MB  CPU %.3f %%\n", $1, $2/1024, $3/1024, $4/1024, $5 }' >&2
done

echo
echo "Agent footprint, median of $RUNS runs (${MEASURE} s at 1 s interval, $running containers running)"
printf "%-16s %9s %12s %9s %14s\n" "" "RSS MB" "private MB" "anon MB" "CPU % of core"
for name in scalecast-agent node_exporter collectd; do
    med() { grep "^$name " "$RESULTS" | awk -v c="$1" '{ print $c }' | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
    printf "%-16s %9.2f %12.2f %9.2f %14.3f\n" "$name" "$(awk "BEGIN{print $(med 2)/1024}")" \
        "$(awk "BEGIN{print $(med 3)/1024}")" "$(awk "BEGIN{print $(med 4)/1024}")" "$(med 5)"
done
if [ -s "$WORK/agent.log" ]; then
    echo "agent log:" >&2
    tail -n 5 "$WORK/agent.log" >&2
fi
