#!/usr/bin/python3
"""Run inside tests/ops/systemd_boot.sh's namespaces, where systemd is PID 1,
the package's files are in place and nginx serves the packaged site on
127.0.0.1:8082 in front of the packaged, hardened units. Checks that the
sandbox is on and breaks nothing:

- the workers run as a dynamic user with no capability, no new privileges,
  a seccomp filter, and /proc mounted hidepid=invisible,subset=pid; as that
  user, a worker's namespaces show the other worker's /proc/<pid>/stat (the
  run table's liveness check) and hide PID 1;
- every node type, web.fetch over loopback (AF_INET), cancels that cross
  workers (pidfd_send_signal), a kill -9 mid-run (respawn, slot reclaimed);
- with strace present: the system calls of multiwatch and the workers under
  load and through a respawn, none refused (EPERM) by the filter;
- journal priorities (warn 4, info 6, error 3) and SyslogIdentifier;
- stops are prompt (multiwatch alone gets TERM: KillMode=mixed);
- the postinst's restart of an upgrade under load loses no request, and a
  running execute finishes;
- a bad variable fails ExecStartPre with one error line per start, the unit
  ends failed (no respawn loop), and a restart after the fix serves again;
- prerm stops the units; a fresh postinst starts nothing.

Prints PASS/FAIL lines and "<n> passed, <n> failed"; exit 1 on a failure.
"""
import http.client
import http.server
import json
import os
import re
import shutil
import signal
import socketserver
import subprocess
import sys
import threading
import time

H = ("127.0.0.1", 8082)
UNIT = "jarvis-atomic-executor.service"
SOCKET = "jarvis-atomic-executor.socket"
DEFAULTS = "/etc/default/jarvis-atomic-executor"
CONTROL = "/var/lib/jarvis-boot"
passed = failed = 0


def check(name, problems):
    global passed, failed
    if problems:
        failed += 1
        print(f"FAIL {name}: " + "; ".join(str(p) for p in problems))
    else:
        passed += 1
        print(f"PASS {name}")


def sh(*args, timeout=120):
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout)


def req(method, path, body=None, timeout=60):
    c = http.client.HTTPConnection(*H, timeout=timeout)
    data = None if body is None else json.dumps(body)
    c.request(method, path, body=data,
              headers={"Content-Type": "application/json"} if data else {})
    r = c.getresponse()
    raw = r.read()
    c.close()
    return r.status, (json.loads(raw) if raw else None)


def ex(nid, node, inputs, **extra):
    return req("POST", "/v1/atomic-node-runs:execute",
               {"node_run_id": nid, "run_id": "boot",
                "node_type_ref": {"node_type_id": node, "version": "0.3.8"},
                "inputs": inputs, **extra})


def workers():
    out = sh("pgrep", "-f", "^/usr/sbin/jarvis-atomic-executor").stdout
    return sorted(int(p) for p in out.split())


def wait_for(pred, timeout_s):
    end = time.time() + timeout_s
    while time.time() < end:
        if pred():
            return True
        time.sleep(0.2)
    return pred()


def serving():
    try:
        return req("GET", "/v1/health", timeout=5)[0] == 200 and len(workers()) == 2
    except OSError:
        return False


def journal(since):
    out = sh("journalctl", "-u", UNIT, "--since", since, "-o", "json", "--no-pager").stdout
    return [json.loads(ln) for ln in out.splitlines() if ln.strip()]


def now_stamp():
    return time.strftime("%Y-%m-%d %H:%M:%S")


class Quiet(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = b"x" * 5000
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *a):
        pass


def check_sandbox():
    ws = workers()
    p = [] if len(ws) == 2 else [f"workers {ws}"]
    for w in ws:
        st = open(f"/proc/{w}/status").read()
        f = dict(ln.split(":\t", 1) for ln in st.splitlines() if ":\t" in ln)
        if f["Uid"].split()[0] == "0" or f["CapEff"].strip("0\n") or f["CapBnd"].strip("0\n"):
            p.append(f"{w}: uid {f['Uid']}, CapEff {f['CapEff']}, CapBnd {f['CapBnd']}")
        if f["NoNewPrivs"].strip() != "1" or f["Seccomp"].strip() != "2":
            p.append(f"{w}: NoNewPrivs {f['NoNewPrivs']} Seccomp {f['Seccomp']}")
        mounts = [ln for ln in open(f"/proc/{w}/mountinfo") if " /proc " in ln]
        if not mounts or "hidepid=invisible" not in mounts[0] or "subset=pid" not in mounts[0]:
            p.append(f"{w}: /proc mount {mounts}")
    check("the workers: dynamic user, no capability, seccomp, hidepid=invisible,subset=pid", p)
    if len(ws) != 2:
        return
    a, b = ws
    uid = os.stat(f"/proc/{a}").st_uid
    # As the worker's user, inside its own namespaces (user namespace included).
    as_worker = ["nsenter", "-t", str(a), "-m", "-U", "-p", "-r", "-w", "setpriv",
                 f"--reuid={uid}", f"--regid={uid}", "--keep-groups", "--inh-caps=-all"]
    r = sh(*as_worker, "cat", f"/proc/{b}/stat")
    hidden = sh(*as_worker, "cat", "/proc/1/stat")
    sysfile = sh(*as_worker, "cat", "/proc/meminfo")
    check("as the service user: the other worker's /proc/<pid>/stat is readable, PID 1 and "
          "/proc/meminfo are not",
          ([] if r.returncode == 0 and r.stdout.startswith(f"{b} (") else [f"stat: {r.stderr}"]) +
          ([] if hidden.returncode != 0 else ["PID 1 is visible"]) +
          ([] if sysfile.returncode != 0 else ["/proc/meminfo is visible"]))


def check_nodes():
    p = []
    for nid, node, inputs, ok in [
            ("e1", "jarvis.core.echo", {"echo": "pong"}, lambda o: o == {"echo": "pong"}),
            ("u1", "jarvis.core.uuid4", {}, lambda o: len(o["uuid4"]) == 36),
            ("t1", "jarvis.core.time.now", {}, lambda o: o["time"].endswith("+00:00")),
            ("h1", "jarvis.core.hash.sha256", {"text": "abc"},
             lambda o: o["sha256"].startswith("ba7816bf")),
            ("z1", "jarvis.core.sleep", {"seconds": 0.01}, lambda o: "slept_seconds" in o)]:
        s, b = ex(nid, node, inputs)
        if s != 200 or b.get("state") != "succeeded" or not ok(b["outputs"]):
            p.append(f"{node}: {s} {b}")
    srv = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Quiet)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    s, b = ex("f1", "jarvis.web.fetch", {"url": f"http://127.0.0.1:{srv.server_address[1]}/"})
    if s != 200 or b.get("state") != "succeeded" or b["outputs"]["status_code"] != 200:
        p.append(f"web.fetch: {s} {b}")
    srv.shutdown()
    check("every node type, web.fetch over loopback", p)


def check_cancels():
    since = now_stamp()
    p = []
    for i in range(6):
        res = {}
        t = threading.Thread(target=lambda: res.update(r=ex(f"c{i}", "jarvis.core.sleep",
                                                            {"seconds": 20})))
        t.start()
        time.sleep(0.5)
        dup = ex(f"c{i}", "jarvis.core.echo", {})[0]
        t0 = time.time()
        cs = req("POST", f"/v1/atomic-node-runs/c{i}:cancel")[0]
        t.join(15)
        s, b = res.get("r", (None, None))
        if cs != 204 or s != 200 or (b or {}).get("state") != "canceled" or dup != 409 \
                or time.time() - t0 > 10:
            p.append(f"#{i}: cancel {cs}, execute {s} {b}, duplicate {dup}")
    crossed = 0
    for e in journal(since):
        m = re.search(r"pid=(\d+) .*reason=\"cancel sent to worker (\d+)\"", e.get("MESSAGE", ""))
        if m and m.group(1) != m.group(2):
            crossed += 1
    if crossed == 0:
        p.append("no cancel crossed workers")
    check(f"cancels: 204, canceled at once, 409 meanwhile ({crossed} of 6 crossed workers)", p)


def check_kill():
    res = {}
    t = threading.Thread(target=lambda: res.update(r=ex("k1", "jarvis.core.sleep",
                                                        {"seconds": 30})))
    t.start()
    wait_for(lambda: req("GET", "/v1/health")[1]["checks"][0]["details"]["running"] == 1, 10)
    before = workers()
    for w in before:  # the owner is the one whose kill fails the execute
        os.kill(w, signal.SIGKILL)
        t.join(5)
        if not t.is_alive():
            break
    t.join(15)
    p = []
    if not wait_for(serving, 15):
        p.append(f"not serving again: workers {workers()}")
    det = req("GET", "/v1/health")[1]["checks"][1]["details"]
    if det["running"] or det["queued"]:
        p.append(f"slots left: {det}")
    if res.get("r", (None,))[0] != 502:
        p.append(f"the killed run answered {res.get('r')}")
    check("kill -9 of the run's worker: 502, respawned, slot reclaimed", p)


def check_syscalls():
    strace = shutil.which("strace")
    if not strace:
        print("SKIP system calls: strace is not installed")
        return
    mw = sh("pgrep", "-x", "multiwatch").stdout.split()
    trace = "/run/jarvis-boot.trace"
    args = [strace, "-f", "-qq", "-o", trace]
    for p in mw + [str(w) for w in workers()]:
        args += ["-p", p]
    st = subprocess.Popen(args)
    time.sleep(2)
    srv = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Quiet)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{srv.server_address[1]}/"

    def load(k):
        for i in range(40):
            ex(f"l{k}-{i}", "jarvis.core.echo", {"a": [1, 2]})
            ex(f"f{k}-{i}", "jarvis.web.fetch", {"url": url})
            ex(f"h{k}-{i}", "jarvis.core.hash.sha256", {"text": "x" * 300000})
            req("GET", "/v1/health")

    ts = [threading.Thread(target=load, args=(k,)) for k in range(4)]
    for t in ts:
        t.start()
    ex("dl", "jarvis.core.sleep", {"seconds": 5},
       constraints={"budgets": {"max_wall_time_ms": 300}})
    for i in range(4):  # cancels, some across workers (pidfd_open, pidfd_send_signal)
        res = {}
        t = threading.Thread(target=lambda: res.update(r=ex(f"sc{i}", "jarvis.core.sleep",
                                                            {"seconds": 10})))
        t.start()
        time.sleep(0.3)
        req("POST", f"/v1/atomic-node-runs/sc{i}:cancel")
        t.join(15)
    os.kill(workers()[0], signal.SIGTERM)  # a respawn: start-up under the filter
    for t in ts:
        t.join(120)
    wait_for(serving, 15)
    for i in range(10):
        ex(f"after-{i}", "jarvis.core.uuid4", {})
    st.send_signal(signal.SIGINT)
    st.wait(30)
    srv.shutdown()
    lines = open(trace).read().splitlines()
    names = sorted({m.group(1) for ln in lines
                    if (m := re.match(r"\d+ +(?:<\.\.\. )?([a-z0-9_]+)[( ]", ln))})
    refused = [ln for ln in lines if "EPERM" in ln]
    execs = sum(1 for ln in lines if "execve(" in ln)
    print("system calls seen:", " ".join(names))
    check(f"system calls under load and through a respawn ({len(names)} kinds, "
          f"{execs} execve): none refused with EPERM",
          refused[:5] + ([] if execs else ["no respawn traced"]))


def check_journal(since):
    p = []
    seen = {}
    for e in journal(since):
        msg = e.get("MESSAGE", "")
        if not isinstance(msg, str):
            continue
        if e.get("SYSLOG_IDENTIFIER") != "jarvis-atomic-executor":
            p.append(f"identifier {e.get('SYSLOG_IDENTIFIER')}")
        m = re.search(r"Z (INFO|WARN|ERROR|DEBUG) pid=", msg)
        if m:
            seen.setdefault(m.group(1), set()).add(e.get("PRIORITY"))
        if msg.startswith("<"):
            p.append(f"prefix left in the message: {msg[:60]}")
    want = {"INFO": {"6"}, "WARN": {"4"}, "ERROR": {"3"}}
    for level, prio in want.items():
        if seen.get(level) != prio:
            p.append(f"{level} lines have priorities {seen.get(level)}")
    check("journal: priorities info 6, warn 4, error 3; SyslogIdentifier", sorted(set(p))[:5])


def check_stops():
    p = []
    for i in range(3):
        t0 = time.time()
        sh("systemctl", "stop", UNIT, timeout=90)
        took = time.time() - t0
        if took > 20:
            p.append(f"stop #{i} took {took:.1f} s")
        if workers():
            p.append(f"workers left after stop #{i}: {workers()}")
        sh("systemctl", "start", SOCKET, UNIT)
        if not wait_for(serving, 20):
            p.append(f"not serving after start #{i}")
    check("stops are prompt (TERM to multiwatch alone), starts serve", p)


def check_upgrade_restart():
    before = sh("pgrep", "-x", "multiwatch").stdout.split()
    res = {}
    t = threading.Thread(target=lambda: res.update(r=ex("up-long", "jarvis.core.sleep",
                                                        {"seconds": 3})))
    t.start()
    time.sleep(0.5)
    r = threading.Thread(target=lambda: res.update(
        post=sh("sh", f"{CONTROL}/postinst", "configure", "0.0.9-1", timeout=120)))
    r.start()
    codes = {}
    end = time.time() + 6
    i = 0
    while time.time() < end:
        i += 1
        s = ex(f"up-{i}", "jarvis.core.echo", {"echo": "x"})[0]
        codes[s] = codes.get(s, 0) + 1
        time.sleep(0.05)
    t.join(30)
    r.join(120)
    after = sh("pgrep", "-x", "multiwatch").stdout.split()
    p = []
    if res["post"].returncode != 0:
        p.append(f"postinst: {res['post'].returncode} {res['post'].stderr}")
    if before == after:
        p.append("the pool was not restarted")
    s, b = res.get("r", (None, None))
    if s != 200 or b.get("state") != "succeeded":
        p.append(f"the running execute: {s} {b}")
    if set(codes) != {200}:
        p.append(f"answers during the restart: {codes}")
    check(f"upgrade (postinst configure): restarted, the running execute finished, "
          f"{sum(codes.values())} requests during it all 200", p)


def check_bad_config():
    since = now_stamp()
    original = open(DEFAULTS).read()
    with open(DEFAULTS, "a") as f:
        f.write("ARP_AUTH_PROFILE=bogus\n")
    sh("systemctl", "restart", UNIT, timeout=120)
    wait_for(lambda: sh("systemctl", "is-failed", UNIT).stdout.strip() == "failed", 30)
    time.sleep(2)
    lines = [e for e in journal(since) if "cannot start" in str(e.get("MESSAGE", ""))]
    state = sh("systemctl", "is-failed", UNIT).stdout.strip()
    p = [] if state == "failed" else [f"unit state {state}"]
    if not 1 <= len(lines) <= 6:
        p.append(f"{len(lines)} 'cannot start' lines")
    if any(e.get("PRIORITY") != "3" for e in lines):
        p.append("not at priority 3")
    if workers():
        p.append(f"workers running: {workers()}")
    if lines and "Invalid ARP_AUTH_PROFILE: 'bogus'" not in lines[0]["MESSAGE"]:
        p.append(lines[0]["MESSAGE"])
    with open(DEFAULTS, "w") as f:
        f.write(original)
    sh("systemctl", "restart", SOCKET, UNIT, timeout=120)
    if not wait_for(serving, 20):
        p.append("not serving after the fix and a restart")
    check(f"a bad variable: ExecStartPre fails ({len(lines)} starts, then the start limit), "
          "one error line each, no worker; fixed, it serves", p)


def check_remove():
    r = sh("sh", f"{CONTROL}/prerm", "remove")
    active = sh("systemctl", "is-active", UNIT, SOCKET).stdout.split()
    p = [] if r.returncode == 0 and active == ["inactive", "inactive"] else [f"{r} {active}"]
    r = sh("sh", f"{CONTROL}/postinst", "configure", "")
    active = sh("systemctl", "is-active", UNIT, SOCKET).stdout.split()
    if r.returncode != 0 or active != ["inactive", "inactive"]:
        p.append(f"fresh postinst: {r.returncode} {active}")
    check("prerm remove stops both units; a fresh install's postinst starts nothing", p)


def main():
    since = now_stamp()
    if not wait_for(serving, 60):
        print(sh("systemctl", "status", "--no-pager", UNIT, SOCKET, "nginx").stdout)
        check("the pool serves through nginx", ["not serving"])
        return 1
    check_sandbox()
    check_nodes()
    check_cancels()
    check_kill()
    check_syscalls()
    check_stops()
    check_upgrade_restart()
    check_bad_config()
    check_journal(since)
    check_remove()
    print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
