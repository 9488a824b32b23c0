#!/usr/bin/python3
"""The listening socket, one worker: the binary alone under plain
spawn-fcgi (one process) behind nginx, on TCP (-a/-p, as an operator may
run it instead of the shipped Unix socket) and on a Unix socket.

  - every request through nginx, and straight to the socket;
  - peers that connect and send nothing, or half a record, more of them
    than the worker has threads, hold up nothing, and a worker stopped with
    silent peers connected ends at once (worker.c takes every connection
    itself, TCP ones too, and bounds its reads from the accept on);
  - FCGI_WEB_SERVER_ADDRS: a peer outside the list is closed unanswered
    (and counted in the log at most once a second), one inside is served,
    over IPv4 and IPv6 alike (libfcgi never judged IPv6 peers); a value
    that is not a list of addresses stops the worker before it serves.

  tests/e2e_listen/listen_e2e.py --binary PATH

Prints PASS/FAIL per check and "<n> passed, <n> failed"; exit 1 on a failure.
Loopback only (127.0.0.1, 127.0.0.2 and ::1); every wait is bounded.
"""
import argparse
import http.client
import json
import os
import re
import shutil
import socket
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "pylib"))
from jarvis_pool import (Checks, PlainWorker, execute_body, fcgi_connect,  # noqa: E402
                         fcgi_encode, fcgi_exchange, fcgi_request, peer_closed)

EXECUTE = "/v1/atomic-node-runs:execute"
# Seconds a prompt answer may take, and any bounded wait.
PROMPT_S = 1.0
WAIT_S = 10
# A stop waits WK_FRESH_WAIT_MS (1 s) for an accepted connection's first request.
STOP_S = 3.0
# WK_READ_TIMEOUT_S: a read that waits longer fails; and WK_FRESH_TTL_MS, the
# longest a connection may wait for its first request.
READ_TIMEOUT_S = 10
# Peers to leave silent (and half of them mid-record), and refused peers in a row.
SILENT = 8
REFUSED = 20
# The log lines that count refused peers and closed silent ones (worker.c,
# tally_locked): the count since the line before, and the last one's detail.
REFUSED_LINE = re.compile(r"peers refused \(not in FCGI_WEB_SERVER_ADDRS\): (\d+) since the "
                          r"last line, the last: ([0-9a-f:.]+)")
SILENT_LINE = re.compile(r"new connections closed before their first request: (\d+) since "
                         r"the last line, the last: ([^\"]+)")
# A worker with this many fds: (128 - 64) / 2 = 32 kept connections, so 8
# may wait for a first request (worker.c, size_for_fds); FLOOD peers then.
FEW_FDS, FEW_FRESH, FLOOD = 128, 8, 12


def request(port, method, path, body=None):
    """(status, body bytes, seconds) through nginx; status 0 when it failed."""
    t0 = time.monotonic()
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=WAIT_S)
    try:
        c.request(method, path, body=body,
                  headers={"Content-Type": "application/json"} if body else {})
        r = c.getresponse()
        return r.status, r.read(), time.monotonic() - t0
    except OSError:
        return 0, b"", time.monotonic() - t0
    finally:
        c.close()


def served_problems(port, tag):
    """Health and an echo through nginx: 200, promptly."""
    out = []
    st, raw, took = request(port, "GET", "/v1/health")
    if st != 200 or b'"status":"ok"' not in raw or took > PROMPT_S:
        out.append(f"health: {st} in {took:.2f} s {raw[:120]!r}")
    st, raw, took = request(port, "POST", EXECUTE,
                            execute_body(tag, "jarvis.core.echo", {"echo": tag}))
    try:
        data = json.loads(raw)
    except ValueError:
        data = {}
    if st != 200 or data.get("outputs") != {"echo": tag} or took > PROMPT_S:
        out.append(f"echo: {st} in {took:.2f} s {raw[:120]!r}")
    return out


def direct_problems(w, source=None):
    """Health straight to the socket from source: answered 200."""
    st, _, raw = fcgi_request(fcgi_addr(w), "GET", "/v1/health", timeout=WAIT_S,
                              source=source)
    return [] if st == 200 else [f"from {source or 'the default address'}: {st} {raw[:120]!r}"]


def refused_problems_direct(w, source=None):
    """A request straight to the socket from source: the connection is closed
    unanswered (not left open, not answered)."""
    try:
        with fcgi_connect(fcgi_addr(w), WAIT_S, source) as s:
            try:
                s.sendall(fcgi_encode("GET", "/v1/health"))
            except (ConnectionResetError, BrokenPipeError):
                return []
            if peer_closed(s, WAIT_S) is None:
                return [f"from {source}: not closed unanswered"]
            return []
    except OSError as e:
        return [f"from {source}: {e}"]


def fcgi_addr(w):
    """The worker's FastCGI socket, as fcgi_connect takes it."""
    return (w.tcp, w.fcgi_port) if w.tcp else f"{w.state}/fcgi.sock"


def log_text(w):
    with open(f"{w.state}/app.log", errors="replace") as f:
        return f.read()


def worker(binary, tcp, env=None, wrapper=()):
    return PlainWorker(binary, dict({"ARP_AUTH_PROFILE": "dev-insecure",
                                     "JARVIS_LOG_LEVEL": "info"}, **(env or {})), tcp=tcp,
                       wrapper=wrapper)


def started(r, w, what):
    if w.problem:
        r.check(f"{what}: spawn-fcgi and nginx start", [w.problem])
        w.print_log = True
    return not w.problem


def scenario_served(r, binary, tcp):
    """tcp None: the same on the Unix socket (the shipped way)."""
    where = f"TCP {tcp}" if tcp else "a Unix socket"
    with worker(binary, tcp) as w:
        if not started(r, w, where):
            return
        r.check(f"on {where}: health and an echo through nginx, and health straight to the "
                "socket", served_problems(w.port, "tcp-echo") + direct_problems(w))
        quiet = []
        try:
            for i in range(SILENT):
                s = fcgi_connect(fcgi_addr(w), WAIT_S)
                quiet.append(s)
                if i % 2:
                    s.sendall(b"\x01\x01\x00\x01")  # half a record header
            r.check(f"... {SILENT} peers silent or stalled mid-record (more than the worker's "
                    "threads) hold up nothing",
                    served_problems(w.port, "tcp-after-silent") + direct_problems(w))
            # The stalled ones are being read: a stop waits for them, each
            # read bounded (WK_READ_TIMEOUT_S). The silent ones wait in the
            # set, the stop for them WK_FRESH_WAIT_MS. On TCP one stalled
            # peer stays, so the bound itself is what ends the wait.
            keep = quiet[1:2] if tcp else []
            for s in quiet[1::2][len(keep):]:
                s.close()
            time.sleep(0.2)
            bound = STOP_S + (READ_TIMEOUT_S if keep else 0)
            t0 = time.monotonic()
            rc = w.stop(bound + WAIT_S)
            took = time.monotonic() - t0
            r.check(f"... SIGTERM with {SILENT // 2} silent peers connected"
                    f"{' and one stalled mid-record' if keep else ''}: the worker ends with "
                    f"status 0 within {bound:.0f} s",
                    [] if rc == 0 and took <= bound else [f"status {rc} after {took:.2f} s"])
        finally:
            for s in quiet:
                s.close()
        w.print_log = r.failed > 0


def scenario_allowlist(r, binary):
    with worker(binary, "127.0.0.1", {"FCGI_WEB_SERVER_ADDRS": " 127.0.0.2 "}) as w:
        if not started(r, w, "FCGI_WEB_SERVER_ADDRS"):
            return
        # Allowed, and silent: closed once it has waited WK_FRESH_TTL_MS.
        silent = fcgi_connect(fcgi_addr(w), WAIT_S, "127.0.0.2")
        t0 = time.monotonic()
        try:
            r.check("FCGI_WEB_SERVER_ADDRS=127.0.0.2: a peer from 127.0.0.2 is served",
                    direct_problems(w, source="127.0.0.2"))
            r.check("... one from 127.0.0.1 is closed unanswered, and so nginx's (502)",
                    refused_problems_direct(w, source="127.0.0.1") +
                    ([] if request(w.port, "GET", "/v1/health")[0] == 502
                     else ["nginx: not 502"]))
            burst = [p for _ in range(REFUSED)
                     for p in refused_problems_direct(w, source="127.0.0.1")]
            r.check(f"... the log counts refused peers ({REFUSED + 1} at least), a line at "
                    "the first, the rest in one more a second later",
                    burst[:3] + direct_problems(w, source="127.0.0.2") +
                    tally_problems(w, REFUSED_LINE, REFUSED + 1, "127.0.0.1"))
            gone = peer_closed(silent, WAIT_S) is not None
            took = time.monotonic() - t0
            r.check(f"... an allowed peer that sends nothing is closed after {READ_TIMEOUT_S} s, "
                    "and counted",
                    ([] if gone and READ_TIMEOUT_S - 1 <= took <= READ_TIMEOUT_S + STOP_S
                     else [f"closed: {gone}, after {took:.1f} s"]) +
                    tally_problems(w, SILENT_LINE, 1, f"no request within {READ_TIMEOUT_S} s"))
        finally:
            silent.close()
        w.print_log = r.failed > 0


def tally_problems(w, line, at_least, last):
    """The log counts at least at_least events in its `line` lines (waiting
    up to WAIT_S for the line owed), two lines at most, each with detail last."""
    deadline = time.monotonic() + WAIT_S
    while True:
        lines = [(int(n), d) for n, d in line.findall(log_text(w))]
        if sum(n for n, _ in lines) >= at_least or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    if sum(n for n, _ in lines) < at_least or len(lines) > 2 or \
            any(d != last for _, d in lines):
        return [f"log lines (count, last): {lines}"]
    return []


def scenario_flood(r, binary):
    """More silent peers than may wait: the oldest are closed at once."""
    prlimit = shutil.which("prlimit")
    if prlimit is None:
        print("SKIP a flood of silent peers: prlimit (util-linux) is missing")
        return
    with worker(binary, "127.0.0.1", wrapper=[prlimit, f"--nofile={FEW_FDS}"]) as w:
        if not started(r, w, "a worker with few fds"):
            return
        socks = []
        try:
            # One silent peer, then more connections than may wait that
            # each send late (so they wait a moment, then are served): only
            # connections still waiting count, so the silent one stays.
            first = fcgi_connect(fcgi_addr(w), WAIT_S)
            socks.append(first)
            late = []
            for _ in range(FLOOD):
                with fcgi_connect(fcgi_addr(w), WAIT_S) as s:
                    time.sleep(0.05)
                    late.append(fcgi_exchange(s, "GET", "/v1/health")[0])
            r.check(f"with {FEW_FDS} fds: one silent peer, then {FLOOD} connections that send "
                    "late are served, and the silent one still waits",
                    ([] if late == [200] * FLOOD else [f"statuses {late}"]) +
                    ([] if peer_closed(first, 0) is None else ["the silent peer was closed"]))
            first.close()
            socks = []
            for _ in range(FLOOD):
                socks.append(fcgi_connect(fcgi_addr(w), WAIT_S))
                time.sleep(0.02)  # accepted in this order
            first = [peer_closed(s, WAIT_S) for s in socks[:FLOOD - FEW_FRESH]]
            r.check(f"with {FEW_FDS} fds, {FLOOD} silent peers: the {FLOOD - FEW_FRESH} oldest "
                    f"are closed at once, and counted",
                    ([] if all(t is not None and t < STOP_S for t in first)
                     else [f"closed after {first}"]) +
                    tally_problems(w, SILENT_LINE, FLOOD - FEW_FRESH,
                                   f"{FEW_FRESH} others waiting"))
            r.check(f"... the {FEW_FRESH} newest still wait, and health and an echo answer",
                    [f"peer {i} closed" for i, s in enumerate(socks[FLOOD - FEW_FRESH:])
                     if peer_closed(s, 0) is not None] + served_problems(w.port, "flood-echo"))
        finally:
            for s in socks:
                s.close()
        w.print_log = r.failed > 0


def scenario_ipv6(r, binary):
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
    except OSError:
        print("SKIP IPv6: ::1 is not available on this machine")
        return
    with worker(binary, "::1", {"FCGI_WEB_SERVER_ADDRS": "127.0.0.1"}) as w:
        if started(r, w, "TCP ::1"):
            r.check("on TCP ::1 with FCGI_WEB_SERVER_ADDRS=127.0.0.1: a peer from ::1 is "
                    "closed unanswered (libfcgi let every IPv6 peer in)",
                    refused_problems_direct(w) + tally_problems(w, REFUSED_LINE, 1, "::1"))
        w.print_log = r.failed > 0
    with worker(binary, "::1", {"FCGI_WEB_SERVER_ADDRS": "127.0.0.1,::1"}) as w:
        if started(r, w, "TCP ::1"):
            r.check("... with 127.0.0.1,::1 it is served, and through nginx",
                    direct_problems(w) + served_problems(w.port, "tcp6-echo"))
        w.print_log = r.failed > 0


def scenario_bad_list(r, binary):
    with worker(binary, "127.0.0.1", {"FCGI_WEB_SERVER_ADDRS": "127.0.0.1,localhost"}) as w:
        try:
            rc = w.proc.wait(WAIT_S)
        except Exception:  # still running
            rc = None
        want = ("FCGI_WEB_SERVER_ADDRS: cannot read 'localhost' (comma-separated IPv4 or "
                "IPv6 addresses, at most 64 of each)")
        r.check("FCGI_WEB_SERVER_ADDRS with a name in it: the worker does not start (status 2) "
                "and says why", ([] if rc == 2 else [f"status {rc}"]) +
                ([] if want in log_text(w) else ["the log does not say why"]))
        w.print_log = r.failed > 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--binary", required=True)
    args = ap.parse_args()
    b = os.path.abspath(args.binary)
    r = Checks()
    r.run_scenarios((("served over TCP", lambda: scenario_served(r, b, "127.0.0.1")),
                     ("served on a Unix socket, one worker", lambda: scenario_served(r, b, None)),
                     ("FCGI_WEB_SERVER_ADDRS", lambda: scenario_allowlist(r, b)),
                     ("IPv6", lambda: scenario_ipv6(r, b)),
                     ("a flood of silent peers", lambda: scenario_flood(r, b)),
                     ("a list that is not one", lambda: scenario_bad_list(r, b))))
    return r.close()


if __name__ == "__main__":
    sys.exit(main())
