"""Shared by the Python end-to-end tests: a local pool started with
scripts/run-local on a free loopback port, one worker under plain spawn-fcgi
behind a minimal nginx, and PASS/FAIL bookkeeping that ends with the closing
line "<n> passed, <n> failed"."""
import grp
import http.server
import json
import os
import pathlib
import pwd
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import threading
import time

REPO = pathlib.Path(__file__).resolve().parents[2]
RUNNER = REPO / "scripts/run-local"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def children(pid):
    """The live (not zombie) children of pid, sorted: for a pool's pool.pid,
    its workers; for nginx's master, its workers."""
    kids = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            stat = pathlib.Path(f"/proc/{d}/stat").read_text()
        except OSError:
            continue
        # pid (comm) state ppid ...: comm may hold spaces, so split after ')'
        fields = stat.rsplit(")", 1)[1].split()
        if fields[0] != "Z" and int(fields[1]) == pid:
            kids.append(int(d))
    return sorted(kids)


def pool_workers(state):
    """The live (not zombie) children of a run-local pool's multiwatch (the
    pid in <state>/pool.pid): its workers, sorted; [] when it is gone."""
    try:
        pool_pid = int(pathlib.Path(state, "pool.pid").read_text().strip())
    except (OSError, ValueError):
        return []
    return children(pool_pid)


def private_kb(pid):
    """Private_Clean + Private_Dirty of pid from /proc/<pid>/smaps_rollup,
    in kB: the memory that is the process's alone; None when it is gone."""
    try:
        total = 0
        for line in pathlib.Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith(("Private_Clean:", "Private_Dirty:")):
                total += int(line.split()[1])
        return total
    except (OSError, ValueError):
        return None


class LocalPool:
    """`with LocalPool(binary, workers=2) as base_url:` starts nginx and a
    worker pool (auth from run-local's default unless env says otherwise)
    and always stops both; the URL is None when the start failed. `args`
    are more run-local options: with "--tls" the URL is https (the
    certificate is `cacert`). A developer's .env.local / .env is not read."""

    def __init__(self, binary, workers=2, env=None, prefix="jarvis-e2e-", args=()):
        self.binary, self.workers, self.prefix = binary, workers, prefix
        self.env = env if env is not None else {
            k: v for k, v in os.environ.items() if not k.startswith("ARP_AUTH_")}
        self.args = list(args)
        self.port = free_port()
        self.state = None

    @property
    def cacert(self):
        """run-local --tls's self-signed certificate."""
        return os.path.join(self.state, "tls", "cert.pem")

    def __enter__(self):
        self.state = tempfile.mkdtemp(prefix=self.prefix)
        start = [str(RUNNER), "start", "--daemon", "--no-build", "--no-env-file",
                 "--binary", str(self.binary), "--workers", str(self.workers),
                 "--port", str(self.port), "--state-dir", self.state] + self.args
        ok = subprocess.run(start, stdout=subprocess.DEVNULL, env=self.env).returncode == 0
        scheme = "https" if "--tls" in self.args else "http"
        return f"{scheme}://127.0.0.1:{self.port}" if ok else None

    def __exit__(self, *exc):
        subprocess.run([str(RUNNER), "stop", "--state-dir", self.state],
                       stdout=subprocess.DEVNULL)
        shutil.rmtree(self.state, ignore_errors=True)
        return False


PLAIN_NGINX_CONF = """{user}
worker_processes 1;
pid {state}/nginx.pid;
error_log {state}/nginx-error.log warn;
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_body_temp_path {state}/tmp;
    fastcgi_temp_path {state}/tmp;
    {extra}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            include /etc/nginx/fastcgi_params;
            fastcgi_pass {upstream};
        }}
    }}
}}
"""


def process_alive(pid):
    """1 if process pid runs (a zombie does not)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def wait_for(pred, seconds, step=0.02):
    """Polls pred until it holds or seconds pass; its last value."""
    until = time.monotonic() + seconds
    while time.monotonic() < until:
        if pred():
            return True
        time.sleep(step)
    return pred()


class PlainWorker:
    """The minimal deployment: ONE worker process under plain spawn-fcgi -n
    (no multiwatch, no run-local) on a unix socket, behind an nginx on a
    free loopback port whose only FastCGI settings are Debian's stock
    fastcgi_params and a fastcgi_pass (plus `nginx_extra` at http level).

    `with PlainWorker(binary, env, wrapper=[...]) as w:` then w.problem is
    None when both started, else why not. tcp: a loopback address ("127.0.0.1",
    "::1") to listen on over TCP, on a free port (w.fcgi_port), instead. spawn-fcgi execs `wrapper +
    [binary]` in its own place, so w.proc is the worker (or its wrapper,
    e.g. valgrind) and w.stop() gets its exit status. The environment is
    this process's without ARP_AUTH_* and JARVIS_*, plus JARVIS_RUN_TABLE in
    the state folder w.state, plus env. Leaving kills what still runs,
    prints the tail of app.log when print_log is set, and removes w.state."""

    def __init__(self, binary, env, wrapper=(), nginx_extra="", start_secs=5, tcp=None):
        self.binary, self.wrapper, self.nginx_extra = binary, list(wrapper), nginx_extra
        self.extra_env, self.start_secs, self.tcp = env, start_secs, tcp
        self.port = free_port()
        self.fcgi_port = free_port() if tcp else None
        self.state = self.proc = self.problem = self.log = None
        self.nginx_started = False
        self.print_log = False

    def __enter__(self):
        self.state = tempfile.mkdtemp(prefix="jarvis-plain-")
        os.makedirs(f"{self.state}/tmp")
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("ARP_AUTH_") and not k.startswith("JARVIS_")}
        env["JARVIS_RUN_TABLE"] = f"{self.state}/runtable"
        env.update(self.extra_env)
        # As root, nginx would run its workers as nobody, who cannot reach the
        # socket in this private folder: run them as the invoking user.
        user = ""
        if os.geteuid() == 0:
            user = (f"user {pwd.getpwuid(os.getuid()).pw_name} "
                    f"{grp.getgrgid(os.getgid()).gr_name};")
        if self.tcp:
            host = f"[{self.tcp}]" if ":" in self.tcp else self.tcp
            upstream = f"{host}:{self.fcgi_port}"
            listen = ["-a", self.tcp, "-p", str(self.fcgi_port)]
        else:
            upstream = f"unix:{self.state}/fcgi.sock"
            listen = ["-s", f"{self.state}/fcgi.sock", "-M", "0600"]
        with open(f"{self.state}/nginx.conf", "w") as f:
            f.write(PLAIN_NGINX_CONF.format(user=user, state=self.state, port=self.port,
                                            extra=self.nginx_extra, upstream=upstream))
        self.log = open(f"{self.state}/app.log", "w")
        self.proc = subprocess.Popen(
            ["spawn-fcgi", "-n", *listen, "--", *self.wrapper, self.binary], env=env,
            stdout=self.log, stderr=self.log, stdin=subprocess.DEVNULL)
        if not wait_for(lambda: self.listening() or self.proc.poll() is not None,
                        self.start_secs) or self.proc.poll() is not None:
            self.problem = "spawn-fcgi did not bind the socket"
            return self
        nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        self.nginx_started = subprocess.run(
            [nginx, "-p", self.state, "-c", f"{self.state}/nginx.conf",
             "-e", f"{self.state}/nginx-error.log"]).returncode == 0
        # The daemon writes its pid file after the command returns: leaving
        # before the pid is in it would leave nginx running (seen after
        # short scenarios).
        if not self.nginx_started or not wait_for(lambda: self.nginx_pid(), self.start_secs):
            self.problem = "nginx did not start"
        return self

    def nginx_pid(self):
        """nginx's master pid from its pid file, or None (not written yet)."""
        try:
            with open(f"{self.state}/nginx.pid") as f:
                return int(f.read().strip())
        except (OSError, ValueError):
            return None

    def listening(self):
        """1 if the FastCGI socket is there (spawn-fcgi binds it before it
        execs the worker)."""
        if not self.tcp:
            return os.path.exists(f"{self.state}/fcgi.sock")
        # A socket in state LISTEN (0A) on the port: neither a connect nor
        # a bind, which the worker or spawn-fcgi would see.
        table = "/proc/net/tcp6" if ":" in self.tcp else "/proc/net/tcp"
        with open(table) as f:
            rows = [line.split() for line in f.readlines()[1:]]
        return any(r[1].endswith(f":{self.fcgi_port:04X}") and r[3] == "0A" for r in rows)

    def stop(self, secs):
        """SIGTERM to the worker; its exit status, or None if it did not
        exit within secs."""
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(secs)
        except subprocess.TimeoutExpired:
            return None

    def __exit__(self, *exc):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        if self.nginx_started:
            wait_for(lambda: self.nginx_pid(), self.start_secs)
            pid = self.nginx_pid()
            # A SIGTERM that reaches the master before its signal loop is
            # handled and then forgotten (the master waits for the next
            # signal): sent again, then SIGKILL, until it is gone.
            for sig in (signal.SIGTERM, signal.SIGTERM, signal.SIGKILL):
                if not pid or not process_alive(pid):
                    break
                try:
                    os.kill(pid, sig)
                except OSError:
                    break
                wait_for(lambda: not process_alive(pid), 1.0)
        if self.log is not None:
            self.log.close()
            if self.print_log:
                with open(f"{self.state}/app.log", errors="replace") as f:
                    print(f.read()[-3000:])
        shutil.rmtree(self.state, ignore_errors=True)
        return False


class LoopbackHTTPServer:
    """`with LoopbackHTTPServer(Handler) as srv:` serves the
    http.server.BaseHTTPRequestHandler subclass Handler on 127.0.0.1, on a
    port the kernel picks (srv.port), from a thread of its own; leaving
    stops it and closes its socket. For the servers a test's
    jarvis.web.fetch calls (allow them with
    JARVIS_ATOMIC_HTTP_ALLOWED_CIDRS=127.0.0.1/32:*)."""

    def __init__(self, handler):
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever,
                                       kwargs={"poll_interval": 0.1}, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)
        return False

    def url(self, path):
        return f"http://127.0.0.1:{self.port}{path}"


def execute_body(node_run_id, node_type_id, inputs, run_id="r", version="1"):
    """An execute request's JSON text."""
    return json.dumps({"node_run_id": node_run_id, "run_id": run_id,
                       "node_type_ref": {"node_type_id": node_type_id, "version": version},
                       "inputs": inputs})


def header_lines(lines):
    """Header lines ("Name: value") as a dict, names lower-case."""
    headers = {}
    for line in lines:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    return headers


def raw_http(sock, data):
    """Sends data as is on the connected socket sock (plain or TLS) and reads
    the answer: (status, headers dict lower-case, body bytes), the body up to
    its Content-Length or the connection's end; (0, {}, bytes read) when
    the answer is not HTTP/1.1."""
    sock.sendall(data)
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            break
        buf += chunk
    head, _, body = buf.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    if not lines[0].startswith("HTTP/1.1 "):
        return 0, {}, buf
    headers = header_lines(lines[1:])
    want = int(headers.get("content-length", "-1"))
    while want < 0 or len(body) < want:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return int(lines[0].split()[1]), headers, body


FCGI_VERSION, FCGI_BEGIN, FCGI_END, FCGI_PARAMS, FCGI_STDIN, FCGI_STDOUT = 1, 1, 3, 4, 5, 6
FCGI_RESPONDER, FCGI_KEEP_CONN = 1, 1
FCGI_MAX_RECORD = 65535


def _fcgi_record(kind, content, request_id=1):
    return struct.pack(">BBHHBx", FCGI_VERSION, kind, request_id, len(content), 0) + content


def _fcgi_pair(name, value):
    def length(n):
        return struct.pack(">B", n) if n < 128 else struct.pack(">I", n | 0x80000000)
    return length(len(name)) + length(len(value)) + name + value


def fcgi_encode(method, uri, body=b"", keep=False, params=None):
    """The records of one request as nginx would send them (keep: with
    FCGI_KEEP_CONN, the connection stays open for another); params: more
    FastCGI params."""
    all_params = {"REQUEST_METHOD": method, "REQUEST_URI": uri, "DOCUMENT_URI": uri,
                  "SERVER_PROTOCOL": "HTTP/1.1", "REMOTE_ADDR": "127.0.0.1",
                  "CONTENT_LENGTH": str(len(body))}
    if body:
        all_params["CONTENT_TYPE"] = "application/json"
    all_params.update(params or {})
    pairs = b"".join(_fcgi_pair(k.encode(), v.encode()) for k, v in all_params.items())
    out = _fcgi_record(FCGI_BEGIN, struct.pack(">HB5x", FCGI_RESPONDER,
                                               FCGI_KEEP_CONN if keep else 0))
    out += _fcgi_record(FCGI_PARAMS, pairs) + _fcgi_record(FCGI_PARAMS, b"")
    for i in range(0, len(body), FCGI_MAX_RECORD):
        out += _fcgi_record(FCGI_STDIN, body[i:i + FCGI_MAX_RECORD])
    return out + _fcgi_record(FCGI_STDIN, b"")


def fcgi_read(sock):
    """The answer to one request on the FastCGI socket sock, read up to
    FCGI_END_REQUEST: (status, headers dict lower-case, body bytes); (0, {},
    b"") when the exchange failed."""
    stdout, ended, buf = b"", False, b""
    try:
        while not ended:
            chunk = sock.recv(65536)
            if not chunk:
                break
            buf += chunk
            while len(buf) >= 8:
                _, kind, _, clen, plen = struct.unpack(">BBHHBx", buf[:8])
                if len(buf) < 8 + clen + plen:
                    break
                if kind == FCGI_STDOUT:
                    stdout += buf[8:8 + clen]
                elif kind == FCGI_END:
                    ended = True
                buf = buf[8 + clen + plen:]
    except OSError:
        return 0, {}, b""
    if not ended:
        return 0, {}, b""
    head, _, rest = stdout.partition(b"\r\n\r\n")
    headers = header_lines(head.decode("latin-1").split("\r\n"))
    try:
        status = int(headers.get("status", "200").split()[0])
    except ValueError:
        status = 0
    return status, headers, rest


def fcgi_exchange(sock, method, uri, body=b"", keep=False, params=None):
    """One request on the connected FastCGI socket sock (fcgi_encode's
    arguments) and its answer (fcgi_read's)."""
    try:
        sock.sendall(fcgi_encode(method, uri, body, keep, params))
    except OSError:
        return 0, {}, b""
    return fcgi_read(sock)


def fcgi_connect(addr, timeout=30, source=None):
    """A new connection to the FastCGI socket at addr: a Unix socket's path,
    or (host, port) over TCP, from the loopback address source if given
    (the caller closes it)."""
    if isinstance(addr, tuple):
        family = socket.AF_INET6 if ":" in addr[0] else socket.AF_INET
    else:
        family, addr = socket.AF_UNIX, str(addr)
    s = socket.socket(family, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        if source is not None:
            s.bind((source, 0))
        s.connect(addr)
    except OSError:
        s.close()
        raise
    return s


def peer_closed(sock, timeout):
    """Seconds until the peer closes sock (EOF or a reset), or None if it
    stays open timeout seconds (0: a look, no wait) or sends something."""
    t0 = time.monotonic()
    if timeout > 0:
        sock.settimeout(timeout)
    else:
        sock.setblocking(False)
    try:
        return time.monotonic() - t0 if sock.recv(1) == b"" else None
    except (ConnectionResetError, BrokenPipeError):
        return time.monotonic() - t0
    except OSError:  # the timeout, or nothing to read yet
        return None


def fcgi_request(addr, method, uri, body=b"", timeout=30, source=None):
    """One request straight to the FastCGI socket (fcgi_connect's addr and
    source) on a new connection that closes after it, bypassing nginx (and
    its kept upstream connections)."""
    try:
        with fcgi_connect(addr, timeout, source) as s:
            return fcgi_exchange(s, method, uri, body)
    except OSError:
        return 0, {}, b""


def send_body(handler, status, body, content_type="application/json"):
    """Answers a request of an http.server handler: status, Content-Type,
    Content-Length and body (bytes)."""
    handler.send_response(status)
    handler.send_header("Content-Type", content_type)
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


class Checks:
    def __init__(self):
        self.passed, self.failed = 0, 0

    def check(self, name, problems):
        if problems:
            self.failed += 1
            print(f"FAIL {name}: " + "; ".join(problems))
        else:
            self.passed += 1
            print(f"PASS {name}")

    def run_scenarios(self, scenarios):
        """Runs each (name, fn) in turn under a "== name (elapsed)" line; an
        exception in one is a failure of it, and the next still runs."""
        t0 = time.monotonic()
        for name, fn in scenarios:
            print(f"== {name} ({time.monotonic() - t0:.1f} s)")
            try:
                fn()
            except Exception as e:  # a crash of the test itself is a failure, not a hang
                self.check(f"{name} ran to the end", [repr(e)])
        print(f"== done ({time.monotonic() - t0:.1f} s)")

    def close(self):
        """Prints the closing line; returns the process exit status."""
        print(f"{self.passed} passed, {self.failed} failed")
        return 0 if self.failed == 0 else 1
