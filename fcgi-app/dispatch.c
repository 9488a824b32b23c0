/*
 * dispatch.c - owns the registry of linked node types and the call into a
 * plugin: it builds the handler context, calls the handler, and turns what
 * comes back into an exec_result with the reference's error codes.
 *
 * The registry is built once per worker from the generated pack table and
 * searched by binary search; a duplicate node_type_id stops the worker at
 * start rather than shadowing a handler at run time.
 */
#include "dispatch.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "timefmt.h"

struct jarvis_ctx {
    const struct exec_req *req;
    const jarvis_node *node;
    char fail_reason[DSP_MAX_MESSAGE];
};

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
    qsort(reg->nodes, reg->count, sizeof reg->nodes[0], node_cmp);
    for (i = 1; i < reg->count; i++) {
        if (strcmp(reg->nodes[i - 1]->node_type_id, reg->nodes[i]->node_type_id) == 0) {
            snprintf(err, errlen, "node type %s is linked twice", reg->nodes[i]->node_type_id);
            return -1;
        }
    }
    return 0;
}

const jarvis_node *dsp_lookup(const struct dsp_registry *reg, const char *node_type_id)
{
    size_t lo = 0, hi = reg->count;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(node_type_id, reg->nodes[mid]->node_type_id);
        if (c == 0)
            return reg->nodes[mid];
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
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
}

static void fail(struct exec_result *res, enum run_state state, const char *code,
                 const char *message)
{
    res->state = state;
    res->error_code = code;
    snprintf(res->message, sizeof res->message, "%s", message);
}

void dsp_execute(const struct dsp_registry *reg, const struct exec_req *req,
                 struct exec_result *res)
{
    struct jarvis_ctx ctx;
    json_object *outputs = NULL;
    int rc;

    memset(res, 0, sizeof *res);
    res->node_run_id = req->node_run_id;
    res->started_ms = ts_now_ms();
    memset(&ctx, 0, sizeof ctx);
    ctx.req = req;
    ctx.node = dsp_lookup(reg, req->node_type_id);
    if (ctx.node == NULL) {
        fail(res, RUN_FAILED, "unknown_node_type", "");
        snprintf(res->message, sizeof res->message, "Unknown node_type_id: %s", req->node_type_id);
        goto out;
    }
    rc = ctx.node->handler(&ctx, req->inputs, &outputs);
    if (rc != JARVIS_OK) {
        fail(res, RUN_FAILED, "handler_error", "Atomic handler failed");
        snprintf(res->reason, sizeof res->reason, "%s",
                 ctx.fail_reason[0] ? ctx.fail_reason : "handler returned an error");
        goto out;
    }
    if (!json_object_is_type(outputs, json_type_object)) {
        fail(res, RUN_FAILED, "handler_error", "Atomic handler failed");
        snprintf(res->reason, sizeof res->reason, "handler returned outputs that are not an object");
        goto out;
    }
    res->state = RUN_SUCCEEDED;
    res->outputs = outputs;
    outputs = NULL;
out:
    json_object_put(outputs);
    res->ended_ms = ts_now_ms();
}

void dsp_result_cleanup(struct exec_result *res)
{
    json_object_put(res->outputs);
    res->outputs = NULL;
}

/* ---- the handler context (include/jarvis/node.h) ---- */

const char *jarvis_ctx_node_run_id(const jarvis_ctx *ctx)
{
    return ctx->req->node_run_id;
}

const char *jarvis_ctx_run_id(const jarvis_ctx *ctx)
{
    return ctx->req->run_id;
}

json_object *jarvis_ctx_node_type_ref(const jarvis_ctx *ctx)
{
    return ctx->req->node_type_ref;
}

json_object *jarvis_ctx_run_context(const jarvis_ctx *ctx)
{
    return ctx->req->run_context;
}

json_object *jarvis_ctx_constraints(const jarvis_ctx *ctx)
{
    return ctx->req->constraints;
}

json_object *jarvis_ctx_extensions(const jarvis_ctx *ctx)
{
    return ctx->req->extensions;
}

void jarvis_ctx_log(jarvis_ctx *ctx, jarvis_log_level level, const char *fmt, ...)
{
    char msg[LOG_MAX_LINE / 2];
    char f[LOG_MAX_LINE] = "";
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    log_append_kv(f, sizeof f, "node_run_id", ctx->req->node_run_id);
    log_append_kv(f, sizeof f, "node_type_id", ctx->req->node_type_id);
    log_append_kv(f, sizeof f, "msg", msg);
    log_emit(level, f);
}

int jarvis_ctx_fail(jarvis_ctx *ctx, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(ctx->fail_reason, sizeof ctx->fail_reason, fmt, ap);
    va_end(ap);
    return JARVIS_ERR_HANDLER;
}
