#!/usr/bin/python3
"""scripts/run-local as the reference's dev runner: --host and its refusal
to listen beyond loopback while auth is off, and the .env.local / .env
settings files.

- Refusals never bind anything: run-local checks the address before it
  builds, starts or even creates its state folder, and this test checks that
  the folder was not made and the port stays closed. Where a non-loopback
  address must be let through (auth on, or --i-know-auth-is-off), the start
  is stopped right after the check by a worker binary that does not exist,
  so nothing is ever served beyond loopback.
- --host 127.0.0.2 (loopback, not the default) serves there and only there.
- Settings files: a fake repository root (scripts/run-local and deploy/
  linked to the real ones) holds .env.local and .env; the pool's workers'
  own environment (/proc/<pid>/environ) and /v1/health show what was read:
  comments, `export`, quotes, inline comments, nothing run by a shell, the
  environment winning over the file, .env.local winning over .env, .env
  alone, JARVIS_PORT from the file, --no-env-file.

  tests/e2e_run_local/run_local_e2e.py --binary PATH

Prints PASS/FAIL per check and "<n> passed, <n> failed"; exit 1 on a failure.
Loopback only; every wait is bounded.
"""
import argparse
import json
import os
import pathlib
import shutil
import socket
import subprocess
import sys
import tempfile
import urllib.request

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "pylib"))
from jarvis_pool import REPO, RUNNER, Checks, children, free_port  # noqa: E402

REFUSAL = "refusing to listen on {host} with auth off"
NO_BINARY = "no worker binary at /nonexistent/jarvis"
START_TIMEOUT_S = 180


def base_env():
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("ARP_AUTH_") and not k.startswith("JARVIS_")}
    env["no_proxy"] = "127.0.0.1,127.0.0.2"
    return env


def run_local(args, env, runner=RUNNER):
    return subprocess.run([str(runner), *args], capture_output=True, text=True, env=env,
                          timeout=START_TIMEOUT_S)


def port_closed(host, port):
    with socket.socket() as s:
        s.settimeout(5)
        return s.connect_ex((host, port)) != 0


def health(url):
    try:
        with urllib.request.urlopen(url + "/v1/health", timeout=30) as r:
            return json.loads(r.read())
    except OSError:
        return None


def check_refusals(r, work):
    """Non-loopback addresses with auth off: refused before anything starts."""
    cases = [
        ("no ARP_AUTH_* (run-local's dev-insecure)", "0.0.0.0", {}),
        ("IPv6 any", "::", {}),
        ("a LAN address", "10.1.2.3", {}),
        ("ARP_AUTH_PROFILE=Dev_Insecure", "0.0.0.0", {"ARP_AUTH_PROFILE": "Dev_Insecure"}),
        ("ARP_AUTH_MODE=optional", "0.0.0.0",
         {"ARP_AUTH_PROFILE": "enterprise", "ARP_AUTH_MODE": " Optional "}),
        ("ARP_AUTH_MODE=disabled over an enterprise profile", "0.0.0.0",
         {"ARP_AUTH_PROFILE": "enterprise", "ARP_AUTH_MODE": "disabled"}),
    ]
    for name, host, auth in cases:
        state = os.path.join(work, "never-made")
        port = free_port()
        out = run_local(["start", "--daemon", "--no-build", "--no-env-file", "--binary",
                         "/nonexistent/jarvis", "--host", host, "--port", str(port),
                         "--state-dir", state], dict(base_env(), **auth))
        problems = [] if out.returncode == 1 else [f"exit {out.returncode}"]
        if REFUSAL.format(host=host) not in out.stderr or "--i-know-auth-is-off" not in out.stderr:
            problems.append(f"stderr {out.stderr!r}")
        if os.path.exists(state):
            problems.append("the state folder was made")
        if not port_closed("127.0.0.1", port):
            problems.append("the port is open")
        r.check(f"--host {host} refused with auth off: {name}", problems)

    for name, args, auth, want in [
        ("auth on: the address is let through", [], {"ARP_AUTH_PROFILE": "enterprise"}, []),
        ("--i-know-auth-is-off: let through with a warning", ["--i-know-auth-is-off"], {},
         ["WARNING: listening on 0.0.0.0 with auth OFF"]),
    ]:
        out = run_local(["start", "--daemon", "--no-build", "--no-env-file", "--binary",
                         "/nonexistent/jarvis", "--host", "0.0.0.0", "--port", str(free_port()),
                         "--state-dir", os.path.join(work, "through")] + args,
                        dict(base_env(), **auth))
        problems = [] if out.returncode == 1 and NO_BINARY in out.stderr and "refusing" \
            not in out.stderr else [f"exit {out.returncode}: {out.stderr!r}"]
        problems += [f"no {w!r}" for w in want if w not in out.stderr]
        r.check(f"--host 0.0.0.0, {name}", problems)

    for host in ("example.com", "300.1.2.3", "127.0.0"):
        out = run_local(["start", "--no-build", "--no-env-file", "--host", host,
                         "--state-dir", os.path.join(work, "never-made")], base_env())
        r.check(f"--host {host}: not an address", [] if out.returncode == 1
                and f"bad host '{host}'" in out.stderr else [f"{out.returncode} {out.stderr!r}"])


def check_loopback_host(r, binary, work):
    state, port = os.path.join(work, "host-state"), free_port()
    try:
        out = run_local(["start", "--daemon", "--no-build", "--no-env-file", "--binary", binary,
                         "--workers", "1", "--host", "127.0.0.2", "--port", str(port),
                         "--state-dir", state], base_env())
        h = health(f"http://127.0.0.2:{port}")
        r.check("--host 127.0.0.2 serves there, and not on 127.0.0.1",
                [] if out.returncode == 0 and f"serving http://127.0.0.2:{port}" in out.stdout
                and h is not None and h.get("status") == "ok" and port_closed("127.0.0.1", port)
                else [f"exit {out.returncode}: {out.stdout!r} {out.stderr!r}", f"health {h}"])
    finally:
        run_local(["stop", "--state-dir", state], base_env())


def fake_root(work):
    root = pathlib.Path(work, "repo")
    (root / "scripts").mkdir(parents=True)
    (root / "scripts/run-local").symlink_to(RUNNER)
    (root / "deploy").symlink_to(REPO / "deploy")
    return root


def worker_env(state):
    """The environment of one of the pool's workers."""
    pool = int(pathlib.Path(state, "pool.pid").read_text())
    kids = children(pool)
    if not kids:
        return {}
    raw = pathlib.Path(f"/proc/{kids[0]}/environ").read_bytes()
    return dict(kv.split("=", 1) for kv in raw.decode().split("\0") if "=" in kv)


def start_fake(root, binary, env, state, port=None):
    args = ["start", "--daemon", "--no-build", "--binary", binary, "--workers", "1",
            "--state-dir", state]
    if port is not None:
        args += ["--port", str(port)]
    return run_local(args, env, runner=root / "scripts/run-local")


def check_env_files(r, binary, work):
    root = fake_root(work)
    marker = pathlib.Path(work, "shell-ran")
    (root / ".env.local").write_text(f"""# settings for a local run
  # an indented comment

export JARVIS_EXECUTE_SLOTS=3
JARVIS_RUN_TABLE_SLOTS="77"
JARVIS_LOG_LEVEL=debug   # an inline comment
JARVIS_DEFAULT_TIMEOUT_SECS='12.5'
JARVIS_TEST_NOT_RUN=$(touch {marker})
JARVIS_TEST_NOT_RUN2=`touch {marker}` ; touch {marker}
JARVIS_TEST_SPACES = a b c
JARVIS_MAX_CONCURRENCY=
JARVIS_TEST_ONLY_COMMENT=    # as .env.example's JARVIS_WORKERS line, uncommented
""")
    (root / ".env").write_text("JARVIS_RUN_TABLE_SLOTS=55\nJARVIS_TEST_FROM_DOT_ENV=1\n")
    state = os.path.join(work, "env-state")
    env = dict(base_env(), JARVIS_EXECUTE_SLOTS="5")
    port = free_port()
    try:
        out = start_fake(root, binary, env, state, port=port)
        w = worker_env(state) if out.returncode == 0 else {}
        want = {"JARVIS_EXECUTE_SLOTS": "5", "JARVIS_RUN_TABLE_SLOTS": "77",
                "JARVIS_LOG_LEVEL": "debug", "JARVIS_DEFAULT_TIMEOUT_SECS": "12.5",
                "JARVIS_TEST_NOT_RUN": f"$(touch {marker})",
                "JARVIS_TEST_NOT_RUN2": f"`touch {marker}` ; touch {marker}",
                "JARVIS_TEST_SPACES": "a b c"}
        problems = [f"{k}={w.get(k)!r}, want {v!r}" for k, v in want.items() if w.get(k) != v]
        problems += [f"{k} set" for k in ("JARVIS_MAX_CONCURRENCY", "JARVIS_TEST_FROM_DOT_ENV",
                                          "JARVIS_TEST_ONLY_COMMENT") if k in w]
        if marker.exists():
            problems.append("a line was run by a shell")
        if ".env.local (the environment wins)" not in out.stdout:
            problems.append(f"stdout {out.stdout!r}")
        r.check(".env.local read: export, quotes, comments, literal values; the environment "
                "wins; .env ignored", [f"exit {out.returncode}: {out.stderr!r}"] + problems
                if out.returncode != 0 or problems else [])
        h = health(f"http://127.0.0.1:{port}") or {}
        details = [c.get("details", {}) for c in h.get("checks", [])]
        r.check(".env.local's values reach the pool (health: capacity 5, 77 slots)",
                [] if len(details) > 1 and details[0].get("capacity") == 5
                and details[1].get("slots") == 77 else [str(h)])
    finally:
        run_local(["stop", "--state-dir", state], base_env())

    # .env alone, JARVIS_PORT from it (no --port given)
    (root / ".env.local").unlink()
    port = free_port()
    (root / ".env").write_text(f"JARVIS_RUN_TABLE_SLOTS=55\nJARVIS_PORT={port}\n")
    try:
        out = start_fake(root, binary, base_env(), state)
        h = health(f"http://127.0.0.1:{port}") or {}
        slots = h.get("checks", [{}, {}])[1].get("details", {}).get("slots")
        r.check(".env read when there is no .env.local (JARVIS_PORT and the slots from it)",
                [] if out.returncode == 0 and slots == 55 else [
                    f"exit {out.returncode}: {out.stderr!r}", f"health {h}"])
    finally:
        run_local(["stop", "--state-dir", state], base_env())

    # A bad line stops the start; --no-env-file does not read it at all.
    (root / ".env.local").write_text("JARVIS_OK=1\nthis is not a setting\n")
    args = ["start", "--no-build", "--binary", "/nonexistent/jarvis",
            "--state-dir", os.path.join(work, "bad-state")]
    out = run_local(args, base_env(), runner=root / "scripts/run-local")
    r.check("a line that is not KEY=VALUE: a clear error", [] if out.returncode == 1
            and f"{root}/.env.local:2: not a KEY=VALUE line" in out.stderr else [out.stderr])
    out = run_local(args + ["--no-env-file"], base_env(), runner=root / "scripts/run-local")
    r.check("--no-env-file: .env.local not read", [] if out.returncode == 1
            and NO_BINARY in out.stderr and "KEY=VALUE" not in out.stderr else [out.stderr])
    # The file's ARP_AUTH_* counts for the --host check (it is read first).
    (root / ".env.local").write_text("ARP_AUTH_PROFILE=enterprise\n")
    out = run_local(args + ["--host", "0.0.0.0", "--port", str(free_port())], base_env(),
                    runner=root / "scripts/run-local")
    r.check("ARP_AUTH_* from .env.local counts for the --host check",
            [] if out.returncode == 1 and NO_BINARY in out.stderr else [out.stderr])


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--binary", required=True)
    args = ap.parse_args()
    r = Checks()
    work = tempfile.mkdtemp(prefix="jarvis-run-local-e2e-")
    try:
        check_refusals(r, work)
        check_loopback_host(r, args.binary, work)
        check_env_files(r, args.binary, work)
    except Exception as e:  # a crash of the test itself is a failure, not a hang
        r.check("run-local e2e ran to the end", [repr(e)])
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return r.close()


if __name__ == "__main__":
    sys.exit(main())
