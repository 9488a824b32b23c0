/*
 * test_echo.c - jarvis.core.echo and the Python-compatible serializer behind
 * it. Expected strings were produced by CPython 3.11's json.dumps(...,
 * sort_keys=True) and repr(float).
 */
#include <stdlib.h>
#include <string.h>

#include "../../plugins/core/pyjson.h"
#include "dispatch.h"
#include "testutil.h"

extern const jarvis_pack jarvis_pack_core;

static void test_float_repr(void)
{
    static const struct {
        double d;
        const char *want;
    } cases[] = {
        {0.0, "0.0"},
        {-0.0, "-0.0"},
        {1.0, "1.0"},
        {0.1, "0.1"},
        {1.5, "1.5"},
        {100.0, "100.0"},
        {1e15, "1000000000000000.0"},
        {1e16, "1e+16"},
        {1.5e16, "1.5e+16"},
        {123456789012345678.0, "1.2345678901234568e+17"},
        {1e-4, "0.0001"},
        {1e-5, "1e-05"},
        {1.2345e-7, "1.2345e-07"},
        {5e-324, "5e-324"},
        {1.7976931348623157e308, "1.7976931348623157e+308"},
        {-3.25, "-3.25"},
        {0.30000000000000004, "0.30000000000000004"},
        {1.0 / 3.0, "0.3333333333333333"},
        {12345.678, "12345.678"},
        {1e22, "1e+22"},
        {9007199254740993.0, "9007199254740992.0"},
    };
    char buf[40];
    size_t i;

    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        CU_ASSERT_EQUAL(pyjson_float_repr(cases[i].d, buf, sizeof buf), 0);
        if (strcmp(buf, cases[i].want) != 0)
            fprintf(stderr, "\n  repr(%.17g): got %s want %s\n", cases[i].d, buf, cases[i].want);
        CU_ASSERT_STRING_EQUAL(buf, cases[i].want);
    }
    CU_ASSERT_EQUAL(pyjson_float_repr(1.0 / 0.0, buf, sizeof buf), -1);
    CU_ASSERT_EQUAL(pyjson_float_repr(0.1, buf, 3), -1);
}

static void expect_dumps(const char *json, const char *want)
{
    json_object *v = tu_json(json);
    char *got = pyjson_dumps_sorted(v);

    CU_ASSERT_PTR_NOT_NULL_FATAL(got);
    if (strcmp(got, want) != 0)
        fprintf(stderr, "\n  dumps: got %s\n        want %s\n", got, want);
    CU_ASSERT_STRING_EQUAL(got, want);
    free(got);
    json_object_put(v);
}

static void test_dumps_sorted(void)
{
    expect_dumps(
        "{\"b\":[1,2.5,1e20,true,null],\"a\":\"\xc3\xa9\",\"c\":{\"z\":1,\"y\":\"x\"},"
        "\"d\":\"\\u0001\x7f\\\"\\\\/\\n\\t\",\"e\":\"\xf0\x9f\x98\x80\",\"\":{},\"f\":[]}",
        "{\"\": {}, \"a\": \"\\u00e9\", \"b\": [1, 2.5, 1e+20, true, null], \"c\": "
        "{\"y\": \"x\", \"z\": 1}, \"d\": \"\\u0001\\u007f\\\"\\\\/\\n\\t\", \"e\": "
        "\"\\ud83d\\ude00\", \"f\": []}");
    expect_dumps("{\"a\":-9223372036854775808,\"b\":18446744073709551615}",
                 "{\"a\": -9223372036854775808, \"b\": 18446744073709551615}");
    expect_dumps("{}", "{}");
    expect_dumps("{\"s\":\"a\\u0000b\"}", "{\"s\": \"a\\u0000b\"}");
    /* byte order of UTF-8 keys is code point order */
    expect_dumps("{\"\xc3\xa9\":1,\"z\":2,\"Z\":3}", "{\"Z\": 3, \"z\": 2, \"\\u00e9\": 1}");
}

/* Runs jarvis.core.echo through dispatch with `inputs`. */
static void run_echo(const char *inputs, struct exec_result *res)
{
    static const jarvis_pack *const packs[] = {&jarvis_pack_core, NULL};
    struct dsp_registry reg;
    struct exec_req req;
    char err[128];
    json_object *in = tu_json(inputs);

    CU_ASSERT_EQUAL_FATAL(dsp_registry_init(&reg, packs, err, sizeof err), 0);
    memset(&req, 0, sizeof req);
    req.node_run_id = "nr";
    req.run_id = "r";
    req.node_type_id = "jarvis.core.echo";
    req.inputs = in;
    static const struct dsp_limits none = {NULL, 0, 0, 0};

    CU_ASSERT_EQUAL(dsp_execute(&reg, &none, &req, NULL, res), DSP_OK);
    json_object_put(in);
}

static void test_echo_string(void)
{
    struct exec_result res;

    run_echo("{\"echo\":\"pong\",\"other\":1}", &res);
    CU_ASSERT_EQUAL(res.state, RUN_SUCCEEDED);
    TU_ASSERT_JSON(res.outputs, "{\"echo\":\"pong\"}");
    dsp_result_cleanup(&res);
}

static void test_echo_non_string(void)
{
    struct exec_result res;

    run_echo("{\"echo\":5,\"a\":[1.0,\"x\"]}", &res);
    CU_ASSERT_EQUAL(res.state, RUN_SUCCEEDED);
    TU_ASSERT_JSON(res.outputs, "{\"echo\":\"{\\\"a\\\": [1.0, \\\"x\\\"], \\\"echo\\\": 5}\"}");
    dsp_result_cleanup(&res);
    run_echo("{}", &res);
    TU_ASSERT_JSON(res.outputs, "{\"echo\":\"{}\"}");
    dsp_result_cleanup(&res);
}

static CU_TestInfo tests[] = {
    {"float repr as Python", test_float_repr},
    {"json.dumps(sort_keys=True) as Python", test_dumps_sorted},
    {"echo returns a string input", test_echo_string},
    {"echo serializes other inputs", test_echo_non_string},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"echo", NULL, NULL, NULL, NULL, tests},
    CU_SUITE_INFO_NULL,
};

int main(void)
{
    return tu_main(suites);
}
