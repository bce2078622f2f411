#!/usr/bin/env python3
"""Hostile HTTP clients against the real scalecastd (issue 7, "HTTP abuse").

  test_http.py --bin PATH/scalecastd [--sanitized] SCENARIO

Each scenario starts scalecastd on a free loopback port, abuses it while a
separate process asks GET /healthz on a fresh connection every 50 ms, and
checks: every health check answered 200 within 100 ms, the server's VmRSS
under the bound the scenario documents (docs/robustness.md), the abusive
connections cut off by the limit that should apply (request_timeout,
max_header_size, max_body_size), and a normal push working afterwards.
Exit status 0 (pass), 1 (a check failed; each printed), 77 (cannot run).
"""

import json
import os
import select
import socket
import sys
import tempfile
import threading
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import abuselib  # noqa: E402
from abuselib import Probe, check, ingest_works, note, srvlib  # noqa: E402

REQUEST_TIMEOUT = 5  # seconds, set in every scenario's config
SLACK = 2.0  # seconds allowed past a timeout (evhttp rounds to whole seconds)
ARGS = None


def server(extra="", wrapper=None, timeout=REQUEST_TIMEOUT):
    cfg = "[server]\nrequest_timeout = %ds\nretention = 36500d\n%s" % (timeout, extra)
    return srvlib.Server(wrapper or ARGS.bin, config=cfg)


def check_rss(probe, base_kib, bound_kib, what):
    growth = probe.rss_max_kib - base_kib
    note("%s: RSS %d KiB before, %d KiB at most during (+%d KiB; bound +%d KiB)"
         % (what, base_kib, probe.rss_max_kib, growth, bound_kib))
    if ARGS.sanitized:
        note("%s: built with sanitizers: the memory bound is not asserted" % what)
        return
    check(growth <= bound_kib, "%s: server RSS grew by %d KiB, over the documented bound of %d KiB"
          % (what, growth, bound_kib))


# ---------------------------------------------------------------------------
# Slow clients: one byte (or one chunk) a second on many connections


class Dripper:
    """Holds n connections that each send `head` at once, then one piece of
    `drip(i)` every `interval` seconds, and records when the server closed
    each one (or answered it)."""

    def __init__(self, port, n, head, drip, interval=1.0):
        self.port, self.n, self.head, self.drip, self.interval = port, n, head, drip, interval
        self.socks = []
        self.closed_at = {}  # index -> seconds after the start
        self.answers = {}  # index -> first line of an answer
        self.sent = {}

    def _poll_closed(self, t0):
        open_socks = {s.fileno(): i for i, s in enumerate(self.socks) if i not in self.closed_at}
        if not open_socks:
            return
        p = select.poll()
        for fd in open_socks:
            p.register(fd, select.POLLIN | select.POLLHUP | select.POLLERR)
        for fd, _ev in p.poll(0):
            i = open_socks[fd]
            s = self.socks[i]
            try:
                data = s.recv(65536)
            except OSError:
                data = b""
            if data:
                self.answers.setdefault(i, data.split(b"\r\n", 1)[0].decode("latin-1"))
            else:
                self.closed_at[i] = time.monotonic() - t0

    def run(self, max_s):
        """Drips until every connection is closed or max_s passes. Returns
        the number still open at the end."""
        t0 = time.monotonic()
        for i in range(self.n):
            s = socket.create_connection(("127.0.0.1", self.port), timeout=5)
            s.setblocking(False)
            if self.head:
                s.send(self.head)
            self.socks.append(s)
            self.sent[i] = len(self.head)
        step = 0
        while time.monotonic() - t0 < max_s and len(self.closed_at) < self.n:
            for i, s in enumerate(self.socks):
                if i in self.closed_at:
                    continue
                piece = self.drip(step)
                try:
                    self.sent[i] += s.send(piece)
                except (BlockingIOError, InterruptedError):
                    pass
                except OSError:
                    self.closed_at[i] = time.monotonic() - t0
            step += 1
            deadline = t0 + step * self.interval
            while time.monotonic() < deadline and len(self.closed_at) < self.n:
                self._poll_closed(t0)
                time.sleep(0.05)
        self._poll_closed(t0)
        for s in self.socks:
            s.close()
        return self.n - len(self.closed_at)


def slow_scenario(what, head, drip, limit_name, nconn=50, interval=1.0):
    with server() as srv:
        time.sleep(0.3)
        base = srv.rss_kib()
        d = Dripper(srv.port, nconn, head, drip, interval)
        max_s = 3 * REQUEST_TIMEOUT
        with Probe(srv) as probe:
            still_open = d.run(max_s)
        probe.report(what)
        check_rss(probe, base, 16 * 1024, what)
        closed = sorted(d.closed_at.values())
        sent = sorted(d.sent.values())
        note("%s: %d connections, %d closed by the server (first after %.1f s, last after %.1f s), "
             "%d still open after %.0f s; bytes sent per connection: %d to %d; answers: %r"
             % (what, nconn, len(closed), closed[0] if closed else -1, closed[-1] if closed else -1,
                still_open, max_s, sent[0], sent[-1], sorted(set(d.answers.values()))))
        check(still_open == 0,
              "%s: %d of %d connections still open after %.0f s of one piece a second, although "
              "request_timeout = %d s (\"time a client may take to send a request\"): %s"
              % (what, still_open, nconn, max_s, REQUEST_TIMEOUT, limit_name))
        late = [t for t in closed if t > REQUEST_TIMEOUT + SLACK]
        check(not late, "%s: %d connections closed later than request_timeout + %.0f s (at %r s)"
              % (what, len(late), SLACK, [round(t, 1) for t in late[:5]]))
        ingest_works(srv, what)


def scenario_slow_headers(_a):
    """Slowloris: a header block sent one byte a second, never finished."""
    head = b""
    text = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "
    slow_scenario(
        "slow_headers", head,
        lambda step: text[step:step + 1] if step < len(text) else b"a",
        "the timeout restarts at every byte received; scalecastd has no deadline for the whole header block")


def scenario_slow_body(_a):
    """Complete headers, then a body of Content-Length 100000 at one byte a
    second."""
    head = (b"POST /api/v1/metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Content-Length: 100000\r\n\r\n")
    slow_scenario("slow_body", head, lambda step: b" ",
                  "the timeout restarts at every byte received; scalecastd has no deadline for the whole body")


def scenario_chunked_slow(_a):
    """A chunked body whose chunks (one byte each) come one a second and
    never end."""
    head = (b"POST /api/v1/metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n")
    slow_scenario("chunked_slow", head, lambda step: b"1\r\n \r\n",
                  "the timeout restarts at every chunk; a chunked body that never ends is held until "
                  "max_body_size bytes have come, at any pace")


# ---------------------------------------------------------------------------
# Chunked bodies that never end, sent as fast as possible


def endless_chunks(port, results, i, chunk=65536, max_bytes=256 << 20, max_s=20):
    head = (b"POST /api/v1/metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n")
    piece = b"%x\r\n" % chunk + b" " * chunk + b"\r\n"
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
    except OSError as e:
        results[i] = (0, 0.0, "connect: %s" % e)
        return
    sent = 0
    t0 = time.monotonic()
    answer = None
    try:
        s.sendall(head)
        s.settimeout(1.0)
        while sent < max_bytes and time.monotonic() - t0 < max_s:
            try:
                sent += s.send(piece)
            except socket.timeout:
                continue
            except OSError:
                break
    finally:
        took = time.monotonic() - t0
        s.settimeout(2.0)
        try:
            data = s.recv(4096)
            answer = data.split(b"\r\n", 1)[0].decode("latin-1") if data else "closed"
        except OSError as e:
            answer = e.__class__.__name__
        s.close()
    results[i] = (sent, took, answer)


def scenario_chunked_endless(_a):
    max_body = 1 << 20
    with server("max_body_size = 1MiB\n") as srv:
        time.sleep(0.3)
        base = srv.rss_kib()
        n = 20
        results = {}
        waves = 0
        with Probe(srv) as probe:
            t0 = time.monotonic()
            while time.monotonic() - t0 < 5.0:
                threads = [threading.Thread(target=endless_chunks, args=(srv.port, results, waves * n + i))
                           for i in range(n)]
                for t in threads:
                    t.start()
                for t in threads:
                    t.join(60)
                waves += 1
        probe.report("chunked_endless")
        check_rss(probe, base, n * 3 * max_body // 1024 + 16 * 1024, "chunked_endless")
        sent = sorted(r[0] for r in results.values())
        took = max(r[1] for r in results.values())
        answers = sorted(set(r[2] for r in results.values()))
        note("chunked_endless: %d connections (%d waves of %d) sending 64 KiB chunks without end, max_body_size "
             "1 MiB: cut off after %d to %d bytes sent, within %.2f s; answers %r"
             % (len(results), waves, n, sent[0], sent[-1], took, answers))
        check(len(results) == waves * n, "chunked_endless: %d of %d senders finished" % (len(results), waves * n))
        # Loopback socket buffers hold a few MiB that the server never read.
        check(sent[-1] <= max_body + (16 << 20),
              "chunked_endless: a connection sent %d bytes before the server stopped it (max_body_size %d)"
              % (sent[-1], max_body))
        check(all(a.startswith("HTTP/1.1 413") or a in ("closed", "ConnectionResetError") for a in answers),
              "chunked_endless: answers other than 413 or a close: %r" % answers)
        ingest_works(srv, "chunked_endless")


# ---------------------------------------------------------------------------
# Huge headers


def huge_requests():
    big = b"a" * (1 << 20)
    return {
        "one 1 MiB header line": b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + big + b"\r\nConnection: close\r\n\r\n",
        "a 1 MiB request line": b"GET /healthz?" + big + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        "20000 small headers": b"GET /healthz HTTP/1.1\r\nHost: x\r\n"
        + b"".join(b"X-%d: y\r\n" % i for i in range(20000)) + b"Connection: close\r\n\r\n",
        "a header block just over 16 KiB": b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * (16 << 10)
        + b"\r\nConnection: close\r\n\r\n",
    }


def endless_header(port, results, i, max_bytes=64 << 20, max_s=20):
    """A header line that never ends, sent as fast as the server takes it."""
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
    except OSError as e:
        results[i] = (-1, 0.0)
        check(False, "huge_headers: connect: %s" % e)
        return
    sent = 0
    t0 = time.monotonic()
    piece = b"a" * 65536
    try:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Endless: ")
        s.settimeout(1.0)
        while sent < max_bytes and time.monotonic() - t0 < max_s:
            try:
                sent += s.send(piece)
            except socket.timeout:
                continue
            except OSError:
                break
    finally:
        results[i] = (sent, time.monotonic() - t0)
        s.close()


def scenario_huge_headers(_a):
    with server() as srv:
        time.sleep(0.3)
        base = srv.rss_kib()
        with Probe(srv) as probe:
            for name, req in huge_requests().items():
                t0 = time.monotonic()
                status, _h, _b = srvlib.raw_request(srv.port, req, timeout=10)
                took = time.monotonic() - t0
                note("huge_headers: %s: answer %r in %.3f s" % (name, status, took))
                check(status in (400, 413, 414, 431), "huge_headers: %s: answer %r, expected a 4xx refusal" % (name, status))
                check(took < 1.0, "huge_headers: %s: took %.2f s" % (name, took))
            # Just under the limit is still served.
            ok = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * (15 << 10) + b"\r\nConnection: close\r\n\r\n"
            status, _h, _b = srvlib.raw_request(srv.port, ok, timeout=10)
            check(status == 200, "huge_headers: a 15 KiB header block (under max_header_size 16 KiB): %r" % status)
            # Waves of 50 connections each sending a header line without end,
            # for 5 s, so the probe sees the server throughout.
            n = 50
            results = {}
            waves = 0
            t0 = time.monotonic()
            while time.monotonic() - t0 < 5.0:
                threads = [threading.Thread(target=endless_header, args=(srv.port, results, waves * n + i))
                           for i in range(n)]
                for t in threads:
                    t.start()
                for t in threads:
                    t.join(60)
                waves += 1
        probe.report("huge_headers")
        check_rss(probe, base, 16 * 1024, "huge_headers")
        sent = sorted(r[0] for r in results.values())
        took = max(r[1] for r in results.values())
        note("huge_headers: %d connections (%d waves of %d) each sending a header line without end: cut off after "
             "%d to %d bytes, within %.2f s" % (len(results), waves, n, sent[0], sent[-1], took))
        check(sent[-1] <= (16 << 20), "huge_headers: a connection sent %d bytes of one header line" % sent[-1])
        ingest_works(srv, "huge_headers")


# ---------------------------------------------------------------------------
# Thousands of idle connections


def open_idle(port, n):
    """Opens n connections one after another, as fast as the kernel
    completes them. Returns the sockets and the number of connects that took
    over 0.5 s (a SYN dropped on a full listen queue is retransmitted after
    1 s)."""
    socks, slow = [], 0
    for _ in range(n):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.settimeout(5)
        t0 = time.monotonic()
        s.connect(("127.0.0.1", port))
        slow += time.monotonic() - t0 > 0.5
        s.setblocking(False)
        socks.append(s)
    return socks, slow


def count_closed(socks):
    closed = 0
    for s in socks:
        try:
            if s.recv(1) == b"":
                closed += 1
        except BlockingIOError:
            pass
        except OSError:
            closed += 1
    return closed


IDLE = 3000


IDLE_TIMEOUT = 15  # opening 3000 connections takes seconds: a longer request_timeout here


def scenario_idle_connections(_a):
    soft = abuselib.raise_nofile(IDLE + 512)
    if soft < IDLE + 256:
        raise abuselib.Skip("RLIMIT_NOFILE hard limit %d is too low for %d connections" % (soft, IDLE))
    with server("", timeout=IDLE_TIMEOUT) as srv:
        time.sleep(0.3)
        base = srv.rss_kib()
        overflows0 = abuselib.listen_overflows()
        with Probe(srv) as probe:
            t0 = time.monotonic()
            socks, slow_connects = open_idle(srv.port, IDLE)
            opened = time.monotonic() - t0
            overflows = abuselib.listen_overflows() - overflows0
            time.sleep(0.5)
            fds = abuselib.open_fds(srv.proc.pid)
            rss_open = srv.rss_kib()
            # Until request_timeout the server keeps them; then it closes them.
            deadline = t0 + IDLE_TIMEOUT + SLACK + opened
            while time.monotonic() < deadline:
                time.sleep(0.25)
            closed = count_closed(socks)
            t_closed = time.monotonic() - t0
        probe.report("idle_connections")
        during_open = [dt for t, dt in probe.record["lat"] if t <= opened + 0.5]
        holding = [dt for t, dt in probe.record["lat"] if t > opened + 0.5]
        note("idle_connections: health checks while connecting: %d, max %.1f ms; while all %d were held: %d, "
             "max %.1f ms" % (len(during_open), max(during_open, default=0) * 1e3, IDLE, len(holding),
                              max(holding, default=0) * 1e3))
        # A connection the listen queue had no room for waits for the
        # client's SYN retransmission (1 s): scalecastd listens with
        # libevent's fixed backlog of 128 (see docs/robustness.md).
        note("idle_connections: %d connects waited for a SYN retransmission; the kernel counted %d connection "
             "attempts dropped on a full listen queue meanwhile (TcpExt ListenOverflows)" % (slow_connects, overflows))
        check(slow_connects == 0,
              "idle_connections: %d of %d connects waited a second for a SYN retransmission: the listen queue "
              "overflowed (scalecastd listens with libevent's fixed backlog of 128)" % (slow_connects, IDLE))
        note("idle_connections: %d opened in %.2f s; server holds %d descriptors, RSS %d KiB (+%d KiB, %.1f KiB per "
             "connection); %d closed by the server %.1f s after the first connect"
             % (IDLE, opened, fds, rss_open, rss_open - base, (rss_open - base) / IDLE, closed, t_closed))
        check(fds >= IDLE, "idle_connections: the server holds %d descriptors, expected every connection accepted" % fds)
        check_rss(probe, base, IDLE * 16 + 16 * 1024, "idle_connections")
        check(closed == IDLE, "idle_connections: %d of %d idle connections still open after request_timeout (%d s) + %.0f s"
              % (IDLE - closed, IDLE, IDLE_TIMEOUT, SLACK))
        for s in socks:
            s.close()
        ingest_works(srv, "idle_connections")


FD_LIMIT = 512


def scenario_fd_exhaustion(_a):
    """More connections than the server has descriptors (RLIMIT_NOFILE 512):
    it must stay answerable, e.g. by refusing or closing excess or idle
    connections, and must not spin on accept()."""
    abuselib.raise_nofile(2 * FD_LIMIT + 256)
    tmp = tempfile.mkdtemp(prefix="abuse-fd-")
    wrapper = os.path.join(tmp, "scalecastd-ulimit")
    with open(wrapper, "w") as f:
        f.write("#!/bin/sh\nulimit -n %d || exit 1\nexec '%s' \"$@\"\n" % (FD_LIMIT, ARGS.bin))
    os.chmod(wrapper, 0o755)
    try:
        with server(wrapper=wrapper) as srv:
            time.sleep(0.3)
            socks = []
            with Probe(srv) as probe:
                cpu0 = abuselib.proc_cpu_s(srv.proc.pid)
                t0 = time.monotonic()
                for _ in range(FD_LIMIT + 100):
                    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                    s.setblocking(False)
                    try:
                        s.connect(("127.0.0.1", srv.port))
                    except BlockingIOError:
                        pass
                    socks.append(s)
                time.sleep(3.0)
                cpu = (abuselib.proc_cpu_s(srv.proc.pid) - cpu0) / (time.monotonic() - t0)
                fds = abuselib.open_fds(srv.proc.pid)
            log = srv.log()
            for s in socks:
                s.close()
            probe.report("fd_exhaustion")
            note("fd_exhaustion: %d connections against %d descriptors: server holds %d, uses %.0f%% of a core "
                 "while they are idle" % (len(socks), FD_LIMIT, fds, cpu * 100))
            check(cpu < 0.5, "fd_exhaustion: the server used %.0f%% of a core while idle connections filled its "
                  "descriptors (accept() failing in a loop?)" % (cpu * 100))
            lines = [ln for ln in log.splitlines() if "accept" in ln.lower() or "open files" in ln.lower()]
            note("fd_exhaustion: %d log lines about accept, e.g. %r" % (len(lines), lines[:2]))
            check(len(lines) < 100, "fd_exhaustion: %d log lines about accept() in 3 s" % len(lines))
            # The excess connections are gone: new ones must be accepted again.
            time.sleep(0.5)
            t0 = time.monotonic()
            try:
                r = srv.request("GET", "/healthz", timeout=5)
                status = r.status
            except OSError as e:
                status = e.__class__.__name__
            note("fd_exhaustion: after the idle connections closed: /healthz %r in %.2f s" % (status, time.monotonic() - t0))
            check(status == 200, "fd_exhaustion: once descriptors are free again the server does not accept "
                  "connections any more (/healthz: %r)" % status)
            ingest_works(srv, "fd_exhaustion")
    finally:
        os.unlink(wrapper)
        os.rmdir(tmp)


# ---------------------------------------------------------------------------
# Many concurrent large bodies


def large_body(node, target_bytes, valid):
    """A batch of about target_bytes: samples of 100 containers with long
    names (so the body is big for few samples, and few series: this is
    about body size, not series cardinality). An invalid one has a string
    value in its last sample (400, nothing stored)."""
    name = "c" * 200
    svc = "s" * 200
    t = int(time.time()) - 3600
    one = len(json.dumps({"ts": t + 0.001, "container": name + "-000", "service": svc,
                          "metrics": {"cpu": 12.5}})) + 2
    n = max(1, (target_bytes - 100) // one)
    samples = [{"ts": t + (i // 100) * 0.001, "container": "%s-%03d" % (name, i % 100), "service": svc,
                "metrics": {"cpu": 12.5}} for i in range(n)]
    if not valid:
        samples[-1]["metrics"]["cpu"] = "x"
    return json.dumps({"node": node, "samples": samples}).encode(), n


def post_body(port, body, results, key, rounds):
    out = []
    for _ in range(rounds):
        t0 = time.monotonic()
        req = (b"POST /api/v1/metrics HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
               b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body)) + body
        try:
            status, _h, _b = srvlib.raw_request(port, req, timeout=60)
        except OSError as e:
            status = e.__class__.__name__
        out.append((status, time.monotonic() - t0))
    results[key] = out


def scenario_large_bodies(_a):
    max_body = 8 << 20
    n, rounds = 16, 2
    with server() as srv:  # default max_body_size: 8 MiB
        time.sleep(0.3)
        base = srv.rss_kib()
        bodies = []
        for i in range(n):
            body, samples = large_body("big-%d" % i, max_body - 4096, valid=i % 2 == 0)
            bodies.append((body, samples))
        note("large_bodies: %d clients, %d POSTs each, bodies of %d bytes (max_body_size %d), half valid "
             "(%d samples each), half refused at their last sample" % (n, rounds, len(bodies[0][0]), max_body, bodies[0][1]))
        results = {}
        with Probe(srv) as probe:
            t0 = time.monotonic()
            threads = [threading.Thread(target=post_body, args=(srv.port, bodies[i][0], results, i, rounds))
                       for i in range(n)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(120)
            took = time.monotonic() - t0
        probe.report("large_bodies")
        # Per request in flight: the body as read, its contiguous copy and the
        # parsed batch; documented as at most 3 x max_body_size each.
        check_rss(probe, base, n * 3 * max_body // 1024 + 32 * 1024, "large_bodies")
        statuses = [st for i in range(n) for st, _t in results.get(i, [])]
        worst = max((t for i in range(n) for _s, t in results.get(i, [])), default=-1)
        note("large_bodies: %d POSTs in %.1f s, slowest %.2f s, statuses %r"
             % (len(statuses), took, worst, sorted(set(map(str, statuses)))))
        for i in range(n):
            want = 200 if i % 2 == 0 else 400
            got = [st for st, _t in results.get(i, [])]
            check(got == [want] * rounds, "large_bodies: client %d got %r, expected %d each time" % (i, got, want))
        s = srv.wait_compacted(60)
        stored = s["samples"]
        want = sum(b[1] for i, b in enumerate(bodies) if i % 2 == 0)
        check(stored == want, "large_bodies: %d samples stored, expected %d (the valid bodies, once each)" % (stored, want))
        over = b"x" * (max_body + 1)
        status, _h, _b = srvlib.raw_request(
            srv.port, b"POST /api/v1/metrics HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(over) + over)
        check(status == 413, "large_bodies: a body of max_body_size + 1 bytes: %r" % status)
        ingest_works(srv, "large_bodies")


SCENARIOS = {name[len("scenario_"):]: fn for name, fn in globals().items() if name.startswith("scenario_")}


def main():
    global ARGS

    def wrap(fn):
        def run(a):
            global ARGS
            ARGS = a
            fn(a)
        return run

    return abuselib.run_main({k: wrap(v) for k, v in SCENARIOS.items()})


if __name__ == "__main__":
    sys.exit(main())
