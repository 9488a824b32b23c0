/*
 * app.c - the request pipeline, the four endpoints of the spec and GET
 * /metrics.
 *
 * Order matters and is the reference's: the route decides 404/405 first,
 * then the body is framed and parsed, then validated against the spec's
 * AtomicExecuteRequest, then dispatched. An execute that reaches a handler
 * always answers 200: how the run went is in its state and error. What
 * each answer adds to the pool's metrics is noted on the way (x->obs) and
 * added once, with the log record (log_answer).
 */
#include "app.h"

#include <string.h>

#include "body.h"
#include "health.h"
#include "result.h"
#include "router.h"
#include "runner.h"
#include "schemas.h"
#include "timefmt.h"

/* Auth's keys shared through the run table (struct auth_share). */
_Static_assert(RT_BLOB_MAX >= JWKS_MAX_BYTES, "a JWKS document must fit the pool's blob");
static int share_gate(void *arg, int64_t now_ms, int64_t min_interval_ms)
{
    return rt_gate(arg, now_ms, min_interval_ms);
}

static int share_store(void *arg, const char *doc, size_t len, int64_t when_ms)
{
    return rt_blob_store(arg, doc, len, when_ms);
}

static int share_newer(void *arg, int64_t have_ms, char **doc, size_t *len, int64_t *when_ms)
{
    return rt_blob_newer(arg, have_ms, doc, len, when_ms);
}

int app_init(struct app *app, const struct config *cfg, const jarvis_pack *const *packs,
             unsigned what, char *err, size_t errlen)
{
    memset(app, 0, sizeof *app);
    app->cfg = cfg;
    app->limits.default_timeout_secs = cfg->default_timeout_secs;
    app->limits.max_concurrency = cfg->max_concurrency;
    app->limits.execute_slots = cfg->execute_slots;
    if (dsp_registry_init(&app->reg, packs, err, errlen) != 0)
        return -1;
    if ((what & APP_AUTH) && (app->auth = auth_new(err, errlen)) == NULL)
        return -1;
    if (what & APP_RUN_TABLE) {
        app->limits.rt = rt_open(cfg->run_table, cfg->run_table_slots, err, errlen);
        if (app->limits.rt == NULL)
            goto out_auth;
    }
    if (mx_attach(&app->mx, app->limits.rt != NULL ? rt_metrics_area(app->limits.rt) : NULL,
                  &app->reg, err, errlen) != 0)
        goto out_rt;
    if (app->auth != NULL && app->limits.rt != NULL) {
        const struct auth_share share = {app->limits.rt, share_gate, share_store, share_newer};
        auth_set_share(app->auth, &share);
    }
    return 0;
out_rt:
    rt_close(app->limits.rt);
    app->limits.rt = NULL;
out_auth:
    auth_free(app->auth);
    app->auth = NULL;
    return -1;
}

void app_cleanup(struct app *app)
{
    mx_detach(&app->mx);
    rt_close(app->limits.rt);
    app->limits.rt = NULL;
    auth_free(app->auth);
    app->auth = NULL;
}

static void ep_health(struct app *app, struct exchange *x)
{
    resp_set_json(&x->resp, 200, hl_body(&app->limits, app->auth, ts_now_ms()));
}

static void ep_version(struct exchange *x)
{
    resp_set_json(&x->resp, 200, res_version());
}

/* The pool's counters, plus gauges read from the run table now. */
static void ep_metrics(struct app *app, struct exchange *x)
{
    struct mx_gauges g;
    char *text = NULL;
    size_t len = 0;

    memset(&g, 0, sizeof g);
    g.workers = mx_sweep(&app->mx);
    if (app->limits.rt != NULL && rt_stats(app->limits.rt, &g.st) == 0) {
        g.have_table = 1;
        g.capacity = dsp_permit_cap(&app->limits);
    }
    if (mx_render(&app->mx, &g, &text, &len) != 0) {
        resp_set_internal(&x->resp);
        resp_set_reason(&x->resp, "cannot render the metrics");
        return;
    }
    resp_set_text(&x->resp, 200, MX_CONTENT_TYPE, text, len);
}

/* The 200 AtomicExecuteResult of a run that reached its handler. */
static void answer_result(struct exchange *x, struct exec_result *res)
{
    if (res->outputs != NULL && !res_json_writable(res->outputs)) {
        /* An uncaught failure of ours: no internals in the answer. */
        resp_set_internal(&x->resp);
        resp_set_reason(&x->resp, "handler outputs hold NaN/Infinity or nest too deep");
        dsp_result_cleanup(res);
        return;
    }
    x->log.state = res_state_name(res->state);
    x->log.error_code = res->error_code;
    x->obs.executed = 1;
    x->obs.node = res->node;
    x->obs.state = res->state;
    x->obs.timeout = res->error_code != NULL && strcmp(res->error_code, "timeout") == 0;
    x->obs.abandoned = res->abandoned;
    x->obs.dur_us = (uint64_t)(ts_mono_us() - x->obs.t0_us);
    if (res->reason[0] != '\0')
        resp_set_reason(&x->resp, "%s", res->reason);
    resp_set_json(&x->resp, 200, res_execute_result(res));
    dsp_result_cleanup(res);
}

static void ep_execute(struct app *app, const struct http_req *req, const struct dsp_conn *conn,
                       struct exchange *x)
{
    json_object *errors = NULL;
    struct exec_req er;
    struct exec_result res;

    if (body_read_json(req, app->cfg->max_body_bytes, &x->body, &x->resp) != 0)
        return;
    if (jv_validate(&sch_atomic_execute_request, x->body, &errors) != 0) {
        resp_set_invalid(&x->resp, errors);
        resp_set_reason(&x->resp, "body does not match AtomicExecuteRequest");
        return;
    }
    dsp_request_from_json(x->body, &er);
    er.subject = x->who.subject;
    er.claims = x->who.claims;
    er.traceparent = x->log.traceparent;
    er.request_id = x->log.request_id;
    x->log.run_id = er.run_id;
    x->log.node_run_id = er.node_run_id;
    x->log.node_type_id = er.node_type_id;
    x->log.trace_id = er.trace_id;
    if (strlen(er.node_run_id) > DSP_MAX_ID) {
        /* A bound of the run table, in bytes: not the schema's to say. */
        resp_set_invalid(&x->resp, jv_errors_one("node_run_id", "string_too_long",
                                                 "String should have at most " DSP_MAX_ID_TEXT
                                                 " characters"));
        resp_set_reason(&x->resp, "node_run_id longer than %d bytes", DSP_MAX_ID);
        return;
    }
    x->obs.t0_us = ts_mono_us();
    switch (dsp_execute(&app->reg, &app->limits, &er, conn, &res)) {
    case DSP_OK: break;
    case DSP_DUPLICATE:
        resp_set_error(&x->resp, 409, "node_run_in_progress",
                       "A NodeRun with this node_run_id is already executing", NULL);
        return;
    case DSP_BUSY:
        resp_set_retryable_error(&x->resp, 503, "executor_busy",
                                 "No run slot is free; retry later");
        if (conn != NULL && conn->stopping != NULL && atomic_load(conn->stopping))
            resp_set_reason(&x->resp, "worker stopping");
        else if (conn != NULL && conn->full)
            resp_set_reason(&x->resp, "worker at its connection limit");
        else
            resp_set_reason(&x->resp, "run table full");
        return;
    default:
        resp_set_internal(&x->resp);
        resp_set_reason(&x->resp, "run table unusable");
        return;
    }
    answer_result(x, &res);
}

static void ep_cancel(struct app *app, const char *node_run_id, struct exchange *x)
{
    pid_t owner = 0;
    int rc;

    x->log.node_run_id = node_run_id;
    /* 204 for any id, as the reference: an unknown one leaves a tombstone
     * so that an execute arriving after its cancel answers canceled. */
    rc = app->limits.rt != NULL ? rn_cancel(app->limits.rt, node_run_id, &owner) : RT_CANCEL_NEW;
    x->obs.cancel = rc == RT_CANCEL_HIT       ? MX_CANCEL_HIT
                    : rc == RT_CANCEL_RENEWED ? MX_CANCEL_TOMBSTONE
                    : rc == RT_FULL           ? MX_CANCEL_FULL
                    : rc == RT_CANCEL_NEW     ? MX_CANCEL_UNKNOWN
                                              : MX_CANCEL_NONE;
    if (rc == RT_FULL) {
        /* A 204 would promise a cancel that cannot hold. */
        resp_set_retryable_error(&x->resp, 503, "executor_busy",
                                 "No run slot is free; retry later");
        resp_set_reason(&x->resp, "run table full: no room for the cancel's tombstone");
        return;
    }
    if (rc == RT_CANCEL_HIT && owner > 0)
        resp_set_reason(&x->resp, "cancel sent to worker %ld", (long)owner);
    else if (rc == RT_CANCEL_HIT)
        resp_set_reason(&x->resp, "cannot signal the run's worker");
    resp_set_json(&x->resp, 204, NULL);
}

/* A field of req for the log record: NULL when it is empty (absent). */
static const char *present(const char *field)
{
    return field[0] != '\0' ? field : NULL;
}

/* The log record and the metrics take what the answer says. */
static void log_answer(struct exchange *x)
{
    x->obs.status = x->resp.status;
    mx_observe(x->mx, &x->obs);
    x->log.status = x->resp.status;
    if (x->log.error_code == NULL)
        x->log.error_code = x->resp.error_code;
    if (x->resp.reason[0] != '\0')
        x->log.reason = x->resp.reason;
}

void app_handle(struct app *app, const struct http_req *req, const struct dsp_conn *conn,
                struct exchange *x)
{
    struct route_match *m = &x->route;

    resp_init(&x->resp);
    x->body = NULL;
    x->head_only = 0;
    memset(&x->who, 0, sizeof x->who);
    memset(&x->log, 0, sizeof x->log);
    memset(&x->obs, 0, sizeof x->obs);
    x->mx = &app->mx;
    x->log.method = req->method;
    x->log.path = req->path;
    x->log.request_id = present(req->request_id);
    x->log.client_request_id = present(req->client_request_id);
    x->log.traceparent = present(req->traceparent);
    if (req->too_long) {
        resp_set_error(&x->resp, 414, "uri_too_long", "Request URI too long", NULL);
        goto out;
    }
    /* As the SDK's middleware: before routing, so an unknown path without
     * a token is a 401, not a 404 (auth_check skips exempt paths). The
     * metrics are outside the API and its auth settings: served to anyone
     * who reaches them, as health is by default; nginx lets only loopback
     * reach them (deploy/nginx). */
    if (app->auth != NULL && strcmp(req->path, MX_PATH) != 0) {
        int rc = auth_check(app->auth, req->path, req->authorization, ts_now_ms() / 1000, &x->who,
                            &x->resp);
        if (rc < 0)
            goto out;
        if (rc != AUTH_EXEMPT)
            x->log.subject = x->who.subject;
    }
    if (route_lookup(req->method, req->path, m, &x->resp) != 0)
        goto out;
    x->head_only = m->head_only;
    switch (m->ep) {
    case EP_HEALTH: ep_health(app, x); break;
    case EP_VERSION: ep_version(x); break;
    case EP_EXECUTE: ep_execute(app, req, conn, x); break;
    case EP_CANCEL: ep_cancel(app, m->param, x); break;
    case EP_METRICS: ep_metrics(app, x); break;
    case EP_NONE: break;
    }
out:
    log_answer(x);
}

void app_answer_abandoned(struct exchange *x, const struct exec_result *res)
{
    struct exec_result copy = *res; /* owns nothing: abandoned runs have no outputs */

    answer_result(x, &copy);
    log_answer(x);
}

void app_exchange_cleanup(struct exchange *x)
{
    resp_cleanup(&x->resp);
    auth_principal_cleanup(&x->who);
    json_object_put(x->body);
    x->body = NULL;
}
