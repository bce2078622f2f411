#!/usr/bin/env python3
"""Tokens and TLS (issue 7, "Security"), with the real binaries.

  test_security.py --bin PATH/scalecastd [--agent PATH/scalecast-agent] SCENARIO

tokens_separate: ingest, read and admin tokens each open only their routes.
tokens_not_logged: scalecastd at --log-level debug, and scalecast-agent at
  debug with a wrong and then a right token: no token (nor a wrong one a
  client sent) appears in either log, in any answer, or in a config error.
  That tokens are compared in constant time is a code review (server.c
  token_equal), not something a test can show reliably.
tls_server: a locally made certificate (SAN IP:127.0.0.1): scalecastd with
  tls_cert/tls_key answers HTTPS (verified against that certificate),
  refuses plain HTTP, and names the file when a certificate is unusable.
tls_agent: scalecast-agent pushes over https:// to that server, trusting the
  certificate through --ca-file; without it (the system's store), or with a
  host name the certificate does not carry, it delivers nothing and says why.
"""

import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import abuselib  # noqa: E402
from abuselib import check, ingest_works, note, srvlib  # noqa: E402

ING, READ, ADMIN = "ingest-tok-7f3a9c", "read-tok-51be02", "admin-tok-c4d8e6"
WRONG = "wrong-tok-0a9d17"
TOKENS_CFG = "[server]\ningest_token = %s\nread_token = %s\nadmin_token = %s\n" % (ING, READ, ADMIN)


def bearer(tok):
    return {"Authorization": "Bearer " + tok} if tok else {}


def batch(node, ts, value=1.0):
    return {"node": node, "samples": [{"ts": ts, "metrics": {"cpu": value}}]}


READS = ["/api/v1/nodes", "/api/v1/stats", "/api/v1/series?node=tok&metric=cpu", "/api/v1/export.csv",
         "/metrics", "/api/v1/decisions", "/api/v1/decisions.csv", "/api/v1/services"]


def scenario_tokens_separate(a):
    now = float(int(time.time()))
    with srvlib.Server(a.bin, config=TOKENS_CFG) as srv:
        for i, (tok, want) in enumerate([(None, 401), (WRONG, 401), (READ, 401), (ING, 200), (ADMIN, 200)]):
            r = srv.push(batch("tok", now + i), headers=bearer(tok))
            check(r.status == want, "ingest with %s: %r, expected %d" % (tok, r, want))
        lp = "cpu,host=tok usage_user=1 %d\n" % int(now * 1e9)
        for tok, want in [(READ, 401), (ING, 204), (ADMIN, 204)]:
            r = srv.request("POST", "/api/v2/write", lp, headers={"Authorization": "Token " + tok})
            check(r.status == want, "line protocol with %s: %r, expected %d" % (tok, r, want))
        for path in READS:
            for tok, want in [(None, 401), (WRONG, 401), (ING, 401), (READ, 200), (ADMIN, 200)]:
                r = srv.request("GET", path, headers=bearer(tok))
                check(r.status == want, "GET %s with %s: %r, expected %d" % (path, tok, r, want))
        check(srv.request("GET", "/healthz").status == 200, "/healthz needs no token")
        s = srv.stats(bearer(READ))
        check(s["samples_committed"] >= 2, "the authorized pushes were stored: %r" % s)
        note("tokens_separate: ingest token: ingest only; read token: reads only; admin: both; /healthz open")


def scenario_tokens_not_logged(a):
    now = float(int(time.time()))
    secrets = [ING, READ, ADMIN, WRONG]
    with srvlib.Server(a.bin, config=TOKENS_CFG, args=("--log-level", "debug")) as srv:
        answers = []
        for tok in (None, WRONG, READ, ING, ADMIN, ING[:-1], ING + "x"):
            answers.append(srv.push(batch("tok", now), headers=bearer(tok)))
            answers.append(srv.request("POST", "/write?precision=s", "cpu,host=tok usage_user=1 %d\n" % now,
                                       headers={"Authorization": "Token " + (tok or "")}))
            for path in READS + ["/healthz", "/nope"]:
                answers.append(srv.request("GET", path, headers=bearer(tok)))
        # Malformed Authorization headers: refused without echoing them.
        for h in ("Bearer", "Bearer  " + WRONG, "Basic " + WRONG, WRONG, "Bearer " + WRONG + "\t"):
            answers.append(srv.request("GET", "/api/v1/nodes", headers={"Authorization": h}))
        # A token sent in the query string by mistake: refused as an unknown
        # parameter; the answer names the parameter, not its value.
        answers.append(srv.request("GET", "/api/v1/nodes?token=" + WRONG, headers=bearer(READ)))
        check(answers[-1].status == 400, "a token= query parameter is refused: %r" % answers[-1])
        leaks = [(r.status, s) for r in answers for s in secrets if s.encode() in r.body]
        check(not leaks, "tokens_not_logged: answers that contain a token: %r" % leaks[:5])
        leaks = [(k, s) for r in answers for k, v in r.headers.items() for s in secrets if s in v]
        check(not leaks, "tokens_not_logged: answer headers that contain a token: %r" % leaks[:5])
        check(srv.stop() == 0, "clean exit")
        log = srv.log()
        debug_lines = [ln for ln in log.splitlines() if " DEBUG " in ln]
        note("tokens_not_logged: scalecastd log at debug level: %d lines (%d DEBUG), %d requests made"
             % (len(log.splitlines()), len(debug_lines), len(answers)))
        for s in secrets:
            check(s not in log, "tokens_not_logged: scalecastd's log contains the token %r:\n%s"
                  % (s, "\n".join(ln for ln in log.splitlines() if s in ln)[:2000]))

    # A config error must not quote a token's value.
    tmp = tempfile.mkdtemp(prefix="abuse-tok-")
    try:
        for name, text in [("duplicate", "[server]\ningest_token = %s\ningest_token = %s\n" % (ING, WRONG)),
                           ("bad section", "[server]\ningest_token = %s\n[servr]\nread_token = %s\n" % (ING, WRONG)),
                           ("misspelt key", "[server]\ningest_tokn = %s\n" % WRONG)]:
            path = os.path.join(tmp, "bad.conf")
            with open(path, "w") as f:
                f.write(text)
            p = subprocess.run([a.bin, "--config", path, "--listen", "127.0.0.1:%d" % srvlib.free_port(),
                                "--db", os.path.join(tmp, "db")], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               timeout=10)
            out = p.stdout.decode(errors="replace")
            check(p.returncode == 2, "config with a %s: exit %r: %s" % (name, p.returncode, out))
            for s in (ING, WRONG):
                check(s not in out, "config error (%s) quotes a token value: %s" % (name, out.strip()))
            note("tokens_not_logged: config error (%s): %s" % (name, out.strip().splitlines()[-1] if out.strip() else ""))
    finally:
        shutil.rmtree(tmp)

    if not a.agent:
        note("tokens_not_logged: no --agent given: the agent's log is not checked")
        return
    # The agent with a wrong token (401, kept in its spool), then the right one.
    with srvlib.Server(a.bin, config=TOKENS_CFG) as srv:
        work = tempfile.mkdtemp(prefix="abuse-agent-tok-")
        try:
            logs = []
            for tok, secs in ((WRONG, 3.5), (ING, 3.5)):
                log_path = os.path.join(work, "agent-%s.log" % tok)
                env = dict(os.environ, SCALECAST_TOKEN=tok, NODE_ID="tok-agent")
                with open(log_path, "wb") as log:
                    p = subprocess.Popen([a.agent, "--server", "http://127.0.0.1:%d" % srv.port, "--interval", "1",
                                          "--spool-dir", os.path.join(work, "spool"), "--docker-socket", "",
                                          "--nvml", "", "--log-level", "debug", "--flush-timeout", "3s"],
                                         stdout=log, stderr=log, env=env)
                    time.sleep(secs)
                    p.send_signal(signal.SIGTERM)
                    check(p.wait(20) == 0, "agent with token %s: exit status %r" % (tok, p.returncode))
                with open(log_path, errors="replace") as f:
                    logs.append(f.read())
            check("401" in logs[0], "the agent with a wrong token logs the 401:\n%s" % logs[0][-1500:])
            for text in logs:
                for s in secrets:
                    check(s not in text, "the agent's log contains the token %r:\n%s" % (s, text[-1500:]))
            n = srv.stats(bearer(READ))["samples_committed"]
            check(n > 0, "the agent with the right token delivered its spool (%d samples committed)" % n)
            note("tokens_not_logged: agent at debug level, wrong token then right one: %d and %d log lines, no "
                 "token in them; %d samples delivered" % (len(logs[0].splitlines()), len(logs[1].splitlines()), n))
        finally:
            shutil.rmtree(work)


# ---------------------------------------------------------------------------
# TLS


def make_cert(dirpath):
    """A self-signed P-256 certificate for 127.0.0.1 (SAN IP), made with
    openssl. Returns (cert, key) paths."""
    if not shutil.which("openssl"):
        raise abuselib.Skip("openssl is not installed")
    cert, key = os.path.join(dirpath, "cert.pem"), os.path.join(dirpath, "key.pem")
    p = subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                        "-nodes", "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=scalecast test",
                        "-addext", "subjectAltName=IP:127.0.0.1"],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    if p.returncode != 0:
        raise RuntimeError("openssl req failed: %s" % p.stdout.decode(errors="replace"))
    return cert, key


class TLSServer(srvlib.Server):
    """srvlib's server, spoken to over HTTPS with certificate verification."""

    def __init__(self, binary, cafile, **kw):
        super().__init__(binary, **kw)
        self.ctx = ssl.create_default_context(cafile=cafile)

    def conn(self, timeout=30):
        import http.client

        return http.client.HTTPSConnection("127.0.0.1", self.port, timeout=timeout, context=self.ctx)


def tls_setup():
    tmp = tempfile.mkdtemp(prefix="abuse-tls-")
    cert, key = make_cert(tmp)
    cfg = "[server]\ntls_cert = %s\ntls_key = %s\nrequest_timeout = 5s\n" % (cert, key)
    return tmp, cert, key, cfg


def plain_http(port):
    """A plain HTTP request to the port: returns (bytes answered, seconds
    until the server closed)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    t0 = time.monotonic()
    data = b""
    try:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        while True:
            b = s.recv(4096)
            if not b:
                break
            data += b
    except OSError:
        pass
    finally:
        s.close()
    return data, time.monotonic() - t0


def scenario_tls_server(a):
    tmp, cert, key, cfg = tls_setup()
    try:
        with TLSServer(a.bin, cert, config=cfg) as srv:
            r = srv.request("GET", "/healthz")
            check(r.status == 200, "GET /healthz over https: %r" % r)
            check("listening on https://" in srv.log(), "the log says https:\n%s" % srv.log())
            ingest_works(srv, "tls_server")
            # The certificate really is checked by the client (sanity).
            untrusted = ssl.create_default_context()
            try:
                with socket.create_connection(("127.0.0.1", srv.port), timeout=5) as s:
                    untrusted.wrap_socket(s, server_hostname="127.0.0.1")
                check(False, "a client without the certificate in its trust store connected")
            except ssl.SSLCertVerificationError:
                pass
            with socket.create_connection(("127.0.0.1", srv.port), timeout=5) as s:
                with srv.ctx.wrap_socket(s, server_hostname="127.0.0.1") as t:
                    note("tls_server: negotiated %s, %s" % (t.version(), t.cipher()[0]))
                    check(t.version() in ("TLSv1.2", "TLSv1.3"), "TLS version %s" % t.version())
            data, took = plain_http(srv.port)
            note("tls_server: plain HTTP to the HTTPS port: %d bytes back (%r), closed after %.3f s"
                 % (len(data), data[:16], took))
            check(not data.startswith(b"HTTP/"), "plain HTTP was answered in plain HTTP: %r" % data[:200])
            check(took < 2.0, "plain HTTP: the server took %.1f s to close" % took)
            # An idle TCP connection that never starts the handshake.
            with socket.create_connection(("127.0.0.1", srv.port), timeout=15) as s:
                t0 = time.monotonic()
                try:
                    got = s.recv(100)
                except OSError:
                    got = b""
                idle = time.monotonic() - t0
            note("tls_server: a connection that never starts the handshake is closed after %.1f s (request_timeout 5 s)" % idle)
            check(got == b"" and idle < 5 + 2.5, "a connection without a handshake: %r after %.1f s" % (got, idle))
            with abuselib.Probe(srv, ssl_ctx=srv.ctx) as probe:
                for _ in range(20):
                    plain_http(srv.port)
                    time.sleep(0.05)
            probe.report("tls_server (plain HTTP attempts meanwhile)")
            check(srv.stop() == 0, "clean exit")

        # Unusable certificates: a clear error naming the file, exit 2... or 1.
        other_tmp = tempfile.mkdtemp(prefix="abuse-tls2-")
        try:
            cert2, key2 = make_cert(other_tmp)
            for name, conf, want in [
                ("cert without key", "[server]\ntls_cert = %s\n" % cert, "tls_key"),
                ("key of another certificate", "[server]\ntls_cert = %s\ntls_key = %s\n" % (cert, key2), key2),
                ("missing file", "[server]\ntls_cert = %s/nope.pem\ntls_key = %s\n" % (tmp, key), "nope.pem"),
            ]:
                path = os.path.join(other_tmp, "t.conf")
                with open(path, "w") as f:
                    f.write(conf)
                p = subprocess.run([a.bin, "--config", path, "--listen", "127.0.0.1:%d" % srvlib.free_port(),
                                    "--db", os.path.join(other_tmp, "db")],
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=10)
                out = p.stdout.decode(errors="replace").strip()
                check(p.returncode not in (0, None) and want in out,
                      "TLS %s: exit %r, expected an error naming %r: %s" % (name, p.returncode, want, out))
                note("tls_server: %s: exit %d: %s" % (name, p.returncode, out.splitlines()[-1] if out else ""))
        finally:
            shutil.rmtree(other_tmp)
    finally:
        shutil.rmtree(tmp)


def run_agent(a, url, node, spool, secs, extra=(), env_extra=None):
    """Runs scalecast-agent at a 1 s interval for secs, then SIGTERM.
    Returns (exit status, log text)."""
    cmd = [a.agent, "--server", url, "--node", node, "--interval", "1", "--spool-dir", spool,
           "--docker-socket", "", "--nvml", "", "--log-level", "debug", "--flush-timeout", "2s"] + list(extra)
    env = dict(os.environ, **(env_extra or {}))
    env.pop("SCALECAST_CA_FILE", None)
    log_path = spool + ".log"
    with open(log_path, "wb") as log:
        p = subprocess.Popen(cmd, stdout=log, stderr=log, env=env)
        time.sleep(secs)
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
        rc = p.wait(20)
    with open(log_path, errors="replace") as f:
        return rc, f.read()


def scenario_tls_agent(a):
    if not a.agent:
        raise abuselib.Skip("no --agent given")
    helptext = subprocess.run([a.agent, "--help"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              timeout=10).stdout.decode(errors="replace")
    has_ca = re.search(r"--ca-file\b", helptext) is not None
    tmp, cert, key, cfg = tls_setup()
    try:
        with TLSServer(a.bin, cert, config=cfg) as srv:
            def points(node):
                r = srv.request("GET", "/api/v1/series?node=%s&metric=cpu&from=-60" % node)
                return r.json().get("points", []) if r.status == 200 else []

            url = "https://127.0.0.1:%d" % srv.port
            rc, text = run_agent(a, url, "tls-agent", os.path.join(tmp, "spool-ok"), 4.0,
                                 ["--ca-file", cert] if has_ca else [])
            pts = points("tls-agent")
            note("tls_agent: with --ca-file: exit %r, %d cpu points stored over https; log: %r"
                 % (rc, len(pts), [ln[25:] for ln in text.splitlines() if "TLS" in ln or "https" in ln][:3]))
            check(has_ca, "scalecast-agent has no --ca-file option (its --help lists none), so it cannot trust a "
                  "locally made certificate")
            check(rc == 0, "scalecast-agent over https: exit status %r (it says: %s)"
                  % (rc, text.strip().splitlines()[-1] if text.strip() else ""))
            check(len(pts) >= 2, "scalecast-agent delivered %d samples to %s" % (len(pts), url))
            if not has_ca or rc != 0:
                return
            # Verification is on: the system's store does not know the
            # certificate, and "localhost" is not the name it carries.
            for name, node, u, extra in [
                ("the system's CA store", "tls-untrusted", url, []),
                ("a host name the certificate does not carry", "tls-wrong-host",
                 "https://localhost:%d" % srv.port, ["--ca-file", cert]),
            ]:
                rc, text = run_agent(a, u, node, os.path.join(tmp, "spool-" + node), 2.5, extra)
                pts = points(node)
                why = [ln[25:] for ln in text.splitlines() if "certificate" in ln]
                note("tls_agent: with %s: exit %r, %d points stored; log: %r" % (name, rc, len(pts), why[:1]))
                check(not pts, "tls_agent: with %s the agent delivered %d samples" % (name, len(pts)))
                check(why, "tls_agent: with %s the agent's log does not say the certificate was refused:\n%s"
                      % (name, text[-1500:]))
    finally:
        shutil.rmtree(tmp)


SCENARIOS = {name[len("scenario_"):]: fn for name, fn in globals().items() if name.startswith("scenario_")}

if __name__ == "__main__":
    sys.exit(abuselib.run_main(SCENARIOS))
