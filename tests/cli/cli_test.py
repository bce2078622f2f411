#!/usr/bin/env python3
"""End-to-end tests of the scalecast CLI against the real scalecastd.

Usage: cli_test.py --scalecast BIN --scalecastd BIN TEST

Each TEST starts scalecastd on a free loopback port with its database in a
temporary directory, pushes samples through POST /api/v1/metrics, runs the
scalecast binary and checks its output and exit status. Exit 0 pass, 1 fail,
77 skipped (with the reason on stderr).
"""

import argparse
import csv
import io
import json
import os
import pty
import select
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

SKIP = 77
SERVERS = []  # every scalecastd started, for their logs on failure


class Fail(Exception):
    pass


class Skip(Exception):
    pass


def check(cond, what):
    if not cond:
        raise Fail(what)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """One scalecastd with a temporary database; stopped by close()."""

    def __init__(self, binary, config=""):
        SERVERS.append(self)
        self.final_log = None
        self.tmp = tempfile.TemporaryDirectory(prefix="scalecast-cli-test-")
        self.port = free_port()
        self.url = "http://127.0.0.1:%d" % self.port
        conf = os.path.join(self.tmp.name, "test.conf")
        with open(conf, "w") as f:
            f.write(config)
        self.log = os.path.join(self.tmp.name, "scalecastd.log")
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                [binary, "--config", conf, "--listen", "127.0.0.1:%d" % self.port,
                 "--db", os.path.join(self.tmp.name, "db.sqlite")],
                stdout=log, stderr=log)
        deadline = time.time() + 10
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise Fail("scalecastd exited:\n" + self.log_text())
            try:
                urllib.request.urlopen(self.url + "/healthz", timeout=1).read()
                return
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.05)
        raise Fail("scalecastd did not answer /healthz:\n" + self.log_text())

    def log_text(self):
        if self.final_log is not None:
            return self.final_log
        with open(self.log, errors="replace") as f:
            return f.read()

    def request(self, path, body=None, token=None):
        req = urllib.request.Request(self.url + path, data=body)
        if body is not None:
            req.add_header("Content-Type", "application/json")
        if token:
            req.add_header("Authorization", "Bearer " + token)
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.read()

    def push(self, docs, token=None):
        body = json.dumps(docs).encode()
        answer = json.loads(self.request("/api/v1/metrics", body, token))
        check(answer["accepted"] > 0, "push accepted nothing: %r" % answer)

    def close(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.final_log = self.log_text()
        self.tmp.cleanup()


class Cli:
    def __init__(self, binary):
        self.binary = binary

    def run(self, *args, server=None, env=None, stdout=None):
        e = dict(os.environ)
        e.pop("SCALECAST_SERVER", None)
        e.pop("SCALECAST_TOKEN", None)
        e.update(env or {})
        cmd = [self.binary] + list(args)
        if server:
            cmd += ["--server", server.url]
        p = subprocess.run(cmd, env=e, stdout=stdout or subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=60)
        out = p.stdout.decode() if p.stdout is not None else ""
        return p.returncode, out, p.stderr.decode()

    def ok(self, *args, **kw):
        rc, out, err = self.run(*args, **kw)
        check(rc == 0, "%s: exit %d, stderr: %s" % (" ".join(args), rc, err))
        return out


def table(text):
    """Rows of a kubectl-style table: lists of cells split on 3+ spaces."""
    rows = []
    for line in text.splitlines():
        if line.strip():
            cells = [c for c in line.split("   ") if c.strip()]
            rows.append([c.strip() for c in cells])
    return rows


def demo_data(now, n=120, step=5):
    """Two nodes with host metrics and one container each, n samples."""
    docs = []
    for node, base in (("node-a", 30.0), ("node-b", 60.0)):
        samples = []
        for i in range(n):
            ts = now - (n - 1 - i) * step
            samples.append({"ts": ts, "metrics": {
                "cpu": base + i * 0.1, "mem": 55.5, "disk_read_bps": 1048576.0,
                "disk_write_bps": 2048.0, "net_rx_bps": 125000.0, "net_tx_bps": 5000.0,
                "load1": 0.5}})
            samples.append({"ts": ts, "container": "web.1.abc", "service": "web",
                            "metrics": {"cpu": 12.5, "mem": 3.1, "mem_bytes": 52428800}})
        docs.append({"node": node, "samples": samples})
    return docs


# ---- Tests --------------------------------------------------------------

def test_usage(a):
    cli = Cli(a.scalecast)
    rc, out, err = cli.run()
    check(rc == 2 and "usage: scalecast" in err, "no command: exit 2 with usage")
    out = cli.ok("--help")
    for cmd in ("status", "nodes", "decisions", "forecast", "export", "backtest forecast",
                "backtest autoscale"):
        check(cmd in out, "--help lists %r" % cmd)
    for cmd in (["status"], ["nodes"], ["decisions"], ["forecast"], ["export"]):
        out = cli.ok(*(cmd + ["--help"]))
        check(out.startswith("usage: scalecast " + cmd[0]), "%s --help: usage" % cmd[0])
        check("--server" in out and "exit status" in out, "%s --help: common options" % cmd[0])
    bad = [
        (["frobnicate"], "unknown command"),
        (["status", "--bogus"], "unrecognized option"),
        (["status", "a", "b"], "at most one SERVICE"),
        (["nodes", "--server", "127.0.0.1:8080"], "expected http://"),
        (["forecast", "node-a"], "expected NODE and METRIC"),
        (["forecast", "n", "cpu", "--confidence", "1.5"], "--confidence '1.5'"),
        (["forecast", "n", "cpu", "--horizon", "soon"], "--horizon 'soon'"),
        (["decisions", "--limit", "0"], "--limit '0'"),
        (["decisions", "--since", "-5"], "--since '-5'"),
        (["export", "--from", "yesterday"], "--from 'yesterday'"),
        (["export", "--json"], "--json does not apply"),
        (["export", "extra"], "unexpected argument 'extra'"),
        (["nodes", "--timeout", "0"], "--timeout '0'"),
    ]
    for args, msg in bad:
        rc, out, err = cli.run(*args)
        check(rc == 2, "%s: exit %d, want 2" % (" ".join(args), rc))
        check(msg in err, "%s: stderr %r lacks %r" % (" ".join(args), err, msg))
        check(out == "", "%s: nothing on stdout" % " ".join(args))


def test_server_down(a):
    cli = Cli(a.scalecast)
    url = "http://127.0.0.1:%d" % free_port()  # nothing listens there
    for args in (["status"], ["nodes"], ["decisions"], ["forecast", "n", "cpu"], ["export"],
                 ["nodes", "--json"]):
        rc, out, err = cli.run(*(args + ["--server", url]))
        check(rc == 3, "%s against a closed port: exit %d, want 3" % (args[0], rc))
        check("cannot reach scalecastd at " + url in err, "%s: says why: %r" % (args[0], err))
        check(out == "", "%s: nothing on stdout" % args[0])
    # The environment names the server too.
    rc, _, err = cli.run("nodes", env={"SCALECAST_SERVER": url})
    check(rc == 3 and url in err, "SCALECAST_SERVER is used")


def test_nodes(a):
    srv = Server(a.scalecastd)
    try:
        cli = Cli(a.scalecast)
        now = time.time()
        srv.push(demo_data(now))
        rows = table(cli.ok("nodes", server=srv))
        check(rows[0] == ["NODE", "STATE", "LAST SEEN", "CPU", "MEM", "LOAD1", "DISK R/W",
                          "NET RX/TX", "CONTAINERS"], "header: %r" % rows[0])
        check([r[0] for r in rows[1:]] == ["node-a", "node-b"], "one row per node: %r" % rows)
        a_row = rows[1]
        check(a_row[1] == "up", "node-a is up")
        check(a_row[3] == "%.1f%%" % (30 + 119 * 0.1), "node-a cpu is the newest: %r" % a_row)
        check(a_row[4] == "55.5%" and a_row[5] == "0.50", "mem, load1: %r" % a_row)
        check(a_row[6] == "1.0MiB/s/2.0KiB/s", "disk: %r" % a_row[6])
        check(a_row[7] == "122.1KiB/s/4.9KiB/s", "net: %r" % a_row[7])
        check(a_row[8] == "1", "one container")
        check(rows[2][3] == "%.1f%%" % (60 + 119 * 0.1), "node-b cpu: %r" % rows[2])

        out = cli.ok("nodes", "node-a", server=srv)
        check("Node:       node-a" in out and "State:      up" in out, out)
        check("  load1              0.50" in out, "every metric listed:\n" + out)
        crow = [r for r in table(out) if r[0] == "web.1.abc"]
        check(crow and crow[0][1] == "web" and crow[0][3] == "12.5%" and
              crow[0][5] == "50.0MiB", "container row: %r" % crow)

        # --json is the server's answer.
        mine = json.loads(cli.ok("nodes", "--json", server=srv))
        theirs = json.loads(srv.request("/api/v1/nodes"))
        check([n["node"] for n in mine["nodes"]] == [n["node"] for n in theirs["nodes"]] and
              mine["nodes"][0]["metrics"] == theirs["nodes"][0]["metrics"],
              "--json prints /api/v1/nodes")
        one = json.loads(cli.ok("nodes", "node-b", "--json", server=srv))
        check(one["node"] == "node-b", "nodes NODE --json: that node")

        rc, out, err = cli.run("nodes", "nosuch", server=srv)
        check(rc == 1 and "no node 'nosuch'" in err, "unknown node: exit 1 (%d, %r)" % (rc, err))
    finally:
        srv.close()


def test_token(a):
    srv = Server(a.scalecastd, "[server]\nread_token = r3ad\ningest_token = 1ngest\n")
    try:
        cli = Cli(a.scalecast)
        srv.push(demo_data(time.time(), n=3), token="1ngest")
        rc, out, err = cli.run("nodes", server=srv)
        check(rc == 3 and "answered 401" in err and "token" in err,
              "no token: exit 3 naming 401 (%d, %r)" % (rc, err))
        rc, out, err = cli.run("nodes", "--token", "wrong", server=srv)
        check(rc == 3 and "401" in err, "wrong token: exit 3")
        check("node-a" in cli.ok("nodes", "--token", "r3ad", server=srv), "--token")
        out = cli.ok("nodes", env={"SCALECAST_SERVER": srv.url, "SCALECAST_TOKEN": "r3ad"})
        check("node-a" in out, "SCALECAST_SERVER and SCALECAST_TOKEN")
        # The flag wins over the environment.
        rc, _, _ = cli.run("nodes", "--token", "wrong",
                           env={"SCALECAST_SERVER": srv.url, "SCALECAST_TOKEN": "r3ad"})
        check(rc == 3, "--token overrides SCALECAST_TOKEN")
    finally:
        srv.close()


def test_forecast(a):
    srv = Server(a.scalecastd)
    try:
        cli = Cli(a.scalecast)
        now = time.time()
        # Ten minutes of a straight ramp: every model sees the trend.
        samples = [{"ts": now - 600 + i * 5, "metrics": {"cpu": 20 + i * 0.2}}
                   for i in range(121)]
        srv.push({"node": "node-a", "samples": samples})
        out = cli.ok("forecast", "node-a", "cpu", "--horizon", "2m", "--model", "linear",
                     server=srv)
        want = json.loads(srv.request(
            "/api/v1/forecast?node=node-a&metric=cpu&horizon=120&model=linear"))
        check("Series:      node-a cpu" in out, out)
        check("Model:       linear" in out, out)
        check("History:     121 points" in out, out)
        line = [l for l in out.splitlines() if l.startswith("Forecast:")]
        check(line and ("%.1f%%" % want["value"]) in line[0] and
              ("%.1f%%" % want["lower"]) in line[0] and "(+2m)" in line[0] and
              "90% interval" in line[0], "forecast line: %r vs %r" % (line, want))
        check(abs(want["value"] - (20 + 120 * 0.2 + 24 * 0.2)) < 1.0,
              "the server extrapolates the ramp: %r" % want["value"])
        got = json.loads(cli.ok("forecast", "node-a", "cpu", "--horizon", "120", "--model",
                                "linear", "--json", server=srv))
        check(got["model"] == "linear" and abs(got["value"] - want["value"]) < 1e-6,
              "--json is the server's answer")
        rc, out, err = cli.run("forecast", "node-a", "nosuch", server=srv)
        check(rc == 3 and "answered 404" in err and "metric=nosuch" in err,
              "unknown series: exit 3 with the server's message (%d, %r)" % (rc, err))
        rc, out, err = cli.run("forecast", "node-a", "cpu", "--model", "magic", server=srv)
        check(rc == 3 and "answered 400" in err and "magic" in err, "bad model: %r" % err)
    finally:
        srv.close()


def exported(srv, query=""):
    return srv.request("/api/v1/export.csv" + query)


def test_export(a):
    srv = Server(a.scalecastd)
    try:
        cli = Cli(a.scalecast)
        now = time.time()
        srv.push(demo_data(now, n=50))
        with tempfile.TemporaryFile() as f:
            rc, _, err = cli.run("export", server=srv, stdout=f)
            check(rc == 0, "export: %d %s" % (rc, err))
            f.seek(0)
            body = f.read()
        check(body == exported(srv), "export > file is the server's CSV, byte for byte")
        rows = list(csv.reader(io.StringIO(body.decode())))
        check(rows[0] == ["ts", "node", "container", "service", "metric", "value"], rows[0])
        check(len(rows) == 1 + 2 * 50 * 10, "every sample: %d rows" % (len(rows) - 1))
        check(err == "", "no progress line when stderr is no terminal: %r" % err)

        # Filters go to the server.
        out = cli.ok("export", "--node", "node-b", "--metric", "cpu", "--container", "web.1.abc",
                     server=srv)
        rows = list(csv.reader(io.StringIO(out)))[1:]
        check(len(rows) == 50 and all(r[1] == "node-b" and r[2] == "web.1.abc" and
                                      r[4] == "cpu" for r in rows), "filters: %d" % len(rows))
        out = cli.ok("export", "--metric", "mem", "--from", "-%d" % 60, server=srv)
        rows = list(csv.reader(io.StringIO(out)))[1:]
        check(rows and all(float(r[0]) >= now - 65 for r in rows), "--from -60 (relative)")
        date = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now - 30))
        out = cli.ok("export", "--metric", "mem", "--node", "node-a", "--to", date, server=srv)
        rows = list(csv.reader(io.StringIO(out)))[1:]
        check(rows and all(float(r[0]) <= now - 29 for r in rows) and
              len(rows) < 100, "--to as a UTC date: %d rows" % len(rows))

        # -o FILE.
        path = os.path.join(srv.tmp.name, "out.csv")
        cli.ok("export", "--node", "node-a", "-o", path, server=srv)
        with open(path, "rb") as f:
            check(f.read() == exported(srv, "?node=node-a"), "-o FILE")
        rc, _, err = cli.run("export", "-o", "/nonexistent/dir/x.csv", server=srv)
        check(rc == 1 and "cannot write /nonexistent/dir/x.csv" in err, "unwritable -o: %r" % err)
        # A full disk is a failure of the work: exit 1.
        if os.path.exists("/dev/full"):
            with open("/dev/full", "wb") as full:
                rc, _, err = cli.run("export", server=srv, stdout=full)
            check(rc == 1 and "writing the output failed" in err, "/dev/full: %d %r" % (rc, err))
        rc, _, err = cli.run("export", "--from", "5", "--to", "2", server=srv)
        check(rc == 3 and "answered 400" in err, "from after to: the server's 400 (%r)" % err)
    finally:
        srv.close()


def test_export_stream(a):
    """A CSV larger than the client's whole memory use: it was streamed."""
    srv = Server(a.scalecastd, "[server]\nsync = normal\n")
    try:
        cli = Cli(a.scalecast)
        start = time.time() - 400000
        per_req, total = 100000, 600000
        for k in range(total // per_req):
            samples = [{"ts": start + (k * per_req + i) * 0.5,
                        "metrics": {"cpu": (i % 1000) / 10.0}} for i in range(per_req)]
            srv.push({"node": "big-node-with-a-long-name", "samples": samples})
        with tempfile.TemporaryFile() as f:
            env = dict(os.environ)
            env.pop("SCALECAST_SERVER", None)
            p = subprocess.Popen([a.scalecast, "export", "--server", srv.url], stdout=f,
                                 stderr=subprocess.PIPE, env=env)
            # The peak resident set of the exec'd CLI (VmHWM: rusage's maxrss
            # would also count the Python parent it was forked from).
            hwm = 0
            while p.poll() is None:
                try:
                    with open("/proc/%d/status" % p.pid) as st:
                        for line in st:
                            if line.startswith("VmHWM:"):
                                hwm = max(hwm, int(line.split()[1]) * 1024)
                except OSError:
                    pass
                time.sleep(0.01)
            err = p.stderr.read().decode()
            size = f.seek(0, os.SEEK_END)
            f.seek(0)
            lines = sum(1 for _ in f)
        check(p.returncode == 0, "export: %d %s" % (p.returncode, err))
        check(lines == total + 1, "all %d rows: %d" % (total, lines - 1))
        print("export: %.1f MiB of CSV streamed; the client's peak RSS %.1f MiB" %
              (size / 2**20, hwm / 2**20))
        # AddressSanitizer's shadow memory and quarantine inflate RSS: there
        # the bound is the CSV itself (still proves it was not held whole).
        sanitized = os.environ.get("SCALECAST_SANITIZED") == "1"
        bound = size if sanitized else size / 2
        check(0 < hwm < bound, "client peak RSS %d is not well below the %d-byte CSV" %
              (hwm, size))
    finally:
        srv.close()


def test_export_progress(a):
    """stderr a terminal, stdout a file: a progress line with bytes and rows."""
    srv = Server(a.scalecastd)
    try:
        srv.push(demo_data(time.time(), n=100))
        master, slave = pty.openpty()
        with tempfile.TemporaryFile() as f:
            env = dict(os.environ)
            env.pop("SCALECAST_SERVER", None)
            p = subprocess.Popen([a.scalecast, "export", "--server", srv.url], stdout=f,
                                 stderr=slave, env=env)
            os.close(slave)
            tty = b""
            while True:
                r, _, _ = select.select([master], [], [], 30)
                if not r:
                    break
                try:
                    chunk = os.read(master, 4096)
                except OSError:  # EIO: the other side closed
                    break
                if not chunk:
                    break
                tty += chunk
            rc = p.wait(30)
            os.close(master)
            f.seek(0)
            body = f.read()
        check(rc == 0, "export exit %d: %r" % (rc, tty))
        text = tty.decode(errors="replace")
        rows = body.count(b"\n") - 1
        check(text.startswith("\rexport ") and text.endswith("\n"),
              "a redrawn line ended by a newline: %r" % text)
        final = text.rstrip("\r\n").split("\r")[-1]
        check(("%d rows" % rows) in final, "final line counts the %d rows: %r" % (rows, final))
        check("KiB" in final or " B " in final, "final line shows bytes: %r" % final)
        check(body == exported(srv), "the CSV itself is untouched")

        # --no-progress: nothing on the terminal.
        master, slave = pty.openpty()
        with tempfile.TemporaryFile() as f:
            p = subprocess.Popen([a.scalecast, "export", "--no-progress", "--server", srv.url],
                                 stdout=f, stderr=slave, env=env)
            os.close(slave)
            rc = p.wait(30)
            r, _, _ = select.select([master], [], [], 0.2)
            data = b""
            if r:
                try:
                    data = os.read(master, 4096)
                except OSError:
                    pass
            os.close(master)
        check(rc == 0 and data == b"", "--no-progress draws nothing: %r" % data)
    finally:
        srv.close()


STATUS_CONFIG = """[autoscaler]
tick = 1s

[service web]
target = none
source = service:web
metric = cpu
window = 60s
target_utilization = 50
min_replicas = 1
max_replicas = 5
"""


def test_status_decisions(a):
    cli = Cli(a.scalecast)
    # With no [service] configured: an empty table on stderr, exit 0.
    srv = Server(a.scalecastd)
    try:
        rc, out, err = cli.run("status", server=srv)
        check(rc == 0 and out == "" and "No autoscaled service" in err, "empty: %r" % err)
        rc, out, err = cli.run("decisions", server=srv)
        check(rc == 0 and out == "" and "No decision" in err, "no decisions: %r" % err)
        check(json.loads(cli.ok("status", "--json", server=srv)) ==
              json.loads(srv.request("/api/v1/services")), "status --json")
    finally:
        srv.close()

    srv = Server(a.scalecastd, STATUS_CONFIG)
    try:
        now = time.time()
        samples = [{"ts": now - 60 + i, "container": "web.1", "service": "web",
                    "metrics": {"cpu": 80.0}} for i in range(61)]
        srv.push({"node": "node-a", "samples": samples})
        deadline = time.time() + 8
        services = []
        while time.time() < deadline:
            services = json.loads(srv.request("/api/v1/services"))["services"]
            decisions = json.loads(srv.request("/api/v1/decisions"))["decisions"]
            # The first tick may come before the push: wait for one after.
            if services and decisions and services[0].get("metric_value") is not None:
                break
            time.sleep(0.2)
        if not services:
            raise Skip("scalecastd reports no autoscaled service with a [service] section: "
                       "the autoscaler is not running in this build")
        rows = table(cli.ok("status", server=srv))
        check(rows[0] == ["SERVICE", "TARGET", "MODE", "MIN", "MAX", "REPLICAS", "DESIRED",
                          "METRIC/TARGET", "FORECAST"], "header: %r" % rows[0])
        row = rows[1]
        s = services[0]
        check(row[0] == "web" and row[1] == "none" and row[2] == "advisory",
              "service, target, mode: %r" % row)
        check(row[3] == "1" and row[4] == "5", "min, max: %r" % row)
        check(row[7].startswith("cpu 80.0%/50.0%"), "metric/target: %r (%r)" % (row[7], s))
        only = table(cli.ok("status", "web", server=srv))
        check(len(only) == 2, "status SERVICE")
        rc, _, err = cli.run("status", "nosuch", server=srv)
        check(rc == 1 and "No autoscaled service 'nosuch'" in err, "unknown service")

        rows = table(cli.ok("decisions", "web", server=srv))
        check(rows[0] == ["TIME", "SERVICE", "ACTION", "REPLICAS", "OUTCOME", "MODE", "REASON"],
              "decisions header: %r" % rows[0])
        check(len(rows) > 1 and rows[1][1] == "web", "decisions rows: %r" % rows)
        mine = json.loads(cli.ok("decisions", "web", "--json", "-n", "1", server=srv))
        check(len(mine["decisions"]) == 1 and mine["decisions"][0]["service"] == "web",
              "decisions --json --limit 1")
        rc, out, err = cli.run("decisions", "nosuch", server=srv)
        check(rc == 0 and "No decision" in err, "decisions of an unknown service: none")
    finally:
        srv.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--scalecast", required=True)
    ap.add_argument("--scalecastd", required=True)
    ap.add_argument("test")
    a = ap.parse_args()
    fn = globals().get("test_" + a.test)
    if not fn:
        print("no test %r" % a.test, file=sys.stderr)
        return 2
    try:
        fn(a)
    except Skip as e:
        print("SKIP cli.%s: %s" % (a.test, e), file=sys.stderr)
        return SKIP
    except Fail as e:
        print("FAIL cli.%s: %s" % (a.test, e), file=sys.stderr)
        for srv in SERVERS:
            tail = srv.log_text().splitlines()[-15:]
            print("--- scalecastd log (last lines):\n" + "\n".join(tail), file=sys.stderr)
        return 1
    print("ok cli.%s" % a.test)
    return 0


if __name__ == "__main__":
    sys.exit(main())
