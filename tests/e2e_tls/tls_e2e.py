#!/usr/bin/python3
"""HTTPS end to end, and every error nginx answers by itself.

1. nginx's own errors, over plain HTTP (a run-local pool): a 9 KiB path (414),
   a 9 KiB header (400, nginx's 494), a malformed request line, no Host, a
   bad %-escape (400), HTTP/2.0 on an HTTP/1 request line (505), TRACE (405),
   an unknown Transfer-Encoding (501), an internal location asked for (404),
   a body over nginx's limit (413), and no worker up (502): each status and
   JSON body exact, never HTML.
2. `scripts/run-local --tls`: its certificate (0600 key, for 127.0.0.1 and
   localhost); health, an execute and an in-flight cancel over HTTPS; HTTP/2
   chosen by ALPN and a real HTTP/2 execute (curl --http2); TLS 1.3 and TLS
   1.2 with an AEAD suite taken; TLS 1.1 and 1.0, and TLS 1.2 with CBC-SHA
   suites, refused by the server (the client offers them with OpenSSL's
   security level 0, so the alert it gets back is the server's); HSTS on
   every answer, errors included; plain HTTP on the TLS port (400 JSON); the
   same nginx errors as in 1. over TLS; tools/send-request --cacert, and its
   one line and exit 3 on an unverifiable or refused server; jarvis.web.fetch
   over https to a loopback server whose CA is JARVIS_ATOMIC_HTTP_CA_FILE
   (and refused for a server that CA did not sign).
3. The certificate is made once: a second start reuses it, a damaged one is
   made again.
4. The shipped TLS site (deploy/nginx/jarvis-atomic-executor-tls.conf) under
   an http block that allows TLS 1.0/1.1 as Debian's nginx.conf does, moved
   to loopback ports: its server-level profile wins (TLS 1.1 refused), HSTS,
   HTTP/2, and the port-80 server's redirect (301, Location, empty body) and
   errors (JSON).

  tests/e2e_tls/tls_e2e.py --binary PATH   (a build with the jarvis.test pack)

Prints PASS/FAIL per check and "<n> passed, <n> failed"; exit 1 on a failure.
Loopback only; every wait is bounded.
"""
import argparse
import grp
import hashlib
import http.client
import http.server
import json
import os
import pathlib
import pwd
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import warnings

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "pylib"))
from jarvis_pool import (REPO, RUNNER, Checks, LocalPool, free_port, process_alive,  # noqa: E402
                         raw_http, wait_for)
from jarvis_pool import execute_body as pool_execute_body  # noqa: E402

SEND = REPO / "tools/send-request"
NGINX_DIR = REPO / "deploy/nginx"
EXECUTE = "/v1/atomic-node-runs:execute"
HSTS = "max-age=63072000"
APP_MAX_BODY = 4096           # the pools' JARVIS_MAX_BODY_BYTES: nginx stops 2x that
TIMEOUT_S = 30                # any one exchange
PAD = 9 * 1024                # "9 KiB": over large_client_header_buffers' 8 KiB


def err(code, message, retryable=False):
    e = {"code": code, "message": message}
    if retryable:
        e["retryable"] = True
    return {"error": e}


BAD_REQUEST = err("invalid_request", "Bad Request")

# (name, raw request, status, body): what nginx answers by itself, on any
# listener that includes deploy/nginx/jarvis-atomic-executor-errors.conf
# (the 413 needs the API server's client_max_body_size, 2 x APP_MAX_BODY).
# nginx's $request_id, on every answer (deploy/nginx/*-locations.conf).
REQUEST_ID = re.compile(r"[0-9a-f]{32}")

NGINX_ERRORS = [
    ("a 9 KiB path: 414",
     b"GET /" + b"a" * PAD + b" HTTP/1.1\r\nHost: localhost\r\n\r\n",
     414, err("uri_too_long", "Request URI too long")),
    ("a 9 KiB header: 400 (nginx's 494)",
     b"GET /v1/health HTTP/1.1\r\nHost: localhost\r\nX-Pad: " + b"a" * PAD + b"\r\n\r\n",
     400, err("invalid_request", "Request header too large")),
    ("a malformed request line: 400", b"GARBAGE\r\n\r\n", 400, BAD_REQUEST),
    ("HTTP/1.1 without Host: 400", b"GET /v1/health HTTP/1.1\r\n\r\n", 400, BAD_REQUEST),
    ("a bad %-escape: 400",
     b"POST /v1/atomic-node-runs/%zz:cancel HTTP/1.1\r\nHost: localhost\r\n"
     b"Content-Length: 0\r\n\r\n", 400, BAD_REQUEST),
    ("HTTP/2.0 on an HTTP/1 request line: 505",
     b"GET /v1/health HTTP/2.0\r\nHost: localhost\r\n\r\n",
     505, err("http_version_not_supported", "HTTP Version Not Supported")),
    ("TRACE: 405", b"TRACE /v1/health HTTP/1.1\r\nHost: localhost\r\n\r\n",
     405, err("method_not_allowed", "Method Not Allowed")),
    ("an unknown Transfer-Encoding: 501",
     b"POST " + EXECUTE.encode() + b" HTTP/1.1\r\nHost: localhost\r\n"
     b"Transfer-Encoding: gzip\r\n\r\n", 501, err("not_implemented", "Not Implemented")),
    ("an internal error location asked for: 404",
     b"GET /__jarvis_errors/502 HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
     404, err("not_found", "Not Found")),
    ("a body over nginx's limit: 413",
     b"POST " + EXECUTE.encode() + b" HTTP/1.1\r\nHost: localhost\r\n"
     b"Content-Type: application/json\r\nContent-Length: 20000\r\n\r\n",
     413, err("payload_too_large", "Request body too large")),
]


# ---- exchanges ----

def client_ctx(cafile, alpn=None):
    ctx = ssl.create_default_context(cafile=cafile)
    if alpn:
        ctx.set_alpn_protocols(alpn)
    return ctx


def connect(port, cafile=None, host="127.0.0.1", server_hostname="localhost"):
    s = socket.create_connection((host, port), timeout=TIMEOUT_S)
    if cafile is None:
        return s
    return client_ctx(cafile).wrap_socket(s, server_hostname=server_hostname)


def raw_exchange(port, data, cafile=None):
    """Sends data as is; (status, headers dict lower-case, body bytes) of the
    answer, read up to its Content-Length or the connection's end."""
    with connect(port, cafile) as s:
        return raw_http(s, data)


def request(port, method, path, body=None, cafile=None, headers=None, timeout=TIMEOUT_S):
    """(status, headers, parsed JSON or None) over HTTP/1.1, TLS with cafile."""
    if cafile is None:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    else:
        c = http.client.HTTPSConnection("127.0.0.1", port, timeout=timeout,
                                        context=client_ctx(cafile))
    try:
        h = dict(headers or {})
        if body is not None:
            h.setdefault("Content-Type", "application/json")
        c.request(method, path, body=body, headers=h)
        r = c.getresponse()
        raw = r.read()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, \
            (json.loads(raw) if raw else None)
    finally:
        c.close()


def execute_body(node_run_id, node_type, inputs):
    return pool_execute_body(node_run_id, node_type, inputs, run_id="run-tls-e2e")


def nginx_error_checks(r, port, cafile, label, hsts, api=True):
    for name, data, status, body in NGINX_ERRORS:
        if status == 413 and not api:
            continue
        try:
            st, headers, raw = raw_exchange(port, data, cafile)
        except OSError as e:
            r.check(f"{label}: {name}", [repr(e)])
            continue
        problems = []
        if st != status:
            problems.append(f"status {st}")
        if headers.get("content-type") != "application/json":
            problems.append(f"content-type {headers.get('content-type')}")
        try:
            if json.loads(raw) != body:
                problems.append(f"body {raw[:200]!r}")
        except ValueError:
            problems.append(f"not JSON: {raw[:200]!r}")
        if hsts and headers.get("strict-transport-security") != HSTS:
            problems.append(f"HSTS {headers.get('strict-transport-security')}")
        if not REQUEST_ID.fullmatch(headers.get("x-request-id", "")):
            problems.append(f"X-Request-Id {headers.get('x-request-id')!r}")
        r.check(f"{label}: {name}", problems)


# ---- 1. plain HTTP ----

def check_plain(r, binary, env):
    lp = LocalPool(binary, workers=1, env=env, prefix="jarvis-tls-e2e-plain-")
    with lp as base:
        if base is None:
            r.check("plain: the pool starts", ["scripts/run-local start failed"])
            return
        nginx_error_checks(r, lp.port, None, "plain", hsts=False)
        st, headers, data = request(lp.port, "GET", "/v1/health")
        r.check("plain: no HSTS over plain HTTP",
                [] if st == 200 and "strict-transport-security" not in headers
                else [f"{st} {headers}"])
        # The pool stopped (by its pid: multiwatch's process group), nginx up.
        pool_pid = int(pathlib.Path(lp.state, "pool.pid").read_text())
        os.killpg(pool_pid, signal.SIGTERM)
        got = []
        wait_for(lambda: got.append(request(lp.port, "GET", "/v1/health")) or got[-1][0] == 502,
                 15)
        st, headers, data = got[-1]
        r.check("plain: no worker up: 502", [] if st == 502 and data == err(
            "bad_gateway", "No executor worker answered", True)
            and headers.get("content-type") == "application/json"
            and REQUEST_ID.fullmatch(headers.get("x-request-id", "")) else [f"{st} {data}"])


# ---- 2. run-local --tls ----

def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def make_test_ca(d):
    """A CA, a server certificate it signs for 127.0.0.1, and a self-signed
    one it does not: (ca.pem, (cert, key) signed, (cert, key) rogue)."""
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    openssl("req", "-x509", *ec, "-days", "2", "-subj", "/CN=jarvis-tls-e2e-ca",
            "-keyout", "ca.key", "-out", "ca.pem", cwd=d)
    openssl("req", *ec, "-subj", "/CN=127.0.0.1", "-keyout", "srv.key", "-out", "srv.csr", cwd=d)
    pathlib.Path(d, "srv.ext").write_text(
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n")
    openssl("x509", "-req", "-in", "srv.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-days", "2", "-extfile", "srv.ext", "-out", "srv.pem", cwd=d)
    openssl("req", "-x509", *ec, "-days", "2", "-subj", "/CN=127.0.0.1",
            "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", "rogue.key",
            "-out", "rogue.pem", cwd=d)
    return (os.path.join(d, "ca.pem"), (os.path.join(d, "srv.pem"), os.path.join(d, "srv.key")),
            (os.path.join(d, "rogue.pem"), os.path.join(d, "rogue.key")))


class HttpsServer:
    """A loopback HTTPS server answering every GET with a fixed text."""
    TEXT = b"hello over tls"

    def __init__(self, cert, key):
        text = self.TEXT

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(text)))
                self.end_headers()
                self.wfile.write(text)

            def log_message(self, *a):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.httpd.socket.settimeout(TIMEOUT_S)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def handshake(port, cafile, vmin, vmax, ciphers=None, alpn=None):
    """("ok", version, cipher, alpn) or ("refused", the SSL error's reason)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(cafile)
    with warnings.catch_warnings():  # TLS 1.0/1.1 are deprecated: on purpose here
        warnings.simplefilter("ignore")
        ctx.minimum_version, ctx.maximum_version = vmin, vmax
    if ciphers:
        ctx.set_ciphers(ciphers)
    if alpn:
        ctx.set_alpn_protocols(alpn)
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT_S) as raw:
        try:
            with ctx.wrap_socket(raw, server_hostname="localhost") as s:
                return ("ok", s.version(), s.cipher()[0], s.selected_alpn_protocol())
        except ssl.SSLError as e:
            return ("refused", e.reason)


def check_protocols(r, port, cafile, label):
    V = ssl.TLSVersion
    got = handshake(port, cafile, V.TLSv1_2, V.TLSv1_3, alpn=["h2", "http/1.1"])
    r.check(f"{label}: HTTP/2 chosen by ALPN", [] if got[:2] == ("ok", "TLSv1.3")
            and got[3] == "h2" else [str(got)])
    got = handshake(port, cafile, V.TLSv1_2, V.TLSv1_3, alpn=["http/1.1"])
    r.check(f"{label}: HTTP/1.1 for a client without h2",
            [] if got[0] == "ok" and got[3] == "http/1.1" else [str(got)])
    got = handshake(port, cafile, V.TLSv1_2, V.TLSv1_2, "ECDHE-ECDSA-AES128-GCM-SHA256")
    r.check(f"{label}: TLS 1.2 with an AEAD suite", [] if got == (
        "ok", "TLSv1.2", "ECDHE-ECDSA-AES128-GCM-SHA256", None) else [str(got)])
    # The client offers what the server must refuse, at security level 0 so
    # that OpenSSL does not refuse it first: the alert it gets is the server's.
    for v, name in ((V.TLSv1_1, "TLS 1.1"), (V.TLSv1, "TLS 1.0")):
        got = handshake(port, cafile, v, v, "DEFAULT:@SECLEVEL=0")
        r.check(f"{label}: {name} refused by the server (protocol_version alert)",
                [] if got == ("refused", "TLSV1_ALERT_PROTOCOL_VERSION") else [str(got)])
    got = handshake(port, cafile, V.TLSv1_2, V.TLSv1_2,
                    "ECDHE-ECDSA-AES128-SHA:ECDHE-ECDSA-AES256-SHA:ECDHE-ECDSA-AES128-SHA256:"
                    "ECDHE-ECDSA-AES256-SHA384:@SECLEVEL=0")
    r.check(f"{label}: TLS 1.2 with only CBC suites refused (handshake_failure alert)",
            [] if got == ("refused", "SSLV3_ALERT_HANDSHAKE_FAILURE") else [str(got)])


def curl_http2(url, cafile, body=None):
    """(HTTP version curl spoke, status, parsed body) with --http2."""
    cmd = ["curl", "-s", "--noproxy", "*", "--http2", "--cacert", cafile, "--max-time", "30",
           "-o", "-", "-w", "\n%{http_version} %{http_code}"]
    if body is not None:
        cmd += ["-H", "Content-Type: application/json", "--data-binary", body]
    out = subprocess.run(cmd + [url], capture_output=True, text=True, timeout=60).stdout
    text, _, tail = out.rpartition("\n")
    version, _, code = tail.partition(" ")
    try:
        return version, code, json.loads(text) if text else None
    except ValueError:
        return version, code, text


def check_cert_files(r, state):
    cert, key = os.path.join(state, "tls", "cert.pem"), os.path.join(state, "tls", "key.pem")
    problems = []
    if not os.path.isfile(key) or os.stat(key).st_mode & 0o777 != 0o600:
        problems.append("key.pem missing or not 0600")
    out = subprocess.run(["openssl", "x509", "-in", cert, "-noout", "-ext", "subjectAltName"],
                         capture_output=True, text=True, timeout=30).stdout
    for want in ("IP Address:127.0.0.1", "DNS:localhost"):
        if want not in out:
            problems.append(f"no {want} in {out!r}")
    r.check("tls: the self-signed certificate (0600 key, 127.0.0.1 and localhost)", problems)


def check_api(r, port, cafile):
    st, headers, data = request(port, "GET", "/v1/health", cafile=cafile)
    r.check("tls: health", [] if st == 200 and data.get("status") == "ok"
            and headers.get("strict-transport-security") == HSTS else [f"{st} {headers} {data}"])
    st, _, data = request(port, "POST", EXECUTE, execute_body(
        "nr-tls-echo", "jarvis.core.echo", {"echo": "over tls"}), cafile=cafile)
    r.check("tls: an execute", [] if st == 200 and data.get("state") == "succeeded"
            and data.get("outputs") == {"echo": "over tls"} else [f"{st} {data}"])

    box = {}

    def bg():
        box["res"] = request(port, "POST", EXECUTE, execute_body(
            "nr-tls-cancel", "jarvis.test.sleep", {"ms": 30000}), cafile=cafile, timeout=60)

    t = threading.Thread(target=bg)
    t.start()

    def running():
        _, _, h = request(port, "GET", "/v1/health", cafile=cafile)
        return h["checks"][0]["details"]["running"] == 1

    started = wait_for(running, 15)
    st, _, data = request(port, "POST", "/v1/atomic-node-runs/nr-tls-cancel:cancel",
                          cafile=cafile)
    t.join(60)
    res = box.get("res", (0, {}, {}))
    r.check("tls: a cancel of a running execute", [] if started and st == 204 and data is None
            and res[0] == 200 and res[2].get("state") == "canceled"
            and res[2].get("error") == err("canceled", "Atomic execution canceled")["error"]
            else [f"started {started}", f"cancel {st} {data}", f"execute {res[0]} {res[2]}"])

    got = curl_http2(f"https://127.0.0.1:{port}/v1/health", cafile)
    r.check("tls: health over HTTP/2 (curl --http2)",
            [] if got[:2] == ("2", "200") and got[2].get("status") == "ok" else [str(got)])
    got = curl_http2(f"https://127.0.0.1:{port}{EXECUTE}", cafile, execute_body(
        "nr-tls-h2", "jarvis.core.echo", {"echo": "h2"}))
    r.check("tls: an execute over HTTP/2", [] if got[:2] == ("2", "200")
            and got[2].get("outputs") == {"echo": "h2"} else [str(got)])

    st, headers, body = raw_exchange(port, b"GET /v1/health HTTP/1.1\r\nHost: localhost\r\n\r\n")
    want = err("invalid_request", "Plain HTTP request sent to the HTTPS port")
    r.check("tls: plain HTTP on the TLS port: 400 JSON",
            [] if st == 400 and json.loads(body) == want else [f"{st} {body!r}"])


def send_request(*args):
    env = {k: v for k, v in os.environ.items() if k != "ARP_TOKEN"}
    return subprocess.run([str(SEND), *args], capture_output=True, text=True, env=env,
                          timeout=60)


def check_send_request(r, port, cafile):
    url = f"https://127.0.0.1:{port}"
    out = send_request("--url", url, "--cacert", cafile,
                       "--request", str(REPO / "examples/requests/jarvis.core.echo.json"))
    try:
        ok = out.returncode == 0 and json.loads(out.stdout)["state"] == "succeeded"
    except ValueError:
        ok = False
    r.check("send-request --cacert: an execute over HTTPS", [] if ok else [
        f"exit {out.returncode}: {out.stdout} {out.stderr}"])
    out = send_request("--url", url, "--cacert", cafile, "--cancel", "nr-tls-send")
    r.check("send-request --cacert: a cancel over HTTPS",
            [] if out.returncode == 0 and out.stdout.strip() == "HTTP 204" else [
                f"exit {out.returncode}: {out.stdout} {out.stderr}"])

    def one_line(out, *want):
        lines = out.stderr.splitlines()
        problems = [] if out.returncode == 3 else [f"exit {out.returncode}"]
        if len(lines) != 1 or "Traceback" in out.stderr or out.stdout:
            problems.append(f"output {out.stdout!r} {out.stderr!r}")
        problems += [f"no {w!r} in {out.stderr!r}" for w in want if w not in out.stderr]
        return problems

    out = send_request("--url", url, "--cancel", "x")  # the system's CAs: not this one
    r.check("send-request: an unverifiable certificate: one line, exit 3",
            one_line(out, "cannot reach", "CERTIFICATE_VERIFY_FAILED"))
    out = send_request("--url", f"http://127.0.0.1:{free_port()}", "--cancel", "x")
    r.check("send-request: a refused connection: one line, exit 3",
            one_line(out, "cannot reach", "Connection refused"))


def check_web_fetch(r, port, cafile, signed, rogue, log):
    for name, srv, want in (("a server its CA signed", signed, "succeeded"),
                            ("refused: a server another CA signed", rogue, "failed")):
        st, _, data = request(port, "POST", EXECUTE, execute_body(
            f"nr-tls-fetch-{srv.port}", "jarvis.web.fetch",
            {"url": f"https://127.0.0.1:{srv.port}/x"}), cafile=cafile)
        problems = [] if st == 200 and data.get("state") == want else [f"{st} {data}"]
        if want == "succeeded" and data.get("outputs", {}).get("content_bytes") != len(
                HttpsServer.TEXT):
            problems.append(f"outputs {data.get('outputs')}")
        if want == "failed":
            if data.get("error", {}).get("code") != "handler_error":
                problems.append(f"error {data.get('error')}")
            if not wait_for(lambda: "SSL certificate problem" in pathlib.Path(log).read_text(), 10):
                problems.append("no 'SSL certificate problem' in app.log")
        r.check(f"web.fetch over https with JARVIS_ATOMIC_HTTP_CA_FILE: {name}", problems)


def check_tls(r, binary, env, work):
    ca, signed_pair, rogue_pair = make_test_ca(work)
    signed, rogue = HttpsServer(*signed_pair), HttpsServer(*rogue_pair)
    try:
        env = dict(env, JARVIS_ATOMIC_HTTP_CA_FILE=ca,
                   JARVIS_ATOMIC_HTTP_ALLOWED_CIDRS=f"127.0.0.1/32:{signed.port},"
                                                   f"127.0.0.1/32:{rogue.port}")
        lp = LocalPool(binary, workers=2, env=env, prefix="jarvis-tls-e2e-", args=["--tls"])
        with lp as base:
            if base is None:
                r.check("tls: the pool starts", ["scripts/run-local --tls start failed"])
                return
            check_cert_files(r, lp.state)
            check_api(r, lp.port, lp.cacert)
            check_protocols(r, lp.port, lp.cacert, "tls")
            nginx_error_checks(r, lp.port, lp.cacert, "tls", hsts=True)
            check_send_request(r, lp.port, lp.cacert)
            check_web_fetch(r, lp.port, lp.cacert, signed, rogue,
                            os.path.join(lp.state, "logs", "app.log"))
            check_shipped_site(r, lp, work)
    finally:
        signed.close()
        rogue.close()


# ---- 3. the certificate is made once ----

def run_local(*args, env):
    return subprocess.run([str(RUNNER), *args], capture_output=True, text=True, env=env,
                          timeout=180)


def fingerprint(path):
    try:
        return hashlib.sha256(pathlib.Path(path).read_bytes()).hexdigest()
    except OSError:
        return None


def check_cert_reuse(r, binary, env, work):
    state = os.path.join(work, "reuse-state")
    cert, key = os.path.join(state, "tls", "cert.pem"), os.path.join(state, "tls", "key.pem")
    prints = []
    try:
        for damage in (False, False, True):
            if damage:
                pathlib.Path(key).write_text("not a key\n")
            out = run_local("start", "--daemon", "--no-build", "--no-env-file", "--tls",
                            "--binary", binary, "--workers", "1", "--port", str(free_port()),
                            "--state-dir", state, env=env)
            prints.append((out.returncode, fingerprint(cert), fingerprint(key),
                           "made a self-signed certificate" in out.stdout))
            run_local("stop", "--state-dir", state, env=env)
    finally:
        run_local("stop", "--state-dir", state, env=env)
    (rc1, c1, k1, made1), (rc2, c2, k2, made2), (rc3, c3, k3, made3) = prints
    r.check("tls: the certificate is made once and reused", [] if (rc1, rc2) == (0, 0)
            and made1 and not made2 and (c1, k1) == (c2, k2) else [str(prints[:2])])
    r.check("tls: a damaged key is made again", [] if rc3 == 0 and made3 and c3 != c1
            and os.stat(key).st_mode & 0o777 == 0o600 else [str(prints[2])])


# ---- 4. the shipped TLS site ----

def render_site(text, subs):
    """text with each (old, new) replaced exactly once; None if one is missing."""
    for old, new in subs:
        if text.count(old) != 1:
            return None, old
        text = text.replace(old, new)
    return text, None


def check_shipped_site(r, lp, work):
    """The production TLS site, moved to loopback ports, in front of lp's pool."""
    d = os.path.join(work, "site")
    os.makedirs(os.path.join(d, "tmp"), exist_ok=True)
    https_port, http_port = free_port(), free_port()
    site, missing = render_site((NGINX_DIR / "jarvis-atomic-executor-tls.conf").read_text(), [
        ("listen 80;", f"listen 127.0.0.1:{http_port};"),
        ("listen [::]:80;", ""),
        ("listen 443 ssl http2;", f"listen 127.0.0.1:{https_port} ssl http2;"),
        ("listen [::]:443 ssl http2;", ""),
        ("server unix:/run/jarvis-atomic-executor/fcgi.sock;",
         f"server unix:{lp.state}/fcgi.sock;"),
        ("/etc/ssl/certs/jarvis-atomic-executor.pem", lp.cacert),
        ("/etc/ssl/private/jarvis-atomic-executor.key", os.path.join(lp.state, "tls", "key.pem")),
        ("/var/log/nginx/jarvis-atomic-executor.access.log", f"{d}/access.log"),
        ("/var/log/nginx/jarvis-atomic-executor.error.log", f"{d}/error.log"),
    ])
    if site is None:
        r.check("site: the shipped TLS site renders for the test", [f"no {missing!r}"])
        return
    site = site.replace("include snippets/", f"include {NGINX_DIR}/")
    user = f"user {pwd_name()};" if os.getuid() == 0 else ""
    # As Debian's /etc/nginx/nginx.conf: TLS 1.0 and 1.1 allowed at http level.
    conf = f"""{user}
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 64; }}
http {{
    ssl_protocols TLSv1 TLSv1.1 TLSv1.2 TLSv1.3;
    ssl_prefer_server_ciphers on;
    access_log off;
    client_body_temp_path {d}/tmp;
    fastcgi_temp_path {d}/tmp;
{site}
}}
"""
    pathlib.Path(d, "nginx.conf").write_text(conf)
    shutil.copy("/etc/nginx/fastcgi_params", d)
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    base = [nginx, "-p", d, "-c", f"{d}/nginx.conf", "-e", f"{d}/error.log"]
    t = subprocess.run(base + ["-t", "-q"], capture_output=True, text=True, timeout=60)
    r.check("site: nginx -t accepts the shipped TLS site", [] if t.returncode == 0 else [t.stderr])
    if t.returncode != 0 or subprocess.run(base, timeout=60).returncode != 0:
        return
    try:
        st, headers, data = request(https_port, "GET", "/v1/health", cafile=lp.cacert)
        r.check("site: health over HTTPS with HSTS", [] if st == 200 and data.get("status") == "ok"
                and headers.get("strict-transport-security") == HSTS else [f"{st} {headers}"])
        check_protocols(r, https_port, lp.cacert, "site")
        st, headers, body = raw_exchange(
            http_port,
            b"GET /v1/health?x=1 HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        r.check("site: port 80 redirects to HTTPS with an empty body", [] if st == 301
                and headers.get("location") == "https://localhost/v1/health?x=1"
                and body == b"" and REQUEST_ID.fullmatch(headers.get("x-request-id", ""))
                else [f"{st} {headers} {body!r}"])
        nginx_error_checks(r, http_port, None, "site port 80", hsts=False, api=False)
    finally:
        # nginx has written its pid before its start command returned
        pid = int(pathlib.Path(f"{d}/nginx.pid").read_text())
        os.kill(pid, signal.SIGTERM)
        wait_for(lambda: not process_alive(pid), 15)


def pwd_name():
    return f"{pwd.getpwuid(os.getuid()).pw_name} {grp.getgrgid(os.getgid()).gr_name}"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--binary", required=True)
    args = ap.parse_args()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("ARP_AUTH_") and not k.startswith("JARVIS_")}
    env["JARVIS_MAX_BODY_BYTES"] = str(APP_MAX_BODY)
    env["no_proxy"] = "127.0.0.1,localhost"
    r = Checks()
    r.check("the CA bundle libcurl and urllib use exists (scripts/install-deps: ca-certificates)",
            [] if os.path.isfile("/etc/ssl/certs/ca-certificates.crt") else ["missing"])
    work = tempfile.mkdtemp(prefix="jarvis-tls-e2e-work-")
    try:
        check_plain(r, args.binary, env)
        check_tls(r, args.binary, env, work)
        check_cert_reuse(r, args.binary, env, work)
    except Exception as e:  # a crash of the test itself is a failure, not a hang
        r.check("tls e2e ran to the end", [repr(e)])
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return r.close()


if __name__ == "__main__":
    sys.exit(main())
