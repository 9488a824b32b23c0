#!/usr/bin/python3
"""Black-box ARP spec/v1 conformance check of a running executor, through nginx.

It does what the public `arp-conformance check atomic-executor` does at the
smoke and surface tiers, and validates every body it receives against the
spec's JSON Schema files with an independent implementation (python3-jsonschema,
Draft 2020-12), so the C validator tables are not grading their own homework.

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


def request(base, method, path, body=None, content_type="application/json"):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base + path, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", content_type)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
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
            check_node_types(c, args.binary)
    return c.close()


if __name__ == "__main__":
    sys.exit(main())
