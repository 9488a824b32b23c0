#!/usr/bin/python3
"""End to end, through nginx and a worker pool: every jarvis.core node type,
driven by tools/send-request with the shipped examples/requests/*.json, plus the
failure paths a client sees (invalid_inputs, handler_error, cancel, timeout).

Closing line: "<n> passed, <n> failed".
"""
import argparse
import base64
import hashlib
import json
import os
import pathlib
import re
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

HERE = pathlib.Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(HERE.parent / "pylib"))
from jarvis_pool import Checks, LocalPool  # noqa: E402

SEND = REPO / "tools/send-request"
EXAMPLES = REPO / "examples/requests"
TS = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")


class Run(Checks):
    def __init__(self, base):
        super().__init__()
        self.base = base

    def execute(self, node, inputs, node_run_id, constraints=None, timeout=30):
        body = {"node_run_id": node_run_id, "run_id": "run-nodes-e2e",
                "node_type_ref": {"node_type_id": node, "version": "0.3.8"}, "inputs": inputs}
        if constraints:
            body["constraints"] = constraints
        req = urllib.request.Request(self.base + "/v1/atomic-node-runs:execute",
                                     data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"null")

    def send_example(self, node):
        env = dict(os.environ, JARVIS_URL=self.base)
        env.pop("ARP_TOKEN", None)
        out = subprocess.run([str(SEND), "--request", str(EXAMPLES / f"{node}.json")],
                             capture_output=True, text=True, env=env, timeout=60)
        try:
            return out.returncode, json.loads(out.stdout)
        except ValueError:
            return out.returncode, {"unparsed": out.stdout + out.stderr}


def result_problems(status, res, state, outputs=None, error=None):
    """Exact AtomicExecuteResult check; timestamps by form."""
    problems = [] if status == 200 else [f"HTTP {status}"]
    for k in ("started_at", "ended_at"):
        if not TS.match(str(res.get(k, ""))):
            problems.append(f"{k}={res.get(k)!r}")
    want = {"state": state}
    if outputs is not None:
        want["outputs"] = outputs
    if error is not None:
        want["error"] = error
    got = {k: v for k, v in res.items() if k not in ("started_at", "ended_at", "node_run_id")}
    if callable(outputs):
        problems += outputs(res.get("outputs"))
        got.pop("outputs", None)
        want.pop("outputs", None)
    if got != want:
        problems.append(f"got {json.dumps(got)} want {json.dumps(want)}")
    return problems


def check_examples(r):
    """Every shipped example request, through tools/send-request."""
    rc, res = r.send_example("jarvis.core.echo")
    r.check("example echo", [] if rc == 0 and res.get("outputs") == {"echo": "pong"} else [str(res)])
    rc, res = r.send_example("jarvis.core.sleep")
    r.check("example sleep", [] if rc == 0 and res.get("outputs") == {"slept_seconds": 0.5}
            else [str(res)])
    rc, res = r.send_example("jarvis.core.uuid4")
    u = res.get("outputs", {}).get("uuid4", "")
    r.check("example uuid4", [] if rc == 0 and re.match(
        r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$", u) else [str(res)])
    rc, res = r.send_example("jarvis.core.time.now")
    t = res.get("outputs", {}).get("time", "")
    r.check("example time.now", [] if rc == 0 and re.match(
        r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?\+00:00$", t) else [str(res)])
    rc, res = r.send_example("jarvis.core.hash.sha256")
    r.check("example hash.sha256", [] if rc == 0 and res.get("outputs") == {
        "sha256": hashlib.sha256(b"hello").hexdigest()} else [str(res)])


def check_web_fetch(r, port):
    """jarvis.web.fetch, fetching the executor's own health through nginx."""
    env = dict(os.environ, JARVIS_URL=r.base)
    req = json.loads((EXAMPLES / "jarvis.web.fetch.json").read_text())
    req["inputs"]["url"] = f"http://127.0.0.1:{port}/v1/health"
    out = subprocess.run([str(SEND), "--request", "-"], input=json.dumps(req),
                         capture_output=True, text=True, env=env, timeout=60)
    res = json.loads(out.stdout or "{}")
    o = res.get("outputs", {})
    body = json.loads(base64.b64decode(o.get("content_base64", "")) or b"{}")
    keys = [h.get("key") for h in o.get("headers", [])]
    r.check("example web.fetch", [] if out.returncode == 0 and o.get("status_code") == 200
            and o.get("content_type") == "application/json" and body.get("status") == "ok"
            and o.get("final_url") == req["inputs"]["url"] and keys == sorted(keys)
            and o.get("content_bytes") == len(base64.b64decode(o["content_base64"]))
            else [json.dumps(res)[:400]])
    # the pool re-allows 127.0.0.1 only (main): other loopback addresses stay
    # refused, named fetch_denied for the client; nothing listens there anyway
    for url in (f"http://127.0.0.2:{port}/v1/health", f"http://[::1]:{port}/v1/health",
                f"http://0x7f000002:{port}/v1/health"):
        st, res = r.execute("jarvis.web.fetch", {"url": url}, "nr-fetch-denied")
        r.check(f"web.fetch {url} refused", result_problems(st, res, "failed", error={
            "code": "fetch_denied",
            "message": "The URL's address or port is not allowed by the fetch policy"}))
    st, res = r.execute("jarvis.web.fetch", {"url": "ftp://example.com/x"}, "nr-fetch-bad")
    r.check("web.fetch bad url", [] if st == 200 and res["state"] == "failed" and
            res["error"]["code"] in ("invalid_inputs", "handler_error") else [json.dumps(res)])


def check_failures(r):
    st, res = r.execute("jarvis.core.sleep", {"seconds": -1}, "nr-sleep-neg")
    r.check("sleep negative -> invalid_inputs", result_problems(st, res, "failed", error={
        "code": "invalid_inputs", "message": "Inputs do not match the node's input schema",
        "details": {"errors": [{"type": "greater_than_equal", "loc": ["inputs", "seconds"],
                                "msg": "Input should be greater than or equal to 0"}]}}))
    st, res = r.execute("jarvis.core.uuid4", {"x": 1}, "nr-uuid-extra")
    r.check("uuid4 extra input -> invalid_inputs", result_problems(st, res, "failed", error={
        "code": "invalid_inputs", "message": "Inputs do not match the node's input schema",
        "details": {"errors": [{"type": "extra_forbidden", "loc": ["inputs", "x"],
                                "msg": "Extra inputs are not permitted"}]}}))
    st, res = r.execute("jarvis.core.hash.sha256", {}, "nr-hash-none")
    r.check("sha256 without content -> handler_error", result_problems(st, res, "failed", error={
        "code": "handler_error", "message": "Atomic handler failed"}))
    st, res = r.execute("jarvis.core.hash.sha256", {"content_base64": "aGVsbG8="}, "nr-hash-b64")
    r.check("sha256 content_base64", result_problems(st, res, "succeeded", outputs={
        "sha256": hashlib.sha256(b"hello").hexdigest()}))
    st, res = r.execute("jarvis.core.sleep", {"seconds": 10}, "nr-sleep-budget",
                        constraints={"budgets": {"max_wall_time_ms": 200}})
    r.check("sleep past max_wall_time_ms -> timeout", result_problems(st, res, "failed", error={
        "code": "timeout", "message": "Atomic execution timed out"}))


def check_cancel(r):
    box = {}

    def bg():
        box["res"] = r.execute("jarvis.core.sleep", {"seconds": 10}, "nr-sleep-cancel")
    t = threading.Thread(target=bg)
    t0 = time.monotonic()
    t.start()
    time.sleep(0.3)
    req = urllib.request.Request(r.base + "/v1/atomic-node-runs/nr-sleep-cancel:cancel",
                                 method="POST")
    with urllib.request.urlopen(req, timeout=10) as resp:
        cancel_status = resp.status
    t.join(15)
    st, res = box.get("res", (0, {}))
    problems = result_problems(st, res, "canceled", error={
        "code": "canceled", "message": "Atomic execution canceled"})
    if cancel_status != 204:
        problems.append(f"cancel answered {cancel_status}")
    if time.monotonic() - t0 > 3:
        problems.append("the sleep was not cut short")
    r.check("sleep canceled from another worker", problems)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--binary", required=True)
    args = ap.parse_args()
    # jarvis.web.fetch denies loopback by default; the example fetches the
    # pool's own health on 127.0.0.1 (any port: the pool's is chosen at start)
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARP_AUTH_")}
    env["JARVIS_ATOMIC_HTTP_ALLOWED_CIDRS"] = "127.0.0.1/32:*"
    with LocalPool(args.binary, workers=3, env=env, prefix="jarvis-nodes-e2e-") as base:
        r = Run(base)
        if base is None:
            r.check("the pool starts", ["scripts/run-local start failed"])
            return r.close()
        port = int(base.rsplit(":", 1)[1])
        try:
            check_examples(r)
            check_web_fetch(r, port)
            check_failures(r)
            check_cancel(r)
        except Exception as e:  # a crash of the test itself is a failure, not a hang
            r.check("nodes e2e ran to the end", [repr(e)])
    return r.close()


if __name__ == "__main__":
    sys.exit(main())
