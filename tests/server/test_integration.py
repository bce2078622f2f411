#!/usr/bin/env python3
"""Integration tests of scalecastd: each scenario starts the real binary on a
free loopback port with a temporary database and drives it over HTTP.

  test_integration.py --bin PATH/scalecastd SCENARIO

Exit status 0 when the scenario passes, 1 when a check fails (each failure
is printed), 77 when it cannot run here.
"""

import argparse
import http.client
import json
import math
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import srvlib  # noqa: E402

BIN = None
SANITIZED = False  # built with -DSANITIZE: memory figures are not meaningful
FAILURES = []
HEADER = "ts,node,container,service,metric,value"
# Sample times a day in the past, on a minute boundary: recent enough that
# the default retention (7 days) keeps them across restarts.
BASE = float(int(time.time()) // 60 * 60 - 86400)


def check(cond, msg):
    if not cond:
        FAILURES.append(msg)
        print("FAIL: " + msg, flush=True)
    return cond


def note(msg):
    print(msg, flush=True)


def server(config=None, args=()):
    return srvlib.Server(BIN, config=config, args=args)


def fmt(v):
    """The server's CSV number format: the shortest repr that reads back."""
    return repr(float(v)) if not float(v).is_integer() else "%d" % v


# ---------------------------------------------------------------------------
# push / query / export


def scenario_roundtrip():
    base = BASE
    node_a = {
        "node": "node-a",
        "samples": [
            {"ts": base + i, "metrics": {"cpu": 37.5 + i, "mem": 61.2, "odd": 0.1 + 0.2}} for i in range(10)
        ]
        + [
            {"ts": base + i + 0.25, "container": "web.1", "service": "web", "metrics": {"cpu": 12.0 + i}}
            for i in range(5)
        ],
    }
    node_b = {"node": "node-b", "samples": [{"ts": base + 3, "metrics": {"cpu": -4.5, "disk_read_bps": 1e15}}]}
    with server() as srv:
        r = srv.push(node_a)
        check(r.status == 200 and r.json() == {"accepted": 35}, "push node-a: %r" % r)
        r = srv.push([node_b])
        check(r.status == 200 and r.json() == {"accepted": 2}, "push node-b (relay array): %r" % r)

        q = "/api/v1/series?node=node-a&metric=cpu&from=%d&to=%d" % (base - 10, base + 100)
        pts = srv.get_json(q)["points"]
        check(pts == [[base + i, 37.5 + i] for i in range(10)], "series node-a cpu: %r" % pts)
        pts = srv.get_json(q + "&container=web.1")["points"]
        check(pts == [[base + i + 0.25, 12.0 + i] for i in range(5)], "series node-a web.1 cpu: %r" % pts)
        pts = srv.get_json("/api/v1/series?node=node-a&metric=cpu&from=%r&to=%r" % (base + 2, base + 4))["points"]
        check([p[0] for p in pts] == [base + 2, base + 3, base + 4], "from/to are inclusive: %r" % pts)
        r = srv.request("GET", "/api/v1/series?node=node-a&metric=nope")
        check(r.status == 404, "unknown series: %r" % r)

        nodes = srv.get_json("/api/v1/nodes")["nodes"]
        check([n["node"] for n in nodes] == ["node-a", "node-b"], "nodes: %r" % nodes)
        a = nodes[0]
        check(a["last_seen"] == base + 9, "node-a last_seen: %r" % a)
        check(a["metrics"] == {"cpu": 46.5, "mem": 61.2, "odd": 0.1 + 0.2}, "node-a latest values: %r" % a["metrics"])
        check(
            len(a["containers"]) == 1
            and a["containers"][0]["container"] == "web.1"
            and a["containers"][0]["service"] == "web"
            and a["containers"][0]["metrics"] == {"cpu": 16.0},
            "node-a containers: %r" % a["containers"],
        )
        check(nodes[1]["metrics"] == {"cpu": -4.5, "disk_read_bps": 1e15}, "node-b: %r" % nodes[1])

        expected = []
        for s in node_a["samples"]:
            for m, v in s["metrics"].items():
                expected.append((s["ts"], "node-a", s.get("container", ""), s.get("service", ""), m, v))
        for s in node_b["samples"]:
            for m, v in s["metrics"].items():
                expected.append((s["ts"], "node-b", "", "", m, v))
        expected.sort(key=lambda e: (e[1], e[2], e[4], e[0]))

        def check_export(srv, what):
            header, rows = srv.export_rows("?from=%d&to=%d" % (base - 10, base + 100))
            check(header == HEADER, "%s: CSV header %r" % (what, header))
            got = [(float(r[0]), r[1], r[2], r[3], r[4], float(r[5])) for r in rows]
            check(got == expected, "%s: CSV rows differ:\n%r\nexpected\n%r" % (what, got[:8], expected[:8]))
            texts = {(r[1], r[4], r[5]) for r in rows}
            check(("node-a", "mem", "61.2") in texts, "%s: 61.2 is written as %r" % (what, [t for t in texts if t[1] == "mem"][:1]))
            check(("node-a", "odd", "0.30000000000000004") in texts, "%s: 0.1+0.2 round-trips" % what)

        check_export(srv, "export")
        _, rows = srv.export_rows("?node=node-b&from=%d&to=%d" % (base - 10, base + 100))
        check(sorted(r[4] for r in rows) == ["cpu", "disk_read_bps"], "export node=node-b: %r" % rows)
        _, rows = srv.export_rows("?metric=cpu&from=%r&to=%r" % (base + 1, base + 2))
        check(
            sorted((r[1], r[2], float(r[0])) for r in rows)
            == [("node-a", "", base + 1), ("node-a", "", base + 2), ("node-a", "web.1", base + 1.25)],
            "export metric=cpu in [base+1, base+2]: %r" % rows,
        )
        _, rows = srv.export_rows("?node=nobody")
        check(rows == [], "export of an unknown node is just the header: %r" % rows)

        rc = srv.restart()
        check(rc == 0, "exit status after SIGTERM: %r" % rc)
        check_export(srv, "export after restart")
        nodes2 = srv.get_json("/api/v1/nodes")["nodes"]
        for n in nodes + nodes2:
            # State and receive time are about this run of the server: after
            # a restart they start again from the samples' own times.
            n.pop("state", None)
            n.pop("last_received", None)
        check(nodes2 == nodes, "nodes after restart: %r\nbefore: %r" % (nodes2, nodes))


def scenario_series_step():
    base = BASE
    samples = [{"ts": base + i, "metrics": {"cpu": float(i)}} for i in range(120)]
    with server() as srv:
        check(srv.push({"node": "n", "samples": samples}).status == 200, "push")
        q = "/api/v1/series?node=n&metric=cpu&from=%d&to=%d" % (base, base + 200)
        doc = srv.get_json(q + "&step=60")
        check(doc.get("step") == 60, "step echoed: %r" % doc.get("step"))
        check(doc["points"] == [[base, 29.5], [base + 60, 89.5]], "avg buckets: %r" % doc["points"])
        check(doc.get("max") == [[base, 59.0], [base + 60, 119.0]], "max buckets: %r" % doc.get("max"))
        # Buckets are aligned to multiples of step, not to the first point.
        doc = srv.get_json("/api/v1/series?node=n&metric=cpu&from=%d&to=%d&step=50" % (base + 10, base + 200))
        want = []
        for b0 in sorted({math.floor((base + i) / 50) * 50 for i in range(10, 120)}):
            vals = [float(i) for i in range(10, 120) if b0 <= base + i < b0 + 50]
            want.append([b0, sum(vals) / len(vals)])
        check(doc["points"] == want, "step=50 buckets: %r, expected %r" % (doc["points"], want))
        check(len(doc["points"]) == len(doc["max"]), "as many max as avg buckets")
        raw = srv.get_json(q)["points"]
        check(len(raw) == 120, "without step: 120 raw points, got %d" % len(raw))


def scenario_series_step_huge_values():
    """Averages of large finite values must not overflow into a missing
    bucket (sum/count overflows; a running mean does not)."""
    base = BASE
    samples = [{"ts": base + i, "metrics": {"cpu": 1.5e308}} for i in range(3)]
    with server() as srv:
        check(srv.push({"node": "n", "samples": samples}).status == 200, "push")
        doc = srv.get_json("/api/v1/series?node=n&metric=cpu&from=%d&to=%d&step=60" % (base, base + 60))
        check(doc["points"] == [[base, 1.5e308]], "avg bucket of 1.5e308 values: %r" % doc["points"])
        check(doc.get("max") == [[base, 1.5e308]], "max bucket: %r" % doc.get("max"))


# ---------------------------------------------------------------------------
# nodes


def node_state(srv, name):
    for n in srv.get_json("/api/v1/nodes")["nodes"]:
        if n["node"] == name:
            return n["state"]
    return None


def scenario_nodes_stale():
    with server("[server]\nstale_after = 1s\n") as srv:
        doc = srv.get_json("/api/v1/nodes")
        check(doc == {"nodes": [], "stale_after": 1.0}, "no nodes yet: %r" % doc)
        check(srv.push({"node": "a", "samples": [{"ts": time.time(), "metrics": {"cpu": 1}}]}).status == 200, "push a")
        check(srv.push({"node": "b", "samples": [{"ts": time.time(), "metrics": {"cpu": 1}}]}).status == 200, "push b")
        check(node_state(srv, "a") == "up", "a is up after a push: %r" % node_state(srv, "a"))
        time.sleep(1.6)
        check(srv.push({"node": "b", "samples": [{"ts": time.time(), "metrics": {"cpu": 2}}]}).status == 200, "push b")
        check(node_state(srv, "a") == "stale", "a is stale after 1.6 s of silence: %r" % node_state(srv, "a"))
        check(node_state(srv, "b") == "up", "b kept pushing and is up: %r" % node_state(srv, "b"))
        check(srv.push({"node": "a", "samples": [{"ts": time.time(), "metrics": {"cpu": 3}}]}).status == 200, "push a")
        check(node_state(srv, "a") == "up", "a is up again: %r" % node_state(srv, "a"))


def scenario_nodes_up_uses_receive_time():
    """A node that is pushing right now is up, even when its samples are old
    (an agent replaying its spool after an outage, or a clock behind)."""
    with server("[server]\nstale_after = 60s\n") as srv:
        old = time.time() - 600
        r = srv.push({"node": "replay", "samples": [{"ts": old + i, "metrics": {"cpu": 1}} for i in range(10)]})
        check(r.status == 200, "push: %r" % r)
        check(node_state(srv, "replay") == "up", "a node that just pushed is %r, expected up" % node_state(srv, "replay"))


# ---------------------------------------------------------------------------
# idempotent retries


def scenario_resend_stored_once():
    base = BASE
    batch = {"node": "n", "samples": [{"ts": base + i, "container": "c.1", "metrics": {"cpu": i, "mem": 2 * i}} for i in range(50)]}
    with server() as srv:
        for attempt in range(3):
            r = srv.push(batch)
            check(r.status == 200 and r.json()["accepted"] == 100, "push %d: %r" % (attempt, r))
        changed = json.loads(json.dumps(batch))
        changed["samples"][49]["metrics"]["cpu"] = 999
        check(srv.push(changed).status == 200, "re-send with a changed value")
        q = "/api/v1/series?node=n&metric=cpu&container=c.1&from=%d&to=%d" % (base - 1, base + 100)
        pts = srv.get_json(q)["points"]
        check(len(pts) == 50, "50 points after 4 sends, got %d" % len(pts))
        check(pts[-1] == [base + 49, 999], "the last send's value wins: %r" % pts[-1])
        s = srv.wait_compacted()
        check(s["samples"] == 100, "stats samples after compaction: %d, expected 100" % s["samples"])
        check(s["samples_committed"] == 400, "samples_committed counts acknowledged: %r" % s)
        check(srv.restart() == 0, "clean exit")
        header, rows = srv.export_rows("?from=%d&to=%d" % (base - 1, base + 100))
        check(len(rows) == 100 and len(set(rows)) == 100, "export after restart: %d rows" % len(rows))
        check(srv.get_json(q)["points"] == pts, "same points after restart")
        check(srv.stats()["samples"] == 100, "stats after restart")


# ---------------------------------------------------------------------------
# durability under SIGTERM and SIGKILL


class Pusher(threading.Thread):
    """Pushes unique batches over one keep-alive connection until stopped or
    the server goes away. Records which samples were acknowledged (200) and
    which were sent without an answer."""

    def __init__(self, srv, index, per_batch=100, metrics=4):
        super().__init__(daemon=True)
        self.srv, self.index, self.per_batch, self.metrics = srv, index, per_batch, metrics
        self.acked = set()
        self.unknown = set()
        self.refused = 0
        self.other = []
        self.stop = threading.Event()
        self.batches = 0

    def run(self):
        node = "p%d" % self.index
        conn = None
        seq = 0
        while not self.stop.is_set():
            keys = []
            samples = []
            for _ in range(self.per_batch):
                ts = BASE + seq * 0.5
                seq += 1
                samples.append({"ts": ts, "metrics": {"m%d" % k: seq + k for k in range(self.metrics)}})
                keys += [(ts, node, "m%d" % k) for k in range(self.metrics)]
            try:
                if conn is None:
                    conn = self.srv.conn(timeout=30)
                r = self.srv.push({"node": node, "samples": samples}, conn=conn)
            except (OSError, http.client.HTTPException) as e:
                self.unknown.update(keys)
                if isinstance(e, ConnectionRefusedError):
                    self.refused += 1
                    break
                conn = None
                time.sleep(0.01)
                if self.refused or self.srv.proc is None or self.srv.proc.poll() is not None:
                    break
                continue
            if r.status == 200:
                self.acked.update(keys)
                self.batches += 1
            else:
                self.other.append(r.status)
                if r.status not in (500, 503):
                    self.unknown.update(keys)
                break
        if conn is not None:
            conn.close()


def stored_rows(srv):
    header, rows = srv.export_rows("?from=%d&to=%d" % (BASE - 1, BASE + 86400))
    check(header == HEADER, "export header %r" % header)
    return rows


def check_durable(srv, pushers, what):
    rows = stored_rows(srv)
    keys = [(float(r[0]), r[1], r[4]) for r in rows]
    unique = set(keys)
    check(len(keys) == len(unique), "%s: %d duplicate rows in the export" % (what, len(keys) - len(unique)))
    acked = set().union(*(p.acked for p in pushers))
    unknown = set().union(*(p.unknown for p in pushers))
    missing = acked - unique
    check(not missing, "%s: %d acknowledged samples missing, e.g. %r" % (what, len(missing), sorted(missing)[:3]))
    extra = unique - acked - unknown
    check(not extra, "%s: %d stored samples that were never sent: %r" % (what, len(extra), sorted(extra)[:3]))
    s = srv.wait_compacted()
    check(s["samples"] == len(unique), "%s: stats samples %d, export rows %d" % (what, s["samples"], len(unique)))
    note("%s: %d samples acknowledged, %d sent without an answer, %d stored" % (what, len(acked), len(unknown - acked), len(unique)))
    return len(acked)


def scenario_sigterm_inflight():
    with server() as srv:
        pushers = [Pusher(srv, i) for i in range(4)]
        for p in pushers:
            p.start()
        time.sleep(1.0)
        t0 = time.monotonic()
        srv.proc.send_signal(signal.SIGTERM)
        try:
            rc = srv.proc.wait(15)
        except subprocess.TimeoutExpired:
            rc = None
        took = time.monotonic() - t0
        srv.proc = None if rc is not None else srv.proc
        check(rc == 0, "exit status after SIGTERM under load: %r" % rc)
        note("stopped %.2f s after SIGTERM" % took)
        for p in pushers:
            p.stop.set()
            p.join(10)
        check(all(not p.is_alive() for p in pushers), "pushers finished")
        check("stopped cleanly" in srv.log(), "log says it stopped cleanly")
        check(sum(p.batches for p in pushers) > 10, "pushed something before the signal")
        srv.start()
        n = check_durable(srv, pushers, "after SIGTERM")
        check(n > 0, "some samples were acknowledged")


def scenario_kill9_sustained():
    with server() as srv:
        pushers = [Pusher(srv, i) for i in range(4)]
        for p in pushers:
            p.start()
        time.sleep(1.5)
        rc = srv.kill9()
        check(rc == -signal.SIGKILL, "killed: %r" % rc)
        for p in pushers:
            p.stop.set()
            p.join(10)
        srv.start()
        check_durable(srv, pushers, "after kill -9")
        # And again: a second crash right after recovery loses nothing either.
        pushers2 = [Pusher(srv, i + 10) for i in range(2)]
        for p in pushers2:
            p.start()
        time.sleep(0.5)
        srv.kill9()
        for p in pushers2:
            p.stop.set()
            p.join(10)
        srv.start()
        check_durable(srv, pushers + pushers2, "after a second kill -9")
        check(srv.restart() == 0, "clean exit after recovery")


def scenario_sigterm_locked_database():
    """Another process holds the database's write lock. Pushes are still
    acknowledged (the journal takes them; only compaction waits for the
    lock). SIGTERM while an export keeps the server draining: a push on a
    kept-alive connection is refused with 503, not queued, and once the
    export is read the server exits 0 promptly even though its compactor is
    blocked by the lock. After a restart with the lock released, every
    acknowledged sample is there."""
    import sqlite3

    n_ts, n_series = 20000, 10
    with server() as srv:
        c2 = srv.conn(timeout=5)
        check(srv.request("GET", "/healthz", conn=c2).status == 200, "keep-alive connection")
        lock = sqlite3.connect(srv.db, timeout=0, isolation_level=None)
        lock.execute("BEGIN IMMEDIATE")
        t0 = time.monotonic()
        for k in range(n_series):
            samples = [{"ts": BASE + i, "metrics": {"m%d" % k: i}} for i in range(n_ts)]
            r = srv.push({"node": "big", "samples": samples})
            check(r.status == 200, "push %d while the database is locked: %r" % (k, r))
        check(time.monotonic() - t0 < 8, "pushes acknowledged without waiting for the lock (%.1f s)" % (time.monotonic() - t0))
        sock = socket.create_connection(("127.0.0.1", srv.port), timeout=30)
        sock.sendall(b"GET /api/v1/export.csv?from=%d&to=%d HTTP/1.1\r\nHost: x\r\n\r\n" % (BASE - 1, BASE + 86400))
        first = sock.recv(65536)
        check(first.startswith(b"HTTP/1.1 200"), "export started: %r" % first[:100])
        srv.proc.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        try:
            r = srv.push({"node": "b", "samples": [{"ts": BASE, "metrics": {"cpu": 2}}]}, conn=c2)
            check(r.status == 503, "a push after SIGTERM on a kept-alive connection: %r, expected 503" % r)
        except (OSError, http.client.HTTPException) as e:
            check(False, "a push after SIGTERM on a kept-alive connection got no answer (%s), expected 503" % e)
        rows = 0
        while True:
            b = sock.recv(1 << 20)
            if not b:
                break
            rows += b.count(b"\n")
            if b.endswith(b"0\r\n\r\n"):
                break
        sock.close()
        check(rows >= n_ts * n_series, "the export in flight was finished: %d lines" % rows)
        t1 = time.monotonic()
        try:
            rc = srv.proc.wait(8)
        except subprocess.TimeoutExpired:
            rc = "still running 8 s after the export"
        check(rc == 0, "exit status after SIGTERM with the database locked: %r" % rc)
        if rc != 0:
            print(srv.log()[-2500:])
        srv.proc = None
        note("exited %.1f s after the export ended, the lock still held" % (time.monotonic() - t1))
        lock.execute("ROLLBACK")
        lock.close()
        c2.close()
        srv.start()
        s = srv.wait_compacted()
        check(s["samples"] == n_ts * n_series, "samples after restart: %d, expected %d" % (s["samples"], n_ts * n_series))


def scenario_sigterm_export():
    """SIGTERM while a large CSV export is being read: new connections are
    refused, the export is finished whole, then the server exits 0."""
    n_ts, n_series = 20000, 10
    with server() as srv:
        base = BASE
        for k in range(n_series):
            samples = [{"ts": base + i, "metrics": {"m%d" % k: i}} for i in range(n_ts)]
            check(srv.push({"node": "big", "samples": samples}).status == 200, "push %d" % k)
        sock = socket.create_connection(("127.0.0.1", srv.port), timeout=30)
        sock.sendall(b"GET /api/v1/export.csv?from=%d&to=%d HTTP/1.1\r\nHost: x\r\n\r\n" % (BASE - 1, BASE + 86400))
        first = sock.recv(65536)
        check(first.startswith(b"HTTP/1.1 200"), "export started: %r" % first[:100])
        srv.proc.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        check(srv.proc.poll() is None, "server waits for the export in flight")
        try:
            c = socket.create_connection(("127.0.0.1", srv.port), timeout=2)
            c.close()
            check(False, "a new connection was accepted after SIGTERM")
        except OSError:
            pass
        chunks = [first]
        while True:
            b = sock.recv(1 << 20)
            if not b:
                break
            chunks.append(b)
            if b.endswith(b"0\r\n\r\n"):
                break
        sock.close()
        _, _, body = srvlib.parse_response(b"".join(chunks))
        lines = body.decode().split("\n")
        check(lines[0] == HEADER, "header %r" % lines[0])
        check(len(lines) - 2 == n_ts * n_series, "export rows %d, expected %d" % (len(lines) - 2, n_ts * n_series))
        try:
            rc = srv.proc.wait(15)
        except subprocess.TimeoutExpired:
            rc = None
        check(rc == 0, "exit status: %r" % rc)
        srv.proc = None


# ---------------------------------------------------------------------------
# tokens and listening


def scenario_tokens():
    cfg = "[server]\ningest_token = ing-secret\nread_token = read-secret\nadmin_token = admin-secret\n"
    ING, READ, ADMIN = ("Bearer ing-secret", "Bearer read-secret", "Bearer admin-secret")
    batch = {"node": "n", "samples": [{"ts": 1732170000, "metrics": {"cpu": 1}}]}
    with server(cfg) as srv:
        def push(auth, ts=1732170000):
            b = json.loads(json.dumps(batch))
            b["samples"][0]["ts"] = ts
            return srv.push(b, headers={"Authorization": auth} if auth else None)

        for auth in (None, "Bearer wrong", READ, "Bearer ing-secre", "Bearer ing-secretX", "ing-secret", "Basic aW5nOnNlY3JldA=="):
            r = push(auth)
            check(r.status == 401, "ingest with %r: %r" % (auth, r))
            check(r.error() is not None, "401 has a JSON error: %r" % r)
            check("bearer" in r.headers.get("www-authenticate", "").lower(), "401 says WWW-Authenticate: %r" % r.headers)
        for i, auth in enumerate((ING, ADMIN, "bearer ing-secret", "Token ing-secret")):
            r = push(auth, 1732170001 + i)
            check(r.status == 200, "ingest with %r: %r" % (auth, r))

        reads = ["/api/v1/nodes", "/api/v1/stats", "/api/v1/series?node=n&metric=cpu&from=1732160000&to=1732180000",
                 "/api/v1/export.csv", "/metrics", "/api/v1/decisions", "/api/v1/decisions.csv", "/api/v1/services",
                 "/api/v1/forecast?node=n&metric=cpu"]
        for path in reads:
            for auth in (None, "Bearer nope", ING):
                r = srv.request("GET", path, headers={"Authorization": auth} if auth else {})
                check(r.status == 401, "GET %s with %r: %r" % (path, auth, r))
                check(b"1732170" not in r.body, "401 leaks no data: %r" % r)
            for auth in (READ, ADMIN):
                r = srv.request("GET", path, headers={"Authorization": auth})
                check(r.status in (200, 422), "GET %s with %r: %r" % (path, auth, r))
        r = srv.request("GET", "/healthz")
        check(r.status == 200, "/healthz is open: %r" % r)
        s = srv.stats({"Authorization": READ})
        check(s["samples"] == 4, "only the authorized pushes were stored: %r" % s)

    with server("[server]\nadmin_token = only-admin\n") as srv:
        check(srv.push(batch).status == 401, "admin token only: ingest needs it")
        check(srv.request("GET", "/api/v1/nodes").status == 401, "admin token only: reads need it")
        check(srv.push(batch, headers={"Authorization": "Bearer only-admin"}).status == 200, "admin ingest")
        check(srv.request("GET", "/api/v1/nodes", headers={"Authorization": "Bearer only-admin"}).status == 200, "admin read")
        check(srv.request("GET", "/healthz").status == 200, "healthz open")

    with server("[server]\ningest_token = only-ingest\n") as srv:
        check(srv.push(batch).status == 401, "ingest token only: ingest needs it")
        check(srv.request("GET", "/api/v1/nodes").status == 200, "ingest token only: reads are open")


def run_briefly(args, timeout=3.0):
    """Runs scalecastd expected to exit on its own; returns (rc, stderr)."""
    p = subprocess.Popen([BIN] + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        out, err = p.communicate(timeout=timeout)
        return p.returncode, (out + err).decode(errors="replace")
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
        return None, (out + err).decode(errors="replace")


def scenario_listen_refused():
    tmp = srvlib.Server(BIN)
    db = tmp.db
    try:
        for host in ("0.0.0.0", "[::]"):
            rc, err = run_briefly(["--listen", "%s:%d" % (host, srvlib.free_port()), "--db", db])
            check(rc not in (0, None), "listen %s without tokens: exit %r" % (host, rc))
            check("refusing to listen" in err and "token" in err, "the refusal says why: %r" % err[-300:])
        rc, err = run_briefly(["--listen", "nocolon", "--db", db])
        check(rc not in (0, None) and "HOST:PORT" in err, "bad listen address: %r %r" % (rc, err[-200:]))
        tmp.cleanup()

        # Allowed with a token, or with allow_unauthenticated.
        for cfg in ("[server]\ningest_token = x\nread_token = y\n", "[server]\nallow_unauthenticated = true\n"):
            srv = srvlib.Server(BIN, config=cfg)
            try:
                srv.port = srvlib.free_port()
                path = os.path.join(srv.dir, "c.conf")
                with open(path, "w") as f:
                    f.write(cfg)
                log = open(srv.log_path, "ab")
                srv.proc = subprocess.Popen([BIN, "--config", path, "--listen", "0.0.0.0:%d" % srv.port, "--db", srv.db], stdout=log, stderr=log)
                log.close()
                ok = False
                for _ in range(200):
                    try:
                        ok = srv.request("GET", "/healthz", timeout=1).status == 200
                        break
                    except OSError:
                        if srv.proc.poll() is not None:
                            break
                        time.sleep(0.02)
                check(ok, "0.0.0.0 with %r starts: %s" % (cfg, srv.log()[-300:]))
                check(srv.stop() == 0, "and stops cleanly")
            finally:
                srv.cleanup()
    finally:
        tmp.cleanup()


def scenario_config_errors():
    tmpdir = srvlib.Server(BIN)
    try:
        d = tmpdir.dir
        port = srvlib.free_port()
        db = os.path.join(d, "x.db")
        cases = [
            ("unknown_key.conf", "[server]\nlisten = 127.0.0.1:%d\nmax_bodysize = 1MiB\n" % port, 3, "max_bodysize"),
            ("bad_value.conf", "# comment\n[server]\n\nretention = forever\n", 4, "retention"),
            ("bad_size.conf", "[server]\nmax_body_size = 8 parsecs\n", 2, "max_body_size"),
            ("bad_bool.conf", "[server]\nallow_unauthenticated = maybe\n", 2, "allow_unauthenticated"),
            ("unknown_section.conf", "; a comment\n[srever]\nlisten = 127.0.0.1:1\n", 2, "srever"),
            ("outside.conf", "listen = 127.0.0.1:1\n[server]\n", 1, "listen"),
            ("syntax.conf", "[server]\nlisten = 127.0.0.1:1\nthis line has no equals sign\n", 3, None),
            ("unknown_autoscaler_key.conf", "[server]\n[autoscaler]\ntick = 5s\ntik = 5s\n", 4, "tik"),
            ("bad_stale.conf", "[server]\nstale_after = -5s\n", 2, "stale_after"),
            ("duplicate_service.conf", "[service web]\n[service web]\n", 2, "web"),
        ]
        for name, text, line, key in cases:
            path = os.path.join(d, name)
            with open(path, "w") as f:
                f.write(text)
            rc, err = run_briefly(["--config", path, "--db", db, "--listen", "127.0.0.1:%d" % port])
            check(rc == 2, "%s: exit status %r, expected 2 (%s)" % (name, rc, err.strip()[-200:]))
            check("%s:%d" % (path, line) in err, "%s: message names %s:%d: %r" % (name, path, line, err.strip()[-300:]))
            if key:
                check(key in err, "%s: message names %r: %r" % (name, key, err.strip()[-300:]))
            note("%s -> %s" % (name, err.strip().splitlines()[-1] if err.strip() else "(nothing)"))
        missing = os.path.join(d, "does-not-exist.conf")
        rc, err = run_briefly(["--config", missing, "--db", db])
        check(rc == 2 and missing in err, "missing config file: %r %r" % (rc, err[-200:]))
        rc, err = run_briefly(["--log-level", "loud", "--db", db])
        check(rc == 2 and "loud" in err, "bad --log-level: %r %r" % (rc, err[-200:]))
        rc, err = run_briefly(["--bogus-flag"])
        check(rc == 2, "unknown flag: exit %r" % rc)
        rc, err = run_briefly(["--help"])
        check(rc == 0 and "--config" in err, "--help: %r" % rc)
        check(not os.path.exists(db), "no database was created by refused starts")
    finally:
        tmpdir.cleanup()


def scenario_config_duplicate_key():
    """A key given twice in [server] is a mistake in a hand-edited file
    ([service NAME] sections already refuse it): an error naming the line."""
    tmp = srvlib.Server(BIN)
    try:
        path = os.path.join(tmp.dir, "dup.conf")
        with open(path, "w") as f:
            f.write("[server]\nretention = 7d\nstale_after = 60s\nretention = 1d\n")
        rc, err = run_briefly(["--config", path, "--db", tmp.db, "--listen", "127.0.0.1:%d" % srvlib.free_port()])
        check(rc == 2, "duplicate key: exit status %r, expected 2 (%s)" % (rc, err.strip()[-200:]))
        check("%s:4" % path in err and "retention" in err, "message names %s:4 and the key: %r" % (path, err.strip()[-300:]))
    finally:
        tmp.cleanup()


# ---------------------------------------------------------------------------
# a million rows


def scenario_export_million():
    n_nodes, n_metrics, n_ts = 100, 10, 1000  # 1,000,000 samples
    base = int(time.time()) - 2 * n_ts
    with server() as srv:
        t0 = time.monotonic()
        bodies = []
        for node in range(0, n_nodes, 2):
            docs = []
            for k in (node, node + 1):
                docs.append({"node": "node%03d" % k, "samples": [
                    {"ts": base + i, "metrics": {"m%d" % m: (i * 7 + m) % 1000 / 10 for m in range(n_metrics)}}
                    for i in range(n_ts)]})
            bodies.append(json.dumps(docs).encode())
        gen = time.monotonic() - t0
        errors = []

        def send(part):
            conn = srv.conn(timeout=120)
            for body in part:
                r = srv.request("POST", "/api/v1/metrics", body, {"Content-Type": "application/json"}, conn=conn)
                if r.status != 200 or r.json()["accepted"] != 2 * n_ts * n_metrics:
                    errors.append(r)
            conn.close()

        t0 = time.monotonic()
        threads = [threading.Thread(target=send, args=(bodies[i::2],)) for i in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        ingest = time.monotonic() - t0
        check(not errors, "ingest errors: %r" % errors[:3])
        total = n_nodes * n_metrics * n_ts
        note("ingested %d samples in %.2f s (%.0f samples/s; %.1f s to build the JSON)" % (total, ingest, total / ingest, gen))
        s = srv.stats()
        check(s["samples"] >= total, "stats after ingest: %r" % s)
        del bodies

        rss0 = srv.rss_kib()
        peak = [rss0]
        done = threading.Event()

        def sample_rss():
            while not done.is_set():
                try:
                    peak[0] = max(peak[0], srv.rss_kib())
                except (OSError, RuntimeError):
                    break
                time.sleep(0.02)

        sampler = threading.Thread(target=sample_rss)
        sampler.start()
        t0 = time.monotonic()
        c = srv.conn(timeout=300)
        c.request("GET", "/api/v1/export.csv?from=%d&to=%d" % (base - 1, base + n_ts + 1))
        r = c.getresponse()
        check(r.status == 200, "export status %d" % r.status)
        head = r.read(1 << 16)
        time.sleep(1.0)  # a slow reader: the server must not buffer the rest
        rows = head.count(b"\n")
        first_lines = head.split(b"\n")[:3]
        nbytes = len(head)
        while True:
            b = r.read(1 << 20)
            if not b:
                break
            rows += b.count(b"\n")
            nbytes += len(b)
        took = time.monotonic() - t0
        done.set()
        sampler.join()
        c.close()
        check(first_lines[0].decode() == HEADER, "header: %r" % first_lines[0])
        check(first_lines[1].decode().split(",")[1:5] == ["node000", "", "", "m0"], "first row: %r" % first_lines[1])
        check(rows - 1 == total, "export rows %d, expected %d" % (rows - 1, total))
        growth = (peak[0] - rss0) / 1024
        note("exported %d rows (%.1f MB) in %.2f s; server RSS %.1f MB before, peak %.1f MB (+%.1f MB)"
             % (rows - 1, nbytes / 1e6, took, rss0 / 1024, peak[0] / 1024, growth))
        if SANITIZED:
            note("sanitizer build: RSS growth not checked (ASan's quarantine keeps freed memory)")
        else:
            check(growth < 64, "RSS grew by %.1f MB during the export (limit 64 MB)" % growth)


# ---------------------------------------------------------------------------
# /metrics, /healthz


LABEL = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\["\\n])*"'
SAMPLE_RE = re.compile(
    r"^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)"
    r"(?:\{(?P<labels>" + LABEL + r"(?:," + LABEL + r")*)?\})?"
    r" (?P<value>-?[0-9.]+(?:[eE][+-]?[0-9]+)?|NaN|\+Inf|-Inf)(?: -?[0-9]+)?$"
)


def parse_exposition(text):
    """Checks the Prometheus text format line by line; returns
    {name: [(labels text, value)]} and {family: type}."""
    types, helps, samples = {}, set(), {}
    check(text.endswith("\n"), "exposition ends with a newline")
    for n, line in enumerate(text.split("\n")[:-1], 1):
        if line.startswith("# HELP "):
            name = line.split(" ")[2]
            check(name not in helps, "line %d: second HELP for %s" % (n, name))
            helps.add(name)
        elif line.startswith("# TYPE "):
            parts = line.split(" ")
            check(len(parts) == 4 and parts[3] in ("counter", "gauge", "summary", "histogram", "untyped"), "line %d: %r" % (n, line))
            check(parts[2] not in types, "line %d: second TYPE for %s" % (n, parts[2]))
            check(parts[2] not in samples, "line %d: TYPE after samples of %s" % (n, parts[2]))
            types[parts[2]] = parts[3]
        elif line.startswith("#"):
            continue
        else:
            m = SAMPLE_RE.match(line)
            if not check(m is not None, "line %d is not a valid sample: %r" % (n, line)):
                continue
            name = m.group("name")
            family = re.sub(r"_(sum|count|bucket|total)$", "", name)
            check(name in types or family in types, "line %d: %s has no TYPE" % (n, name))
            value = float(m.group("value").replace("Inf", "inf"))
            samples.setdefault(name, []).append((m.group("labels") or "", value))
    return samples, types


def scenario_metrics_format():
    with server() as srv:
        batch = {"node": "node-a", "samples": [
            {"ts": 1732170000, "metrics": {"cpu": 37.5, "mem": 1e-9}},
            {"ts": 1732170001, "container": "web.1", "service": "web", "metrics": {"cpu": -2}}]}
        check(srv.push(batch).status == 200, "push")
        srv.push("not json")
        srv.request("GET", "/nowhere")
        r = srv.request("GET", "/metrics")
        check(r.status == 200, "/metrics: %r" % r)
        check(r.headers.get("content-type", "").startswith("text/plain; version=0.0.4"), "content type %r" % r.headers.get("content-type"))
        text = r.body.decode()
        samples, types = parse_exposition(text)
        codes = {lab: v for lab, v in samples.get("scalecast_http_requests_total", [])}
        check(codes.get('code="400"', 0) >= 1 and codes.get('code="404"', 0) >= 1 and codes.get('code="200"', 0) >= 2,
              "requests by code: %r" % codes)
        check(types.get("scalecast_http_requests_total") == "counter", "requests counter type")
        check(samples.get("scalecast_samples_ingested_total") == [("", 3.0)], "samples ingested: %r" % samples.get("scalecast_samples_ingested_total"))
        check("scalecast_commit_seconds_sum" in samples and "scalecast_commit_seconds_count" in samples, "commit latency")
        series = dict(samples.get("scalecast_series_value", []))
        check(series.get('node="node-a",metric="cpu"') == 37.5, "series value cpu: %r" % series)
        check(series.get('node="node-a",metric="mem"') == 1e-9, "series value mem: %r" % series)
        check(series.get('node="node-a",metric="cpu",container="web.1",service="web"') == -2, "container series: %r" % series)
        promtool = shutil.which("promtool")
        if promtool:
            p = subprocess.run([promtool, "check", "metrics"], input=r.body, capture_output=True, timeout=30)
            out = (p.stdout + p.stderr).decode(errors="replace")
            check(p.returncode == 0, "promtool check metrics: rc %d: %s" % (p.returncode, out))
            note("promtool check metrics: rc %d %s" % (p.returncode, out.strip()))
        else:
            note("promtool not installed: format checked by this script only")


def scenario_healthz():
    with server() as srv:
        r = srv.request("GET", "/healthz")
        check(r.status == 200 and r.json() == {"status": "ok"}, "/healthz: %r" % r)
        r = srv.request("HEAD", "/healthz")
        check(r.status == 200 and r.body == b"", "HEAD /healthz: %r" % r)
        check(srv.push({"node": "a", "samples": [{"ts": 1732170000, "metrics": {"cpu": 1}}]}).status == 200, "push")
        r = srv.request("GET", "/healthz")
        check(r.status == 200, "/healthz after a commit: %r" % r)


# ---------------------------------------------------------------------------
# robustness


def scenario_forecast_ok():
    """A forecast of a clean linear trend answers 200 with finite numbers
    near the extrapolation."""
    now = time.time()
    samples = [{"ts": now - 600 + 5 * i, "metrics": {"cpu": 10 + 0.1 * (5 * i)}} for i in range(120)]
    with server() as srv:
        check(srv.push({"node": "a", "samples": samples}).status == 200, "push")
        r = srv.request("GET", "/api/v1/forecast?node=a&metric=cpu&model=linear&horizon=60")
        check(r.status == 200, "forecast: %r" % r)
        if r.status == 200:
            f = r.json()
            last = samples[-1]["ts"]
            want = 10 + 0.1 * (last + 60 - (now - 600))
            check(abs(f["value"] - want) < 0.5, "linear forecast %r, expected about %.2f" % (f.get("value"), want))
            check(f["lower"] <= f["value"] <= f["upper"], "interval around the value: %r" % f)
            check(f["model"] == "linear", "model: %r" % f.get("model"))
        check(srv.proc.poll() is None, "server still running")


def scenario_forecast_huge_values():
    """Finite but huge values may make a model overflow: the answer is an
    error or finite numbers, and the server stays up."""
    now = time.time()
    samples = [{"ts": now - 100 + i, "metrics": {"cpu": (1.7e308 if i % 2 else -1.7e308) * (i / 20)}} for i in range(20)]
    with server() as srv:
        check(srv.push({"node": "a", "samples": samples}).status == 200, "push")
        for model in ("linear", "holt", "last", "seasonal", "auto"):
            try:
                r = srv.request("GET", "/api/v1/forecast?node=a&metric=cpu&model=%s" % model, timeout=10)
            except (OSError, http.client.HTTPException) as e:
                check(False, "forecast model=%s: no answer (%s); server exit status %r" % (model, e, srv.proc.poll()))
                break
            ok = r.status == 422 or (r.status == 200 and all(
                v is None or isinstance(v, (str, bool)) or math.isfinite(v) for v in r.json().values()))
            check(ok, "forecast model=%s: %r" % (model, r))
        time.sleep(0.2)
        check(srv.proc.poll() is None, "server still running (exit status %r)" % srv.proc.poll())


def scenario_client_gone():
    """Clients that vanish mid-request (half a body, before the deferred
    ingest answer, during an export) must not hurt the server."""
    with server() as srv:
        for k in range(5):
            samples = [{"ts": BASE + i, "metrics": {"m%d" % k: i}} for i in range(20000)]
            srv.push({"node": "big", "samples": samples})
        body = json.dumps({"node": "gone", "samples": [{"ts": 1732170000 + i, "metrics": {"cpu": i}} for i in range(200)]}).encode()
        head = b"POST /api/v1/metrics HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body)
        for i in range(60):
            s = socket.create_connection(("127.0.0.1", srv.port))
            if i % 3 == 0:
                s.sendall(head + body[: len(body) // 2])  # half a body
            elif i % 3 == 1:
                s.sendall(head + body)  # whole request, gone before the answer
            else:
                s.sendall(b"GET /api/v1/export.csv?from=%d HTTP/1.1\r\nHost: x\r\n\r\n" % (BASE - 1))
                s.recv(4096)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            s.close()  # RST
        time.sleep(0.5)
        check(srv.proc.poll() is None, "server survived (exit status %r)" % srv.proc.poll())
        if srv.proc.poll() is None:
            check(srv.request("GET", "/healthz").status == 200, "healthy")
            pts = srv.get_json("/api/v1/series?node=gone&metric=cpu&from=1732160000&to=1732180000")["points"]
            check(len(pts) in (0, 200), "the abandoned batches are stored whole or not at all: %d" % len(pts))
            check(srv.stop() == 0, "clean exit")


def scenario_head_requests():
    """HEAD on every GET endpoint answers the headers and completes, so the
    connection can be reused (a monitor probing with HEAD must not pin an
    export slot or hang)."""
    with server() as srv:
        check(srv.push({"node": "a", "samples": [{"ts": BASE, "metrics": {"cpu": 1}}]}).status == 200, "push")
        paths = ["/healthz", "/api/v1/nodes", "/api/v1/stats", "/metrics", "/api/v1/export.csv",
                 "/api/v1/decisions.csv", "/api/v1/series?node=a&metric=cpu&from=%d" % (BASE - 1)]
        for path in paths:
            c = srv.conn(timeout=3)
            try:
                r = srv.request("HEAD", path, conn=c)
                check(r.status == 200 and r.body == b"", "HEAD %s: %r" % (path, r))
                r = srv.request("GET", "/healthz", conn=c)
                check(r.status == 200, "GET after HEAD %s on the same connection: %r" % (path, r))
            except (OSError, http.client.HTTPException) as e:
                check(False, "HEAD %s then GET on the same connection: %s" % (path, e))
            finally:
                c.close()
        # Clients that HEAD the export and keep their connection open must
        # not use up the export slots.
        conns = []
        for _ in range(9):
            c = srv.conn(timeout=3)
            try:
                srv.request("HEAD", "/api/v1/export.csv", conn=c)
            except (OSError, http.client.HTTPException):
                pass
            conns.append(c)
        r = srv.request("GET", "/api/v1/export.csv", timeout=5)
        check(r.status == 200, "GET export while 9 HEAD clients stay connected: %r" % r)
        for c in conns:
            c.close()


SCENARIOS = {name[len("scenario_"):]: fn for name, fn in globals().items() if name.startswith("scenario_")}


def main():
    global BIN, SANITIZED
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--sanitized", action="store_true", help="scalecastd is built with sanitizers")
    ap.add_argument("scenario", choices=sorted(SCENARIOS))
    a = ap.parse_args()
    BIN = a.bin
    SANITIZED = a.sanitized
    t0 = time.monotonic()
    try:
        SCENARIOS[a.scenario]()
    finally:
        for srv in srvlib.Server.instances:
            if srv.final_log is None and srv.proc is not None:
                print("scalecastd (exit status %r) log:\n%s" % (srv.proc.poll(), srv.log()[-4000:]))
    for srv in srvlib.Server.instances:
        check(not srv.sanitizer_report(), "sanitizer report in a scalecastd log (printed above)")
    note("%s: %s in %.1f s" % (a.scenario, "FAILED (%d checks)" % len(FAILURES) if FAILURES else "ok", time.monotonic() - t0))
    return 1 if FAILURES else 0


if __name__ == "__main__":
    sys.exit(main())
