/*
 * test_e2e.c - the service end to end: the real nginx in front of the real
 * spawn-fcgi + multiwatch pool, both started by scripts/run-local (with the
 * jarvis.test pack linked in), driven over HTTP/1.1 with libcurl.
 *
 * The pool runs with JARVIS_MAX_BODY_BYTES=4096, so the app answers 413
 * itself for 4097..8192 bytes and nginx (client_max_body_size 8192) beyond.
 * Every case asserts the exact status and the exact JSON body; timestamps
 * are checked for their form and then removed before the comparison.
 * The pool and the helpers the tests share are the harness's (pool.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pool.h"
#include "utf8.h"

#define EXECUTE POOL_EXECUTE
#define JSON_CT POOL_JSON_CT
#define APP_MAX_BODY 4096

/* ---- the pool: 2 workers, the app's body limit below nginx's ---- */

static int suite_init(void)
{
    static const char *const env[] = {"JARVIS_MAX_BODY_BYTES=4096", NULL};
    /* run-local's own default then applies: no token checked (dev-insecure). */
    static const char *const unset[] = {"ARP_AUTH_*", NULL};

    return pool_start(&(struct pool_options){
        .name = "jarvis-e2e", .workers = 2, .env = env, .unset = unset, .log_tail = 3000});
}

static int suite_cleanup(void)
{
    pool_cleanup();
    return 0;
}

/* The ErrorEnvelope of a request validation failure. */
#define INVALID(errors)                                                                            \
    "{\"error\":{\"code\":\"invalid_request\",\"message\":\"Request validation failed\","          \
    "\"details\":{\"errors\":" errors "}}}"

/* ---- request bodies ---- */

#define REF(id) "{\"node_type_id\":\"" id "\",\"version\":\"1.0.0\"}"
#define EXEC_BODY(nrid, id, inputs)                                                                \
    "{\"node_run_id\":\"" nrid                                                                     \
    "\",\"run_id\":\"run-1\",\"node_type_ref\":" REF(id) ",\"inputs\":" inputs "}"
#define ECHO_PONG EXEC_BODY("nr-1", "jarvis.core.echo", "{\"echo\":\"pong\"}")
#define PONG_RESULT                                                                                \
    "{\"node_run_id\":\"nr-1\",\"state\":\"succeeded\",\"outputs\":{\"echo\":\"pong\"}}"

/* "<prefix><pad spaces>" exactly n bytes long (caller frees). */
static char *padded(const char *prefix, size_t n)
{
    char *s = malloc(n + 1);

    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    memset(s, ' ', n);
    memcpy(s, prefix, strlen(prefix));
    s[n] = '\0';
    return s;
}

/* ---- 1, 2, 10: health and version ---- */

/* An idle pool of 2 workers (execute slots from JARVIS_WORKERS), auth off. */
#define IDLE_HEALTH                                                                                \
    "{\"status\":\"ok\",\"checks\":["                                                              \
    "{\"name\":\"execute_capacity\",\"status\":\"ok\","                                            \
    "\"details\":{\"running\":0,\"queued\":0,\"capacity\":2}},"                                    \
    "{\"name\":\"run_table\",\"status\":\"ok\",\"details\":{\"slots\":1024,\"running\":0,"         \
    "\"queued\":0,\"tombstones\":0,\"free\":1024}},"                                               \
    "{\"name\":\"auth_keys\",\"status\":\"ok\",\"message\":\"authentication is disabled\"}]}"

static void test_health(void)
{
    struct pool_reply r;
    char ts[32];

    pool_http(&(struct pool_req){.path = "/v1/health"}, &r);
    if (pool_json_reply(&r, 200) != NULL) {
        pool_take_ts(r.json, "time", ts);
        TU_ASSERT_JSON(r.json, IDLE_HEALTH);
    }
    pool_reply_free(&r);

    pool_http(&(struct pool_req){.method = "HEAD", .path = "/v1/health"}, &r);
    pool_expect_no_body(&r, 200);
    CU_ASSERT_STRING_EQUAL(r.ctype, JSON_CT);
    pool_reply_free(&r);
}

static void test_health_query_ignored(void)
{
    struct pool_reply r;
    char ts[32];

    pool_http(&(struct pool_req){.path = "/v1/health?x=1"}, &r);
    if (pool_json_reply(&r, 200) != NULL) {
        pool_take_ts(r.json, "time", ts);
        TU_ASSERT_JSON(r.json, IDLE_HEALTH);
    }
    pool_reply_free(&r);
}

static void test_version(void)
{
    struct pool_reply r;
    json_object *build = NULL;

    pool_http(&(struct pool_req){.path = "/v1/version"}, &r);
    if (pool_json_reply(&r, 200) != NULL) {
        if (json_object_object_get_ex(r.json, "build", &build)) {
            CU_ASSERT_TRUE(json_object_is_type(build, json_type_object));
            json_object_object_foreach(build, key, val)
            {
                int ok = 0;
                if (strcmp(key, "commit") == 0)
                    ok = json_object_is_type(val, json_type_string);
                else if (strcmp(key, "built_at") == 0)
                    ok = pool_is_timestamp(json_object_get_string(val));
                else if (strcmp(key, "dirty") == 0)
                    ok = json_object_is_type(val, json_type_boolean);
                if (!ok)
                    fprintf(stderr, "\n  bad build.%s\n", key);
                CU_ASSERT_TRUE(ok);
            }
            json_object_object_del(r.json, "build");
        }
        TU_ASSERT_JSON(r.json,
                       "{\"service_name\":\"jarvis-atomic-executor\","
                       "\"service_version\":\"0.1.0\",\"supported_api_versions\":[\"v1\"]}");
    }
    pool_reply_free(&r);
}

/* ---- 3, 4, 5: execute ---- */

static void test_echo(void)
{
    static const struct {
        const char *inputs, *echo;
    } cases[] = {
        /* Python: json.dumps(inputs, sort_keys=True) */
        {"{\"b\":[1,2.5,1e20,true,null],\"a\":\"\xc3\xa9\",\"c\":{\"z\":1,\"y\":\"x\"}}",
         "\"{\\\"a\\\": \\\"\\\\u00e9\\\", \\\"b\\\": [1, 2.5, 1e+20, true, null], "
         "\\\"c\\\": {\\\"y\\\": \\\"x\\\", \\\"z\\\": 1}}\""},
        {"{}", "\"{}\""},
        {"{\"echo\":5}", "\"{\\\"echo\\\": 5}\""},
    };
    char body[512], want[512];
    struct pool_reply r;
    size_t i;

    pool_execute(ECHO_PONG, &r);
    pool_expect_result(&r, PONG_RESULT);
    pool_reply_free(&r);
    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(body, sizeof body,
                 "{\"node_run_id\":\"nr-2\",\"run_id\":\"run-1\",\"node_type_ref\":" REF(
                     "jarvis.core.echo") ",\"inputs\":%s}",
                 cases[i].inputs);
        snprintf(want, sizeof want,
                 "{\"node_run_id\":\"nr-2\",\"state\":\"succeeded\",\"outputs\":{\"echo\":%s}}",
                 cases[i].echo);
        pool_execute(body, &r);
        pool_expect_result(&r, want);
        pool_reply_free(&r);
    }
}

static void test_unknown_node_type(void)
{
    struct pool_reply r;

    pool_execute(EXEC_BODY("nr-3", "nope.x", "{}"), &r);
    pool_expect_result(
        &r, "{\"node_run_id\":\"nr-3\",\"state\":\"failed\",\"error\":"
            "{\"code\":\"unknown_node_type\",\"message\":\"Unknown node_type_id: nope.x\"}}");
    pool_reply_free(&r);
}

/* 300 x "é" as node_type_id: the answer cuts it in the message, whole
 * characters only, and stays valid UTF-8 JSON (a cut mid-character made
 * every parser downstream reject it). */
static void test_unknown_node_type_long_utf8(void)
{
    char id[700], body[1024];
    struct pool_reply r;
    json_object *err = NULL, *msg = NULL;
    size_t i;

    for (i = 0; i < 300; i++)
        memcpy(id + 2 * i, "\xc3\xa9", 2);
    id[600] = '\0';
    snprintf(body, sizeof body, EXEC_BODY("nr-utf8", "%s", "{}"), id);
    pool_execute(body, &r);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r.body);
    CU_ASSERT_TRUE(jarvis_utf8_valid(r.body, r.len));
    CU_ASSERT_PTR_NOT_NULL_FATAL(r.json);
    CU_ASSERT_TRUE(json_object_object_get_ex(r.json, "error", &err) &&
                   json_object_object_get_ex(err, "message", &msg));
    CU_ASSERT_TRUE(strncmp(json_object_get_string(msg), "Unknown node_type_id: \xc3\xa9", 24) == 0);
    pool_reply_free(&r);
}

static void test_handler_failures(void)
{
    static const char *const log_tokens[] = {
        "node_run_id=nr-fail-e2e",
        "node_type_id=jarvis.test.fail",
        "status=200",
        "state=failed",
        "error=handler_error",
        "reason=\"jarvis.test.fail failed on purpose (secret detail)\"",
        NULL};
    struct pool_reply r;

    pool_execute(EXEC_BODY("nr-fail-e2e", "jarvis.test.fail", "{}"), &r);
    pool_expect_result(&r, "{\"node_run_id\":\"nr-fail-e2e\",\"state\":\"failed\",\"error\":"
                           "{\"code\":\"handler_error\",\"message\":\"Atomic handler failed\"}}");
    CU_ASSERT_PTR_NULL(r.body ? strstr(r.body, "secret detail") : NULL);
    pool_reply_free(&r);
    CU_ASSERT_TRUE(pool_find_log_line(log_tokens, NULL, 0));

    pool_execute(EXEC_BODY("nr-bad", "jarvis.test.bad_outputs", "{}"), &r);
    pool_expect_result(&r, "{\"node_run_id\":\"nr-bad\",\"state\":\"failed\",\"error\":"
                           "{\"code\":\"handler_error\",\"message\":\"Atomic handler failed\"}}");
    pool_reply_free(&r);
}

/* ---- 5: an internal failure is a 500 without internals ---- */

static void test_internal_error(void)
{
    static const char *const log_tokens[] = {"node_run_id=nr-nan", "status=500",
                                             "error=internal_error", NULL};
    struct pool_reply r;

    /* Outputs holding NaN cannot be written as JSON (the reference's
     * JSONResponse fails the same way). */
    pool_execute(EXEC_BODY("nr-nan", "jarvis.test.nan", "{}"), &r);
    pool_expect(&r, 500,
                "{\"error\":{\"code\":\"internal_error\",\"message\":\"Internal server error\"}}");
    pool_reply_free(&r);
    CU_ASSERT_TRUE(pool_find_log_line(log_tokens, NULL, 0));
}

/* ---- 6: every optional field reaches the handler as sent ---- */

static const char full_request[] =
    "{\"node_run_id\":\"nr-full\",\"run_id\":\"run-full\","
    "\"node_type_ref\":{\"node_type_id\":\"jarvis.test.context\",\"version\":\"1.0.0\","
    "\"extensions\":{\"com.example.ref\":true}},"
    "\"inputs\":{\"q\":\"what\",\"n\":[1,-2.5,{\"k\":null}],\"s\":\"a/b \\\"c\\\" \\u00e9\"},"
    "\"run_context\":{\"tenant_id\":\"tenant-1\","
    "\"actor\":{\"type\":\"user\",\"id\":\"u-1\",\"uri\":\"https://example.com/users/u-1\","
    "\"extensions\":{\"com.example.actor\":{\"x\":1}}},"
    "\"identity\":{\"sub\":\"u-1\",\"groups\":[\"a\",\"b\"]},"
    "\"trace\":{\"trace_id\":\"0af7651916cd43dd8448eb211c80319c\",\"span_id\":\"b7ad6b7169203331\","
    "\"request_id\":\"req-1\"},"
    "\"policy\":{\"mode\":\"strict\"},\"budgets\":{\"tokens\":1000},"
    "\"extensions\":{\"com.example.ctx\":\"v\"}},"
    "\"constraints\":{\"structural\":{\"max_depth\":3,\"max_children_per_composite\":4,"
    "\"max_total_nodes_per_run\":50,\"max_decomposition_rounds_per_node\":2},"
    "\"candidates\":{\"max_candidates_per_subtask\":1,"
    "\"allowed_node_type_ids\":[\"jarvis.core.echo\"],\"denied_node_type_ids\":[]},"
    "\"budgets\":{\"max_wall_time_ms\":60000,\"max_steps\":10,\"max_external_calls\":0,"
    "\"max_cost\":1.5},"
    "\"gates\":{\"side_effect_class\":\"irreversible\",\"require_approval\":false},"
    "\"extensions\":{\"com.example.k\":\"v\"}},"
    "\"extensions\":{\"com.example.k\":{\"nested\":[1,2]},\"org.x-y_z.k\":1}}";

static void test_full_request(void)
{
    json_object *outputs = NULL, *pid = NULL;
    struct pool_reply r;

    pool_execute(full_request, &r);
    if (pool_json_reply(&r, 200) != NULL &&
        json_object_object_get_ex(r.json, "outputs", &outputs)) {
        CU_ASSERT_TRUE(json_object_object_get_ex(outputs, "pid", &pid) &&
                       json_object_is_type(pid, json_type_int) && json_object_get_int64(pid) > 0);
        json_object_object_del(outputs, "pid");
        /* outputs holds exactly the request's members, as sent */
        TU_ASSERT_JSON(outputs, full_request);
        json_object_object_del(r.json, "outputs");
    }
    CU_ASSERT_PTR_NOT_NULL(outputs);
    pool_expect_result(&r, "{\"node_run_id\":\"nr-full\",\"state\":\"succeeded\"}");
    pool_reply_free(&r);
}

/* ---- 7: body errors ---- */

static void test_malformed_json(void)
{
    static const struct {
        const char *body;
        int offset;
        const char *full; /* the whole expected body, or NULL */
    } cases[] = {
        {"{\"a\":", 5, NULL},
        {"{'a':1}", 1,
         INVALID("[{\"type\":\"json_invalid\",\"loc\":[\"body\",1],\"msg\":\"JSON decode error\","
                 "\"ctx\":{\"error\":\"Unexpected character\"}}]")},
        {"[1,]", 3, NULL},
        {"NaN", 0, NULL},
        {"{} x", 3,
         INVALID("[{\"type\":\"json_invalid\",\"loc\":[\"body\",3],\"msg\":\"JSON decode error\","
                 "\"ctx\":{\"error\":\"Unexpected character\"}}]")},
        {"{\"a\":\"x\x01y\"}", 7,
         INVALID("[{\"type\":\"json_invalid\",\"loc\":[\"body\",7],\"msg\":\"JSON decode error\","
                 "\"ctx\":{\"error\":\"Invalid control character in string\"}}]")},
        /* The first error is the missing ':' at 5, not the NaN further on
         * (Python's json, behind the reference, says "Expecting ':' delimiter", 5). */
        {"{\"a\" 1, \"b\": NaN}", 5, NULL},
    };
    char want[512];
    struct pool_reply r;
    size_t i;

    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_object *ctx = NULL, *err;

        pool_execute(cases[i].body, &r);
        if (pool_json_reply(&r, 400) == NULL) {
            pool_reply_free(&r);
            continue;
        }
        if (cases[i].full != NULL)
            TU_ASSERT_JSON(r.json, cases[i].full);
        /* ctx.error's wording is the parser's: check it is a string, then the rest */
        err = json_object_array_get_idx(
            json_object_object_get(
                json_object_object_get(json_object_object_get(r.json, "error"), "details"),
                "errors"),
            0);
        CU_ASSERT_TRUE(json_object_object_get_ex(err, "ctx", &ctx) &&
                       json_object_is_type(json_object_object_get(ctx, "error"), json_type_string));
        json_object_object_del(err, "ctx");
        snprintf(want, sizeof want,
                 INVALID("[{\"type\":\"json_invalid\",\"loc\":[\"body\",%d],"
                         "\"msg\":\"JSON decode error\"}]"),
                 cases[i].offset);
        TU_ASSERT_JSON(r.json, want);
        pool_reply_free(&r);
    }
}

static void test_missing_fields(void)
{
    struct pool_reply r;

    pool_execute("", &r);
    CU_ASSERT_TRUE(pool_sent_header(&r, "Content-Length"));
    pool_expect(&r, 400,
                INVALID("[{\"type\":\"missing\",\"loc\":[\"body\"],\"msg\":\"Field required\"}]"));
    pool_reply_free(&r);

    pool_execute("{}", &r);
    pool_expect(
        &r, 400,
        INVALID(
            "["
            "{\"type\":\"missing\",\"loc\":[\"body\",\"node_run_id\"],\"msg\":\"Field required\"},"
            "{\"type\":\"missing\",\"loc\":[\"body\",\"run_id\"],\"msg\":\"Field required\"},"
            "{\"type\":\"missing\",\"loc\":[\"body\",\"node_type_ref\"],\"msg\":\"Field "
            "required\"},"
            "{\"type\":\"missing\",\"loc\":[\"body\",\"inputs\"],\"msg\":\"Field required\"}]"));
    pool_reply_free(&r);
}

static void test_schema_violations(void)
{
    static const struct {
        const char *body, *errors;
    } cases[] = {
        {"{\"node_run_id\":\"n\",\"run_id\":\"r\",\"node_type_ref\":{\"node_type_id\":\"x.y\"},"
         "\"inputs\":{},\"extra\":1}",
         "[{\"type\":\"missing\",\"loc\":[\"body\",\"node_type_ref\",\"version\"],"
         "\"msg\":\"Field required\"},"
         "{\"type\":\"extra_forbidden\",\"loc\":[\"body\",\"extra\"],"
         "\"msg\":\"Extra inputs are not permitted\"}]"},
        {"{\"node_run_id\":1,\"run_id\":null,\"node_type_ref\":\"x\",\"inputs\":[]}",
         "[{\"type\":\"string_type\",\"loc\":[\"body\",\"node_run_id\"],"
         "\"msg\":\"Input should be a valid string\"},"
         "{\"type\":\"string_type\",\"loc\":[\"body\",\"run_id\"],"
         "\"msg\":\"Input should be a valid string\"},"
         "{\"type\":\"dict_type\",\"loc\":[\"body\",\"node_type_ref\"],"
         "\"msg\":\"Input should be a valid dictionary\"},"
         "{\"type\":\"dict_type\",\"loc\":[\"body\",\"inputs\"],"
         "\"msg\":\"Input should be a valid dictionary\"}]"},
        {"{\"node_run_id\":\"n\",\"run_id\":\"r\",\"node_type_ref\":" REF(
             "x.y") ",\"inputs\":{},"
                    "\"constraints\":{\"budgets\":{\"max_wall_time_ms\":-1},"
                    "\"gates\":{\"side_effect_class\":\"delete\"}},\"extensions\":{\"nodot\":1}}",
         "[{\"type\":\"greater_than_equal\","
         "\"loc\":[\"body\",\"constraints\",\"budgets\",\"max_wall_time_ms\"],"
         "\"msg\":\"Input should be greater than or equal to 0\"},"
         "{\"type\":\"enum\",\"loc\":[\"body\",\"constraints\",\"gates\",\"side_effect_class\"],"
         "\"msg\":\"Input should be 'read', 'write' or 'irreversible'\"},"
         "{\"type\":\"extension_key_invalid\",\"loc\":[\"body\",\"extensions\",\"nodot\"],"
         "\"msg\":\"Extension keys must be namespaced as <namespace>.<key>\"}]"},
        {"[]", "[{\"type\":\"model_attributes_type\",\"loc\":[\"body\"],"
               "\"msg\":\"Input should be a valid dictionary or object to extract fields from\"}]"},
    };
    char want[2048];
    struct pool_reply r;
    size_t i;

    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(want, sizeof want, INVALID("%s"), cases[i].errors);
        pool_execute(cases[i].body, &r);
        pool_expect(&r, 400, want);
        pool_reply_free(&r);
    }
}

/* prefix, then `arrays` nested arrays around 1, then suffix (caller frees). */
static char *nest(const char *prefix, int arrays, const char *suffix)
{
    size_t n = strlen(prefix);
    char *s = malloc(n + 2 * (size_t)arrays + strlen(suffix) + 2);
    int i;

    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    memcpy(s, prefix, n);
    for (i = 0; i < arrays; i++)
        s[n++] = '[';
    s[n++] = '1';
    for (i = 0; i < arrays; i++)
        s[n++] = ']';
    strcpy(s + n, suffix);
    return s;
}

static void test_nesting_depth(void)
{
    static const char head[] =
        "{\"node_run_id\":\"nr-deep\",\"run_id\":\"r\",\"node_type_ref\":" REF(
            "jarvis.core.echo") ",\"inputs\":{\"d\":";
    /* The body is level 1 and inputs level 2: 62 arrays reach level 64. */
    char *ok = nest(head, 62, "}}"), *deep = nest(head, 63, "}}"), want[512];
    char *echo = nest("{\"node_run_id\":\"nr-deep\",\"state\":\"succeeded\","
                      "\"outputs\":{\"echo\":\"{\\\"d\\\": ",
                      62, "}\"}}");
    struct pool_reply r;

    pool_execute(ok, &r);
    pool_expect_result(&r, echo);
    pool_reply_free(&r);

    /* The 65th opening bracket is the 63rd array, at this byte offset. */
    snprintf(want, sizeof want,
             INVALID("[{\"type\":\"json_invalid\",\"loc\":[\"body\",%zu],"
                     "\"msg\":\"JSON decode error\",\"ctx\":{\"error\":\"Nesting too deep\"}}]"),
             strlen(head) + 62);
    pool_execute(deep, &r);
    pool_expect(&r, 400, want);
    pool_reply_free(&r);
    free(ok);
    free(deep);
    free(echo);
}

/* ---- hostile inputs: ids that are not what they seem, amplification ---- */

#define NUL_ERROR(loc)                                                                             \
    INVALID("[{\"type\":\"value_error\",\"loc\":[\"body\"," loc "],\"msg\":\"Value error, "        \
            "String must not contain NUL characters\"}]")
#define JSON_ERROR(pos, why)                                                                       \
    INVALID("[{\"type\":\"json_invalid\",\"loc\":[\"body\"," pos                                   \
            "],\"msg\":\"JSON decode error\","                                                     \
            "\"ctx\":{\"error\":\"" why "\"}}]")
#define LONE_SURROGATE "Lone surrogate in \\\\uXXXX escape"

static void test_hostile_ids(void)
{
    static const struct {
        const char *body, *want;
    } cases[] = {
        /* json-c decodes \u0000 to a NUL: C would dispatch this to echo */
        {EXEC_BODY("nr-h1", "jarvis.core.echo\\u0000.evil", "{}"),
         NUL_ERROR("\"node_type_ref\",\"node_type_id\"")},
        /* and answer this id cut at the NUL */
        {EXEC_BODY("nr-h2\\u0000tail", "jarvis.core.echo", "{}"), NUL_ERROR("\"node_run_id\"")},
        {"{\"node_run_id\":\"nr-h3\",\"run_id\":\"r\\u0000\",\"node_type_ref\":" REF(
             "jarvis.core.echo") ",\"inputs\":{}}",
         NUL_ERROR("\"run_id\"")},
        /* json-c makes every lone surrogate U+FFFD: these two would be one run */
        {EXEC_BODY("\\ud800", "jarvis.core.echo", "{}"), JSON_ERROR("16", LONE_SURROGATE)},
        {EXEC_BODY("\\udbff", "jarvis.core.echo", "{}"), JSON_ERROR("16", LONE_SURROGATE)},
        {EXEC_BODY("nr-h4", "jarvis.core.echo", "{\"echo\":\"\\udc00\"}"),
         JSON_ERROR("128", LONE_SURROGATE)},
    };
    struct pool_reply r;
    size_t i;

    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        pool_execute(cases[i].body, &r);
        pool_expect(&r, 400, cases[i].want);
        pool_reply_free(&r);
    }
    /* A surrogate pair is one code point, and echoed as such. */
    pool_execute(EXEC_BODY("nr-h5", "jarvis.core.echo", "{\"echo\":\"\\ud83d\\ude00\"}"), &r);
    pool_expect_result(&r, "{\"node_run_id\":\"nr-h5\",\"state\":\"succeeded\","
                           "\"outputs\":{\"echo\":\"\xf0\x9f\x98\x80\"}}");
    pool_reply_free(&r);
}

static void test_amplification(void)
{
    char body[APP_MAX_BODY + 1];
    struct pool_reply r;
    size_t i;

    /* [{},{},...] filling the app's 4096-byte limit. Its tree may cost 48
     * times the limit (body.h's BODY_TREE_FACTOR): 196608 bytes, charged
     * 160 for the array and 800 an object, so the 246th object, at byte
     * 1 + 3 * 245 = 736, is refused before json-c builds any more. */
    body[0] = '[';
    for (i = 1; i + 3 < sizeof body - 1; i += 3)
        memcpy(body + i, "{},", 3);
    body[i - 1] = ']';
    body[i] = '\0';
    pool_execute(body, &r);
    pool_expect(&r, 400, JSON_ERROR("736", "JSON too large to decode"));
    pool_reply_free(&r);
    /* The worker that refused it still answers. */
    pool_execute(ECHO_PONG, &r);
    pool_expect_result(&r, PONG_RESULT);
    pool_reply_free(&r);
}

/* ---- 7: routing ---- */

#define NOT_FOUND "{\"error\":{\"code\":\"not_found\",\"message\":\"Not Found\"}}"
#define NOT_ALLOWED                                                                                \
    "{\"error\":{\"code\":\"method_not_allowed\",\"message\":\"Method Not Allowed\"}}"

static void test_not_found(void)
{
    struct pool_reply r;

    pool_http(&(struct pool_req){.path = "/nope"}, &r);
    pool_expect(&r, 404, NOT_FOUND);
    pool_reply_free(&r);
    pool_http(&(struct pool_req){.path = "/v1/healthz"}, &r);
    pool_expect(&r, 404, NOT_FOUND);
    pool_reply_free(&r);
    pool_post("/v1/atomic-node-runs:cancel", JSON_CT, "", &r);
    pool_expect(&r, 404, NOT_FOUND);
    pool_reply_free(&r);
}

static void test_method_not_allowed(void)
{
    struct pool_reply r;

    pool_post("/v1/health", JSON_CT, "", &r);
    pool_expect(&r, 405, NOT_ALLOWED);
    CU_ASSERT_STRING_EQUAL(r.allow, "GET, HEAD");
    pool_reply_free(&r);
    pool_http(&(struct pool_req){.path = EXECUTE}, &r);
    pool_expect(&r, 405, NOT_ALLOWED);
    CU_ASSERT_STRING_EQUAL(r.allow, "POST");
    pool_reply_free(&r);
    pool_http(&(struct pool_req){.method = "DELETE", .path = "/v1/atomic-node-runs/x:cancel"}, &r);
    pool_expect(&r, 405, NOT_ALLOWED);
    CU_ASSERT_STRING_EQUAL(r.allow, "POST");
    pool_reply_free(&r);
}

/* ---- 7: framing: 411, 413, 415, chunked ---- */

static void test_length_required(void)
{
    struct pool_reply r;

    pool_http(&(struct pool_req){.method = "POST", .path = EXECUTE, .ctype = JSON_CT}, &r);
    CU_ASSERT_FALSE(pool_sent_header(&r, "Content-Length"));
    CU_ASSERT_FALSE(pool_sent_header(&r, "Transfer-Encoding"));
    pool_expect(
        &r, 411,
        "{\"error\":{\"code\":\"length_required\",\"message\":\"Content-Length required\"}}");
    pool_reply_free(&r);
}

static void test_payload_too_large(void)
{
    static const size_t app_sizes[] = {APP_MAX_BODY + 1, 2 * APP_MAX_BODY};
    struct pool_reply r;
    char *body;
    size_t i;

    /* Exactly the limit is read and parsed. */
    body = padded(ECHO_PONG, APP_MAX_BODY);
    pool_execute(body, &r);
    pool_expect_result(&r, PONG_RESULT);
    pool_reply_free(&r);
    free(body);
    for (i = 0; i < sizeof app_sizes / sizeof app_sizes[0]; i++) {
        body = padded(ECHO_PONG, app_sizes[i]);
        pool_execute(body, &r);
        pool_expect(&r, 413,
                    "{\"error\":{\"code\":\"payload_too_large\","
                    "\"message\":\"Request body too large\",\"details\":{\"max_bytes\":4096}}}");
        pool_reply_free(&r);
        free(body);
    }
    body = padded(ECHO_PONG, 20000);
    pool_execute(body, &r);
    pool_expect(
        &r, 413,
        "{\"error\":{\"code\":\"payload_too_large\",\"message\":\"Request body too large\"}}");
    pool_reply_free(&r);
    free(body);
}

static void test_content_types(void)
{
    struct pool_reply r;

    pool_post(EXECUTE, "text/plain", ECHO_PONG, &r);
    pool_expect(&r, 415,
                "{\"error\":{\"code\":\"unsupported_media_type\","
                "\"message\":\"Content-Type must be application/json\"}}");
    pool_reply_free(&r);
    pool_post(EXECUTE, "application/json; charset=utf-8", ECHO_PONG, &r);
    pool_expect_result(&r, PONG_RESULT);
    pool_reply_free(&r);
    pool_post(EXECUTE, NULL, ECHO_PONG, &r);
    CU_ASSERT_FALSE(pool_sent_header(&r, "Content-Type"));
    pool_expect_result(&r, PONG_RESULT);
    pool_reply_free(&r);
}

static void test_chunked_body(void)
{
    struct pool_reply r;

    pool_http(&(struct pool_req){.method = "POST",
                                 .path = EXECUTE,
                                 .ctype = JSON_CT,
                                 .body = ECHO_PONG,
                                 .header = "Transfer-Encoding: chunked"},
              &r);
    CU_ASSERT_FALSE(pool_sent_header(&r, "Content-Length"));
    CU_ASSERT_TRUE(pool_sent_header(&r, "Transfer-Encoding"));
    pool_expect_result(&r, PONG_RESULT);
    pool_reply_free(&r);
}

/* ---- 8: cancel ---- */

static void test_cancel(void)
{
    static const char *const ids[] = {"abc", "a%2Fb%3Ac", "%C3%A9"};
    char path[128];
    struct pool_reply r;
    size_t i;

    for (i = 0; i < sizeof ids / sizeof ids[0]; i++) {
        snprintf(path, sizeof path, "/v1/atomic-node-runs/%s:cancel", ids[i]);
        pool_post(path, JSON_CT, "", &r);
        pool_expect_no_body(&r, 204);
        pool_reply_free(&r);
    }
    /* Decodes to a byte that is not UTF-8: the app refuses the id. */
    pool_post("/v1/atomic-node-runs/%FF:cancel", JSON_CT, "", &r);
    pool_expect(
        &r, 400,
        "{\"error\":{\"code\":\"invalid_request\",\"message\":\"Invalid node_run_id in path\"}}");
    pool_reply_free(&r);
}

static void test_cancel_bad_escape(void)
{
    struct pool_reply r;

    /* nginx refuses a malformed %-escape in the request line before any location
     * runs, so the app never sees it; the answer must still be JSON: the 400 of
     * the nginx error mapping (deploy/nginx/jarvis-atomic-executor-errors.conf). */
    pool_post("/v1/atomic-node-runs/%zz:cancel", JSON_CT, "", &r);
    pool_expect(&r, 400, "{\"error\":{\"code\":\"invalid_request\",\"message\":\"Bad Request\"}}");
    pool_reply_free(&r);
}

/* ---- 9: the logs ---- */

static void test_request_log(void)
{
    static const char *const tokens[] = {"method=POST",
                                         "path=" EXECUTE,
                                         "status=200",
                                         "node_run_id=nr-log-e2e",
                                         "node_type_id=jarvis.core.echo",
                                         "state=succeeded",
                                         "dur_ms=",
                                         NULL};
    struct pool_reply r;
    size_t len = 0;
    char *text;

    pool_execute(EXEC_BODY("nr-log-e2e", "jarvis.core.echo", "{\"echo\":\"log\"}"), &r);
    pool_expect_result(&r, "{\"node_run_id\":\"nr-log-e2e\",\"state\":\"succeeded\","
                           "\"outputs\":{\"echo\":\"log\"}}");
    pool_reply_free(&r);
    CU_ASSERT_TRUE(pool_find_log_line(tokens, NULL, 0));

    text = pool_read_log("nginx-access.log", &len);
    CU_ASSERT_PTR_NOT_NULL(text);
    CU_ASSERT_TRUE(len > 0);
    free(text);
}

/* ---- last: the pool stops, leaving no process behind ---- */

static void test_stop(void)
{
    pool_assert_stop();
}

static CU_TestInfo tests[] = {
    {"GET/HEAD /v1/health", test_health},
    {"query string ignored for routing", test_health_query_ignored},
    {"GET /v1/version", test_version},
    {"echo: string and sorted-key JSON", test_echo},
    {"unknown node type", test_unknown_node_type},
    {"unknown node type: a long UTF-8 id stays valid UTF-8", test_unknown_node_type_long_utf8},
    {"handler failures stay out of the answer", test_handler_failures},
    {"500 for an internal failure, without internals", test_internal_error},
    {"every optional field reaches the handler", test_full_request},
    {"malformed JSON", test_malformed_json},
    {"empty body and missing fields", test_missing_fields},
    {"schema violations", test_schema_violations},
    {"nesting depth bound", test_nesting_depth},
    {"NUL and lone-surrogate ids", test_hostile_ids},
    {"amplification body refused", test_amplification},
    {"404", test_not_found},
    {"405 with Allow", test_method_not_allowed},
    {"411 without Content-Length", test_length_required},
    {"413 from the app and from nginx", test_payload_too_large},
    {"415 and accepted content types", test_content_types},
    {"chunked request body", test_chunked_body},
    {"cancel", test_cancel},
    {"cancel with a malformed escape", test_cancel_bad_escape},
    {"request log", test_request_log},
    {"run-local stop leaves no process behind", test_stop},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"e2e (nginx + spawn-fcgi pool)", suite_init, suite_cleanup, NULL, NULL, tests},
    CU_SUITE_INFO_NULL,
};

int main(void)
{
    return pool_main(suites);
}
