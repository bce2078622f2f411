"""Shared helpers of scalecastd's Python tests (stdlib only).

Starts the real scalecastd on a free loopback port with a database in a
temporary directory, talks HTTP to it, and reads its memory use from /proc.
"""

import http.client
import json
import os
import signal
import socket
import subprocess
import tempfile
import time


def free_port():
    """A port nothing listens on right now (the kernel's choice)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers  # lower-case name -> value
        self.body = body  # bytes

    def json(self):
        return json.loads(self.body)

    def error(self):
        """The "error" member of a JSON error body, or None."""
        try:
            doc = json.loads(self.body)
        except ValueError:
            return None
        return doc.get("error") if isinstance(doc, dict) else None

    def __repr__(self):
        return "<%d %r>" % (self.status, self.body[:300])


SANITIZER_MARKS = ("runtime error:", "AddressSanitizer", "LeakSanitizer", "SUMMARY:")


class Server:
    """One scalecastd process. The temporary directory (database, config,
    stderr log) outlives restarts and is removed by cleanup(), which prints
    the log if it holds a sanitizer report (its exit status alone may be
    lost, e.g. after kill -9)."""

    instances = []

    def __init__(self, binary, config=None, args=(), workdir=None):
        self.binary = binary
        self.tmp = tempfile.TemporaryDirectory(prefix="scalecastd-test-")
        self.dir = workdir or self.tmp.name
        self.db = os.path.join(self.dir, "scalecast.db")
        self.log_path = os.path.join(self.dir, "stderr.log")
        # The cases use fixed timestamps from 2024; scalecastd refuses samples
        # older than its retention (7 days by default), so tests run with a
        # long one unless they set their own.
        if config is None:
            config = "[server]\nretention = 36500d\n"
        elif "retention" not in config:
            config += "\n[server]\nretention = 36500d\n"
        self.config_text = config
        self.args = list(args)
        self.port = None
        self.proc = None
        self.final_log = None
        Server.instances.append(self)

    # -- lifecycle -----------------------------------------------------------

    def start(self, timeout=10.0):
        """Starts on a fresh free port and waits until /healthz answers."""
        for _attempt in range(5):
            self.port = free_port()
            cmd = [self.binary, "--listen", "127.0.0.1:%d" % self.port, "--db", self.db]
            if self.config_text is not None:
                path = os.path.join(self.dir, "test.conf")
                with open(path, "w") as f:
                    f.write(self.config_text)
                cmd[1:1] = ["--config", path]
            cmd += self.args
            log = open(self.log_path, "ab")
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=log, cwd=self.dir)
            log.close()
            if self._wait_ready(timeout):
                return self
            if "Address already in use" not in self.log():
                raise RuntimeError("scalecastd did not start:\n" + self.log())
        raise RuntimeError("scalecastd: no free port after 5 tries")

    def _wait_ready(self, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                r = self.request("GET", "/healthz", timeout=1)
                if r.status in (200, 503):
                    return True
            except OSError:
                pass
            time.sleep(0.02)
        self.proc.kill()
        self.proc.wait()
        raise RuntimeError("scalecastd did not answer within %.0f s:\n%s" % (timeout, self.log()))

    def stop(self, sig=signal.SIGTERM, timeout=20.0):
        """Sends sig and returns the exit status (negative: killed by a
        signal)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise RuntimeError("scalecastd ignored signal %d for %.0f s" % (sig, timeout))
        self.proc = None
        return rc

    def kill9(self):
        return self.stop(signal.SIGKILL)

    def restart(self):
        rc = self.stop()
        self.start()
        return rc

    def cleanup(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None
        if self.final_log is None:
            self.final_log = self.log()
            if any(m in self.final_log for m in SANITIZER_MARKS):
                print("scalecastd log with a sanitizer report:\n" + self.final_log[-6000:])
        self.tmp.cleanup()

    def sanitizer_report(self):
        text = self.final_log if self.final_log is not None else self.log()
        return any(m in text for m in SANITIZER_MARKS)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.cleanup()
        return False

    def log(self):
        try:
            with open(self.log_path, "r", errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def rss_kib(self):
        """Resident set size of the server process, KiB (from /proc)."""
        with open("/proc/%d/status" % self.proc.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        raise RuntimeError("no VmRSS in /proc/%d/status" % self.proc.pid)

    # -- HTTP ----------------------------------------------------------------

    def conn(self, timeout=30):
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def request(self, method, path, body=None, headers=None, timeout=30, conn=None):
        """One request; a fresh connection unless conn is given."""
        own = conn is None
        c = conn or self.conn(timeout)
        try:
            if isinstance(body, (dict, list)):
                body = json.dumps(body).encode()
                headers = dict(headers or {})
                headers.setdefault("Content-Type", "application/json")
            elif isinstance(body, str):
                body = body.encode()
            c.request(method, path, body=body, headers=headers or {})
            r = c.getresponse()
            data = r.read()
            hdrs = {k.lower(): v for k, v in r.getheaders()}
            return Response(r.status, hdrs, data)
        finally:
            if own:
                c.close()

    def push(self, doc, headers=None, conn=None):
        return self.request("POST", "/api/v1/metrics", doc, headers, conn=conn)

    def get_json(self, path, headers=None):
        r = self.request("GET", path, headers=headers)
        if r.status != 200:
            raise AssertionError("GET %s: %r" % (path, r))
        return r.json()

    def stats(self, headers=None):
        return self.get_json("/api/v1/stats", headers)

    def wait_compacted(self, timeout=30.0, headers=None):
        """Waits until the ingest log is fully compacted into chunks."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            s = self.stats(headers)
            if s["pending_log_rows"] == 0:
                return s
            time.sleep(0.05)
        raise AssertionError("ingest log not compacted after %.0f s: %r" % (timeout, s))

    def export_rows(self, query="", headers=None):
        """The CSV export parsed into (header, rows as tuples of strings)."""
        r = self.request("GET", "/api/v1/export.csv" + query, headers=headers, timeout=120)
        if r.status != 200:
            raise AssertionError("export%s: %r" % (query, r))
        lines = r.body.decode().split("\n")
        if lines and lines[-1] == "":
            lines.pop()
        return lines[0], [tuple(line.split(",")) for line in lines[1:]]


def raw_request(port, data, timeout=30.0):
    """Sends raw bytes and returns (status, headers, body) of the answer, or
    (None, {}, b"") if the server closed without one. The request should
    say "Connection: close": the answer is read until the server closes. A
    server may answer and close before reading a large body (413): the send
    error is then ignored and the answer read anyway. (No half-close: evhttp
    takes a client's EOF for a disconnect.)"""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        try:
            s.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass
        chunks = []
        while True:
            try:
                b = s.recv(65536)
            except ConnectionResetError:
                break
            if not b:
                break
            chunks.append(b)
    finally:
        s.close()
    return parse_response(b"".join(chunks))


def parse_response(raw):
    if not raw:
        return None, {}, b""
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    status = int(parts[1])
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    if headers.get("transfer-encoding", "").lower() == "chunked":
        body = dechunk(body)
    elif "content-length" in headers:
        body = body[: int(headers["content-length"])]
    return status, headers, body


def dechunk(data):
    out = []
    while data:
        size_line, _, rest = data.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            break
        out.append(rest[:size])
        data = rest[size + 2 :]
    return b"".join(out)
