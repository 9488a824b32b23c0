#!/usr/bin/python3
"""Black-box ARP spec/v1 conformance check of a running executor, through nginx.

It does what the public `arp-conformance check atomic-executor` does at the
smoke and surface tiers, and validates every body it receives against the
spec's JSON Schema files with an independent implementation (python3-jsonschema,
Draft 2020-12), so the C validator tables are not grading their own homework.
/v1/health is validated in each state the pool can show here: idle (ok), and
saturated (every execute slot busy with jarvis.test.sleep, one more queued:
degraded), after which the long executes are canceled.

It starts the service with scripts/run-local (a free loopback port and a
temporary state folder), runs the checks, and stops it.
Closing line: "<n> passed, <n> failed".
"""
import argparse
import json
import pathlib
import re
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

from jsonschema import Draft202012Validator, RefResolver

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "pylib"))
from jarvis_pool import Checks, LocalPool  # noqa: E402

RFC3339_MS_UTC = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")


class Spec:
    def __init__(self, root):
        self.root = pathlib.Path(root)

    def validator(self, rel):
        path = self.root / rel
        schema = json.loads(path.read_text())
        resolver = RefResolver(base_uri=path.as_uri(), referrer=schema)
        return Draft202012Validator(schema, resolver=resolver)

    def errors(self, rel, instance):
        return [e.message for e in self.validator(rel).iter_errors(instance)]


def request(base, method, path, body=None, content_type="application/json", timeout=10):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base + path, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", content_type)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.headers.get("Content-Type"), r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type"), e.read()


class Checker(Checks):
    def __init__(self, base, spec):
        super().__init__()
        self.base, self.spec = base, spec

    def expect(self, name, method, path, body, status, schema, extra=None):
        got, ctype, raw = request(self.base, method, path, body)
        problems = []
        if got != status:
            problems.append(f"status {got}, expected {status}")
        if ctype != "application/json":
            problems.append(f"Content-Type {ctype!r}, expected exactly 'application/json'")
        try:
            data = json.loads(raw)
        except ValueError:
            self.check(name, problems + ["body is not JSON"])
            return None
        problems += self.spec.errors(schema, data)
        if extra:
            problems += extra(data)
        self.check(name, problems)
        return data


def times(*keys):
    def check(data):
        return [f"{k}={data.get(k)!r} is not RFC 3339 UTC with milliseconds"
                for k in keys if k in data and not RFC3339_MS_UTC.match(data[k])]
    return check


def run_checks(c):
    health = "schemas/common/health.schema.json"
    version = "schemas/common/version_info.schema.json"
    result = "schemas/atomic_executor/node_runs/atomic_execute_result.schema.json"
    envelope = "schemas/common/error.schema.json"
    request_schema = "schemas/atomic_executor/node_runs/atomic_execute_request.schema.json"

    # smoke tier
    c.expect("smoke.health", "GET", "/v1/health", None, 200, health, times("time"))
    c.expect("smoke.version", "GET", "/v1/version", None, 200, version,
             lambda d: [] if "v1" in d.get("supported_api_versions", [])
             else ["supported_api_versions must include 'v1'"])
    # surface tier: the required execute route rejects an intentionally invalid body
    c.expect("surface.execute_invalid_body", "POST", "/v1/atomic-node-runs:execute", {}, 400,
             envelope, lambda d: [] if d["error"]["code"] == "invalid_request"
             else ["expected code invalid_request"])

    # beyond the public checker: every answer of the executor against the spec
    full = {
        "node_run_id": "nr-conf", "run_id": "run-conf",
        "node_type_ref": {"node_type_id": "jarvis.core.echo", "version": "0.3.8",
                          "extensions": {"com.example.ref": 1}},
        "inputs": {"echo": "pong"},
        "run_context": {"tenant_id": "t", "actor": {"type": "user", "id": "u",
                                                    "uri": "https://example.com/u"},
                        "identity": {"sub": "u"}, "trace": {"trace_id": "a", "span_id": "b",
                                                            "request_id": "c"},
                        "policy": {}, "budgets": {}, "extensions": {"com.example.ctx": True}},
        "constraints": {"structural": {"max_depth": 1, "max_children_per_composite": 2,
                                       "max_total_nodes_per_run": 3,
                                       "max_decomposition_rounds_per_node": 4},
                        "candidates": {"max_candidates_per_subtask": 1,
                                       "allowed_node_type_ids": ["jarvis.core.echo"],
                                       "denied_node_type_ids": []},
                        "budgets": {"max_wall_time_ms": 10000, "max_steps": 1,
                                    "max_external_calls": 0, "max_cost": 0.5},
                        "gates": {"side_effect_class": "read", "require_approval": False},
                        "extensions": {"com.example.c": "x"}},
        "extensions": {"com.example.top": [1, 2]},
    }
    c.check("request fixture is a valid AtomicExecuteRequest", c.spec.errors(request_schema, full))
    c.expect("execute.succeeded", "POST", "/v1/atomic-node-runs:execute", full, 200, result,
             times("started_at", "ended_at"))
    unknown = dict(full, node_type_ref={"node_type_id": "no.such", "version": "1"})
    c.expect("execute.unknown_node_type", "POST", "/v1/atomic-node-runs:execute", unknown, 200,
             result, lambda d: [] if d.get("error", {}).get("code") == "unknown_node_type"
             and d["state"] == "failed" and "outputs" not in d else ["wrong failure shape"])
    failing = dict(full, node_type_ref={"node_type_id": "jarvis.test.fail", "version": "1"})
    c.expect("execute.handler_error", "POST", "/v1/atomic-node-runs:execute", failing, 200,
             result)
    bad = dict(full, constraints={"gates": {"side_effect_class": "delete"}}, extra=1)
    c.expect("execute.schema_violation", "POST", "/v1/atomic-node-runs:execute", bad, 400,
             envelope)
    c.expect("not_found", "GET", "/v1/nope", None, 404, envelope)
    c.expect("method_not_allowed", "DELETE", "/v1/health", None, 405, envelope)
    got, _, raw = request(c.base, "POST", "/v1/atomic-node-runs/nr-conf:cancel")
    c.check("cancel.204", [] if got == 204 and raw == b"" else [f"status {got}, body {raw!r}"])


HEALTH = "schemas/common/health.schema.json"
HEALTH_CHECKS = ("execute_capacity", "run_table", "auth_keys")
EXECUTE = "/v1/atomic-node-runs:execute"


def health_check(data, name):
    """The check called name in a Health body, or {}."""
    for ch in data.get("checks") or []:
        if isinstance(ch, dict) and ch.get("name") == name:
            return ch
    return {}


def health_state(status, capacity_status):
    """Extra checks of a Health body: its status, its three checks, execute_capacity's."""
    def check(data):
        if not isinstance(data, dict):
            return ["the body is not a JSON object"]
        problems = times("time")(data)
        names = sorted(ch.get("name") for ch in data.get("checks") or [] if isinstance(ch, dict))
        if names != sorted(HEALTH_CHECKS):
            problems.append(f"checks {names}, expected {sorted(HEALTH_CHECKS)}")
        if data.get("status") != status:
            problems.append(f"status {data.get('status')!r}, expected {status!r}")
        got = health_check(data, "execute_capacity").get("status")
        if got != capacity_status:
            problems.append(f"execute_capacity status {got!r}, expected {capacity_status!r}")
        return problems
    return check


def get_health(base):
    """The Health body of a 200, or None (other status, not JSON, no answer)."""
    try:
        got, _, raw = request(base, "GET", "/v1/health", timeout=5)
        return json.loads(raw) if got == 200 else None
    except (OSError, ValueError):
        return None


def capacity_counts(data):
    """(running, queued, capacity) from execute_capacity's details (None where absent)."""
    d = health_check(data, "execute_capacity").get("details") or {}
    return d.get("running"), d.get("queued"), d.get("capacity")


class Background(threading.Thread):
    """One long jarvis.test.sleep execute; its answer is kept for the main thread."""

    def __init__(self, base, node_run_id, ms):
        super().__init__(daemon=True)
        self.base, self.node_run_id = base, node_run_id
        self.body = {"node_run_id": node_run_id, "run_id": "run-conf-busy",
                     "node_type_ref": {"node_type_id": "jarvis.test.sleep", "version": "1"},
                     "inputs": {"ms": ms}}
        self.answer = None  # (status, Content-Type, raw) or an exception's text

    def run(self):
        try:
            self.answer = request(self.base, "POST", EXECUTE, self.body, timeout=30)
        except Exception as e:  # noqa: BLE001 - reported by the main thread
            self.answer = f"{type(e).__name__}: {e}"


def check_health_states(c):
    """Health validated against the spec in each state the pool can show here: idle (ok),
    then every execute slot busy with one more queued (degraded), then idle again."""
    result = "schemas/atomic_executor/node_runs/atomic_execute_result.schema.json"
    idle = c.expect("health.idle: ok with execute_capacity, run_table and auth_keys", "GET",
                    "/v1/health", None, 200, HEALTH, health_state("ok", "ok"))
    if idle is None:
        return
    c.check("health.idle: auth_keys ok (run-local's dev-insecure: authentication disabled)",
            [] if health_check(idle, "auth_keys").get("status") == "ok"
            else [f"auth_keys {health_check(idle, 'auth_keys')!r}"])
    running, queued, capacity = capacity_counts(idle)
    if not isinstance(capacity, int) or capacity < 1 or running != 0 or queued != 0:
        c.check("health.idle: execute_capacity details give the capacity, nothing running",
                [f"details {health_check(idle, 'execute_capacity').get('details')!r}"])
        return

    # fill every execute slot and queue one more
    busy = [Background(c.base, f"nr-conf-busy-{i + 1}", 15000) for i in range(capacity + 1)]
    for b in busy:
        b.start()
    try:
        deadline = time.monotonic() + 5.0
        while True:
            last = get_health(c.base)
            running, queued, _ = capacity_counts(last or {})
            if running == capacity and isinstance(queued, int) and queued >= 1:
                break
            if time.monotonic() > deadline:
                break
            time.sleep(0.05)
        saturated = running == capacity and isinstance(queued, int) and queued >= 1
        c.check(f"health.saturated: {capacity + 1} sleeps make running == capacity "
                f"({capacity}) and queued >= 1 within 5 s",
                [] if saturated else [f"last health {last!r}"])
        if saturated:
            def degraded(data):
                problems = health_state("degraded", "degraded")(data)
                if not isinstance(data, dict):
                    return problems
                r, q, cap = capacity_counts(data)
                if (r, cap) != (capacity, capacity) or not isinstance(q, int) or q < 1:
                    problems.append(f"running {r}, queued {q}, capacity {cap}: expected "
                                    f"running == capacity == {capacity}, queued >= 1")
                if not health_check(data, "execute_capacity").get("message"):
                    problems.append("execute_capacity has no message")
                return problems
            c.expect("health.saturated: degraded, execute_capacity degraded", "GET",
                     "/v1/health", None, 200, HEALTH, degraded)
    finally:
        # cancel every background execute (running or queued) and wait for its answer
        cancels = []
        for b in busy:
            try:
                got, _, raw = request(c.base, "POST",
                                      f"/v1/atomic-node-runs/{b.node_run_id}:cancel")
            except OSError as e:
                got, raw = None, str(e).encode()
            cancels.append((b, got, raw))
        until = time.monotonic() + 20.0
        for b in busy:
            b.join(max(0.0, until - time.monotonic()))
    for b, got, raw in cancels:
        c.check(f"health.saturated: cancel {b.node_run_id} -> 204",
                [] if got == 204 and raw == b"" else [f"status {got}, body {raw!r}"])
    for b in busy:
        problems = []
        if b.is_alive():
            problems.append("no answer 20 s after the cancel")
        elif not isinstance(b.answer, tuple):
            problems.append(f"request failed: {b.answer}")
        else:
            got, _, raw = b.answer
            try:
                data = json.loads(raw)
            except ValueError:
                data = None
            if got != 200 or not isinstance(data, dict):
                problems.append(f"status {got}, body {raw[:200]!r}")
            else:
                problems += c.spec.errors(result, data)
                if data.get("state") != "canceled" or data.get("node_run_id") != b.node_run_id:
                    problems.append(f"state {data.get('state')!r}, node_run_id "
                                    f"{data.get('node_run_id')!r}: expected canceled")
        c.check(f"health.saturated: execute {b.node_run_id} answers state canceled", problems)

    # every slot free again: ok (canceled runs leave tombstones, which do not degrade)
    deadline = time.monotonic() + 5.0
    while time.monotonic() < deadline and capacity_counts(get_health(c.base) or {})[:2] != (0, 0):
        time.sleep(0.05)
    c.expect("health.idle_again: ok once the executes are canceled", "GET", "/v1/health",
             None, 200, HEALTH, health_state("ok", "ok"))


def check_node_types(c, binary):
    """--list-node-types must print NodeType objects a Node Registry accepts."""
    out = subprocess.run([binary, "--list-node-types"], capture_output=True, text=True)
    if out.returncode != 0:
        c.check("node_types.listing", [f"exit {out.returncode}: {out.stderr.strip()}"])
        return
    types = json.loads(out.stdout)
    ids = [t.get("node_type_id") for t in types]
    c.check("node_types.listing", [] if "jarvis.core.echo" in ids and len(ids) == len(set(ids))
            else [f"unexpected ids {ids}"])
    for t in types:
        c.check(f"node_types.{t.get('node_type_id')}",
                c.spec.errors("schemas/core/node_type.schema.json", t) +
                [f"{k} is not a valid JSON Schema: {e}" for k in ("input_schema", "output_schema")
                 for e in schema_errors(t.get(k))])


def schema_errors(schema):
    try:
        Draft202012Validator.check_schema(schema)
        return []
    except Exception as e:  # jsonschema.SchemaError
        return [str(e).splitlines()[0]]


def main():
    here = pathlib.Path(__file__).resolve().parent
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--binary", required=True, help="worker binary (with the jarvis.test pack)")
    ap.add_argument("--spec", default=str(here.parents[1] / "third_party/arp-spec-v1"))
    args = ap.parse_args()
    with LocalPool(args.binary, prefix="jarvis-conformance-") as base:
        c = Checker(base, Spec(args.spec))
        if base is None:
            c.check("the pool starts", ["scripts/run-local start failed"])
        else:
            run_checks(c)
            check_health_states(c)
            check_node_types(c, args.binary)
    return c.close()


if __name__ == "__main__":
    sys.exit(main())
