/*
 * metrics.c - owns the pool's metrics (metrics.h): the layout of the
 * shared counters in the run table's mapping, how a request, a worker's
 * start and its end add to them, and the Prometheus text they are served
 * as.
 *
 * Sharing: every worker maps the same region (rt_metrics_area), zeroed
 * when the table file was made. Counters are 64-bit atomics, lock-free on
 * the targets we build for (checked below), added with relaxed order: each
 * is a count of its own, and a scrape needs no ordering between them. A
 * histogram's _count is the sum of its buckets as read, so one scrape is
 * consistent with itself even while requests add to it. The region holds
 * the node types by registry index, so the first worker stamps it with a
 * fingerprint of the layout and of its node type ids, and a worker of
 * another build (other node types) is refused instead of counting under
 * the wrong names; scripts/run-local and systemd start each pool on a new
 * table.
 *
 * Worker deaths: a worker records its pid and start time in a free slot of
 * sh->workers when it starts serving, and removes it when it stops as
 * asked (a stop signal, or after abandoning a handler: jarvis_abandons_total
 * counts those). A worker that ends on an error of its own counts itself
 * dead on the way out. One killed by a signal (a crash, kill -9, the OOM
 * killer) cannot: its record stays, and the next worker start or scrape
 * that finds its process gone counts the death and frees the record. The
 * record is one word (pid and start time), freed by compare-and-swap, so
 * two sweeps never count one death twice, and a recycled pid never passes
 * for the dead worker (its start time differs).
 */
#include "metrics.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

_Static_assert(sizeof(struct mx_shared) <= RT_METRICS_BYTES,
               "the metrics must fit the run table's region");
_Static_assert(ATOMIC_LONG_LOCK_FREE == 2 && ATOMIC_LLONG_LOCK_FREE == 2,
               "shared counters need lock-free 64-bit atomics");
_Static_assert(RUN_SUCCEEDED == 0 && RUN_FAILED == 1 && RUN_CANCELED == 2,
               "results[] is indexed by enum run_state");

/* Bumped whenever struct mx_shared changes meaning without changing size. */
#define MX_LAYOUT 1

/* A worker record: the pid in the low bits (Linux pids are below 2^22),
 * the start time (clock ticks since boot) above. */
#define PID_BITS 22
#define START_BITS 42

/* The duration histogram's upper bounds, in µs and as the le label. */
static const uint64_t bound_us[MX_BOUNDS] = {
    1000,   5000,    10000,   25000,   50000,    100000,   250000,
    500000, 1000000, 2500000, 5000000, 10000000, 30000000, 60000000,
};
static const char *const bound_label[MX_BOUNDS] = {
    "0.001", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25",
    "0.5",   "1",     "2.5",  "5",     "10",   "30",  "60",
};

static const char *const state_labels[MX_STATES] = {"succeeded", "failed", "canceled"};
static const char *const cancel_labels[MX_CANCEL_OUTCOMES] = {NULL, "hit", "tombstone", "unknown",
                                                              "full"};

static void add(_Atomic uint64_t *c, uint64_t n)
{
    atomic_fetch_add_explicit(c, n, memory_order_relaxed);
}

static uint64_t get(const _Atomic uint64_t *c)
{
    return atomic_load_explicit(c, memory_order_relaxed);
}

static uint64_t fnv64(uint64_t h, const char *s)
{
    while (*s)
        h = (h ^ (unsigned char)*s++) * 1099511628211ULL;
    return h;
}

/* The layout and the node types' names, as one nonzero word. */
static uint64_t fingerprint(const struct dsp_registry *reg)
{
    char head[64];
    uint64_t h = 14695981039346656037ULL;
    size_t i;

    snprintf(head, sizeof head, "mx/%d/%zu/%zu\n", MX_LAYOUT, sizeof(struct mx_shared), reg->count);
    h = fnv64(h, head);
    for (i = 0; i < reg->count; i++) {
        h = fnv64(h, reg->nodes[i]->node_type_id);
        h = fnv64(h, "\n");
    }
    return h != 0 ? h : 1;
}

int mx_attach(struct mx *m, void *area, const struct dsp_registry *reg, char *err, size_t errlen)
{
    uint64_t want = fingerprint(reg), have = 0;

    memset(m, 0, sizeof *m);
    m->reg = reg;
    if (area == NULL) {
        m->own = calloc(1, sizeof(struct mx_shared));
        if (m->own == NULL) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        area = m->own;
    }
    m->sh = area;
    if (!atomic_compare_exchange_strong(&m->sh->fingerprint, &have, want) && have != want) {
        snprintf(err, errlen,
                 "the run table's metrics were laid out by a build with other node types or "
                 "counters; remove the table file while the pool is stopped");
        m->sh = NULL;
        return -1;
    }
    return 0;
}

void mx_detach(struct mx *m)
{
    free(m->own);
    memset(m, 0, sizeof *m);
}

static pid_t key_pid(uint64_t key)
{
    return (pid_t)(key & ((1ULL << PID_BITS) - 1));
}

static uint64_t key_start(uint64_t key)
{
    return key >> PID_BITS;
}

unsigned mx_sweep(struct mx *m)
{
    unsigned i, live = 0;

    if (m->sh == NULL)
        return 0;
    for (i = 0; i < MX_MAX_WORKERS; i++) {
        uint64_t key = atomic_load(&m->sh->workers[i]);

        if (key == 0)
            continue;
        if (key == m->self_key || rt_proc_alive(key_pid(key), key_start(key))) {
            live++;
            continue;
        }
        /* Only the sweep whose swap frees the record counts the death. */
        if (atomic_compare_exchange_strong(&m->sh->workers[i], &key, 0))
            add(&m->sh->worker_deaths, 1);
    }
    return live;
}

void mx_worker_start(struct mx *m)
{
    pid_t self = getpid();
    uint64_t start = rt_proc_start_time(self), key;
    unsigned i;

    if (m->sh == NULL)
        return;
    add(&m->sh->worker_starts, 1);
    mx_sweep(m);
    if (start == 0 || start >= (1ULL << START_BITS) || (uint64_t)self >= (1ULL << PID_BITS))
        return; /* cannot be told from another process: not recorded */
    key = start << PID_BITS | (uint64_t)self;
    for (i = 0; i < MX_MAX_WORKERS; i++) {
        uint64_t free_key = 0;
        if (atomic_compare_exchange_strong(&m->sh->workers[i], &free_key, key)) {
            m->self_key = key;
            return;
        }
    }
    log_msg(JARVIS_LOG_WARN, "metrics: more than %d workers; this one's death would go uncounted",
            MX_MAX_WORKERS);
}

void mx_worker_exit(struct mx *m, int abnormal)
{
    uint64_t key = m->self_key;
    unsigned i;

    if (m->sh == NULL)
        return;
    for (i = 0; key != 0 && i < MX_MAX_WORKERS; i++) {
        uint64_t mine = key;
        if (atomic_compare_exchange_strong(&m->sh->workers[i], &mine, 0))
            break;
    }
    m->self_key = 0;
    if (abnormal)
        add(&m->sh->worker_deaths, 1);
}

static unsigned bucket_of(uint64_t us)
{
    unsigned i;

    for (i = 0; i < MX_BOUNDS && us > bound_us[i]; i++)
        ;
    return i;
}

void mx_observe(const struct mx *m, const struct mx_obs *o)
{
    struct mx_shared *sh = m->sh;
    struct mx_node_counters *n;
    size_t count;

    if (sh == NULL)
        return;
    add(&sh->responses[resp_status_index(o->status)], 1);
    if (o->cancel > MX_CANCEL_NONE && o->cancel < MX_CANCEL_OUTCOMES)
        add(&sh->cancels[o->cancel], 1);
    if (!o->executed || (unsigned)o->state >= MX_STATES)
        return;
    count = m->reg->count;
    n = &sh->nodes[o->node >= 0 && (size_t)o->node < count ? (size_t)o->node : count];
    add(&n->results[o->state], 1);
    add(&n->buckets[bucket_of(o->dur_us)], 1);
    add(&n->sum_us, o->dur_us);
    if (o->timeout)
        add(&sh->timeouts, 1);
    if (o->abandoned)
        add(&sh->abandons, 1);
}

/* ---- the exposition text ---- */

/* A growing text; failed once it could not grow. */
struct text {
    char *p;
    size_t len, cap;
    int failed;
};

static void put(struct text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void put(struct text *t, const char *fmt, ...)
{
    va_list ap;
    int n;

    for (;;) {
        if (t->failed)
            return;
        va_start(ap, fmt);
        n = vsnprintf(t->p + t->len, t->cap - t->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            t->failed = 1;
            return;
        }
        if ((size_t)n < t->cap - t->len) {
            t->len += (size_t)n;
            return;
        }
        {
            size_t cap = t->cap * 2 + (size_t)n;
            char *p = cap <= MX_MAX_TEXT ? realloc(t->p, cap) : NULL;
            if (p == NULL) {
                t->failed = 1;
                return;
            }
            t->p = p;
            t->cap = cap;
        }
    }
}

/* A label value as the format wants it: \, " and newline escaped. */
static void put_label_value(struct text *t, const char *v)
{
    for (; *v; v++) {
        if (*v == '\\')
            put(t, "\\\\");
        else if (*v == '"')
            put(t, "\\\"");
        else if (*v == '\n')
            put(t, "\\n");
        else
            put(t, "%c", *v);
    }
}

static void family(struct text *t, const char *name, const char *type, const char *help)
{
    put(t, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* `name{node_type_id="..."` for bucket i (the caller closes the braces). */
static void node_series(struct text *t, const struct mx *m, const char *name, size_t i)
{
    put(t, "%s{node_type_id=\"", name);
    put_label_value(t, i < m->reg->count ? m->reg->nodes[i]->node_type_id : "other");
    put(t, "\"");
}

static void put_executions(struct text *t, const struct mx *m)
{
    size_t i;
    unsigned s;

    family(t, "jarvis_executions_total", "counter",
           "Executes answered with an AtomicExecuteResult, by node type and final state.");
    for (i = 0; i <= m->reg->count; i++)
        for (s = 0; s < MX_STATES; s++) {
            node_series(t, m, "jarvis_executions_total", i);
            put(t, ",state=\"%s\"} %" PRIu64 "\n", state_labels[s],
                get(&m->sh->nodes[i].results[s]));
        }
}

static void put_durations(struct text *t, const struct mx *m)
{
    const char *name = "jarvis_execute_duration_seconds";
    size_t i;
    unsigned b;

    family(t, name, "histogram",
           "Time from accepting an execute to its AtomicExecuteResult, queueing included.");
    for (i = 0; i <= m->reg->count; i++) {
        const struct mx_node_counters *n = &m->sh->nodes[i];
        uint64_t total = 0, sum = get(&n->sum_us);

        for (b = 0; b <= MX_BOUNDS; b++) {
            total += get(&n->buckets[b]);
            node_series(t, m, "jarvis_execute_duration_seconds_bucket", i);
            put(t, ",le=\"%s\"} %" PRIu64 "\n", b < MX_BOUNDS ? bound_label[b] : "+Inf", total);
        }
        node_series(t, m, "jarvis_execute_duration_seconds_sum", i);
        put(t, "} %" PRIu64 ".%06" PRIu64 "\n", sum / 1000000, sum % 1000000);
        node_series(t, m, "jarvis_execute_duration_seconds_count", i);
        put(t, "} %" PRIu64 "\n", total);
    }
}

static void put_counter(struct text *t, const char *name, const char *help, uint64_t v)
{
    family(t, name, "counter", help);
    put(t, "%s %" PRIu64 "\n", name, v);
}

static void put_gauge(struct text *t, const char *name, const char *help, uint64_t v)
{
    family(t, name, "gauge", help);
    put(t, "%s %" PRIu64 "\n", name, v);
}

static void put_pool_counters(struct text *t, const struct mx *m)
{
    const struct mx_shared *sh = m->sh;
    unsigned i;

    family(t, "jarvis_http_responses_total", "counter",
           "Answers the workers wrote, by HTTP status (nginx's own answers are not counted).");
    for (i = 0; i <= MX_CODES; i++)
        put(t, "jarvis_http_responses_total{code=\"%s\"} %" PRIu64 "\n", resp_status_label(i),
            get(&sh->responses[i]));
    family(t, "jarvis_cancels_total", "counter",
           "Cancels by outcome: hit a run, renewed a tombstone, left a new one (unknown id), "
           "or found the table full.");
    for (i = MX_CANCEL_HIT; i < MX_CANCEL_OUTCOMES; i++)
        put(t, "jarvis_cancels_total{outcome=\"%s\"} %" PRIu64 "\n", cancel_labels[i],
            get(&sh->cancels[i]));
    put_counter(t, "jarvis_timeouts_total",
                "Executes that failed with error.code timeout (running or queued).",
                get(&sh->timeouts));
    put_counter(t, "jarvis_abandons_total",
                "Handlers abandoned after ignoring a cancel or deadline (their worker restarts).",
                get(&sh->abandons));
    put_counter(t, "jarvis_worker_starts_total", "Workers that started serving.",
                get(&sh->worker_starts));
    put_counter(t, "jarvis_worker_deaths_total",
                "Workers that ended without being asked to: killed by a signal or a fatal error.",
                get(&sh->worker_deaths));
}

static void put_gauges(struct text *t, const struct mx_gauges *g)
{
    const struct rt_stats *st = &g->st;

    put_gauge(t, "jarvis_workers", "Live workers recorded in the pool.", g->workers);
    if (!g->have_table)
        return;
    put_gauge(t, "jarvis_runs_running", "Runs holding an execute permit, pool-wide.", st->running);
    put_gauge(t, "jarvis_runs_queued", "Runs accepted and waiting for an execute permit.",
              st->queued);
    if (g->capacity > 0)
        put_gauge(t, "jarvis_execute_capacity", "Execute permits pool-wide.", g->capacity);
    put_gauge(t, "jarvis_run_table_slots", "Slots of the shared run table.", st->slots);
    put_gauge(t, "jarvis_run_table_tombstones", "Slots held by unexpired cancel tombstones.",
              st->tombstones);
    put_gauge(t, "jarvis_run_table_slots_used",
              "Slots held by running and queued runs and tombstones (executes answer 503 when "
              "every slot is used).",
              (uint64_t)st->running + st->queued + st->tombstones);
}

int mx_render(const struct mx *m, const struct mx_gauges *g, char **text, size_t *len)
{
    struct text t = {NULL, 0, 0, 0};

    *text = NULL;
    *len = 0;
    if (m->sh == NULL)
        return -1;
    t.cap = 16384;
    t.p = malloc(t.cap);
    if (t.p == NULL)
        return -1;
    put_executions(&t, m);
    put_durations(&t, m);
    put_pool_counters(&t, m);
    put_gauges(&t, g);
    if (t.failed) {
        free(t.p);
        return -1;
    }
    *text = t.p;
    *len = t.len;
    return 0;
}
