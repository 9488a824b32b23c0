/*
 * dispatch.h - node_type_id -> linked handler, and one run of it.
 */
#ifndef JARVIS_DISPATCH_H
#define JARVIS_DISPATCH_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "jarvis/node.h"
#include "runner.h"
#include "runtable.h"

/* Most node types one build can link. */
#define DSP_MAX_NODES 256
/* Longest node_run_id, in bytes: the API refuses a longer one (400 at
 * execute, 404 in a cancel path) and a run table slot holds this many. The
 * one bound on ids: the router, the run table and app.c use it. */
#define DSP_MAX_ID 256
/* The same bound as text ("256"), for messages. */
#define DSP_STRINGIFY_(x) #x
#define DSP_STRINGIFY(x) DSP_STRINGIFY_(x)
#define DSP_MAX_ID_TEXT DSP_STRINGIFY(DSP_MAX_ID)
/* Longest message or reason kept for a failed run. */
#define DSP_MAX_MESSAGE 512

struct dsp_registry {
    const jarvis_node *nodes[DSP_MAX_NODES]; /* sorted by node_type_id */
    size_t count;
};

/* A validated AtomicExecuteRequest; all pointers borrowed from its JSON. */
struct exec_req {
    const char *node_run_id;
    const char *run_id;
    const char *node_type_id;
    const char *node_type_version;
    json_object *node_type_ref;
    json_object *inputs;
    json_object *run_context; /* NULL when absent */
    json_object *constraints; /* NULL when absent */
    json_object *extensions;  /* NULL when absent */
    const char *subject;      /* authenticated subject, "" when none */
    json_object *claims;      /* its verified claims, NULL when none */
    const char *trace_id;     /* run_context.trace.trace_id, NULL when absent */
    /* From the HTTP request (set by the caller, borrowed), NULL when absent
     * or not valid (trace.h): */
    const char *traceparent; /* the W3C traceparent header */
    const char *request_id;  /* nginx's $request_id */
};

enum run_state { RUN_SUCCEEDED = 0, RUN_FAILED, RUN_CANCELED };

/* What bounds a run besides its handler. */
struct dsp_limits {
    struct rt_table *rt;         /* the pool's run table; NULL: none (tools, tests) */
    double default_timeout_secs; /* 0: none */
    unsigned max_concurrency;    /* JARVIS_MAX_CONCURRENCY, pool-wide, 0: no cap */
    unsigned execute_slots;      /* runs executing at once pool-wide, 0: no bound */
};

struct exec_result;

/* The connection an execute arrived on, and the thread serving it. */
struct dsp_conn {
    struct rn_runner *runner; /* the serving thread's; NULL: rn_runner_default() */
    int client_fd;            /* watched for hang-up (the run is then canceled); -1: none */
    int full;                 /* the serving worker keeps no thread for another execute: DSP_BUSY */
    /* Nonzero once the worker is stopping: an execute still queued then
     * answers DSP_BUSY (it never ran; retry elsewhere). NULL: never. */
    const atomic_int *stopping;
    /* Answers a run whose handler was abandoned (it did not return within
     * RN_GRACE_MS of a cancel, its deadline or a hang-up): called once, on
     * the runner's watcher thread, with res filled (res->abandoned set);
     * it must answer the request and end the worker once its other
     * requests are done. The thread that called dsp_execute never returns
     * then. NULL: a run is never abandoned, dsp_execute waits for its
     * handler however long it takes. */
    void (*abandoned)(void *arg, const struct exec_result *res);
    void *abandoned_arg;
};

/* dsp_execute's answers that are not an AtomicExecuteResult. */
enum dsp_rc {
    DSP_OK = 0,
    DSP_DUPLICATE = -1, /* 409: this node_run_id is in flight */
    DSP_BUSY = -2,      /* 503, retryable: no slot, no thread, or the worker stops */
    DSP_INTERNAL = -3   /* 500: the run table is unusable */
};

struct exec_result {
    const char *node_run_id; /* borrowed from the request */
    enum run_state state;
    json_object *outputs; /* owned; set only when succeeded */
    int64_t started_ms;
    int64_t ended_ms;
    const char *error_code;        /* static; NULL when succeeded */
    char message[DSP_MAX_MESSAGE]; /* client-facing error message */
    char reason[DSP_MAX_MESSAGE];  /* operator-facing, log only */
    json_object *error_details;    /* owned; error.details, or NULL */
    int abandoned;                 /* the handler never returned: answered by the watcher */
    int node;                      /* the node type's registry index, -1: none linked */
};

/*
 * Indexes the nodes of a NULL-terminated pack list and compiles their input
 * and output schemas. Returns 0, or -1 (with a message in err) on a
 * duplicate node_type_id, a node without id, version or handler, a schema
 * the validator cannot enforce, or more than DSP_MAX_NODES nodes.
 */
int dsp_registry_init(struct dsp_registry *reg, const jarvis_pack *const *packs, char *err,
                      size_t errlen);

/* The node linked for node_type_id, or NULL. */
const jarvis_node *dsp_lookup(const struct dsp_registry *reg, const char *node_type_id);

/* Its index in reg->nodes (sorted by id), or -1: the metrics' bucket. */
int dsp_lookup_index(const struct dsp_registry *reg, const char *node_type_id);

/*
 * Runs req and fills res (caller calls dsp_result_cleanup): looks up the
 * node, claims the run's slot in the run table (queued), waits for an
 * execute permit, runs the handler under the deadline, cancel and hang-up
 * watch on conn's runner, releases the slot. conn may be NULL. Returns
 * DSP_OK (res filled), or DSP_DUPLICATE / DSP_BUSY / DSP_INTERNAL when the
 * run could not even be registered.
 */
int dsp_execute(const struct dsp_registry *reg, const struct dsp_limits *lim,
                const struct exec_req *req, const struct dsp_conn *conn, struct exec_result *res);

/* How many runs may execute at once pool-wide (the smaller of
 * max_concurrency and execute_slots); 0: no bound. */
unsigned dsp_permit_cap(const struct dsp_limits *lim);

void dsp_result_cleanup(struct exec_result *res);

/* Fills req from a body that passed sch_atomic_execute_request. */
void dsp_request_from_json(json_object *body, struct exec_req *req);

#endif
