#!/usr/bin/python3
"""jarvis-atomic-executor --check-config, the systemd unit's ExecStartPre, run
as the unit runs it: a good configuration exits 0 with one "configuration ok"
line; each bad one exits non-zero with one line naming the reason, as a
worker would log it. Nothing is created, fetched or started: the run table
stays missing, a loopback issuer sees no connection, and (where strace is
installed) no thread or child is ever made. With JOURNAL_STREAM naming its
stderr, the lines carry sd-daemon priorities ("<3>", "<6>").

  tests/ops/check_config_e2e.py --binary PATH

Prints PASS/FAIL per check and "<n> passed, <n> failed"; exit 1 on a failure.
Loopback only; every run is bounded by a timeout.
"""
import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "pylib"))
from jarvis_pool import Checks  # noqa: E402

TIMEOUT_S = 60


def run(binary, env, args=(), stderr_path=None, journal=False, prefix=()):
    """(exit status, stdout + stderr lines). stderr goes to a file of ours
    so JOURNAL_STREAM can name it; fd 0 is /dev/null, not a socket."""
    with open(stderr_path, "w+") as err:
        full = {"PATH": "/usr/bin:/bin", "ASAN_OPTIONS": os.environ.get("ASAN_OPTIONS", "")}
        full.update(env)
        if journal:
            st = os.fstat(err.fileno())
            full["JOURNAL_STREAM"] = f"{st.st_dev}:{st.st_ino}"
        out = subprocess.run([*prefix, binary, "--check-config", *args], env=full,
                             stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err,
                             timeout=TIMEOUT_S, text=True)
        err.seek(0)
        lines = [ln for ln in (out.stdout + err.read()).splitlines() if ln]
    return out.returncode, lines


def one_line(name, rc, lines, want_rc, want_text):
    problems = []
    if rc != want_rc:
        problems.append(f"exit {rc}, want {want_rc}")
    if len(lines) != 1:
        problems.append(f"{len(lines)} lines: {lines}")
    elif want_text not in lines[0]:
        problems.append(f"'{want_text}' not in: {lines[0]}")
    return problems


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", required=True)
    binary = ap.parse_args().binary
    c = Checks()
    tmp = tempfile.mkdtemp(prefix="jarvis-check-config-")
    try:
        state = os.path.join(tmp, "state")
        os.mkdir(state, 0o700)
        table = os.path.join(state, "runtable")
        errf = os.path.join(tmp, "stderr")
        good = {"ARP_AUTH_PROFILE": "dev-insecure", "JARVIS_RUN_TABLE": table,
                "JARVIS_WORKERS": "4"}

        rc, lines = run(binary, good, stderr_path=errf)
        p = one_line("good", rc, lines, 0, "configuration ok:")
        if lines and "auth disabled" not in lines[0]:
            p.append(f"auth mode not named: {lines[0]}")
        if os.path.exists(table):
            p.append("the run table was created")
        c.check("a good configuration: exit 0, one line, nothing created", p)

        # JSON log lines: the one line is a JSON object, good or bad.
        p = []
        for env, want_rc, level, text in (
                (dict(good, JARVIS_LOG_FORMAT="json"), 0, "INFO", "configuration ok:"),
                (dict(good, JARVIS_LOG_FORMAT="json", ARP_AUTH_PROFILE="bogus"), 1, "ERROR",
                 "cannot start: Invalid ARP_AUTH_PROFILE")):
            rc, lines = run(binary, env, stderr_path=errf)
            p += one_line(f"json {level}", rc, lines, want_rc, text)
            try:
                obj = json.loads(lines[0]) if lines else {}
                if obj.get("level") != level or not obj.get("msg", "").startswith(text):
                    p.append(f"fields: {obj}")
            except ValueError:
                p.append(f"not JSON: {lines[0]}")
        c.check("JARVIS_LOG_FORMAT=json: the line is one JSON object", p)

        cases = [
            ("a bad JARVIS_ variable", dict(good, JARVIS_MAX_BODY_BYTES="lots"), (), 2,
             "max body bytes must be an integer"),
            ("a bad flag value", good, ("--run-table-slots", "0"), 2,
             "run table slots must be an integer"),
            ("a bad JARVIS_LOG_FORMAT", dict(good, JARVIS_LOG_FORMAT="yaml"), (), 2,
             "log format must be logfmt or json, not 'yaml'"),
            ("an unknown auth profile", dict(good, ARP_AUTH_PROFILE="bogus"), (), 1,
             "cannot start: Invalid ARP_AUTH_PROFILE: 'bogus'"),
            ("an untrusted key source", {"ARP_AUTH_MODE": "required",
                                         "ARP_AUTH_JWKS_URI": "http://id.example/certs",
                                         "JARVIS_RUN_TABLE": table}, (), 1,
             "cannot start: http://id.example/certs: plain http keys only from a loopback"),
            ("FCGI_WEB_SERVER_ADDRS with a name in it",
             dict(good, FCGI_WEB_SERVER_ADDRS="127.0.0.1, web1"), (), 2,
             "FCGI_WEB_SERVER_ADDRS: cannot read 'web1'"),
            ("a relative run table path", dict(good, JARVIS_RUN_TABLE="runtable"), (), 2,
             "run table must be an absolute path"),
            ("a run table folder that cannot be made",
             dict(good, JARVIS_RUN_TABLE=os.path.join(tmp, "no", "such", "runtable")), (), 1,
             "is missing and cannot be made in"),
        ]
        for name, env, args, want_rc, text in cases:
            rc, lines = run(binary, env, args, stderr_path=errf)
            c.check(name, one_line(name, rc, lines, want_rc, text))

        os.chmod(state, 0o777)
        rc, lines = run(binary, good, stderr_path=errf)
        os.chmod(state, 0o700)
        c.check("a run table folder others can write to",
                one_line("open folder", rc, lines, 1, "that no other user can write to"))

        with open(os.open(table, os.O_WRONLY | os.O_CREAT, 0o600), "wb") as f:
            f.write(b"\0" * 4096)
        rc, lines = run(binary, good, stderr_path=errf)
        c.check("a run table left from another slot count",
                one_line("old table", rc, lines, 1, "has another size than 1024 slots need"))
        os.unlink(table)

        # A loopback issuer is a trusted source, but nothing is fetched.
        with socket.socket() as srv:
            srv.bind(("127.0.0.1", 0))
            srv.listen(4)
            srv.setblocking(False)
            issuer = f"http://127.0.0.1:{srv.getsockname()[1]}/realms/x"
            rc, lines = run(binary, {"ARP_AUTH_PROFILE": "enterprise", "ARP_AUTH_ISSUER": issuer,
                                     "JARVIS_RUN_TABLE": table}, stderr_path=errf)
            p = one_line("no fetch", rc, lines, 0, "auth required")
            try:
                srv.accept()
                p.append("the issuer was contacted")
            except BlockingIOError:
                pass
        c.check("required auth: key sources checked, nothing fetched", p)

        rc, lines = run(binary, good, stderr_path=errf, journal=True)
        p = one_line("journal ok", rc, lines, 0, "configuration ok")
        if lines and not lines[0].startswith("<6>"):
            p.append(f"no <6> prefix: {lines[0]}")
        rc, lines = run(binary, dict(good, ARP_AUTH_PROFILE="bogus"), stderr_path=errf,
                        journal=True)
        p += one_line("journal error", rc, lines, 1, "cannot start")
        if lines and not lines[0].startswith("<3>"):
            p.append(f"no <3> prefix: {lines[0]}")
        rc, lines = run(binary, dict(good, JARVIS_LOG_LEVEL="loud"), stderr_path=errf,
                        journal=True)
        if not lines or not lines[0].startswith("<3>jarvis-atomic-executor: log level"):
            p.append(f"a bad variable's line has no <3> prefix: {lines}")
        c.check("under the journal: sd-daemon priority prefixes", p)

        strace = shutil.which("strace")
        if strace:
            trace = os.path.join(tmp, "trace")
            # LeakSanitizer (a sanitizer build) cannot run under ptrace, and
            # its exit-time checker is the one thread it would make.
            rc, lines = run(binary, dict(good, ASAN_OPTIONS="detect_leaks=0"), stderr_path=errf,
                            prefix=(strace, "-f", "-qq", "-o", trace,
                                    "-e", "trace=clone,clone3,fork,vfork,bind,connect,listen"))
            calls = [ln for ln in open(trace).read().splitlines()
                     if "+++" not in ln and "---" not in ln]
            c.check("no thread, child, bind or connect (strace)",
                    ([] if rc == 0 else [f"exit {rc}: {lines}"]) + calls)
        else:
            print("SKIP no thread, child, bind or connect: strace is not installed")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return c.close()


if __name__ == "__main__":
    sys.exit(main())
