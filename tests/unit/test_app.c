/*
 * test_app.c - whole requests through the pipeline (no FastCGI): each
 * endpoint's status and body, validated against the spec's schemas too.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "app.h"
#include "schemas.h"
#include "testutil.h"

extern const jarvis_pack jarvis_pack_core;
extern const jarvis_pack jarvis_pack_testing;

static struct config cfg;
static struct app app;

static int setup(void)
{
    static const jarvis_pack *const packs[] = {&jarvis_pack_core, &jarvis_pack_testing, NULL};
    char err[128];

    cfg.max_body_bytes = 4096;
    cfg.log_level = JARVIS_LOG_ERROR;
    log_set_level(JARVIS_LOG_ERROR);
    return app_init(&app, &cfg, packs, 0, err, sizeof err);
}

struct fake_body {
    const char *data;
    size_t pos;
};

static long fake_read(void *arg, char *buf, size_t len)
{
    struct fake_body *f = arg;
    size_t n = strlen(f->data + f->pos);

    if (n > len)
        n = len;
    memcpy(buf, f->data + f->pos, n);
    f->pos += n;
    return (long)n;
}

static void handle(const char *method, const char *path, const char *body, struct exchange *x)
{
    static struct http_req req;
    static struct fake_body f;

    memset(&req, 0, sizeof req);
    snprintf(req.method, sizeof req.method, "%s", method);
    snprintf(req.path, sizeof req.path, "%s", path);
    req.content_length = body ? (long long)strlen(body) : -1;
    if (body)
        strcpy(req.content_type, "application/json");
    f = (struct fake_body){body ? body : "", 0};
    req.read_body = fake_read;
    req.read_arg = &f;
    app_handle(&app, &req, NULL, x);
}

/* Removes a timestamp member after checking its form. */
static void take_time(json_object *o, const char *key)
{
    json_object *t = NULL;

    CU_ASSERT_TRUE_FATAL(json_object_object_get_ex(o, key, &t));
    CU_ASSERT_TRUE(jv_is_date_time(json_object_get_string(t)));
    CU_ASSERT_EQUAL(json_object_get_string_len(t), 24);
    json_object_object_del(o, key);
}

static void test_health_version(void)
{
    struct exchange x;

    handle("GET", "/v1/health", NULL, &x);
    CU_ASSERT_EQUAL(x.resp.status, 200);
    CU_ASSERT_EQUAL(jv_validate(&sch_health, x.resp.body, NULL), 0);
    take_time(x.resp.body, "time");
    TU_ASSERT_JSON(x.resp.body, "{\"status\":\"ok\"}");
    app_exchange_cleanup(&x);

    handle("HEAD", "/v1/version", NULL, &x);
    CU_ASSERT_EQUAL(x.resp.status, 200);
    CU_ASSERT_TRUE(x.head_only);
    CU_ASSERT_EQUAL(jv_validate(&sch_version_info, x.resp.body, NULL), 0);
    json_object_object_del(x.resp.body, "build");
    TU_ASSERT_JSON(x.resp.body, "{\"service_name\":\"jarvis-atomic-executor\",\"service_version\":"
                                "\"0.1.0\",\"supported_api_versions\":[\"v1\"]}");
    app_exchange_cleanup(&x);
}

#define EXEC(type, inputs)                                                                         \
    "{\"node_run_id\":\"nr-7\",\"run_id\":\"r-7\",\"node_type_ref\":{\"node_type_id\":\"" type     \
    "\",\"version\":\"1\"},\"inputs\":" inputs "}"

/* An echo of {} with these ids (C string literals holding JSON escapes). */
#define EXEC_ID(nrid, rid)                                                                         \
    "{\"node_run_id\":\"" nrid "\",\"run_id\":\"" rid "\",\"node_type_ref\":{\"node_type_id\":"    \
    "\"jarvis.core.echo\",\"version\":\"1\"},\"inputs\":{}}"

static void expect_result(const char *body, const char *want)
{
    struct exchange x;

    handle("POST", "/v1/atomic-node-runs:execute", body, &x);
    CU_ASSERT_EQUAL(x.resp.status, 200);
    CU_ASSERT_EQUAL(jv_validate(&sch_atomic_execute_result, x.resp.body, NULL), 0);
    take_time(x.resp.body, "started_at");
    take_time(x.resp.body, "ended_at");
    TU_ASSERT_JSON(x.resp.body, want);
    CU_ASSERT_STRING_EQUAL(x.log.node_run_id, "nr-7");
    app_exchange_cleanup(&x);
}

static void test_execute(void)
{
    expect_result(
        EXEC("jarvis.core.echo", "{\"echo\":\"hi\"}"),
        "{\"node_run_id\":\"nr-7\",\"state\":\"succeeded\",\"outputs\":{\"echo\":\"hi\"}}");
    expect_result(EXEC("no.such", "{}"),
                  "{\"node_run_id\":\"nr-7\",\"state\":\"failed\",\"error\":{\"code\":"
                  "\"unknown_node_type\",\"message\":\"Unknown node_type_id: no.such\"}}");
    expect_result(EXEC("jarvis.test.fail", "{}"),
                  "{\"node_run_id\":\"nr-7\",\"state\":\"failed\",\"error\":{\"code\":"
                  "\"handler_error\",\"message\":\"Atomic handler failed\"}}");
}

static void expect_error(const char *method, const char *path, const char *body, int status,
                         const char *code)
{
    struct exchange x;
    json_object *err = NULL, *c = NULL;

    handle(method, path, body, &x);
    CU_ASSERT_EQUAL(x.resp.status, status);
    CU_ASSERT_EQUAL(jv_validate(&sch_error_envelope, x.resp.body, NULL), 0);
    CU_ASSERT_TRUE(json_object_object_get_ex(x.resp.body, "error", &err));
    CU_ASSERT_TRUE(json_object_object_get_ex(err, "code", &c));
    CU_ASSERT_STRING_EQUAL(json_object_get_string(c), code);
    CU_ASSERT_STRING_EQUAL(x.log.error_code, code);
    CU_ASSERT_EQUAL(x.log.status, status);
    app_exchange_cleanup(&x);
}

static void test_errors(void)
{
    static char big[5000];

    memset(big, ' ', sizeof big - 1);
    expect_error("POST", "/v1/atomic-node-runs:execute", "{}", 400, "invalid_request");
    expect_error("POST", "/v1/atomic-node-runs:execute", "{", 400, "invalid_request");
    expect_error("POST", "/v1/atomic-node-runs:execute", NULL, 411, "length_required");
    expect_error("POST", "/v1/atomic-node-runs:execute", big, 413, "payload_too_large");
    expect_error("GET", "/v1/atomic-node-runs:execute", NULL, 405, "method_not_allowed");
    expect_error("GET", "/nope", NULL, 404, "not_found");
    expect_error("POST", "/v1/atomic-node-runs/%zz:cancel", NULL, 400, "invalid_request");
    expect_error("POST", "/v1/atomic-node-runs:execute", EXEC("jarvis.test.nan", "{}"), 500,
                 "internal_error");
}

/* node_run_id is bounded by the run table, in bytes. */
static void test_node_run_id_bound(void)
{
    static char body[1024];
    struct exchange x;
    int n = snprintf(body, sizeof body, "{\"node_run_id\":\"");

    memset(body + n, 'i', 257);
    snprintf(body + n + 257, sizeof body - (size_t)n - 257,
             "\",\"run_id\":\"r\",\"node_type_ref\":{\"node_type_id\":\"jarvis.core.echo\","
             "\"version\":\"1\"},\"inputs\":{}}");
    handle("POST", "/v1/atomic-node-runs:execute", body, &x);
    CU_ASSERT_EQUAL(x.resp.status, 400);
    TU_ASSERT_JSON(x.resp.body,
                   "{\"error\":{\"code\":\"invalid_request\",\"message\":\"Request validation "
                   "failed\",\"details\":{\"errors\":[{\"type\":\"string_too_long\",\"loc\":"
                   "[\"body\",\"node_run_id\"],\"msg\":\"String should have at most 256 "
                   "characters\"}]}}}");
    app_exchange_cleanup(&x);
    /* 256 bytes is fine. */
    memmove(body + n + 256, body + n + 257, strlen(body + n + 257) + 1);
    handle("POST", "/v1/atomic-node-runs:execute", body, &x);
    CU_ASSERT_EQUAL(x.resp.status, 200);
    app_exchange_cleanup(&x);
}

static void expect_refusal(const char *body, const char *errors)
{
    struct exchange x;
    char want[1024];

    snprintf(want, sizeof want,
             "{\"error\":{\"code\":\"invalid_request\",\"message\":\"Request validation "
             "failed\",\"details\":{\"errors\":%s}}}",
             errors);
    handle("POST", "/v1/atomic-node-runs:execute", body, &x);
    CU_ASSERT_EQUAL(x.resp.status, 400);
    TU_ASSERT_JSON(x.resp.body, want);
    CU_ASSERT_STRING_EQUAL(x.log.error_code, "invalid_request");
    app_exchange_cleanup(&x);
}

#define NUL_ERROR(loc)                                                                             \
    "[{\"type\":\"value_error\",\"loc\":[\"body\"," loc "],\"msg\":\"Value error, String must "    \
    "not contain NUL characters\"}]"
#define LONE_SURROGATE(pos)                                                                        \
    "[{\"type\":\"json_invalid\",\"loc\":[\"body\"," pos "],\"msg\":\"JSON decode error\","        \
    "\"ctx\":{\"error\":\"Lone surrogate in \\\\uXXXX escape\"}}]"

/* "inputs are hostile by default": ids that are not what they seem, and a
 * body that decodes to far more than its size. */
static void test_hostile_inputs(void)
{
    static char amp[4097];
    size_t i;

    /* jarvis.core.echo\0.evil must not run echo */
    expect_refusal("{\"node_run_id\":\"nr-7\",\"run_id\":\"r-7\",\"node_type_ref\":{"
                   "\"node_type_id\":\"jarvis.core.echo\\u0000.evil\",\"version\":\"1\"},"
                   "\"inputs\":{}}",
                   NUL_ERROR("\"node_type_ref\",\"node_type_id\""));
    /* nor an id be answered cut at the NUL */
    expect_refusal(EXEC_ID("nr-7\\u0000tail", "r-7"), NUL_ERROR("\"node_run_id\""));
    expect_refusal(EXEC_ID("nr-7", "\\u0000"), NUL_ERROR("\"run_id\""));
    /* "\ud800" and "\udbff" would both be U+FFFD: one run */
    expect_refusal(EXEC_ID("\\ud800", "r-7"), LONE_SURROGATE("16"));
    expect_refusal(EXEC_ID("nr-\\udbff", "r-7"), LONE_SURROGATE("19"));
    expect_refusal(EXEC_ID("nr-7", "\\udc00"), LONE_SURROGATE("32"));
    /* a proper pair is one code point, and fine */
    expect_result(
        EXEC_ID("nr-7", "r-\\ud83d\\ude00"),
        "{\"node_run_id\":\"nr-7\",\"state\":\"succeeded\",\"outputs\":{\"echo\":\"{}\"}}");

    /* [{},{},...] within the 4096-byte limit: 4096 * BODY_TREE_FACTOR (48)
     * = 196608 bytes of tree; "[" costs 160 and each {} 800, so the 246th
     * object, at byte 1 + 3 * 245 = 736, is the one refused. */
    amp[0] = '[';
    for (i = 1; i + 3 < sizeof amp - 1; i += 3)
        memcpy(amp + i, "{},", 3);
    amp[i - 1] = ']';
    amp[i] = '\0';
    expect_refusal(amp, "[{\"type\":\"json_invalid\",\"loc\":[\"body\",736],\"msg\":\"JSON decode "
                        "error\",\"ctx\":{\"error\":\"JSON too large to decode\"}}]");
}

static void test_cancel(void)
{
    struct exchange x;

    handle("POST", "/v1/atomic-node-runs/a%2Fb:cancel", NULL, &x);
    CU_ASSERT_EQUAL(x.resp.status, 204);
    CU_ASSERT_PTR_NULL(x.resp.body);
    CU_ASSERT_STRING_EQUAL(x.log.node_run_id, "a/b");
    app_exchange_cleanup(&x);
}

static void test_uri_too_long(void)
{
    struct exchange x;
    struct http_req req;

    memset(&req, 0, sizeof req);
    strcpy(req.method, "GET");
    req.too_long = 1;
    app_handle(&app, &req, NULL, &x);
    CU_ASSERT_EQUAL(x.resp.status, 414);
    TU_ASSERT_JSON(x.resp.body,
                   "{\"error\":{\"code\":\"uri_too_long\",\"message\":\"Request URI too long\"}}");
    app_exchange_cleanup(&x);
}

/* The value of the sample line starting with `series ` in the text of a
 * GET /metrics through the pipeline; -1 when there is none. */
static double scrape(const char *series)
{
    struct exchange x;
    double v = -1;
    size_t n = strlen(series);
    const char *p;

    handle("GET", "/metrics", NULL, &x);
    CU_ASSERT_EQUAL(x.resp.status, 200);
    CU_ASSERT_PTR_NULL(x.resp.body);
    CU_ASSERT_PTR_NOT_NULL_FATAL(x.resp.text);
    CU_ASSERT_STRING_EQUAL(x.resp.text_type, "text/plain; version=0.0.4; charset=utf-8");
    for (p = x.resp.text; p != NULL; p = strchr(p, '\n'), p = p != NULL ? p + 1 : NULL)
        if (strncmp(p, series, n) == 0 && p[n] == ' ')
            v = strtod(p + n + 1, NULL);
    app_exchange_cleanup(&x);
    return v;
}

#define ECHO_OK "jarvis_executions_total{node_type_id=\"jarvis.core.echo\",state=\"succeeded\"}"
#define OTHER_FAILED "jarvis_executions_total{node_type_id=\"other\",state=\"failed\"}"

/* Each answer adds to the metrics once; the scrape itself is a 200 the
 * next scrape counts. Without a run table the counters are this process's. */
static void test_metrics(void)
{
    double echo = scrape(ECHO_OK), other = scrape(OTHER_FAILED);
    double ok = scrape("jarvis_http_responses_total{code=\"200\"}");
    double missing = scrape("jarvis_http_responses_total{code=\"404\"}");
    struct exchange x;

    CU_ASSERT_TRUE(echo >= 0 && other >= 0 && ok >= 0 && missing >= 0);
    handle("POST", "/v1/atomic-node-runs:execute", EXEC("jarvis.core.echo", "{}"), &x);
    app_exchange_cleanup(&x);
    handle("POST", "/v1/atomic-node-runs:execute", EXEC("jarvis.nobody", "{}"), &x);
    app_exchange_cleanup(&x);
    handle("GET", "/v1/nothing", NULL, &x);
    app_exchange_cleanup(&x);
    CU_ASSERT_EQUAL(scrape(ECHO_OK), echo + 1);
    CU_ASSERT_EQUAL(scrape(OTHER_FAILED), other + 1);
    /* The 200s since `ok` was read: that scrape, three more, the two
     * executes (a result is a 200 whatever its state). */
    CU_ASSERT_EQUAL(scrape("jarvis_http_responses_total{code=\"200\"}"), ok + 4 + 2);
    CU_ASSERT_EQUAL(scrape("jarvis_http_responses_total{code=\"404\"}"), missing + 1);
    CU_ASSERT_EQUAL(scrape("jarvis_runs_running"), -1); /* no run table here */

    handle("HEAD", "/metrics", NULL, &x);
    CU_ASSERT_EQUAL(x.resp.status, 200);
    CU_ASSERT_TRUE(x.head_only);
    app_exchange_cleanup(&x);
    handle("POST", "/metrics", "{}", &x);
    CU_ASSERT_EQUAL(x.resp.status, 405);
    CU_ASSERT_STRING_EQUAL(x.resp.headers[0].value, "GET, HEAD");
    app_exchange_cleanup(&x);
}

static CU_TestInfo tests[] = {
    {"health and version", test_health_version},
    {"execute", test_execute},
    {"errors are envelopes", test_errors},
    {"node_run_id length bound", test_node_run_id_bound},
    {"hostile ids and amplification bodies", test_hostile_inputs},
    {"cancel", test_cancel},
    {"URI too long", test_uri_too_long},
    {"GET /metrics counts each answer once", test_metrics},
    CU_TEST_INFO_NULL,
};

/* ---- app_init's failures: nothing kept ---- */

/* Keys loaded (heap), then a run table that cannot be opened: app_init
 * fails and releases the auth it had set up (LeakSanitizer checks the
 * heap at exit; the app holds nothing app_cleanup would release). */
static void test_init_fails_after_auth(void)
{
    static const jarvis_pack *const packs[] = {&jarvis_pack_core, NULL};
    static const char *const vars[] = {"ARP_AUTH_MODE", "ARP_AUTH_JWKS_URI", "ARP_AUTH_ALGORITHMS"};
    struct config c = cfg;
    struct app a;
    char err[256] = "";
    size_t i;

    setenv("ARP_AUTH_MODE", "required", 1);
    setenv("ARP_AUTH_JWKS_URI", "file://" JARVIS_SOURCE_DIR "/fuzz/data/jwks.json", 1);
    setenv("ARP_AUTH_ALGORITHMS", "ES256,RS256", 1);
    snprintf(c.run_table, sizeof c.run_table, "/nonexistent/jarvis-test-app/runtable");
    c.run_table_slots = 1;
    CU_ASSERT_EQUAL(app_init(&a, &c, packs, APP_AUTH | APP_RUN_TABLE, err, sizeof err), -1);
    CU_ASSERT_NOT_EQUAL(err[0], '\0');
    CU_ASSERT_PTR_NULL(a.auth);
    CU_ASSERT_PTR_NULL(a.limits.rt);
    app_cleanup(&a); /* still allowed, and a no-op */

    /* Settings that forbid starting: the half-made auth is released too. */
    setenv("ARP_AUTH_MODE", "bogus", 1);
    err[0] = '\0';
    CU_ASSERT_EQUAL(app_init(&a, &c, packs, APP_AUTH | APP_RUN_TABLE, err, sizeof err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "ARP_AUTH_MODE"));
    CU_ASSERT_PTR_NULL(a.auth);
    for (i = 0; i < sizeof vars / sizeof vars[0]; i++)
        unsetenv(vars[i]);
}

/* A run table whose metrics another build (other node types) laid out:
 * app_init refuses it and releases the auth and the table it had opened
 * (LeakSanitizer at exit). */
static void test_init_fails_on_metrics(void)
{
    static const jarvis_pack *const one[] = {&jarvis_pack_core, NULL};
    static const jarvis_pack *const two[] = {&jarvis_pack_core, &jarvis_pack_testing, NULL};
    char dir[64], err[256] = "";
    struct config c = cfg;
    struct app first, a;

    snprintf(dir, sizeof dir, "/tmp/jarvis-test-app-mx-XXXXXX");
    CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
    snprintf(c.run_table, sizeof c.run_table, "%s/runtable", dir);
    c.run_table_slots = 4;
    CU_ASSERT_EQUAL_FATAL(app_init(&first, &c, one, APP_RUN_TABLE, err, sizeof err), 0);
    setenv("ARP_AUTH_PROFILE", "dev-insecure", 1);
    CU_ASSERT_EQUAL(app_init(&a, &c, two, APP_AUTH | APP_RUN_TABLE, err, sizeof err), -1);
    unsetenv("ARP_AUTH_PROFILE");
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "other node types"));
    CU_ASSERT_PTR_NULL(a.auth);
    CU_ASSERT_PTR_NULL(a.limits.rt);
    app_cleanup(&a); /* still allowed, and a no-op */
    app_cleanup(&first);
    tu_remove_tree(dir);
}

static CU_TestInfo init_tests[] = {
    {"app_init fails after auth: auth released", test_init_fails_after_auth},
    {"app_init refuses another build's metrics: auth and table released",
     test_init_fails_on_metrics},
    CU_TEST_INFO_NULL,
};

/* ---- with a run table of one slot: 409 and 503 ---- */

static char table_dir[64];

static int setup_with_table(void)
{
    static const jarvis_pack *const packs[] = {&jarvis_pack_core, NULL};
    char err[256];

    snprintf(table_dir, sizeof table_dir, "/tmp/jarvis-test-app-XXXXXX");
    if (mkdtemp(table_dir) == NULL)
        return -1;
    app_cleanup(&app);
    cfg.max_body_bytes = 4096;
    snprintf(cfg.run_table, sizeof cfg.run_table, "%s/runtable", table_dir);
    cfg.run_table_slots = 1;
    return app_init(&app, &cfg, packs, APP_RUN_TABLE, err, sizeof err);
}

static int cleanup_with_table(void)
{
    app_cleanup(&app);
    return tu_remove_tree(table_dir);
}

static void expect_exact(const char *body, int status, const char *want)
{
    struct exchange x;

    handle("POST", "/v1/atomic-node-runs:execute", body, &x);
    CU_ASSERT_EQUAL(x.resp.status, status);
    TU_ASSERT_JSON(x.resp.body, want);
    app_exchange_cleanup(&x);
}

static void test_duplicate_and_full(void)
{
    /* This process owns the slot, as a worker busy with nr-7 would. */
    int slot = rt_claim(app.limits.rt, "nr-7", 0);

    CU_ASSERT_TRUE_FATAL(slot >= 0);
    expect_exact(EXEC("jarvis.core.echo", "{}"), 409,
                 "{\"error\":{\"code\":\"node_run_in_progress\",\"message\":\"A NodeRun "
                 "with this node_run_id is already executing\"}}");
    expect_exact("{\"node_run_id\":\"nr-8\",\"run_id\":\"r\",\"node_type_ref\":{"
                 "\"node_type_id\":\"jarvis.core.echo\",\"version\":\"1\"},\"inputs\":{}}",
                 503,
                 "{\"error\":{\"code\":\"executor_busy\",\"message\":\"No run slot is free; "
                 "retry later\",\"retryable\":true}}");
    rt_release(app.limits.rt, slot);
    /* Free again: the same request runs. */
    expect_result(
        EXEC("jarvis.core.echo", "{\"echo\":\"x\"}"),
        "{\"node_run_id\":\"nr-7\",\"state\":\"succeeded\",\"outputs\":{\"echo\":\"x\"}}");
}

static CU_TestInfo table_tests[] = {
    {"409 for an id in flight, 503 when the table is full", test_duplicate_and_full},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"app", setup, NULL, NULL, NULL, tests},
    {"app with a run table", setup_with_table, cleanup_with_table, NULL, NULL, table_tests},
    {"app_init failures", NULL, NULL, NULL, NULL, init_tests},
    CU_SUITE_INFO_NULL,
};

int main(void)
{
    return tu_main(suites);
}
