#!/usr/bin/env python3
"""Faults under ingestion (issue 7, "Faults"), with the real binaries.

  test_faults.py --bin PATH/scalecastd --agent PATH/scalecast-agent SCENARIO

kill9_agents: several scalecast-agent processes (each its own NODE_ID and
  spool) push every second while a Python client pushes batches and records
  which ones got 200; scalecastd is killed with SIGKILL mid-stream and
  started again on the same port and database. Afterwards every
  acknowledged sample is stored, and every sample an agent collected (its
  spool holds each one, byte for byte as sent) is stored exactly once.
disk_full: the database on a 4 MiB tmpfs: ingestion until 503 with a clear
  error, /healthz 503 while full, PRAGMA integrity_check ok, the tmpfs
  remounted bigger and ingestion resuming without a restart, nothing
  acknowledged lost. Needs root (mount); exit 77 without it.
"""

import glob
import http.client
import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import abuselib  # noqa: E402
from abuselib import check, note, srvlib  # noqa: E402

ARGS = None


def start_on_port(srv, port):
    """(Re)starts srv on a given port: srvlib picks a fresh port on every
    start, and agents must find the server where they left it."""
    saved = srvlib.free_port
    srvlib.free_port = lambda: port
    try:
        srv.start()
    finally:
        srvlib.free_port = saved


class Pusher(threading.Thread):
    """Pushes unique batches one after another and records what got 200
    (acknowledged), what got an error answer (refused: nothing stored) and
    what got no answer (unknown outcome)."""

    def __init__(self, srv, node, metrics=5, per_batch=50, pause=0.02, t0=None):
        super().__init__(daemon=True)
        self.srv, self.node, self.metrics, self.per_batch, self.pause = srv, node, metrics, per_batch, pause
        self.t0 = t0 if t0 is not None else float(int(time.time()) - 3600)
        self.acked, self.refused, self.unknown = set(), set(), set()
        self.answers = {}
        self.errors = []  # error messages of non-200 answers
        self.stop = threading.Event()
        self.seq = 0

    def batch(self):
        samples, keys = [], []
        for _ in range(self.per_batch):
            ts = round(self.t0 + self.seq * 0.01, 3)
            self.seq += 1
            samples.append({"ts": ts, "metrics": {"m%d" % k: self.seq + k for k in range(self.metrics)}})
            keys += [(self.node, ts, "m%d" % k) for k in range(self.metrics)]
        return {"node": self.node, "samples": samples}, keys

    def push_one(self):
        doc, keys = self.batch()
        try:
            r = self.srv.push(doc)
        except (OSError, http.client.HTTPException):
            self.unknown.update(keys)
            self.answers["no answer"] = self.answers.get("no answer", 0) + 1
            return None
        self.answers[r.status] = self.answers.get(r.status, 0) + 1
        if r.status == 200:
            self.acked.update(keys)
        else:
            self.refused.update(keys)
            self.errors.append(r.error())
        return r

    def run(self):
        while not self.stop.is_set():
            self.push_one()
            time.sleep(self.pause)


def stored_keys(srv, nodes=None):
    """Every stored sample as (node, ts rounded to ms, metric), and the
    number of export rows (duplicates would make it larger than the set)."""
    _header, rows = srv.export_rows()
    keys = [(r[1], round(float(r[0]), 3), r[4]) for r in rows if nodes is None or r[1] in nodes]
    return set(keys), len(keys)


def check_acked(pusher, stored, what):
    missing = pusher.acked - stored
    check(not missing, "%s: %d acknowledged samples are missing, e.g. %r" % (what, len(missing), sorted(missing)[:3]))
    extra = {k for k in stored if k[0] == pusher.node} - pusher.acked - pusher.unknown
    check(not extra, "%s: %d stored samples were never acknowledged nor sent without answer: %r"
          % (what, len(extra), sorted(extra)[:3]))
    note("%s: Python client: %d samples acknowledged, %d without an answer, %d refused; answers %r"
         % (what, len(pusher.acked), len(pusher.unknown - pusher.acked), len(pusher.refused), pusher.answers))


# ---------------------------------------------------------------------------
# kill -9 under sustained ingestion by real agents

AGENTS = 4


class Agent:
    def __init__(self, binary, url, node, workdir):
        self.node = node
        self.spool = os.path.join(workdir, "spool-" + node)
        self.log_path = os.path.join(workdir, "agent-%s.log" % node)
        env = dict(os.environ, NODE_ID=node)
        env.pop("SCALECAST_TOKEN", None)
        cmd = [binary, "--server", url, "--interval", "1", "--spool-dir", self.spool, "--timeout", "2s",
               "--flush-timeout", "10s", "--docker-socket", "", "--nvml", "", "--log-level", "info"]
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=log, env=env)

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return None

    def log(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def stopped_line(self):
        """The counters of the agent's last "stopped:" line."""
        import re

        m = None
        for m in re.finditer(r"stopped: (\d+) rounds, (\d+) samples collected, (\d+) delivered, (\d+) refused by "
                             r"the server, (\d+) dropped by the spool limit, (\d+) left in the spool", self.log()):
            pass
        if not m:
            return None
        return dict(zip(("rounds", "collected", "delivered", "refused", "dropped", "left"), map(int, m.groups())))

    def spooled(self):
        """Every sample line the agent wrote to its spool (the segments of
        a run are kept until 256 KiB): {(node, ts, metric)} and the number
        of lines."""
        keys, lines = set(), 0
        for seg in sorted(glob.glob(os.path.join(self.spool, "*.seg"))):
            with open(seg) as f:
                node = None
                for line in f:
                    if line.startswith("#"):
                        node = line.split("node=", 1)[1].strip()
                        continue
                    if not line.endswith("\n"):
                        continue
                    s = json.loads(line)
                    lines += 1
                    for m in s["metrics"]:
                        keys.add((node, round(s["ts"], 3), m))
        return keys, lines


def scenario_kill9_agents(a):
    if not a.agent:
        raise abuselib.Skip("no --agent given")
    work = tempfile.TemporaryDirectory(prefix="abuse-kill9-")
    srv = srvlib.Server(a.bin)
    agents = []
    try:
        srv.start()
        port = srv.port
        url = "http://127.0.0.1:%d" % port
        agents = [Agent(a.agent, url, "kill9-agent-%d" % i, work.name) for i in range(AGENTS)]
        pushers = [Pusher(srv, "kill9-python-%d" % i, pause=0) for i in range(2)]
        for p in pushers:
            p.start()
        time.sleep(5.0)
        t_kill = time.monotonic()
        rc = srv.kill9()
        check(rc == -signal.SIGKILL, "scalecastd killed by SIGKILL: %r" % rc)
        for p in pushers:
            p.stop.set()
            p.join(10)
        time.sleep(3.0)
        start_on_port(srv, port)
        note("kill9_agents: scalecastd down for %.1f s, restarted on port %d with the same database"
             % (time.monotonic() - t_kill, port))
        # The agents back off 1, 2, 4 s...: give them time to come back and
        # deliver their spools, while they keep collecting.
        time.sleep(8.0)
        for ag in agents:
            check(ag.proc.poll() is None, "agent %s still running before SIGTERM (exit %r)" % (ag.node, ag.proc.poll()))
        rcs = [ag.stop() for ag in agents]
        check(rcs == [0] * AGENTS, "agents exit 0 after SIGTERM: %r" % rcs)
        stored, rows = stored_keys(srv)
        check(rows == len(stored), "kill9_agents: %d duplicate rows in the export" % (rows - len(stored)))
        for p in pushers:
            check_acked(p, stored, "kill9_agents")
        for ag in agents:
            st = ag.stopped_line()
            if not check(st is not None, "agent %s logged no 'stopped:' line:\n%s" % (ag.node, ag.log()[-2000:])):
                continue
            spooled, lines = ag.spooled()
            mine = {k for k in stored if k[0] == ag.node}
            rounds = {k[1] for k in mine}
            note("kill9_agents: %s: %s; spool holds %d sample lines (%d metric samples); stored %d metric samples "
                 "at %d distinct times" % (ag.node, st, lines, len(spooled), len(mine), len(rounds)))
            check(st["collected"] >= 10, "%s collected only %d samples in ~14 s at 1 s" % (ag.node, st["collected"]))
            check(st["delivered"] == st["collected"] and st["left"] == 0 and st["dropped"] == 0 and st["refused"] == 0,
                  "%s: not everything delivered: %r" % (ag.node, st))
            check(lines == st["collected"], "%s: the spool holds %d lines, the agent says it collected %d"
                  % (ag.node, lines, st["collected"]))
            check(len(rounds) == st["collected"], "%s: %d distinct timestamps stored, %d samples collected"
                  % (ag.node, len(rounds), st["collected"]))
            missing = spooled - mine
            check(not missing, "%s: %d collected samples missing from the database, e.g. %r"
                  % (ag.node, len(missing), sorted(missing)[:3]))
            extra = mine - spooled
            check(not extra, "%s: %d stored samples the agent never collected: %r" % (ag.node, len(extra), sorted(extra)[:3]))
            gaps = sorted(rounds)
            worst = max((b - x for x, b in zip(gaps, gaps[1:])), default=0)
            check(worst < 1.9, "%s: a gap of %.2f s between collections at a 1 s interval" % (ag.node, worst))
            outage = [ln for ln in ag.log().splitlines() if "WARN" in ln or "back after" in ln]
            note("kill9_agents: %s log: %r" % (ag.node, outage[:3]))
        s = srv.wait_compacted()
        check(s["samples"] == len(stored), "stats samples %d, export rows %d" % (s["samples"], len(stored)))
        check(srv.stop() == 0, "clean exit after recovery")
    finally:
        for ag in agents:
            if ag.proc.poll() is None:
                ag.proc.kill()
                ag.proc.wait()
        work.cleanup()


# ---------------------------------------------------------------------------
# Disk full


def integrity(db):
    """PRAGMA integrity_check through a read-only connection."""
    con = sqlite3.connect("file:%s?mode=ro" % db, uri=True, timeout=10)
    try:
        return [r[0] for r in con.execute("PRAGMA integrity_check")]
    finally:
        con.close()


def fill(path):
    """Writes a file until the filesystem is full; returns its size."""
    n = 0
    with open(path, "wb", buffering=0) as f:
        block = b"\0" * 4096
        while True:
            try:
                n += f.write(block)
            except OSError:
                break
    return n


def mount_tmpfs(mnt, size):
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%s" % size, "tmpfs", mnt],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    return r.returncode == 0, r.stdout.decode(errors="replace")


def scenario_disk_full(a):
    if os.geteuid() != 0:
        raise abuselib.Skip("needs root to mount a tmpfs")
    work = tempfile.mkdtemp(prefix="abuse-diskfull-")
    mnt = os.path.join(work, "mnt")
    os.mkdir(mnt)
    ok, out = mount_tmpfs(mnt, "4m")
    if not ok:
        os.rmdir(mnt)
        os.rmdir(work)
        raise abuselib.Skip("cannot mount a tmpfs: %s" % out.strip())
    db = os.path.join(mnt, "scalecast.db")
    # The config and the server's log stay outside the small filesystem.
    srv = srvlib.Server(a.bin, args=("--db", db))
    try:
        srv.start()
        pid = srv.proc.pid
        p = Pusher(srv, "disk", metrics=10, per_batch=200, pause=0)
        first503 = None
        for i in range(3000):
            r = p.push_one()
            if r is not None and r.status != 200:
                first503 = (i, r)
                break
        if not check(first503 is not None, "disk_full: no refusal after %d pushes of 2000 samples" % p.answers.get(200, 0)):
            return
        i, r = first503
        note("disk_full: %d batches (%d samples) acknowledged, then %r" % (i, len(p.acked), r))
        check(r.status == 503, "disk_full: a full disk answers 503: %r" % r)
        err = r.error() or ""
        check("disk full" in err and "nothing of this batch was stored" in err,
              "disk_full: the error says the disk is full and nothing was stored: %r" % err)
        filler = fill(os.path.join(mnt, "filler"))
        note("disk_full: filled the remaining %d bytes of the tmpfs" % filler)
        for _ in range(5):
            r = p.push_one()
            check(r is not None and r.status == 503, "disk_full: a push while the disk is full: %r" % r)
        h = srv.request("GET", "/healthz")
        check(h.status == 503, "disk_full: /healthz while the disk is full: %r" % h)
        note("disk_full: /healthz while full: %r" % h)
        q = srv.request("GET", "/api/v1/series?node=disk&metric=m0&from=%d&to=%d" % (p.t0 - 1, p.t0 + 3600))
        check(q.status == 200, "disk_full: reads still answered while the disk is full: %r" % q)
        res = integrity(db)
        check(res == ["ok"], "disk_full: integrity_check while full: %r" % res[:5])
        logged = [ln for ln in srv.log().splitlines() if "disk full" in ln]
        check(logged, "disk_full: the server's log says the disk is full")
        note("disk_full: log: %r" % logged[:2])

        r = subprocess.run(["mount", "-o", "remount,size=64m", mnt], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        check(r.returncode == 0, "remount bigger: %r" % r.stdout)
        t0 = time.monotonic()
        resumed = None
        while time.monotonic() - t0 < 20:
            r = p.push_one()
            if r is not None and r.status == 200:
                resumed = time.monotonic() - t0
                break
            time.sleep(0.1)
        check(resumed is not None, "disk_full: ingestion did not resume within 20 s of the remount")
        check(srv.proc.pid == pid and srv.proc.poll() is None, "disk_full: the same server process throughout")
        note("disk_full: ingestion resumed %.2f s after the remount, without a restart" % (resumed or -1))
        for _ in range(20):
            r = p.push_one()
            check(r is not None and r.status == 200, "disk_full: a push after space returned: %r" % r)
        h = srv.request("GET", "/healthz")
        check(h.status == 200, "disk_full: /healthz after space returned: %r" % h)

        stored, rows = stored_keys(srv)
        check(rows == len(stored), "disk_full: %d duplicate rows" % (rows - len(stored)))
        check_acked(p, stored, "disk_full")
        leaked = stored & p.refused
        check(not leaked, "disk_full: %d samples of refused batches were stored, e.g. %r" % (len(leaked), sorted(leaked)[:3]))
        check(srv.stop() == 0, "disk_full: clean exit")
        res = integrity(db)
        check(res == ["ok"], "disk_full: integrity_check after the stop: %r" % res[:5])
        srv.start()
        stored2, _rows = stored_keys(srv)
        check(stored2 == stored, "disk_full: after a restart %d samples, before %d" % (len(stored2), len(stored)))
        check(srv.stop() == 0, "disk_full: clean exit after the restart")
    finally:
        srv.cleanup()
        r = subprocess.run(["umount", mnt], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        if r.returncode != 0:
            subprocess.run(["umount", "-l", mnt])
        os.rmdir(mnt)
        os.rmdir(work)


SCENARIOS = {name[len("scenario_"):]: fn for name, fn in globals().items() if name.startswith("scenario_")}

if __name__ == "__main__":
    sys.exit(abuselib.run_main(SCENARIOS))
