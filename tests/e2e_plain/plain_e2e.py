#!/usr/bin/python3
"""The minimal deployment, end to end: the worker binary alone under plain
spawn-fcgi (no multiwatch, no run-local), ONE process on one unix socket,
behind an nginx whose only FastCGI settings are Debian's stock
fastcgi_params and a fastcgi_pass. No error pages, no tuning.

That single process must serve every endpoint, and keep serving health,
version and cancels while its execute slots are all busy and more executes
queue: each cancel answers 204 and ends its execute `canceled` at once.

  tests/e2e_plain/plain_e2e.py --binary PATH   (a build with the jarvis.test pack)

Prints PASS/FAIL per check and "<n> passed, <n> failed"; exit 1 on a failure.
Loopback only; every wait is bounded.
"""
import argparse
import http.client
import json
import os
import shutil
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "pylib"))
from jarvis_pool import Checks, PlainWorker, wait_for  # noqa: E402

EXECUTE = "/v1/atomic-node-runs:execute"


def request(port, method, path, body=None, timeout=30):
    """(status, parsed JSON or None, elapsed ms)."""
    t0 = time.monotonic()
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        c.request(method, path, body=body, headers=headers)
        r = c.getresponse()
        raw = r.read()
        data = json.loads(raw) if raw else None
        return r.status, data, (time.monotonic() - t0) * 1000
    finally:
        c.close()


def sleep_body(node_run_id, ms):
    return json.dumps({"node_run_id": node_run_id, "run_id": "r",
                       "node_type_ref": {"node_type_id": "jarvis.test.sleep", "version": "1"},
                       "inputs": {"ms": ms}})


def capacity_check(port):
    """The execute_capacity check of /v1/health, or {}."""
    status, data, _ = request(port, "GET", "/v1/health")
    for c in (data or {}).get("checks", []) if status == 200 else []:
        if c.get("name") == "execute_capacity":
            return c
    return {}


def run_checks(port, checks):
    status, data, _ = request(port, "GET", "/v1/health")
    checks.check("health answers 200 with its checks",
                 [] if status == 200 and data.get("status") == "ok" and len(data.get("checks", [])) == 3
                 else [f"{status} {data}"])
    status, data, _ = request(port, "GET", "/v1/version")
    checks.check("version answers 200",
                 [] if status == 200 and data.get("service_name") == "jarvis-atomic-executor"
                 else [f"{status} {data}"])
    status, data, _ = request(port, "POST", EXECUTE, json.dumps(
        {"node_run_id": "plain-echo", "run_id": "r",
         "node_type_ref": {"node_type_id": "jarvis.core.echo", "version": "0.3.8"},
         "inputs": {"echo": "plain"}}))
    checks.check("echo executes",
                 [] if status == 200 and data.get("state") == "succeeded"
                 and data.get("outputs") == {"echo": "plain"} else [f"{status} {data}"])
    status, data, _ = request(port, "GET", "/v1/nothing")
    checks.check("404 in JSON", [] if status == 404 and data["error"]["code"] == "not_found"
                 else [f"{status} {data}"])

    cap = capacity_check(port).get("details", {}).get("capacity", 0)
    if cap < 1 or cap > 16:
        checks.check("execute capacity readable", [f"capacity {cap}"])
        return
    answers = {}

    def run(node_run_id):
        answers[node_run_id] = request(port, "POST", EXECUTE, sleep_body(node_run_id, 15000))

    ids = [f"plain-sleep-{i}" for i in range(cap + 1)]
    threads = [threading.Thread(target=run, args=(i,)) for i in ids]
    for t in threads:
        t.start()
    try:
        saturated = wait_for(lambda: capacity_check(port).get("details", {}) ==
                             {"running": cap, "queued": 1, "capacity": cap}, 5)
        checks.check(f"one process: {cap} executes run and 1 queues", [] if saturated else
                     [str(capacity_check(port))])
        slow = []
        for path in ("/v1/health", "/v1/version"):
            status, _, ms = request(port, "GET", path)
            if status != 200 or ms > 1000:
                slow.append(f"{path}: {status} in {ms:.1f} ms")
        checks.check("health and version answer while saturated", slow)
    finally:
        problems = []
        for node_run_id in reversed(ids):
            status, _, ms = request(port, "POST", f"/v1/atomic-node-runs/{node_run_id}:cancel")
            if status != 204 or ms > 1000:
                problems.append(f"cancel {node_run_id}: {status} in {ms:.1f} ms")
        for t in threads:
            t.join(20)
        for node_run_id in ids:
            status, data, _ = answers.get(node_run_id, (None, None, None))
            if status != 200 or (data or {}).get("state") != "canceled":
                problems.append(f"{node_run_id}: {status} {data}")
        checks.check("each execute, running or queued, is canceled at once", problems)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", required=True)
    args = ap.parse_args()
    for tool in ("spawn-fcgi", "nginx"):
        if shutil.which(tool) is None and not os.path.exists(f"/usr/sbin/{tool}"):
            print(f"FAIL {tool} is missing\n0 passed, 1 failed")
            return 1
    checks = Checks()
    with PlainWorker(args.binary, {"ARP_AUTH_PROFILE": "dev-insecure"}) as w:
        if w.problem:
            checks.check("spawn-fcgi and nginx start", [w.problem])
            return checks.close()
        wait_for(lambda: capacity_check(w.port) != {}, 5)
        run_checks(w.port, checks)
        rc = w.stop(5)
        checks.check("SIGTERM stops the idle worker at once", [] if rc == 0 else [f"rc {rc}"])
        w.print_log = checks.failed > 0
        return checks.close()


if __name__ == "__main__":
    sys.exit(main())
