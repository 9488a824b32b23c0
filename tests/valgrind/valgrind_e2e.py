#!/usr/bin/python3
"""One worker under valgrind (memcheck) over a mixed request stream.

The release build of the test binary (RelWithDebInfo: valgrind cannot run an
ASan binary) runs as ONE process under plain spawn-fcgi, wrapped in

  valgrind --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite

behind an nginx on 127.0.0.1 (tests/pylib's PlainWorker, as in
tests/e2e_plain), with bearer auth on (the
enterprise profile; RS256 and ES256 keys made with the openssl CLI by
tests/e2e_auth's helpers, their JWKS served over loopback HTTP). ROUNDS times
it gets every kind of request: executes of every jarvis.core node
(jarvis.web.fetch against the same http.server on 127.0.0.1 in this process)
and of jarvis.test.fail, each kind of failed run (unknown_node_type,
invalid_inputs, handler_error, fetch_denied, timeout), each kind of refused
request (bad JSON, schema violations, an over-size body, an empty body, 404,
405, 415, 411, 401 for a missing, expired, forged or unknown-kid token),
health and version, cancels that hit a run in flight and cancels that miss,
and a duplicate node_run_id (409). Then SIGTERM stops the idle worker, which
exits by itself (_exit(0)), so valgrind runs its leak check; the test fails
on any invalid access or definite leak: valgrind's exit status (1) and its
log's ERROR SUMMARY both say so. About 15 s.

  tests/valgrind/valgrind_e2e.py --binary build/tests/jarvis-atomic-executor-test

Suppressions: tests/valgrind/jarvis.supp (third-party one-time allocations
only). Closing line: "<n> passed, <n> failed". Loopback only; every wait is
bounded.
"""
import argparse
import http.client
import http.server
import json
import os
import pathlib
import re
import shutil
import sys
import tempfile
import threading
import time

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "pylib"))
sys.path.insert(0, str(HERE.parent / "e2e_auth"))
from auth_e2e import AUD, ISS, Key, jwks_of, mint  # noqa: E402
from jarvis_pool import Checks, PlainWorker, wait_for  # noqa: E402

EXECUTE = "/v1/atomic-node-runs:execute"
ROUNDS = 3                  # the whole stream, this many times
MAX_BODY = 65536            # JARVIS_MAX_BODY_BYTES: a small limit keeps the 413 cheap
START_SECS = 60             # the worker's start under valgrind, on a loaded machine
STOP_SECS = 60              # SIGTERM to exit, leak check included
REQUEST_SECS = 30           # one exchange (valgrind makes the worker 20-50 x slower)
SLEEP_MS = 3000             # a run held in flight for a cancel or a duplicate
VALGRIND = ["--error-exitcode=1", "--leak-check=full",
            "--errors-for-leak-kinds=definite", "--show-leak-kinds=definite",
            "--num-callers=30", f"--suppressions={HERE / 'jarvis.supp'}"]


class Served(http.server.BaseHTTPRequestHandler):
    """The loopback server: /jwks.json for the worker's keys, anything else
    a small fixed body for jarvis.web.fetch."""
    jwks = b'{"keys":[]}'

    def do_GET(self):  # noqa: N802
        body, ctype = b"hello from the valgrind test\n", "text/plain"
        if self.path == "/jwks.json":
            body, ctype = Served.jwks, "application/json"
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class Client:
    """HTTP exchanges with the worker's nginx, with a bearer token."""

    def __init__(self, port, tokens):
        self.port, self.tokens, self.token = port, tokens, tokens["rs256"]

    def request(self, method, path, body=None, ctype="application/json", timeout=REQUEST_SECS,
                length=True, token=""):
        """(status, parsed JSON body or None). token: "" for the client's
        own, None for no Authorization header. length=False: a bodiless
        request with no Content-Length header at all."""
        token = self.token if token == "" else token
        headers = {"Content-Type": ctype} if ctype else {}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            if length:
                c.request(method, path, body=body, headers=headers)
            else:
                c.putrequest(method, path)
                for k, v in headers.items():
                    c.putheader(k, v)
                c.endheaders()
            return self.reply(c.getresponse())
        finally:
            c.close()

    @staticmethod
    def reply(r):
        raw = r.read()
        try:
            return r.status, json.loads(raw) if raw else None
        except ValueError:
            return r.status, {"unparsed": raw[:200].decode("utf-8", "replace")}


def execute_body(nrid, node, inputs, constraints=None):
    body = {"node_run_id": nrid, "run_id": "valgrind",
            "node_type_ref": {"node_type_id": node, "version": "0.3.8"}, "inputs": inputs}
    if constraints:
        body["constraints"] = constraints
    return json.dumps(body)


def stream(fetch_port):
    """(name, method, path, body, status, want): want is the state and
    error.code of a 200, or error.code of a refusal, or None (no body). All
    with a valid token and Content-Type: application/json."""
    url = f"http://127.0.0.1:{fetch_port}/data"
    runs = [
        ("echo", "jarvis.core.echo", {"echo": "pong"}, None, ("succeeded", None)),
        ("echo json", "jarvis.core.echo", {"a": [1, 2.5, None, {"b": "é"}]}, None,
         ("succeeded", None)),
        ("sleep", "jarvis.core.sleep", {"seconds": 0.01}, None, ("succeeded", None)),
        ("uuid4", "jarvis.core.uuid4", {}, None, ("succeeded", None)),
        ("time.now", "jarvis.core.time.now", {}, None, ("succeeded", None)),
        ("sha256 text", "jarvis.core.hash.sha256", {"text": "hello", "encoding": "latin-1"},
         None, ("succeeded", None)),
        ("sha256 base64", "jarvis.core.hash.sha256", {"content_base64": "aGVsbG8="}, None,
         ("succeeded", None)),
        ("fetch", "jarvis.web.fetch", {"url": url, "headers": [{"key": "X-A", "value": "1"}],
                                       "params": [{"key": "q", "value": "v"}]},
         None, ("succeeded", None)),
        ("fetch denied", "jarvis.web.fetch", {"url": "http://127.0.0.1:1/"}, None,
         ("failed", "fetch_denied")),
        ("unknown node type", "jarvis.nope", {}, None, ("failed", "unknown_node_type")),
        ("invalid inputs", "jarvis.core.sleep", {"seconds": "x"}, None,
         ("failed", "invalid_inputs")),
        ("handler error", "jarvis.test.fail", {}, None, ("failed", "handler_error")),
        ("bad base64", "jarvis.core.hash.sha256", {"content_base64": "@@"}, None,
         ("failed", "handler_error")),
        ("timeout", "jarvis.core.sleep", {"seconds": 5},
         {"budgets": {"max_wall_time_ms": 50}}, ("failed", "timeout")),
    ]
    out = [(name, "POST", EXECUTE, execute_body(f"vg-{i}", node, inputs, cons), 200, want)
           for i, (name, node, inputs, cons, want) in enumerate(runs)]
    out += [
        ("bad JSON", "POST", EXECUTE, '{"node_run_id": ', 400, "invalid_request"),
        ("schema violation", "POST", EXECUTE,
         json.dumps({"run_id": "r", "extra": 1, "node_type_ref": {"node_type_id": 5}}), 400,
         "invalid_request"),
        ("over-size body", "POST", EXECUTE, "[" + " " * MAX_BODY + "]", 413, "payload_too_large"),
        ("unknown path", "GET", "/v1/nothing", None, 404, "not_found"),
        ("wrong method", "GET", EXECUTE, None, 405, "method_not_allowed"),
        ("health", "GET", "/v1/health", None, 200, None),
        ("version", "GET", "/v1/version", None, 200, None),
        ("cancel miss", "POST", "/v1/atomic-node-runs/vg-nobody:cancel", None, 204, None),
    ]
    return out


def problems_of(status, data, want_status, want):
    if status != want_status:
        return [f"HTTP {status} (want {want_status}): {data}"]
    if want is None:
        return []
    if isinstance(want, tuple):
        state, code = want
        got = ((data or {}).get("state"), ((data or {}).get("error") or {}).get("code"))
        return [] if got == (state, code) else [f"{got} (want {want}): {data}"]
    code = ((data or {}).get("error") or {}).get("code")
    return [] if code == want else [f"error {code} (want {want})"]


def in_flight(client, nrid, second):
    """Starts an execute of a SLEEP_MS sleep with id nrid, waits (bounded)
    until health counts it running, then calls second() while it runs. The
    sleep's (status, body) and second's result."""
    got = {}

    def run():
        got["run"] = client.request("POST", EXECUTE, execute_body(
            nrid, "jarvis.core.sleep", {"seconds": SLEEP_MS / 1000}))

    t = threading.Thread(target=run)
    t.start()
    deadline = time.monotonic() + REQUEST_SECS
    while time.monotonic() < deadline:
        _, health = client.request("GET", "/v1/health")
        if (health or {}).get("checks", [{}])[0].get("details", {}).get("running", 0) >= 1:
            break
        time.sleep(0.05)
    other = second()
    t.join(REQUEST_SECS + SLEEP_MS / 1000)
    return got.get("run", (None, None)), other


def run_stream(client, fetch_port, checks, rnd):
    for name, method, path, body, want_status, want in stream(fetch_port):
        status, data = client.request(method, path, body)
        checks.check(f"round {rnd}: {name}", problems_of(status, data, want_status, want))
    refused = [
        ("not JSON", dict(body="{}", ctype="text/plain"), 415, "unsupported_media_type"),
        ("empty body", {}, 400, "invalid_request"),
        ("no Content-Length", dict(length=False), 411, "length_required"),
        ("no token", dict(body="{}", token=None), 401, "unauthorized"),
        ("expired token", dict(body="{}", token=client.tokens["expired"]), 401, "unauthorized"),
        ("forged token", dict(body="{}", token=client.tokens["forged"]), 401, "unauthorized"),
        ("unknown kid", dict(body="{}", token=client.tokens["unknown_kid"]), 401, "unauthorized"),
    ]
    for name, kw, want_status, want in refused:
        status, data = client.request("POST", EXECUTE, **kw)
        checks.check(f"round {rnd}: {name}", problems_of(status, data, want_status, want))
    status, data = client.request("POST", EXECUTE, execute_body("vg-es", "jarvis.core.uuid4", {}),
                                  token=client.tokens["es256"])
    checks.check(f"round {rnd}: ES256 token", problems_of(status, data, 200, ("succeeded", None)))

    nrid = f"vg-cancel-{rnd}"
    run, cancel = in_flight(client, nrid, lambda: client.request(
        "POST", f"/v1/atomic-node-runs/{nrid}:cancel"))
    checks.check(f"round {rnd}: cancel hits a run in flight",
                 problems_of(*cancel, 204, None) + problems_of(*run, 200, ("canceled", "canceled")))

    nrid = f"vg-dup-{rnd}"
    run, dup = in_flight(client, nrid, lambda: (
        client.request("POST", EXECUTE, execute_body(nrid, "jarvis.core.echo", {})),
        client.request("POST", f"/v1/atomic-node-runs/{nrid}:cancel")))
    checks.check(f"round {rnd}: duplicate node_run_id",
                 problems_of(*dup[0], 409, "node_run_in_progress") +
                 problems_of(*dup[1], 204, None) + problems_of(*run, 200, ("canceled", "canceled")))


def valgrind_summary(log_text):
    """The lines of valgrind's log worth showing: errors and leak totals."""
    keep = re.compile(r"in use at exit|ERROR SUMMARY|definitely lost|indirectly lost|possibly lost|"
                      r"Invalid|uninitialised|Mismatched|are definitely lost")
    return [line for line in log_text.splitlines() if keep.search(line)]


def answers(client):
    try:
        return client.request("GET", "/v1/health", timeout=5)[0] == 200
    except OSError:
        return False


def make_tokens(keydir):
    """The tokens the stream sends: rs256 (every request's), es256, expired,
    forged (signed by a key not in the JWKS, under a known kid), unknown_kid.
    Sets the JWKS the server hands the worker (the RS256 and ES256 keys)."""
    rsa, ec = Key(keydir, "RSA", "vg-rsa"), Key(keydir, "EC", "vg-ec")
    other = Key(keydir, "RSA", "vg-other")
    Served.jwks = jwks_of(rsa, ec)
    hour = int(time.time()) + 3600
    return {"rs256": mint(rsa, exp=hour), "es256": mint(ec, exp=hour),
            "expired": mint(rsa, exp=int(time.time()) - 3600),
            "forged": mint(other, header={"kid": "vg-rsa"}), "unknown_kid": mint(other)}


def worker_env(served_port):
    return {"ARP_AUTH_PROFILE": "enterprise", "ARP_AUTH_ISSUER": ISS, "ARP_AUTH_AUDIENCE": AUD,
            "ARP_AUTH_ALGORITHMS": "RS256,ES256",
            "ARP_AUTH_JWKS_URI": f"http://127.0.0.1:{served_port}/jwks.json",
            "JARVIS_MAX_BODY_BYTES": str(MAX_BODY), "JARVIS_EXECUTE_SLOTS": "4",
            "JARVIS_ATOMIC_HTTP_ALLOWED_CIDRS": f"127.0.0.1/32:{served_port}"}


def stop_and_check(w, vg_log, checks):
    """SIGTERM to the idle worker; its exit status and valgrind's log."""
    rc = w.stop(STOP_SECS)
    text = pathlib.Path(vg_log).read_text(errors="replace") if os.path.exists(vg_log) else ""
    print("valgrind: " + "\nvalgrind: ".join(valgrind_summary(text) or ["(no log)"]))
    checks.check("SIGTERM: the worker exits 0 (valgrind found no error, no definite leak)",
                 [] if rc == 0 else [f"exit status {rc}"])
    checks.check("valgrind's log: 0 errors, 0 bytes definitely lost",
                 [] if "ERROR SUMMARY: 0 errors" in text and
                 not re.search(r"definitely lost: [1-9]", text) else ["see the log below"])
    if checks.failed:
        print(text[-20000:])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", required=True)
    args = ap.parse_args()
    checks = Checks()
    for tool in ("spawn-fcgi", "nginx", "valgrind", "openssl"):
        if shutil.which(tool) is None and not os.path.exists(f"/usr/sbin/{tool}"):
            checks.check(f"{tool} is installed (scripts/install-deps)", ["missing"])
            return checks.close()
    served = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Served)
    served_port = served.server_address[1]
    threading.Thread(target=served.serve_forever, daemon=True).start()
    keydir = tempfile.mkdtemp(prefix="jarvis-valgrind-keys-")
    vg_log = os.path.join(keydir, "valgrind.log")
    # spawn-fcgi execs valgrind (by its path: no PATH search) in its own
    # place, so w.stop() gets valgrind's exit status.
    wrapper = [shutil.which("valgrind"), *VALGRIND, f"--log-file={vg_log}"]
    try:
        tokens = make_tokens(keydir)
        with PlainWorker(args.binary, worker_env(served_port), wrapper=wrapper,
                         nginx_extra=f"client_max_body_size {2 * MAX_BODY};") as w:
            client = Client(w.port, tokens)
            up = w.problem is None and wait_for(
                lambda: w.proc.poll() is not None or answers(client), START_SECS, 0.1)
            if not up or w.proc.poll() is not None:
                checks.check("the worker starts under valgrind", [w.problem or "no health"])
            else:
                for rnd in range(1, ROUNDS + 1):
                    run_stream(client, served_port, checks, rnd)
                stop_and_check(w, vg_log, checks)
            w.print_log = checks.failed > 0
    finally:
        served.shutdown()
        shutil.rmtree(keydir, ignore_errors=True)
    return checks.close()


if __name__ == "__main__":
    sys.exit(main())
