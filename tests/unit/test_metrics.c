/*
 * test_metrics.c - the pool's metrics (metrics.h): what each kind of
 * answer adds, the histogram's buckets and sum, the bounded labels (an
 * unknown node type or status is "other", a label value is escaped), the
 * exposition text's shape, the layout fingerprint that refuses another
 * build, counters shared through the run table's mapping across processes,
 * and worker starts and deaths (records freed by an asked-for stop, counted
 * once when their process is gone, never for a live one or a recycled pid).
 *
 * Children are forked with their lifetime bounded (CHILD_MAX_MS) and always
 * waited for; every table lives in one mkdtemp folder the suite removes.
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "metrics.h"
#include "testutil.h"

/* The longest a child of these tests may live. */
#define CHILD_MAX_MS 10000

static char dir[64];

/* Two node types, sorted; the second's id needs escaping in a label. */
static const jarvis_node node_a = {.node_type_id = "a.one", .version = "1"};
static const jarvis_node node_b = {.node_type_id = "b\"two\\x", .version = "1"};
static struct dsp_registry reg2;
static struct dsp_registry reg1; /* node_a alone: another build */

static int suite_init(void)
{
    reg2.nodes[0] = &node_a;
    reg2.nodes[1] = &node_b;
    reg2.count = 2;
    reg1.nodes[0] = &node_a;
    reg1.count = 1;
    log_set_level(JARVIS_LOG_ERROR);
    snprintf(dir, sizeof dir, "/tmp/jarvis-mx-XXXXXX");
    return mkdtemp(dir) != NULL ? 0 : -1;
}

static int suite_cleanup(void)
{
    return tu_remove_tree(dir);
}

/* Memory shared with forked children, zeroed as a new table's region. */
static void *shared_area(void)
{
    void *p =
        mmap(NULL, RT_METRICS_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);

    CU_ASSERT_FATAL(p != MAP_FAILED);
    return p;
}

/* The rendered text (caller frees); fails the test if there is none. */
static char *render(const struct mx *m, const struct mx_gauges *g)
{
    char *text = NULL;
    size_t len = 0;

    CU_ASSERT_EQUAL_FATAL(mx_render(m, g, &text, &len), 0);
    CU_ASSERT_EQUAL(strlen(text), len);
    return text;
}

/* 1 if text holds `line` as a whole line. */
static int has_line(const char *text, const char *line)
{
    size_t n = strlen(line);
    const char *p = text;

    while ((p = strstr(p, line)) != NULL) {
        if ((p == text || p[-1] == '\n') && p[n] == '\n')
            return 1;
        p += n;
    }
    fprintf(stderr, "\n  missing line: %s\n", line);
    return 0;
}

#define ASSERT_LINE(text, line) CU_ASSERT_TRUE(has_line((text), (line)))

static void observe_exec(const struct mx *m, int node, enum run_state state, uint64_t us,
                         int timeout, int abandoned)
{
    struct mx_obs o = {.status = 200,
                       .executed = 1,
                       .node = node,
                       .state = state,
                       .timeout = timeout,
                       .abandoned = abandoned,
                       .dur_us = us};

    mx_observe(m, &o);
}

static void observe_status(const struct mx *m, int status, enum mx_cancel cancel)
{
    struct mx_obs o = {.status = status, .cancel = cancel};

    mx_observe(m, &o);
}

static void test_observe_and_render(void)
{
    struct mx m;
    struct mx_gauges g = {0};
    char err[256], *text;

    CU_ASSERT_EQUAL_FATAL(mx_attach(&m, NULL, &reg2, err, sizeof err), 0);
    observe_exec(&m, 0, RUN_SUCCEEDED, 1000, 0, 0);    /* le 0.001 exactly */
    observe_exec(&m, 0, RUN_FAILED, 1001, 1, 0);       /* just over: le 0.005 */
    observe_exec(&m, -1, RUN_FAILED, 70000000, 0, 0);  /* unknown type, past 60 s */
    observe_exec(&m, 99, RUN_CANCELED, 0, 0, 1);       /* out of range: other too */
    observe_exec(&m, 1, RUN_CANCELED, 60000000, 0, 0); /* le 60 exactly */
    observe_status(&m, 404, MX_CANCEL_NONE);
    observe_status(&m, 418, MX_CANCEL_NONE);
    observe_status(&m, 204, MX_CANCEL_HIT);
    observe_status(&m, 204, MX_CANCEL_UNKNOWN);
    observe_status(&m, 204, MX_CANCEL_TOMBSTONE);
    observe_status(&m, 503, MX_CANCEL_FULL);
    /* A 200 that is no execute result (health) adds a response only. */
    observe_status(&m, 200, MX_CANCEL_NONE);
    g.workers = 3;
    text = render(&m, &g);

    ASSERT_LINE(text, "# TYPE jarvis_executions_total counter");
    ASSERT_LINE(text, "jarvis_executions_total{node_type_id=\"a.one\",state=\"succeeded\"} 1");
    ASSERT_LINE(text, "jarvis_executions_total{node_type_id=\"a.one\",state=\"failed\"} 1");
    ASSERT_LINE(text, "jarvis_executions_total{node_type_id=\"a.one\",state=\"canceled\"} 0");
    ASSERT_LINE(text,
                "jarvis_executions_total{node_type_id=\"b\\\"two\\\\x\",state=\"canceled\"} 1");
    ASSERT_LINE(text, "jarvis_executions_total{node_type_id=\"other\",state=\"failed\"} 1");
    ASSERT_LINE(text, "jarvis_executions_total{node_type_id=\"other\",state=\"canceled\"} 1");

    ASSERT_LINE(text, "# TYPE jarvis_execute_duration_seconds histogram");
    ASSERT_LINE(text, "jarvis_execute_duration_seconds_bucket{node_type_id=\"a.one\",le=\"0.001\"}"
                      " 1");
    ASSERT_LINE(text, "jarvis_execute_duration_seconds_bucket{node_type_id=\"a.one\",le=\"0.005\"}"
                      " 2");
    ASSERT_LINE(text, "jarvis_execute_duration_seconds_bucket{node_type_id=\"a.one\",le=\"+Inf\"}"
                      " 2");
    ASSERT_LINE(text, "jarvis_execute_duration_seconds_sum{node_type_id=\"a.one\"} 0.002001");
    ASSERT_LINE(text, "jarvis_execute_duration_seconds_count{node_type_id=\"a.one\"} 2");
    ASSERT_LINE(text, "jarvis_execute_duration_seconds_bucket{node_type_id=\"b\\\"two\\\\x\","
                      "le=\"30\"} 0");
    ASSERT_LINE(text, "jarvis_execute_duration_seconds_bucket{node_type_id=\"b\\\"two\\\\x\","
                      "le=\"60\"} 1");
    ASSERT_LINE(text, "jarvis_execute_duration_seconds_bucket{node_type_id=\"other\",le=\"0.001\"}"
                      " 1");
    ASSERT_LINE(text, "jarvis_execute_duration_seconds_bucket{node_type_id=\"other\",le=\"60\"} 1");
    ASSERT_LINE(text, "jarvis_execute_duration_seconds_bucket{node_type_id=\"other\",le=\"+Inf\"}"
                      " 2");
    ASSERT_LINE(text, "jarvis_execute_duration_seconds_sum{node_type_id=\"other\"} 70.000000");

    ASSERT_LINE(text, "jarvis_http_responses_total{code=\"200\"} 6");
    ASSERT_LINE(text, "jarvis_http_responses_total{code=\"204\"} 3");
    ASSERT_LINE(text, "jarvis_http_responses_total{code=\"404\"} 1");
    ASSERT_LINE(text, "jarvis_http_responses_total{code=\"503\"} 1");
    ASSERT_LINE(text, "jarvis_http_responses_total{code=\"400\"} 0");
    ASSERT_LINE(text, "jarvis_http_responses_total{code=\"other\"} 1");
    ASSERT_LINE(text, "jarvis_cancels_total{outcome=\"hit\"} 1");
    ASSERT_LINE(text, "jarvis_cancels_total{outcome=\"tombstone\"} 1");
    ASSERT_LINE(text, "jarvis_cancels_total{outcome=\"unknown\"} 1");
    ASSERT_LINE(text, "jarvis_cancels_total{outcome=\"full\"} 1");
    ASSERT_LINE(text, "jarvis_timeouts_total 1");
    ASSERT_LINE(text, "jarvis_abandons_total 1");
    ASSERT_LINE(text, "jarvis_worker_starts_total 0");
    ASSERT_LINE(text, "jarvis_worker_deaths_total 0");
    ASSERT_LINE(text, "# TYPE jarvis_workers gauge");
    ASSERT_LINE(text, "jarvis_workers 3");
    /* No run table: no run gauges. */
    CU_ASSERT_PTR_NULL(strstr(text, "jarvis_runs_running"));
    free(text);

    g.have_table = 1;
    g.st = (struct rt_stats){.running = 2, .queued = 5, .tombstones = 1, .slots = 16};
    g.capacity = 2;
    text = render(&m, &g);
    ASSERT_LINE(text, "jarvis_runs_running 2");
    ASSERT_LINE(text, "jarvis_runs_queued 5");
    ASSERT_LINE(text, "jarvis_execute_capacity 2");
    ASSERT_LINE(text, "jarvis_run_table_slots 16");
    ASSERT_LINE(text, "jarvis_run_table_tombstones 1");
    ASSERT_LINE(text, "jarvis_run_table_slots_used 8");
    free(text);
    /* No bound on the permits: no capacity gauge. */
    g.capacity = 0;
    text = render(&m, &g);
    CU_ASSERT_PTR_NULL(strstr(text, "jarvis_execute_capacity"));
    free(text);
    mx_detach(&m);
}

/* The text's shape: each family is HELP then TYPE, each sample belongs to
 * the family declared last, the text ends with a newline. */
static void test_text_shape(void)
{
    struct mx m;
    struct mx_gauges g = {.have_table = 1, .capacity = 4};
    char err[256], family[128] = "", *text, *line, *save = NULL;
    unsigned helps = 0, types = 0, samples = 0;

    CU_ASSERT_EQUAL_FATAL(mx_attach(&m, NULL, &reg2, err, sizeof err), 0);
    text = render(&m, &g);
    CU_ASSERT_EQUAL(text[strlen(text) - 1], '\n');
    for (line = strtok_r(text, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save)) {
        char name[128];
        if (strncmp(line, "# HELP ", 7) == 0) {
            CU_ASSERT_EQUAL(helps, types);
            CU_ASSERT_EQUAL(sscanf(line + 7, "%127s", family), 1);
            helps++;
        } else if (strncmp(line, "# TYPE ", 7) == 0) {
            CU_ASSERT_EQUAL(sscanf(line + 7, "%127s", name), 1);
            CU_ASSERT_STRING_EQUAL(name, family);
            types++;
        } else {
            /* A sample: its name is the family's, or the family's with a
             * histogram suffix. */
            CU_ASSERT_EQUAL(helps, types);
            CU_ASSERT_EQUAL(strncmp(line, family, strlen(family)), 0);
            CU_ASSERT_PTR_NOT_NULL(strchr(line, ' '));
            samples++;
        }
    }
    /* 7 counter families, a histogram and 7 gauges. */
    CU_ASSERT_EQUAL(helps, 15);
    /* 3 nodes (2 + other) x 3 states, 3 x (15 buckets + sum + count),
     * 15 codes, 4 cancels, 4 single counters, 7 gauges. */
    CU_ASSERT_EQUAL(samples, 9 + 51 + 15 + 4 + 4 + 7);
    free(text);
    mx_detach(&m);
}

static void test_fingerprint(void)
{
    void *area = shared_area();
    struct mx m1, m2, m3;
    struct mx_gauges g = {0};
    char err[256] = "", *text;

    CU_ASSERT_EQUAL_FATAL(mx_attach(&m1, area, &reg2, err, sizeof err), 0);
    /* The same build attaches to the same counters. */
    CU_ASSERT_EQUAL_FATAL(mx_attach(&m2, area, &reg2, err, sizeof err), 0);
    observe_exec(&m1, 1, RUN_SUCCEEDED, 5, 0, 0);
    text = render(&m2, &g);
    ASSERT_LINE(text,
                "jarvis_executions_total{node_type_id=\"b\\\"two\\\\x\",state=\"succeeded\"} 1");
    free(text);
    /* Other node types would count under the wrong names: refused. */
    CU_ASSERT_EQUAL(mx_attach(&m3, area, &reg1, err, sizeof err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "other node types"));
    CU_ASSERT_PTR_NULL(m3.sh);
    mx_observe(&m3, &(struct mx_obs){.status = 200}); /* a detached handle counts nothing */
    CU_ASSERT_EQUAL(mx_render(&m3, &g, &text, &(size_t){0}), -1);
    mx_detach(&m1);
    mx_detach(&m2);
    munmap(area, RT_METRICS_BYTES);
}

/* Waits (bounded) for pid; its exit status, or -1 (then it is killed). */
static int wait_child(pid_t pid)
{
    int st = 0, ms;

    for (ms = 0; ms < CHILD_MAX_MS; ms += 10) {
        if (waitpid(pid, &st, WNOHANG) == pid)
            return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
        nanosleep(&(struct timespec){0, 10000000L}, NULL);
    }
    kill(pid, SIGKILL);
    waitpid(pid, &st, 0);
    return -1;
}

/* The run table's region: where it lies, zeroed, and shared with another
 * process that opens the same file. */
static void test_run_table_region(void)
{
    char path[128], err[256] = "", *text;
    struct rt_table *t;
    struct mx m;
    struct mx_gauges g = {0};
    unsigned char *area;
    pid_t pid;

    snprintf(path, sizeof path, "%s/mx.tbl", dir);
    t = rt_open(path, 4, err, sizeof err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    area = (unsigned char *)rt_metrics_area(t);
    CU_ASSERT_EQUAL((uintptr_t)area % 64, 0);
    /* Zeroed, and all of it inside the file's mapping (past it: SIGBUS). */
    CU_ASSERT_EQUAL(area[0], 0);
    CU_ASSERT_EQUAL(area[RT_METRICS_BYTES - 1], 0);
    area[RT_METRICS_BYTES - 1] = 0;
    CU_ASSERT_EQUAL_FATAL(mx_attach(&m, rt_metrics_area(t), &reg2, err, sizeof err), 0);
    pid = fork();
    CU_ASSERT_TRUE_FATAL(pid >= 0);
    if (pid == 0) {
        struct rt_table *c = rt_open(path, 4, err, sizeof err);
        struct mx cm;
        if (c == NULL || mx_attach(&cm, rt_metrics_area(c), &reg2, err, sizeof err) != 0)
            _exit(1);
        observe_exec(&cm, 0, RUN_SUCCEEDED, 10, 0, 0);
        _exit(0);
    }
    CU_ASSERT_EQUAL(wait_child(pid), 0);
    observe_exec(&m, 0, RUN_SUCCEEDED, 10, 0, 0);
    text = render(&m, &g);
    ASSERT_LINE(text, "jarvis_executions_total{node_type_id=\"a.one\",state=\"succeeded\"} 2");
    free(text);
    mx_detach(&m);
    rt_close(t);
}

static uint64_t starts(const struct mx *m)
{
    return atomic_load(&m->sh->worker_starts);
}

static uint64_t deaths(const struct mx *m)
{
    return atomic_load(&m->sh->worker_deaths);
}

/* A child that starts as a worker and then ends as `how` says:
 * 0 killed (no exit call), 1 a stop asked for, 2 an error of its own. */
static void child_worker(struct mx *m, int how)
{
    pid_t pid = fork();

    CU_ASSERT_TRUE_FATAL(pid >= 0);
    if (pid == 0) {
        mx_worker_start(m);
        if (how > 0)
            mx_worker_exit(m, how == 2);
        _exit(0);
    }
    CU_ASSERT_EQUAL(wait_child(pid), 0);
}

static void test_workers(void)
{
    void *area = shared_area();
    struct mx m;
    char err[256];

    CU_ASSERT_EQUAL_FATAL(mx_attach(&m, area, &reg2, err, sizeof err), 0);
    mx_worker_start(&m);
    CU_ASSERT_EQUAL(starts(&m), 1);
    CU_ASSERT_EQUAL(mx_sweep(&m), 1); /* this process, alive */
    CU_ASSERT_EQUAL(deaths(&m), 0);

    /* Gone without a word (as kill -9 leaves it): one death, counted once. */
    child_worker(&m, 0);
    CU_ASSERT_EQUAL(starts(&m), 2);
    CU_ASSERT_EQUAL(mx_sweep(&m), 1);
    CU_ASSERT_EQUAL(deaths(&m), 1);
    CU_ASSERT_EQUAL(mx_sweep(&m), 1);
    CU_ASSERT_EQUAL(deaths(&m), 1);

    /* Stopped as asked: no death. */
    child_worker(&m, 1);
    CU_ASSERT_EQUAL(mx_sweep(&m), 1);
    CU_ASSERT_EQUAL(deaths(&m), 1);

    /* Ended on an error of its own: it counts itself, and no sweep again. */
    child_worker(&m, 2);
    CU_ASSERT_EQUAL(deaths(&m), 2);
    CU_ASSERT_EQUAL(mx_sweep(&m), 1);
    CU_ASSERT_EQUAL(deaths(&m), 2);
    CU_ASSERT_EQUAL(starts(&m), 4);

    /* A record with this live pid but another start time is a process
     * that had the pid before: dead. */
    atomic_store(&m.sh->workers[MX_MAX_WORKERS - 1], (1ULL << 22) | (uint64_t)getpid());
    CU_ASSERT_EQUAL(mx_sweep(&m), 1);
    CU_ASSERT_EQUAL(deaths(&m), 3);

    mx_worker_exit(&m, 0);
    CU_ASSERT_EQUAL(mx_sweep(&m), 0);
    CU_ASSERT_EQUAL(deaths(&m), 3);
    mx_detach(&m);
    munmap(area, RT_METRICS_BYTES);
}

static CU_TestInfo tests[] = {
    {"what answers add, as text", test_observe_and_render},
    {"the text's shape", test_text_shape},
    {"a layout fingerprint refuses another build", test_fingerprint},
    {"the run table's region, shared across processes", test_run_table_region},
    {"worker starts and deaths", test_workers},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"metrics", suite_init, suite_cleanup, NULL, NULL, tests},
    CU_SUITE_INFO_NULL,
};

int main(void)
{
    return tu_main(suites);
}
