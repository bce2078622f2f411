#!/usr/bin/env python3
"""Runs one data-driven HTTP case (tests/server/cases/*.case) against the real
scalecastd: a fresh server on a free loopback port with a temporary database,
seeded with a known batch, then the case's request, then checks.

Case file format (see cases/README.md): "key: value" lines, '#' comments,
then optionally a line "---" after which everything is the request body,
byte for byte (a single trailing newline is dropped). Keys:

  request: METHOD PATH          required, e.g. "POST /api/v1/metrics"
  header: NAME: VALUE           repeatable; Content-Length is added for you
  generate: KIND ARGS           a body too large to write down (replaces ---):
      repeat N TEXT              TEXT repeated N times
      json-batch N               a valid batch of N samples (one metric each)
      pad BYTES                  a valid one-sample batch padded with spaces
                                 to BYTES bytes
      prefix-repeat N TEXT SUFFIX    (no spaces inside the three parts)
      gzip-json-batch N          json-batch N, gzip-compressed
      gzip-spaces N              N spaces, gzip-compressed (a small body
                                 that inflates to N bytes)
      gzip-truncated N           gzip-json-batch N cut in the middle
      gzip-two-members N         two gzip members of N samples each (RFC 1952:
                                 the body is their concatenation)
  config: LINE                  repeatable: lines added to [server] of a
                                config file (the server then runs with it)
  status: CODE                  expected status code
  error: TEXT                   the answer is JSON {"error": ...} and the
                                message contains TEXT (repeatable)
  body-contains: TEXT           the raw answer contains TEXT (repeatable)
  body-lacks: TEXT              the raw answer does not contain TEXT
  header-expect: NAME: VALUE    the answer has this header value
  stored: N                     samples this request adds (default 0; for
                                any non-2xx status it must be 0)
  after-compaction: yes         check `stored` once the ingest log is
                                compacted (for re-sent or duplicate samples,
                                which the log holds twice until then)

After the request the server must still answer /healthz (it did not crash
or hang) and /api/v1/stats "samples" must equal the seed plus `stored`; then
it must exit 0 on SIGTERM.
"""

import argparse
import gzip
import json
import os
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import srvlib  # noqa: E402

SEED = {
    "node": "seed-node",
    "samples": [
        {"ts": 1732170000.0, "metrics": {"cpu": 10.0, "mem": 20.0}},
        {"ts": 1732170001.0, "container": "web.1", "service": "web", "metrics": {"cpu": 1.5}},
    ],
}
SEED_SAMPLES = 3


class CaseError(Exception):
    pass


def parse_case(path):
    with open(path, "rb") as f:
        raw = f.read()
    head, sep, body = raw.partition(b"\n---\n")
    if not sep and raw.startswith(b"---\n"):
        head, body, sep = b"", raw[4:], b"---"
    case = {
        "headers": [],
        "config": [],
        "errors": [],
        "contains": [],
        "lacks": [],
        "expect_headers": [],
        "stored": 0,
        "after_compaction": False,
        "body": None,
    }
    if sep:
        case["body"] = body[:-1] if body.endswith(b"\n") else body
    for n, line in enumerate(head.decode().split("\n"), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, colon, value = line.partition(":")
        if not colon:
            raise CaseError("%s:%d: expected 'key: value'" % (path, n))
        key, value = key.strip(), value.strip()
        if key == "request":
            method, _, target = value.partition(" ")
            case["method"], case["path"] = method, target.strip()
        elif key == "header":
            case["headers"].append(value)
        elif key == "generate":
            case["generate"] = value
        elif key == "config":
            case["config"].append(value)
        elif key == "status":
            case["status"] = int(value)
        elif key == "error":
            case["errors"].append(value)
        elif key == "body-contains":
            case["contains"].append(value)
        elif key == "body-lacks":
            case["lacks"].append(value)
        elif key == "header-expect":
            case["expect_headers"].append(value)
        elif key == "stored":
            case["stored"] = int(value)
        elif key == "after-compaction":
            case["after_compaction"] = value == "yes"
        else:
            raise CaseError("%s:%d: unknown key '%s'" % (path, n, key))
    for required in ("method", "status"):
        if required not in case:
            raise CaseError("%s: missing '%s'" % (path, required if required != "method" else "request"))
    if "generate" in case and case["body"] is not None:
        raise CaseError("%s: both 'generate' and a body after ---" % path)
    if "generate" in case:
        case["body"] = generate(case["generate"], path)
    return case


def generate(spec, path):
    kind, _, args = spec.partition(" ")
    parts = args.split()
    if kind == "repeat" and len(parts) == 2:
        return parts[1].encode() * int(parts[0])
    if kind == "prefix-repeat" and len(parts) == 3:
        n, text, suffix = int(parts[0]), parts[1], parts[2]
        return text.encode() * n + suffix.encode()
    if kind == "json-batch" and len(parts) == 1:
        n = int(parts[0])
        samples = [{"ts": 1732000000 + i, "metrics": {"cpu": i % 100}} for i in range(n)]
        return json.dumps({"node": "gen", "samples": samples}).encode()
    if kind == "pad" and len(parts) == 1:
        doc = json.dumps({"node": "pad", "samples": [{"ts": 1732000000, "metrics": {"cpu": 1}}]})
        size = int(parts[0])
        return (doc + " " * max(0, size - len(doc))).encode()
    if kind == "gzip-json-batch" and len(parts) == 1:
        return gzip.compress(generate("json-batch " + parts[0], path), mtime=0)
    if kind == "gzip-spaces" and len(parts) == 1:
        return gzip.compress(b" " * int(parts[0]), mtime=0)
    if kind == "gzip-truncated" and len(parts) == 1:
        z = gzip.compress(generate("json-batch " + parts[0], path), mtime=0)
        return z[: len(z) // 2]
    if kind == "gzip-two-members" and len(parts) == 1:
        n = int(parts[0])
        docs = []
        for k in range(2):
            samples = [{"ts": 1732000000 + i, "metrics": {"cpu": i % 100}} for i in range(n)]
            docs.append(json.dumps([{"node": "member%d" % k, "samples": samples}]))
        # '[a] [b]' is not one JSON value, so the members split one array.
        text = docs[0][:-1] + ", " + docs[1][1:]
        half = len(text) // 2
        return gzip.compress(text[:half].encode(), mtime=0) + gzip.compress(text[half:].encode(), mtime=0)
    raise CaseError("%s: bad 'generate: %s'" % (path, spec))


def build_request(case, port):
    body = case["body"] or b""
    lines = ["%s %s HTTP/1.1" % (case["method"], case["path"]), "Host: 127.0.0.1:%d" % port]
    lines += case["headers"]
    names = {h.split(":", 1)[0].strip().lower() for h in case["headers"]}
    if "content-length" not in names and "transfer-encoding" not in names:
        if case["body"] is not None or case["method"] in ("POST", "PUT", "PATCH"):
            lines.append("Content-Length: %d" % len(body))
    lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def check(cond, msg, failures):
    if not cond:
        failures.append(msg)


def run(binary, path):
    case = parse_case(path)
    config = None
    if case["config"]:
        config = "[server]\n" + "\n".join(case["config"]) + "\n"
    failures = []
    with srvlib.Server(binary, config=config) as srv:
        try:
            log = check_server(srv, case, failures)
        except Exception:
            rc = srv.proc.poll() if srv.proc else None
            print("scalecastd (exit status %s) log:\n%s" % (rc, srv.log()[-3000:]))
            raise
    if srv.sanitizer_report():
        failures.append("sanitizer report in the scalecastd log (printed above)")
    if failures:
        print("scalecastd log:\n" + log[-3000:])
        for f in failures:
            print("FAIL %s: %s" % (os.path.basename(path), f))
        return 1
    print("ok %s" % os.path.basename(path))
    return 0


def check_server(srv, case, failures):
    """Seeds, sends the case's request, checks the answer and the stored
    count; returns the server's log."""
    r = srv.push(SEED)
    if r.status != 200:
        raise CaseError("seed batch refused: %r" % r)
    base = srv.stats()["samples"]
    if base != SEED_SAMPLES:
        raise CaseError("seed: stats samples = %d, expected %d" % (base, SEED_SAMPLES))

    t0 = time.monotonic()
    status, headers, body = srvlib.raw_request(srv.port, build_request(case, srv.port))
    took = time.monotonic() - t0
    shown = body[:400]
    print("%s %s -> %s in %.3f s: %r" % (case["method"], case["path"][:80], status, took, shown))

    check(status == case["status"], "status %s, expected %d" % (status, case["status"]), failures)
    err = None
    if case["errors"]:
        try:
            doc = json.loads(body)
            err = doc.get("error") if isinstance(doc, dict) else None
        except ValueError:
            pass
        check(err is not None, "answer is not JSON {\"error\": ...}: %r" % shown, failures)
        for text in case["errors"]:
            check(err is not None and text in err, "error %r does not contain %r" % (err, text), failures)
    for text in case["contains"]:
        check(text.encode() in body, "answer does not contain %r" % text, failures)
    for text in case["lacks"]:
        check(text.encode() not in body, "answer contains %r" % text, failures)
    for h in case["expect_headers"]:
        name, _, value = h.partition(":")
        got = headers.get(name.strip().lower())
        check(got == value.strip(), "header %s: %r, expected %r" % (name, got, value.strip()), failures)

    stored = case["stored"]
    if not 200 <= case["status"] < 300 and stored:
        raise CaseError("'stored: %d' with a non-2xx status" % stored)
    # Nothing of a refused batch may be stored; an accepted one is visible
    # from its acknowledgement on.
    check(srv.request("GET", "/healthz").status == 200, "server no longer healthy", failures)
    if case["after_compaction"]:
        now = srv.wait_compacted()["samples"]
    else:
        now = srv.stats()["samples"]
    check(now == base + stored, "stats samples went from %d to %d, expected %d" % (base, now, base + stored), failures)
    rc = srv.stop()
    check(rc == 0, "scalecastd exit status %s after SIGTERM" % rc, failures)
    return srv.log()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bin", required=True, help="path of scalecastd")
    ap.add_argument("case", help="a .case file")
    a = ap.parse_args()
    try:
        return run(a.bin, a.case)
    except CaseError as e:
        print("case error: %s" % e)
        return 2


if __name__ == "__main__":
    sys.exit(main())
