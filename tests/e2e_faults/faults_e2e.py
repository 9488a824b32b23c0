#!/usr/bin/python3
"""Faults, end to end through nginx and a pool of 4 workers (scripts/run-local,
the test binary with the jarvis.test pack):

1. kill -9 of a random worker every 200 ms under load (8 client connections
   running echo and short jarvis.test.sleep executes): only the requests in
   flight on a killed worker fail, each as nginx's JSON 502; every other one
   succeeds; afterwards no run-table slot or execute permit is left behind
   and a batch of requests all succeed.
2. nginx reloads (SIGHUP to its master, by pid) under load: no request fails,
   and each runs exactly once (a kept-alive connection the old nginx worker
   closes at the reload is retried on a new one, as HTTP clients do).
3. A handler that crashes its worker with SIGSEGV (jarvis.test.crash): one
   JSON 502, one log line naming the run, the pool refills, the slot comes
   back, the next requests succeed.
4. Clients that stop reading a large answer, that stall mid-body, and that
   disconnect mid-execute (running or queued): none of them holds up a
   health check or an echo execute, and a disconnected client's run is
   canceled ("the client closed the connection").
5. Straight to the FastCGI socket: connections that send nothing or half a
   record hold up nothing, not even a stop; a burst of new connections,
   every request sent before any answer is read, is answered in full; a
   stopping worker still serves a connection it accepted whose request
   comes 0.2 s after the stop.

Every answer is checked for its exact status and body (timestamps for their
form). Loopback only; every load is bounded in count and in time, every wait
is bounded. Closing line: "<n> passed, <n> failed".
"""
import argparse
import http.client
import json
import os
import pathlib
import random
import re
import signal
import socket
import struct
import sys
import threading
import time

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "pylib"))
from jarvis_pool import (REPO, Checks, LocalPool, children, fcgi_connect,  # noqa: E402
                         fcgi_encode, fcgi_read)
from jarvis_pool import execute_body as pool_execute_body  # noqa: E402

EXECUTE = "/v1/atomic-node-runs:execute"
WORKERS = 4                 # the pool; also its execute slots (JARVIS_EXECUTE_SLOTS default)
SLOTS = 1024                # JARVIS_RUN_TABLE_SLOTS default
CLIENTS = 8                 # concurrent client connections of the loads
# What nginx answers for a worker that died mid-request
# (deploy/nginx/jarvis-atomic-executor-errors.conf), byte for byte.
BAD_GATEWAY = (b'{"error":{"code":"bad_gateway","message":"No executor worker answered",'
               b'"retryable":true}}')
TS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")

KILL_LOAD_S = 6.0           # scenario 1: load duration, kills every KILL_EVERY_S
KILL_EVERY_S = 0.2
# How long after a kill nginx may still send a request on a kept FastCGI
# connection to the dead worker (it drops one from its cache once its event
# loop sees the close: milliseconds, more under ASan on a loaded machine).
KEPT_SLACK_S = 1.0
RELOAD_LOAD_S = 4.0         # scenario 2: load duration, RELOADS reloads spread over it
RELOADS = 5
RELOAD_CAP_S = 40.0         # its bound when a loaded machine delays the reloads
PER_CLIENT_MAX = 2000       # requests per client connection in one load, at most
REQUEST_TIMEOUT_S = 30      # any one exchange
PROMPT_S = 2.0              # "answers promptly" while others hang (loose)
REFILL_S = 20.0             # the pool back to WORKERS workers
IDLE_S = 10.0               # health back to idle (slots reclaimed)
LONG_MS = 20000             # a run that only ends by a cancel or a hang-up
BIG_ECHO = 600 * 1024       # bytes of the echo whose answer a client never reads
FCGI_SILENT = 8             # scenario 5: FastCGI connections that send nothing or half a record
FCGI_BURST = 96             # ... and new ones, each with a request, before any answer is read


# ---- HTTP ----

class Reply:
    """One exchange: status (0 on a transport error), raw body, content
    type, JSON (or None), error text, monotonic send and done times."""

    def __init__(self):
        self.status, self.raw, self.ctype, self.json, self.error = 0, b"", "", None, ""
        self.sent = self.done = 0.0

    def text(self):
        return self.error or f"HTTP {self.status} {self.raw[:300]!r}"


def exchange(port, method, path, body=None, conn=None, timeout=REQUEST_TIMEOUT_S):
    """One request; with conn (an http.client connection) it is reused
    (kept alive), else a fresh connection is opened and closed."""
    r = Reply()
    own = conn is None
    if own:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    headers = {"Content-Type": "application/json"} if body is not None else {}
    if own:
        headers["Connection"] = "close"
    r.sent = time.monotonic()
    try:
        conn.request(method, path, body=body, headers=headers)
        resp = conn.getresponse()
        r.raw = resp.read()
        r.status, r.ctype = resp.status, resp.getheader("Content-Type", "")
        try:
            r.json = json.loads(r.raw) if r.raw else None
        except ValueError:
            r.json = None
    except (OSError, http.client.HTTPException) as e:
        r.error = f"{type(e).__name__}: {e}"
        conn.close()
    finally:
        r.done = time.monotonic()
        if own:
            conn.close()
    return r


def execute_body(node_run_id, node_type, inputs):
    return pool_execute_body(node_run_id, node_type, inputs, run_id="run-faults-e2e",
                             version="1.0.0")


def result_problems(r, node_run_id, state="succeeded", outputs=None, error=None):
    """[] when r is 200 with exactly this AtomicExecuteResult (timestamps
    checked for their form)."""
    if r.status != 200 or not isinstance(r.json, dict):
        return [r.text()]
    got = dict(r.json)
    p = []
    for k in ("started_at", "ended_at"):
        if not TS.match(str(got.pop(k, ""))):
            p.append(f"{k} missing or malformed in {r.raw[:300]!r}")
    want = {"node_run_id": node_run_id, "state": state}
    if outputs is not None:
        want["outputs"] = outputs
    if error is not None:
        want["error"] = error
    if got != want:
        p.append(f"got {json.dumps(got)[:300]}, want {json.dumps(want)[:300]}")
    if not r.ctype.startswith("application/json"):
        p.append(f"Content-Type {r.ctype!r}")
    return p


def bad_gateway_problems(r):
    """[] when r is nginx's JSON 502, byte for byte."""
    p = []
    if r.status != 502 or r.raw != BAD_GATEWAY:
        p.append(r.text())
    if r.ctype != "application/json":
        p.append(f"Content-Type {r.ctype!r}")
    if not isinstance(r.json, dict) or r.json.get("error", {}).get("code") != "bad_gateway" \
            or r.json["error"].get("retryable") is not True:
        p.append("not a JSON bad_gateway error")
    return p


CANCELED = {"code": "canceled", "message": "Atomic execution canceled"}


# ---- the pool: workers, health, logs ----

def health(port):
    """{"running", "queued", "slots", "tombstones", "free"} of the run_table
    check, or None when health did not answer so."""
    r = exchange(port, "GET", "/v1/health", timeout=10)
    for c in (r.json or {}).get("checks", []) if r.status == 200 else []:
        if c.get("name") == "run_table":
            return c.get("details")
    return None


IDLE = {"slots": SLOTS, "running": 0, "queued": 0, "tombstones": 0, "free": SLOTS}


def wait_for(pred, seconds, step=0.05):
    """pred() until it is true or `seconds` pass; its last value."""
    until = time.monotonic() + seconds
    while True:
        v = pred()
        if v or time.monotonic() > until:
            return v
        time.sleep(step)


def wait_idle(port, seconds=IDLE_S):
    """[] once health shows the table idle (bounded wait), else the problem."""
    last = [None]

    def idle():
        last[0] = health(port)
        return last[0] == IDLE
    return [] if wait_for(idle, seconds) else [f"health run_table after {seconds:g} s: {last[0]}"]


class Pool:
    """What the scenarios need of the running pool: its port, state folder,
    workers and logs."""

    def __init__(self, lp, port):
        self.state = pathlib.Path(lp.state)
        self.port = port

    def pid(self, name):
        try:
            return int((self.state / name).read_text().strip())
        except (OSError, ValueError):
            return 0

    def workers(self):
        return children(self.pid("pool.pid"))

    def wait_workers(self, gone=()):
        """[] once WORKERS workers run and none of `gone` is among them."""
        def full():
            w = self.workers()
            return len(w) == WORKERS and not set(w) & set(gone)
        ok = wait_for(full, REFILL_S, 0.1)
        return [] if ok else [f"workers {self.workers()} after {REFILL_S:g} s "
                              f"(want {WORKERS}, none of {sorted(gone)[:8]})"]

    def log_size(self, name):
        try:
            return (self.state / "logs" / name).stat().st_size
        except OSError:
            return 0

    def log_lines(self, name, since, *needles):
        try:
            with open(self.state / "logs" / name, "rb") as f:
                f.seek(since)
                text = f.read().decode("utf-8", "replace")
        except OSError:
            return []
        return [ln for ln in text.splitlines() if all(n in ln for n in needles)]

    def wait_log(self, since, *needles, seconds=10.0):
        """The app.log lines after `since` holding every needle (bounded wait)."""
        return wait_for(lambda: self.log_lines("app.log", since, *needles), seconds) or []


def kill_child(parent, pid, sig=signal.SIGKILL):
    """Sends sig to pid through a pidfd, only if it is still parent's child
    (a recycled pid is never hit). True if sent."""
    try:
        fd = os.pidfd_open(pid)
    except OSError:
        return False
    try:
        if pid not in children(parent):
            return False
        signal.pidfd_send_signal(fd, sig)
        return True
    except OSError:
        return False
    finally:
        os.close(fd)


# ---- load ----

class Load:
    """CLIENTS threads, each sending executes until stop_at (and at most
    PER_CLIENT_MAX): echoes, and every third a jarvis.test.sleep of
    sleep_ms = (lo, hi). keep_alive: every client keeps one connection;
    "half": the even ones do, the odd ones open a fresh connection per
    request, and a request that fails on a reused connection before any
    answer (the server had closed it while idle) is sent again once on a
    fresh one, as HTTP clients do. calls: (kind, node_run_id, Reply)."""

    RETRYABLE = ("BrokenPipeError", "ConnectionResetError", "RemoteDisconnected")

    def __init__(self, port, tag, seconds, sleep_ms, keep_alive, seed):
        self.port, self.tag, self.sleep_ms, self.keep_alive = port, tag, sleep_ms, keep_alive
        self.stop_at = time.monotonic() + seconds
        self.rng = random.Random(seed)
        self.calls, self.retried, self.lock = [], [], threading.Lock()
        self.threads = [threading.Thread(target=self.client, args=(i, self.rng.random()),
                                         daemon=True) for i in range(CLIENTS)]

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        for t in self.threads:
            t.join(timeout=REQUEST_TIMEOUT_S + (self.stop_at - time.monotonic()) + 5)
        return False

    def stop(self, after):
        """Ends the load `after` seconds from now (or at its bound, if sooner)."""
        self.stop_at = min(self.stop_at, time.monotonic() + after)

    def client(self, idx, seed):
        rng = random.Random(seed)
        keep = self.keep_alive is True or (self.keep_alive == "half" and idx % 2 == 0)
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=REQUEST_TIMEOUT_S) \
            if keep else None
        n = used = 0
        while time.monotonic() < self.stop_at and n < PER_CLIENT_MAX:
            nrid = f"nr-{self.tag}-{idx}-{n}"
            if n % 3 == 0:
                ms = rng.randint(*self.sleep_ms)
                body, kind = execute_body(nrid, "jarvis.test.sleep", {"ms": ms}), ("sleep", ms)
            else:
                text = f"{self.tag} {idx} {n} é"
                body, kind = execute_body(nrid, "jarvis.core.echo", {"echo": text}), ("echo", text)
            r = exchange(self.port, "POST", EXECUTE, body, conn=conn)
            if self.keep_alive == "half" and keep and used > 0 and r.error.startswith(
                    self.RETRYABLE):
                with self.lock:
                    self.retried.append((nrid, r.error))
                used = 0  # exchange closed it: the next request reconnects
                r = exchange(self.port, "POST", EXECUTE, body, conn=conn)
            used = used + 1 if r.status else 0
            with self.lock:
                self.calls.append((kind, nrid, r))
            n += 1
        if conn is not None:
            conn.close()

    @staticmethod
    def success_problems(kind, nrid, r):
        if kind[0] == "echo":
            return result_problems(r, nrid, outputs={"echo": kind[1]})
        p = result_problems(r, nrid, outputs=(r.json or {}).get("outputs"))
        out = (r.json or {}).get("outputs") or {}
        if not p and (out.get("slept_ms") != kind[1] or not isinstance(out.get("pid"), int)):
            p.append(f"outputs {out}, want slept_ms {kind[1]} and a pid")
        return p


# ---- 1: kill -9 under load ----

def killer(pool, stop_at, kills, rng):
    """Every KILL_EVERY_S until stop_at: SIGKILL to a random worker;
    kills gets (before, after, pid) (monotonic times around the kill)."""
    nxt = time.monotonic() + KILL_EVERY_S
    parent = pool.pid("pool.pid")
    while len(kills) < int(KILL_LOAD_S / KILL_EVERY_S) + 1:
        time.sleep(max(0.0, nxt - time.monotonic()))
        nxt += KILL_EVERY_S
        if time.monotonic() >= stop_at:
            return
        live = pool.workers()
        if not live:
            continue
        pid = rng.choice(live)
        t0 = time.monotonic()
        if kill_child(parent, pid):
            kills.append((t0, time.monotonic(), pid))


def nginx_error_problems(pool, since, want_502):
    """nginx's error lines since `since`: each must be a worker that died
    mid-request (never a refused connect); want_502 of them before the
    answer's head came (those are the 502s). A worker killed after its whole
    answer left but before its FastCGI end record is logged too ("while
    reading upstream"); its client got the answer (Content-Length)."""
    died_marks = ("prematurely closed", "(104: Connection reset by peer)", "(32: Broken pipe)")
    lines = [ln for ln in pool.log_lines("nginx-error.log", since)
             if re.search(r"\[(error|crit|alert|emerg)\]", ln)]
    died = [ln for ln in lines if "upstream" in ln and any(m in ln for m in died_marks)]
    p = [f"unexpected nginx error: {ln[:300]}" for ln in lines if ln not in died][:5]
    early = [ln for ln in died if "while reading response header from upstream" in ln
             or "while sending request to upstream" in ln]
    if len(early) != want_502:
        p.append(f"{len(early)} 'worker died before answering' lines in nginx-error.log, "
                 f"{want_502} 502 answers")
    if len(died) > len(early):
        print(f"  ({len(died) - len(early)} worker(s) killed after their answer had left)")
    return p


class Holders:
    """Long jarvis.test.sleep executes, one thread each, that only a cancel
    (or a hang-up) ends; answers: node_run_id -> Reply."""

    def __init__(self, port, ids):
        self.port, self.ids, self.answers = port, ids, {}
        self.threads = [threading.Thread(target=self.run, args=(i,), daemon=True) for i in ids]
        for t in self.threads:
            t.start()

    def run(self, nrid):
        self.answers[nrid] = exchange(self.port, "POST", EXECUTE,
                                      execute_body(nrid, "jarvis.test.sleep", {"ms": LONG_MS}))

    def cancel_problems(self):
        """Cancels each (204) and checks it answered canceled."""
        p = []
        for nrid in self.ids:
            c = exchange(self.port, "POST", f"/v1/atomic-node-runs/{nrid}:cancel")
            if c.status != 204:
                p.append(f"cancel {nrid}: {c.text()}")
        for t in self.threads:
            t.join(timeout=REQUEST_TIMEOUT_S)
        for nrid in self.ids:
            r = self.answers.get(nrid)
            p += [f"{nrid}: {x}" for x in (result_problems(r, nrid, "canceled", error=CANCELED)
                                           if r else ["no answer"])]
        return p


def permits_problems(pool, tag):
    """Every execute permit is back: WORKERS long sleeps all run at once
    (none queues), seen by health; then each is canceled and answers so."""
    port = pool.port
    held = Holders(port, [f"nr-{tag}-permit-{i}" for i in range(WORKERS)])
    seen = wait_for(lambda: (health(port) or {}).get("running") == WORKERS, 10.0)
    h = health(port)
    p = [] if seen and h and h.get("queued") == 0 else [
        f"{WORKERS} sleeps did not all run at once (a permit kept): health {h}"]
    return p + held.cancel_problems()


def batch_problems(pool, tag, n=64, seconds=30.0):
    """n echo executes over CLIENTS connections: all succeed within seconds."""
    port, out, lock = pool.port, [], threading.Lock()

    def client(i):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=REQUEST_TIMEOUT_S)
        for k in range(i, n, CLIENTS):
            nrid = f"nr-{tag}-{k}"
            r = exchange(port, "POST", EXECUTE,
                         execute_body(nrid, "jarvis.core.echo", {"echo": nrid}), conn=conn)
            with lock:
                out.append(result_problems(r, nrid, outputs={"echo": nrid}))
        conn.close()
    t0 = time.monotonic()
    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=seconds)
    took = time.monotonic() - t0
    print(f"  batch: {len(out)} of {n} answered in {took:.2f} s")
    p = [x for pr in out for x in pr][:5]
    if len(out) != n or took > seconds:
        p.append(f"{len(out)} of {n} answered in {took:.1f} s (bound {seconds:g} s)")
    return p


def scenario_kill(r, pool, seed):
    rng = random.Random(seed)
    err_mark = pool.log_size("nginx-error.log")
    kills = []
    with Load(pool.port, "kill", KILL_LOAD_S, (20, 80), True, rng.random()) as load:
        killer(pool, load.stop_at, kills, rng)
    calls = load.calls
    ok = [c for c in calls if c[2].status == 200]
    failed = [c for c in calls if c[2].status != 200]
    print(f"  {len(kills)} workers killed; {len(calls)} requests: {len(ok)} answered 200, "
          f"{len(failed)} failed")
    r.check(f"kill: at least {int(KILL_LOAD_S / KILL_EVERY_S) // 2} kills during the load, "
            "and requests on every client", [] if len(kills) >= int(KILL_LOAD_S / KILL_EVERY_S) // 2
            and len(calls) >= CLIENTS else [f"{len(kills)} kills, {len(calls)} requests"])
    p = []
    for kind, nrid, rep in ok:
        p += [f"{nrid}: {x}" for x in Load.success_problems(kind, nrid, rep)]
    r.check("kill: every request not failed is 200 with its exact result", p[:5])
    p = []
    for kind, nrid, rep in failed:
        p += [f"{nrid}: {x}" for x in bad_gateway_problems(rep)]
        # in flight at a kill: sent before it, answered after it; or sent just
        # after it on a kept FastCGI connection to the killed worker that nginx
        # had not yet seen closed (nginx does not resend a POST)
        if not any(rep.sent < after + KEPT_SLACK_S and rep.done > before
                   for before, after, _ in kills):
            p.append(f"{nrid}: failed but in flight at no kill")
    r.check("kill: every failed request is nginx's JSON 502 and was in flight at a kill", p[:5])
    # a worker logs a request once it has answered it: never one of these
    logged = {nrid for _, nrid, _ in failed} & set(
        re.findall(r"node_run_id=(nr-kill-[0-9-]+) ", "\n".join(pool.log_lines("app.log", 0))))
    r.check("kill: no worker answered a request that failed",
            [f"{sorted(logged)[:5]} were logged by a worker"] if logged else [])
    r.check("kill: some requests were in flight on a killed worker (the test bit)",
            [] if failed else ["no request failed: no kill hit a busy worker"])
    r.check("kill: nginx logged each 502 as a worker that died mid-request",
            nginx_error_problems(pool, err_mark, len(failed)))
    r.check("kill: multiwatch refills the pool", pool.wait_workers({k[2] for k in kills}))
    r.check("kill: health shows no run and every slot free", wait_idle(pool.port))
    r.check("kill: every execute permit came back", permits_problems(pool, "kill"))
    r.check("kill: health idle again after the permit check", wait_idle(pool.port))
    r.check("kill: throughput recovers (a batch of echoes all succeed)",
            batch_problems(pool, "kill-after"))


# ---- 2: nginx reload under load ----

def scenario_reload(r, pool, seed):
    master = pool.pid("nginx.pid")
    err_mark = pool.log_size("nginx-error.log")
    log_mark = pool.log_size("app.log")
    reloads = []  # (when, the new nginx workers)
    problems = []
    # Half the clients keep their connection alive. At a reload the old
    # nginx worker closes its idle kept-alive connections: a request sent
    # on one at that instant never reaches nginx (the ordinary keep-alive
    # race); those clients send it again on a fresh connection.
    # Bounded by RELOAD_CAP_S; stopped just after the last reload, however
    # late a loaded machine makes it.
    with Load(pool.port, "reload", RELOAD_CAP_S, (100, 400), "half", seed) as load:
        for i in range(RELOADS):
            time.sleep(RELOAD_LOAD_S / (RELOADS + 1))
            before = set(children(master))
            at = time.monotonic()
            os.kill(master, signal.SIGHUP)
            new = wait_for(lambda: set(children(master)) - before, 5.0)
            reloads.append((at, new))
            if not new:
                problems.append(f"reload {i + 1}: no new nginx worker within 5 s")
        load.stop(after=0.5)
    calls = load.calls
    print(f"  {len(reloads)} reloads; {len(calls)} requests, {len(load.retried)} sent again "
          "after a kept-alive connection closed at a reload")
    r.check(f"reload: {RELOADS} reloads each started a new nginx worker; the master stayed",
            problems + ([] if pool.pid("nginx.pid") == master and os.path.exists(f"/proc/{master}")
                        else [f"nginx master {master} gone or replaced"]))
    p = []
    for kind, nrid, rep in calls:
        p += [f"{nrid}: {x}" for x in Load.success_problems(kind, nrid, rep)]
    idle = [i + 1 for i, (at, _) in enumerate(reloads)
            if not any(rep.sent < at < rep.done for _, _, rep in calls)]
    r.check("reload: every request under reloads is 200 with its exact result",
            p[:5] + ([f"no request in flight at reload(s) {idle}"] if idle else []))
    # A request sent again had never reached a worker: each ran exactly once.
    # A worker logs a request just after its answer has left, so the last
    # lines may come a moment after the last answer: wait for them (bounded).
    def ran_ids():
        return re.findall(r"node_run_id=(nr-reload-[0-9-]+) ",
                          "\n".join(pool.log_lines("app.log", log_mark, "status=200")))
    wait_for(lambda: not ({c[1] for c in calls} - set(ran_ids())), 5.0)
    ran = ran_ids()
    twice = sorted({x for x in ran if ran.count(x) > 1})
    missing = sorted({c[1] for c in calls} - set(ran))
    r.check("reload: every request ran exactly once (none sent again had run)",
            ([f"ran twice: {twice[:5]}"] if twice else [])
            + ([f"no worker line: {missing[:5]}"] if missing else []))
    r.check("reload: nginx logged no error", nginx_error_problems(pool, err_mark, 0))
    r.check("reload: health idle after the load", wait_idle(pool.port))


# ---- 3: a handler that crashes its worker ----

def scenario_crash(r, pool):
    nrid = "nr-faults-crash"
    mark, err_mark = pool.log_size("app.log"), pool.log_size("nginx-error.log")
    before = pool.workers()
    rep = exchange(pool.port, "POST", EXECUTE, execute_body(nrid, "jarvis.test.crash", {}))
    r.check("crash: the crashing execute answers nginx's JSON 502", bad_gateway_problems(rep))
    lines = pool.wait_log(mark, "fatal signal 11 (SIGSEGV)", f"node_run_id={nrid}",
                          "node_type_id=jarvis.test.crash")
    for ln in lines:
        print(f"  log: {ln[:300]}")
    dead = [int(m.group(1)) for m in (re.search(r" pid=(\d+) ", ln) for ln in lines) if m]
    r.check("crash: app.log has one ERROR line naming the signal and the run",
            [] if len(lines) == 1 and " ERROR " in lines[0] and dead and dead[0] in before
            else [f"lines {lines} (workers before: {before})"])
    r.check("crash: nginx logged it as a worker that died mid-request",
            nginx_error_problems(pool, err_mark, 1))
    r.check("crash: multiwatch refills the pool", pool.wait_workers(dead))
    r.check("crash: health shows no run and every slot free", wait_idle(pool.port))
    # the crashed run's id is free again (its slot reclaimed, not 409)
    rep = exchange(pool.port, "POST", EXECUTE,
                   execute_body(nrid, "jarvis.core.echo", {"echo": "after the crash"}))
    r.check("crash: the same node_run_id executes again",
            result_problems(rep, nrid, outputs={"echo": "after the crash"}))
    r.check("crash: the next requests succeed", batch_problems(pool, "crash-after", n=16))


# ---- 4: clients that stop reading, stall or go away ----

def raw_send(port, data, rcvbuf=None):
    """A connected socket that has sent `data` (and reads nothing)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.settimeout(10)
    s.connect(("127.0.0.1", port))
    s.sendall(data)
    return s


def raw_execute(port, body, rcvbuf=None, send_bytes=None):
    b = body.encode()
    head = (f"POST {EXECUTE} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(b)}\r\nConnection: close\r\n\r\n").encode()
    data = head + b
    return raw_send(port, data if send_bytes is None else data[:len(head) + send_bytes], rcvbuf)


def hang_up(s, reset):
    """Closes s: with an RST (SO_LINGER 0) or a FIN."""
    if reset:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()


def prompt_problems(pool, tag):
    """A health check and an echo execute each answer within PROMPT_S."""
    p = []
    h = exchange(pool.port, "GET", "/v1/health")
    if h.status != 200 or h.done - h.sent > PROMPT_S:
        p.append(f"health: {h.text()[:120]} in {h.done - h.sent:.2f} s")
    nrid = f"nr-{tag}-echo"
    e = exchange(pool.port, "POST", EXECUTE, execute_body(nrid, "jarvis.core.echo", {"echo": tag}))
    p += result_problems(e, nrid, outputs={"echo": tag})
    if e.done - e.sent > PROMPT_S:
        p.append(f"echo took {e.done - e.sent:.2f} s")
    return p


def scenario_slow_readers(r, pool):
    mark = pool.log_size("app.log")
    big = "x" * BIG_ECHO
    held = []
    try:
        # 12 clients ask for a 600 KiB answer and never read it (tiny receive
        # buffers), 4 send half a body and stall.
        for i in range(12):
            held.append(raw_execute(pool.port, execute_body(f"nr-noread-{i}", "jarvis.core.echo",
                                                            {"echo": big}), rcvbuf=4096))
        for i in range(4):
            body = execute_body(f"nr-stall-{i}", "jarvis.core.echo", {"echo": "stalled"})
            held.append(raw_execute(pool.port, body, send_bytes=len(body) // 2))
        # The workers finish the unread answers (nginx buffers them): each
        # run ends succeeded, with no worker waiting on a client.
        done = wait_for(lambda: len(pool.log_lines("app.log", mark, "status=200",
                                                   "state=succeeded", "node_run_id=nr-noread-"))
                        >= 12, 15.0)
        r.check("no-read: the 12 runs whose answer is never read end succeeded",
                [] if done else [f"{len(pool.log_lines('app.log', mark, 'node_run_id=nr-noread-'))}"
                                 " of 12 logged"])
        r.check("no-read + stalled body: health and an echo answer promptly",
                prompt_problems(pool, "noread"))
        r.check("no-read + stalled body: no run holds a slot", wait_idle(pool.port))
        r.check("stalled body: no worker ever saw those requests",
                [f"logged: {ln[:200]}" for ln in pool.log_lines("app.log", mark, "nr-stall-")])
    finally:
        for s in held:
            hang_up(s, True)


def long_sleeps(port, prefix, n):
    """n raw clients, each with a long jarvis.test.sleep execute sent."""
    return [raw_execute(port, execute_body(f"{prefix}{i}", "jarvis.test.sleep", {"ms": LONG_MS}))
            for i in range(n)]


def gone_problems(pool, mark, socks, prefix, reason):
    """Closes the clients of long_sleeps (the first with an RST, the others
    with a FIN); [] once each run's canceled line with `reason` is logged."""
    for i, s in enumerate(socks):
        hang_up(s, reset=i == 0)
    return [f"no canceled line for {prefix}{i}" for i in range(len(socks))
            if not pool.wait_log(mark, f"node_run_id={prefix}{i}", "state=canceled",
                                 f'reason="{reason}"')]


def scenario_disconnect(r, pool):
    port, mark = pool.port, pool.log_size("app.log")
    # running: 2 long sleeps whose clients go away
    gone = long_sleeps(port, "nr-gone-", 2)
    seen = wait_for(lambda: (health(port) or {}).get("running") == 2, 10.0)
    r.check("disconnect: the 2 runs started", [] if seen else [f"health {health(port)}"])
    r.check("disconnect: while they run, health and an echo answer promptly",
            prompt_problems(pool, "gone"))
    r.check("disconnect: each run ends canceled, 'the client closed the connection'",
            gone_problems(pool, mark, gone, "nr-gone-", "the client closed the connection"))
    r.check("disconnect: health idle again", wait_idle(port))

    # queued: WORKERS holders fill the execute slots; 2 more queue and go away
    held = Holders(port, [f"nr-hold-{i}" for i in range(WORKERS)])
    wait_for(lambda: (health(port) or {}).get("running") == WORKERS, 10.0)
    queued = long_sleeps(port, "nr-gone-q-", 2)
    seen = wait_for(lambda: (health(port) or {}).get("queued") == 2, 10.0)
    r.check(f"disconnect: {WORKERS} run and 2 queue", [] if seen else [f"health {health(port)}"])
    p = gone_problems(pool, mark, queued, "nr-gone-q-",
                      "the client closed the connection while queued")
    h = wait_for(lambda: (lambda d: d if d and d.get("queued") == 0 else None)(health(port)), 5.0)
    if not h or h.get("running") != WORKERS:
        p.append(f"health after: {health(port)}")
    r.check("disconnect: queued runs end canceled, never run; the holders run on", p)
    r.check("disconnect: the holders are canceled and answer so", held.cancel_problems())
    r.check("disconnect: health idle at the end", wait_idle(port))


def scenario_fastcgi(r, pool):
    """Straight to the FastCGI socket, as nginx (or anyone who can reach the
    socket) would: connections that send nothing or half a record hold up
    nothing, a burst of new connections, every request sent before any
    answer is read, is answered in full (worker.c's accept_one), and a
    stopping worker still serves a connection it accepted (WK_FRESH_WAIT_MS)."""
    sock_path = pool.state / "fcgi.sock"
    silent, burst = [], []
    try:
        for i in range(FCGI_SILENT):
            s = fcgi_connect(sock_path, REQUEST_TIMEOUT_S)
            silent.append(s)
            if i % 2:
                s.sendall(b"\x01\x01\x00\x01")  # half a record header
        r.check(f"fastcgi: {FCGI_SILENT} silent or half-record connections, "
                "health and an echo answer promptly", prompt_problems(pool, "fcgi-silent"))
        t0 = time.monotonic()
        for i in range(FCGI_BURST):
            s = fcgi_connect(sock_path, REQUEST_TIMEOUT_S)
            burst.append(s)
            s.sendall(fcgi_encode("GET", "/v1/health", keep=i % 2 == 0))
        answers = [fcgi_read(s) for s in burst]
        took = time.monotonic() - t0
        bad = [f"connection {i}: {st} {raw[:80]!r}" for i, (st, _, raw) in enumerate(answers)
               if st != 200 or b'"status":"ok"' not in raw]
        r.check(f"fastcgi: a burst of {FCGI_BURST} new connections, all answered 200 "
                f"({took:.2f} s)", bad + ([] if took <= PROMPT_S * 5 else [f"took {took:.2f} s"]))
        r.check("fastcgi: after them, health and an echo answer promptly",
                prompt_problems(pool, "fcgi-after"))
        # A stop waits (WK_FRESH_WAIT_MS, 1 s) for the first request of a
        # connection its worker accepted: no other worker can take it now.
        late = fcgi_connect(sock_path, REQUEST_TIMEOUT_S)
        burst.append(late)
        time.sleep(0.2)
        old = pool.workers()
        for pid in old:
            kill_child(pool.pid("pool.pid"), pid, signal.SIGTERM)
        time.sleep(0.2)
        late.sendall(fcgi_encode("GET", "/v1/health"))
        st, _, raw = fcgi_read(late)
        r.check("fastcgi: every worker stopped (SIGTERM) with a connection accepted, its "
                "request sent 0.2 s later: answered 200, and the pool refills (the threads "
                "reading the half records give up after WK_READ_TIMEOUT_S, 10 s)",
                ([] if st == 200 and b'"status":"ok"' in raw else [f"{st} {raw[:80]!r}"])
                + pool.wait_workers(gone=old))
    except OSError as e:
        r.check("fastcgi: the socket takes connections", [str(e)])
    finally:
        for s in silent + burst:
            s.close()


def main():
    global KILL_LOAD_S, KILL_EVERY_S
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--binary", required=True)
    ap.add_argument("--seed", type=int, default=None, help="random seed (default: the time)")
    ap.add_argument("--kill-seconds", type=float, default=KILL_LOAD_S,
                    help="scenario 1's load, for a longer soak by hand")
    ap.add_argument("--kill-every", type=float, default=KILL_EVERY_S,
                    help="seconds between kills (multiwatch gives up on a worker slot whose "
                    "workers die 100 times in a row within 1 s of their start)")
    args = ap.parse_args()
    KILL_LOAD_S, KILL_EVERY_S = args.kill_seconds, args.kill_every
    seed = args.seed if args.seed is not None else int(time.time())
    print(f"seed {seed}")
    conf = (REPO / "deploy/nginx/jarvis-atomic-executor-errors.conf").read_text()
    r = Checks()
    r.check("the nginx error mapping answers the 502 this test expects",
            [] if f"return 502 '{BAD_GATEWAY.decode()}';" in conf else ["not in the conf"])
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("ARP_AUTH_") and not k.startswith("JARVIS_")}
    env["JARVIS_LOG_LEVEL"] = "info"
    lp = LocalPool(args.binary, workers=WORKERS, env=env, prefix="jarvis-faults-e2e-")
    with lp as base:
        if base is None:
            r.check("the pool starts", ["scripts/run-local start failed"])
            return r.close()
        pool = Pool(lp, int(base.rsplit(":", 1)[1]))
        r.run_scenarios((("kill -9 under load", lambda: scenario_kill(r, pool, seed)),
                         ("nginx reload under load", lambda: scenario_reload(r, pool, seed)),
                         ("a handler that crashes", lambda: scenario_crash(r, pool)),
                         ("clients that stop reading", lambda: scenario_slow_readers(r, pool)),
                         ("clients that disconnect", lambda: scenario_disconnect(r, pool)),
                         ("FastCGI connections", lambda: scenario_fastcgi(r, pool))))
    return r.close()


if __name__ == "__main__":
    sys.exit(main())
