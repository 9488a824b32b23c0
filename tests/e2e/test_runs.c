/*
 * test_runs.c - the pool's shared run table end to end: the real nginx in
 * front of a spawn-fcgi + multiwatch pool of 3 workers started by
 * scripts/run-local (with the jarvis.test pack linked in), driven over HTTP
 * with libcurl, long executes running in background threads.
 *
 * The pool runs with JARVIS_MAX_CONCURRENCY=1 and JARVIS_DEFAULT_TIMEOUT_SECS=3,
 * so every run of this pool ends within 3 s (queue time included) and at
 * most one handler runs at a time across the pool. Covered: a cancel that
 * lands on another worker than its run, a cancel before its execute, the
 * env and budget timeouts, the pool-wide cap (and cancel or timeout of a
 * run queued behind it), 409 for a duplicate id, a worker killed with
 * SIGKILL mid-run (502, respawn, its slot and permit reclaimed), and a
 * handler that ignores its deadline (abandoned, worker exits and is
 * replaced). Each test starts by waiting for an idle pool of 3, so one
 * that fails half-way does not poison the next; ids are unique per test.
 *
 * How many runs execute or queue is what /v1/health says (pool-wide, from
 * the run table); which worker holds a run is the one holding a FastCGI
 * connection besides the listening socket (/proc/<pid>/fd).
 *
 * Every case asserts the exact status and the exact JSON body; timestamps
 * are checked for their form and then removed before the comparison.
 *
 * The pool and the helpers the tests share are the harness's (pool.c).
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "pool.h"

#define EXECUTE POOL_EXECUTE
#define JSON_CT POOL_JSON_CT
#define WORKERS 3
/* The longest a run of this pool can take (default timeout 3 s, plus the
 * runner's 2 s grace for a handler that ignores it), with room to spare. */
#define IDLE_WAIT_MS 8000
#define RESPAWN_WAIT_MS 2000

/* ---- the pool: WORKERS workers, cap 1, default timeout 3 s ---- */

static int suite_init(void)
{
    /* JARVIS_NGINX_KEEPALIVE=0: a new FastCGI connection per request, so a
     * worker holding a connection is a worker holding a request, which is
     * how these tests find the worker that runs a handler (pool_socket_count).
     * The other e2e programs run with kept connections, as shipped. */
    static const char *const env[] = {"JARVIS_MAX_CONCURRENCY=1", "JARVIS_DEFAULT_TIMEOUT_SECS=3",
                                      "JARVIS_NGINX_KEEPALIVE=0", NULL};
    /* This program is about runs, not bearer tokens: with no ARP_AUTH_* at
     * all, run-local serves with auth disabled (dev-insecure). JARVIS_RUN_TABLE:
     * run-local puts it in the state folder. */
    static const char *const unset[] = {"ARP_AUTH_*", "JARVIS_RUN_TABLE", NULL};

    return pool_start(&(struct pool_options){.name = "jarvis-e2e-runs",
                                             .workers = WORKERS,
                                             .env = env,
                                             .unset = unset,
                                             .log_tail = 4000});
}

/* ---- the workers and their runs ---- */

/* /v1/health of this pool at rest: cap 1, three workers. */
#define IDLE_HEALTH                                                                                \
    "{\"status\":\"ok\",\"checks\":["                                                              \
    "{\"name\":\"execute_capacity\",\"status\":\"ok\",\"details\":{\"running\":0,\"queued\":0,"    \
    "\"capacity\":1,\"max_concurrency\":1}},"                                                      \
    "{\"name\":\"run_table\",\"status\":\"ok\",\"details\":{\"slots\":1024,\"running\":0,"         \
    "\"queued\":0,\"tombstones\":0,\"free\":1024}},"                                               \
    "{\"name\":\"auth_keys\",\"status\":\"ok\",\"message\":\"authentication is disabled\"}]}"

/* Waits until the pool runs exactly one handler, held by exactly one worker
 * (the only one holding a connection); that worker's pid, or -1. */
static pid_t wait_running_worker(int timeout_ms)
{
    double until = pool_now_ms() + timeout_ms;
    pid_t w[16];

    do {
        int i, n, running = 0, queued = 0, holders = 0;
        pid_t found = -1;
        if (pool_health_runs(&running, &queued) == 0 && running == 1) {
            n = pool_worker_pids(w, 16);
            for (i = 0; i < n; i++)
                if (pool_socket_count(w[i]) >= 2) {
                    holders++;
                    found = w[i];
                }
            if (holders == 1)
                return found;
        }
        pool_sleep_ms(5);
    } while (pool_now_ms() < until);
    return -1;
}

/* Waits until at least one execute is queued for the permit: 0, or -1. */
static int wait_queued(int timeout_ms)
{
    double until = pool_now_ms() + timeout_ms;

    do {
        int running = 0, queued = 0;
        if (pool_health_runs(&running, &queued) == 0 && queued >= 1)
            return 0;
        pool_sleep_ms(5);
    } while (pool_now_ms() < until);
    return -1;
}

/* Waits until the pool has WORKERS workers, none of them `not`, no run in
 * the table and no connection held. Returns the ms waited, or -1. */
static double wait_pool_idle(int timeout_ms, pid_t not )
{
    double t0 = pool_now_ms(), until = t0 + timeout_ms;
    pid_t w[16];

    do {
        int i, n = pool_worker_pids(w, 16), idle = 0, running = -1, queued = -1;
        if (n == WORKERS && pool_health_runs(&running, &queued) == 0 && running == 0 &&
            queued == 0) {
            for (i = 0; i < n; i++)
                idle += w[i] != not &&pool_socket_count(w[i]) == 1;
            if (idle == WORKERS)
                return pool_now_ms() - t0;
        }
        pool_sleep_ms(5);
    } while (pool_now_ms() < until);
    return -1;
}

/* Each test starts from an idle pool of WORKERS, whatever the last one left. */
static void assert_pool_idle(void)
{
    double waited = wait_pool_idle(IDLE_WAIT_MS, 0);

    if (waited < 0)
        fprintf(stderr, "\n  the pool is not idle with %d workers before the test\n", WORKERS);
    CU_ASSERT_TRUE(waited >= 0);
}

/* ---- HTTP: a cancel ---- */

/* POSTs a cancel of id (plain ASCII, no escaping needed). */
static void cancel(const char *id, struct pool_reply *r)
{
    char path[512];

    snprintf(path, sizeof path, "/v1/atomic-node-runs/%s:cancel", id);
    pool_post(path, JSON_CT, "", r);
}

/* ---- an execute in a background thread ---- */

struct bg {
    pthread_t tid;
    int running; /* started and not joined yet */
    char body[1024];
    struct pool_reply r;
    CURLcode rc;
    double sent_ms, done_ms; /* monotonic, around the exchange */
};

static void *bg_main(void *arg)
{
    struct bg *b = arg;

    b->sent_ms = pool_now_ms();
    b->rc = pool_http_do(
        &(struct pool_req){.method = "POST", .path = EXECUTE, .ctype = JSON_CT, .body = b->body},
        &b->r);
    b->done_ms = pool_now_ms();
    return NULL;
}

/* Static, so that a fatal assertion elsewhere never leaves a thread
 * writing into a dead stack frame. */
static struct bg bgs[2];

static struct bg *bg_start(int i, const char *body)
{
    struct bg *b = &bgs[i];

    memset(b, 0, sizeof *b);
    snprintf(b->body, sizeof b->body, "%s", body);
    if (pthread_create(&b->tid, NULL, bg_main, b) != 0) {
        CU_FAIL("pthread_create");
        return b;
    }
    b->running = 1;
    return b;
}

static void bg_join(struct bg *b)
{
    if (!b->running)
        return;
    pthread_join(b->tid, NULL);
    b->running = 0;
    if (b->rc != CURLE_OK)
        fprintf(stderr, "\n  background execute: %s\n", curl_easy_strerror(b->rc));
    CU_ASSERT_EQUAL(b->rc, CURLE_OK);
}

static void bg_join_all(void)
{
    size_t i;

    for (i = 0; i < sizeof bgs / sizeof bgs[0]; i++) {
        bg_join(&bgs[i]);
        pool_reply_free(&bgs[i].r);
    }
}

/* ---- request bodies ---- */

/* An execute of node type `type` with inputs {"ms":ms}, and when budget_ms
 * >= 0 constraints.budgets.max_wall_time_ms = budget_ms. */
static const char *run_body(char *buf, size_t len, const char *id, const char *type, long ms,
                            long budget_ms)
{
    char constraints[128] = "";

    if (budget_ms >= 0)
        snprintf(constraints, sizeof constraints,
                 ",\"constraints\":{\"budgets\":{\"max_wall_time_ms\":%ld}}", budget_ms);
    snprintf(buf, len,
             "{\"node_run_id\":\"%s\",\"run_id\":\"run-runs\",\"node_type_ref\":"
             "{\"node_type_id\":\"%s\",\"version\":\"1.0.0\"},\"inputs\":{\"ms\":%ld}%s}",
             id, type, ms, constraints);
    return buf;
}

#define SLEEP "jarvis.test.sleep"
#define SPIN "jarvis.test.spin"

/* ---- expected answers and timings ---- */

#define CANCELED(id)                                                                               \
    "{\"node_run_id\":\"" id "\",\"state\":\"canceled\",\"error\":{\"code\":\"canceled\","         \
    "\"message\":\"Atomic execution canceled\"}}"
#define TIMED_OUT(id)                                                                              \
    "{\"node_run_id\":\"" id "\",\"state\":\"failed\",\"error\":{\"code\":\"timeout\","            \
    "\"message\":\"Atomic execution timed out\"}}"
#define SLEPT(id, ms)                                                                              \
    "{\"node_run_id\":\"" id "\",\"state\":\"succeeded\",\"outputs\":{\"slept_ms\":" #ms "}}"
#define BAD_GATEWAY                                                                                \
    "{\"error\":{\"code\":\"bad_gateway\",\"message\":\"No executor worker answered\","            \
    "\"retryable\":true}}"

/* Asserts elapsed ms lies in [lo, hi], printing it either way. */
#define ASSERT_MS(what, elapsed, lo, hi)                                                           \
    do {                                                                                           \
        double ms_ = (elapsed);                                                                    \
        fprintf(stderr, "[%s: %.0f ms] ", (what), ms_);                                            \
        if (ms_ < (lo) || ms_ > (hi))                                                              \
            fprintf(stderr, "\n  %s took %.0f ms, outside [%d, %d]\n", (what), ms_, (lo), (hi));   \
        CU_ASSERT_TRUE(ms_ >= (lo) && ms_ <= (hi));                                                \
    } while (0)

/* ---- the logs ---- */

/* The pid=N field of a log line, or -1. */
static long log_pid(const char *line)
{
    const char *p = strstr(line, " pid=");

    return p ? strtol(p + 5, NULL, 10) : -1;
}

/* ---- a: cancel of a run on another worker ---- */

/* One execute canceled while it runs; returns 1 if the cancel was answered
 * by another worker than the run's, 0 if by the same one, -1 on failure. */
static int cancel_one_running(const char *id)
{
    char exec_line[1024] = "", cancel_line[1024] = "", reason[128], path[160], body[512];
    const char *exec_tokens[] = {"path=" EXECUTE,  "status=200",     id,
                                 "state=canceled", "error=canceled", NULL};
    const char *cancel_tokens[] = {path, "status=204", id, NULL};
    char id_tok[128];
    struct pool_reply r;
    struct bg *b;
    double t_cancel;
    pid_t busy;
    long exec_pid, cancel_pid;

    snprintf(id_tok, sizeof id_tok, "node_run_id=%s", id);
    exec_tokens[2] = cancel_tokens[2] = id_tok;
    snprintf(path, sizeof path, "path=/v1/atomic-node-runs/%s:cancel", id);
    b = bg_start(0, run_body(body, sizeof body, id, SLEEP, 2500, -1));
    busy = wait_running_worker(2000);
    CU_ASSERT_TRUE(busy > 0);
    t_cancel = pool_now_ms();
    cancel(id, &r);
    pool_expect_no_body(&r, 204);
    pool_reply_free(&r);
    bg_join(b);
    ASSERT_MS("cancel -> execute answer", b->done_ms - t_cancel, 0, 1000);
    if (pool_json_reply(&b->r, 200) != NULL) {
        json_object *st = NULL;
        CU_ASSERT_TRUE(json_object_object_get_ex(b->r.json, "state", &st) &&
                       strcmp(json_object_get_string(st), "canceled") == 0);
    }
    pool_reply_free(&b->r);
    if (!pool_find_log_line(exec_tokens, exec_line, sizeof exec_line) ||
        !pool_find_log_line(cancel_tokens, cancel_line, sizeof cancel_line)) {
        CU_FAIL("log lines of the execute and its cancel");
        return -1;
    }
    exec_pid = log_pid(exec_line);
    cancel_pid = log_pid(cancel_line);
    CU_ASSERT_TRUE(exec_pid > 0);
    if (busy > 0)
        CU_ASSERT_EQUAL(exec_pid, (long)busy);
    /* Whoever took the cancel flagged the table and signalled the owner,
     * itself included. */
    snprintf(reason, sizeof reason, "reason=\"cancel sent to worker %ld\"", exec_pid);
    if (!pool_has_token(cancel_line, reason))
        fprintf(stderr, "\n  cancel line lacks %s:\n  %s\n", reason, cancel_line);
    CU_ASSERT_TRUE(pool_has_token(cancel_line, reason));
    return exec_pid != cancel_pid;
}

/* A cancel lands on any serving thread of any worker: repeated until one
 * was answered by another worker than its run's (2 in 3 per try with 3
 * workers; 12 tries). Every try must end canceled. */
static void test_cancel_cross_worker(void)
{
    int i, crossed = 0;

    assert_pool_idle();
    for (i = 0; i < 12 && !crossed; i++) {
        char id[64];
        int rc;
        snprintf(id, sizeof id, "nr-runs-cancel-xw-%d", i);
        rc = cancel_one_running(id);
        if (rc < 0)
            return;
        crossed = rc;
    }
    CU_ASSERT_TRUE(crossed);
}

/* ---- b: cancel before its execute ---- */

static void test_cancel_before_execute(void)
{
#define ID "nr-runs-precancel"
    const char *tokens[] = {"path=" EXECUTE,
                            "status=200",
                            "node_run_id=" ID,
                            "state=canceled",
                            "error=canceled",
                            "reason=\"canceled before it started\"",
                            NULL};
    char body[512], line[1024];
    struct pool_reply r;
    double t0;

    assert_pool_idle();
    cancel(ID, &r);
    pool_expect_no_body(&r, 204);
    pool_reply_free(&r);
    t0 = pool_now_ms();
    pool_execute(run_body(body, sizeof body, ID, SLEEP, 2000, -1), &r);
    ASSERT_MS("execute after cancel", pool_now_ms() - t0, 0, 500);
    pool_expect_result(&r, CANCELED(ID));
    pool_reply_free(&r);
    CU_ASSERT_TRUE(pool_find_log_line(tokens, line, sizeof line));
#undef ID
}

/* ---- c, d: timeouts ---- */

static void test_timeout_env(void)
{
#define ID "nr-runs-env-timeout"
    const char *tokens[] = {"path=" EXECUTE, "status=200",    "node_run_id=" ID,
                            "state=failed",  "error=timeout", NULL};
    char body[512], line[1024];
    struct pool_reply r;
    double t0;

    assert_pool_idle();
    t0 = pool_now_ms();
    pool_execute(run_body(body, sizeof body, ID, SLEEP, 10000, -1), &r);
    ASSERT_MS("sleep 10000 under JARVIS_DEFAULT_TIMEOUT_SECS=3", pool_now_ms() - t0, 2900, 4500);
    pool_expect_result(&r, TIMED_OUT(ID));
    pool_reply_free(&r);
    CU_ASSERT_TRUE(pool_find_log_line(tokens, line, sizeof line));
#undef ID
}

static void test_timeout_budget(void)
{
#define ID "nr-runs-budget-timeout"
    char body[512];
    struct pool_reply r;
    double t0;

    assert_pool_idle();
    t0 = pool_now_ms();
    pool_execute(run_body(body, sizeof body, ID, SLEEP, 10000, 300), &r);
    ASSERT_MS("sleep 10000 with max_wall_time_ms 300", pool_now_ms() - t0, 295, 1500);
    pool_expect_result(&r, TIMED_OUT(ID));
    pool_reply_free(&r);
#undef ID
}

/* ---- e: one run at a time across the pool ---- */

static void test_concurrency_cap(void)
{
    char body[2][512], started[2][32], ended[2][32];
    struct bg *b[2], *first, *second;
    long pid[2];
    double t0, gap;
    int i, f;

    assert_pool_idle();
    t0 = pool_now_ms();
    b[0] = bg_start(0, run_body(body[0], sizeof body[0], "nr-runs-cap-1", SLEEP, 700, -1));
    b[1] = bg_start(1, run_body(body[1], sizeof body[1], "nr-runs-cap-2", SLEEP, 700, -1));
    bg_join(b[0]);
    bg_join(b[1]);
    pool_expect_result_ex(&b[0]->r, SLEPT("nr-runs-cap-1", 700), started[0], ended[0], &pid[0]);
    pool_expect_result_ex(&b[1]->r, SLEPT("nr-runs-cap-2", 700), started[1], ended[1], &pid[1]);
    f = b[0]->done_ms <= b[1]->done_ms ? 0 : 1;
    first = b[f];
    second = b[1 - f];
    /* Each run sleeps >= 700 ms and they did not overlap: >= 1400 ms in all
     * (less a ms of rounding per run: the handler counts whole wall-clock ms). */
    ASSERT_MS("two 700 ms runs with cap 1", second->done_ms - t0, 1395, 3000);
    gap = second->done_ms - first->done_ms;
    ASSERT_MS("second answer after the first", gap, 600, 2000);
    /* started_at is taken before the wait for a permit: the queued run
     * started (by the clock of the answer) before the first one ended. */
    if (strcmp(started[1 - f], ended[f]) >= 0)
        fprintf(stderr, "\n  second started_at %s not before first ended_at %s\n", started[1 - f],
                ended[f]);
    CU_ASSERT_TRUE(strcmp(started[1 - f], ended[f]) < 0);
    for (i = 0; i < 2; i++)
        pool_reply_free(&b[i]->r);
}

/* ---- e: runs queued for the permit can be canceled and time out ---- */

static void test_queued_runs(void)
{
#define RUN "nr-runs-q-holder"
#define QC "nr-runs-q-cancel"
#define QT "nr-runs-q-timeout"
    const char *cancel_tokens[] = {"path=" EXECUTE,
                                   "status=200",
                                   "node_run_id=" QC,
                                   "state=canceled",
                                   "error=canceled",
                                   "reason=\"canceled while queued\"",
                                   NULL};
    const char *timeout_tokens[] = {"path=" EXECUTE,
                                    "status=200",
                                    "node_run_id=" QT,
                                    "state=failed",
                                    "error=timeout",
                                    "reason=\"timed out while queued\"",
                                    NULL};
    char body[2][512], line[1024];
    struct pool_reply r;
    struct bg *holder, *queued;
    double t0;

    assert_pool_idle();
    /* RUN holds the only permit for 1500 ms. */
    holder = bg_start(0, run_body(body[0], sizeof body[0], RUN, SLEEP, 1500, -1));
    if (wait_running_worker(2000) < 0) {
        fprintf(stderr, "\n  no worker seen running the sleep; waiting 300 ms instead\n");
        pool_sleep_ms(300);
    }
    /* QC waits for it; canceled there, it answers at once. */
    queued = bg_start(1, run_body(body[1], sizeof body[1], QC, SLEEP, 100, -1));
    if (wait_queued(2000) < 0) {
        fprintf(stderr, "\n  no worker seen queued; waiting 200 ms instead\n");
        pool_sleep_ms(200);
    }
    t0 = pool_now_ms();
    cancel(QC, &r);
    pool_expect_no_body(&r, 204);
    pool_reply_free(&r);
    bg_join(queued);
    ASSERT_MS("cancel -> queued execute answer", queued->done_ms - t0, 0, 500);
    pool_expect_result(&queued->r, CANCELED(QC));
    pool_reply_free(&queued->r);
    CU_ASSERT_TRUE(pool_find_log_line(cancel_tokens, line, sizeof line));

    /* QT's 300 ms budget runs out while it waits: queue time counts. */
    t0 = pool_now_ms();
    pool_execute(run_body(body[1], sizeof body[1], QT, SLEEP, 100, 300), &r);
    ASSERT_MS("queued execute with max_wall_time_ms 300", pool_now_ms() - t0, 295, 1000);
    pool_expect_result(&r, TIMED_OUT(QT));
    pool_reply_free(&r);
    CU_ASSERT_TRUE(pool_find_log_line(timeout_tokens, line, sizeof line));

    /* The holder was never disturbed: it still runs (the cancel finds it), and ends. */
    cancel(RUN, &r);
    pool_expect_no_body(&r, 204);
    pool_reply_free(&r);
    bg_join(holder);
    pool_expect_result(&holder->r, CANCELED(RUN));
    pool_reply_free(&holder->r);
#undef RUN
#undef QC
#undef QT
}

/* ---- f: a second execute of an id in flight ---- */

static void test_duplicate_id(void)
{
#define ID "nr-runs-dup"
    char body[512];
    struct pool_reply r;
    struct bg *b;
    double t0;

    assert_pool_idle();
    b = bg_start(0, run_body(body, sizeof body, ID, SLEEP, 1500, -1));
    if (wait_running_worker(2000) < 0) {
        fprintf(stderr, "\n  no worker seen running the sleep; waiting 300 ms instead\n");
        pool_sleep_ms(300);
    }
    t0 = pool_now_ms();
    pool_execute(body, &r);
    ASSERT_MS("duplicate execute", pool_now_ms() - t0, 0, 500);
    pool_expect(&r, 409,
                "{\"error\":{\"code\":\"node_run_in_progress\","
                "\"message\":\"A NodeRun with this node_run_id is already executing\"}}");
    pool_reply_free(&r);
    /* The first one is not disturbed; end it early. */
    cancel(ID, &r);
    pool_expect_no_body(&r, 204);
    pool_reply_free(&r);
    bg_join(b);
    ASSERT_MS("first execute", b->done_ms - b->sent_ms, 0, 1400);
    pool_expect_result(&b->r, CANCELED(ID));
    pool_reply_free(&b->r);
#undef ID
}

/* ---- h: a handler that ignores its deadline is abandoned ---- */

static void test_abandoned_handler(void)
{
#define ID "nr-runs-spin"
    const char *tokens[] = {
        "path=" EXECUTE,
        "status=200",
        "node_run_id=" ID,
        "state=failed",
        "error=timeout",
        "reason=\"handler did not return within 2000 ms of being stopped; worker will exit\"",
        NULL};
    const char *exit_tokens[] = {"ERROR", "pid=", NULL};
    char body[512], line[1024] = "", exit_line[1024] = "", pid_tok[32];
    struct pool_reply r;
    double t0, waited;
    long pid;

    assert_pool_idle();
    t0 = pool_now_ms();
    pool_execute(run_body(body, sizeof body, ID, SPIN, 6000, 200), &r);
    /* 200 ms budget + RN_GRACE_MS (2000) */
    ASSERT_MS("spin 6000 with max_wall_time_ms 200", pool_now_ms() - t0, 2000, 4000);
    pool_expect_result(&r, TIMED_OUT(ID));
    pool_reply_free(&r);
    CU_ASSERT_TRUE(pool_find_log_line(tokens, line, sizeof line));
    pid = log_pid(line);
    CU_ASSERT_TRUE(pid > 0);
    /* The same worker says it exits. */
    snprintf(pid_tok, sizeof pid_tok, "pid=%ld", pid);
    exit_tokens[1] = pid_tok;
    CU_ASSERT_TRUE(pool_find_log_line(exit_tokens, exit_line, sizeof exit_line));
    if (strstr(exit_line, "abandoning a handler that would not stop; worker exits") == NULL)
        fprintf(stderr, "\n  no exit message from worker %ld: %s\n", pid, exit_line);
    CU_ASSERT_PTR_NOT_NULL(
        strstr(exit_line, "abandoning a handler that would not stop; worker exits"));

    /* It is gone and replaced; the pool serves. */
    waited = wait_pool_idle(RESPAWN_WAIT_MS, (pid_t)pid);
    if (waited < 0)
        fprintf(stderr, "\n  no %d idle workers (without %ld) within %d ms\n", WORKERS, pid,
                RESPAWN_WAIT_MS);
    CU_ASSERT_TRUE(waited >= 0);
    pool_http(&(struct pool_req){.path = "/v1/health"}, &r);
    CU_ASSERT_EQUAL(r.status, 200);
    pool_reply_free(&r);
#undef ID
}

/* ---- g: kill -9 of the worker running a run ---- */

/* Starts a 2500 ms sleep with id in the background, kills its worker with
 * SIGKILL, asserts the 502 and that a replacement comes. Returns the pid. */
static pid_t kill_running_worker(const char *id)
{
    char body[512];
    struct bg *b;
    pid_t busy, w[16];
    double t_kill, waited;
    int i, n;

    b = bg_start(0, run_body(body, sizeof body, id, SLEEP, 2500, -1));
    busy = wait_running_worker(2000);
    if (busy <= 0) {
        fprintf(stderr,
                "\n  cannot tell which worker runs %s (neither /proc/<pid>/syscall nor "
                "/proc/<pid>/fd shows it); not killing anything\n",
                id);
        CU_FAIL("no running worker found");
        bg_join(b);
        pool_reply_free(&b->r);
        return -1;
    }
    n = pool_worker_pids(w, 16);
    for (i = 0; i < n && w[i] != busy; i++)
        ;
    CU_ASSERT_TRUE(i < n); /* a child of the pool */
    t_kill = pool_now_ms();
    CU_ASSERT_EQUAL(kill(busy, SIGKILL), 0);
    bg_join(b);
    ASSERT_MS("kill -> 502", b->done_ms - t_kill, 0, 1000);
    pool_expect(&b->r, 502, BAD_GATEWAY);
    pool_reply_free(&b->r);
    /* multiwatch replaces it: WORKERS idle workers again, the dead one not among them. */
    waited = wait_pool_idle(RESPAWN_WAIT_MS, busy);
    if (waited < 0)
        fprintf(stderr, "\n  no %d idle workers (without %d) within %d ms of the kill\n", WORKERS,
                (int)busy, RESPAWN_WAIT_MS);
    CU_ASSERT_TRUE(waited >= 0);
    return busy;
}

static void test_kill_worker(void)
{
#define ID "nr-runs-kill"
    char body[512], ts[32];
    struct pool_reply r;
    double t0;
    pid_t dead;
    long pid = 0;

    assert_pool_idle();
    dead = kill_running_worker(ID);
    if (dead < 0)
        return;
    pool_http(&(struct pool_req){.path = "/v1/health"}, &r);
    if (pool_json_reply(&r, 200) != NULL) {
        pool_take_ts(r.json, "time", ts);
        /* The dead worker's run is not counted: its slot was reclaimed. */
        TU_ASSERT_JSON(r.json, IDLE_HEALTH);
    }
    pool_reply_free(&r);
    /* The dead worker's slot is reclaimed: the same id runs again (not 409),
     * and with cap 1 only if its permit was reclaimed too. */
    t0 = pool_now_ms();
    pool_execute(run_body(body, sizeof body, ID, SLEEP, 100, -1), &r);
    ASSERT_MS("same id after the kill", pool_now_ms() - t0, 95, 1500);
    pool_expect_result_ex(&r, SLEPT(ID, 100), NULL, NULL, &pid);
    CU_ASSERT_NOT_EQUAL(pid, (long)dead);
    pool_reply_free(&r);
    pool_execute("{\"node_run_id\":\"nr-runs-kill-echo\",\"run_id\":\"r\",\"node_type_ref\":"
                 "{\"node_type_id\":\"jarvis.core.echo\",\"version\":\"0.3.8\"},"
                 "\"inputs\":{\"echo\":\"still here\"}}",
                 &r);
    pool_expect_result(&r, "{\"node_run_id\":\"nr-runs-kill-echo\",\"state\":\"succeeded\","
                           "\"outputs\":{\"echo\":\"still here\"}}");
    pool_reply_free(&r);
#undef ID
}

/* Lifecycle: SIGTERM to a busy worker lets it finish the request it is
 * serving (200 succeeded, from that very worker), then it exits and the
 * pool replaces it. */
static void test_sigterm_busy_worker(void)
{
#define ID "nr-runs-sigterm"
    char body[512];
    struct bg *b;
    pid_t busy;
    long pid = 0;
    double waited;

    assert_pool_idle();
    b = bg_start(0, run_body(body, sizeof body, ID, SLEEP, 600, -1));
    busy = wait_running_worker(2000);
    CU_ASSERT_TRUE_FATAL(busy > 0);
    CU_ASSERT_EQUAL(kill(busy, SIGTERM), 0);
    bg_join(b);
    pool_expect_result_ex(&b->r, SLEPT(ID, 600), NULL, NULL, &pid);
    CU_ASSERT_EQUAL(pid, (long)busy);
    pool_reply_free(&b->r);
    waited = wait_pool_idle(RESPAWN_WAIT_MS, busy);
    if (waited < 0)
        fprintf(stderr, "\n  worker %d did not leave, or was not replaced, after SIGTERM\n",
                (int)busy);
    CU_ASSERT_TRUE(waited >= 0);
#undef ID
}

/* The other way a dead worker's permit comes back: a run with another id,
 * queued behind it (cap 1), finds its owner dead while waiting. */
static void test_kill_worker_permit(void)
{
#define ID "nr-runs-kill-2"
#define OTHER "nr-runs-kill-2-other"
    char body[512];
    struct pool_reply r;
    double t0;
    pid_t dead;
    long pid = 0;

    assert_pool_idle();
    dead = kill_running_worker(ID);
    if (dead < 0)
        return;
    t0 = pool_now_ms();
    pool_execute(run_body(body, sizeof body, OTHER, SLEEP, 100, -1), &r);
    ASSERT_MS("another id after the kill", pool_now_ms() - t0, 95, 1500);
    pool_expect_result_ex(&r, SLEPT(OTHER, 100), NULL, NULL, &pid);
    CU_ASSERT_NOT_EQUAL(pid, (long)dead);
    pool_reply_free(&r);
    pool_execute(run_body(body, sizeof body, ID, SLEEP, 100, -1), &r);
    pool_expect_result_ex(&r, SLEPT(ID, 100), NULL, NULL, &pid);
    pool_reply_free(&r);
#undef ID
#undef OTHER
}

/* ---- last: the pool stops, leaving no process behind ---- */

static void test_stop(void)
{
    static const char *const reports[] = {"AddressSanitizer", "LeakSanitizer", "runtime error:"};
    char *text;
    int i;

    pool_assert_stop();

    /* In the sanitizer build the workers are instrumented too: none reported. */
    text = pool_read_log("app.log", NULL);
    CU_ASSERT_PTR_NOT_NULL(text);
    for (i = 0; text != NULL && i < (int)(sizeof reports / sizeof reports[0]); i++) {
        if (strstr(text, reports[i]) != NULL)
            fprintf(stderr, "\n  app.log holds a sanitizer report (%s)\n", reports[i]);
        CU_ASSERT_PTR_NULL(strstr(text, reports[i]));
    }
    free(text);
}

/* Any test that failed half-way leaves its thread joined before the next. */
static void before_each(void)
{
    bg_join_all();
}

static int suite_cleanup(void)
{
    bg_join_all();
    pool_cleanup();
    return 0;
}

static CU_TestInfo tests[] = {
    {"a: cancel reaches a run on another worker", test_cancel_cross_worker},
    {"b: cancel before execute", test_cancel_before_execute},
    {"f: duplicate node_run_id in flight -> 409", test_duplicate_id},
    {"e: concurrency cap 1 across the pool", test_concurrency_cap},
    {"e: queued runs: cancel and timeout while waiting for the permit", test_queued_runs},
    {"d: timeout from max_wall_time_ms", test_timeout_budget},
    {"c: timeout from JARVIS_DEFAULT_TIMEOUT_SECS", test_timeout_env},
    {"h: a handler ignoring its deadline is abandoned", test_abandoned_handler},
    {"SIGTERM to a busy worker: it finishes its request, then is replaced",
     test_sigterm_busy_worker},
    {"g: kill -9 of a busy worker: 502, respawn, slot reclaimed", test_kill_worker},
    {"g: kill -9: the permit is reclaimed for another id", test_kill_worker_permit},
    {"run-local stop leaves no process behind, no sanitizer report", test_stop},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"e2e runs (nginx + 3-worker pool, cap 1, timeout 3 s)", suite_init, suite_cleanup, before_each,
     NULL, tests},
    CU_SUITE_INFO_NULL,
};

int main(void)
{
    return pool_main(suites);
}
