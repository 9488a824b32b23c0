#!/usr/bin/python3
"""Trace context end to end, through nginx (scripts/run-local and the shipped
nginx snippets) and a two-worker pool:

- every answer, the workers' and nginx's own JSON errors alike, carries
  nginx's id in X-Request-Id, and it differs from request to request;
- the worker's request log line carries the same id as request_id (and
  nginx's access log as rid=), with the execute's run_id, node_run_id,
  run_context.trace.trace_id, a valid traceparent and a valid client
  X-Request-Id (client_request_id); invalid ones are left out, and the
  client's id never replaces nginx's;
- with JARVIS_LOG_FORMAT=json every line of app.log is one JSON object
  (json.loads), with status and dur_ms as numbers; with the default
  (logfmt) the same fields are key=value pairs;
- jarvis.web.fetch sends the request's valid traceparent on to a loopback
  HTTP server started here, and sends none when the request had none or an
  invalid one.

Only loopback traffic: the pools listen on 127.0.0.1 and the fetched server
is an http.server on 127.0.0.1 in this process (the fetch policy allows
127.0.0.1 only). Every wait is bounded.

Closing line: "<n> passed, <n> failed".
"""
import argparse
import http.server
import json
import os
import pathlib
import re
import socket
import sys
import time
import urllib.error
import urllib.request

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "pylib"))
from jarvis_pool import (Checks, LocalPool, LoopbackHTTPServer, raw_http,  # noqa: E402
                         send_body, wait_for)

EXECUTE = "/v1/atomic-node-runs:execute"
TIMEOUT_S = 30
LOG_WAIT_S = 15  # the worker logs just after its answer has left: wait for it
NGINX_ID = re.compile(r"[0-9a-f]{32}")
TP = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
BAD_TPS = [
    "00-4BF92F3577B34DA6A3CE929D0E0E4736-00F067AA0BA902B7-01",  # upper case
    "00-00000000000000000000000000000000-00f067aa0ba902b7-01",  # all-zero trace-id
    "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",  # another version
    TP + "-x",                                                  # trailing bytes
]
BAD_CLIENT_IDS = ["two words", "a" * 129, "semi;colon"]
# A valid client id shaped as nginx's: logged apart, never answered.
CLIENT_HEX = "0123456789abcdef0123456789abcdef"
# No proxy from the environment: every request stays on loopback.
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))
PAD = 9 * 1024  # over nginx's 8 KiB large_client_header_buffers


# ---- HTTP to the pool ----

def send(base, method, path, body=None, headers=None):
    """(status, headers dict lower-case, body bytes)."""
    h = {"Content-Type": "application/json"} if body is not None else {}
    h.update(headers or {})
    data = json.dumps(body).encode() if isinstance(body, dict) else body
    req = urllib.request.Request(base + path, data=data, method=method, headers=h)
    try:
        with OPENER.open(req, timeout=TIMEOUT_S) as r:
            return r.status, {k.lower(): v for k, v in r.headers.items()}, r.read()
    except urllib.error.HTTPError as e:
        return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read()


def raw(port, data):
    """Sends data as is on a new connection; (status, headers lower-case)."""
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT_S) as s:
        st, headers, _ = raw_http(s, data)
    return st, headers


def execute_body(nrid, node="jarvis.core.echo", inputs=None, trace_id=None):
    body = {"node_run_id": nrid, "run_id": f"run-of-{nrid}",
            "node_type_ref": {"node_type_id": node, "version": "0.3.8"},
            "inputs": inputs if inputs is not None else {"echo": "pong"}}
    if trace_id is not None:
        body["run_context"] = {"trace": {"trace_id": trace_id, "span_id": "s1"}}
    return body


# ---- the logs ----

def read_log(state, name="app.log"):
    try:
        return (pathlib.Path(state) / "logs" / name).read_text("utf-8", "replace")
    except OSError:
        return ""


def json_lines(state, request_id):
    """The app.log JSON objects whose request_id is request_id, once the
    request line (the one with a status) is among them, waited for
    (bounded); [] when it did not come."""
    found = []

    def look():
        found[:] = []
        for ln in read_log(state).splitlines():
            if request_id in ln:
                try:
                    obj = json.loads(ln)
                except ValueError:
                    continue
                if obj.get("request_id") == request_id:
                    found.append(obj)
        return any("status" in o for o in found)

    return found if wait_for(look, LOG_WAIT_S, 0.05) else []


def json_line(state, request_id):
    """The request's line (JSON) in app.log, or None."""
    return next((o for o in json_lines(state, request_id) if "status" in o), None)


def text_line(state, request_id):
    """The logfmt app.log line holding request_id=<id>, waited for."""
    found = []

    def look():
        found[:] = [ln for ln in read_log(state).splitlines()
                    if f" request_id={request_id} " in ln]
        return bool(found)

    return found[0] if wait_for(look, LOG_WAIT_S, 0.05) else None


def header_id(headers):
    rid = headers.get("x-request-id", "")
    return rid if NGINX_ID.fullmatch(rid) else None


# ---- the loopback server web.fetch calls ----

def trace_server():
    """A LoopbackHTTPServer that answers every GET with {"ok":true} and
    remembers its traceparent header (or None) by path, in srv.seen."""
    seen = {}

    class Handler(http.server.BaseHTTPRequestHandler):
        timeout = 20  # a stalled client cannot hold a thread for longer

        def do_GET(self):
            seen[self.path] = self.headers.get("traceparent")
            send_body(self, 200, b'{"ok":true}')

        def log_message(self, *args):
            pass

    srv = LoopbackHTTPServer(Handler)
    srv.seen = seen
    return srv


# ---- the checks (JSON pool) ----

def check_execute(r, base, state, ids):
    st, h, raw_body = send(base, "POST", EXECUTE, execute_body("nr-trace-1", trace_id="tid-1"),
                           {"traceparent": TP, "X-Request-Id": "client-req.7"})
    rid = header_id(h)
    ids.append(rid)
    p = [] if st == 200 and rid else [f"{st} X-Request-Id {h.get('x-request-id')!r}"]
    line = json_line(state, rid) if rid else None
    if line is None:
        p.append("no JSON log line with request_id = X-Request-Id")
    else:
        want = {"request_id": rid, "method": "POST", "path": EXECUTE, "status": 200,
                "run_id": "run-of-nr-trace-1", "node_run_id": "nr-trace-1",
                "node_type_id": "jarvis.core.echo", "trace_id": "tid-1", "traceparent": TP,
                "client_request_id": "client-req.7", "state": "succeeded", "level": "INFO"}
        p += [f"{k}: {line.get(k)!r}, want {v!r}" for k, v in want.items() if line.get(k) != v]
        for k in ("pid", "dur_ms"):
            if not isinstance(line.get(k), (int, float)) or isinstance(line.get(k), bool):
                p.append(f"{k} is not a number: {line.get(k)!r}")
    r.check("execute: X-Request-Id is the log line's request_id, with run_id, node_run_id, "
            "trace_id, traceparent, client_request_id", p)


def check_invalid_context(r, base, state, ids):
    p = []
    for i, (tp, cid) in enumerate(zip(BAD_TPS, BAD_CLIENT_IDS + [CLIENT_HEX])):
        st, h, _ = send(base, "POST", EXECUTE, execute_body(f"nr-bad-{i}"),
                        {"traceparent": tp, "X-Request-Id": cid})
        rid = header_id(h)
        ids.append(rid)
        if st != 200 or rid is None:
            p.append(f"case {i}: {st} X-Request-Id {h.get('x-request-id')!r}")
            continue
        line = json_line(state, rid)
        if line is None:
            p.append(f"case {i}: no log line")
            continue
        for k in ("traceparent", "trace_id"):
            if k in line:
                p.append(f"case {i}: {k} {line[k]!r} logged")
        if i < len(BAD_CLIENT_IDS) and "client_request_id" in line:
            p.append(f"case {i}: client_request_id {line['client_request_id']!r} logged")
        if cid == CLIENT_HEX and (rid == CLIENT_HEX or line.get("client_request_id") != cid):
            p.append(f"a valid client id: answered {rid}, logged {line.get('client_request_id')}")
    r.check("an invalid traceparent or client X-Request-Id is left out; nginx's id is "
            "always the one answered", p)


def check_errors(r, base, port, state, ids):
    p = []
    # The workers' own errors: an unknown path, a bad body, a 405.
    for name, method, path, body in (("404", "GET", "/v1/nope", None),
                                     ("400", "POST", EXECUTE, b'{"node_run_id":'),
                                     ("405", "DELETE", "/v1/health", None)):
        st, h, _ = send(base, method, path, body, {"traceparent": TP})
        rid = header_id(h)
        ids.append(rid)
        line = json_line(state, rid) if rid else None
        if st != int(name) or rid is None or line is None or line.get("status") != st \
                or line.get("traceparent") != TP:
            p.append(f"worker {name}: {st} {h.get('x-request-id')!r} {line}")
    # nginx's own JSON errors (deploy/nginx/jarvis-atomic-executor-errors.conf).
    for name, data, status in (
            ("414", b"GET /" + b"a" * PAD + b" HTTP/1.1\r\nHost: localhost\r\n\r\n", 414),
            ("494 as 400", b"GET /v1/health HTTP/1.1\r\nHost: localhost\r\nX-Pad: "
             + b"a" * PAD + b"\r\n\r\n", 400),
            ("400", b"GARBAGE\r\n\r\n", 400),
            ("405 TRACE", b"TRACE /v1/health HTTP/1.1\r\nHost: localhost\r\n\r\n", 405),
            ("404 internal", b"GET /__jarvis_errors/502 HTTP/1.1\r\nHost: localhost\r\n"
             b"Connection: close\r\n\r\n", 404)):
        st, h = raw(port, data)
        rid = header_id(h)
        ids.append(rid)
        if st != status or rid is None:
            p.append(f"nginx {name}: {st} X-Request-Id {h.get('x-request-id')!r}")
        elif rid not in read_log(state, "nginx-access.log"):
            # nginx writes its access log line when the request ends
            if not wait_for(lambda: f"rid={rid}" in read_log(state, "nginx-access.log"), 5):
                p.append(f"nginx {name}: rid={rid} not in the access log")
    r.check("error answers carry X-Request-Id: the workers' (with their log line) and "
            "nginx's own JSON errors", p)


def check_fetch(r, base, state, srv, ids):
    p = []
    cases = (("/with", {"traceparent": TP}, TP),
             ("/without", {}, None),
             ("/invalid", {"traceparent": BAD_TPS[0]}, None))
    for path, headers, want in cases:
        # timeout_seconds over the ceiling: the node logs a line of its own
        inputs = {"url": srv.url(path), "timeout_seconds": 100000}
        st, h, body = send(base, "POST", EXECUTE,
                           execute_body(f"nr-fetch{path.replace('/', '-')}",
                                        node="jarvis.web.fetch", inputs=inputs,
                                        trace_id="tid-fetch"), headers)
        rid = header_id(h)
        ids.append(rid)
        try:
            state_ = json.loads(body).get("state")
        except ValueError:
            state_ = None
        if st != 200 or state_ != "succeeded":
            p.append(f"{path}: {st} {body[:200]!r}")
            continue
        if path not in srv.seen:
            p.append(f"{path}: the server saw no request")
        elif srv.seen[path] != want:
            p.append(f"{path}: the server saw traceparent {srv.seen[path]!r}, want {want!r}")
        lines = json_lines(state, rid) if rid else []
        line = next((o for o in lines if "status" in o), None)
        if line is None or line.get("trace_id") != "tid-fetch" or \
                line.get("node_type_id") != "jarvis.web.fetch":
            p.append(f"{path}: log line {line}")
        # the handler's own line (jarvis_ctx_log) names the request too
        nrid = f"nr-fetch-{path[1:]}"
        if not any("clamped" in o.get("msg", "") and o.get("node_run_id") == nrid
                   for o in lines):
            p.append(f"{path}: no handler line with request_id {rid}: {lines}")
    r.check("jarvis.web.fetch sends the request's valid traceparent on, and none otherwise; "
            "its own log line carries request_id", p)


def check_json_log(r, state):
    lines = [ln for ln in read_log(state).splitlines() if ln]
    bad = []
    for ln in lines:
        try:
            obj = json.loads(ln)
            if not isinstance(obj, dict) or not {"time", "level", "pid"} <= obj.keys():
                bad.append(ln[:200])
        except ValueError:
            bad.append(ln[:200])
    r.check(f"JARVIS_LOG_FORMAT=json: each of the {len(lines)} lines of app.log is one JSON "
            "object (json.loads)", ([] if len(lines) >= 10 else [f"only {len(lines)} lines"])
            + bad[:5])


def run_json_pool(r, binary, env):
    env = dict(env, JARVIS_LOG_FORMAT="json",
               JARVIS_ATOMIC_HTTP_ALLOWED_CIDRS="127.0.0.1/32:*")
    pool = LocalPool(binary, workers=2, env=env, prefix="jarvis-trace-e2e-")
    with pool as base, trace_server() as srv:
        if base is None:
            r.check("the JSON pool starts", ["scripts/run-local start failed"])
            return
        ids = []
        check_execute(r, base, pool.state, ids)
        check_invalid_context(r, base, pool.state, ids)
        check_errors(r, base, pool.port, pool.state, ids)
        check_fetch(r, base, pool.state, srv, ids)
        got = [i for i in ids if i]
        r.check(f"X-Request-Id differs on each of the {len(ids)} requests",
                [] if len(got) == len(ids) and len(set(got)) == len(got) else [repr(ids)])
        check_json_log(r, pool.state)


# ---- the default format ----

def run_logfmt_pool(r, binary, env):
    pool = LocalPool(binary, workers=1, env=env, prefix="jarvis-trace-e2e-logfmt-")
    with pool as base:
        if base is None:
            r.check("the logfmt pool starts", ["scripts/run-local start failed"])
            return
        st, h, _ = send(base, "POST", EXECUTE, execute_body("nr-logfmt", trace_id="tid 2"),
                        {"traceparent": TP, "X-Request-Id": "client-8"})
        rid = header_id(h)
        line = text_line(pool.state, rid) if rid else None
        p = [] if st == 200 and line else [f"{st} {h.get('x-request-id')!r} no line"]
        for field in ("run_id=run-of-nr-logfmt", "node_run_id=nr-logfmt", 'trace_id="tid 2"',
                      f"traceparent={TP}", "client_request_id=client-8", "status=200",
                      "state=succeeded"):
            if line and f" {field} " not in line:
                p.append(f"{field} not in: {line}")
        r.check("logfmt (the default): request_id=<X-Request-Id> with the same fields", p)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--binary", required=True)
    args = ap.parse_args()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("ARP_AUTH_") and not k.startswith("JARVIS_")}
    env["no_proxy"] = "127.0.0.1,localhost"
    r = Checks()
    t0 = time.monotonic()
    for body in (run_json_pool, run_logfmt_pool):
        try:
            body(r, args.binary, env)
        except Exception as e:  # a crash of the test itself is a failure, not a hang
            r.check(f"{body.__name__} ran to the end", [repr(e)])
    print(f"({time.monotonic() - t0:.1f} s)")
    return r.close()


if __name__ == "__main__":
    sys.exit(main())
