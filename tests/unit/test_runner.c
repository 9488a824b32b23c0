/*
 * test_runner.c - the runner and its watcher (runner.h), driven the way
 * the service drives them, through dsp_execute with a real run table:
 * runs that finish, time out (default timeout, budget, the smaller of the
 * two), are canceled while running (from a thread and from another
 * process, through rn_cancel as ep_cancel sends it), are canceled or time out
 * while queued for a permit, were canceled before they started, collide
 * with a live run or find the table full; the handler context's wait API
 * (jarvis_ctx_wait_fd, remaining_ms, wake_fd) through a node defined here;
 * the client's connection closing while running or queued (canceled) or
 * staying open; a worker with no spare thread or stopping (busy); two
 * runners at once, one canceled; rn_run alone (canceled before it starts
 * or while running, deadline, client gone, runs at once, abandoned and
 * answered by the watcher); and last, a handler that never returns and is
 * abandoned through dsp_execute (answered through the connection's
 * callback; it keeps its slot).
 *
 * rn_init runs in the suite init, on the main thread, before any helper
 * thread exists: every thread after it inherits SIGUSR2 blocked, so the
 * signal is only ever taken by the runner's listener thread, which kicks
 * the watcher, as in a worker.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "dispatch.h"
#include "dispatch_test.h"
#include "runner.h"
#include "runner_test.h"
#include "runtable.h"
#include "testutil.h"
#include "timefmt.h"

extern const jarvis_pack jarvis_pack_core;
extern const jarvis_pack jarvis_pack_testing;

/* ---- nodes of this test: the ctx wait API seen from a handler ---- */

static long long input_int(json_object *inputs, const char *key, long long dflt)
{
    json_object *v = NULL;

    if (!json_object_object_get_ex(inputs, key, &v) || !json_object_is_type(v, json_type_int))
        return dflt;
    return json_object_get_int64(v);
}

/* Waits for inputs.fd to be readable, at most inputs.timeout_ms (default
 * -1); outputs {"revents": R} or {"elapsed": true}. */
static int wait_fd_handler(jarvis_ctx *ctx, json_object *inputs, json_object **outputs)
{
    short revents = -1;
    int rc = jarvis_ctx_wait_fd(ctx, (int)input_int(inputs, "fd", -1), POLLIN,
                                input_int(inputs, "timeout_ms", -1), &revents);

    if (rc == JARVIS_WAIT_ELAPSED) {
        *outputs = json_object_new_object();
        json_object_object_add(*outputs, "elapsed", json_object_new_boolean(1));
        return JARVIS_OK;
    }
    if (rc != JARVIS_OK)
        return rc;
    *outputs = json_object_new_object();
    json_object_object_add(*outputs, "revents", json_object_new_int(revents));
    return JARVIS_OK;
}

/* Outputs what the context says about time and cancellation. */
static int probe_handler(jarvis_ctx *ctx, json_object *inputs, json_object **outputs)
{
    (void)inputs;
    *outputs = json_object_new_object();
    json_object_object_add(*outputs, "remaining_ms",
                           json_object_new_int64(jarvis_ctx_remaining_ms(ctx)));
    json_object_object_add(*outputs, "wake_fd", json_object_new_int(jarvis_ctx_wake_fd(ctx)));
    json_object_object_add(*outputs, "cancelled", json_object_new_int(jarvis_ctx_cancelled(ctx)));
    return JARVIS_OK;
}

static const jarvis_node node_wait_fd = {
    .node_type_id = "runner.test.wait_fd",
    .version = "1.0.0",
    .handler = wait_fd_handler,
};

static const jarvis_node node_probe = {
    .node_type_id = "runner.test.probe",
    .version = "1.0.0",
    .handler = probe_handler,
};

static const jarvis_node *const local_nodes[] = {&node_wait_fd, &node_probe, NULL};
static const jarvis_pack local_pack = {.name = "runner_test", .nodes = local_nodes};

/* ---- fixtures ---- */

static char dir[64];
static struct rt_table *table;
static struct dsp_registry reg;
/* The abandoned run's request: its handler still reads it when the
 * program ends, so it is never freed (and stays reachable for LSan). */
static json_object *abandoned_body;

static int64_t mono_ms(void)
{
    return ts_mono_us() / 1000;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static int suite_init(void)
{
    static const jarvis_pack *const packs[] = {&jarvis_pack_core, &jarvis_pack_testing, &local_pack,
                                               NULL};
    char path[128], err[256];

    if (rn_init() != 0 || dsp_registry_init(&reg, packs, err, sizeof err) != 0)
        return -1;
    snprintf(dir, sizeof dir, "/tmp/jarvis-rn-XXXXXX");
    if (mkdtemp(dir) == NULL)
        return -1;
    snprintf(path, sizeof path, "%s/run.tbl", dir);
    table = rt_open(path, 8, err, sizeof err);
    if (table == NULL)
        fprintf(stderr, "rt_open: %s\n", err);
    return table != NULL ? 0 : -1;
}

static int suite_cleanup(void)
{
    rt_close(table);
    table = NULL;
    return tu_remove_tree(dir);
}

/* 1 when every slot of the table is free again. */
static int table_empty(struct rt_table *t)
{
    struct rt_stats st;

    rt_stats(t, &st);
    return st.running == 0 && st.queued == 0 && st.tombstones == 0;
}

/* An AtomicExecuteRequest; rest is appended inside the object (",..."). */
static json_object *request(const char *id, const char *type, const char *inputs, const char *rest)
{
    char text[1024];
    json_object *body;

    snprintf(text, sizeof text,
             "{\"node_run_id\":\"%s\",\"run_id\":\"r-1\",\"node_type_ref\":{\"node_type_id\":"
             "\"%s\",\"version\":\"1.0.0\"},\"inputs\":%s%s}",
             id, type, inputs, rest);
    body = tu_json(text);
    CU_ASSERT_PTR_NOT_NULL_FATAL(body);
    return body;
}

/*
 * Runs one request through dsp_execute and returns its answer; *took_ms is
 * how long the call took. The caller cleans res up and puts *body (unless
 * the handler was abandoned).
 */
static int execute(const struct dsp_limits *lim, json_object *body, struct exec_result *res,
                   int64_t *took_ms)
{
    struct exec_req req;
    int64_t t0 = mono_ms();
    int rc;

    dsp_request_from_json(body, &req);
    rc = dsp_execute(&reg, lim, &req, NULL, res);
    *took_ms = mono_ms() - t0;
    return rc;
}

/* Checks a failed-with-timeout answer from the handler phase. */
static void assert_timeout(const struct exec_result *res)
{
    CU_ASSERT_EQUAL(res->state, RUN_FAILED);
    CU_ASSERT_PTR_NOT_NULL_FATAL(res->error_code);
    CU_ASSERT_STRING_EQUAL(res->error_code, "timeout");
    CU_ASSERT_STRING_EQUAL(res->message, "Atomic execution timed out");
    CU_ASSERT_PTR_NULL(res->outputs);
}

static void assert_canceled(const struct exec_result *res)
{
    CU_ASSERT_EQUAL(res->state, RUN_CANCELED);
    CU_ASSERT_PTR_NOT_NULL_FATAL(res->error_code);
    CU_ASSERT_STRING_EQUAL(res->error_code, "canceled");
    CU_ASSERT_STRING_EQUAL(res->message, "Atomic execution canceled");
    CU_ASSERT_PTR_NULL(res->outputs);
}

/* A helper thread that, after after_ms, cancels id (and signals the owner
 * as ep_cancel does), or writes a byte to fd. */
struct later {
    long after_ms;
    const char *id; /* cancel this id, or ... */
    int signal;     /* ... and send SIGUSR2 to its owner */
    int fd;         /* ... write one byte here (id NULL) */
    int rc;         /* rt_cancel's answer */
    pid_t owner;
};

static void *do_later(void *arg)
{
    struct later *l = arg;

    sleep_ms(l->after_ms);
    if (l->id == NULL) {
        l->rc = (int)write(l->fd, "x", 1);
        return NULL;
    }
    l->rc = l->signal ? rn_cancel(table, l->id, &l->owner) : rt_cancel(table, l->id, 0, &l->owner);
    return NULL;
}

/* ---- runs that end on their own or at their deadline ---- */

static void test_sleep_succeeds(void)
{
    const struct dsp_limits lim = {table, 0, 0, 0};
    json_object *body = request("ok-1", "jarvis.test.sleep", "{\"ms\":50}", "");
    struct exec_result res;
    char want[128];
    int64_t took;

    CU_ASSERT_EQUAL(execute(&lim, body, &res, &took), DSP_OK);
    CU_ASSERT_EQUAL(res.state, RUN_SUCCEEDED);
    CU_ASSERT_PTR_NULL(res.error_code);
    CU_ASSERT_EQUAL(res.abandoned, 0);
    snprintf(want, sizeof want, "{\"slept_ms\":50,\"pid\":%ld}", (long)getpid());
    TU_ASSERT_JSON(res.outputs, want);
    CU_ASSERT_TRUE(took >= 45);
    CU_ASSERT_TRUE(took < 1000);
    CU_ASSERT_TRUE(res.ended_ms - res.started_ms >= 45);
    CU_ASSERT_TRUE(table_empty(table));
    dsp_result_cleanup(&res);
    json_object_put(body);
}

/* Sleeps 5 s under lim and rest; expects a timeout after about 100 ms. */
static void expect_timeout_100(double default_secs, const char *rest)
{
    const struct dsp_limits lim = {table, default_secs, 0, 0};
    json_object *body = request("to-1", "jarvis.test.sleep", "{\"ms\":5000}", rest);
    struct exec_result res;
    int64_t took;

    CU_ASSERT_EQUAL(execute(&lim, body, &res, &took), DSP_OK);
    assert_timeout(&res);
    CU_ASSERT_STRING_EQUAL(res.reason, "");
    CU_ASSERT_EQUAL(res.abandoned, 0);
    CU_ASSERT_TRUE(took >= 90);
    CU_ASSERT_TRUE(took < 1000);
    CU_ASSERT_TRUE(res.ended_ms - res.started_ms >= 99);
    CU_ASSERT_TRUE(table_empty(table));
    dsp_result_cleanup(&res);
    json_object_put(body);
}

#define BUDGET(ms) ",\"constraints\":{\"budgets\":{\"max_wall_time_ms\":" ms "}}"

static void test_timeouts(void)
{
    const struct dsp_limits lim = {table, 0, 0, 0};
    struct exec_result res;
    json_object *body;
    int64_t took;

    expect_timeout_100(0.1, "");
    expect_timeout_100(0, BUDGET("100"));
    expect_timeout_100(0.1, BUDGET("5000"));
    expect_timeout_100(10, BUDGET("100"));

    /* A zero budget is spent before the handler starts. */
    body = request("to-0", "jarvis.test.sleep", "{\"ms\":5000}", BUDGET("0"));
    CU_ASSERT_EQUAL(execute(&lim, body, &res, &took), DSP_OK);
    assert_timeout(&res);
    CU_ASSERT_EQUAL(res.abandoned, 0);
    CU_ASSERT_TRUE(took < 500);
    CU_ASSERT_TRUE(table_empty(table));
    dsp_result_cleanup(&res);
    json_object_put(body);
}

static int64_t deadline_of(double default_secs, const char *rest, int64_t started)
{
    const struct dsp_limits lim = {NULL, default_secs, 0, 0};
    json_object *body = request("dl", "jarvis.test.sleep", "{}", rest);
    struct exec_req req;
    int64_t d;

    dsp_request_from_json(body, &req);
    d = dsp_deadline(&lim, &req, started);
    json_object_put(body);
    return d;
}

static void test_deadline(void)
{
    const int64_t s = 1700000000000LL;

    CU_ASSERT_EQUAL(deadline_of(0, "", s), 0);
    CU_ASSERT_EQUAL(deadline_of(-1, "", s), 0);
    CU_ASSERT_EQUAL(deadline_of(0.1, "", s), s + 100);
    CU_ASSERT_EQUAL(deadline_of(0.0015, "", s), s + 2); /* rounded up */
    CU_ASSERT_EQUAL(deadline_of(30, "", s), s + 30000);
    CU_ASSERT_EQUAL(deadline_of(0, BUDGET("100"), s), s + 100);
    CU_ASSERT_EQUAL(deadline_of(0.1, BUDGET("5000"), s), s + 100);
    CU_ASSERT_EQUAL(deadline_of(10, BUDGET("100"), s), s + 100);
    CU_ASSERT_EQUAL(deadline_of(0.1, BUDGET("100"), s), s + 100);
    CU_ASSERT_EQUAL(deadline_of(0, BUDGET("5.0"), s), s + 5);
    CU_ASSERT_EQUAL(deadline_of(0, BUDGET("0"), s), s);
    CU_ASSERT_EQUAL(deadline_of(10, BUDGET("0"), s), s);
    /* "none" is 0, so a spent budget at time 0 must still be a deadline. */
    CU_ASSERT_EQUAL(deadline_of(0, BUDGET("0"), 0), 1);
    /* Huge values are held at DSP_MAX_SPAN_MS (about 31 years). */
    CU_ASSERT_EQUAL(deadline_of(0, BUDGET("100000000000000000000"), s), s + 1000000000000LL);
    CU_ASSERT_EQUAL(deadline_of(0, BUDGET("9223372036854775807"), s), s + 1000000000000LL);
    CU_ASSERT_EQUAL(deadline_of(1e15, "", s), s + 1000000000000LL);
    /* Constraints without a wall-time budget leave the default alone. */
    CU_ASSERT_EQUAL(deadline_of(0, ",\"constraints\":{}", s), 0);
    CU_ASSERT_EQUAL(deadline_of(0.1, ",\"constraints\":{\"budgets\":{}}", s), s + 100);
    CU_ASSERT_EQUAL(deadline_of(0, ",\"constraints\":{\"budgets\":{\"max_tokens\":5}}", s), 0);
}

/* ---- cancels ---- */

static void test_cancel_running(void)
{
    const struct dsp_limits lim = {table, 0, 0, 0};
    json_object *body = request("cx-1", "jarvis.test.sleep", "{\"ms\":5000}", "");
    struct later l = {50, "cx-1", 1, -1, 0, 0};
    struct exec_result res;
    pthread_t th;
    int64_t took;

    CU_ASSERT_EQUAL_FATAL(pthread_create(&th, NULL, do_later, &l), 0);
    CU_ASSERT_EQUAL(execute(&lim, body, &res, &took), DSP_OK);
    pthread_join(th, NULL);
    CU_ASSERT_EQUAL(l.rc, 1);
    CU_ASSERT_EQUAL(l.owner, getpid());
    assert_canceled(&res);
    CU_ASSERT_STRING_EQUAL(res.reason, "");
    CU_ASSERT_EQUAL(res.abandoned, 0);
    CU_ASSERT_TRUE(took >= 45);
    CU_ASSERT_TRUE(took < 500);
    CU_ASSERT_TRUE(table_empty(table));
    dsp_result_cleanup(&res);
    json_object_put(body);
}

/* As a cancel landing on another worker: a process that opens the table,
 * cancels and signals the owner. */
static void test_cancel_running_from_other_process(void)
{
    const struct dsp_limits lim = {table, 0, 0, 0};
    json_object *body = request("cx-2", "jarvis.test.sleep", "{\"ms\":5000}", "");
    struct exec_result res;
    int64_t took;
    int status = -1;
    pid_t pid;

    pid = fork();
    CU_ASSERT_TRUE_FATAL(pid >= 0);
    if (pid == 0) {
        char path[128], err[256];
        struct rt_table *t;
        pid_t owner = 0;
        int rc;

        sleep_ms(50);
        snprintf(path, sizeof path, "%s/run.tbl", dir);
        t = rt_open(path, 8, err, sizeof err);
        /* rt_cancel signals the owner itself, as ep_cancel has it do. */
        rc = t != NULL ? rn_cancel(t, "cx-2", &owner) : -100;
        _exit(rc == 1 && owner == getppid() ? 0 : 1);
    }
    CU_ASSERT_EQUAL(execute(&lim, body, &res, &took), DSP_OK);
    /* The child is done by now or the run would still be going (5 s). */
    CU_ASSERT_EQUAL(waitpid(pid, &status, 0), pid);
    CU_ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    assert_canceled(&res);
    CU_ASSERT_TRUE(took >= 45);
    CU_ASSERT_TRUE(took < 1000);
    CU_ASSERT_TRUE(table_empty(table));
    dsp_result_cleanup(&res);
    json_object_put(body);
}

/* Takes the only permit of a cap of 1 under another id. */
static int hold_permit(void)
{
    int slot = rt_claim(table, "holder", 0);

    CU_ASSERT_TRUE_FATAL(slot >= 0);
    CU_ASSERT_EQUAL(rt_acquire_permit(table, slot, 1, 0, NULL, NULL), RT_OK);
    return slot;
}

static void test_cancel_queued(void)
{
    const struct dsp_limits lim = {table, 0, 1, 0};
    json_object *body = request("q-1", "jarvis.test.sleep", "{\"ms\":10}", "");
    struct later l = {50, "q-1", 1, -1, 0, 0};
    struct exec_result res;
    int holder = hold_permit();
    struct rt_stats st;
    pthread_t th;
    int64_t took;

    CU_ASSERT_EQUAL_FATAL(pthread_create(&th, NULL, do_later, &l), 0);
    CU_ASSERT_EQUAL(execute(&lim, body, &res, &took), DSP_OK);
    pthread_join(th, NULL);
    CU_ASSERT_EQUAL(l.rc, 1);
    assert_canceled(&res);
    CU_ASSERT_STRING_EQUAL(res.reason, "canceled while queued");
    CU_ASSERT_TRUE(took >= 45);
    CU_ASSERT_TRUE(took < 500);
    rt_stats(table, &st);
    CU_ASSERT_EQUAL(st.running, 1); /* the holder only */
    CU_ASSERT_EQUAL(st.queued, 0);
    dsp_result_cleanup(&res);
    json_object_put(body);

    /* The SIGUSR2 above kicked the watches after this run had ended: it
     * must not cancel the next run. */
    rt_release(table, holder);
    body = request("q-2", "jarvis.test.sleep", "{\"ms\":20}", "");
    CU_ASSERT_EQUAL(execute(&lim, body, &res, &took), DSP_OK);
    CU_ASSERT_EQUAL(res.state, RUN_SUCCEEDED);
    CU_ASSERT_TRUE(took >= 15);
    CU_ASSERT_TRUE(table_empty(table));
    dsp_result_cleanup(&res);
    json_object_put(body);
}

static void test_timeout_queued(void)
{
    const struct dsp_limits lim = {table, 0.15, 1, 0};
    json_object *body = request("q-3", "jarvis.test.sleep", "{\"ms\":10}", "");
    struct exec_result res;
    int holder = hold_permit();
    int64_t took;

    CU_ASSERT_EQUAL(execute(&lim, body, &res, &took), DSP_OK);
    assert_timeout(&res);
    CU_ASSERT_STRING_EQUAL(res.reason, "timed out while queued");
    CU_ASSERT_TRUE(took >= 140);
    CU_ASSERT_TRUE(took < 1000);
    dsp_result_cleanup(&res);
    json_object_put(body);

    /* A zero budget while queued: at once. */
    body = request("q-4", "jarvis.test.sleep", "{\"ms\":10}", BUDGET("0"));
    CU_ASSERT_EQUAL(execute(&lim, body, &res, &took), DSP_OK);
    assert_timeout(&res);
    CU_ASSERT_STRING_EQUAL(res.reason, "timed out while queued");
    CU_ASSERT_TRUE(took < 500);
    dsp_result_cleanup(&res);
    json_object_put(body);
    rt_release(table, holder);
    CU_ASSERT_TRUE(table_empty(table));
}

static void test_canceled_before_start(void)
{
    const struct dsp_limits lim = {table, 0, 0, 0};
    json_object *body = request("pre-1", "jarvis.test.sleep", "{\"ms\":10}", "");
    struct exec_result res;
    pid_t owner = 0;
    int64_t took;

    CU_ASSERT_EQUAL(rt_cancel(table, "pre-1", 0, &owner), 0);
    CU_ASSERT_EQUAL(execute(&lim, body, &res, &took), DSP_OK);
    assert_canceled(&res);
    CU_ASSERT_STRING_EQUAL(res.reason, "canceled before it started");
    CU_ASSERT_TRUE(took < 500);
    CU_ASSERT_TRUE(table_empty(table)); /* the tombstone is consumed */
    dsp_result_cleanup(&res);

    /* So the same id runs next time. */
    CU_ASSERT_EQUAL(execute(&lim, body, &res, &took), DSP_OK);
    CU_ASSERT_EQUAL(res.state, RUN_SUCCEEDED);
    dsp_result_cleanup(&res);
    json_object_put(body);
}

static void test_duplicate_and_busy(void)
{
    const struct dsp_limits lim = {table, 0, 0, 0};
    json_object *body = request("dup-1", "jarvis.test.sleep", "{\"ms\":10}", "");
    json_object *unknown = request("dup-1", "no.such.type", "{}", "");
    struct dsp_limits one_lim = {NULL, 0, 0, 0};
    char path[128], err[256];
    struct exec_result res;
    struct rt_table *one;
    int64_t took;
    int slot;

    slot = rt_claim(table, "dup-1", 0);
    CU_ASSERT_TRUE_FATAL(slot >= 0);
    CU_ASSERT_EQUAL(execute(&lim, body, &res, &took), DSP_DUPLICATE);
    /* An unknown type fails before it takes any place, so no 409. */
    CU_ASSERT_EQUAL(execute(&lim, unknown, &res, &took), DSP_OK);
    CU_ASSERT_EQUAL(res.state, RUN_FAILED);
    CU_ASSERT_STRING_EQUAL(res.error_code, "unknown_node_type");
    dsp_result_cleanup(&res);
    rt_release(table, slot);
    CU_ASSERT_TRUE(table_empty(table));

    snprintf(path, sizeof path, "%s/one.tbl", dir);
    one = rt_open(path, 1, err, sizeof err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(one);
    one_lim.rt = one;
    slot = rt_claim(one, "other", 0);
    CU_ASSERT_EQUAL(slot, 0);
    CU_ASSERT_EQUAL(execute(&one_lim, body, &res, &took), DSP_BUSY);
    rt_release(one, slot);
    CU_ASSERT_EQUAL(execute(&one_lim, body, &res, &took), DSP_OK);
    CU_ASSERT_EQUAL(res.state, RUN_SUCCEEDED);
    dsp_result_cleanup(&res);
    CU_ASSERT_TRUE(table_empty(one));
    rt_close(one);
    json_object_put(unknown);
    json_object_put(body);
}

/* ---- the ctx wait API ---- */

/* Runs runner.test.wait_fd on fd with extra inputs; l (if any) runs on a
 * helper thread meanwhile. */
static int run_wait_fd(const char *id, int fd, const char *more_inputs, const char *rest,
                       struct later *l, struct exec_result *res, int64_t *took)
{
    const struct dsp_limits lim = {table, 0, 0, 0};
    char inputs[128];
    json_object *body;
    pthread_t th;
    int rc;

    snprintf(inputs, sizeof inputs, "{\"fd\":%d%s}", fd, more_inputs);
    body = request(id, "runner.test.wait_fd", inputs, rest);
    if (l != NULL)
        CU_ASSERT_EQUAL_FATAL(pthread_create(&th, NULL, do_later, l), 0);
    rc = execute(&lim, body, res, took);
    if (l != NULL)
        pthread_join(th, NULL);
    json_object_put(body);
    return rc;
}

static void test_wait_fd(void)
{
    struct exec_result res;
    struct later l;
    int64_t took;
    char want[64], c;
    int fds[2];

    CU_ASSERT_EQUAL_FATAL(pipe2(fds, O_CLOEXEC | O_NONBLOCK), 0);

    /* Readable after 30 ms. */
    l = (struct later){30, NULL, 0, fds[1], 0, 0};
    CU_ASSERT_EQUAL(run_wait_fd("w-1", fds[0], "", "", &l, &res, &took), DSP_OK);
    CU_ASSERT_EQUAL(l.rc, 1);
    CU_ASSERT_EQUAL(res.state, RUN_SUCCEEDED);
    snprintf(want, sizeof want, "{\"revents\":%d}", POLLIN);
    TU_ASSERT_JSON(res.outputs, want);
    CU_ASSERT_TRUE(took >= 25);
    CU_ASSERT_TRUE(took < 1000);
    dsp_result_cleanup(&res);
    CU_ASSERT_EQUAL(read(fds[0], &c, 1), 1);

    /* The caller's own timeout. */
    CU_ASSERT_EQUAL(run_wait_fd("w-2", fds[0], ",\"timeout_ms\":20", "", NULL, &res, &took),
                    DSP_OK);
    CU_ASSERT_EQUAL(res.state, RUN_SUCCEEDED);
    TU_ASSERT_JSON(res.outputs, "{\"elapsed\":true}");
    CU_ASSERT_TRUE(took >= 18);
    CU_ASSERT_TRUE(took < 1000);
    dsp_result_cleanup(&res);

    /* ... which a shorter deadline beats. */
    CU_ASSERT_EQUAL(
        run_wait_fd("w-3", fds[0], ",\"timeout_ms\":5000", BUDGET("50"), NULL, &res, &took),
        DSP_OK);
    assert_timeout(&res);
    CU_ASSERT_TRUE(took >= 45);
    CU_ASSERT_TRUE(took < 1000);
    dsp_result_cleanup(&res);

    /* Canceled while waiting. */
    l = (struct later){50, "w-4", 1, -1, 0, 0};
    CU_ASSERT_EQUAL(run_wait_fd("w-4", fds[0], "", "", &l, &res, &took), DSP_OK);
    CU_ASSERT_EQUAL(l.rc, 1);
    assert_canceled(&res);
    CU_ASSERT_TRUE(took >= 45);
    CU_ASSERT_TRUE(took < 500);
    dsp_result_cleanup(&res);

    CU_ASSERT_TRUE(table_empty(table));
    close(fds[0]);
    close(fds[1]);
}

static void test_ctx_probe(void)
{
    const struct dsp_limits lim = {table, 0, 0, 0};
    json_object *body = request("pr-1", "runner.test.probe", "{}", ""), *v = NULL;
    struct exec_result res;
    char want[128];
    int64_t took, left;

    /* No deadline. */
    CU_ASSERT_TRUE(rn_wake_fd(rn_runner_default()) >= 0);
    CU_ASSERT_EQUAL(execute(&lim, body, &res, &took), DSP_OK);
    CU_ASSERT_EQUAL_FATAL(res.state, RUN_SUCCEEDED);
    snprintf(want, sizeof want, "{\"remaining_ms\":-1,\"wake_fd\":%d,\"cancelled\":0}",
             rn_wake_fd(rn_runner_default()));
    TU_ASSERT_JSON(res.outputs, want);
    dsp_result_cleanup(&res);
    json_object_put(body);

    /* A 1 s budget: some of it left, never more. */
    body = request("pr-2", "runner.test.probe", "{}", BUDGET("1000"));
    CU_ASSERT_EQUAL(execute(&lim, body, &res, &took), DSP_OK);
    CU_ASSERT_EQUAL_FATAL(res.state, RUN_SUCCEEDED);
    CU_ASSERT_TRUE_FATAL(json_object_object_get_ex(res.outputs, "remaining_ms", &v));
    left = json_object_get_int64(v);
    CU_ASSERT_TRUE(left > 0);
    CU_ASSERT_TRUE(left <= 1000);
    dsp_result_cleanup(&res);
    json_object_put(body);
    CU_ASSERT_TRUE(table_empty(table));
}

/* ---- the client's connection ---- */

struct closer {
    long after_ms;
    int fd;
};

static void *close_later(void *arg)
{
    struct closer *c = arg;

    sleep_ms(c->after_ms);
    close(c->fd);
    return NULL;
}

/* execute() on a connection: sv[0] is the worker's end, the peer (sv[1])
 * is closed after after_ms, as nginx does when its client goes away. */
static int execute_until_hangup(const struct dsp_limits *lim, json_object *body, long after_ms,
                                struct exec_result *res, int64_t *took_ms)
{
    struct exec_req req;
    struct dsp_conn conn = {NULL, -1, 0, NULL, NULL, NULL};
    struct closer c = {after_ms, -1};
    int sv[2], rc;
    int64_t t0 = mono_ms();
    pthread_t th;

    CU_ASSERT_EQUAL_FATAL(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    conn.client_fd = sv[0];
    c.fd = sv[1];
    CU_ASSERT_EQUAL_FATAL(pthread_create(&th, NULL, close_later, &c), 0);
    dsp_request_from_json(body, &req);
    rc = dsp_execute(&reg, lim, &req, &conn, res);
    *took_ms = mono_ms() - t0;
    pthread_join(th, NULL);
    close(sv[0]);
    return rc;
}

static void test_client_gone_running(void)
{
    const struct dsp_limits lim = {table, 0, 0, 0};
    json_object *body = request("cg-1", "jarvis.test.sleep", "{\"ms\":5000}", "");
    struct exec_result res;
    int64_t took;

    CU_ASSERT_EQUAL(execute_until_hangup(&lim, body, 100, &res, &took), DSP_OK);
    assert_canceled(&res);
    CU_ASSERT_STRING_EQUAL(res.reason, "the client closed the connection");
    CU_ASSERT_EQUAL(res.abandoned, 0);
    CU_ASSERT_TRUE(took >= 95);
    CU_ASSERT_TRUE(took < 1000);
    CU_ASSERT_TRUE(table_empty(table));
    dsp_result_cleanup(&res);
    json_object_put(body);
}

static void test_client_gone_queued(void)
{
    const struct dsp_limits lim = {table, 0, 1, 0};
    json_object *body = request("cg-2", "jarvis.test.sleep", "{\"ms\":10}", "");
    struct exec_result res;
    int holder = hold_permit();
    struct rt_stats st;
    int64_t took;

    CU_ASSERT_EQUAL(execute_until_hangup(&lim, body, 100, &res, &took), DSP_OK);
    assert_canceled(&res);
    CU_ASSERT_STRING_EQUAL(res.reason, "the client closed the connection while queued");
    /* Noticed within one wait slice of the hang-up. */
    CU_ASSERT_TRUE(took >= 95);
    CU_ASSERT_TRUE(took < 100 + RT_WAIT_SLICE_MS + 400);
    rt_stats(table, &st);
    CU_ASSERT_EQUAL(st.running, 1); /* the holder only: the queued run never ran */
    CU_ASSERT_EQUAL(st.queued, 0);
    rt_release(table, holder);
    CU_ASSERT_TRUE(table_empty(table));
    dsp_result_cleanup(&res);
    json_object_put(body);
}

/* A connection that stays open changes nothing. */
static void test_client_stays(void)
{
    const struct dsp_limits lim = {table, 0, 0, 0};
    json_object *body = request("cg-3", "jarvis.test.sleep", "{\"ms\":50}", "");
    struct exec_result res;
    int64_t took;

    CU_ASSERT_EQUAL(execute_until_hangup(&lim, body, 300, &res, &took), DSP_OK);
    CU_ASSERT_EQUAL(res.state, RUN_SUCCEEDED);
    CU_ASSERT_TRUE(took >= 45);
    dsp_result_cleanup(&res);
    json_object_put(body);
}

/* A worker with no thread to spare refuses an execute before it takes a slot. */
static void test_worker_full(void)
{
    const struct dsp_limits lim = {table, 0, 0, 0};
    json_object *body = request("cg-4", "jarvis.test.sleep", "{\"ms\":10}", "");
    struct dsp_conn conn = {NULL, -1, 1, NULL, NULL, NULL};
    struct exec_result res;
    struct exec_req req;

    dsp_request_from_json(body, &req);
    CU_ASSERT_EQUAL(dsp_execute(&reg, &lim, &req, &conn, &res), DSP_BUSY);
    CU_ASSERT_TRUE(table_empty(table));
    dsp_result_cleanup(&res);
    json_object_put(body);
}

/* A worker that stops answers its queued executes busy (retryable, never
 * run) instead of keeping them until a slot frees. */
struct stopper {
    long after_ms;
    atomic_int *flag;
};

static void *stop_later(void *arg)
{
    struct stopper *st = arg;

    sleep_ms(st->after_ms);
    atomic_store(st->flag, 1);
    return NULL;
}

static void test_stopping_while_queued(void)
{
    const struct dsp_limits lim = {table, 0, 1, 0};
    json_object *body = request("stop-1", "jarvis.test.sleep", "{\"ms\":10}", "");
    atomic_int stopping = 0;
    struct dsp_conn conn = {NULL, -1, 0, &stopping, NULL, NULL};
    struct stopper st = {100, &stopping};
    struct exec_result res;
    struct exec_req req;
    int holder = hold_permit();
    int64_t t0 = mono_ms();
    pthread_t th;

    CU_ASSERT_EQUAL_FATAL(pthread_create(&th, NULL, stop_later, &st), 0);
    dsp_request_from_json(body, &req);
    CU_ASSERT_EQUAL(dsp_execute(&reg, &lim, &req, &conn, &res), DSP_BUSY);
    CU_ASSERT_TRUE(mono_ms() - t0 < 100 + RT_WAIT_SLICE_MS + 400);
    pthread_join(th, NULL);
    rt_release(table, holder);
    CU_ASSERT_TRUE(table_empty(table));
    dsp_result_cleanup(&res);
    json_object_put(body);
}

/* Two runners at once, each on its own serving thread: a cancel of one
 * (kicked through SIGUSR2 as from another worker) leaves the other be. */
struct side_run {
    json_object *body;
    struct rn_runner *runner;
    struct exec_result res;
};

static void *run_on_side(void *arg)
{
    struct side_run *s = arg;
    const struct dsp_limits lim = {table, 0, 0, 0};
    struct dsp_conn conn = {s->runner, -1, 0, NULL, NULL, NULL};
    struct exec_req req;

    dsp_request_from_json(s->body, &req);
    dsp_execute(&reg, &lim, &req, &conn, &s->res);
    return NULL;
}

static void test_two_runners(void)
{
    struct side_run a, b;
    struct later l = {100, "two-a", 1, -1, 0, 0};
    pthread_t ta, tb, tl;
    int64_t t0 = mono_ms();

    memset(&a, 0, sizeof a);
    memset(&b, 0, sizeof b);
    a.body = request("two-a", "jarvis.test.sleep", "{\"ms\":5000}", "");
    a.runner = rn_runner_new();
    b.body = request("two-b", "jarvis.test.sleep", "{\"ms\":400}", "");
    b.runner = rn_runner_new();
    CU_ASSERT_PTR_NOT_NULL_FATAL(a.runner);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b.runner);
    CU_ASSERT_EQUAL_FATAL(pthread_create(&ta, NULL, run_on_side, &a), 0);
    CU_ASSERT_EQUAL_FATAL(pthread_create(&tb, NULL, run_on_side, &b), 0);
    CU_ASSERT_EQUAL_FATAL(pthread_create(&tl, NULL, do_later, &l), 0);
    pthread_join(ta, NULL);
    CU_ASSERT_TRUE(mono_ms() - t0 < 1000);
    pthread_join(tb, NULL);
    pthread_join(tl, NULL);
    CU_ASSERT_EQUAL(l.rc, 1);
    assert_canceled(&a.res);
    CU_ASSERT_EQUAL(b.res.state, RUN_SUCCEEDED);
    CU_ASSERT_TRUE(mono_ms() - t0 >= 395);
    CU_ASSERT_TRUE(table_empty(table));
    dsp_result_cleanup(&a.res);
    dsp_result_cleanup(&b.res);
    json_object_put(a.body);
    json_object_put(b.body);
    rn_runner_free(a.runner);
    rn_runner_free(b.runner);
}

/* ---- the runner alone: rn_run with a watch of the test's own ---- */

/* What a direct run's handler and watch see; passed as the job's ctx (the
 * runner never looks inside it). */
struct direct {
    struct rn_runner *runner;
    atomic_int cancel;     /* the watch's cancel predicate */
    atomic_int calls;      /* handler calls */
    atomic_int woken;      /* the handler saw its wake fd */
    atomic_int spin_until; /* 0: cooperate; else spin ignoring the wake fd until set to 2 */
    atomic_int back;       /* rn_run returned (never, once abandoned) */
    /* Set by the abandon callback. */
    atomic_int abandoned;
    enum rn_outcome abandon_outcome;
    pthread_t abandon_thread;
    int64_t abandon_ms;
    /* The run. */
    int64_t deadline_ms;
    int client_fd;
    int with_abandon;
    enum rn_outcome outcome;
    pthread_t run_thread;
    int64_t took_ms;
};

static int direct_check(const void *arg)
{
    const struct direct *d = arg;

    return atomic_load(&d->cancel);
}

/* Cooperates: waits on the wake fd (at most 5 s), returns {} if never woken. */
static int direct_handler(jarvis_ctx *ctx, json_object *inputs, json_object **outputs)
{
    struct direct *d = (struct direct *)(void *)ctx;
    struct pollfd p = {.fd = rn_wake_fd(d->runner), .events = POLLIN};

    (void)inputs;
    atomic_fetch_add(&d->calls, 1);
    if (atomic_load(&d->spin_until)) {
        while (atomic_load(&d->spin_until) != 2)
            sleep_ms(5); /* ignores its wake fd */
        return JARVIS_ERR_CANCELED;
    }
    if (poll(&p, 1, 5000) == 1) {
        atomic_store(&d->woken, 1);
        CU_ASSERT_TRUE(rn_stop_requested(d->runner));
        return JARVIS_ERR_CANCELED;
    }
    *outputs = json_object_new_object();
    return JARVIS_OK;
}

static void direct_abandon(void *arg, enum rn_outcome outcome)
{
    struct direct *d = arg;

    d->abandon_outcome = outcome;
    d->abandon_thread = pthread_self();
    d->abandon_ms = mono_ms();
    atomic_store(&d->abandoned, 1);
}

static void *direct_run(void *arg)
{
    struct direct *d = arg;
    struct rn_job job = {direct_handler, (jarvis_ctx *)(void *)d, NULL, NULL, 0};
    struct rn_watch w = {
        d->deadline_ms, direct_check, d, d->client_fd, d->with_abandon ? direct_abandon : NULL, d};
    int64_t t0 = mono_ms();

    d->outcome = rn_run(d->runner, &job, &w);
    d->took_ms = mono_ms() - t0;
    json_object_put(job.outputs);
    atomic_store(&d->back, 1);
    return NULL;
}

static void direct_init(struct direct *d)
{
    memset(d, 0, sizeof *d);
    d->runner = rn_runner_new();
    CU_ASSERT_PTR_NOT_NULL_FATAL(d->runner);
    d->client_fd = -1;
}

static void test_direct_cancel_before_start(void)
{
    struct direct d;

    direct_init(&d);
    atomic_store(&d.cancel, 1);
    direct_run(&d);
    CU_ASSERT_EQUAL(d.outcome, RN_CANCELED);
    CU_ASSERT_EQUAL(atomic_load(&d.calls), 0); /* never called */
    CU_ASSERT_TRUE(d.took_ms < 100);
    /* The runner is reusable, and the stop does not leak into the next run. */
    atomic_store(&d.cancel, 0);
    d.deadline_ms = ts_now_ms() + 30;
    direct_run(&d);
    CU_ASSERT_EQUAL(d.outcome, RN_TIMEOUT);
    CU_ASSERT_EQUAL(atomic_load(&d.calls), 1);
    CU_ASSERT_TRUE(d.took_ms >= 25);
    rn_runner_free(d.runner);
}

static void *cancel_direct_later(void *arg)
{
    struct direct *d = arg;

    sleep_ms(50);
    atomic_store(&d->cancel, 1);
    rn_kick_all();
    return NULL;
}

static void test_direct_cancel_during(void)
{
    struct direct d;
    pthread_t th;

    direct_init(&d);
    CU_ASSERT_EQUAL_FATAL(pthread_create(&th, NULL, cancel_direct_later, &d), 0);
    direct_run(&d);
    pthread_join(th, NULL);
    CU_ASSERT_EQUAL(d.outcome, RN_CANCELED);
    CU_ASSERT_EQUAL(atomic_load(&d.woken), 1);
    CU_ASSERT_TRUE(d.took_ms >= 45);
    CU_ASSERT_TRUE(d.took_ms < 500);
    /* The same runner runs again: the stop raised for the canceled run is
     * not left on its wake fd (the handler sleeps until its own deadline). */
    atomic_store(&d.cancel, 0);
    atomic_store(&d.woken, 0);
    d.deadline_ms = ts_now_ms() + 120;
    direct_run(&d);
    CU_ASSERT_EQUAL(d.outcome, RN_TIMEOUT);
    CU_ASSERT_TRUE(d.took_ms >= 110);
    CU_ASSERT_TRUE(d.took_ms < 1000);
    rn_runner_free(d.runner);
}

static void test_direct_deadline(void)
{
    struct direct d;

    direct_init(&d);
    d.deadline_ms = ts_now_ms() + 80;
    direct_run(&d);
    CU_ASSERT_EQUAL(d.outcome, RN_TIMEOUT);
    CU_ASSERT_EQUAL(atomic_load(&d.woken), 1);
    CU_ASSERT_TRUE(d.took_ms >= 75);
    CU_ASSERT_TRUE(d.took_ms < 500);
    /* A deadline already spent: the handler never runs. */
    atomic_store(&d.calls, 0);
    d.deadline_ms = ts_now_ms() - 1;
    direct_run(&d);
    CU_ASSERT_EQUAL(d.outcome, RN_TIMEOUT);
    CU_ASSERT_EQUAL(atomic_load(&d.calls), 0);
    rn_runner_free(d.runner);
}

static void test_direct_client_gone(void)
{
    struct closer c = {60, -1};
    struct direct d;
    pthread_t th;
    int sv[2];

    direct_init(&d);
    CU_ASSERT_EQUAL_FATAL(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    d.client_fd = sv[0];
    c.fd = sv[1];
    CU_ASSERT_EQUAL_FATAL(pthread_create(&th, NULL, close_later, &c), 0);
    direct_run(&d);
    pthread_join(th, NULL);
    CU_ASSERT_EQUAL(d.outcome, RN_CLIENT_GONE);
    CU_ASSERT_EQUAL(atomic_load(&d.woken), 1);
    CU_ASSERT_TRUE(d.took_ms >= 55);
    CU_ASSERT_TRUE(d.took_ms < 500);
    /* Gone before the run starts: stopped at once. */
    atomic_store(&d.calls, 0);
    direct_run(&d);
    CU_ASSERT_EQUAL(d.outcome, RN_CLIENT_GONE);
    CU_ASSERT_TRUE(d.took_ms < 100);
    close(sv[0]);
    rn_runner_free(d.runner);
}

/* Two runs at once on two threads: one canceled, one at its deadline, one
 * returned; each ends for its own reason only. */
static void test_direct_two_at_once(void)
{
    struct direct a, b, c;
    pthread_t ta, tb, tc, tl;
    int64_t t0 = mono_ms();

    direct_init(&a);
    direct_init(&b);
    direct_init(&c);
    b.deadline_ms = ts_now_ms() + 150;
    c.deadline_ms = ts_now_ms() + 5000;
    CU_ASSERT_EQUAL_FATAL(pthread_create(&ta, NULL, direct_run, &a), 0);
    CU_ASSERT_EQUAL_FATAL(pthread_create(&tb, NULL, direct_run, &b), 0);
    CU_ASSERT_EQUAL_FATAL(pthread_create(&tc, NULL, direct_run, &c), 0);
    CU_ASSERT_EQUAL_FATAL(pthread_create(&tl, NULL, cancel_direct_later, &a), 0);
    pthread_join(ta, NULL);
    pthread_join(tl, NULL);
    CU_ASSERT_EQUAL(a.outcome, RN_CANCELED);
    CU_ASSERT_TRUE(a.took_ms < 140);
    pthread_join(tb, NULL);
    CU_ASSERT_EQUAL(b.outcome, RN_TIMEOUT);
    CU_ASSERT_TRUE(b.took_ms >= 140);
    CU_ASSERT_TRUE(mono_ms() - t0 < 1000);
    CU_ASSERT_EQUAL(atomic_load(&c.back), 0); /* still running, untouched */
    atomic_store(&c.cancel, 1);
    rn_kick_all();
    pthread_join(tc, NULL);
    CU_ASSERT_EQUAL(c.outcome, RN_CANCELED);
    rn_runner_free(a.runner);
    rn_runner_free(b.runner);
    rn_runner_free(c.runner);
}

/* A handler that ignores its wake fd past the grace: the watcher answers
 * through the abandon callback, on its own thread; the handler's thread
 * never comes back from rn_run, even once the handler returns. */
static void test_direct_abandoned(void)
{
    static struct direct d; /* its thread parks for good with it */
    int64_t t0 = mono_ms();
    pthread_t th;
    int i;

    direct_init(&d);
    d.with_abandon = 1;
    atomic_store(&d.spin_until, 1);
    d.deadline_ms = ts_now_ms() + 50;
    CU_ASSERT_EQUAL_FATAL(pthread_create(&th, NULL, direct_run, &d), 0);
    pthread_detach(th);
    for (i = 0; i < 600 && !atomic_load(&d.abandoned); i++)
        sleep_ms(10);
    CU_ASSERT_EQUAL_FATAL(atomic_load(&d.abandoned), 1);
    CU_ASSERT_EQUAL(d.abandon_outcome, RN_TIMEOUT);
    CU_ASSERT_FALSE(pthread_equal(d.abandon_thread, th));
    CU_ASSERT_TRUE(d.abandon_ms - t0 >= 50 + RN_GRACE_MS - 10);
    CU_ASSERT_TRUE(d.abandon_ms - t0 < 50 + RN_GRACE_MS + 500);
    /* The handler returns now; its thread must not. */
    atomic_store(&d.spin_until, 2);
    sleep_ms(100);
    CU_ASSERT_EQUAL(atomic_load(&d.back), 0);
}

/* ---- abandoned: must stay the last test ---- */

/* What the connection's abandon callback saw. */
static struct {
    atomic_int called;
    struct exec_result res;
    pthread_t thread;
    int64_t at_ms;
} answered;

static void record_abandoned(void *arg, const struct exec_result *res)
{
    (void)arg;
    answered.res = *res;
    answered.thread = pthread_self();
    answered.at_ms = mono_ms();
    atomic_store(&answered.called, 1);
}

static void *execute_abandoned(void *arg)
{
    static struct exec_result res; /* its thread never returns */
    const struct dsp_limits lim = {table, 0, 0, 0};
    struct dsp_conn conn = {arg, -1, 0, NULL, record_abandoned, NULL};
    struct exec_req req;

    dsp_request_from_json(abandoned_body, &req);
    dsp_execute(&reg, &lim, &req, &conn, &res);
    CU_FAIL("dsp_execute returned for an abandoned run");
    return NULL;
}

/*
 * The spin handler ignores its deadline, so after 100 ms + RN_GRACE_MS the
 * run is answered by the watcher through the connection's abandon callback
 * while the handler still spins on the thread that called dsp_execute
 * (until 3 s, then that thread parks for good). The handler still uses the
 * dispatch's job and context, so - as a worker does - nothing may run
 * after this: the program ends right after (the spinning thread dies with
 * it), which is why this is the last test of the last suite and its
 * request is kept in a global.
 */
static void test_abandoned(void)
{
    struct rn_runner *runner = rn_runner_new();
    int64_t t0 = mono_ms();
    char want[128];
    pthread_t th;
    int i;

    CU_ASSERT_PTR_NOT_NULL_FATAL(runner);
    abandoned_body = request("ab-1", "jarvis.test.spin", "{\"ms\":3000}", BUDGET("100"));
    CU_ASSERT_EQUAL_FATAL(pthread_create(&th, NULL, execute_abandoned, runner), 0);
    pthread_detach(th);
    for (i = 0; i < 500 && !atomic_load(&answered.called); i++)
        sleep_ms(10);
    CU_ASSERT_EQUAL_FATAL(atomic_load(&answered.called), 1);
    CU_ASSERT_FALSE(pthread_equal(answered.thread, th));
    assert_timeout(&answered.res);
    CU_ASSERT_EQUAL(answered.res.abandoned, 1);
    CU_ASSERT_PTR_NULL(answered.res.outputs);
    snprintf(want, sizeof want,
             "handler did not return within %d ms of being stopped; worker will exit", RN_GRACE_MS);
    CU_ASSERT_STRING_EQUAL(answered.res.reason, want);
    CU_ASSERT_TRUE(answered.at_ms - t0 >= 100 + RN_GRACE_MS - 10);
    CU_ASSERT_TRUE(answered.at_ms - t0 < 2900);
    /* The handler still runs: its slot and permit stay taken (the worker
     * exits, and the pool reclaims them from a dead owner), so the id
     * still answers 409 and the execute slots still count it. */
    {
        struct rt_stats st;
        rt_stats(table, &st);
        CU_ASSERT_EQUAL(st.running, 1);
        CU_ASSERT_EQUAL(rt_claim(table, "ab-1", 0), RT_DUPLICATE);
    }
}

/* ---- rn_init when fds run out (its own suite, before rn_init works) ---- */

/* How many fds rn_init needs: the epoll set, the kick eventfd, the timerfd
 * and the signalfd. */
#define RN_INIT_FDS 4
#define MAX_FILLERS 1024

/* The highest fd open in this process (below MAX_FILLERS; an inherited
 * one may sit high, as ctest's or a shell's can). */
static int highest_fd(void)
{
    int fd, top = -1;

    for (fd = 0; fd < MAX_FILLERS; fd++)
        if (fcntl(fd, F_GETFD) != -1)
            top = fd;
    return top;
}

static int count_fds(void)
{
    int fd, n = 0;

    for (fd = 0; fd < MAX_FILLERS; fd++)
        n += fcntl(fd, F_GETFD) != -1;
    return n;
}

/* With room for only k < RN_INIT_FDS new fds, rn_init fails and leaves no
 * fd open; with room again, it works (nothing half-made is in the way). */
static void test_init_out_of_fds(void)
{
    struct rlimit old, lim;
    static int fillers[MAX_FILLERS];
    int n_fillers = 0, top, before, k, i;

    /* Fill the holes below the highest open fd, so that "k more fds"
     * means exactly k. */
    top = highest_fd();
    while (n_fillers < MAX_FILLERS && (fillers[n_fillers] = open("/dev/null", O_RDONLY)) >= 0 &&
           fillers[n_fillers] < top)
        n_fillers++;
    if (n_fillers < MAX_FILLERS && fillers[n_fillers] >= 0)
        close(fillers[n_fillers]);
    top = highest_fd();
    before = count_fds();
    CU_ASSERT_FATAL(getrlimit(RLIMIT_NOFILE, &old) == 0);
    for (k = 0; k < RN_INIT_FDS - 1; k++) {
        lim = old;
        lim.rlim_cur = (rlim_t)(top + 1 + k);
        CU_ASSERT_FATAL(setrlimit(RLIMIT_NOFILE, &lim) == 0);
        CU_ASSERT_EQUAL(rn_init(), -1);
        CU_ASSERT_FATAL(setrlimit(RLIMIT_NOFILE, &old) == 0);
        CU_ASSERT_EQUAL(count_fds(), before);
    }
    for (i = 0; i < n_fillers; i++)
        close(fillers[i]);
    CU_ASSERT_EQUAL(rn_init(), 0);
}

static CU_TestInfo init_tests[] = {
    {"rn_init out of fds: nothing left open", test_init_out_of_fds},
    CU_TEST_INFO_NULL,
};

static CU_TestInfo run_tests[] = {
    {"sleep succeeds", test_sleep_succeeds},
    {"timeouts", test_timeouts},
    {"dsp_deadline", test_deadline},
    {"cancel while running", test_cancel_running},
    {"cancel while running, from another process", test_cancel_running_from_other_process},
    {"cancel while queued", test_cancel_queued},
    {"timeout while queued", test_timeout_queued},
    {"canceled before it started", test_canceled_before_start},
    {"duplicate and busy", test_duplicate_and_busy},
    {"jarvis_ctx_wait_fd", test_wait_fd},
    {"jarvis_ctx_remaining_ms and wake_fd", test_ctx_probe},
    {"client gone while running", test_client_gone_running},
    {"client gone while queued", test_client_gone_queued},
    {"client connection open", test_client_stays},
    {"worker with no spare thread: busy", test_worker_full},
    {"two runners, one canceled", test_two_runners},
    {"worker stopping while queued: busy", test_stopping_while_queued},
    {"rn_run: canceled before it starts", test_direct_cancel_before_start},
    {"rn_run: canceled while running", test_direct_cancel_during},
    {"rn_run: deadline", test_direct_deadline},
    {"rn_run: client gone", test_direct_client_gone},
    {"rn_run: runs at once", test_direct_two_at_once},
    {"rn_run: abandoned, answered by the watcher", test_direct_abandoned},
    {"abandoned handler (last)", test_abandoned},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"runner set-up", NULL, NULL, NULL, NULL, init_tests},
    {"runner", suite_init, suite_cleanup, NULL, NULL, run_tests},
    CU_SUITE_INFO_NULL,
};

int main(void)
{
    return tu_main(suites);
}
