#!/usr/bin/python3
"""GET /metrics end to end, through nginx and a pool of WORKERS workers
started by scripts/run-local; every scrape parsed by a real exposition-format
parser (Debian's python3-prometheus-client).

- The format: Content-Type, every family with its type and labels, one
  executions series per linked node type and state, plus "other".
- Exact counts across the pool: executes (succeeded, failed, unknown node
  types, timeouts, canceled running and before they started), 4xx answers
  and cancels (hit, tombstone, unknown) sent from many connections at once,
  so that every worker serves some (checked in app.log); then any scrape,
  whichever worker answers it, shows the deltas exactly, status by status.
- A saturated pool (every execute permit taken, one execute queued): /metrics
  still answers, with those runs in its gauges.
- Worker starts and deaths: kill -9 and a crashing handler are deaths, a
  SIGTERM stop and an abandoned handler are not; every replacement is a start.
- nginx: the shipped site passes `nginx -t`; /metrics is allowed from
  loopback (127.0.0.1 is what every scrape here comes from) and denied to
  anyone else with the errors file's JSON 403. The deny is shown on loopback
  only: a second nginx whose allow list names other addresses refuses
  127.0.0.1. No packet ever leaves 127.0.0.0/8.

  tests/e2e_metrics/metrics_e2e.py --binary PATH   (a build with the jarvis.test pack)

Prints PASS/FAIL per check and "<n> passed, <n> failed"; exit 1 on a failure.
Every wait and every load is bounded in count and time.
"""
import argparse
import collections
import concurrent.futures
import http.client
import json
import os
import pathlib
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "pylib"))
from jarvis_pool import (REPO, Checks, LocalPool, children, fcgi_connect,  # noqa: E402
                         fcgi_exchange, fcgi_request, free_port, pool_workers, wait_for)

EXECUTE = "/v1/atomic-node-runs:execute"
WORKERS = 2
CLIENTS = 8            # connections at once for the load
N_ECHO = 96            # echo executes per round
MAX_ROUNDS = 5         # rounds until every worker served executes (the first through
                       # nginx, the others straight to the socket)
MAX_DIRECT = 64        # scrapes on new FastCGI connections until every worker answered
N_UNKNOWN = 5          # executes of a node type nobody linked
N_FAIL = 4             # jarvis.test.fail
N_TIMEOUT = 3          # jarvis.test.sleep past max_wall_time_ms
TIMEOUT_MS = 50
N_404, N_400, N_405 = 6, 5, 3
N_CANCEL_UNKNOWN = 4   # cancels of ids nobody runs (then 2 of them again)
REQUEST_TIMEOUT_S = 30
WAIT_S = 30            # any one wait for the pool
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

COUNTERS = ["jarvis_executions", "jarvis_http_responses", "jarvis_cancels", "jarvis_timeouts",
            "jarvis_abandons", "jarvis_worker_starts", "jarvis_worker_deaths"]
GAUGES = ["jarvis_workers", "jarvis_runs_running", "jarvis_runs_queued",
          "jarvis_execute_capacity", "jarvis_run_table_slots", "jarvis_run_table_tombstones",
          "jarvis_run_table_slots_used"]

try:
    from prometheus_client.parser import text_string_to_metric_families
except ImportError:  # scripts/install-deps installs python3-prometheus-client
    text_string_to_metric_families = None


class Pool:
    """The pool under test, and every status it answered us since `mark`."""

    def __init__(self, lp, port):
        self.state = pathlib.Path(lp.state)
        self.port = port
        self.statuses = collections.Counter()
        self.lock = threading.Lock()

    def request(self, method, path, body=None, direct=False):
        """(status, headers dict, raw body); status 0 when the exchange failed.
        direct: straight to the FastCGI socket on a new connection, not through
        nginx (whose kept upstream connections may all belong to one worker)."""
        if direct:
            status, hdrs, raw = fcgi_request(self.state / "fcgi.sock", method, path,
                                             (body or "").encode(), timeout=REQUEST_TIMEOUT_S)
            if status == 0:
                return 0, {}, b""
        else:
            c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=REQUEST_TIMEOUT_S)
            try:
                headers = {"Content-Type": "application/json"} if body is not None else {}
                c.request(method, path, body=body, headers=headers)
                r = c.getresponse()
                raw = r.read()
                status, hdrs = r.status, {k.lower(): v for k, v in r.getheaders()}
            except (OSError, http.client.HTTPException):
                return 0, {}, b""
            finally:
                c.close()
        with self.lock:
            self.statuses[status] += 1
        return status, hdrs, raw

    def execute(self, nrid, node, inputs, constraints=None, direct=False):
        body = {"node_run_id": nrid, "run_id": "mx-run",
                "node_type_ref": {"node_type_id": node, "version": "1"}, "inputs": inputs}
        if constraints is not None:
            body["constraints"] = constraints
        status, _, raw = self.request("POST", EXECUTE, json.dumps(body), direct=direct)
        try:
            return status, json.loads(raw) if raw else None
        except ValueError:
            return status, None

    def scrape(self, direct=False):
        """(samples {(name, labels tuple): value}, families {name: type}, problems);
        direct: as request's."""
        status, hdrs, raw = self.request("GET", "/metrics", direct=direct)
        if status != 200:
            return {}, {}, [f"GET /metrics answered {status}"]
        problems = []
        if hdrs.get("content-type") != CONTENT_TYPE:
            problems.append(f"Content-Type {hdrs.get('content-type')!r}")
        samples, families = {}, {}
        try:
            for fam in text_string_to_metric_families(raw.decode("utf-8")):
                families[fam.name] = fam.type
                for s in fam.samples:
                    samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
        except Exception as e:  # the parser refusing the text is the failure
            problems.append(f"the parser refused the text: {e!r}")
        return samples, families, problems

    def workers(self):
        return pool_workers(self.state)

    def log_size(self):
        try:
            return (self.state / "logs" / "app.log").stat().st_size
        except OSError:
            return 0

    def log_pids(self, *needles, since=0):
        """The pids of the app.log lines (from byte `since` on) holding every needle."""
        try:
            with open(self.state / "logs" / "app.log", "rb") as f:
                f.seek(since)
                text = f.read().decode("utf-8", "replace")
        except OSError:
            return set()
        return {int(m.group(1)) for ln in text.splitlines() if all(n in ln for n in needles)
                for m in [re.search(r" pid=(\d+)", ln)] if m}


def val(samples, name, **labels):
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def delta(after, before, name, **labels):
    return val(after, name, **labels) - val(before, name, **labels)


def node_types(binary):
    out = subprocess.run([binary, "--list-node-types"], capture_output=True, text=True,
                         timeout=60).stdout
    return sorted(n["node_type_id"] for n in json.loads(out))


# ---- the format ----

def check_format(r, pool, binary):
    # run-local returns once one worker answers; the others may still be
    # starting (a start is counted just before a worker serves).
    wait_for(lambda: val(pool.scrape()[0], "jarvis_worker_starts_total") >= WORKERS, WAIT_S, 0.05)
    samples, families, problems = pool.scrape()
    r.check("GET /metrics: 200, text format 0.0.4, parsed", problems)
    want = {f: "counter" for f in COUNTERS}
    want.update({g: "gauge" for g in GAUGES})
    want["jarvis_execute_duration_seconds"] = "histogram"
    r.check("every family, with its type",
            [f"{f}: {families.get(f)} (want {t})" for f, t in want.items()
             if families.get(f) != t])
    nodes = node_types(binary) + ["other"]
    missing = [(n, s) for n in nodes for s in ("succeeded", "failed", "canceled")
               if ("jarvis_executions_total", (("node_type_id", n), ("state", s)))
               not in samples]
    extra = {dict(k[1]).get("node_type_id") for k in samples
             if k[0] == "jarvis_executions_total"} - set(nodes)
    r.check(f"executions: the {len(nodes) - 1} linked node types and other, by the 3 states",
            [f"missing {missing[:4]}"] * bool(missing) + [f"extra {extra}"] * bool(extra))
    r.check("a fresh pool: 2 starts, no death, 2 workers, an empty run table",
            [f"{k}={v}" for k, v in (
                ("starts", val(samples, "jarvis_worker_starts_total")),
                ("deaths", val(samples, "jarvis_worker_deaths_total")),
                ("workers", val(samples, "jarvis_workers")),
                ("running", val(samples, "jarvis_runs_running")),
                ("used", val(samples, "jarvis_run_table_slots_used")))
             if v != {"starts": WORKERS, "workers": WORKERS}.get(k, 0)]
            + ([] if val(samples, "jarvis_run_table_slots") == 1024 else ["slots"]))


# ---- exact counts ----

def echo_round(pool, rnd, direct=False):
    """N_ECHO echo executes from CLIENTS connections at once; the problems.
    direct: each straight to the FastCGI socket on a new connection (nginx's
    kept connections, which the first round rides, may all be one worker's)."""
    def one(i):
        st, res = pool.execute(f"mx-echo-{rnd}-{i}", "jarvis.core.echo", {"echo": str(i)},
                               direct=direct)
        return [] if st == 200 and res and res.get("state") == "succeeded" else [f"{i}: {st}"]
    with concurrent.futures.ThreadPoolExecutor(CLIENTS) as ex:
        return [p for ps in ex.map(one, range(N_ECHO)) for p in ps]


def hit_cancel(pool):
    """A sleep that runs until its cancel; the problems."""
    out = {}
    t = threading.Thread(target=lambda: out.update(
        r=pool.execute("mx-hit", "jarvis.test.sleep", {"ms": 20000})))
    t.start()
    running = wait_for(lambda: val(pool.scrape()[0], "jarvis_runs_running") == 1, WAIT_S, 0.05)
    st, _, _ = pool.request("POST", "/v1/atomic-node-runs/mx-hit:cancel")
    t.join(REQUEST_TIMEOUT_S)
    st2, res = out.get("r", (0, None))
    ok = running and st == 204 and st2 == 200 and res and res.get("state") == "canceled"
    return [] if ok else [f"running={running} cancel {st}, execute {st2} {res}"]


def check_kept_spread(r, pool):
    """Connections nginx keeps go round the workers: 2 x WORKERS of them,
    opened one after the other on a quiet pool, each with one request and
    left open, are served by every worker (without the worker stepping back
    in the listening socket's queue at each, the first took them all)."""
    socks, problems = [], []
    try:
        for i in range(2 * WORKERS):
            s = fcgi_connect(pool.state / "fcgi.sock", REQUEST_TIMEOUT_S)
            socks.append(s)
            st, _, _ = fcgi_exchange(s, "GET", "/v1/health", keep=True,
                                     params={"REQUEST_ID": f"mx-kept-{i}"})
            problems += [] if st == 200 else [f"connection {i}: {st}"]
    except OSError as e:
        problems.append(f"connect: {e}")
    finally:
        for s in socks:
            s.close()
    pids = pool.log_pids("request_id=mx-kept-")
    r.check(f"{len(socks)} kept connections opened in turn went to {len(pids)} workers",
            problems + ([] if len(pids) >= WORKERS else [f"only pids {sorted(pids)}"]))


def check_counts(r, pool):
    before, _, problems = pool.scrape()
    pool.statuses.clear()
    pool.statuses[200] = 1  # that scrape's own answer, counted after it was written
    problems = list(problems)
    rounds = 0
    while rounds < MAX_ROUNDS:
        rounds += 1
        problems += echo_round(pool, rounds, direct=rounds > 1)
        if len(pool.log_pids(f"path={EXECUTE} ", "status=200")) >= WORKERS:
            break
    for i in range(N_UNKNOWN):
        st, res = pool.execute(f"mx-unk-{i}", "jarvis.nobody", {})
        problems += [] if st == 200 and res["error"]["code"] == "unknown_node_type" else [st]
    for i in range(N_FAIL):
        st, res = pool.execute(f"mx-fail-{i}", "jarvis.test.fail", {})
        problems += [] if st == 200 and res["error"]["code"] == "handler_error" else [st]
    for i in range(N_TIMEOUT):
        st, res = pool.execute(f"mx-to-{i}", "jarvis.test.sleep", {"ms": 10000},
                               {"budgets": {"max_wall_time_ms": TIMEOUT_MS}})
        problems += [] if st == 200 and res["error"]["code"] == "timeout" else [st]
    for i in range(N_404):
        problems += [] if pool.request("GET", "/v1/nothing")[0] == 404 else ["404"]
    for i in range(N_400):
        problems += [] if pool.request("POST", EXECUTE, "{bad")[0] == 400 else ["400"]
    for i in range(N_405):
        problems += [] if pool.request("DELETE", "/metrics")[0] == 405 else ["405"]
    for i in range(N_CANCEL_UNKNOWN):
        problems += [] if pool.request("POST", f"/v1/atomic-node-runs/mx-c{i}:cancel")[0] == 204 \
            else ["cancel"]
    for i in range(2):  # again: the tombstone is renewed
        problems += [] if pool.request("POST", f"/v1/atomic-node-runs/mx-c{i}:cancel")[0] == 204 \
            else ["cancel again"]
    st, res = pool.execute("mx-c0", "jarvis.core.echo", {})  # canceled before it started
    problems += [] if st == 200 and res["state"] == "canceled" else [f"precanceled {st}"]
    problems += hit_cancel(pool)
    r.check(f"the load ({rounds} round(s) of {N_ECHO} echoes from {CLIENTS} connections, "
            "failures, timeouts, 4xx, cancels) answered as expected", problems)
    pids = pool.log_pids(f"path={EXECUTE} ", "status=200")
    r.check(f"executes were served by every worker ({len(pids)} pids in app.log)",
            [] if len(pids) >= WORKERS else [f"pids {sorted(pids)}"])

    sent = dict(pool.statuses)
    mark = pool.log_size()
    scrapes = [pool.scrape()]
    after = scrapes[0][0]
    # More scrapes, each on a new FastCGI connection: through nginx they would
    # ride its kept upstream connections, which a quiet pool may have all
    # accepted on one worker. A worker steps back in the listening socket's
    # queue every WK_REQUEUE_EVERY (16) accepts, so a handful of new
    # connections reaches every worker (bounded count).
    for _ in range(MAX_DIRECT):
        scrapes.append(pool.scrape(direct=True))
        if len(pool.log_pids("path=/metrics ", "status=200", since=mark)) >= WORKERS:
            break
    echo, sleep = "jarvis.core.echo", "jarvis.test.sleep"
    want = {(echo, "succeeded"): rounds * N_ECHO, (echo, "canceled"): 1,
            ("other", "failed"): N_UNKNOWN, ("jarvis.test.fail", "failed"): N_FAIL,
            (sleep, "failed"): N_TIMEOUT, (sleep, "canceled"): 1}
    got = {(dict(k[1])["node_type_id"], dict(k[1])["state"]):
           v - before.get(k, 0.0) for k, v in after.items() if k[0] == "jarvis_executions_total"}
    r.check(f"executions: exactly the {sum(want.values())} results, by node type and state",
            [f"{k}: {v} (want {want.get(k, 0)})" for k, v in sorted(got.items())
             if v != want.get(k, 0)])
    r.check(f"responses: exactly what the client received, status by status ({sent})",
            [f"{c}: {delta(after, before, 'jarvis_http_responses_total', code=str(c))} "
             f"(want {n})" for c, n in sent.items()
             if delta(after, before, "jarvis_http_responses_total", code=str(c)) != n]
            + [f"total {sum(after.get(k, 0) - before.get(k, 0) for k in after if k[0] == 'jarvis_http_responses_total')}"
               f" (want {sum(sent.values())})"]
            * (sum(after.get(k, 0) - before.get(k, 0) for k in after
                   if k[0] == "jarvis_http_responses_total") != sum(sent.values())))
    r.check("cancels: 1 hit, 2 tombstones renewed, 4 unknown ids, none full",
            [f"{o}: {delta(after, before, 'jarvis_cancels_total', outcome=o)}"
             for o, n in (("hit", 1), ("tombstone", 2), ("unknown", N_CANCEL_UNKNOWN),
                          ("full", 0))
             if delta(after, before, "jarvis_cancels_total", outcome=o) != n])
    r.check("timeouts and abandons",
            [f"{n}: {delta(after, before, n)}" for n, w in (
                ("jarvis_timeouts_total", N_TIMEOUT), ("jarvis_abandons_total", 0))
             if delta(after, before, n) != w])
    hist = []
    for node, n in ((echo, rounds * N_ECHO + 1), (sleep, N_TIMEOUT + 1),
                    ("other", N_UNKNOWN)):
        name = "jarvis_execute_duration_seconds"
        cnt = delta(after, before, name + "_count", node_type_id=node)
        inf = delta(after, before, name + "_bucket", node_type_id=node, le="+Inf")
        if cnt != n or inf != n:
            hist.append(f"{node}: count {cnt}, +Inf {inf} (want {n})")
    slow = delta(after, before, "jarvis_execute_duration_seconds_sum", node_type_id=sleep)
    fast = delta(after, before, "jarvis_execute_duration_seconds_bucket", node_type_id=sleep,
                 le="0.025")
    if slow < N_TIMEOUT * TIMEOUT_MS / 1000 or fast > 1:
        hist.append(f"{sleep}: sum {slow}, le=0.025 {fast} (the timeouts took >= {TIMEOUT_MS} ms)")
    r.check("duration histograms: a count per result, the timeouts in the slow buckets", hist)
    # The scrapes after: the same counts whichever worker answered (only the
    # responses grow, by the scrapes themselves).
    same = [i for i, (s, _, _) in enumerate(scrapes[1:], 1)
            if {k: v for k, v in s.items() if k[0] != "jarvis_http_responses_total"}
            != {k: v for k, v in after.items() if k[0] != "jarvis_http_responses_total"}]
    scrape_pids = pool.log_pids("path=/metrics ", "status=200", since=mark)
    r.check(f"{len(scrapes)} scrapes answered by {len(scrape_pids)} workers agree",
            [f"scrape {i} differs" for i in same] + [p for _, _, ps in scrapes for p in ps]
            + ([] if len(scrape_pids) >= WORKERS else [f"only pids {sorted(scrape_pids)}"]))
    r.check("the gauges are back to an idle pool",
            [f"{g}={val(after, g)}" for g in ("jarvis_runs_running", "jarvis_runs_queued")
             if val(after, g) != 0]
            + ([] if val(after, "jarvis_run_table_tombstones") == N_CANCEL_UNKNOWN - 1
               else [f"tombstones {val(after, 'jarvis_run_table_tombstones')}"]))


# ---- gauges of a saturated pool ----

def check_saturated(r, pool):
    """WORKERS + 1 long sleeps: every execute permit taken and one queued;
    /metrics still answers, its gauges say so; then every run is canceled."""
    n = WORKERS + 1
    results = [None] * n

    def run(i):
        results[i] = pool.execute(f"mx-sat-{i}", "jarvis.test.sleep", {"ms": 20000})
    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    seen = {}

    def saturated():
        seen.update(pool.scrape()[0])
        return (val(seen, "jarvis_runs_running"), val(seen, "jarvis_runs_queued")) == (WORKERS, 1)
    problems = [] if wait_for(saturated, WAIT_S, 0.05) else [
        f"running {val(seen, 'jarvis_runs_running')}, queued {val(seen, 'jarvis_runs_queued')}"]
    used = val(seen, "jarvis_runs_running") + val(seen, "jarvis_runs_queued") \
        + val(seen, "jarvis_run_table_tombstones")
    if val(seen, "jarvis_execute_capacity") != WORKERS or \
            val(seen, "jarvis_run_table_slots_used") != used:
        problems.append(f"capacity {val(seen, 'jarvis_execute_capacity')}, used "
                        f"{val(seen, 'jarvis_run_table_slots_used')} (want {used})")
    for i in range(n):
        if pool.request("POST", f"/v1/atomic-node-runs/mx-sat-{i}:cancel")[0] != 204:
            problems.append(f"cancel {i}")
    for t in threads:
        t.join(REQUEST_TIMEOUT_S)
    problems += [f"{i}: {res}" for i, res in enumerate(results)
                 if not res or res[0] != 200 or res[1].get("state") != "canceled"]
    idle = pool.scrape()[0]
    problems += [f"{g} {val(idle, g)} after" for g in ("jarvis_runs_running", "jarvis_runs_queued")
                 if val(idle, g) != 0]
    r.check(f"saturated ({WORKERS} running, 1 queued): /metrics answers with those gauges", problems)


# ---- worker starts and deaths ----

def lifecycle(r, pool, name, act, starts, deaths, abandons=0):
    """act() ends one worker; then the pool must show `starts` more starts,
    `deaths` more deaths (exactly), and WORKERS live workers again."""
    before, _, _ = pool.scrape()
    old = pool.workers()
    problems = act(old) or []

    def settled():
        s = pool.scrape()[0]
        return (len(pool.workers()) == WORKERS and set(pool.workers()) != set(old)
                and delta(s, before, "jarvis_worker_starts_total") >= starts
                and val(s, "jarvis_workers") == WORKERS)
    if not wait_for(settled, WAIT_S, 0.1):
        problems.append(f"no replacement within {WAIT_S} s (workers {pool.workers()})")
    after, _, _ = pool.scrape()
    for n, w in (("jarvis_worker_starts_total", starts), ("jarvis_worker_deaths_total", deaths),
                 ("jarvis_abandons_total", abandons)):
        if delta(after, before, n) != w:
            problems.append(f"{n} +{delta(after, before, n)} (want +{w})")
    r.check(f"{name}: +{starts} start, +{deaths} death", problems)


def signal_worker(pool, sig):
    def act(old):
        pool_pid = int((pool.state / "pool.pid").read_text())
        fd = os.pidfd_open(old[0])
        try:
            if old[0] not in children(pool_pid):
                return ["the worker went by itself"]
            signal.pidfd_send_signal(fd, sig)
        finally:
            os.close(fd)
        return []
    return act


def check_lifecycle(r, pool):
    lifecycle(r, pool, "kill -9 of an idle worker", signal_worker(pool, signal.SIGKILL), 1, 1)
    lifecycle(r, pool, "SIGTERM (a stop asked for)", signal_worker(pool, signal.SIGTERM), 1, 0)

    def crash(old):
        st, _ = pool.execute("mx-crash", "jarvis.test.crash", {})
        return [] if st == 502 else [f"crash answered {st}"]
    lifecycle(r, pool, "a handler that crashes its worker", crash, 1, 1)

    def abandon(old):
        st, res = pool.execute("mx-spin", "jarvis.test.spin", {"ms": 8000},
                               {"budgets": {"max_wall_time_ms": 100}})
        ok = st == 200 and res and res.get("error", {}).get("code") == "timeout"
        return [] if ok else [f"spin answered {st} {res}"]
    lifecycle(r, pool, "an abandoned handler (its worker exits, no death)", abandon, 1, 0, 1)


# ---- nginx ----

def check_nginx(r, pool):
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    conf_dir = REPO / "deploy/nginx"
    loc = (conf_dir / "jarvis-atomic-executor-locations.conf").read_text()
    errs = (conf_dir / "jarvis-atomic-executor-errors.conf").read_text()
    block = re.search(r"location = /metrics \{(.*?)\n\}", loc, re.S)
    rules = re.findall(r"^\s*((?:allow|deny) [^;]+);", block.group(1), re.M) if block else []
    r.check("the shipped locations allow /metrics from loopback only",
            [] if rules == ["allow 127.0.0.1", "allow ::1", "deny all"] else [f"rules {rules}"])
    r.check("the errors file answers nginx's 403 in JSON",
            [] if "error_page 403 /__jarvis_errors/403;" in errs and
            """return 403 '{"error":{"code":"forbidden","message":"Forbidden"}}';""" in errs
            else ["no JSON 403"])

    tmp = pathlib.Path(tempfile.mkdtemp(prefix="jarvis-mx-nginx-"))
    try:
        # The shipped plain site as Debian would load it: nginx -t.
        (tmp / "snippets").mkdir()
        for f in conf_dir.glob("jarvis-atomic-executor-*.conf"):
            shutil.copy(f, tmp / "snippets" / f.name)
        shutil.copy("/etc/nginx/fastcgi_params", tmp / "fastcgi_params")
        (tmp / "nginx.conf").write_text(
            f"pid {tmp}/t.pid;\nerror_log {tmp}/error.log;\nevents {{}}\n"
            f"http {{ include {conf_dir}/jarvis-atomic-executor.conf; }}\n")
        t = subprocess.run([nginx, "-t", "-q", "-p", str(tmp), "-c", str(tmp / "nginx.conf"),
                            "-e", str(tmp / "error.log")], capture_output=True, text=True,
                           timeout=60)
        r.check("nginx -t accepts the shipped site with its snippets",
                [] if t.returncode == 0 else [t.stderr.strip()[-300:]])

        # The deny, on loopback only: this pool's nginx.conf with an allow list
        # that names other addresses, on another port.
        port = free_port()
        conf = (pool.state / "nginx.conf").read_text()
        deny_loc = tmp / "locations.conf"
        deny_loc.write_text(loc.replace("allow 127.0.0.1;", "allow 127.0.0.2;")
                            .replace("allow ::1;", "allow ::2;"))
        conf = re.sub(r"include \S*locations\.conf;", f"include {deny_loc};", conf)
        conf = re.sub(r"listen \S+;", f"listen 127.0.0.1:{port};", conf, count=1)
        conf = re.sub(r"pid \S+;", f"pid {tmp}/deny.pid;", conf)
        conf = re.sub(r"access_log \S+ jarvis;", "access_log off;", conf)
        (tmp / "deny.conf").write_text(conf)
        st = subprocess.run([nginx, "-p", str(pool.state), "-c", str(tmp / "deny.conf"),
                             "-e", str(tmp / "error.log")], capture_output=True, text=True,
                            timeout=60)
        problems = [] if st.returncode == 0 else [f"nginx: {st.stderr.strip()[-300:]}"]
        if not problems:
            other = Pool.__new__(Pool)
            other.port, other.statuses, other.lock = port, collections.Counter(), threading.Lock()
            s1, h1, b1 = other.request("GET", "/metrics")
            s2, _, _ = other.request("GET", "/v1/health")
            if (s1, h1.get("content-type"), b1) != (
                    403, "application/json",
                    b'{"error":{"code":"forbidden","message":"Forbidden"}}'):
                problems.append(f"/metrics from outside the allow list: {s1} {b1[:100]}")
            if s2 != 200:
                problems.append(f"/v1/health there: {s2}")
            try:
                os.kill(int((tmp / "deny.pid").read_text()), signal.SIGTERM)
            except (OSError, ValueError):
                problems.append("could not stop the second nginx")
        r.check("an address outside the allow list gets the JSON 403 (shown on loopback)",
                problems)
    finally:
        wait_for(lambda: not (tmp / "deny.pid").exists(), 5)
        shutil.rmtree(tmp, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--binary", required=True)
    args = ap.parse_args()
    r = Checks()
    if text_string_to_metric_families is None:
        r.check("python3-prometheus-client is installed", ["import failed"])
        return r.close()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("ARP_AUTH_") and not k.startswith("JARVIS_")}
    lp = LocalPool(args.binary, workers=WORKERS, env=env, prefix="jarvis-metrics-e2e-")
    with lp as base:
        if base is None:
            r.check("the pool starts", ["scripts/run-local start failed"])
            return r.close()
        pool = Pool(lp, int(base.rsplit(":", 1)[1]))
        r.run_scenarios((("format", lambda: check_format(r, pool, args.binary)),
                         ("kept connections", lambda: check_kept_spread(r, pool)),
                         ("exact counts", lambda: check_counts(r, pool)),
                         ("saturated", lambda: check_saturated(r, pool)),
                         ("worker starts and deaths", lambda: check_lifecycle(r, pool)),
                         ("nginx", lambda: check_nginx(r, pool))))
    return r.close()


if __name__ == "__main__":
    sys.exit(main())
