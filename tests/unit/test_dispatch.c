/*
 * test_dispatch.c - the registry built from packs and one run through it:
 * unknown types, failing handlers, bad outputs and the handler context.
 */
#include <string.h>

#include "dispatch.h"
#include "testutil.h"
#include "utf8.h"

extern const jarvis_pack jarvis_pack_core;
extern const jarvis_pack jarvis_pack_testing;

static int noop(jarvis_ctx *ctx, json_object *inputs, json_object **outputs)
{
    (void)ctx;
    (void)inputs;
    *outputs = json_object_new_object();
    return JARVIS_OK;
}

static const jarvis_node dup_echo = {
    .node_type_id = "jarvis.core.echo", .version = "9", .handler = noop};
static const jarvis_node no_handler = {.node_type_id = "x.y", .version = "1"};
static const jarvis_node *const dup_nodes[] = {&dup_echo, NULL};
static const jarvis_node *const bad_nodes[] = {&no_handler, NULL};
static const jarvis_pack dup_pack = {.name = "dup", .nodes = dup_nodes};
static const jarvis_pack bad_pack = {.name = "bad", .nodes = bad_nodes};

static void test_registry(void)
{
    const jarvis_pack *const ok[] = {&jarvis_pack_testing, &jarvis_pack_core, NULL};
    const jarvis_pack *const dup[] = {&jarvis_pack_core, &dup_pack, NULL};
    const jarvis_pack *const bad[] = {&bad_pack, NULL};
    struct dsp_registry reg;
    char err[128];
    size_t i;

    CU_ASSERT_EQUAL(dsp_registry_init(&reg, ok, err, sizeof err), 0);
    CU_ASSERT_PTR_NOT_NULL(dsp_lookup(&reg, "jarvis.core.echo"));
    CU_ASSERT_PTR_NOT_NULL(dsp_lookup(&reg, "jarvis.test.fail"));
    CU_ASSERT_PTR_NULL(dsp_lookup(&reg, "jarvis.core"));
    CU_ASSERT_PTR_NULL(dsp_lookup(&reg, ""));
    for (i = 1; i < reg.count; i++)
        CU_ASSERT_TRUE(strcmp(reg.nodes[i - 1]->node_type_id, reg.nodes[i]->node_type_id) < 0);

    CU_ASSERT_EQUAL(dsp_registry_init(&reg, dup, err, sizeof err), -1);
    CU_ASSERT_STRING_EQUAL(err, "node type jarvis.core.echo is linked twice");
    CU_ASSERT_EQUAL(dsp_registry_init(&reg, bad, err, sizeof err), -1);
    CU_ASSERT_STRING_EQUAL(err, "pack bad: a node lacks id, version or handler");
    CU_ASSERT_EQUAL(dsp_registry_init(&reg, NULL, err, sizeof err), 0);
    CU_ASSERT_EQUAL(reg.count, 0);
}

static void run(const char *body_json, struct exec_result *res, json_object **body)
{
    static const jarvis_pack *const packs[] = {&jarvis_pack_core, &jarvis_pack_testing, NULL};
    struct dsp_registry reg;
    struct exec_req req;
    char err[128];

    CU_ASSERT_EQUAL_FATAL(dsp_registry_init(&reg, packs, err, sizeof err), 0);
    *body = tu_json(body_json);
    CU_ASSERT_PTR_NOT_NULL_FATAL(*body);
    dsp_request_from_json(*body, &req);
    static const struct dsp_limits none = {NULL, 0, 0, 0};

    CU_ASSERT_EQUAL(dsp_execute(&reg, &none, &req, NULL, res), DSP_OK);
}

#define REQ(type, rest)                                                                            \
    "{\"node_run_id\":\"nr-1\",\"run_id\":\"r-1\",\"node_type_ref\":{\"node_type_id\":\"" type     \
    "\",\"version\":\"1\"},\"inputs\":{\"k\":1}" rest "}"

static void test_unknown_type(void)
{
    struct exec_result res;
    json_object *body;

    run(REQ("nope.x", ""), &res, &body);
    CU_ASSERT_EQUAL(res.state, RUN_FAILED);
    CU_ASSERT_STRING_EQUAL(res.error_code, "unknown_node_type");
    CU_ASSERT_STRING_EQUAL(res.message, "Unknown node_type_id: nope.x");
    CU_ASSERT_PTR_NULL(res.outputs);
    CU_ASSERT_STRING_EQUAL(res.node_run_id, "nr-1");
    CU_ASSERT_TRUE(res.ended_ms >= res.started_ms);
    dsp_result_cleanup(&res);
    json_object_put(body);
}

/* An unknown id too long for the message is cut whole characters at a
 * time: 300 x "é" (600 bytes) never ends in half a character. */
static void test_unknown_type_cut_on_characters(void)
{
    char text[1024], id[700];
    struct exec_result res;
    json_object *body;
    size_t i, n;

    for (i = 0; i < 300; i++)
        memcpy(id + 2 * i, "\xc3\xa9", 2);
    id[600] = '\0';
    snprintf(text, sizeof text, REQ("%s", ""), id);
    run(text, &res, &body);
    CU_ASSERT_STRING_EQUAL(res.error_code, "unknown_node_type");
    n = strlen(res.message);
    CU_ASSERT_TRUE(n < sizeof res.message);
    CU_ASSERT_TRUE(jarvis_utf8_valid(res.message, n));
    CU_ASSERT_EQUAL((n - strlen("Unknown node_type_id: ")) % 2, 0);
    CU_ASSERT_TRUE(n >= sizeof res.message - 2);
    dsp_result_cleanup(&res);
    json_object_put(body);
}

static void test_handler_failure(void)
{
    struct exec_result res;
    json_object *body;

    run(REQ("jarvis.test.fail", ""), &res, &body);
    CU_ASSERT_EQUAL(res.state, RUN_FAILED);
    CU_ASSERT_STRING_EQUAL(res.error_code, "handler_error");
    CU_ASSERT_STRING_EQUAL(res.message, "Atomic handler failed");
    CU_ASSERT_STRING_EQUAL(res.reason, "jarvis.test.fail failed on purpose (secret detail)");
    dsp_result_cleanup(&res);
    json_object_put(body);

    run(REQ("jarvis.test.bad_outputs", ""), &res, &body);
    CU_ASSERT_EQUAL(res.state, RUN_FAILED);
    CU_ASSERT_STRING_EQUAL(res.error_code, "handler_error");
    CU_ASSERT_STRING_EQUAL(res.reason, "handler returned outputs that are not an object");
    CU_ASSERT_PTR_NULL(res.outputs);
    dsp_result_cleanup(&res);
    json_object_put(body);
}

static void test_context(void)
{
    struct exec_result res;
    json_object *body, *pid = NULL;

    run(REQ("jarvis.test.context", ",\"run_context\":{\"tenant_id\":\"t\"},\"constraints\":{},"
                                   "\"extensions\":{\"a.b\":1}"),
        &res, &body);
    CU_ASSERT_EQUAL_FATAL(res.state, RUN_SUCCEEDED);
    CU_ASSERT_PTR_NULL(res.error_code);
    CU_ASSERT_TRUE(json_object_object_get_ex(res.outputs, "pid", &pid));
    json_object_object_del(res.outputs, "pid");
    TU_ASSERT_JSON(res.outputs,
                   "{\"node_run_id\":\"nr-1\",\"run_id\":\"r-1\",\"node_type_ref\":"
                   "{\"node_type_id\":\"jarvis.test.context\",\"version\":\"1\"},\"inputs\":"
                   "{\"k\":1},\"run_context\":{\"tenant_id\":\"t\"},\"constraints\":{},"
                   "\"extensions\":{\"a.b\":1}}");
    dsp_result_cleanup(&res);
    json_object_put(body);

    /* Absent optional parts are NULL for the handler. */
    run(REQ("jarvis.test.context", ""), &res, &body);
    json_object_object_del(res.outputs, "pid");
    TU_ASSERT_JSON(res.outputs, "{\"node_run_id\":\"nr-1\",\"run_id\":\"r-1\",\"node_type_ref\":"
                                "{\"node_type_id\":\"jarvis.test.context\",\"version\":\"1\"},"
                                "\"inputs\":{\"k\":1}}");
    dsp_result_cleanup(&res);
    json_object_put(body);
}

static CU_TestInfo tests[] = {
    {"registry", test_registry},
    {"unknown node type", test_unknown_type},
    {"unknown type: a long id is cut on characters", test_unknown_type_cut_on_characters},
    {"handler failures", test_handler_failure},
    {"handler context", test_context},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"dispatch", NULL, NULL, NULL, NULL, tests},
    CU_SUITE_INFO_NULL,
};

int main(void)
{
    return tu_main(suites);
}
