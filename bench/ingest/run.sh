#!/usr/bin/env bash
# Ingestion benchmark: scalecastd and InfluxDB 1.x side by side, same samples.
#
# Builds loadgen (and scalecastd), starts both servers on loopback ports with
# temporary storage, runs three scenarios against each, several times,
# interleaved, prints the medians and the scalecast/influx ratios, then checks
# that each server stores exactly what it acknowledged. Everything it started
# is stopped on exit. See bench/ingest/README.md.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD=${BUILD:-$ROOT/build-bench}
REPS=3
DURATION=8
WARMUP=2
TARGETS="scalecast influx"
SCENARIOS="a b c"
INFLUX_FORMAT=influx
KEEP=0

usage() {
    cat <<EOF
usage: bench/ingest/run.sh [options]
  --reps N            repetitions of each run (3)
  --duration S        measured seconds per run (8)
  --warmup S          warm-up seconds per run, not measured (2)
  --only T            run only one target: scalecast or influx
  --scenarios "a b c" which scenarios to run
  --influx-format F   influx (a line per sample object, a field per metric;
                      default) or influx-metric (a line per metric)
  --build DIR         CMake build directory (\$BUILD or <repo>/build-bench)
  --keep              keep the temporary directory (databases, logs, results)
Scenarios: a = 5000 samples per POST (500 nodes x 10 metrics, one tick), 4
connections; b = agent pushes of 5-10 samples per POST, 32 connections;
c = agent pushes, one connection.
EOF
}

while [ $# -gt 0 ]; do
    case $1 in
    --reps) REPS=$2; shift 2 ;;
    --duration) DURATION=$2; shift 2 ;;
    --warmup) WARMUP=$2; shift 2 ;;
    --only) TARGETS=$2; shift 2 ;;
    --scenarios) SCENARIOS=$2; shift 2 ;;
    --influx-format) INFLUX_FORMAT=$2; shift 2 ;;
    --build) BUILD=$2; shift 2 ;;
    --keep) KEEP=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) echo "run.sh: unknown option '$1'" >&2; usage >&2; exit 2 ;;
    esac
done
case $TARGETS in
"scalecast influx" | scalecast | influx) ;;
*) echo "run.sh: --only: '$TARGETS' is not scalecast or influx" >&2; exit 2 ;;
esac
case $INFLUX_FORMAT in
influx | influx-metric) ;;
*) echo "run.sh: --influx-format: '$INFLUX_FORMAT' is not influx or influx-metric" >&2; exit 2 ;;
esac
for s in $SCENARIOS; do
    case $s in a | b | c) ;; *) echo "run.sh: --scenarios: unknown scenario '$s'" >&2; exit 2 ;; esac
done
for tool in curl jq; do
    command -v $tool >/dev/null || { echo "run.sh: $tool is needed (apt-get install -y $tool)" >&2; exit 1; }
done

want() { [[ " $TARGETS " == *" $1 "* ]]; }

# ---- build ------------------------------------------------------------------
echo "== building in $BUILD"
if [ ! -f "$BUILD/CMakeCache.txt" ]; then
    cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >/dev/null
fi
build_targets=loadgen
want scalecast && build_targets="$build_targets scalecastd"
# shellcheck disable=SC2086
cmake --build "$BUILD" -j2 --target $build_targets >"$BUILD/bench-ingest-build.log" 2>&1 || {
    tail -30 "$BUILD/bench-ingest-build.log" >&2
    echo "run.sh: build failed (log: $BUILD/bench-ingest-build.log)" >&2
    exit 1
}
LOADGEN=$BUILD/bench/ingest/loadgen
SCALECASTD=
if want scalecast; then
    SCALECASTD=$(find "$BUILD" -type f -name scalecastd -perm -u+x | head -1)
    [ -n "$SCALECASTD" ] || { echo "run.sh: scalecastd not found under $BUILD" >&2; exit 1; }
fi
if want influx; then
    command -v influxd >/dev/null || {
        echo "run.sh: influxd not found (apt-get install -y influxdb)" >&2
        exit 1
    }
fi

# ---- servers ----------------------------------------------------------------
TMP=$(mktemp -d "${TMPDIR:-/tmp}/scalecast-bench.XXXXXX")
if [ "$(stat -f -c %T "$TMP")" = tmpfs ]; then
    echo "run.sh: warning: $TMP is on tmpfs, where fsync costs nothing; set TMPDIR to a disk" >&2
fi
PIDS=()
# shellcheck disable=SC2317 # called through the EXIT trap
cleanup() {
    local rc=$? pid
    for pid in "${PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        for _ in $(seq 100); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    if [ "$rc" != 0 ] && [ "$KEEP" != 1 ]; then
        mkdir -p "$BUILD/bench-ingest-logs"
        cp "$TMP"/*.log "$TMP"/run-*.txt "$BUILD/bench-ingest-logs/" 2>/dev/null || true
        echo "run.sh: failed; server logs and run outputs in $BUILD/bench-ingest-logs/" >&2
    fi
    if [ "$KEEP" = 1 ]; then
        echo "kept $TMP"
    else
        rm -rf "$TMP"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# wait_http URL SECONDS: until URL answers 2xx.
wait_http() {
    for _ in $(seq $(($2 * 10))); do
        curl -sf -o /dev/null "$1" && return 0
        sleep 0.1
    done
    return 1
}

# cpu_ticks PID: user+system clock ticks used so far.
cpu_ticks() {
    local stat
    stat=$(cat "/proc/$1/stat") || return 1
    stat=${stat##*) }
    # shellcheck disable=SC2086
    set -- $stat
    echo $((${12} + ${13}))
}

# alive TARGET PID: exit with the server's last log lines if it is gone.
alive() {
    kill -0 "$2" 2>/dev/null && return 0
    local rc=0
    wait "$2" || rc=$?
    echo "run.sh: $1 (pid $2) exited with status $rc; last lines of its log:" >&2
    tail -20 "$TMP/${1}d.log" >&2
    exit 1
}

# settle PID: wait (at most 60 s) until the server uses under 5% of a core
# for half a second, so one run's background work does not land in the next.
settle() {
    local t0 t1
    for _ in $(seq 120); do
        t0=$(cpu_ticks "$1") || return 0
        sleep 0.5
        t1=$(cpu_ticks "$1") || return 0
        [ $((t1 - t0)) -le $(($(getconf CLK_TCK) / 40)) ] && return 0
    done
    echo "   (server $1 still busy after 60 s)"
}

SC_PORT=
SC_PID=
if want scalecast; then
    SC_PORT=$("$LOADGEN" --free-port)
    mkdir -p "$TMP/scalecast"
    "$SCALECASTD" --listen "127.0.0.1:$SC_PORT" --db "$TMP/scalecast/bench.db" \
        --log-level warn 2>"$TMP/scalecastd.log" &
    SC_PID=$!
    PIDS+=("$SC_PID")
    wait_http "http://127.0.0.1:$SC_PORT/healthz" 30 || {
        cat "$TMP/scalecastd.log" >&2
        echo "run.sh: scalecastd did not come up on 127.0.0.1:$SC_PORT" >&2
        exit 1
    }
    echo "== scalecastd pid $SC_PID on 127.0.0.1:$SC_PORT, db $TMP/scalecast/bench.db"
fi

IF_PORT=
IF_PID=
if want influx; then
    IF_PORT=$("$LOADGEN" --free-port)
    IF_RPC=$("$LOADGEN" --free-port)
    mkdir -p "$TMP/influx"
    # HTTP only, on loopback; no reporting, monitor, UDP/graphite/collectd/
    # opentsdb, continuous queries or per-request logs; the WAL is fsynced on
    # every write (wal-fsync-delay 0), as scalecast commits durably.
    cat >"$TMP/influx/influxdb.conf" <<EOF
reporting-disabled = true
bind-address = "127.0.0.1:$IF_RPC"
[meta]
  dir = "$TMP/influx/meta"
  logging-enabled = false
[data]
  dir = "$TMP/influx/data"
  wal-dir = "$TMP/influx/wal"
  wal-fsync-delay = "0s"
  query-log-enabled = false
[monitor]
  store-enabled = false
[subscriber]
  enabled = false
[continuous_queries]
  enabled = false
[http]
  enabled = true
  bind-address = "127.0.0.1:$IF_PORT"
  log-enabled = false
  pprof-enabled = false
[logging]
  level = "warn"
  suppress-logo = true
[[graphite]]
  enabled = false
[[collectd]]
  enabled = false
[[opentsdb]]
  enabled = false
[[udp]]
  enabled = false
EOF
    influxd -config "$TMP/influx/influxdb.conf" >"$TMP/influxd.log" 2>&1 &
    IF_PID=$!
    PIDS+=("$IF_PID")
    wait_http "http://127.0.0.1:$IF_PORT/ping" 30 || {
        cat "$TMP/influxd.log" >&2
        echo "run.sh: influxd did not come up on 127.0.0.1:$IF_PORT" >&2
        exit 1
    }
    curl -sf -XPOST "http://127.0.0.1:$IF_PORT/query" --data-urlencode "q=CREATE DATABASE bench" \
        >/dev/null
    echo "== influxd $(influxd version 2>/dev/null | awk '{print $2}') pid $IF_PID on" \
        "127.0.0.1:$IF_PORT, dir $TMP/influx (format $INFLUX_FORMAT)"
fi

# ---- runs -------------------------------------------------------------------
scenario_args() {
    case $1 in
    a) echo "--shape batch --nodes 500 --metrics 10 --conns 4" ;;
    b) echo "--shape agent --nodes 1000 --conns 32" ;;
    c) echo "--shape agent --nodes 1000 --conns 1" ;;
    esac
}

# Both targets get the same samples: each starts two days back and every run
# continues where the previous one on that server stopped, so no sample is
# ever sent twice to one server.
TS0=$(($(date +%s) - 2 * 86400))
declare -A TS_NEXT=([scalecast]=$TS0 [influx]=$TS0)
declare -A ACKED=([scalecast]=0 [influx]=0)
declare -A UNKNOWN=([scalecast]=0 [influx]=0)
declare -A REJECTED=([scalecast]=0 [influx]=0)
RESULTS=$TMP/results.tsv
printf 'target\tscenario\trep\tsamples_per_s\treqs_per_s\tp50_ms\tp99_ms\tmax_ms\terrors\tloadgen_cpu_pct\tserver_cpu_pct\tload1\n' \
    >"$RESULTS"

kv() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$2"; }

run_one() { # target scenario rep
    local target=$1 sc=$2 rep=$3 port pid fmt out res load1
    if [ "$target" = scalecast ]; then
        port=$SC_PORT pid=$SC_PID fmt=scalecast
    else
        port=$IF_PORT pid=$IF_PID fmt=$INFLUX_FORMAT
    fi
    settle "$pid"
    alive "$target" "$pid"
    load1=$(cut -d' ' -f1 /proc/loadavg)
    out=$TMP/run-$target-$sc-$rep.txt
    # shellcheck disable=SC2046
    "$LOADGEN" --port "$port" --format "$fmt" $(scenario_args "$sc") --warmup "$WARMUP" \
        --duration "$DURATION" --ts-start "${TS_NEXT[$target]}" --watch-pid "$pid" >"$out" 2>&1 || {
        cat "$out" >&2
        alive "$target" "$pid"
        echo "run.sh: loadgen failed against $target" >&2
        exit 1
    }
    alive "$target" "$pid"
    res=$(grep '^RESULT ' "$out")
    TS_NEXT[$target]=$(kv ts_next "$res")
    ACKED[$target]=$((ACKED[$target] + $(kv acked_samples "$res")))
    UNKNOWN[$target]=$((UNKNOWN[$target] + $(kv unknown_samples "$res")))
    REJECTED[$target]=$((REJECTED[$target] + $(kv rejected_samples "$res")))
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$target" "$sc" "$rep" \
        "$(kv samples_per_s "$res")" "$(kv reqs_per_s "$res")" "$(kv p50_ms "$res")" \
        "$(kv p99_ms "$res")" "$(kv max_ms "$res")" "$(kv errors "$res")" \
        "$(kv loadgen_cpu_pct "$res")" "$(kv server_cpu_pct "$res")" "$load1" >>"$RESULTS"
    printf '   %-9s %s rep %s: %9s samples/s %7s req/s  p50 %7s ms  p99 %7s ms  errors %s' \
        "$target" "$sc" "$rep" "$(kv samples_per_s "$res")" "$(kv reqs_per_s "$res")" \
        "$(kv p50_ms "$res")" "$(kv p99_ms "$res")" "$(kv errors_total "$res")"
    printf '  cpu: loadgen %s%% server %s%%  load %s\n' "$(kv loadgen_cpu_pct "$res")" \
        "$(kv server_cpu_pct "$res")" "$load1"
    if [ "$(kv errors_total "$res")" != 0 ]; then
        grep '^  errors' "$out" | sed 's/^/      /'
    fi
}

echo "== machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg) at start"
echo "== $REPS repetitions x scenarios ($SCENARIOS) x targets ($TARGETS)," \
    "${WARMUP}s warm-up + ${DURATION}s measured each"
for rep in $(seq "$REPS"); do
    for sc in $SCENARIOS; do
        for target in $TARGETS; do
            run_one "$target" "$sc" "$rep"
        done
    done
done
echo "== load average $(cut -d' ' -f1-3 /proc/loadavg) at end"

# ---- table ------------------------------------------------------------------
echo
echo "Medians over $REPS runs (latency of acknowledged requests; CPU in % of one core;"
echo "load average: 1-minute load when each run started; srv CPU: server CPU time per request/sample)"
awk -F'\t' -v targets="$TARGETS" -v scen="$SCENARIOS" '
function median(key,   n, i, j, t, a) {
    n = split(vals[key], a, " ")
    for (i = 2; i <= n; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] + 0 > t + 0; j--) a[j + 1] = a[j]; a[j + 1] = t }
    if (n == 0) return ""
    return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}
function fmtv(x) {
    if (x == "") return "-"
    return x + 0 >= 100 ? sprintf("%.0f", x) : sprintf("%.3g", x)
}
NR > 1 {
    for (c = 4; c <= 12; c++) vals[$1 SUBSEP $2 SUBSEP c] = vals[$1 SUBSEP $2 SUBSEP c] " " $c
    # Server CPU per request and per sample: less sensitive to what else runs.
    if ($11 >= 0 && $5 > 0) {
        vals[$1 SUBSEP $2 SUBSEP 13] = vals[$1 SUBSEP $2 SUBSEP 13] " " $11 / 100 / $5 * 1e6
        vals[$1 SUBSEP $2 SUBSEP 14] = vals[$1 SUBSEP $2 SUBSEP 14] " " $11 / 100 / $4 * 1e9
    }
}
END {
    name["a"] = "a: 5000/POST, 4 conns"; name["b"] = "b: 5-10/POST, 32 conns"; name["c"] = "c: 5-10/POST, 1 conn"
    col[4] = "samples/s"; col[5] = "requests/s"; col[6] = "p50 ms"; col[7] = "p99 ms"; col[8] = "max ms"
    col[9] = "errors"; col[10] = "loadgen CPU %"; col[11] = "server CPU %"
    col[12] = "load average"; col[13] = "srv CPU us/req"; col[14] = "srv CPU ns/smp"
    nt = split(targets, T, " "); ns = split(scen, S, " ")
    printf "%-24s %-14s", "scenario", "figure"
    for (t = 1; t <= nt; t++) printf " %12s", T[t]
    if (nt == 2) printf " %16s", "scalecast/influx"
    printf "\n"
    for (s = 1; s <= ns; s++) {
        for (c = 4; c <= 14; c++) {
            printf "%-24s %-14s", c == 4 ? name[S[s]] : "", col[c]
            for (t = 1; t <= nt; t++) {
                m[t] = median(T[t] SUBSEP S[s] SUBSEP c)
                printf " %12s", fmtv(m[t])
            }
            if (nt == 2 && (c <= 8 || c >= 13) && m[2] > 0) printf " %16.2f", m[1] / m[2]
            printf "\n"
        }
    }
    # The foundation issue'"'"'s targets, when both servers ran.
    if (nt != 2 || T[1] != "scalecast") exit
    for (s = 1; s <= ns; s++) {
        if (S[s] == "c") continue
        sc = median("scalecast" SUBSEP S[s] SUBSEP 4); ix = median("influx" SUBSEP S[s] SUBSEP 4)
        if (S[s] == "a") {
            ok = sc >= 1000000 && sc >= 2 * ix
            printf "goal a: >= 1,000,000 samples/s and >= 2x influx: %.0f samples/s, %.2fx: %s\n", sc, ix ? sc / ix : 0, ok ? "met" : "NOT met"
        } else {
            rq = median("scalecast" SUBSEP "b" SUBSEP 5); ri = median("influx" SUBSEP "b" SUBSEP 5)
            p99 = median("scalecast" SUBSEP "b" SUBSEP 7)
            ok = rq >= 25000 && p99 < 5 && rq >= 2 * ri
            printf "goal b: >= 25,000 requests/s at p99 < 5 ms and >= 2x influx: %.0f requests/s, p99 %.3g ms, %.2fx: %s\n", rq, p99, ri ? rq / ri : 0, ok ? "met" : "NOT met"
        }
    }
}' "$RESULTS"

# ---- verification -------------------------------------------------------------
echo
fail=0
# check TARGET STORED: stored must equal acknowledged; requests without an answer
# (unknown outcome) may or may not have been stored, so they widen the range.
check() {
    local t=$1 stored=$2 lo=${ACKED[$1]} hi=$((ACKED[$1] + UNKNOWN[$1]))
    [ "$t" = influx ] && hi=$((hi + REJECTED[$t])) # a 400 "partial write" stores some
    local bytes
    bytes=$(du -sb "$TMP/$t" | cut -f1)
    if [ "$stored" -ge "$lo" ] && [ "$stored" -le "$hi" ]; then
        echo "verify $t: stored $stored, acknowledged $lo (unknown outcome ${UNKNOWN[$t]}): OK;" \
            "$(awk -v b="$bytes" -v n="$stored" 'BEGIN { printf "%.1f", n ? b / n : 0 }') bytes" \
            "on disk per sample"
    else
        echo "verify $t: stored $stored, acknowledged $lo (unknown outcome ${UNKNOWN[$t]}," \
            "rejected ${REJECTED[$t]}): MISMATCH"
        fail=1
    fi
}
if want scalecast; then
    # Count once everything acknowledged is compacted (at most 120 s).
    stats=
    for _ in $(seq 1200); do
        stats=$(curl -sf "http://127.0.0.1:$SC_PORT/api/v1/stats") || stats=
        [ -n "$stats" ] && [ "$(jq -r '.pending_log_rows' <<<"$stats")" = 0 ] && break
        sleep 0.1
    done
    if [ -z "$stats" ] || [ "$(jq -r '.pending_log_rows' <<<"$stats")" != 0 ]; then
        echo "verify scalecast: log not compacted after 120 s: ${stats:-no /api/v1/stats answer}"
        fail=1
    else
        check scalecast "$(jq -r '.samples' <<<"$stats")"
    fi
fi
if want influx; then
    stored=$(curl -sfG "http://127.0.0.1:$IF_PORT/query" --data-urlencode db=bench \
        --data-urlencode 'q=SELECT count(*) FROM /.*/' |
        jq '[.results[0].series[]?.values[0][1:][] | numbers] | add // 0') || stored=-1
    check influx "$stored"
fi
cp "$RESULTS" "$BUILD/bench-ingest-results.tsv"
echo "raw results: $BUILD/bench-ingest-results.tsv"
exit $fail
