/*
 * fuzz_validate.c - fuzz target for an execute request through the whole
 * pipeline short of FastCGI (fcgi-app/app.c): body decode, validation
 * against the spec's AtomicExecuteRequest (validate.c, schemas.c), the
 * request's fields, node lookup, the node's input schema (jschema.c) and
 * the AtomicExecuteResult. Only side-effect-free nodes are linked
 * (jarvis.core.echo and jarvis.core.hash.sha256): nothing sleeps, nothing
 * touches the network, whatever node_type_id the input names.
 *
 * Input: the request body.
 *
 * Invariants beyond "no crash":
 *  - every answer is valid UTF-8 JSON that re-parses equal (fz_check_resp);
 *  - 200 only for a body that validates, with an answer that validates
 *    against AtomicExecuteResult and carries the request's node_run_id;
 *  - 400 lists 1..JV_MAX_ERRORS errors, each {type, loc: ["body", ...], msg};
 *  - jv_validate counts the same problems with and without a list.
 */
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "fuzz_util.h"
#include "nodes.h"
#include "schemas.h"

/* The largest body accepted: above anything libFuzzer makes (-max_len). */
#define FZ_MAX_BODY (1024 * 1024)

static const jarvis_node *const fz_nodes[] = {&core_node_echo, &core_node_hash_sha256, NULL};
static const jarvis_pack fz_pack = {.name = "fuzz", .nodes = fz_nodes};

static struct config cfg;
static struct app app;

static void setup(void)
{
    static const jarvis_pack *const packs[] = {&fz_pack, NULL};
    char err[256];

    fz_quiet();
    cfg.max_body_bytes = FZ_MAX_BODY;
    FZ_CHECK(app_init(&app, &cfg, packs, 0, err, sizeof err) == 0);
}

static const char *member_string(json_object *o, const char *key)
{
    json_object *v = NULL;

    if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
        return NULL;
    return json_object_get_string(v);
}

static void check_ok(const struct exchange *x)
{
    json_object *error = NULL;
    const char *code;

    FZ_CHECK(x->body != NULL);
    FZ_CHECK(jv_validate(&sch_atomic_execute_request, x->body, NULL) == 0);
    FZ_CHECK(jv_validate(&sch_atomic_execute_result, x->resp.body, NULL) == 0);
    FZ_CHECK(strcmp(member_string(x->resp.body, "node_run_id"),
                    member_string(x->body, "node_run_id")) == 0);
    if (json_object_object_get_ex(x->resp.body, "error", &error)) {
        code = member_string(error, "code");
        FZ_CHECK(strcmp(member_string(x->resp.body, "state"), "failed") == 0);
        /* timeout: a budget of 0 or 1 ms may be spent before the handler
         * is called, depending on when the millisecond turns. */
        FZ_CHECK(strcmp(code, "unknown_node_type") == 0 || strcmp(code, "invalid_inputs") == 0 ||
                 strcmp(code, "handler_error") == 0 || strcmp(code, "timeout") == 0);
    } else {
        FZ_CHECK(strcmp(member_string(x->resp.body, "state"), "succeeded") == 0);
    }
}

static void check_invalid(const struct exchange *x)
{
    json_object *error = NULL, *details = NULL, *errors = NULL, *loc = NULL, *list = NULL;
    size_t i, n;
    int count;

    FZ_CHECK(json_object_object_get_ex(x->resp.body, "error", &error));
    FZ_CHECK(json_object_object_get_ex(error, "details", &details));
    FZ_CHECK(json_object_object_get_ex(details, "errors", &errors));
    n = json_object_array_length(errors);
    FZ_CHECK(n >= 1 && n <= JV_MAX_ERRORS);
    for (i = 0; i < n; i++) {
        json_object *e = json_object_array_get_idx(errors, i);
        FZ_CHECK(member_string(e, "type") != NULL && member_string(e, "msg") != NULL);
        FZ_CHECK(json_object_object_get_ex(e, "loc", &loc));
        FZ_CHECK(json_object_array_length(loc) >= 1);
        FZ_CHECK(strcmp(json_object_get_string(json_object_array_get_idx(loc, 0)), "body") == 0);
    }
    if (x->body == NULL)
        return; /* not JSON (or JSON null) */
    count = jv_validate(&sch_atomic_execute_request, x->body, &list);
    FZ_CHECK(count == jv_validate(&sch_atomic_execute_request, x->body, NULL));
    FZ_CHECK((count == 0) == (list == NULL));
    if (count > 0)
        FZ_CHECK(json_object_array_length(list) ==
                 (size_t)(count < JV_MAX_ERRORS ? count : JV_MAX_ERRORS));
    /* Valid, yet refused: only for an id over the run table's bound. */
    if (count == 0)
        FZ_CHECK(strlen(member_string(x->body, "node_run_id")) > DSP_MAX_ID);
    json_object_put(list);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int ready;
    static struct http_req req;
    static struct exchange x;
    struct fz_body f = {data, size, 0};

    if (!ready) {
        setup();
        ready = 1;
    }
    memset(&req, 0, sizeof req);
    strcpy(req.method, "POST");
    strcpy(req.path, "/v1/atomic-node-runs:execute");
    strcpy(req.content_type, "application/json");
    req.content_length = (long long)size;
    req.read_body = fz_body_read;
    req.read_arg = &f;
    app_handle(&app, &req, NULL, &x);
    fz_check_resp(&x.resp);
    FZ_CHECK(x.resp.status == 200 || x.resp.status == 400);
    if (x.resp.status == 200)
        check_ok(&x);
    else
        check_invalid(&x);
    app_exchange_cleanup(&x);
    return 0;
}
