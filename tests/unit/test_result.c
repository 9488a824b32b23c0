/*
 * test_result.c - the bodies of successful answers (result.c): an
 * AtomicExecuteResult in each state, with and without its optional fields
 * and ownership handed over; VersionInfo from the build facts; the
 * writability check (NaN, infinity, nesting) and timestamps that cannot be
 * written.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "buildinfo.h"
#include "result.h"
#include "testutil.h"

/* 2026-11-25T13:10:17.123Z and one second later. */
#define T0 1795612217123LL
#define T1 1795612218123LL
/* The first millisecond of year 10000: RFC 3339 has no room for it. */
#define YEAR_10000_MS 253402300800000LL

/* A result of id in state, started at T0 and ended at T1, with an error
 * code and message unless code is NULL. */
static void result_of(struct exec_result *res, const char *id, enum run_state state,
                      const char *code, const char *message)
{
    memset(res, 0, sizeof *res);
    res->node_run_id = id;
    res->state = state;
    res->started_ms = T0;
    res->ended_ms = T1;
    res->error_code = code;
    if (message != NULL)
        snprintf(res->message, sizeof res->message, "%s", message);
}

static void test_succeeded(void)
{
    struct exec_result res;
    json_object *o;

    result_of(&res, "nr-1", RUN_SUCCEEDED, NULL, NULL);
    res.outputs = tu_json("{\"echo\":[1,2]}");
    o = res_execute_result(&res);
    CU_ASSERT_PTR_NULL(res.outputs); /* taken over */
    TU_ASSERT_JSON(o, "{\"node_run_id\":\"nr-1\",\"state\":\"succeeded\",\"outputs\":{\"echo\":"
                      "[1,2]},\"started_at\":\"2026-11-25T13:10:17.123Z\",\"ended_at\":"
                      "\"2026-11-25T13:10:18.123Z\"}");
    json_object_put(o);
}

/* Optional fields are left out, never null. */
static void test_failed_minimal(void)
{
    struct exec_result res;
    json_object *o;

    result_of(&res, "nr-2", RUN_FAILED, "handler_failed", "it broke");
    res.ended_ms = YEAR_10000_MS; /* cannot be written: left out */
    o = res_execute_result(&res);
    TU_ASSERT_JSON(o, "{\"node_run_id\":\"nr-2\",\"state\":\"failed\",\"started_at\":"
                      "\"2026-11-25T13:10:17.123Z\",\"error\":{\"code\":\"handler_failed\","
                      "\"message\":\"it broke\"}}");
    json_object_put(o);
}

static void test_error_details(void)
{
    struct exec_result res;
    json_object *o;

    result_of(&res, "nr-3", RUN_CANCELED, "canceled", "Canceled");
    res.error_details = tu_json("{\"by\":\"client\"}");
    o = res_execute_result(&res);
    CU_ASSERT_PTR_NULL(res.error_details); /* taken over */
    TU_ASSERT_JSON(o, "{\"node_run_id\":\"nr-3\",\"state\":\"canceled\",\"started_at\":"
                      "\"2026-11-25T13:10:17.123Z\",\"ended_at\":\"2026-11-25T13:10:18.123Z\","
                      "\"error\":{\"code\":\"canceled\",\"message\":\"Canceled\",\"details\":"
                      "{\"by\":\"client\"}}}");
    json_object_put(o);
}

static void test_state_names(void)
{
    CU_ASSERT_STRING_EQUAL(res_state_name(RUN_SUCCEEDED), "succeeded");
    CU_ASSERT_STRING_EQUAL(res_state_name(RUN_FAILED), "failed");
    CU_ASSERT_STRING_EQUAL(res_state_name(RUN_CANCELED), "canceled");
}

static void test_add_time(void)
{
    json_object *o = json_object_new_object();

    res_add_time(o, "at", 0);
    res_add_time(o, "before", -1); /* 1969: still a year RFC 3339 writes */
    res_add_time(o, "never", YEAR_10000_MS);
    res_add_time(o, "negative_year", -62167219200001LL); /* year -1 */
    TU_ASSERT_JSON(o, "{\"at\":\"1970-01-01T00:00:00.000Z\","
                      "\"before\":\"1969-12-31T23:59:59.999Z\"}");
    json_object_put(o);
}

/* A value nested n levels deep: [[...[1]...]] (caller puts). */
static json_object *nested(int n)
{
    json_object *v = json_object_new_int(1);
    int i;

    for (i = 0; i < n; i++) {
        json_object *a = json_object_new_array();
        json_object_array_add(a, v);
        v = a;
    }
    return v;
}

static void test_writable(void)
{
    json_object *o = tu_json("{\"a\":[1,2.5,\"x\",null,true,{\"b\":{}}]}"), *v;

    CU_ASSERT_TRUE(res_json_writable(o));
    json_object_put(o);

    /* NaN and infinity, at the top, in an array, in an object. */
    v = json_object_new_double(NAN);
    CU_ASSERT_FALSE(res_json_writable(v));
    json_object_put(v);
    o = json_object_new_array();
    json_object_array_add(o, json_object_new_int(1));
    json_object_array_add(o, json_object_new_double(INFINITY));
    CU_ASSERT_FALSE(res_json_writable(o));
    json_object_put(o);
    o = json_object_new_object();
    json_object_object_add(o, "ok", json_object_new_double(1.5));
    json_object_object_add(o, "bad", json_object_new_double(-INFINITY));
    CU_ASSERT_FALSE(res_json_writable(o));
    json_object_put(o);

    /* Depth: RES_MAX_DEPTH levels below the top are writable, one more not. */
    o = nested(RES_MAX_DEPTH);
    CU_ASSERT_TRUE(res_json_writable(o));
    json_object_put(o);
    o = nested(RES_MAX_DEPTH + 1);
    CU_ASSERT_FALSE(res_json_writable(o));
    json_object_put(o);
    CU_ASSERT_TRUE(res_json_writable(NULL)); /* JSON null */
}

static void test_version(void)
{
    json_object *o = res_version(), *build = NULL, *v = NULL;

    CU_ASSERT_STRING_EQUAL(json_object_get_string(json_object_object_get(o, "service_name")),
                           "jarvis-atomic-executor");
    CU_ASSERT_STRING_EQUAL(json_object_get_string(json_object_object_get(o, "service_version")),
                           jarvis_build_version);
    TU_ASSERT_JSON(json_object_object_get(o, "supported_api_versions"), "[\"v1\"]");
    /* build holds exactly the facts that are known; none known: no build. */
    if (json_object_object_get_ex(o, "build", &build)) {
        CU_ASSERT_EQUAL(json_object_object_get_ex(build, "commit", &v),
                        jarvis_build_commit[0] != '\0');
        CU_ASSERT_EQUAL(json_object_object_get_ex(build, "built_at", &v),
                        jarvis_build_time[0] != '\0');
        CU_ASSERT_EQUAL(json_object_object_get_ex(build, "dirty", &v), jarvis_build_dirty >= 0);
        CU_ASSERT_TRUE(json_object_object_length(build) > 0);
    } else {
        CU_ASSERT_TRUE(jarvis_build_commit[0] == '\0' && jarvis_build_time[0] == '\0' &&
                       jarvis_build_dirty < 0);
    }
    CU_ASSERT_EQUAL(json_object_object_length(o), build != NULL ? 4 : 3);
    json_object_put(o);
}

static CU_TestInfo tests[] = {
    {"succeeded: outputs and times", test_succeeded},
    {"failed: optional fields left out", test_failed_minimal},
    {"canceled: error details taken over", test_error_details},
    {"state names", test_state_names},
    {"timestamps that cannot be written are left out", test_add_time},
    {"writable: NaN, infinity, depth", test_writable},
    {"VersionInfo from the build facts", test_version},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"result", NULL, NULL, NULL, NULL, tests},
    CU_SUITE_INFO_NULL,
};

int main(void)
{
    return tu_main(suites);
}
