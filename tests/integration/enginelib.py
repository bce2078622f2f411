"""Docker engine helpers of the end-to-end tests (Python stdlib only).

The engine is reached two ways: the docker CLI for setting things up (an
independent client, as tests/docker/README.md asks), and the Engine API over
its unix socket for cheap polling while scalecast acts.

Everything a test creates carries the label io.scalecast.test=RUN and a name
starting with RUN- (RUN is "sc-e2e-PID"), the convention of the C harness
(tests/docker/harness.h); cleanup() removes exactly that and nothing else.
"""

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.parse

TEST_LABEL = "io.scalecast.test"
IMAGE = "scalecast-busybox:test"


def say(*args):
    print(time.strftime("%H:%M:%S"), *args, file=sys.stderr, flush=True)


class SkipTest(Exception):
    """No engine can be started: the test exits 77 (ctest's skip)."""


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout):
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        try:
            s.connect(self.unix_path)
        except OSError:
            s.close()
            raise
        self.sock = s


def socket_of(host):
    if host.startswith("unix://"):
        return host[len("unix://") :]
    if host.startswith("/"):
        return host
    raise ValueError("not a unix socket engine: %r" % host)


class Engine:
    """One Docker engine, reached at host ("unix:///PATH")."""

    def __init__(self, host):
        self.host = host
        self.sock = socket_of(host)
        self.cli = ["docker", "-H", host]

    # -- CLI ------------------------------------------------------------------

    def docker(self, *args, check=True, timeout=60):
        """Runs the docker CLI; returns stdout stripped. Raises with stderr
        when check and it fails."""
        p = subprocess.run(
            self.cli + list(args), capture_output=True, text=True, timeout=timeout
        )
        if check and p.returncode != 0:
            raise AssertionError(
                "docker %s: exit %d: %s" % (" ".join(args), p.returncode, p.stderr.strip())
            )
        return p.stdout.strip()

    # -- Engine API (read-only polling) ----------------------------------------

    def api(self, path, timeout=5):
        """GET path; returns the decoded JSON. Raises OSError when the engine
        cannot be reached, AssertionError on an error status."""
        c = _UnixConnection(self.sock, timeout)
        try:
            c.request("GET", path)
            r = c.getresponse()
            body = r.read()
        finally:
            c.close()
        if r.status != 200:
            raise AssertionError("engine GET %s: %d %s" % (path, r.status, body[:300]))
        return json.loads(body)

    def containers(self, label, all_states=True):
        """Containers carrying label ("KEY=VALUE" or "KEY"), as the engine's
        list gives them (Id, Names, State, Labels, Created...)."""
        filters = urllib.parse.quote(json.dumps({"label": [label]}))
        return self.api(
            "/containers/json?all=%d&filters=%s" % (1 if all_states else 0, filters)
        )

    def service_replicas(self, name):
        """The replica count in a Swarm service's spec."""
        s = self.api("/services/%s" % urllib.parse.quote(name))
        return s["Spec"]["Mode"]["Replicated"]["Replicas"]

    def service_version(self, name):
        return self.api("/services/%s" % urllib.parse.quote(name))["Version"]["Index"]

    # -- cleanup ----------------------------------------------------------------

    def cleanup(self, run, swarm):
        """Removes every service and container labelled TEST_LABEL=run on this
        engine, and only those. Returns the number of objects left."""
        sel = "label=%s=%s" % (TEST_LABEL, run)
        if swarm:
            ids = self.docker("service", "ls", "-q", "--filter", sel, check=False).split()
            if ids:
                self.docker("service", "rm", *ids, check=False)
            # Task containers leave with their service, asynchronously.
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                left = self.docker(
                    "ps", "-aq", "--filter", sel, "--filter", "label=com.docker.swarm.task",
                    check=False,
                ).split()
                if not left:
                    break
                time.sleep(0.25)
        ids = self.docker("ps", "-aq", "--filter", sel, check=False).split()
        if ids:
            self.docker("rm", "-f", "-v", *ids, check=False)
        left = len(self.docker("ps", "-aq", "--filter", sel, check=False).split())
        if swarm:
            left += len(self.docker("service", "ls", "-q", "--filter", sel, check=False).split())
        if left:
            say("cleanup: %d objects labelled %s=%s are left on %s" % (left, TEST_LABEL, run, self.host))
        return left


def machine_host():
    """The machine's engine: DOCKER_HOST when it names a unix socket, else
    the default socket."""
    h = os.environ.get("DOCKER_HOST", "")
    if h.startswith("unix://"):
        return h
    return "unix:///var/run/docker.sock"


def ensure_engine(docker_dir):
    """tests/docker/engine.sh: starts an engine if none runs and imports the
    test image. Raises SkipTest when no engine can be started."""
    p = subprocess.run(
        [os.path.join(docker_dir, "engine.sh")], capture_output=True, text=True, timeout=180
    )
    out = (p.stdout + p.stderr).strip()
    if p.returncode != 0:
        raise SkipTest("no Docker engine could be started:\n" + out)
    say("engine.sh:", out.replace("\n", "; "))


def swarm(docker_dir, cmd):
    p = subprocess.run(
        [os.path.join(docker_dir, "swarm.sh"), cmd, str(os.getpid())],
        capture_output=True, text=True, timeout=120,
    )
    out = (p.stdout + p.stderr).strip()
    say("swarm.sh %s:" % cmd, out)
    if p.returncode != 0:
        raise AssertionError("swarm.sh %s failed: %s" % (cmd, out))


def _alive(pid):
    """Whether pid runs: not gone and not a zombie (PID 1 here does not reap,
    so kill -0 finds dead daemons; see tests/docker/README.md)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError, ValueError):
        return False
    return state not in ("Z", "X")


class PrivateEngine(Engine):
    """A test-owned dockerd (tests/docker/private-engine.sh) that may be
    killed and restarted without touching the machine's engine."""

    def __init__(self, docker_dir, directory):
        self.script = os.path.join(docker_dir, "private-engine.sh")
        self.dir = directory
        self.started = False
        super().__init__("unix://%s/docker.sock" % directory)

    def _run(self, *args, timeout=180):
        p = subprocess.run(
            [self.script, *args], capture_output=True, text=True, timeout=timeout
        )
        out = (p.stdout + p.stderr).strip()
        say("private-engine.sh %s:" % args[0], out.replace("\n", "; "))
        return p.returncode, out

    def start(self):
        if os.geteuid() != 0:
            raise SkipTest("a private Docker engine needs root to start")
        self.started = True
        rc, out = self._run("start", self.dir)
        if rc != 0:
            raise AssertionError("cannot start a private engine: " + out)

    def pid(self):
        try:
            with open(os.path.join(self.dir, "docker.pid")) as f:
                return int(f.read().strip())
        except (OSError, ValueError):
            return None

    def running(self):
        pid = self.pid()
        return pid is not None and _alive(pid)

    def kill9(self):
        """SIGKILL to dockerd, as a crash: the containerd it supervises dies
        with it (parent-death signal) and the containerd shims, with the
        containers, stay. Waits until both daemons are dead, then removes
        their pid files: on a machine whose init reaps, the PIDs in them
        would be gone and the restarted daemons would ignore the files; here
        PID 1 does not reap, the dead daemons stay zombies, and dockerd would
        take them for running ("pid file found", "timeout waiting for
        containerd to start"). Returns the PID killed."""
        pid = self.pid()
        if pid is None or not _alive(pid):
            raise AssertionError("the private engine does not run")
        cpidfile = os.path.join(self.dir, "exec", "containerd", "containerd.pid")
        try:
            with open(cpidfile) as f:
                cpid = int(f.read().strip())
        except (OSError, ValueError):
            cpid = None
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and (
            _alive(pid) or (cpid is not None and _alive(cpid))
        ):
            time.sleep(0.05)
        if _alive(pid) or (cpid is not None and _alive(cpid)):
            raise AssertionError("dockerd %d or its containerd %s outlived SIGKILL" % (pid, cpid))
        for f in (os.path.join(self.dir, "docker.pid"), cpidfile):
            try:
                os.unlink(f)
            except FileNotFoundError:
                pass
        return pid

    def restart(self):
        rc, out = self._run("restart", self.dir)
        if rc != 0:
            raise AssertionError("cannot restart the private engine: " + out)
        # The restart keeps the flags of the first start: a fallback flag
        # (another storage driver) would hide every container made before.
        with open(os.path.join(self.dir, "flags")) as f:
            flags = f.read()
        if "--storage-driver" in flags:
            raise AssertionError("the restarted engine changed its storage driver: " + flags)

    def destroy(self):
        if not self.started:
            return
        # destroy ends what the engine left running (containerd shims) and
        # deletes its data root with every container in it.
        self._run("destroy", self.dir)
        self.started = False
