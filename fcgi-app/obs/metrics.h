/*
 * metrics.h - the pool's Prometheus metrics (GET /metrics): counters every
 * worker adds to in the run table's mapping (rt_metrics_area), so one
 * scrape of any worker sees the whole pool, and their text exposition
 * (format 0.0.4).
 *
 * Each request adds to the counters once, when its answer is decided
 * (mx_observe, from app.c): a few relaxed atomic adds, no lock, no system
 * call. Labels come from fixed sets only: node_type_id is a linked node
 * type or "other" (an id the client made up is never stored), code is one
 * of the statuses the service writes or "other".
 */
#ifndef JARVIS_METRICS_H
#define JARVIS_METRICS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "dispatch.h"
#include "response.h"
#include "runtable.h"

/* The path, served unauthenticated (nginx allows it from loopback only). */
#define MX_PATH "/metrics"
#define MX_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* Node buckets: one per linked node type (registry order), then "other". */
#define MX_MAX_NODES (DSP_MAX_NODES + 1)
/* Final states of an AtomicExecuteResult (enum run_state). */
#define MX_STATES 3
/* Finite upper bounds of the duration histogram (MX_BOUNDS in metrics.c),
 * plus one bucket above them (+Inf). */
#define MX_BOUNDS 14
/* HTTP statuses counted by name (response.c's list), plus "other". */
#define MX_CODES RESP_N_STATUSES
/* Live workers recorded for the death count; more are counted as started
 * but their deaths go unseen. */
#define MX_MAX_WORKERS 256
/* Largest exposition text; past it the scrape fails (500). */
#define MX_MAX_TEXT (4 * 1024 * 1024)

/* How a cancel went (rt_cancel's outcomes, and a full table). */
enum mx_cancel {
    MX_CANCEL_NONE = 0,  /* the request was no cancel */
    MX_CANCEL_HIT,       /* a run in flight or queued had the id */
    MX_CANCEL_TOMBSTONE, /* a tombstone had it (a repeated cancel): renewed */
    MX_CANCEL_UNKNOWN,   /* nothing had it: a new tombstone */
    MX_CANCEL_FULL,      /* nothing had it and no slot was free: 503 */
    MX_CANCEL_OUTCOMES
};

struct mx_node_counters {
    _Atomic uint64_t results[MX_STATES];
    _Atomic uint64_t buckets[MX_BOUNDS + 1]; /* not cumulative; the last is +Inf */
    _Atomic uint64_t sum_us;
};

/* The shared counters. Only metrics.c reads or writes them; their layout
 * is checked by mx_attach (a fingerprint of it and of the node types). */
struct mx_shared {
    _Atomic uint64_t fingerprint; /* 0 until the first worker attached */
    _Atomic uint64_t responses[MX_CODES + 1];
    _Atomic uint64_t cancels[MX_CANCEL_OUTCOMES];
    _Atomic uint64_t timeouts;
    _Atomic uint64_t abandons;
    _Atomic uint64_t worker_starts;
    _Atomic uint64_t worker_deaths;
    _Atomic uint64_t workers[MX_MAX_WORKERS]; /* live workers' keys, 0: free */
    struct mx_node_counters nodes[MX_MAX_NODES];
};

/* One process's view: the shared counters and the names of the buckets. */
struct mx {
    struct mx_shared *sh; /* NULL: metrics off */
    void *own;            /* sh when mx_attach allocated it (no run table) */
    const struct dsp_registry *reg;
    uint64_t self_key; /* this worker's record in sh->workers, 0: none */
};

/* What one request adds (filled along app_handle, then mx_observe). */
struct mx_obs {
    int status;
    int executed;         /* an AtomicExecuteResult (200) was answered */
    int node;             /* its bucket: a registry index, or -1 for "other" */
    enum run_state state; /* its final state */
    int timeout;          /* it failed with error.code "timeout" */
    int abandoned;        /* its handler was abandoned */
    int64_t t0_us;        /* ts_mono_us() when the execute began */
    uint64_t dur_us;      /* how long the execute took, accepted to answered */
    enum mx_cancel cancel;
};

/*
 * Attaches m to the counters at area (RT_METRICS_BYTES of the run table,
 * rt_metrics_area) for the node types of reg (borrowed, outlives m); area
 * NULL: counters of this process alone, allocated here (tools, tests).
 * The first process stamps the area with a fingerprint of the counters'
 * layout and reg's node type ids; a process built otherwise is refused, as
 * a run table of another layout is. 0, or -1 with a one-line reason in err.
 */
int mx_attach(struct mx *m, void *area, const struct dsp_registry *reg, char *err, size_t errlen);

/* Frees what mx_attach allocated (not the shared area). */
void mx_detach(struct mx *m);

/*
 * A worker starts serving: counts the start, counts as deaths the records
 * of workers gone without stopping (see mx_sweep), and records this
 * process (its pid and start time) until mx_worker_exit.
 */
void mx_worker_start(struct mx *m);

/* The worker ends on its own (_exit follows). abnormal 0: a stop that was
 * asked for (a stop signal, an abandoned handler), which is no death: its
 * record goes. abnormal 1: it ends on an error of its own: a death. */
void mx_worker_exit(struct mx *m, int abnormal);

/*
 * Each record of a worker that is gone (its pid is no more, or now names
 * a process started at another time) is a death: counted once, by
 * whichever process removes the record. Done at every worker start (the
 * pool replaces a dead worker at once) and every scrape. Returns the live
 * records left.
 */
unsigned mx_sweep(struct mx *m);

/* Adds one request's answer (o->status, and what o says it was). */
void mx_observe(const struct mx *m, const struct mx_obs *o);

/* The gauges read at scrape time. */
struct mx_gauges {
    int have_table;     /* 0: no run table: the run gauges are left out */
    struct rt_stats st; /* the run table's counts */
    unsigned capacity;  /* execute permits pool-wide, 0: no bound */
    unsigned workers;   /* live worker records (mx_sweep) */
};

/*
 * The exposition text of every family (counters at zero included) and of
 * g, NUL-terminated, into *text (caller frees) and its length. 0, or -1
 * (out of memory, or over MX_MAX_TEXT).
 */
int mx_render(const struct mx *m, const struct mx_gauges *g, char **text, size_t *len);

#endif
