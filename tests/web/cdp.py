"""Headless Chromium driven over the DevTools protocol (stdlib only).

The browser runs with --remote-debugging-pipe: commands go to its fd 3 and
answers come from its fd 4, as NUL-terminated JSON messages, so no WebSocket
client and no debugging port are needed. One Browser holds one Chromium
process with a fresh profile directory; Browser.page() opens a tab.
"""

import base64
import fcntl
import itertools
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
    "--remote-debugging-pipe",
]


class CDPError(Exception):
    pass


def find_chromium():
    """Path of a Chromium binary, or None."""
    env = os.environ.get("CHROMIUM")
    if env:
        return env if os.access(env, os.X_OK) else None
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


def _high_fd(fd):
    """A close-on-exec copy of fd numbered 10 or more (so that placing the
    pipes at 3 and 4 in the child cannot clobber one with the other), the
    original closed."""
    new = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10)
    os.close(fd)
    return new


class Browser:
    def __init__(self, exe, log_path):
        self.profile = tempfile.mkdtemp(prefix="scalecast-chromium-")
        to_child_r, self._w = os.pipe()
        self._r, from_child_w = os.pipe()
        to_child_r, from_child_w = _high_fd(to_child_r), _high_fd(from_child_w)
        args = [exe] + FLAGS + ["--user-data-dir=" + self.profile, "about:blank"]
        self._log = open(log_path, "ab")

        def place_pipes():  # in the child, before exec: dup2 makes them inheritable
            os.dup2(to_child_r, 3)
            os.dup2(from_child_w, 4)

        # close_fds=False: our other descriptors are close-on-exec anyway
        # (PEP 446), and closing would drop 3 and 4 again.
        self.proc = subprocess.Popen(
            args, stdin=subprocess.DEVNULL, stdout=self._log, stderr=self._log,
            close_fds=False, preexec_fn=place_pipes, start_new_session=True)
        os.close(to_child_r)
        os.close(from_child_w)
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._answers = {}
        self._events = []  # (sessionId, method, params)
        self._closed = False
        self._reader = threading.Thread(target=self._read_loop, daemon=True)
        self._reader.start()
        self.version = self.send("Browser.getVersion", timeout=60)

    def _read_loop(self):
        buf = b""
        while True:
            try:
                chunk = os.read(self._r, 1 << 16)
            except OSError:
                chunk = b""
            if not chunk:
                break
            buf += chunk
            while b"\0" in buf:
                raw, buf = buf.split(b"\0", 1)
                msg = json.loads(raw)
                with self._cond:
                    if "id" in msg:
                        self._answers[msg["id"]] = msg
                    else:
                        self._events.append((msg.get("sessionId"), msg["method"], msg.get("params", {})))
                    self._cond.notify_all()
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def send(self, method, params=None, session=None, timeout=30):
        """Sends one command and returns its result (a dict)."""
        mid = next(self._ids)
        msg = {"id": mid, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        data = json.dumps(msg).encode() + b"\0"
        with self._lock:
            if self._closed:
                raise CDPError("chromium has exited (see its log)")
            os.write(self._w, data)
        deadline = time.monotonic() + timeout
        with self._cond:
            while mid not in self._answers:
                left = deadline - time.monotonic()
                if self._closed:
                    raise CDPError("chromium exited while waiting for %s" % method)
                if left <= 0:
                    raise CDPError("%s: no answer within %.0f s" % (method, timeout))
                self._cond.wait(left)
            ans = self._answers.pop(mid)
        if "error" in ans:
            raise CDPError("%s: %s" % (method, ans["error"].get("message")))
        return ans.get("result", {})

    def events(self, session, method=None):
        with self._lock:
            return [p for s, m, p in self._events if s == session and (method is None or m == method)]

    def page(self, width, height, mobile=False, scale=1):
        return Page(self, width, height, mobile, scale)

    def close(self):
        try:
            self.send("Browser.close", timeout=5)
        except CDPError:
            pass
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self._w)
        self._reader.join(5)
        os.close(self._r)
        self._log.close()
        shutil.rmtree(self.profile, ignore_errors=True)


class Page:
    """One tab with its own viewport."""

    def __init__(self, browser, width, height, mobile, scale):
        self.b = browser
        tid = browser.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        self.target = tid
        self.sid = browser.send("Target.attachToTarget", {"targetId": tid, "flatten": True})["sessionId"]
        for dom in ("Page", "Runtime", "Network", "Log"):
            self.cmd(dom + ".enable")
        self.resize(width, height, mobile, scale)

    def cmd(self, method, params=None, timeout=30):
        return self.b.send(method, params, session=self.sid, timeout=timeout)

    def resize(self, width, height, mobile=False, scale=1):
        self.width, self.height = width, height
        self.cmd("Emulation.setDeviceMetricsOverride",
                 {"width": width, "height": height, "deviceScaleFactor": scale, "mobile": mobile})
        self.cmd("Emulation.setTouchEmulationEnabled", {"enabled": mobile, "maxTouchPoints": 5 if mobile else 1})

    def navigate(self, url, timeout=30):
        res = self.cmd("Page.navigate", {"url": url})
        if res.get("errorText"):
            raise CDPError("navigate %s: %s" % (url, res["errorText"]))
        self.wait("document.readyState === 'complete'", timeout, "page load of " + url)

    def eval(self, expr, timeout=30):
        """Evaluates expr (awaiting a promise) and returns its value as JSON."""
        res = self.cmd("Runtime.evaluate", {"expression": expr, "returnByValue": True,
                                            "awaitPromise": True}, timeout)
        if "exceptionDetails" in res:
            d = res["exceptionDetails"]
            raise CDPError("in page: %s: %s" % (
                expr[:120], d.get("exception", {}).get("description") or d.get("text")))
        return res.get("result", {}).get("value")

    def wait(self, expr, timeout, what):
        """Polls expr until it is truthy; returns its value."""
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            try:
                # objects (a chart, a node) count as true, not as a value to copy
                last = self.eval("(() => { const v = (%s); return v && typeof v === 'object' ? true : v; })()" % expr)
            except CDPError as e:
                last = str(e)
            else:
                if last:
                    return last
            time.sleep(0.1)
        raise AssertionError("timed out after %.0f s waiting for %s (last: %r)" % (timeout, what, last))

    def screenshot(self, path, full_page=True):
        params = {"format": "png"}
        if full_page:
            m = self.cmd("Page.getLayoutMetrics")
            size = m.get("cssContentSize") or m["contentSize"]
            params["captureBeyondViewport"] = True
            params["clip"] = {"x": 0, "y": 0, "width": self.width,
                              "height": max(self.height, size["height"]), "scale": 1}
        data = self.cmd("Page.captureScreenshot", params, timeout=60)["data"]
        with open(path, "wb") as f:
            f.write(base64.b64decode(data))
        return path

    # What the page did: JS exceptions, console errors, requested URLs.
    def exceptions(self):
        out = []
        for p in self.b.events(self.sid, "Runtime.exceptionThrown"):
            d = p["exceptionDetails"]
            out.append(d.get("exception", {}).get("description") or d.get("text"))
        return out

    def console(self, types=("error", "assert")):
        out = []
        for p in self.b.events(self.sid, "Runtime.consoleAPICalled"):
            if p["type"] in types:
                out.append(" ".join(str(a.get("value", a.get("description", ""))) for a in p["args"]))
        return out

    def log_entries(self, level="error"):
        return ["%s: %s" % (e["entry"].get("url", ""), e["entry"]["text"])
                for e in self.b.events(self.sid, "Log.entryAdded") if e["entry"]["level"] == level]

    def requested_urls(self):
        return [p["request"]["url"] for p in self.b.events(self.sid, "Network.requestWillBeSent")]
