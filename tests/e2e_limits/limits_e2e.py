#!/usr/bin/python3
"""End to end, through nginx and a one-worker pool: one request cannot blow up
the worker's memory. A 1 MiB JSON amplification body ([{},{},...]) is refused
once its tree would cost more than 48 times the body limit, and a gzip bomb fetched by jarvis.web.fetch is
stopped by max_bytes (decoded bytes) or, when max_bytes is large, by the
decompression-ratio cap; each time the worker's peak RSS (VmHWM in
/proc/<pid>/status) is checked to grow by less than a bound.

Only loopback traffic: the pool listens on 127.0.0.1 and the bomb is served
by an http.server on 127.0.0.1 in this process.

Closing line: "<n> passed, <n> failed".
"""
import argparse
import gzip
import http.server
import json
import os
import pathlib
import sys
import time
import urllib.error
import urllib.request

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "pylib"))
from jarvis_pool import Checks, LocalPool, LoopbackHTTPServer, pool_workers  # noqa: E402

MIB = 1024 * 1024
MAX_BODY = MIB                     # JARVIS_MAX_BODY_BYTES of the pool
FETCH_CEILING = 256 * MIB          # JARVIS_ATOMIC_HTTP_MAX_BYTES: the hard ceiling
# Bounds on the growth of the worker's peak RSS. They hold under ASan too
# (its allocator and quarantine inflate RSS); the unbounded behaviour was
# +270 MB for the JSON body, and a bomb held whole costs what it decodes to.
JSON_KEEP_KB = 16 * 1024
JSON_BOUND_KB = 120 * 1024
BOMB_BOUND_KB = 64 * 1024
BOMB_MIB = 10                      # /bomb: 10 MiB of zeros, about 10 KB gzipped
BIG_BOMB_MIB = 128                 # /bigbomb: 128 MiB of zeros, about 128 KB gzipped


# ---- the worker's memory ----

def worker_pids(state, want, wait_s=10.0):
    """The children of the pool's multiwatch (pool.pid); waits (bounded) until
    `want` of them run."""
    deadline = time.monotonic() + wait_s
    kids = pool_workers(state)
    while len(kids) < want and time.monotonic() < deadline:
        time.sleep(0.05)
        kids = pool_workers(state)
    return kids


def mem_kb(pid):
    """{"VmHWM": kB, "VmRSS": kB} of pid (empty when it is gone)."""
    out = {}
    try:
        for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, val = line.partition(":")
            if key in ("VmHWM", "VmRSS"):
                out[key] = int(val.split()[0])
    except OSError:
        pass
    return out


def reset_peak(pid):
    """Sets VmHWM back to the current RSS (clear_refs 5), so each case's peak
    is its own; 1 when that worked. Else the growth is measured against the
    peak so far, which can only hide growth below it, never add any."""
    try:
        pathlib.Path(f"/proc/{pid}/clear_refs").write_text("5")
        return 1
    except OSError:
        return 0


class Measure:
    """`with Measure(pid) as m:` ... then m.grew_kb, m.text()."""

    def __init__(self, pid):
        self.pid = pid

    def __enter__(self):
        self.reset = reset_peak(self.pid)
        self.before = mem_kb(self.pid)
        return self

    def __exit__(self, *exc):
        self.after = mem_kb(self.pid)
        self.grew_kb = self.after.get("VmHWM", 0) - self.before.get("VmHWM", 0)
        return False

    def text(self):
        return (f"worker {self.pid}: VmHWM {self.before.get('VmHWM')} kB -> "
                f"{self.after.get('VmHWM')} kB (+{self.grew_kb / 1024:.1f} MB; RSS at start "
                f"{self.before.get('VmRSS')} kB; peak {'reset' if self.reset else 'not reset'})")

    def problems(self, bound_kb, pids_now):
        p = []
        if not self.after:
            p.append(f"worker {self.pid} is gone")
        elif self.grew_kb >= bound_kb:
            p.append(f"peak RSS grew {self.grew_kb} kB >= bound {bound_kb} kB")
        if self.pid not in pids_now:
            p.append(f"worker {self.pid} replaced: workers now {pids_now}")
        return p


# ---- HTTP to the pool ----

def post(base, path, data, timeout=60):
    req = urllib.request.Request(base + path, data=data, method="POST",
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            status, raw = r.status, r.read()
    except urllib.error.HTTPError as e:
        status, raw = e.code, e.read()
    try:
        return status, json.loads(raw or b"null"), raw
    except ValueError:
        return status, None, raw


def execute(base, node, inputs, node_run_id, timeout=60):
    body = {"node_run_id": node_run_id, "run_id": "run-limits-e2e",
            "node_type_ref": {"node_type_id": node, "version": "0.3.8"}, "inputs": inputs}
    return post(base, "/v1/atomic-node-runs:execute", json.dumps(body).encode(), timeout)


# ---- the loopback server with the bombs ----

class BombServer(LoopbackHTTPServer):
    """http.server on 127.0.0.1 (port chosen by the kernel) serving /bomb,
    /bigbomb (gzip of zeros, Content-Encoding: gzip) and /small."""

    BODIES = {}

    def __init__(self):
        if not BombServer.BODIES:  # made once: 128 MiB of zeros takes a moment
            BombServer.BODIES.update({
                "/bomb": gzip.compress(b"\0" * BOMB_MIB * MIB, compresslevel=9),
                "/bigbomb": gzip.compress(b"\0" * BIG_BOMB_MIB * MIB, compresslevel=9),
                "/small": gzip.compress(b"hello " * 100),
            })
        bodies = BombServer.BODIES
        self.sizes = {k: len(v) for k, v in bodies.items()}

        class Handler(http.server.BaseHTTPRequestHandler):
            timeout = 20  # a stalled client cannot hold a thread for longer

            def do_GET(self):
                body = bodies.get(self.path)
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Encoding", "gzip")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                try:
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the fetch stopped reading: what the limits are for

            def log_message(self, *args):
                pass

        super().__init__(Handler)


def log_lines(state, *needles, since=0):
    """Lines of the pool's logs/app.log after byte `since` holding every needle."""
    try:
        with open(pathlib.Path(state) / "logs/app.log", "rb") as f:
            f.seek(since)
            text = f.read().decode("utf-8", "replace")
    except OSError:
        return []
    return [ln for ln in text.splitlines() if all(n in ln for n in needles)]


def log_size(state):
    try:
        return (pathlib.Path(state) / "logs/app.log").stat().st_size
    except OSError:
        return 0


# ---- the cases ----

def check_echo(r, base, name, nrid):
    st, res, raw = execute(base, "jarvis.core.echo", {"echo": "pong"}, nrid)
    ok = st == 200 and isinstance(res, dict) and res.get("state") == "succeeded" \
        and res.get("outputs") == {"echo": "pong"}
    r.check(name, [] if ok else [f"HTTP {st}: {raw[:400]!r}"])


def check_json_amplification(r, base, state, pid):
    # "[" + "{}," * n + "{}" + "]" is 3n + 4 bytes: the largest under the limit
    n = (MAX_BODY - 1 - 4) // 3
    body = b"[" + b"{}," * n + b"{}]"
    assert len(body) < MAX_BODY
    with Measure(pid) as m:
        st, res, raw = post(base, "/v1/atomic-node-runs:execute", body)
    print(f"  JSON amplification ({len(body)} bytes): {m.text()}")
    problems = []
    err = res.get("error", {}) if isinstance(res, dict) else {}
    errors = (err.get("details") or {}).get("errors") or []
    hit = [e for e in errors if isinstance(e, dict)
           and (e.get("ctx") or {}).get("error") == "JSON too large to decode"]
    if st != 400 or err.get("code") != "invalid_request" or not hit:
        problems.append(f"HTTP {st}: {raw[:600]!r}")
    elif hit[0].get("type") != "json_invalid":
        problems.append(f"error entry {json.dumps(hit[0])}")
    r.check("1 MiB [{},{},...] -> 400 invalid_request 'JSON too large to decode'", problems)
    if hit:
        print(f"  refused at loc {hit[0].get('loc')}")
    r.check(f"JSON amplification: worker peak RSS grew < {JSON_BOUND_KB // 1024} MB",
            m.problems(JSON_BOUND_KB, worker_pids(state, 1)))
    # "... and it stayed there": the worker gives the memory back afterwards
    # (malloc_trim after a large body), so its RSS comes back near the start.
    # The answer leaves before the worker frees the request: poll, bounded.
    deadline = time.monotonic() + 3.0
    while True:
        after = mem_kb(pid)
        kept = after.get("VmRSS", 0) - m.before.get("VmRSS", 0)
        if not after or kept < JSON_KEEP_KB or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    print(f"  JSON amplification: RSS {m.before.get('VmRSS')} kB before, "
          f"{after.get('VmRSS')} kB after ({kept / 1024:+.1f} MB kept)")
    try:
        with open(f"/proc/{pid}/maps") as f:
            sanitized = "libasan" in f.read()
    except OSError:
        sanitized = False
    if sanitized:
        # ASan holds freed memory in its quarantine: nothing to give back.
        print("  (ASan build: the memory given back is not checked)")
    else:
        r.check(f"JSON amplification: the worker keeps < {JSON_KEEP_KB // 1024} MB of it "
                "afterwards", [] if after and kept < JSON_KEEP_KB else [f"RSS kept {kept} kB"])
    check_echo(r, base, "echo still succeeds after the amplification body", "nr-limits-echo-2")


def check_bomb(r, base, state, pid, srv, name, path, max_bytes, want_log):
    mark = log_size(state)
    nrid = "nr-limits-" + "".join(c if c.isalnum() else "-" for c in name)
    with Measure(pid) as m:
        st, res, raw = execute(base, "jarvis.web.fetch",
                               {"url": srv.url(path), "max_bytes": max_bytes}, nrid)
    print(f"  {name} ({path}: {srv.sizes[path]} bytes gzipped, max_bytes {max_bytes}): {m.text()}")
    ok = st == 200 and isinstance(res, dict) and res.get("state") == "failed" \
        and (res.get("error") or {}).get("code") == "handler_error"
    r.check(f"{name}: 200 failed handler_error", [] if ok else [f"HTTP {st}: {raw[:600]!r}"])
    # the reason is in the worker's log, not in the answer
    lines = []
    for _ in range(20):  # bounded: the log line may land a moment after the answer
        lines = [ln for ln in log_lines(state, since=mark) if any(w in ln for w in want_log)]
        if lines:
            break
        time.sleep(0.1)
    for ln in lines:
        print(f"  log: {ln.strip()[:300]}")
    r.check(f"{name}: app.log says {' / '.join(want_log)}", [] if lines else [
        "no such line; log since the request: "
        + " | ".join(ln.strip()[:200] for ln in log_lines(state, since=mark)[-5:])])
    r.check(f"{name}: worker peak RSS grew < {BOMB_BOUND_KB // 1024} MB",
            m.problems(BOMB_BOUND_KB, worker_pids(state, 1)))


def run(r, base, state):
    pids = worker_pids(state, 1)
    r.check("one worker under the pool's multiwatch", [] if len(pids) == 1 else [f"workers {pids}"])
    if len(pids) != 1:
        return
    pid = pids[0]
    print(f"  worker pid {pid}: {mem_kb(pid)}")
    with BombServer() as srv:
        print(f"  bomb server on 127.0.0.1:{srv.port}: " + ", ".join(
            f"{k} {v} bytes" for k, v in srv.sizes.items()))
        # warm up: the first execute and the first fetch map what every later
        # one uses (libcurl, the serving thread), so the bounds measure the case
        check_echo(r, base, "echo execute (warm-up)", "nr-limits-echo-1")
        st, res, raw = execute(base, "jarvis.web.fetch", {"url": srv.url("/small")},
                               "nr-limits-small")
        out = (res or {}).get("outputs") or {}
        r.check("web.fetch of a small gzip body (warm-up) decodes it", [] if st == 200 and
                (res or {}).get("state") == "succeeded" and out.get("content_bytes") == 600
                else [f"HTTP {st}: {raw[:400]!r}"])

        check_json_amplification(r, base, state, pid)

        # 10 MiB of zeros against max_bytes 1 MiB: stopped at max_bytes
        check_bomb(r, base, state, pid, srv, "gzip bomb, max_bytes 1 MiB", "/bomb", MIB,
                   ["exceeds max_bytes (1048576)"])
        # max_bytes at the ceiling: only the ratio cap can stop it early
        check_bomb(r, base, state, pid, srv, "gzip bomb, max_bytes 256 MiB", "/bomb",
                   FETCH_CEILING, ["times its size"])
        # 128 MiB of zeros, max_bytes above the ceiling (clamped to it): held
        # whole it would cost 128 MiB and more; the ratio cap stops it at ~1 MiB
        mark = log_size(state)
        check_bomb(r, base, state, pid, srv, "128 MiB gzip bomb, max_bytes 1 TiB (clamped)",
                   "/bigbomb", 1 << 40, ["times its size"])
        clamp = log_lines(state, "clamped to JARVIS_ATOMIC_HTTP_MAX_BYTES 268435456", since=mark)
        for ln in clamp:
            print(f"  log: {ln.strip()[:300]}")
        r.check("max_bytes above the ceiling is clamped (logged)", [] if clamp else ["no log line"])

        check_echo(r, base, "echo still succeeds after the bombs", "nr-limits-echo-3")
    r.check("the same worker served every request", [] if worker_pids(state, 1) == [pid]
            else [f"workers now {worker_pids(state, 1)}, was {pid}"])


def run_default_ceiling(r, base, state):
    """A pool with the default ceiling (JARVIS_ATOMIC_HTTP_MAX_BYTES unset:
    1 MiB): max_bytes 256 MiB is clamped to it and the bomb stops there."""
    pids = worker_pids(state, 1)
    r.check("default ceiling: one worker", [] if len(pids) == 1 else [f"workers {pids}"])
    if len(pids) != 1:
        return
    pid = pids[0]
    with BombServer() as srv:
        check_echo(r, base, "default ceiling: echo execute (warm-up)", "nr-limits-echo-4")
        mark = log_size(state)
        check_bomb(r, base, state, pid, srv, "default ceiling, 128 MiB gzip bomb, max_bytes 256 MiB",
                   "/bigbomb", FETCH_CEILING, ["exceeds max_bytes (1048576)"])
        clamp = log_lines(state, "clamped to JARVIS_ATOMIC_HTTP_MAX_BYTES 1048576", since=mark)
        for ln in clamp:
            print(f"  log: {ln.strip()[:300]}")
        r.check("default ceiling: max_bytes 256 MiB clamped to 1 MiB (logged)",
                [] if clamp else ["no log line"])


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--binary", required=True)
    args = ap.parse_args()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARP_AUTH_")}
    env["JARVIS_MAX_BODY_BYTES"] = str(MAX_BODY)
    # web.fetch may reach the loopback bomb server (any port of 127.0.0.1 only)
    env["JARVIS_ATOMIC_HTTP_ALLOWED_CIDRS"] = "127.0.0.1/32:*"
    # the ceiling of max_bytes at its hard maximum, so a large max_bytes is
    # stopped by the decompression-ratio cap rather than by a 1 MiB ceiling
    env["JARVIS_ATOMIC_HTTP_MAX_BYTES"] = str(FETCH_CEILING)
    default_env = {k: v for k, v in env.items() if k != "JARVIS_ATOMIC_HTTP_MAX_BYTES"}
    r = Checks()
    for name, pool_env, body in (("ceiling 256 MiB", env, run),
                                 ("default ceiling", default_env, run_default_ceiling)):
        print(f"pool: {name}")
        pool = LocalPool(args.binary, workers=1, env=pool_env, prefix="jarvis-limits-e2e-")
        with pool as base:
            if base is None:
                r.check(f"the pool ({name}) starts", ["scripts/run-local start failed"])
                continue
            try:
                body(r, base, pool.state)
            except Exception as e:  # a crash of the test itself is a failure, not a hang
                r.check(f"limits e2e ({name}) ran to the end", [repr(e)])
    return r.close()


if __name__ == "__main__":
    sys.exit(main())
