/*
 * test_example.c - the example pack, as a third party would test theirs:
 * through dsp_execute, so the declared schemas are enforced as in service.
 */
#include <string.h>

#include "dispatch.h"
#include "testutil.h"

extern const jarvis_pack jarvis_pack_example;

static int run(const char *inputs, struct exec_result *res)
{
    static const jarvis_pack *const packs[] = {&jarvis_pack_example, NULL};
    static const struct dsp_limits limits = {NULL, 0, 0, 0};
    struct dsp_registry reg;
    struct exec_req req;
    char err[256];
    json_object *in = tu_json(inputs);
    int rc;

    CU_ASSERT_EQUAL_FATAL(dsp_registry_init(&reg, packs, err, sizeof err), 0);
    memset(&req, 0, sizeof req);
    req.node_run_id = "nr";
    req.run_id = "r";
    req.node_type_id = "example.greet";
    req.inputs = in;
    req.subject = "alice";
    rc = dsp_execute(&reg, &limits, &req, NULL, res);
    json_object_put(in);
    return rc;
}

static void test_greets(void)
{
    struct exec_result res;

    CU_ASSERT_EQUAL(run("{\"name\":\"Ada\"}", &res), DSP_OK);
    CU_ASSERT_EQUAL(res.state, RUN_SUCCEEDED);
    TU_ASSERT_JSON(res.outputs, "{\"message\":\"Hello, Ada!\",\"by\":\"alice\"}");
    dsp_result_cleanup(&res);
    CU_ASSERT_EQUAL(run("{\"name\":\"Bo\",\"greeting\":\"welcome\",\"delay_ms\":10}", &res),
                    DSP_OK);
    TU_ASSERT_JSON(res.outputs, "{\"message\":\"Welcome, Bo!\",\"by\":\"alice\"}");
    dsp_result_cleanup(&res);
}

static void test_schema_is_enforced(void)
{
    struct exec_result res;
    json_object *e = NULL;

    CU_ASSERT_EQUAL(run("{\"greeting\":\"yo\",\"extra\":1}", &res), DSP_OK);
    CU_ASSERT_EQUAL(res.state, RUN_FAILED);
    CU_ASSERT_STRING_EQUAL(res.error_code, "invalid_inputs");
    CU_ASSERT_STRING_EQUAL(res.message, "Inputs do not match the node's input schema");
    CU_ASSERT_TRUE(json_object_object_get_ex(res.error_details, "errors", &e));
    TU_ASSERT_JSON(e, "[{\"type\":\"missing\",\"loc\":[\"inputs\",\"name\"],\"msg\":\"Field "
                      "required\"},{\"type\":\"enum\",\"loc\":[\"inputs\",\"greeting\"],\"msg\":"
                      "\"Input should be 'hello', 'hi' or 'welcome'\"},{\"type\":"
                      "\"extra_forbidden\",\"loc\":[\"inputs\",\"extra\"],\"msg\":\"Extra inputs "
                      "are not permitted\"}]");
    dsp_result_cleanup(&res);
}

static CU_TestInfo tests[] = {
    {"greets", test_greets},
    {"input schema is enforced", test_schema_is_enforced},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"example pack", NULL, NULL, NULL, NULL, tests},
    CU_SUITE_INFO_NULL,
};

int main(void)
{
    return tu_main(suites);
}
