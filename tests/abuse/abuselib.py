"""Shared helpers of the abuse, fault and security tests (stdlib only).

The server itself is started by tests/server/srvlib.py (imported, not
copied). This module adds what hostile-client tests need: a health probe
running in its own process (so the abusers' Python work cannot delay it), a
sampler of the server's memory and CPU, and the check/report conventions of
the other Python tests: exit 0 when every check passed, 1 when one failed
(each failure printed), 77 when the test cannot run here.
"""

import multiprocessing
import os
import resource
import socket
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "server"))
import srvlib  # noqa: E402

FAILURES = []
SKIP = 77
# The well-behaved client's limit: a health check answered within 100 ms
# (300 ms when built with sanitizers, which slow every request down).
LATENCY_LIMIT = 0.100


def check(cond, msg):
    if not cond:
        FAILURES.append(msg)
        print("FAIL: " + msg, flush=True)
    return cond


def note(msg):
    print(msg, flush=True)


class Skip(Exception):
    """The test cannot run on this machine (exit status 77)."""


def raise_nofile(want):
    """Raises this process's RLIMIT_NOFILE soft limit towards want (the hard
    limit caps it). Returns the soft limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = want if hard == resource.RLIM_INFINITY else min(want, hard)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def proc_status_kib(pid, field="VmRSS"):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError("no %s in /proc/%d/status" % (field, pid))


def proc_cpu_s(pid):
    """User + system CPU seconds of a process, all threads."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def listen_overflows():
    """The kernel's count of connections dropped because a listen queue was
    full (TcpExt ListenOverflows, for the whole network namespace), or -1."""
    try:
        with open("/proc/net/netstat") as f:
            lines = [ln.split() for ln in f if ln.startswith("TcpExt:")]
        names, values = lines[0], lines[1]
        return int(values[names.index("ListenOverflows")])
    except (OSError, IndexError, ValueError):
        return -1


def open_fds(pid):
    try:
        return len(os.listdir("/proc/%d/fd" % pid))
    except OSError:
        return -1


# ---------------------------------------------------------------------------
# The well-behaved client: a health check every `period` seconds


def _probe_main(port, pid, period, timeout, conn_out, stop, ssl_ctx):
    """Runs in a child process: GET /healthz on a fresh connection every
    period seconds (what a load balancer's health check does), and the
    server's VmRSS every period. Sends the record back when stop is set."""
    lat, failures, rss = [], [], []
    t_start = time.monotonic()
    next_t = t_start
    while not stop.is_set():
        t0 = time.monotonic()
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
            if ssl_ctx is not None:
                s = ssl_ctx.wrap_socket(s, server_hostname="127.0.0.1")
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            data = b""
            while True:
                b = s.recv(4096)
                if not b:
                    break
                data += b
            s.close()
            dt = time.monotonic() - t0
            status = int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/1.") else None
            lat.append((t0 - t_start, dt))
            if status != 200:
                failures.append((t0 - t_start, "status %r" % status))
        except OSError as e:
            dt = time.monotonic() - t0
            lat.append((t0 - t_start, dt))
            failures.append((t0 - t_start, "%s after %.3f s" % (e.__class__.__name__, dt)))
        try:
            rss.append((t0 - t_start, proc_status_kib(pid)))
        except (OSError, RuntimeError):
            pass
        next_t += period
        pause = next_t - time.monotonic()
        if pause > 0:
            time.sleep(pause)
        else:
            next_t = time.monotonic()
    conn_out.send({"lat": lat, "failures": failures, "rss": rss})
    conn_out.close()


class Probe:
    """A health checker and memory sampler in its own process.

        with Probe(srv) as p:
            ... abuse ...
        p.max_latency, p.failures, p.rss_max_kib
    """

    def __init__(self, srv, period=0.05, timeout=2.0, ssl_ctx=None):
        self.srv = srv
        self.period = period
        self.timeout = timeout
        self.ssl_ctx = ssl_ctx
        self.record = None

    def __enter__(self):
        ctx = multiprocessing.get_context("fork")
        self._stop = ctx.Event()
        self._rx, tx = ctx.Pipe(duplex=False)
        self._proc = ctx.Process(
            target=_probe_main,
            args=(self.srv.port, self.srv.proc.pid, self.period, self.timeout, tx, self._stop, self.ssl_ctx),
            daemon=True,
        )
        self._proc.start()
        tx.close()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        if self._rx.poll(self.timeout + 10):
            self.record = self._rx.recv()
        self._proc.join(5)
        if self.record is None:
            self.record = {"lat": [], "failures": [(0, "the probe process sent nothing")], "rss": []}
        return False

    @property
    def count(self):
        return len(self.record["lat"])

    @property
    def max_latency(self):
        return max((dt for _t, dt in self.record["lat"]), default=float("nan"))

    def percentile(self, q):
        lat = sorted(dt for _t, dt in self.record["lat"])
        if not lat:
            return float("nan")
        return lat[min(len(lat) - 1, int(q * len(lat)))]

    @property
    def failures(self):
        return self.record["failures"]

    @property
    def rss_max_kib(self):
        return max((v for _t, v in self.record["rss"]), default=0)

    def slow(self, limit):
        return [(round(t, 2), round(dt, 3)) for t, dt in self.record["lat"] if dt > limit]

    def report(self, what, limit=None):
        """Prints the figures and checks the latency limit (LATENCY_LIMIT
        unless given) and that every probe got 200."""
        if limit is None:
            limit = LATENCY_LIMIT
        note(
            "%s: %d health checks, p50 %.1f ms, p99 %.1f ms, max %.1f ms; server RSS max %d KiB"
            % (what, self.count, self.percentile(0.5) * 1e3, self.percentile(0.99) * 1e3,
               self.max_latency * 1e3, self.rss_max_kib)
        )
        proc = self.srv.proc
        rc = proc.poll() if proc is not None else None
        check(rc is None, "%s: scalecastd exited during the test with status %r (negative: killed by that signal)"
              % (what, rc))
        check(self.count > 0, "%s: the probe ran no health check" % what)
        check(not self.failures, "%s: %d health checks failed, first %r" % (what, len(self.failures), self.failures[:3]))
        check(self.max_latency <= limit, "%s: a health check took %.1f ms (limit %.0f ms); slow ones (t, s): %r"
              % (what, self.max_latency * 1e3, limit * 1e3, self.slow(limit)[:8]))


def ingest_works(srv, what, node="after-abuse", headers=None):
    """A normal push and a read of it back: the server still does its job."""
    ts = float(int(time.time()))
    try:
        r = srv.request("POST", "/api/v1/metrics", {"node": node, "samples": [{"ts": ts, "metrics": {"cpu": 42.5}}]},
                        headers=headers, timeout=10)
    except OSError as e:
        return check(False, "%s: normal ingest afterwards: %s %s" % (what, e.__class__.__name__, e))
    if not check(r.status == 200 and r.json() == {"accepted": 1}, "%s: normal ingest afterwards: %r" % (what, r)):
        return False
    q = "/api/v1/series?node=%s&metric=cpu&from=%d&to=%d" % (node, ts - 1, ts + 1)
    pts = srv.get_json(q, headers=headers)["points"]
    return check(pts == [[ts, 42.5]], "%s: the sample reads back: %r" % (what, pts))


def run_main(scenarios, argv=None):
    """Common main: --bin PATH [--agent PATH] [--sanitized] SCENARIO."""
    import argparse

    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True, help="scalecastd")
    ap.add_argument("--agent", help="scalecast-agent")
    ap.add_argument("--sanitized", action="store_true", help="built with sanitizers: memory bounds are reported, not asserted")
    ap.add_argument("scenario", choices=sorted(scenarios))
    a = ap.parse_args(argv)
    global LATENCY_LIMIT
    if a.sanitized:
        LATENCY_LIMIT = 0.300
    t0 = time.monotonic()
    finished = False
    try:
        scenarios[a.scenario](a)
        finished = True
    except Skip as e:
        note("SKIP: %s" % e)
        return SKIP
    finally:
        for srv in srvlib.Server.instances:
            if srv.proc is not None and srv.proc.poll() is not None:
                note("scalecastd exited with status %r" % srv.proc.poll())
            srv.cleanup()  # keeps the log in final_log
        if not finished or FAILURES:
            for srv in srvlib.Server.instances:
                note("scalecastd log (last 3000 characters):\n%s" % (srv.final_log or "")[-3000:])
    for srv in srvlib.Server.instances:
        check(not srv.sanitizer_report(), "sanitizer report in a scalecastd log (printed above)")
    note("%s: %s in %.1f s" % (a.scenario, "FAILED (%d checks)" % len(FAILURES) if FAILURES else "ok", time.monotonic() - t0))
    return 1 if FAILURES else 0
