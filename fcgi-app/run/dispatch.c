/*
 * dispatch.c - owns the registry of linked node types and the call into a
 * plugin: it builds the handler context (ctx.c), claims the run's place,
 * calls the handler under the watch (runner.c), and turns what comes back
 * into an exec_result with the reference's error codes.
 *
 * The registry is built once per worker from the generated pack table and
 * searched by binary search; a duplicate node_type_id stops the worker at
 * start rather than shadowing a handler at run time.
 */
#include "dispatch.h"
#include "dispatch_test.h" /* dsp_deadline's prototype */

#include <errno.h>
#include <math.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>

#include "crash.h"
#include "ctx.h"
#include "jarvis/util.h"
#include "jschema.h"
#include "log.h"
#include "runner.h"
#include "timefmt.h"
#include "utf8.h"

static int node_cmp(const void *a, const void *b)
{
    const jarvis_node *const *x = a, *const *y = b;

    return strcmp((*x)->node_type_id, (*y)->node_type_id);
}

int dsp_registry_init(struct dsp_registry *reg, const jarvis_pack *const *packs, char *err,
                      size_t errlen)
{
    size_t i;

    memset(reg, 0, sizeof *reg);
    for (; packs != NULL && *packs != NULL; packs++) {
        const jarvis_node *const *n;
        for (n = (*packs)->nodes; n != NULL && *n != NULL; n++) {
            if ((*n)->node_type_id == NULL || (*n)->version == NULL || (*n)->handler == NULL) {
                snprintf(err, errlen, "pack %s: a node lacks id, version or handler",
                         (*packs)->name);
                return -1;
            }
            if (reg->count == DSP_MAX_NODES) {
                snprintf(err, errlen, "more than %d node types linked", DSP_MAX_NODES);
                return -1;
            }
            reg->nodes[reg->count++] = *n;
        }
    }
    for (i = 0; i < reg->count; i++) {
        char why[256];
        const jarvis_node *n = reg->nodes[i];
        if (js_compile_cached(n->input_schema, why, sizeof why) == NULL ||
            js_compile_cached(n->output_schema, why, sizeof why) == NULL) {
            snprintf(err, errlen, "node %s: %s", n->node_type_id, why);
            return -1;
        }
    }
    qsort(reg->nodes, reg->count, sizeof reg->nodes[0], node_cmp);
    for (i = 1; i < reg->count; i++) {
        if (strcmp(reg->nodes[i - 1]->node_type_id, reg->nodes[i]->node_type_id) == 0) {
            snprintf(err, errlen, "node type %s is linked twice", reg->nodes[i]->node_type_id);
            return -1;
        }
    }
    return 0;
}

int dsp_lookup_index(const struct dsp_registry *reg, const char *node_type_id)
{
    size_t lo = 0, hi = reg->count;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(node_type_id, reg->nodes[mid]->node_type_id);
        if (c == 0)
            return (int)mid;
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return -1;
}

const jarvis_node *dsp_lookup(const struct dsp_registry *reg, const char *node_type_id)
{
    int i = dsp_lookup_index(reg, node_type_id);

    return i >= 0 ? reg->nodes[i] : NULL;
}

static json_object *get_member(json_object *obj, const char *key)
{
    json_object *v = NULL;

    return json_object_object_get_ex(obj, key, &v) ? v : NULL;
}

void dsp_request_from_json(json_object *body, struct exec_req *req)
{
    memset(req, 0, sizeof *req);
    req->node_run_id = json_object_get_string(get_member(body, "node_run_id"));
    req->run_id = json_object_get_string(get_member(body, "run_id"));
    req->node_type_ref = get_member(body, "node_type_ref");
    req->node_type_id = json_object_get_string(get_member(req->node_type_ref, "node_type_id"));
    req->node_type_version = json_object_get_string(get_member(req->node_type_ref, "version"));
    req->inputs = get_member(body, "inputs");
    req->run_context = get_member(body, "run_context");
    req->constraints = get_member(body, "constraints");
    req->extensions = get_member(body, "extensions");
    req->trace_id =
        json_object_get_string(get_member(get_member(req->run_context, "trace"), "trace_id"));
}

static void fail(struct exec_result *res, enum run_state state, const char *code,
                 const char *message)
{
    res->state = state;
    res->error_code = code;
    snprintf(res->message, sizeof res->message, "%s", message);
}

int64_t dsp_deadline(const struct dsp_limits *lim, const struct exec_req *req, int64_t started_ms)
{
    json_object *budgets = NULL, *wall = NULL;
    int64_t deadline = 0;

    if (lim->default_timeout_secs > 0) {
        double ms = ceil(lim->default_timeout_secs * 1000.0);
        deadline = started_ms + jarvis_clamp_span_ms(ms);
    }
    if (req->constraints != NULL &&
        json_object_object_get_ex(req->constraints, "budgets", &budgets) &&
        json_object_object_get_ex(budgets, "max_wall_time_ms", &wall)) {
        /* validated: a non-negative integer, possibly written 5.0 or > INT64_MAX */
        double ms = json_object_get_double(wall);
        int64_t d = started_ms + jarvis_clamp_span_ms(ms);
        if (deadline == 0 || d < deadline)
            deadline = d;
        /* A zero budget is already spent: a deadline of "now", never "none". */
        if (deadline == 0)
            deadline = 1;
    }
    return deadline;
}

static int cancel_check(const void *arg)
{
    return jarvis_ctx_cancelled(arg);
}

/* The node's compiled schema (compiled at registry init, so never NULL). */
static const struct jv_schema *schema_of(const char *text)
{
    char why[8];

    return js_compile_cached(text, why, sizeof why);
}

/* 1 if outputs match the node's output schema; else the reason in res. */
static int outputs_ok(const jarvis_node *node, json_object *outputs, struct exec_result *res)
{
    json_object *errors = NULL, *first;
    int n = jv_validate_at(schema_of(node->output_schema), outputs, "outputs", &errors);

    if (n > 0) {
        first = json_object_array_get_idx(errors, 0);
        snprintf(res->reason, sizeof res->reason, "outputs do not match the output schema: %s",
                 json_object_to_json_string_ext(first, JSON_C_TO_STRING_PLAIN));
    }
    json_object_put(errors);
    return n == 0;
}

/* 1 if inputs match the node's input schema; else res says invalid_inputs. */
static int inputs_ok(const jarvis_node *node, json_object *inputs, struct exec_result *res)
{
    json_object *errors = NULL;

    if (jv_validate_at(schema_of(node->input_schema), inputs, "inputs", &errors) == 0)
        return 1;
    fail(res, RUN_FAILED, "invalid_inputs", "Inputs do not match the node's input schema");
    res->error_details = json_object_new_object();
    json_object_object_add(res->error_details, "errors", errors);
    snprintf(res->reason, sizeof res->reason, "inputs rejected by the input schema");
    return 0;
}

static void run_outcome(const jarvis_ctx *ctx, struct rn_job *job, enum rn_outcome outcome,
                        struct exec_result *res);

/* One run of a handler, on the serving thread's stack: an abandoned
 * handler keeps using it, but that thread never leaves rn_run then. */
struct run_frame {
    struct rn_job job;
    jarvis_ctx *ctx;
    struct exec_result *res;
    const struct dsp_conn *conn;
};

/* On the watcher thread: the handler would not stop, so the run is
 * answered now, through the connection's abandon callback. The handler
 * still runs (and uses job, ctx and the request): only res is touched. */
static void run_abandoned(void *arg, enum rn_outcome outcome)
{
    struct run_frame *f = arg;

    f->res->abandoned = 1;
    run_outcome(f->ctx, &f->job, outcome, f->res);
    /* Its slot and permit stay taken: see the end of dsp_execute. */
    f->res->ended_ms = ts_now_ms();
    f->conn->abandoned(f->conn->abandoned_arg, f->res);
}

/* Runs the handler under the watch and turns how it ended into res. */
static void run_handler(jarvis_ctx *ctx, const struct dsp_conn *conn, struct exec_result *res)
{
    struct run_frame f = {{ctx->node->handler, ctx, ctx->req->inputs, NULL, 0}, ctx, res, conn};
    struct rn_watch w = {ctx->deadline_ms, cancel_check, ctx, ctx->client_fd, NULL, NULL};
    enum rn_outcome outcome;

    if (conn != NULL && conn->abandoned != NULL) {
        w.abandon = run_abandoned;
        w.abandon_arg = &f;
    }
    /* A fatal signal while the handler runs names this run in the log. */
    crash_run_enter(ctx->req->node_run_id, ctx->node->node_type_id);
    outcome = rn_run(ctx->runner, &f.job, &w);
    crash_run_leave();
    run_outcome(ctx, &f.job, outcome, res);
}

/* Turns how the run ended into res; takes job->outputs when it returned. */
static void run_outcome(const jarvis_ctx *ctx, struct rn_job *job, enum rn_outcome outcome,
                        struct exec_result *res)
{
    /* After RN_CANCELED / RN_TIMEOUT / RN_CLIENT_GONE look only at the
     * outcome (an abandoned handler may still write the job). */
    int rc = outcome == RN_RETURNED ? job->rc : JARVIS_OK;

    if (res->abandoned)
        snprintf(res->reason, sizeof res->reason,
                 "handler did not return within %d ms of being stopped; worker will exit",
                 RN_GRACE_MS);
    if (outcome == RN_CLIENT_GONE) {
        fail(res, RUN_CANCELED, "canceled", "Atomic execution canceled");
        if (!res->abandoned)
            snprintf(res->reason, sizeof res->reason, "the client closed the connection");
    } else if (outcome == RN_CANCELED || rc == JARVIS_ERR_CANCELED) {
        fail(res, RUN_CANCELED, "canceled", "Atomic execution canceled");
    } else if (outcome == RN_TIMEOUT || rc == JARVIS_ERR_TIMEOUT) {
        fail(res, RUN_FAILED, "timeout", "Atomic execution timed out");
    } else if (rc != JARVIS_OK && ctx->fail_code != NULL) {
        /* A failure the plugin names for the client (jarvis_ctx_fail_code). */
        fail(res, RUN_FAILED, ctx->fail_code, ctx->fail_message);
        snprintf(res->reason, sizeof res->reason, "%s", ctx->fail_reason);
    } else if (rc != JARVIS_OK) {
        fail(res, RUN_FAILED, "handler_error", "Atomic handler failed");
        snprintf(res->reason, sizeof res->reason, "%s",
                 ctx->fail_reason[0] ? ctx->fail_reason : "handler returned an error");
    } else if (!json_object_is_type(job->outputs, json_type_object)) {
        fail(res, RUN_FAILED, "handler_error", "Atomic handler failed");
        snprintf(res->reason, sizeof res->reason,
                 "handler returned outputs that are not an object");
    } else if (!outputs_ok(ctx->node, job->outputs, res)) {
        fail(res, RUN_FAILED, "handler_error", "Atomic handler failed");
    } else {
        res->state = RUN_SUCCEEDED;
        res->outputs = job->outputs;
        job->outputs = NULL;
    }
    if (outcome == RN_RETURNED) {
        json_object_put(job->outputs);
        job->outputs = NULL;
    }
}

unsigned dsp_permit_cap(const struct dsp_limits *lim)
{
    unsigned cap = lim->execute_slots;

    if (lim->max_concurrency > 0 && (cap == 0 || lim->max_concurrency < cap))
        cap = lim->max_concurrency;
    return cap;
}

/* While queued, before each wait for a permit: nonzero once the worker
 * stops or the client has gone. Else the thread is about to sleep, and
 * says so first (rn_yield). */
static int queued_abort(const void *arg)
{
    const jarvis_ctx *ctx = arg;

    if ((ctx->stopping == NULL || !atomic_load(ctx->stopping)) && !rn_client_gone(ctx->client_fd)) {
        rn_yield(ctx->runner);
        return 0;
    }
    return 1;
}

int dsp_execute(const struct dsp_registry *reg, const struct dsp_limits *lim,
                const struct exec_req *req, const struct dsp_conn *conn, struct exec_result *res)
{
    struct jarvis_ctx ctx;
    int rc = DSP_OK, claimed = 0;

    memset(res, 0, sizeof *res);
    res->node_run_id = req->node_run_id;
    res->started_ms = ts_now_ms();
    res->node = dsp_lookup_index(reg, req->node_type_id);
    memset(&ctx, 0, sizeof ctx);
    ctx.req = req;
    ctx.rt = lim->rt;
    ctx.slot = -1;
    ctx.client_fd = conn != NULL ? conn->client_fd : -1;
    ctx.stopping = conn != NULL ? conn->stopping : NULL;
    ctx.runner = conn != NULL && conn->runner != NULL ? conn->runner : rn_runner_default();
    if (ctx.runner == NULL) {
        fail(res, RUN_FAILED, "handler_error", "Atomic handler failed");
        snprintf(res->reason, sizeof res->reason, "cannot set up the run's watch");
        goto out;
    }
    ctx.deadline_ms = dsp_deadline(lim, req, res->started_ms);
    /* As the reference: an unknown type fails before it takes any place. */
    ctx.node = res->node >= 0 ? reg->nodes[res->node] : NULL;
    if (ctx.node == NULL) {
        fail(res, RUN_FAILED, "unknown_node_type", "");
        /* The id is the client's: cut it whole characters at a time, so
         * the answer stays valid UTF-8 JSON however long the id. */
        snprintf(res->message, sizeof res->message, "Unknown node_type_id: %.*s",
                 (int)utf8_cut(req->node_type_id, strlen(req->node_type_id),
                               sizeof res->message - sizeof "Unknown node_type_id: "),
                 req->node_type_id);
        goto out;
    }
    /* Bad inputs fail at once, without taking a place (as an unknown type). */
    if (!inputs_ok(ctx.node, req->inputs, res))
        goto out;
    if (conn != NULL && conn->full) {
        rc = DSP_BUSY;
        goto out;
    }
    if (ctx.rt != NULL) {
        ctx.slot = rt_claim(ctx.rt, req->node_run_id, ctx.deadline_ms);
        switch (ctx.slot) {
        case RT_DUPLICATE: rc = DSP_DUPLICATE; goto out;
        case RT_FULL: rc = DSP_BUSY; goto out;
        case RT_PRECANCELED:
            fail(res, RUN_CANCELED, "canceled", "Atomic execution canceled");
            snprintf(res->reason, sizeof res->reason, "canceled before it started");
            goto out;
        default:
            if (ctx.slot < 0) {
                rc = DSP_INTERNAL;
                goto out;
            }
        }
        claimed = 1;
        switch (rt_acquire_permit(ctx.rt, ctx.slot, dsp_permit_cap(lim), ctx.deadline_ms,
                                  queued_abort, &ctx)) {
        case RT_OK: break;
        case RT_CANCELED:
            fail(res, RUN_CANCELED, "canceled", "Atomic execution canceled");
            snprintf(res->reason, sizeof res->reason, "canceled while queued");
            goto out;
        case RT_ABORTED:
            if (ctx.stopping != NULL && atomic_load(ctx.stopping)) {
                rc = DSP_BUSY; /* never ran: the client may retry on another worker */
                goto out;
            }
            fail(res, RUN_CANCELED, "canceled", "Atomic execution canceled");
            snprintf(res->reason, sizeof res->reason,
                     "the client closed the connection while queued");
            goto out;
        default:
            fail(res, RUN_FAILED, "timeout", "Atomic execution timed out");
            snprintf(res->reason, sizeof res->reason, "timed out while queued");
            goto out;
        }
    }
    run_handler(&ctx, conn, res);
out:
    /* An abandoned handler still runs (and this thread never gets here):
     * its slot and permit stay taken until the worker has exited (the next
     * look at the table reclaims them), so the execute slots still bound
     * it and its id still answers 409. */
    if (claimed && !res->abandoned)
        rt_release(ctx.rt, ctx.slot);
    res->ended_ms = ts_now_ms();
    return rc;
}

void dsp_result_cleanup(struct exec_result *res)
{
    json_object_put(res->outputs);
    res->outputs = NULL;
    json_object_put(res->error_details);
    res->error_details = NULL;
}
