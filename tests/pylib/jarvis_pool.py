"""Shared by the Python end-to-end tests: a local pool started with
scripts/run-local on a free loopback port, and PASS/FAIL bookkeeping that ends
with the closing line "<n> passed, <n> failed"."""
import os
import pathlib
import shutil
import socket
import subprocess
import tempfile

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


class LocalPool:
    """`with LocalPool(binary, workers=2) as base_url:` starts nginx and a
    worker pool (auth from run-local's default unless env says otherwise)
    and always stops both; the URL is None when the start failed."""

    def __init__(self, binary, workers=2, env=None, prefix="jarvis-e2e-"):
        self.binary, self.workers, self.prefix = binary, workers, prefix
        self.env = env if env is not None else {
            k: v for k, v in os.environ.items() if not k.startswith("ARP_AUTH_")}
        self.port = free_port()
        self.state = None

    def __enter__(self):
        self.state = tempfile.mkdtemp(prefix=self.prefix)
        start = [str(RUNNER), "start", "--daemon", "--no-build", "--binary", str(self.binary),
                 "--workers", str(self.workers), "--port", str(self.port),
                 "--state-dir", self.state]
        ok = subprocess.run(start, stdout=subprocess.DEVNULL, env=self.env).returncode == 0
        return f"http://127.0.0.1:{self.port}" if ok else None

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
