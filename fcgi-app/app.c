/*
 * app.c - the request pipeline and the four endpoints of the spec.
 *
 * Order matters and is the reference's: the route decides 404/405 first,
 * then the body is framed and parsed, then validated against the spec's
 * AtomicExecuteRequest, then dispatched. An execute that reaches a handler
 * always answers 200: how the run went is in its state and error.
 */
#include "app.h"

#include <string.h>

#include "body.h"
#include "result.h"
#include "router.h"
#include "schemas.h"
#include "timefmt.h"

int app_init(struct app *app, const struct config *cfg, const jarvis_pack *const *packs,
             char *err, size_t errlen)
{
    memset(app, 0, sizeof *app);
    app->cfg = cfg;
    return dsp_registry_init(&app->reg, packs, err, errlen);
}

static void ep_health(struct exchange *x)
{
    resp_set_json(&x->resp, 200, res_health(ts_now_ms()));
}

static void ep_version(struct exchange *x)
{
    resp_set_json(&x->resp, 200, res_version());
}

static void ep_execute(struct app *app, const struct http_req *req, struct exchange *x)
{
    json_object *errors = NULL;
    struct exec_req er;
    struct exec_result res;

    if (body_read_json(req, app->cfg->max_body_bytes, &x->body, &x->resp) != 0)
        return;
    if (jv_validate(&sch_atomic_execute_request, x->body, &errors) != 0) {
        jv_set_request_invalid(&x->resp, errors);
        resp_set_reason(&x->resp, "body does not match AtomicExecuteRequest");
        return;
    }
    dsp_request_from_json(x->body, &er);
    x->log.node_run_id = er.node_run_id;
    x->log.node_type_id = er.node_type_id;
    dsp_execute(&app->reg, &er, &res);
    x->log.state = res_state_name(res.state);
    x->log.error_code = res.error_code;
    if (res.reason[0] != '\0')
        resp_set_reason(&x->resp, "%s", res.reason);
    resp_set_json(&x->resp, 200, res_execute_result(&res));
    dsp_result_cleanup(&res);
}

static void ep_cancel(const char *node_run_id, struct exchange *x)
{
    /* Accepted for any id, as the reference does: 204, no body. */
    x->log.node_run_id = node_run_id;
    resp_set_json(&x->resp, 204, NULL);
}

void app_handle(struct app *app, const struct http_req *req, struct exchange *x)
{
    struct route_match *m = &x->route;

    resp_init(&x->resp);
    x->body = NULL;
    x->head_only = 0;
    memset(&x->log, 0, sizeof x->log);
    x->log.method = req->method;
    x->log.path = req->path;
    if (req->too_long) {
        resp_set_error(&x->resp, 414, "uri_too_long", "Request URI too long", NULL);
        goto out;
    }
    if (route_lookup(req->method, req->path, m, &x->resp) != 0)
        goto out;
    x->head_only = m->head_only;
    switch (m->ep) {
    case EP_HEALTH: ep_health(x); break;
    case EP_VERSION: ep_version(x); break;
    case EP_EXECUTE: ep_execute(app, req, x); break;
    case EP_CANCEL: ep_cancel(m->param, x); break;
    case EP_NONE: break;
    }
out:
    x->log.status = x->resp.status;
    if (x->log.error_code == NULL)
        x->log.error_code = x->resp.error_code;
    if (x->resp.reason[0] != '\0')
        x->log.reason = x->resp.reason;
}

void app_exchange_cleanup(struct exchange *x)
{
    resp_cleanup(&x->resp);
    json_object_put(x->body);
    x->body = NULL;
}
