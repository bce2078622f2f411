#!/usr/bin/env python3
"""The dashboard in a real browser: starts the real scalecastd on a free
loopback port with a temporary database, pushes an hour of real-shaped
samples for three nodes (one silent for 15 minutes, so stale) with their
containers, writes an hour of autoscaler decisions into the decisions table,
loads the page in headless Chromium and checks what it shows against the
data sent, then saves screenshots under --artifacts.

  test_dashboard.py --server PATH --artifacts DIR CASE
  CASE: desktop   overview, node page, service page, live updates, clicks
        phone     the same pages at 390 px: no sideways scrolling, readable
        token     with read_token set: asks once, keeps it, survives reload

Exit 0: passed; 1: failed; 77: skipped because Chromium is not installed and
could not be installed (apt-get, as root).
"""

import argparse
import http.client
import json
import math
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import traceback

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cdp  # noqa: E402

SKIP = 77
DYGRAPHS = "/usr/share/javascript/dygraphs/dygraph.min.js"
NOW = time.time()
T_END = math.floor(NOW / 10) * 10  # newest sample, on the 10 s grid the 1 h charts use
STEP = 10


# ---- the data ---------------------------------------------------------------


def cpu_a(t):
    """node-a's CPU: a wave, one decimal, with a known newest value."""
    if t == T_END:
        return 37.5
    return round(35 + 20 * math.sin(t / 300.0), 1)


def series_for(node, t):
    """Host metrics of a node at time t (agent names and units)."""
    k = {"node-a": 1.0, "node-b": 0.5, "node-c": 0.8}[node]
    m = {
        "cpu": cpu_a(t) if node == "node-a" else round(20 + 8 * math.cos(t / 200.0) * k, 1),
        "mem": 61.2 if node == "node-a" else round(40 + 5 * math.sin(t / 500.0), 1),
        "mem_used_bytes": 5.2e9 * k,
        "mem_avail_bytes": 3.1e9 * k,
        "swap": 1.5,
        "disk_read_bps": round(2e6 + 1e6 * math.sin(t / 120.0) * k),
        "disk_write_bps": round(5e6 + 2e6 * math.cos(t / 150.0) * k),
        "disk_read_iops": 40 * k,
        "disk_write_iops": 120 * k,
        "net_rx_bps": round(8e6 + 3e6 * math.sin(t / 90.0)),
        "net_tx_bps": round(3e6 + 1e6 * math.cos(t / 90.0)),
        "load1": round(1.5 + math.sin(t / 400.0), 2),
        "load5": 1.4,
        "load15": 1.2,
    }
    if node == "node-b":
        m["cpu"] = 12.4 if t == T_END else m["cpu"]
        m["gpu0_util"] = round(50 + 30 * math.sin(t / 250.0), 1)
        m["gpu0_mem"] = 35.0
    return m


CONTAINERS = {
    "node-a": [("web.1", "web", 42.0), ("web.2", "web", 38.5), ("db.1", "db", 12.0)],
    "node-b": [("worker.1", "worker", 90.0)],
    "node-c": [],
}


def container_metrics(base, t):
    return {"cpu": round(base + 5 * math.sin(t / 100.0), 1), "mem": 30.0, "mem_bytes": 2.5e8}


def batches(node, t_last):
    """One batch per 10 minutes of samples, as an agent's spool would send."""
    docs = []
    samples = []
    t = T_END - 3590
    while t <= t_last:
        samples.append({"ts": t, "metrics": series_for(node, t)})
        for name, svc, base in CONTAINERS[node]:
            cm = container_metrics(base, t)
            if t == T_END:
                cm["cpu"] = base
            samples.append({"ts": t, "container": name, "service": svc, "metrics": cm})
        if len(samples) >= 240:
            docs.append({"node": node, "samples": samples})
            samples = []
        t += STEP
    if samples:
        docs.append({"node": node, "samples": samples})
    return docs


def decision_rows():
    """An hour of decisions of service web, every 30 s, as the autoscaler
    writes them: holds, three scale-ups (one failed), a scale-down."""
    rows = []
    replicas = 2
    events = {  # index (30 s apart) -> (action, target, outcome, error)
        30: ("scale_up", 3, "applied", None),
        60: ("scale_up", 5, "applied", None),
        80: ("scale_up", 6, "failed", "engine: POST /services/web/update: 500 rpc error: code = Unknown"),
        100: ("scale_down", 4, "applied", None),
    }
    t0 = NOW - 3600 + 15
    n = 120
    for i in range(n):
        ts = t0 + i * 30
        value = round(55 + 20 * math.sin(i / 9.0), 1)
        fc_peak = (value + 6) * replicas
        forecast = {"model": "holt", "horizon": 300.0, "origin": ts - 5, "peak": fc_peak,
                    "peak_lower": fc_peak - 8 * replicas / 2, "peak_upper": fc_peak + 10 * replicas / 2,
                    "peak_at": ts + 200}
        action, target, outcome, error = "hold", replicas, "none", None
        if i in events:
            action, target, outcome, error = events[i]
        per = forecast["peak"] / replicas
        reason = "cpu avg %.3g%% over %d of %d replicas; target 60%% -> %d; forecast peak %.0f%% [%.0f, %.0f] in 200 s (holt) -> %d; " % (
            value, replicas, replicas, target, per, forecast["peak_lower"] / replicas,
            forecast["peak_upper"] / replicas, target)
        reason += "%d -> %d" % (replicas, target) if action != "hold" else "holding at %d" % replicas
        if i == n - 1:
            reason += "; newest decision marker 7d1f"
        inputs = {"metric": "cpu", "aggregation": "avg", "value": value, "age": 4.0, "series": replicas,
                  "ready": replicas, "load": value * replicas, "target_utilization": 60.0,
                  "rule_target": target, "up_for": 0.0, "down_for": 0.0, "rule_threshold": None,
                  "reactive": target, "rule_forecast": target, "limit": None, "forecast": forecast}
        rows.append((ts, "web", action, replicas, target, target, "enforce", outcome, reason, error,
                     json.dumps(inputs)))
        if outcome == "applied":
            replicas = target
    return rows


# ---- scalecastd --------------------------------------------------------------


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, binary, workdir, config=""):
        self.binary, self.dir = binary, workdir
        self.db = os.path.join(workdir, "scalecast.db")
        self.conf = os.path.join(workdir, "test.conf")
        with open(self.conf, "w") as f:
            f.write("[server]\n" + config)
        self.log = os.path.join(workdir, "scalecastd.log")
        self.proc = None
        self.token = None

    def start(self):
        for _ in range(5):
            self.port = free_port()
            with open(self.log, "ab") as log:
                self.proc = subprocess.Popen(
                    [self.binary, "--config", self.conf, "--listen", "127.0.0.1:%d" % self.port, "--db", self.db],
                    stdout=log, stderr=log, cwd=self.dir)
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline and self.proc.poll() is None:
                try:
                    if self.request("GET", "/healthz")[0] == 200:
                        self.url = "http://127.0.0.1:%d" % self.port
                        return
                except OSError:
                    pass
                time.sleep(0.05)
            self.stop()
            if "in use" not in open(self.log, errors="replace").read():
                break
        raise RuntimeError("scalecastd did not start:\n" + open(self.log, errors="replace").read())

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def request(self, method, path, body=None):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            headers = {}
            if self.token:
                headers["Authorization"] = "Bearer " + self.token
            if body is not None:
                body = json.dumps(body).encode()
                headers["Content-Type"] = "application/json"
            c.request(method, path, body=body, headers=headers)
            r = c.getresponse()
            return r.status, r.read()
        finally:
            c.close()

    def get(self, path):
        status, body = self.request("GET", path)
        if status != 200:
            raise AssertionError("GET %s: %d %r" % (path, status, body[:300]))
        return json.loads(body)

    def push(self, doc):
        status, body = self.request("POST", "/api/v1/metrics", doc)
        if status != 200:
            raise AssertionError("push: %d %r" % (status, body[:300]))

    def add_decisions(self, rows):
        """Straight into the decisions table (the schema is store.c's), while
        the server runs: SQLite in WAL mode takes a second writer."""
        db = sqlite3.connect(self.db, timeout=20)
        try:
            db.executemany("INSERT INTO decisions(ts, service, action, current, desired, target, mode, "
                           "outcome, reason, error, inputs) VALUES(?,?,?,?,?,?,?,?,?,?,?)", rows)
            db.commit()
        finally:
            db.close()


def seed(srv):
    # node-c went silent 15 min ago. A node's state follows when its samples
    # were received, and a restart forgets receive times (the samples' own
    # times stand in), so push node-c, restart, then push the live nodes.
    for doc in batches("node-c", T_END - 900):
        srv.push(doc)
    srv.stop()
    srv.start()
    for node in ("node-a", "node-b"):
        for doc in batches(node, T_END):
            srv.push(doc)
    srv.add_decisions(decision_rows())


# ---- checks -------------------------------------------------------------------


class Check:
    def __init__(self):
        self.failures = []

    def __call__(self, cond, what):
        if cond:
            print("ok   " + what)
        else:
            print("FAIL " + what)
            self.failures.append(what)


def close(a, b, tol=1e-6):
    return isinstance(a, (int, float)) and isinstance(b, (int, float)) and abs(a - b) <= tol * max(1, abs(b))


def js(s):
    return json.dumps(s)


def chart_info(page, cid):
    return page.eval("(() => { const c = scalecast.charts[%s]; return c ? c.info() : null; })()" % js(cid))


def wait_view(page, name, polls=1, timeout=30):
    try:
        page.wait("document.body.dataset.view === %s && document.body.dataset.ready === '1' && scalecast.polls >= %d"
                  % (js(name), polls), timeout, "view %s rendered" % name)
    except AssertionError as e:
        raise AssertionError("%s; the page's last error: %s" % (e, page.eval("scalecast.lastError")))


def row_value(info, ts, col):
    for r in info["rows"]:
        if abs(r[0] - ts) < 1e-3:
            return r[col]
    return None


def page_clean(page, check, base, allow_401=False):
    exc = page.exceptions()
    check(not exc, "no JavaScript exception (%s)" % "; ".join(exc)[:300])
    errs = page.console()
    check(not errs, "no console error (%s)" % "; ".join(errs)[:300])
    foreign = [u for u in page.requested_urls() if not (u.startswith(base + "/") or u.startswith("data:")
                                                       or u == "about:blank")]
    check(not foreign, "every request goes to scalecastd itself, no CDN (%s)" % foreign[:3])
    bad = [e for e in page.log_entries() if not (allow_401 and "401" in e)]
    if bad:
        print("note: browser log errors: %s" % bad[:5])


def no_sideways_scroll(page, check, what):
    w = page.eval("[document.documentElement.scrollWidth, window.innerWidth]")
    check(w[0] <= w[1], "%s: no sideways scrolling at %d px (content %d px)" % (what, w[1], w[0]))
    wide = page.eval("""Array.from(document.querySelectorAll('main *')).filter(e => {
        const r = e.getBoundingClientRect(); return r.width > 0 && r.right > window.innerWidth + 1;
      }).slice(0, 5).map(e => e.tagName + '.' + e.className)""")
    check(not wide, "%s: nothing sticks out on the right (%s)" % (what, wide))


# ---- cases ------------------------------------------------------------------------


def case_desktop(srv, browser, art, check):
    page = browser.page(1280, 900)
    base = srv.url
    page.navigate(base + "/?poll=2")
    page.eval("window.__sameDocument = 1")
    wait_view(page, "overview")
    page.wait("document.querySelectorAll('#nodes tbody tr').length === 3", 10, "three node rows")

    # Nodes table: the pushed values, the states.
    rows = page.eval("""Array.from(document.querySelectorAll('#nodes tbody tr')).map(tr =>
        [tr.dataset.node].concat(Array.from(tr.cells).map(td => td.textContent.trim())))""")
    by = {r[0]: r for r in rows}
    check(by["node-a"][3] == "37.5%", "node-a CPU shows the newest pushed value 37.5%% (got %r)" % by["node-a"][3])
    check(by["node-a"][4] == "61.2%", "node-a memory shows 61.2%% (got %r)" % by["node-a"][4])
    check(by["node-b"][3] == "12.4%", "node-b CPU shows 12.4%% (got %r)" % by["node-b"][3])
    check(by["node-a"][2] == "up" and by["node-b"][2] == "up", "node-a and node-b are up")
    check(by["node-c"][2] == "stale", "node-c (silent 15 min) is stale (got %r)" % by["node-c"][2])
    check(by["node-a"][7] == "3" and by["node-b"][7] == "1", "container counts 3 and 1 (got %r, %r)" % (by["node-a"][7], by["node-b"][7]))
    m_a = series_for("node-a", T_END)  # both within 1-10 MB/s: two decimals
    want_disk = "%.2f / %.2f MB/s" % (m_a["disk_read_bps"] / 1e6, m_a["disk_write_bps"] / 1e6)
    check(by["node-a"][5] == want_disk, "node-a disk read / write %r (got %r)" % (want_disk, by["node-a"][5]))

    # Sparklines: the last hour, 1-minute averages of what was pushed.
    page.wait("scalecast.charts['spark/node-a'] && scalecast.charts['spark/node-a'].g", 10, "node-a sparkline")
    sp = chart_info(page, "spark/node-a")
    check(55 <= len(sp["rows"]) <= 61, "node-a sparkline holds the hour in 1-min buckets (%d rows)" % len(sp["rows"]))
    check(sp["inkedPixels"] > 100, "node-a sparkline drew (%d inked pixels)" % sp["inkedPixels"])
    b0 = sp["rows"][len(sp["rows"]) // 2][0]
    want = [cpu_a(t) for t in range(int(b0), int(b0) + 60, STEP)]
    check(close(sp["rows"][len(sp["rows"]) // 2][1], sum(want) / len(want), 1e-9),
          "sparkline bucket at %d = mean of the pushed CPU values (%r vs %r)" % (b0, sp["rows"][len(sp["rows"]) // 2][1], sum(want) / len(want)))
    spc = chart_info(page, "spark/node-c")
    check(spc and spc["drawn"] and spc["rows"][-1][0] <= T_END - 900 + 60, "stale node-c's sparkline ends 15 min ago")

    # Services: the card shows the newest decision's reason.
    card = page.wait("(() => { const c = document.querySelector('[data-service=web]'); return c && c.innerText; })()", 10, "service card web")
    check("newest decision marker 7d1f" in card, "service card shows the newest decision's reason")
    check("4 → 4" in card, "service card shows replicas current → desired 4 → 4 (%r)" % card[:200])
    page.screenshot(os.path.join(art, "overview-desktop.png"))

    # Live: a new sample shows without reloading the page.
    live_ts = time.time()
    srv.push({"node": "node-a", "samples": [{"ts": live_ts, "metrics": {"cpu": 88.4}}]})
    page.wait("document.querySelector('#nodes tr[data-node=\"node-a\"]').cells[2].textContent === '88.4%'", 15,
              "node-a CPU 88.4% after a push, without reload")
    check(page.eval("window.__sameDocument") == 1, "the new value came in without a page reload")

    # Node page.
    page.eval("location.hash = '#/node/node-a'")
    wait_view(page, "node")
    page.wait("scalecast.charts['node/node-a/cpu'] && scalecast.charts['node/node-a/cpu'].g && scalecast.charts['node/node-a/ct_cpu']",
              15, "node-a charts")
    cpu = chart_info(page, "node/node-a/cpu")
    n_cpu = sum(1 for r in cpu["rows"] if r[1] is not None and r[0] <= T_END)
    check(355 <= n_cpu <= 361, "CPU chart holds the hour at 10 s (%d points)" % n_cpu)
    live_bucket = math.floor(live_ts / STEP) * STEP
    if live_bucket == T_END:  # the live sample shares the 10 s bucket: the chart shows their mean
        check(close(row_value(cpu, T_END, 1), (37.5 + 88.4) / 2), "CPU chart's newest bucket averages 37.5 and the live 88.4 (%r)" % row_value(cpu, T_END, 1))
    else:
        check(row_value(cpu, T_END, 1) == 37.5, "CPU chart at the newest pushed time shows 37.5 (%r)" % row_value(cpu, T_END, 1))
        check(row_value(cpu, live_bucket, 1) == 88.4, "CPU chart shows the live sample 88.4 (%r)" % row_value(cpu, live_bucket, 1))
    t_mid = T_END - 1800
    check(row_value(cpu, t_mid, 1) == cpu_a(t_mid), "CPU chart 30 min ago shows the pushed %r (%r)" % (cpu_a(t_mid), row_value(cpu, t_mid, 1)))
    check(cpu["inkedPixels"] > 1000, "CPU chart drew (%d inked pixels)" % cpu["inkedPixels"])
    fc = [b for b in cpu["bands"] if b["pts"]]
    check(fc and max(p[0] for p in fc[0]["pts"]) > time.time() + 200,
          "CPU forecast band reaches ahead of now (%s)" % (fc and max(p[0] for p in fc[0]["pts"])))
    check(fc and all(p[1] <= p[2] for p in fc[0]["pts"]), "forecast band lower <= upper")
    for key in ("mem", "disk", "net", "iops", "load"):
        info = chart_info(page, "node/node-a/" + key)
        check(info and info["drawn"] and info["inkedPixels"] > 500, "node-a %s chart drew" % key)
    disk = chart_info(page, "node/node-a/disk")
    check(row_value(disk, t_mid, 1) == series_for("node-a", t_mid)["disk_read_bps"], "disk chart shows the pushed read rate")
    cts = page.eval("""Array.from(document.querySelectorAll('#containers tbody tr')).map(tr =>
        [tr.dataset.container, tr.cells[2].textContent])""")
    check(sorted(c[0] for c in cts) == ["db.1", "web.1", "web.2"], "containers table lists node-a's three (%r)" % cts)
    check(dict(cts).get("web.1") == "42.0%", "web.1 CPU shows its newest value 42.0%% (%r)" % dict(cts).get("web.1"))
    ct = chart_info(page, "node/node-a/ct_cpu")
    check(sorted(ct["labels"][1:]) == ["db.1", "web.1", "web.2"], "container CPU chart has a line per container")
    check(row_value(ct, t_mid, ct["labels"].index("web.2")) == container_metrics(38.5, t_mid)["cpu"],
          "container chart shows web.2's pushed CPU")
    page.screenshot(os.path.join(art, "node-desktop.png"))

    page.eval("location.hash = '#/node/node-b'")
    wait_view(page, "node")
    page.wait("scalecast.charts['node/node-b/gpu'] && scalecast.charts['node/node-b/gpu'].g", 10, "node-b GPU chart")
    check("GPU 0" in page.eval("document.querySelector('main').innerText"), "node-b shows a GPU tile")

    # Service page.
    rows_dec = decision_rows()
    last = rows_dec[-1]
    page.eval("location.hash = '#/service/web'")
    wait_view(page, "service")
    page.wait("scalecast.charts['service/web/replicas'] && scalecast.charts['service/web/replicas'].g", 10, "replicas chart")
    rep = chart_info(page, "service/web/replicas")
    i_dec = rep["labels"].index("decided")
    i_cur = rep["labels"].index("current")
    check(rep["rows"][-1][i_dec] == 4 and rep["rows"][-1][i_cur] == 4, "replicas chart ends at 4 decided, 4 current")
    check(row_value(rep, rows_dec[0][0], i_cur) == 2, "replicas chart starts at 2")
    check(max(r[i_dec] for r in rep["rows"] if r[i_dec] is not None) == 6, "replicas chart shows the failed step to 6 as decided")
    anns = rep["annotations"]
    check(len(anns) == 4, "4 scale events marked on the replicas chart (%d)" % len(anns))
    check(any("failed" in a["text"] and "rpc error" in a["text"] for a in anns), "the failed scale-up's marker carries its error")
    met = chart_info(page, "service/web/metric")
    check(any(l["y"] == 60 and "target" in l["label"] for l in met["hlines"]), "metric chart draws the target 60%%: %r" % met["hlines"])
    check(row_value(met, last[0], 1) == json.loads(last[10])["value"], "metric chart shows the newest decision's value")
    band = met["bands"][-1]["pts"] if met["bands"] else []
    check(band and abs(band[-1][0] - last[0] - 300) < 1e-3 and band[-1][0] > time.time(),
          "forecast band ends at the newest decision + horizon, ahead of now (%r)" % (band and band[-1][0]))
    fcl = json.loads(last[10])["forecast"]
    check(band and close(band[-1][2], fcl["peak_upper"] / last[3]) and close(band[-1][1], fcl["peak_lower"] / last[3]),
          "forecast band is the load's bounds per replica (%r)" % (band and band[-1]))
    check(met["inkedPixels"] > 1000, "metric chart drew")
    tl = page.eval("document.querySelectorAll('#timeline > li details').length")
    check(tl == len(rows_dec), "timeline lists all %d decisions (%d)" % (len(rows_dec), tl))
    first = page.eval("(() => { const s = document.querySelector('#timeline details summary'); return [s.title, s.innerText]; })()")
    check(first[0] == last[8], "newest decision's reason is the hover text of its timeline row")
    check("newest decision marker 7d1f" in first[1], "newest decision's reason is shown in its row")
    failed = page.eval("""(() => {
        const d = Array.from(document.querySelectorAll('#timeline details')).find(d => d.innerText.includes('failed'));
        d.querySelector('summary').click();
        const e = d.querySelector('.errtext');
        return [d.open, e && e.innerText, e && e.offsetHeight > 0, d.querySelector('.full .reason').innerText];
      })()""")
    check(failed[0] and "rpc error" in (failed[1] or "") and failed[2], "clicking a failed decision shows its error (%r)" % failed[:3])
    check(failed[3].startswith("cpu avg") and "5 -> 6" in failed[3], "clicking shows the full reason (%r)" % failed[3][:80])
    mark = page.eval("""(() => {
        document.querySelectorAll('#timeline details').forEach(d => { d.open = false; });
        const m = Array.from(document.querySelectorAll('.dygraph-annotation')).find(a => a.title.includes('rpc error'));
        if (!m) return null;
        m.click();
        const d = Array.from(document.querySelectorAll('#timeline details')).find(d => d.open);
        return [m.textContent, d && d.querySelector('summary').title];
      })()""")
    check(mark and mark[0] == "!" and "5 -> 6" in (mark[1] or ""),
          "the failed scale-up's mark (hover: its reason) opens that decision in the timeline (%r)" % (mark,))
    page.screenshot(os.path.join(art, "service-desktop.png"))

    # Live decision: a new one appears in the open page.
    polls = page.eval("scalecast.polls")
    srv.add_decisions([(time.time(), "web", "scale_up", 4, 5, 5, "enforce", "applied",
                        "cpu avg 81% over 4 of 4 replicas; live decision 93c2; 4 -> 5", None,
                        json.dumps({"metric": "cpu", "aggregation": "avg", "value": 81.0, "target_utilization": 60.0,
                                    "forecast": None}))])
    page.wait("document.querySelector('#timeline details summary').title.includes('live decision 93c2')", 15,
              "a new decision in the timeline without reload")
    check(page.eval("scalecast.polls") > polls and page.eval("window.__sameDocument") == 1, "the timeline updated in place")
    page.wait("(() => { const i = scalecast.charts['service/web/replicas'].info(); return i.rows[i.rows.length-1][i.labels.indexOf('decided')] === 5; })()",
              10, "replicas chart follows the new decision to 5")
    check(True, "replicas chart follows a new decision")
    page_clean(page, check, base)


def case_phone(srv, browser, art, check):
    page = browser.page(390, 844, mobile=True, scale=2)
    base = srv.url
    page.navigate(base + "/")
    wait_view(page, "overview")
    page.wait("document.querySelectorAll('#nodes tbody tr').length === 3 && scalecast.charts['spark/node-a'].g", 15, "nodes")
    check(page.eval("getComputedStyle(document.querySelector('#nodes thead')).display") == "none",
          "phone: the nodes table turns into one card per node")
    label = page.eval("getComputedStyle(document.querySelector('#nodes td[data-label=CPU]'), '::before').content")
    check(label == '"CPU"', "phone: each value is labelled (%r)" % label)
    cpu = page.eval("document.querySelector('#nodes tr[data-node=\"node-a\"] td[data-label=CPU]').innerText")
    check("37.5%" in cpu, "phone: node-a CPU 37.5%% is shown (%r)" % cpu)
    sp = chart_info(page, "spark/node-a")
    check(sp["width"] > 300 and sp["inkedPixels"] > 100, "phone: the sparkline spans the card (%d px)" % sp["width"])
    no_sideways_scroll(page, check, "overview")
    page.screenshot(os.path.join(art, "overview-phone.png"))

    page.eval("location.hash = '#/node/node-a'")
    wait_view(page, "node")
    page.wait("scalecast.charts['node/node-a/cpu'].g && scalecast.charts['node/node-a/ct_cpu'] && scalecast.charts['node/node-a/ct_cpu'].g", 15, "node charts")
    info = chart_info(page, "node/node-a/cpu")
    check(330 <= info["width"] <= 390 and info["inkedPixels"] > 1000, "phone: CPU chart fits the width (%d px)" % info["width"])
    no_sideways_scroll(page, check, "node page")
    page.screenshot(os.path.join(art, "node-phone.png"))

    page.eval("location.hash = '#/service/web'")
    wait_view(page, "service")
    page.wait("scalecast.charts['service/web/metric'].g", 10, "service charts")
    no_sideways_scroll(page, check, "service page")
    tap = page.eval("""(() => { const s = document.querySelector('#timeline details summary'); s.click();
        const d = s.parentElement; return [d.open, d.querySelector('.full .reason').getBoundingClientRect().width]; })()""")
    check(tap[0] and 0 < tap[1] <= 390, "phone: tapping a decision opens its reason within the screen (%r)" % tap)
    page.screenshot(os.path.join(art, "service-phone.png"))
    page_clean(page, check, base)


def case_token(srv, browser, art, check):
    page = browser.page(1280, 800)
    base = srv.url
    page.navigate(base + "/")
    page.wait("!document.getElementById('token-dialog').hidden", 10, "the token dialog")
    check(page.eval("document.querySelectorAll('#nodes tbody tr').length") == 0, "no data before the token")
    page.screenshot(os.path.join(art, "token-dialog.png"), full_page=False)
    page.eval("document.getElementById('token-input').value = 'wrong'; document.getElementById('token-form').requestSubmit()")
    page.wait("!document.getElementById('token-dialog').hidden && document.getElementById('token-why').textContent.includes('refused')",
              10, "a refused token is asked for again")
    page.eval("document.getElementById('token-input').value = %s; document.getElementById('token-form').requestSubmit()" % js(srv.token))
    wait_view(page, "overview")
    page.wait("document.querySelectorAll('#nodes tbody tr').length === 3", 10, "nodes after the token")
    check(page.eval("localStorage.getItem('scalecast.token')") == srv.token, "the token is kept in localStorage")
    check(page.eval("document.getElementById('token-dialog').hidden"), "the dialog is closed")
    page.navigate(base + "/#/service/web")
    wait_view(page, "service")
    check(page.eval("document.getElementById('token-dialog').hidden"), "after a reload: not asked again")
    check(page.eval("document.querySelectorAll('#timeline details').length") == len(decision_rows()), "after a reload: data with the kept token")
    page_clean(page, check, base, allow_401=True)


CASES = {"desktop": case_desktop, "phone": case_phone, "token": case_token}


def ensure_packages(check_only_for):
    """Installs chromium / libjs-dygraphs with apt-get when missing and we
    are root. Returns the chromium path or None."""
    need = []
    if not cdp.find_chromium():
        need.append("chromium")
    if not os.path.exists(DYGRAPHS):
        need.append("libjs-dygraphs")
    if need and os.geteuid() == 0 and shutil.which("apt-get"):
        print("installing %s with apt-get" % " ".join(need), flush=True)
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        cmd = ["apt-get", "-o", "DPkg::Lock::Timeout=300", "install", "-y", "-qq", "--no-install-recommends"] + need
        if subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL).returncode != 0:
            subprocess.run(["apt-get", "update", "-qq"], env=env)
            subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL)
    return cdp.find_chromium()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--server", required=True)
    ap.add_argument("--artifacts", required=True)
    ap.add_argument("case", choices=sorted(CASES))
    a = ap.parse_args()
    a.server, a.artifacts = os.path.abspath(a.server), os.path.abspath(a.artifacts)
    exe = ensure_packages(a.case)
    if not exe:
        print("SKIP: no Chromium (apt-get install chromium failed or not root)")
        return SKIP
    if not os.path.exists(DYGRAPHS):
        print("FAIL: %s is missing (Debian package libjs-dygraphs)" % DYGRAPHS)
        return 1
    os.makedirs(a.artifacts, exist_ok=True)
    work = tempfile.mkdtemp(prefix="scalecast-web-")
    check = Check()
    srv = Server(a.server, work, "read_token = r3ad-t0ken\n" if a.case == "token" else "")
    browser = None
    try:
        srv.start()
        if a.case == "token":
            srv.token = "r3ad-t0ken"
        seed(srv)
        browser = cdp.Browser(exe, os.path.join(a.artifacts, "chromium-%s.log" % a.case))
        print("browser: %s" % browser.version.get("product"))
        CASES[a.case](srv, browser, a.artifacts, check)
    except Exception:
        traceback.print_exc()
        check.failures.append("exception")
        if srv.proc and srv.proc.poll() is not None:
            print("scalecastd died: exit status %d (negative: killed by that signal)" % srv.proc.returncode)
    finally:
        if browser:
            browser.close()
        srv.stop()
        if check.failures:
            print("--- scalecastd log ---\n" + open(srv.log, errors="replace").read()[-3000:])
        shutil.rmtree(work, ignore_errors=True)
    print("screenshots in %s" % a.artifacts)
    if check.failures:
        print("%d check(s) failed" % len(check.failures))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
