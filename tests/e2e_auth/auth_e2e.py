#!/usr/bin/python3
"""End-to-end bearer-JWT authentication of the executor, through nginx.

Everything an identity provider would give is made here, at test time:
RSA 2048 and EC P-256 keys from the `openssl` CLI (in a temporary folder;
no private key is committed), a JWKS built from their public halves, and
tokens signed with `openssl dgst` (RS256; ES256 with the DER signature turned
into raw r||s). A tiny loopback HTTP server (http.server in a thread) serves
the JWKS and an OpenID discovery document and counts JWKS requests.

Pools are started with scripts/run-local (2 workers, a free port, a temporary
state folder) under different ARP_AUTH_* environments, and each answer is
checked for its exact status, exact JSON body and exact WWW-Authenticate
challenge, as the ARP Python server SDK (arp_standard_server.auth) gives
them. Start-up failures must make run-local fail with the SDK's reason in
app.log. Every pool and the HTTP server are stopped at the end, and the test
checks that none of their processes is left.

Closing line: "<n> passed, <n> failed"; exit status 1 on any failure.
"""
import argparse
import base64
import hashlib
import hmac
import http.client
import http.server
import json
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

from jsonschema import Draft202012Validator, RefResolver

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "pylib"))
from jarvis_pool import process_alive  # noqa: E402

HERE = pathlib.Path(__file__).resolve().parent
REPO = HERE.parents[1]
RUNNER = REPO / "scripts/run-local"
WORKERS = 2
EXECUTE = "/v1/atomic-node-runs:execute"
AUD = "jarvis"
ISS = "https://issuer.test"
HEALTH_SCHEMA = REPO / "third_party/arp-spec-v1/schemas/common/health.schema.json"


# --------------------------------------------------------------------------
# keys, JWKS and tokens (openssl CLI + a few lines of DER)

def b64u(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def openssl(*args, data=None):
    return subprocess.run(["openssl", *args], input=data, capture_output=True,
                          check=True).stdout


def der_tlv(buf, i):
    """(tag, start, end) of the DER element at buf[i]."""
    tag, length = buf[i], buf[i + 1]
    i += 2
    if length & 0x80:
        n = length & 0x7F
        length = int.from_bytes(buf[i:i + n], "big")
        i += n
    return tag, i, i + length


def der_children(buf, start, end):
    out = []
    while start < end:
        tag, s, e = der_tlv(buf, start)
        out.append((tag, s, e))
        start = e
    return out


def der_uint(raw):
    return raw.lstrip(b"\x00") or b"\x00"


class Key:
    """A private key file plus its public JWK."""

    def __init__(self, folder, kind, kid):
        self.kind, self.kid = kind, kid
        self.path = os.path.join(folder, f"{kid}.pem")
        if kind == "RSA":
            openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048",
                    "-out", self.path)
            self.alg = "RS256"
        else:
            openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
                    "-out", self.path)
            self.alg = "ES256"
        self.spki = openssl("pkey", "-in", self.path, "-pubout", "-outform", "DER")
        self.pem_public = openssl("pkey", "-in", self.path, "-pubout")
        self.jwk = self._jwk()

    def _jwk(self):
        spki = self.spki
        _, s, e = der_tlv(spki, 0)                      # SubjectPublicKeyInfo
        _, (bt, bs, be) = der_children(spki, s, e)      # AlgorithmIdentifier, BIT STRING
        assert bt == 0x03 and spki[bs] == 0
        key = spki[bs + 1:be]
        if self.kind == "RSA":
            _, s, e = der_tlv(key, 0)                   # RSAPublicKey
            (_, ns, ne), (_, es, ee) = der_children(key, s, e)
            return {"kty": "RSA", "kid": self.kid, "use": "sig", "alg": "RS256",
                    "n": b64u(der_uint(key[ns:ne])), "e": b64u(der_uint(key[es:ee]))}
        assert key[0] == 0x04 and len(key) == 65        # uncompressed P-256 point
        return {"kty": "EC", "kid": self.kid, "use": "sig", "alg": "ES256", "crv": "P-256",
                "x": b64u(key[1:33]), "y": b64u(key[33:65])}

    def sign(self, signing_input):
        sig = openssl("dgst", "-sha256", "-sign", self.path, data=signing_input)
        if self.kind == "RSA":
            return sig
        _, s, e = der_tlv(sig, 0)                       # ECDSA-Sig-Value
        (_, rs, re_), (_, ss, se) = der_children(sig, s, e)
        r, s_ = der_uint(sig[rs:re_]), der_uint(sig[ss:se])
        return r.rjust(32, b"\x00") + s_.rjust(32, b"\x00")


def segment(obj):
    return b64u(json.dumps(obj, separators=(",", ":")).encode())


def mint(key, claims=None, header=None, **overrides):
    """A compact JWS; claims default to a valid token for (ISS, AUD)."""
    now = int(time.time())
    body = {"iss": ISS, "aud": AUD, "sub": "alice", "iat": now, "exp": now + 300}
    body.update(claims or {})
    for k, v in overrides.items():
        if v is None:
            body.pop(k, None)
        else:
            body[k] = v
    head = {"alg": key.alg, "typ": "JWT", "kid": key.kid}
    head.update(header or {})
    signing_input = f"{segment(head)}.{segment(body)}"
    return f"{signing_input}.{b64u(key.sign(signing_input.encode()))}"


def jwks_of(*keys):
    return json.dumps({"keys": [k.jwk for k in keys]}).encode()


# --------------------------------------------------------------------------
# the identity provider: JWKS + discovery on 127.0.0.1

class IdP:
    def __init__(self, port=0):
        self.lock = threading.Lock()
        self.jwks = b'{"keys":[]}'
        self.jwks_hits = 0
        self.discovery_hits = 0
        idp = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                if self.path == "/jwks.json":
                    with idp.lock:
                        idp.jwks_hits += 1
                        body = idp.jwks
                elif self.path == "/.well-known/openid-configuration":
                    with idp.lock:
                        idp.discovery_hits += 1
                    body = json.dumps({"issuer": idp.base,
                                       "jwks_uri": idp.base + "/jwks.json"}).encode()
                else:
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.base = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def set_jwks(self, data):
        with self.lock:
            self.jwks = data

    def hits(self):
        with self.lock:
            return self.jwks_hits

    def close(self):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


# --------------------------------------------------------------------------
# pools through scripts/run-local

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def reserve_closed_port():
    """A loopback port that refuses connections: bound, never listening, so that no
    other pool picks it until the socket is closed."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", 0))
    return s, s.getsockname()[1]


def group_members(pgid):
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                if int(fields[2]) == pgid and fields[0] != "Z":
                    out.append(int(d))
            except (OSError, IndexError, ValueError):
                pass
    return out


class Pool:
    def __init__(self, tmp, binary, name, auth_env):
        self.name, self.binary = name, binary
        self.state = os.path.join(tmp, f"pool-{name}")
        self.port = free_port()
        self.base_env = {k: v for k, v in os.environ.items() if not k.startswith("ARP_AUTH_")}
        self.env = dict(self.base_env, **auth_env)
        self.pids = []
        self.proc = None
        self.rc = None
        self.started_at = None
        self.ready_at = None

    def command(self, what):
        cmd = [str(RUNNER), what, "--state-dir", self.state]
        if what == "start":
            cmd += ["--daemon", "--no-build", "--no-env-file", "--binary", self.binary,
                    "--workers", str(WORKERS), "--port", str(self.port)]
        return cmd

    def spawn(self):
        os.makedirs(self.state, exist_ok=True)
        self.out = open(os.path.join(self.state, "run-local.out"), "w+b")
        self.started_at = time.monotonic()
        self.proc = subprocess.Popen(self.command("start"), env=self.env, stdout=self.out,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    def wait(self, timeout=120):
        try:
            self.rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            # run-local blocks in curl: kill it; stop() then takes nginx and the pool down
            self.proc.kill()
            self.rc = self.proc.wait()
            print(f"run-local start ({self.name}) still running after {timeout} s: killed",
                  flush=True)
        self.ready_at = time.monotonic()
        self._record_pids()
        return self.rc

    def start(self):
        self.spawn()
        return self.wait()

    def _record_pids(self):
        for f in ("pool.pid", "nginx.pid"):
            try:
                with open(os.path.join(self.state, f)) as fh:
                    self.pids.append(int(fh.read().strip()))
            except (OSError, ValueError):
                pass

    def why_not_started(self):
        """run-local's last line and the first worker error in app.log."""
        lines = [l for l in self.output().splitlines() if l.startswith("run-local:")]
        why = lines[-1] if lines else "(no run-local message)"
        for line in self.app_log().splitlines():
            if "ERROR" in line or "cannot start" in line:
                why += " | app.log: " + line.strip()[:300]
                break
        return why

    def output(self):
        self.out.seek(0)
        return self.out.read().decode(errors="replace")

    def app_log(self):
        try:
            with open(os.path.join(self.state, "logs/app.log"), errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def stop(self):
        subprocess.run(self.command("stop"), env=self.base_env, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=60)
        self.out.close()

    def leftovers(self):
        """Processes of this pool still alive: its recorded pids and their group, and any
        process naming the state folder in its command line (nginx -p) or environment
        (run-local exports JARVIS_RUN_TABLE=<state>/runtable to multiwatch and workers)."""
        left = set()
        for pid in self.pids:
            if process_alive(pid):
                left.add(pid)
            left.update(group_members(pid))
        mark = (self.state + "/").encode()
        for d in os.listdir("/proc"):
            if not d.isdigit() or int(d) == os.getpid():
                continue
            for what in ("cmdline", "environ"):
                try:
                    with open(f"/proc/{d}/{what}", "rb") as f:
                        if mark in f.read() and process_alive(int(d)):
                            left.add(int(d))
                except OSError:
                    pass
        return sorted(left)

    # ---- HTTP through nginx

    def call(self, method, path, body=None, authorization=None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        headers = {}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if authorization is not None:
            headers["Authorization"] = authorization
        try:
            conn.request(method, path, body=data, headers=headers)
            r = conn.getresponse()
            return r.status, r.headers, r.read()
        finally:
            conn.close()

    def log_line(self, node_run_id, timeout=3.0):
        """The request line of node_run_id in app.log (written after the answer)."""
        deadline = time.monotonic() + timeout
        needle = f" node_run_id={node_run_id} "
        while True:
            for line in self.app_log().splitlines():
                if needle in line and " path=" in line:
                    return line
            if time.monotonic() > deadline:
                return None
            time.sleep(0.05)


# --------------------------------------------------------------------------
# checks

def compact(obj):
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


def health_validator():
    """The spec's Health schema (python3-jsonschema, Draft 2020-12); its $refs
    (status, extensions) resolve beside it."""
    schema = json.loads(HEALTH_SCHEMA.read_text())
    return Draft202012Validator(schema, resolver=RefResolver(base_uri=HEALTH_SCHEMA.as_uri(),
                                                             referrer=schema))


class Checker:
    def __init__(self):
        self.passed = self.failed = 0
        self.seq = 0
        self.health_schema = health_validator()

    def check(self, name, problems):
        if problems:
            self.failed += 1
            print(f"FAIL {name}: " + "; ".join(problems), flush=True)
        else:
            self.passed += 1
            print(f"PASS {name}", flush=True)

    def nr(self, tag):
        self.seq += 1
        return f"nr-auth-{tag}-{self.seq}"

    @staticmethod
    def execute_body(node_run_id, node_type="jarvis.core.echo"):
        return {"node_run_id": node_run_id, "run_id": "run-auth",
                "node_type_ref": {"node_type_id": node_type, "version": "0.3.8"},
                "inputs": {"echo": "pong"}}

    def unauthorized(self, name, pool, method, path, authorization, message, error,
                     body=None):
        """Exactly the SDK's 401: envelope and Bearer challenge."""
        status, headers, raw = pool.call(method, path, body, authorization)
        want = compact({"error": {"code": "unauthorized", "message": message}})
        challenge = f'Bearer error="{error}", error_description="{message}"'
        problems = []
        if status != 401:
            problems.append(f"status {status}, expected 401")
        if raw != want:
            problems.append(f"body {raw!r}, expected {want!r}")
        if headers.get("Content-Type") != "application/json":
            problems.append(f"Content-Type {headers.get('Content-Type')!r}")
        got = headers.get_all("WWW-Authenticate") or []
        if got != [challenge]:
            problems.append(f"WWW-Authenticate {got!r}, expected [{challenge!r}]")
        self.check(name, problems)

    def unauthorized_execute(self, name, pool, authorization, message, error):
        self.unauthorized(name, pool, "POST", EXECUTE, authorization, message, error,
                          self.execute_body(self.nr("denied")))

    def execute_ok(self, name, pool, authorization, sub, node_type="jarvis.core.echo"):
        """200 succeeded, and the request line in app.log names sub."""
        node_run_id = self.nr("ok")
        status, headers, raw = pool.call("POST", EXECUTE, self.execute_body(node_run_id, node_type),
                                         authorization)
        problems = []
        if status != 200:
            problems.append(f"status {status}, expected 200 (body {raw[:300]!r})")
        else:
            data = json.loads(raw)
            if data.get("state") != "succeeded" or data.get("node_run_id") != node_run_id:
                problems.append(f"unexpected result {data!r}")
            elif node_type == "jarvis.core.echo" and data.get("outputs") != {"echo": "pong"}:
                problems.append(f"outputs {data.get('outputs')!r}")
        if headers.get("WWW-Authenticate") is not None:
            problems.append("a 200 carries WWW-Authenticate")
        if sub is not None and not problems:
            line = pool.log_line(node_run_id)
            if line is None:
                problems.append("no request line in app.log")
            elif f" sub={sub} " not in line or " status=200 " not in line:
                problems.append(f"app.log line lacks sub={sub}: {line.strip()}")
        self.check(name, problems)

    def status(self, name, pool, method, path, authorization, want_status, want_body=None):
        status, _, raw = pool.call(method, path, None, authorization)
        problems = []
        if status != want_status:
            problems.append(f"status {status}, expected {want_status} (body {raw[:200]!r})")
        if want_body is not None and raw != want_body:
            problems.append(f"body {raw!r}, expected {want_body!r}")
        self.check(name, problems)
        return raw

    def health(self, name, pool, status, keys_status, keys=None, message_prefix=None,
               requests=1):
        """GET /v1/health without a token, `requests` times (any worker may answer; each
        has its own keys): 200, valid against the spec's Health, the top-level status, and
        the auth_keys check's status, details.keys within keys=(least, most or None) and
        message prefix."""
        problems = []
        for i in range(requests):
            status_code, headers, raw = pool.call("GET", "/v1/health")
            where = f"request {i + 1}: " if requests > 1 else ""
            if status_code != 200:
                problems.append(f"{where}status {status_code}, expected 200 (body {raw[:200]!r})")
                continue
            if headers.get("Content-Type") != "application/json":
                problems.append(f"{where}Content-Type {headers.get('Content-Type')!r}")
            try:
                data = json.loads(raw)
            except ValueError:
                problems.append(f"{where}body is not JSON: {raw[:200]!r}")
                continue
            problems += [f"{where}schema: {e.message}"
                         for e in self.health_schema.iter_errors(data)]
            if not isinstance(data, dict):
                continue
            if data.get("status") != status:
                problems.append(f"{where}status {data.get('status')!r}, expected {status!r}")
            checks = [ch for ch in data.get("checks") or []
                      if isinstance(ch, dict) and ch.get("name") == "auth_keys"]
            if len(checks) != 1:
                problems.append(f"{where}{len(checks)} auth_keys checks in {data!r}")
                continue
            auth_keys = checks[0]
            if auth_keys.get("status") != keys_status:
                problems.append(f"{where}auth_keys {auth_keys!r}, expected status "
                                f"{keys_status!r}")
            if keys is not None:
                least, most = keys
                n = (auth_keys.get("details") or {}).get("keys")
                if not isinstance(n, int) or n < least or (most is not None and n > most):
                    problems.append(f"{where}auth_keys details {auth_keys.get('details')!r}, "
                                    f"expected keys in [{least}, {most}]")
            if message_prefix is not None and \
                    not str(auth_keys.get("message", "")).startswith(message_prefix):
                problems.append(f"{where}auth_keys message {auth_keys.get('message')!r}, "
                                f"expected {message_prefix!r}...")
        self.check(name, problems)

    def started(self, name, pool):
        problems = [] if pool.rc == 0 else [f"run-local start exited {pool.rc}: "
                                            + pool.why_not_started()]
        self.check(name, problems)
        return pool.rc == 0


# --------------------------------------------------------------------------
# scenarios

def scenario_enterprise(c, pool, idp, keys, new_key):
    rsa, ec = keys
    bearer = lambda tok: f"Bearer {tok}"  # noqa: E731
    good_rs = mint(rsa, sub="alice-rs")
    good_es = mint(ec, sub="bob-es")

    for path in ("/v1/health", "/v1/version", "/metrics"):
        c.status(f"enterprise: GET {path} without a token -> 200", pool, "GET", path, None, 200)
    c.status("enterprise: GET /v1/health with a bad token -> 200 (exempt, token ignored)",
             pool, "GET", "/v1/health", "Bearer not.a.token", 200)
    c.health("enterprise: /v1/health is a valid Health, ok: auth_keys ok with the JWKS's keys",
             pool, "ok", "ok", keys=(1, None), requests=2 * WORKERS)

    c.unauthorized_execute("enterprise: execute without Authorization -> 401 Missing",
                           pool, None, "Missing Authorization header", "invalid_request")
    c.unauthorized_execute("enterprise: empty Authorization -> 401 Missing",
                           pool, "", "Missing Authorization header", "invalid_request")
    c.unauthorized_execute("enterprise: Authorization: Basic x -> 401 Invalid header",
                           pool, "Basic x", "Invalid Authorization header", "invalid_request")
    c.unauthorized_execute("enterprise: 'Bearer' alone -> 401 Invalid header",
                           pool, "Bearer", "Invalid Authorization header", "invalid_request")
    c.unauthorized_execute("enterprise: 'Bearer a b' -> 401 Invalid header",
                           pool, f"Bearer {good_rs} extra", "Invalid Authorization header",
                           "invalid_request")

    c.execute_ok("enterprise: valid RS256 token -> 200 succeeded, sub in app.log", pool,
                 bearer(good_rs), "alice-rs")
    c.execute_ok("enterprise: valid ES256 token -> 200 succeeded, sub in app.log", pool,
                 bearer(good_es), "bob-es")
    c.execute_ok("enterprise: scheme is case-insensitive ('bearer') -> 200", pool,
                 f"bearer {good_rs}", "alice-rs")
    c.execute_ok("enterprise: aud list containing the audience -> 200", pool,
                 bearer(mint(rsa, sub="carol", aud=["other", AUD])), "carol")
    c.execute_ok("enterprise: exp 30 s ago is inside the 60 s clock skew -> 200", pool,
                 bearer(mint(rsa, sub="dave", exp=int(time.time()) - 30)), "dave")

    now = int(time.time())
    c.unauthorized_execute("enterprise: expired token -> 401 Token expired", pool,
                           bearer(mint(rsa, exp=now - 3600, iat=now - 7200)),
                           "Token expired", "invalid_token")
    c.unauthorized_execute("enterprise: wrong aud -> 401 Invalid token audience", pool,
                           bearer(mint(rsa, aud="someone-else")),
                           "Invalid token audience", "invalid_token")
    c.unauthorized_execute("enterprise: wrong iss -> 401 Invalid token issuer", pool,
                           bearer(mint(rsa, iss="https://evil.test")),
                           "Invalid token issuer", "invalid_token")
    c.unauthorized_execute("enterprise: ES256 wrong iss -> 401 Invalid token issuer", pool,
                           bearer(mint(ec, iss="https://evil.test")),
                           "Invalid token issuer", "invalid_token")
    c.unauthorized_execute("enterprise: no aud claim -> 401 Invalid token", pool,
                           bearer(mint(rsa, aud=None)), "Invalid token", "invalid_token")
    c.unauthorized_execute("enterprise: nbf in the future -> 401 Invalid token", pool,
                           bearer(mint(rsa, nbf=now + 3600)), "Invalid token", "invalid_token")

    # bad signature: a valid signature, but of another payload
    other = mint(rsa, sub="mallory")
    h, p, _ = good_rs.split(".")
    forged = f"{h}.{b64u(json.dumps({'iss': ISS, 'aud': AUD, 'sub': 'root', 'exp': now + 300}).encode())}.{other.split('.')[2]}"
    c.unauthorized_execute("enterprise: bad RS256 signature -> 401 Invalid token", pool,
                           bearer(forged), "Invalid token", "invalid_token")
    eh, ep, es = good_es.split(".")
    tampered = f"{eh}.{ep}.{b64u(bytes(64))}"
    c.unauthorized_execute("enterprise: bad ES256 signature -> 401 Invalid token", pool,
                           bearer(tampered), "Invalid token", "invalid_token")
    c.unauthorized_execute("enterprise: token signed by a key not in the JWKS, known kid "
                           "-> 401 Invalid token", pool,
                           bearer(mint(new_key, header={"kid": rsa.kid})),
                           "Invalid token", "invalid_token")

    none_token = (f"{segment({'alg': 'none', 'typ': 'JWT', 'kid': rsa.kid})}."
                  f"{segment({'iss': ISS, 'aud': AUD, 'sub': 'root', 'exp': now + 300})}.")
    c.unauthorized_execute("enterprise: alg none -> 401 Invalid token", pool,
                           bearer(none_token), "Invalid token", "invalid_token")
    # the classic confusion: HS256 keyed with the RSA public key's PEM
    hs_in = (f"{segment({'alg': 'HS256', 'typ': 'JWT', 'kid': rsa.kid})}."
             f"{segment({'iss': ISS, 'aud': AUD, 'sub': 'root', 'exp': now + 300})}")
    hs_sig = hmac.new(rsa.pem_public, hs_in.encode(), hashlib.sha256).digest()
    c.unauthorized_execute("enterprise: HS256 keyed with the RSA public PEM -> 401 Invalid "
                           "token", pool, bearer(f"{hs_in}.{b64u(hs_sig)}"),
                           "Invalid token", "invalid_token")
    c.unauthorized_execute("enterprise: garbage token -> 401 Invalid token", pool,
                           "Bearer not-a-jwt", "Invalid token", "invalid_token")

    c.unauthorized("enterprise: GET /v1/nope without a token -> 401 (auth before routing)",
                   pool, "GET", "/v1/nope", None, "Missing Authorization header",
                   "invalid_request")
    c.status("enterprise: GET /v1/nope with a valid token -> 404", pool, "GET", "/v1/nope",
             bearer(good_rs), 404,
             compact({"error": {"code": "not_found", "message": "Not Found"}}))
    c.unauthorized("enterprise: cancel without a token -> 401", pool, "POST",
                   "/v1/atomic-node-runs/nr-auth-cancel:cancel", None,
                   "Missing Authorization header", "invalid_request")
    c.status("enterprise: cancel with a valid token -> 204", pool, "POST",
             "/v1/atomic-node-runs/nr-auth-cancel:cancel", bearer(good_rs), 204, b"")

    # key rotation: a kid the workers have not seen; they refetch once
    idp.set_jwks(jwks_of(rsa, ec, new_key))
    wait = pool.ready_at + 11.0 - time.monotonic()
    if wait > 0:
        time.sleep(wait)  # past the 10 s refetch limit since the workers' first fetch
    before = idp.hits()
    rotated = bearer(mint(new_key, sub="erin-rotated"))
    for i in range(3 * WORKERS):
        c.execute_ok(f"enterprise: new kid after JWKS rotation -> 200 (request {i + 1})", pool,
                     rotated, "erin-rotated")
    after = idp.hits()
    # One worker fetches (the pool-wide limit lets one through) and shares the
    # document through the run table; the others adopt it without a fetch.
    c.check("enterprise: the unknown kid made the pool refetch the JWKS once, for every "
            "worker", [] if after == before + 1
            else [f"JWKS requests {before} -> {after}, expected exactly 1 more"])
    before = idp.hits()
    ghost = bearer(mint(new_key, header={"kid": "never-published"}))
    for i in range(3):
        c.unauthorized_execute(f"enterprise: kid never published -> 401 Unable to fetch JWKS "
                               f"(request {i + 1})", pool, ghost, "Unable to fetch JWKS",
                               "invalid_token")
    after = idp.hits()
    c.check("enterprise: unknown-kid refetches are rate-limited (at most one per 10 s for the "
            "whole pool)", [] if after - before <= 1
            else [f"{after - before} JWKS requests for 3 tokens"])


def scenario_dev_insecure(c, pool):
    c.health("dev-insecure: /v1/health is a valid Health, ok: auth_keys ok, 'authentication "
             "is disabled'", pool, "ok", "ok", message_prefix="authentication is disabled")
    c.execute_ok("dev-insecure: execute without a token -> 200, sub=dev", pool, None, "dev")
    c.execute_ok("dev-insecure: an Authorization header is ignored -> 200, sub=dev", pool,
                 "Bearer not-a-jwt", "dev")
    c.execute_ok("dev-insecure: jarvis.test.context without a token -> 200", pool, None, "dev",
                 node_type="jarvis.test.context")
    log = pool.app_log()
    c.check("dev-insecure: the worker log has the loud AUTH DISABLED warning",
            [] if "WARN" in log and "AUTH DISABLED" in log and "loopback" in log
            else ["no 'AUTH DISABLED' warning in app.log"])


def scenario_optional(c, pool, rsa):
    c.health("optional: /v1/health is a valid Health, ok: auth_keys ok with the file's key",
             pool, "ok", "ok", keys=(1, None))
    c.execute_ok("optional: execute without a token -> 200, sub=anonymous", pool, None,
                 "anonymous")
    c.execute_ok("optional: a valid token -> 200, sub from the token", pool,
                 f"Bearer {mint(rsa, sub='frank')}", "frank")
    c.unauthorized_execute("optional: a bad token -> 401 Invalid token", pool,
                           "Bearer not-a-jwt", "Invalid token", "invalid_token")
    now = int(time.time())
    c.unauthorized_execute("optional: an expired token -> 401 Token expired", pool,
                           f"Bearer {mint(rsa, exp=now - 3600, iat=now - 7200)}",
                           "Token expired", "invalid_token")
    c.unauthorized_execute("optional: Authorization: Basic x -> 401 Invalid header", pool,
                           "Basic x", "Invalid Authorization header", "invalid_request")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--binary", required=True, help="worker binary (with the jarvis.test pack)")
    args = ap.parse_args()
    binary = os.path.abspath(args.binary)

    # ctest's TIMEOUT sends SIGTERM: unwind, so that every pool is stopped
    def on_term(sig, frame):
        raise SystemExit(f"signal {sig}")
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)

    t_start = time.monotonic()
    c = Checker()
    tmp = tempfile.mkdtemp(prefix="jarvis-auth-e2e-")
    pools, idps = [], []
    reserved = None

    def pool(name, env):
        p = Pool(tmp, binary, name, env)
        pools.append(p)
        return p

    def idp_on(port=0):
        i = IdP(port)
        idps.append(i)
        return i

    try:
        keydir = os.path.join(tmp, "keys")
        os.mkdir(keydir, 0o700)
        rsa, ec, rsa2 = (Key(keydir, "RSA", "rsa-1"), Key(keydir, "EC", "ec-1"),
                         Key(keydir, "RSA", "rsa-2"))
        idp = idp_on()
        idp.set_jwks(jwks_of(rsa, ec))
        jwks_file = os.path.join(tmp, "jwks.json")
        with open(jwks_file, "wb") as f:
            f.write(jwks_of(rsa))
        file_auth = {"ARP_AUTH_JWKS_URI": "file://" + jwks_file, "ARP_AUTH_ISSUER": ISS}

        # h. JWKS server down at start: the pool starts, answers 401, never runs open.
        # Started first: its recovery (the server comes up) is checked at the end.
        reserved, down_port = reserve_closed_port()
        down = pool("jwks-down", {"ARP_AUTH_PROFILE": "enterprise", "ARP_AUTH_ISSUER": ISS,
                                  "ARP_AUTH_AUDIENCE": AUD, "ARP_AUTH_JWKS_URI":
                                  f"http://127.0.0.1:{down_port}/jwks.json"})
        down.start()
        down_ok = c.started("jwks-down: pool starts anyway", down)
        if down_ok:
            c.status("jwks-down: GET /v1/health -> 200", down, "GET", "/v1/health", None, 200)
            c.health("jwks-down: /v1/health is a valid Health, down: auth_keys down, 'Unable "
                     "to fetch JWKS', keys 0", down, "down", "down", keys=(0, 0),
                     message_prefix="Unable to fetch JWKS", requests=2 * WORKERS)
            for i in range(2 * WORKERS):
                c.unauthorized_execute(f"jwks-down: valid token -> 401 Unable to fetch JWKS "
                                       f"(request {i + 1})", down, f"Bearer {mint(rsa)}",
                                       "Unable to fetch JWKS", "invalid_token")
            c.unauthorized_execute("jwks-down: no token -> 401 Missing", down, None,
                                   "Missing Authorization header", "invalid_request")

        # a. enterprise profile, JWKS over HTTP
        p = pool("enterprise", {"ARP_AUTH_PROFILE": "enterprise", "ARP_AUTH_ISSUER": ISS,
                                "ARP_AUTH_AUDIENCE": AUD,
                                "ARP_AUTH_JWKS_URI": idp.base + "/jwks.json",
                                "ARP_AUTH_ALGORITHMS": "RS256,ES256"})
        p.start()
        if c.started("enterprise: pool starts", p):
            scenario_enterprise(c, p, idp, (rsa, ec), rsa2)
        p.stop()

        # b. OIDC discovery URL, no JWKS URI
        idp.set_jwks(jwks_of(rsa, ec))
        d0 = idp.discovery_hits
        p = pool("discovery", {"ARP_AUTH_OIDC_DISCOVERY_URL":
                               idp.base + "/.well-known/openid-configuration",
                               "ARP_AUTH_ISSUER": ISS, "ARP_AUTH_AUDIENCE": AUD})
        p.start()
        if c.started("discovery: pool starts", p):
            c.health("discovery: /v1/health is a valid Health, ok: auth_keys ok with the "
                     "JWKS's keys", p, "ok", "ok", keys=(1, None), requests=WORKERS)
            c.execute_ok("discovery: valid token -> 200 (JWKS found via discovery)", p,
                         f"Bearer {mint(rsa, sub='grace')}", "grace")
            c.check("discovery: the discovery document was read",
                    [] if idp.discovery_hits > d0 else ["no request to the discovery URL"])
            c.unauthorized_execute("discovery: no token -> 401 Missing", p, None,
                                   "Missing Authorization header", "invalid_request")
        p.stop()

        # c. issuer only: discovery derived as <issuer>/.well-known/openid-configuration
        d0 = idp.discovery_hits
        p = pool("issuer-only", {"ARP_AUTH_ISSUER": idp.base})
        p.start()
        if c.started("issuer-only: pool starts", p):
            c.execute_ok("issuer-only: valid token with that iss -> 200", p,
                         f"Bearer {mint(rsa, sub='heidi', iss=idp.base)}", "heidi")
            c.check("issuer-only: discovery derived from the issuer was read",
                    [] if idp.discovery_hits > d0 else ["no request to the discovery URL"])
            c.unauthorized_execute("issuer-only: token from another issuer -> 401 Invalid "
                                   "token issuer", p, f"Bearer {mint(rsa)}",
                                   "Invalid token issuer", "invalid_token")
        p.stop()

        # d. file:// JWKS, no identity server involved
        h0 = idp.hits()
        p = pool("file-jwks", dict(file_auth, ARP_AUTH_AUDIENCE=AUD))
        p.start()
        if c.started("file-jwks: pool starts", p):
            c.health("file-jwks: /v1/health is a valid Health, ok: auth_keys ok with the "
                     "file's key", p, "ok", "ok", keys=(1, None))
            c.execute_ok("file-jwks: valid token -> 200", p,
                         f"Bearer {mint(rsa, sub='ivan')}", "ivan")
            c.unauthorized_execute("file-jwks: wrong aud -> 401 Invalid token audience", p,
                                   f"Bearer {mint(rsa, aud='x')}", "Invalid token audience",
                                   "invalid_token")
            c.check("file-jwks: the HTTP identity server was not asked",
                    [] if idp.hits() == h0 else ["JWKS fetched over HTTP"])
        p.stop()

        # e. dev-insecure
        p = pool("dev-insecure", {"ARP_AUTH_PROFILE": "dev-insecure"})
        p.start()
        if c.started("dev-insecure: pool starts", p):
            scenario_dev_insecure(c, p)
        p.stop()

        # f. optional mode
        p = pool("optional", dict(file_auth, ARP_AUTH_MODE="optional", ARP_AUTH_AUDIENCE=AUD))
        p.start()
        if c.started("optional: pool starts", p):
            scenario_optional(c, p, rsa)
        p.stop()

        # h. (end) the identity server comes up: a worker refetches (at most once per
        # 10 s since its last attempt, at start) and the token passes
        if down_ok:
            reserved.close()
            reserved = None
            late = idp_on(down_port)
            late.set_jwks(jwks_of(rsa))
            wait = down.ready_at + 11.0 - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            for i in range(2 * WORKERS):
                c.execute_ok(f"jwks-down: the JWKS server is back -> 200 (request {i + 1})",
                             down, f"Bearer {mint(rsa, sub='judy')}", "judy")
            c.check("jwks-down: the workers fetched the JWKS once it answered",
                    [] if 1 <= late.hits() <= WORKERS
                    else [f"{late.hits()} JWKS requests, expected 1..{WORKERS}"])
        down.stop()

        # g. start-up failures: run-local must fail with the SDK's reason in app.log.
        # It gives up as soon as a worker logs `cannot start` (before that, it waited
        # for multiwatch's 100 respawns, which under load, with workers taking over
        # multiwatch's 1 s to die, never ended); the three run together.
        failing = [
            (pool("bogus-profile", {"ARP_AUTH_PROFILE": "bogus"}),
             "Invalid ARP_AUTH_PROFILE: 'bogus'"),
            (pool("keycloak-no-aud", {"ARP_AUTH_PROFILE": "dev-secure-keycloak"}),
             "Dev-Secure-Keycloak profile requires ARP_AUTH_AUDIENCE or ARP_AUTH_SERVICE_ID"),
            (pool("enterprise-no-keys", {"ARP_AUTH_PROFILE": "enterprise"}),
             "JWT auth requires ARP_AUTH_JWKS_URI or ARP_AUTH_ISSUER/ARP_AUTH_OIDC_DISCOVERY_URL "
             "when ARP_AUTH_MODE is not 'disabled'"),
        ]
        # SDK edge cases of AuthSettings.from_env, run beside them:
        # - ARP_AUTH_EXEMPT_PATHS with no path in it restores the default exempt paths;
        # - ARP_AUTH_AUDIENCE blank (stripped to nothing) falls back to ARP_AUTH_SERVICE_ID.
        exempt = pool("exempt-empty", dict(file_auth, ARP_AUTH_AUDIENCE=AUD,
                                           ARP_AUTH_EXEMPT_PATHS=" , "))
        service = pool("service-id", dict(file_auth, ARP_AUTH_AUDIENCE="  ",
                                          ARP_AUTH_SERVICE_ID=AUD))
        for p, _ in failing:
            p.spawn()
        exempt.spawn()
        service.spawn()

        exempt.wait()
        if c.started("exempt-empty: ARP_AUTH_EXEMPT_PATHS=' , ' -> default exempt paths "
                     "(pool starts: /v1/health needs no token)", exempt):
            c.status("exempt-empty: GET /v1/version without a token -> 200", exempt, "GET",
                     "/v1/version", None, 200)
            c.unauthorized_execute("exempt-empty: execute without a token -> 401 Missing",
                                   exempt, None, "Missing Authorization header",
                                   "invalid_request")
        service.wait()
        if c.started("service-id: pool starts", service):
            c.execute_ok("service-id: token for ARP_AUTH_SERVICE_ID -> 200", service,
                         f"Bearer {mint(rsa, sub='ken')}", "ken")
            c.unauthorized_execute("service-id: blank ARP_AUTH_AUDIENCE falls back to "
                                   "ARP_AUTH_SERVICE_ID: other aud -> 401 Invalid token "
                                   "audience", service, f"Bearer {mint(rsa, aud='other')}",
                                   "Invalid token audience", "invalid_token")

        for fp, reason in failing:
            rc = fp.wait()
            secs = fp.ready_at - fp.started_at
            problems = []
            if rc == 0:
                problems.append("run-local start succeeded")
            if reason not in fp.app_log():
                problems.append(f"app.log lacks {reason!r}")
            c.check(f"start-up failure ({fp.name}): run-local fails (rc {rc}, {secs:.1f} s) "
                    f"with the SDK's reason in app.log", problems)
    finally:
        for p in pools:
            if p.proc is not None and p.proc.poll() is None:
                p.proc.kill()
                p.proc.wait()
            try:
                if hasattr(p, "out") and not p.out.closed:
                    p.stop()
            except Exception as e:  # keep stopping the others
                print(f"stopping {p.name}: {e}", flush=True)
        for i in idps:
            i.close()
        if reserved is not None:
            reserved.close()

    time.sleep(0.2)
    left = {p.name: p.leftovers() for p in pools}
    left = {k: v for k, v in left.items() if v}
    c.check("every pool stopped: no nginx, multiwatch or worker left",
            [f"{k}: pids {v}" for k, v in left.items()])
    # under scripts/test the workers carry ASan + UBSan: their reports land in app.log
    reports = []
    for p in pools:
        for line in p.app_log().splitlines():
            if ("Sanitizer" in line and "ERROR" in line) or "runtime error:" in line:
                reports.append(f"{p.name}: {line.strip()[:200]}")
                break
    c.check("no sanitizer report in any worker log", reports)
    shutil.rmtree(tmp, ignore_errors=True)
    print(f"run time {time.monotonic() - t_start:.1f} s")
    print(f"{c.passed} passed, {c.failed} failed")
    return 0 if c.failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
