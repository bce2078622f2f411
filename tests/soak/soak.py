#!/usr/bin/env python3
"""Soak test of scalecastd (issue 7, "Load"): simulated agents pushing at a
fixed interval, plus periodic queries and exports, for a long time.

  soak.py --bin PATH/scalecastd [--duration 600] [--agents 200] [--interval 1]

Each simulated agent holds one keep-alive connection and, once per interval
(agents spread evenly over it), POSTs what scalecast-agent sends for a host
with two containers: 14 host metrics and cpu/mem/mem_bytes of each container
(20 samples in 3 sample objects), values as random walks, timestamps the
wall clock at millisecond precision. A request still unanswered at the next
tick makes that agent skip the tick (counted as "late"), as the real agent
keeps the round in its spool. Meanwhile, every --query-every seconds, one
of each query: nodes, a series with step, a forecast, /metrics, stats; every
--export-every seconds an export of the last minute of every node and of one
node's whole history.

Prints one line per minute (requests, errors, ingest latency p50/p99/max,
queries, exports, server RSS) and a summary; exit status 1 when there was
any error, a sample acknowledged but not stored, or RSS grew more than
--max-rss-growth percent from minute 2 (median; the first exports run at
60 s, so minute 2 is the first in which every kind of load has run) to the
last minute (median). Growth from the end of minute 1 is printed too.
The last line is "RESULT key=value ..." for scripts.
"""

import argparse
import asyncio
import http.client
import json
import os
import random
import sys
import tempfile
import threading
import time

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "server"))
import srvlib  # noqa: E402

HOST_METRICS = [("cpu", 0, 100, 2), ("mem", 0, 100, 2), ("mem_used_bytes", 1e9, 8e9, 0),
                ("mem_avail_bytes", 1e9, 8e9, 0), ("swap", 0, 100, 2), ("disk_read_bps", 0, 5e8, 0),
                ("disk_write_bps", 0, 5e8, 0), ("disk_read_iops", 0, 5e3, 1), ("disk_write_iops", 0, 5e3, 1),
                ("net_rx_bps", 0, 1e9, 0), ("net_tx_bps", 0, 1e9, 0), ("load1", 0, 16, 2),
                ("load5", 0, 16, 2), ("load15", 0, 16, 2)]
CONTAINER_METRICS = [("cpu", 0, 400, 2), ("mem", 0, 100, 2), ("mem_bytes", 1e7, 2e9, 0)]


def pct(sorted_values, q):
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


def median(values):
    v = sorted(values)
    return v[len(v) // 2] if v else 0


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return -1


class Walk:
    """A random walk inside [lo, hi] rounded like the agent rounds."""

    def __init__(self, rng, lo, hi, digits):
        self.rng, self.lo, self.hi, self.digits = rng, lo, hi, digits
        self.v = rng.uniform(lo, hi)

    def next(self):
        self.v = min(self.hi, max(self.lo, self.v + self.rng.gauss(0, (self.hi - self.lo) * 0.02)))
        return round(self.v, self.digits) if self.digits else int(self.v)


class Stats:
    def __init__(self):
        self.minute = {}  # minute index -> dict
        self.errors = []
        self.acked_samples = 0
        self.unknown_samples = 0
        self.lock = threading.Lock()

    def m(self, t):
        """The record of the minute of t (seconds since the start); the
        query threads use it too."""
        i = int(t // 60)
        with self.lock:
            if i not in self.minute:
                self.minute[i] = {"lat": [], "late": 0, "errors": 0, "queries": 0, "query_max": 0.0,
                                  "exports": 0, "export_rows": 0, "export_max": 0.0, "rss": None}
            return self.minute[i]

    def error(self, t, what):
        m = self.m(t)
        with self.lock:
            m["errors"] += 1
            self.errors.append((round(t, 1), what))
            if len(self.errors) <= 20:
                print("ERROR at %.1f s: %s" % (t, what), flush=True)


class Soak:
    def __init__(self, a, srv):
        self.a, self.srv = a, srv
        self.stats = Stats()
        self.t0 = None
        self.stop_at = None
        self.rng = random.Random(a.seed)
        self.server_exit = None

    def now(self):
        return time.monotonic() - self.t0

    # -- simulated agents -----------------------------------------------------

    def body(self, node, walks):
        ts = round(time.time(), 3)
        host = {name: w.next() for (name, _lo, _hi, _d), w in zip(HOST_METRICS, walks[0])}
        samples = [{"ts": ts, "metrics": host}]
        for c in range(self.a.containers):
            mets = {name: w.next() for (name, _lo, _hi, _d), w in zip(CONTAINER_METRICS, walks[1 + c])}
            samples.append({"ts": ts, "container": "app-%d.%d" % (c, 1), "service": "app-%d" % c, "metrics": mets})
        n = len(HOST_METRICS) + self.a.containers * len(CONTAINER_METRICS)
        return json.dumps({"node": node, "samples": samples}, separators=(",", ":")).encode(), n

    async def agent(self, i):
        node = "soak-%03d" % i
        rng = random.Random(self.a.seed * 1000 + i)
        walks = [[Walk(rng, lo, hi, d) for _n, lo, hi, d in HOST_METRICS]]
        walks += [[Walk(rng, lo, hi, d) for _n, lo, hi, d in CONTAINER_METRICS] for _ in range(self.a.containers)]
        interval = self.a.interval
        next_t = self.t0 + interval * i / self.a.agents
        reader = writer = None
        while True:
            delay = next_t - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            if time.monotonic() >= self.stop_at:
                break
            now = time.monotonic()
            # Ticks missed while the last request was in flight are skipped.
            missed = int((now - next_t) // interval)
            if missed > 0:
                self.stats.m(self.now())["late"] += missed
                next_t += missed * interval
            next_t += interval
            body, n = self.body(node, walks)
            req = (b"POST /api/v1/metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                   b"Content-Length: %d\r\n\r\n" % len(body)) + body
            t_send = time.monotonic()
            try:
                if writer is None:
                    reader, writer = await asyncio.open_connection("127.0.0.1", self.srv.port)
                writer.write(req)
                status, answer = await asyncio.wait_for(self.read_answer(reader), self.a.timeout)
            except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, ValueError) as e:
                self.stats.error(self.now(), "%s: push: %s %s" % (node, e.__class__.__name__, e))
                self.stats.unknown_samples += n
                if writer is not None:
                    writer.close()
                reader = writer = None
                continue
            lat = time.monotonic() - t_send
            if status == 200 and answer == b'{"accepted":%d}' % n:
                self.stats.m(t_send - self.t0)["lat"].append(lat)
                self.stats.acked_samples += n
            else:
                self.stats.error(self.now(), "%s: push answered %d %r" % (node, status, answer[:200]))
        if writer is not None:
            writer.close()

    @staticmethod
    async def read_answer(reader):
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        length = 0
        for line in lines[1:]:
            k, _, v = line.partition(":")
            if k.strip().lower() == "content-length":
                length = int(v.strip())
        body = await reader.readexactly(length) if length else b""
        return status, body.strip()

    # -- queries and exports (blocking clients in threads) ---------------------

    def get(self, path, what, ok=(200,)):
        t = self.now()
        t0 = time.monotonic()
        try:
            c = http.client.HTTPConnection("127.0.0.1", self.srv.port, timeout=self.a.timeout * 6)
            c.request("GET", path)
            r = c.getresponse()
            rows = 0
            while True:
                chunk = r.read(1 << 16)
                if not chunk:
                    break
                rows += chunk.count(b"\n")
            c.close()
        except (OSError, http.client.HTTPException) as e:
            self.stats.error(t, "%s: %s %s" % (what, e.__class__.__name__, e))
            return None
        dt = time.monotonic() - t0
        if r.status not in ok:
            self.stats.error(t, "%s: %s answered %d" % (what, path, r.status))
            return None
        return dt, rows

    def query_round(self):
        node = "soak-%03d" % self.rng.randrange(self.a.agents)
        worst = 0.0
        for path, ok in [("/api/v1/nodes", (200,)),
                         ("/api/v1/series?node=%s&metric=cpu&from=-600&step=10" % node, (200,)),
                         ("/api/v1/series?node=%s&metric=cpu&container=app-0.1&from=-300" % node, (200,)),
                         # Too little history for a forecast in the first minutes: 422 is its answer.
                         ("/api/v1/forecast?node=%s&metric=cpu&horizon=300&window=3600" % node, (200, 422)),
                         ("/metrics", (200,)), ("/api/v1/stats", (200,))]:
            r = self.get(path, "query", ok)
            if r:
                worst = max(worst, r[0])
        m = self.stats.m(self.now())
        m["queries"] += 1
        m["query_max"] = max(m["query_max"], worst)

    def export_round(self):
        node = "soak-%03d" % self.rng.randrange(self.a.agents)
        for path in ("/api/v1/export.csv?from=-60", "/api/v1/export.csv?node=%s" % node):
            r = self.get(path, "export")
            if r:
                m = self.stats.m(self.now())
                m["exports"] += 1
                m["export_rows"] += r[1] - 1
                m["export_max"] = max(m["export_max"], r[0])

    async def periodic(self, every, fn):
        next_t = self.t0 + every
        while True:
            await asyncio.sleep(max(0, next_t - time.monotonic()))
            if time.monotonic() >= self.stop_at:
                return
            next_t += every
            await asyncio.to_thread(fn)

    async def sampler(self):
        """RSS every 5 s; the per-minute line when a minute ends."""
        printed = -1
        while time.monotonic() < self.stop_at + 1:
            t = self.now()
            status = self.srv.proc.poll()
            if status is not None:
                self.stats.error(t, "scalecastd exited with status %d (negative: killed by that signal)" % status)
                self.server_exit = status
                self.stop_at = time.monotonic()
                return
            rss = rss_kib(self.srv.proc.pid)
            self.stats.m(t)["rss"] = rss
            self.rss.append((t, rss))
            done = int(t // 60) - 1
            while printed < done:
                printed += 1
                self.print_minute(printed)
            await asyncio.sleep(5)

    def print_minute(self, i):
        m = self.stats.minute.get(i)
        if not m:
            return
        lat = sorted(m["lat"])
        rss = [v for t, v in self.rss if i * 60 <= t < (i + 1) * 60]
        print("minute %2d: %6d pushes, %d late, %d errors, ingest latency p50 %.1f ms p99 %.1f ms max %.1f ms; "
              "%d query rounds (slowest %.0f ms), %d exports (%d rows, slowest %.2f s); RSS %s-%s KiB"
              % (i + 1, len(lat), m["late"], m["errors"], pct(lat, 0.5) * 1e3, pct(lat, 0.99) * 1e3,
                 (lat[-1] if lat else float("nan")) * 1e3, m["queries"], m["query_max"] * 1e3, m["exports"],
                 m["export_rows"], m["export_max"], min(rss, default="?"), max(rss, default="?")), flush=True)

    async def main(self):
        self.t0 = time.monotonic()
        self.stop_at = self.t0 + self.a.duration
        self.rss = [(0.0, rss_kib(self.srv.proc.pid))]
        tasks = [asyncio.create_task(self.agent(i)) for i in range(self.a.agents)]
        tasks.append(asyncio.create_task(self.periodic(self.a.query_every, self.query_round)))
        tasks.append(asyncio.create_task(self.periodic(self.a.export_every, self.export_round)))
        tasks.append(asyncio.create_task(self.sampler()))
        await asyncio.gather(*tasks)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bin", required=True, help="scalecastd")
    ap.add_argument("--duration", type=float, default=600)
    ap.add_argument("--agents", type=int, default=200)
    ap.add_argument("--interval", type=float, default=1.0)
    ap.add_argument("--containers", type=int, default=2, help="containers per simulated node")
    ap.add_argument("--query-every", type=float, default=5.0)
    ap.add_argument("--export-every", type=float, default=60.0)
    ap.add_argument("--timeout", type=float, default=10.0, help="per push")
    ap.add_argument("--max-rss-growth", type=float, default=10.0, help="percent, minute 2 to the last minute")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--keep", action="store_true", help="keep the database directory")
    a = ap.parse_args()
    a.bin = os.path.abspath(a.bin)  # the server runs in its own directory

    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < a.agents + 256:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, a.agents + 1024), hard))
    workdir = tempfile.mkdtemp(prefix="scalecast-soak-")
    srv = srvlib.Server(a.bin, config="[server]\nretention = 7d\n", workdir=workdir)
    srv.start()
    fs = os.statvfs(workdir)
    print("soak: scalecastd pid %d on port %d, database %s (%.0f GiB free); %d agents every %g s with %d containers "
          "each (%d samples/s), queries every %g s, exports every %g s, for %g s"
          % (srv.proc.pid, srv.port, srv.db, fs.f_bavail * fs.f_frsize / 2**30, a.agents, a.interval, a.containers,
             a.agents * (len(HOST_METRICS) + a.containers * len(CONTAINER_METRICS)) / a.interval, a.query_every,
             a.export_every, a.duration), flush=True)
    soak = Soak(a, srv)
    rc = 1
    try:
        asyncio.run(soak.main())
        if soak.server_exit is not None:
            print("soak: scalecastd exited with status %d after %.0f s; its log:\n%s"
                  % (soak.server_exit, soak.now(), srv.log()[-4000:]))
            return 1
        rc = 0
        last = int(a.duration // 60) + 1
        for i in range(last):
            if i in soak.stats.minute and soak.stats.minute[i]["lat"] and (i + 1) * 60 > a.duration:
                soak.print_minute(i)  # the last, partial minute
        st = soak.stats
        s = srv.wait_compacted(120)
        lost = st.acked_samples - s["samples"]
        # RSS: at the start; at the end of minute 1 (ingest and queries
        # only); the median of minute 2 (the first exports have run: every
        # kind of load has touched memory once); the median of the last
        # minute. Growth is measured from minute 2's median to the last
        # minute's, and also printed from the end of minute 1.
        rss0 = soak.rss[0][1]
        rss1 = next((v for t, v in soak.rss if t >= 60), soak.rss[-1][1])
        end_t = soak.rss[-1][0]
        rss_warm = median([v for t, v in soak.rss if 60 <= t < 120]) or rss1
        rss_end = median([v for t, v in soak.rss if t >= end_t - 60])
        rss_max = max(v for _t, v in soak.rss)
        growth = (rss_end - rss_warm) * 100.0 / rss_warm
        growth1 = (rss_end - rss1) * 100.0 / rss1
        p99s = [pct(sorted(m["lat"]), 0.99) for i, m in sorted(st.minute.items()) if len(m["lat"]) > 100]
        alll = sorted(x for m in st.minute.values() for x in m["lat"])
        late = sum(m["late"] for m in st.minute.values())
        print("summary: %d pushes acknowledged, %d samples acknowledged, %d stored (%d missing), %d samples sent "
              "without an answer; %d errors; %d late ticks" % (len(alll), st.acked_samples, s["samples"], lost,
                                                               st.unknown_samples, len(st.errors), late))
        print("summary: ingest latency p50 %.1f ms, p99 %.1f ms, max %.1f ms over the run; per-minute p99 from "
              "%.1f to %.1f ms" % (pct(alll, 0.5) * 1e3, pct(alll, 0.99) * 1e3, (alll[-1] if alll else 0) * 1e3,
                                   min(p99s, default=0) * 1e3, max(p99s, default=0) * 1e3))
        print("summary: RSS %d KiB at start, %d KiB at the end of minute 1, %d KiB in minute 2 (median), %d KiB in "
              "the last minute (median), %d KiB at most: growth %.1f%% from minute 2 (limit %.0f%%), %.1f%% from "
              "the end of minute 1; database %.1f MiB"
              % (rss0, rss1, rss_warm, rss_end, rss_max, growth, a.max_rss_growth, growth1,
                 os.path.getsize(srv.db) / 2**20))
        if st.errors or lost != 0 or growth > a.max_rss_growth:
            rc = 1
        print("RESULT errors=%d lost=%d acked_samples=%d rss_start_kib=%d rss_1min_kib=%d rss_2min_kib=%d "
              "rss_end_kib=%d rss_max_kib=%d rss_growth_pct=%.1f rss_growth_1min_pct=%.1f p50_ms=%.1f p99_ms=%.1f "
              "max_ms=%.1f p99_min_ms=%.1f p99_max_ms=%.1f late=%d"
              % (len(st.errors), lost, st.acked_samples, rss0, rss1, rss_warm, rss_end, rss_max, growth, growth1,
                 pct(alll, 0.5) * 1e3,
                 pct(alll, 0.99) * 1e3, (alll[-1] if alll else 0) * 1e3, min(p99s, default=0) * 1e3,
                 max(p99s, default=0) * 1e3, late))
        if srv.stop() != 0:
            print("scalecastd did not exit cleanly:\n" + srv.log()[-3000:])
            rc = 1
    finally:
        if rc != 0 or sys.exc_info()[0] is not None:
            print("soak: scalecastd log (last 2000 characters):\n%s" % srv.log()[-2000:])
            a.keep = True
        srv.cleanup()  # removes only srvlib's own empty temporary directory
        if a.keep:
            print("kept %s" % workdir)
        else:
            import shutil

            shutil.rmtree(workdir, ignore_errors=True)
    return rc


if __name__ == "__main__":
    sys.exit(main())
