"""Shared by the Python end-to-end tests: a local pool started with
scripts/run-local on a free loopback port, and PASS/FAIL bookkeeping that ends
with the closing line "<n> passed, <n> failed"."""
import os
import pathlib
import shutil
import socket
import subprocess
import tempfile
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


def wait_for(pred, seconds, interval=0.05):
    """Polls pred() until it is true (True) or `seconds` have passed (False)."""
    until = time.monotonic() + seconds
    while time.monotonic() < until:
        if pred():
            return True
        time.sleep(interval)
    return False


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

    def close(self):
        """Prints the closing line; returns the process exit status."""
        print(f"{self.passed} passed, {self.failed} failed")
        return 0 if self.failed == 0 else 1
