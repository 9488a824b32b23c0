/*
 * test_validate.c - the validator: every conformance vector of the schemas
 * we have tables for (valid ones pass, invalid ones fail), then our own edge
 * cases with the exact details.errors each produces.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "schemas.h"
#include "testutil.h"
#include "utf8.h"

static const struct {
    const struct jv_schema *schema;
    const char *vector; /* under conformance/json_vectors{,_invalid}/ */
} vectors[] = {
    {&sch_atomic_execute_request, "atomic_executor/node_runs/atomic_execute_request.json"},
    {&sch_atomic_execute_result, "atomic_executor/node_runs/atomic_execute_result.json"},
    {&sch_extensions, "common/extensions.json"},
    {&sch_resource_ref, "common/resource_ref.json"},
    {&sch_error_detail, "common/error_detail.json"},
    {&sch_error_envelope, "common/error.json"},
    {&sch_health, "common/health.json"},
    {&sch_version_info, "common/version_info.json"},
    {&sch_node_type_ref, "core/node_type_ref.json"},
    {&sch_run_context, "core/run_context.json"},
    {&sch_constraint_envelope, "core/constraint_envelope.json"},
};

static int validate_file(const struct jv_schema *schema, const char *dir, const char *vector)
{
    char rel[512], *text;
    json_object *v;
    int n;

    snprintf(rel, sizeof rel, "conformance/%s/%s", dir, vector);
    text = tu_read_file(tu_spec_path(rel), NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(text);
    v = tu_json(text);
    CU_ASSERT_PTR_NOT_NULL_FATAL(v);
    n = jv_validate(schema, v, NULL);
    json_object_put(v);
    free(text);
    return n;
}

static void test_valid_vectors_pass(void)
{
    size_t i;

    for (i = 0; i < sizeof vectors / sizeof vectors[0]; i++) {
        int n = validate_file(vectors[i].schema, "json_vectors", vectors[i].vector);
        if (n != 0)
            fprintf(stderr, "\n  valid vector %s rejected\n", vectors[i].vector);
        CU_ASSERT_EQUAL(n, 0);
    }
}

static void test_invalid_vectors_fail(void)
{
    size_t i;

    for (i = 0; i < sizeof vectors / sizeof vectors[0]; i++) {
        int n = validate_file(vectors[i].schema, "json_vectors_invalid", vectors[i].vector);
        if (n == 0)
            fprintf(stderr, "\n  invalid vector %s accepted\n", vectors[i].vector);
        CU_ASSERT_NOT_EQUAL(n, 0);
    }
}

#define REQ_HEAD "\"node_run_id\":\"nr\",\"run_id\":\"r\",\"inputs\":{},"
#define REF "\"node_type_ref\":{\"node_type_id\":\"a.b\",\"version\":\"1\"}"

/* expected: NULL when valid, else the exact details.errors array. */
static const struct {
    const char *body;
    const char *expected;
} request_cases[] = {
    {"{" REQ_HEAD REF "}", NULL},
    {"{}", "[{\"type\":\"missing\",\"loc\":[\"body\",\"node_run_id\"],\"msg\":\"Field required\"},"
           "{\"type\":\"missing\",\"loc\":[\"body\",\"run_id\"],\"msg\":\"Field required\"},"
           "{\"type\":\"missing\",\"loc\":[\"body\",\"node_type_ref\"],\"msg\":\"Field required\"},"
           "{\"type\":\"missing\",\"loc\":[\"body\",\"inputs\"],\"msg\":\"Field required\"}]"},
    {"[]",
     "[{\"type\":\"model_attributes_type\",\"loc\":[\"body\"],\"msg\":\"Input should be a valid "
     "dictionary or object to extract fields from\"}]"},
    {"{" REQ_HEAD REF ",\"extra\":1}",
     "[{\"type\":\"extra_forbidden\",\"loc\":[\"body\",\"extra\"],"
     "\"msg\":\"Extra inputs are not permitted\"}]"},
    {"{\"node_run_id\":1,\"run_id\":null,\"inputs\":[]," REF "}",
     "[{\"type\":\"string_type\",\"loc\":[\"body\",\"node_run_id\"],\"msg\":\"Input should be a "
     "valid string\"},{\"type\":\"string_type\",\"loc\":[\"body\",\"run_id\"],\"msg\":\"Input "
     "should be a valid string\"},{\"type\":\"dict_type\",\"loc\":[\"body\",\"inputs\"],"
     "\"msg\":\"Input should be a valid dictionary\"}]"},
    {"{" REQ_HEAD "\"node_type_ref\":{\"node_type_id\":\"a\",\"x\":1}}",
     "[{\"type\":\"missing\",\"loc\":[\"body\",\"node_type_ref\",\"version\"],\"msg\":\"Field "
     "required\"},{\"type\":\"extra_forbidden\",\"loc\":[\"body\",\"node_type_ref\",\"x\"],"
     "\"msg\":\"Extra inputs are not permitted\"}]"},
    /* integers: 5.0 is an integer in JSON Schema, 5.5 and "5" and true are not */
    {"{" REQ_HEAD REF ",\"constraints\":{\"budgets\":{\"max_wall_time_ms\":5.0,\"max_steps\":0,"
     "\"max_external_calls\":18446744073709551615,\"max_cost\":0.5}}}",
     NULL},
    {"{" REQ_HEAD REF ",\"constraints\":{\"budgets\":{\"max_wall_time_ms\":5.5,\"max_steps\":\"5\","
     "\"max_external_calls\":true,\"max_cost\":-0.5}}}",
     "[{\"type\":\"int_type\",\"loc\":[\"body\",\"constraints\",\"budgets\",\"max_wall_time_ms\"],"
     "\"msg\":\"Input should be a valid integer\"},{\"type\":\"int_type\",\"loc\":[\"body\","
     "\"constraints\",\"budgets\",\"max_steps\"],\"msg\":\"Input should be a valid integer\"},"
     "{\"type\":\"int_type\",\"loc\":[\"body\",\"constraints\",\"budgets\",\"max_external_calls\"],"
     "\"msg\":\"Input should be a valid integer\"},{\"type\":\"greater_than_equal\",\"loc\":"
     "[\"body\",\"constraints\",\"budgets\",\"max_cost\"],\"msg\":\"Input should be greater than "
     "or equal to 0\"}]"},
    {"{" REQ_HEAD REF ",\"extensions\":{\"com.example.k\":{\"any\":[1]},\"a.b\":null,"
     "\"nodot\":1,\".lead\":1,\"trail.\":1,\"sp ace.x\":1}}",
     "[{\"type\":\"extension_key_invalid\",\"loc\":[\"body\",\"extensions\",\"nodot\"],\"msg\":"
     "\"Extension keys must be namespaced as <namespace>.<key>\"},{\"type\":"
     "\"extension_key_invalid\",\"loc\":[\"body\",\"extensions\",\".lead\"],\"msg\":\"Extension "
     "keys must be namespaced as <namespace>.<key>\"},{\"type\":\"extension_key_invalid\",\"loc\":"
     "[\"body\",\"extensions\",\"trail.\"],\"msg\":\"Extension keys must be namespaced as "
     "<namespace>.<key>\"},{\"type\":\"extension_key_invalid\",\"loc\":[\"body\",\"extensions\","
     "\"sp ace.x\"],\"msg\":\"Extension keys must be namespaced as <namespace>.<key>\"}]"},
    {"{" REQ_HEAD REF ",\"run_context\":{\"tenant_id\":\"t\",\"actor\":{\"type\":\"user\","
     "\"id\":\"u\",\"uri\":\"not a uri\"},\"trace\":{\"trace_id\":\"x\",\"parent\":\"y\"},"
     "\"identity\":{\"anything\":[1]},\"policy\":{},\"budgets\":{\"free\":1}}}",
     "[{\"type\":\"url_parsing\",\"loc\":[\"body\",\"run_context\",\"actor\",\"uri\"],\"msg\":"
     "\"Input should be a valid URI\"},{\"type\":\"extra_forbidden\",\"loc\":[\"body\","
     "\"run_context\",\"trace\",\"parent\"],\"msg\":\"Extra inputs are not permitted\"}]"},
    /* identifiers must not hold a NUL: C would read "a\u0000b" as "a" */
    {"{\"node_run_id\":\"a\\u0000b\",\"run_id\":\"\\u0000\",\"inputs\":{\"x\":\"\\u0000\"},"
     "\"node_type_ref\":{\"node_type_id\":\"jarvis.core.echo\\u0000.evil\",\"version\":"
     "\"1\\u0000\"}}",
     "[{\"type\":\"value_error\",\"loc\":[\"body\",\"node_run_id\"],\"msg\":\"Value error, "
     "String must not contain NUL characters\"},{\"type\":\"value_error\",\"loc\":[\"body\","
     "\"run_id\"],\"msg\":\"Value error, String must not contain NUL characters\"},"
     "{\"type\":\"value_error\",\"loc\":[\"body\",\"node_type_ref\",\"node_type_id\"],\"msg\":"
     "\"Value error, String must not contain NUL characters\"}]"},
    /* a NUL elsewhere (inputs, version) is the handler's business */
    {"{" REQ_HEAD "\"node_type_ref\":{\"node_type_id\":\"a.b\",\"version\":\"\\u0000\"},"
     "\"run_context\":{\"tenant_id\":\"t\\u0000\"}}",
     NULL},
    {"{" REQ_HEAD REF ",\"run_context\":null,\"constraints\":null}",
     "[{\"type\":\"dict_type\",\"loc\":[\"body\",\"run_context\"],\"msg\":\"Input should be a "
     "valid dictionary\"},{\"type\":\"dict_type\",\"loc\":[\"body\",\"constraints\"],\"msg\":"
     "\"Input should be a valid dictionary\"}]"},
};

static void test_request_cases(void)
{
    size_t i;

    for (i = 0; i < sizeof request_cases / sizeof request_cases[0]; i++) {
        json_object *body = tu_json(request_cases[i].body), *errors = NULL;
        int n;

        CU_ASSERT_PTR_NOT_NULL_FATAL(body);
        n = jv_validate(&sch_atomic_execute_request, body, &errors);
        if (request_cases[i].expected == NULL) {
            CU_ASSERT_EQUAL(n, 0);
            CU_ASSERT_PTR_NULL(errors);
        } else {
            CU_ASSERT_EQUAL(n, (int)json_object_array_length(errors));
            TU_ASSERT_JSON(errors, request_cases[i].expected);
        }
        json_object_put(errors);
        json_object_put(body);
    }
}

/* Several problems at once, in the schema's property order, with pydantic's enum text. */
static void test_constraint_errors(void)
{
    json_object *body, *errors = NULL;

    body = tu_json("{" REQ_HEAD REF ",\"constraints\":{\"budgets\":{\"max_wall_time_ms\":-1},"
                   "\"candidates\":{\"max_candidates_per_subtask\":0,"
                   "\"allowed_node_type_ids\":[\"a\",2]},\"gates\":{\"side_effect_class\":"
                   "\"delete\",\"require_approval\":\"yes\"}}}");

    CU_ASSERT_EQUAL(jv_validate(&sch_atomic_execute_request, body, &errors), 5);
    TU_ASSERT_JSON(
        errors,
        "[{\"type\":\"greater_than_equal\",\"loc\":[\"body\",\"constraints\",\"candidates\","
        "\"max_candidates_per_subtask\"],\"msg\":\"Input should be greater than or equal to 1\"},"
        "{\"type\":\"string_type\",\"loc\":[\"body\",\"constraints\",\"candidates\","
        "\"allowed_node_type_ids\",1],\"msg\":\"Input should be a valid string\"},"
        "{\"type\":\"greater_than_equal\",\"loc\":[\"body\",\"constraints\",\"budgets\","
        "\"max_wall_time_ms\"],\"msg\":\"Input should be greater than or equal to 0\"},"
        "{\"type\":\"enum\",\"loc\":[\"body\",\"constraints\",\"gates\",\"side_effect_class\"],"
        "\"msg\":\"Input should be 'read', 'write' or 'irreversible'\"},"
        "{\"type\":\"bool_type\",\"loc\":[\"body\",\"constraints\",\"gates\",\"require_approval\"],"
        "\"msg\":\"Input should be a valid boolean\"}]");
    json_object_put(errors);
    json_object_put(body);
}

static void test_error_list_is_bounded(void)
{
    char *text = malloc(64 * 1024);
    size_t i, o = 0;
    json_object *body, *errors = NULL;

    o += (size_t)sprintf(text + o, "{");
    for (i = 0; i < 100; i++)
        o += (size_t)sprintf(text + o, "%s\"x%zu\":1", i ? "," : "", i);
    sprintf(text + o, "}");
    body = tu_json(text);
    /* 100 extras + 4 missing are counted; only JV_MAX_ERRORS are listed. */
    CU_ASSERT_EQUAL(jv_validate(&sch_atomic_execute_request, body, &errors), 104);
    CU_ASSERT_EQUAL(json_object_array_length(errors), JV_MAX_ERRORS);
    json_object_put(errors);
    json_object_put(body);
    free(text);
}

static void test_extension_keys(void)
{
    CU_ASSERT_TRUE(jv_extension_key_ok("com.example.key"));
    CU_ASSERT_TRUE(jv_extension_key_ok("a.b"));
    CU_ASSERT_TRUE(jv_extension_key_ok("A9_-.x"));
    CU_ASSERT_TRUE(jv_extension_key_ok("a..b"));
    CU_ASSERT_TRUE(jv_extension_key_ok("a.b."));
    CU_ASSERT_FALSE(jv_extension_key_ok("ab"));
    CU_ASSERT_FALSE(jv_extension_key_ok(".ab"));
    CU_ASSERT_FALSE(jv_extension_key_ok("_a.b"));
    CU_ASSERT_FALSE(jv_extension_key_ok("a."));
    CU_ASSERT_FALSE(jv_extension_key_ok("a.b/c"));
    CU_ASSERT_FALSE(jv_extension_key_ok("a.\xc3\xa9"));
    CU_ASSERT_FALSE(jv_extension_key_ok(""));
}

static void test_date_time(void)
{
    CU_ASSERT_TRUE(jv_is_date_time("2026-11-25T13:10:17.123Z"));
    CU_ASSERT_TRUE(jv_is_date_time("2026-11-25T13:10:17Z"));
    CU_ASSERT_TRUE(jv_is_date_time("2024-02-29t00:00:00+05:30"));
    CU_ASSERT_TRUE(jv_is_date_time("2026-12-31T23:59:60.5-00:00"));
    CU_ASSERT_FALSE(jv_is_date_time("2025-02-29T00:00:00Z"));
    CU_ASSERT_FALSE(jv_is_date_time("2026-11-25 13:10:17Z"));
    CU_ASSERT_FALSE(jv_is_date_time("2026-11-25T13:10:17"));
    CU_ASSERT_FALSE(jv_is_date_time("2026-11-25T24:00:00Z"));
    CU_ASSERT_FALSE(jv_is_date_time("2026-13-01T00:00:00Z"));
    CU_ASSERT_FALSE(jv_is_date_time("2026-11-25T13:10:17.Z"));
    CU_ASSERT_FALSE(jv_is_date_time("2026-11-25T13:10:17+0100"));
    CU_ASSERT_FALSE(jv_is_date_time("2026-11-25T13:10:17Zjunk"));
}

static void test_uri(void)
{
    CU_ASSERT_TRUE(jv_is_uri("https://example.com/a?b=c"));
    CU_ASSERT_TRUE(jv_is_uri("urn:isbn:0451450523"));
    CU_ASSERT_TRUE(jv_is_uri("mailto:a@b.c"));
    CU_ASSERT_FALSE(jv_is_uri("/relative/path"));
    CU_ASSERT_FALSE(jv_is_uri("no scheme"));
    CU_ASSERT_FALSE(jv_is_uri("1http://x"));
    CU_ASSERT_FALSE(jv_is_uri("http://a b"));
}

static void test_results_and_envelopes(void)
{
    json_object *v;

    v = tu_json("{\"node_run_id\":\"n\",\"state\":\"failed\",\"started_at\":"
                "\"2026-01-01T00:00:00.000Z\",\"ended_at\":\"2026-01-01T00:00:00.001Z\","
                "\"error\":{\"code\":\"c\",\"message\":\"m\"}}");
    CU_ASSERT_EQUAL(jv_validate(&sch_atomic_execute_result, v, NULL), 0);
    json_object_put(v);
    v = tu_json("{\"node_run_id\":\"n\",\"state\":\"done\",\"outputs\":null}");
    CU_ASSERT_EQUAL(jv_validate(&sch_atomic_execute_result, v, NULL), 2);
    json_object_put(v);
    v = tu_json("{\"error\":{\"code\":\"c\",\"message\":\"m\",\"retryable\":true,"
                "\"details\":{},\"cause\":{\"message\":\"x\"}}}");
    CU_ASSERT_EQUAL(jv_validate(&sch_error_envelope, v, NULL), 0);
    json_object_put(v);
    v = tu_json("{\"service_name\":\"s\",\"service_version\":\"1\",\"supported_api_versions\":[]}");
    CU_ASSERT_EQUAL(jv_validate(&sch_version_info, v, NULL), 1);
    json_object_put(v);
}

/* Found by fuzz/fuzz_jschema (corpus file crash-enum-cut): pydantic's
 * "Input should be 'a' or 'b'" text is cut at 256 bytes, and a list of
 * long non-ASCII values was cut inside a character, so details.errors (an
 * answer's body) was not valid UTF-8. */
static void test_enum_message_cut_on_a_character(void)
{
    static char a[141], b[142];
    static const char *values[] = {a, b, NULL};
    static const struct jv_schema s = {.kind = JV_STRING, .enum_values = values};
    json_object *v = json_object_new_string("x"), *errors = NULL;
    const char *msg;
    size_t i;

    for (i = 0; i < 70; i++) {
        memcpy(a + 2 * i, "\xc3\xa9", 2);     /* 70 x U+00E9 */
        memcpy(b + 1 + 2 * i, "\xc3\xa9", 2); /* "a" then 70 x U+00E9 */
    }
    b[0] = 'a';
    CU_ASSERT_EQUAL(jv_validate(&s, v, &errors), 1);
    msg =
        json_object_get_string(json_object_object_get(json_object_array_get_idx(errors, 0), "msg"));
    CU_ASSERT_EQUAL(strncmp(msg, "Input should be '", 17), 0);
    CU_ASSERT_TRUE(jarvis_utf8_valid(msg, strlen(msg)));
    CU_ASSERT_TRUE(strlen(msg) >= 250 && strlen(msg) < 256);
    json_object_put(errors);
    json_object_put(v);
}

static CU_TestInfo tests[] = {
    {"valid conformance vectors pass", test_valid_vectors_pass},
    {"invalid conformance vectors fail", test_invalid_vectors_fail},
    {"AtomicExecuteRequest edge cases", test_request_cases},
    {"constraint errors", test_constraint_errors},
    {"error list is bounded", test_error_list_is_bounded},
    {"extension keys", test_extension_keys},
    {"RFC 3339 date-time", test_date_time},
    {"URI format", test_uri},
    {"results and envelopes", test_results_and_envelopes},
    {"enum message cut on a character", test_enum_message_cut_on_a_character},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"validate", NULL, NULL, NULL, NULL, tests},
    CU_SUITE_INFO_NULL,
};

int main(void)
{
    return tu_main(suites);
}
