/*
 * test_nodetypes.c - the linked node types as NodeType objects (nodetypes.c):
 * every field, each side-effect class, a node without schemas or
 * description, pack order, empty lists, and a schema that is not JSON
 * failing the whole listing.
 */
#include <stddef.h>

#include "nodetypes.h"
#include "testutil.h"

static int no_handler(jarvis_ctx *ctx, json_object *inputs, json_object **outputs)
{
    (void)ctx;
    (void)inputs;
    (void)outputs;
    return JARVIS_OK;
}

static const jarvis_node full = {
    "t.full",
    "1.2.3",
    "Does it all.",
    "{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"string\"}}}",
    "{\"type\":\"object\",\"required\":[\"b\"]}",
    JARVIS_SIDE_EFFECT_WRITE,
    no_handler,
};
static const jarvis_node bare = {
    "t.bare", "0.1.0", NULL, NULL, NULL, JARVIS_SIDE_EFFECT_READ, no_handler,
};
static const jarvis_node final = {
    "t.final",  "2.0.0", "Cannot be undone.", NULL, "{}", JARVIS_SIDE_EFFECT_IRREVERSIBLE,
    no_handler,
};
static const jarvis_node broken_in = {
    "t.broken_in", "1.0.0", NULL, "{not json", NULL, JARVIS_SIDE_EFFECT_READ, no_handler,
};
static const jarvis_node broken_out = {
    "t.broken_out", "1.0.0", NULL, NULL, "[1,", JARVIS_SIDE_EFFECT_READ, no_handler,
};

static const jarvis_node *const first_nodes[] = {&full, &bare, NULL};
static const jarvis_node *const second_nodes[] = {&final, NULL};
static const jarvis_pack first = {"first", first_nodes};
static const jarvis_pack second = {"second", second_nodes};
static const jarvis_pack empty = {"empty", NULL};

static void test_listing(void)
{
    const jarvis_pack *const packs[] = {&first, &empty, &second, NULL};
    json_object *list = nt_list(packs);

    TU_ASSERT_JSON(
        list,
        "[{\"node_type_id\":\"t.full\",\"version\":\"1.2.3\",\"kind\":\"atomic\","
        "\"description\":\"Does it all.\",\"input_schema\":{\"type\":\"object\",\"properties\":"
        "{\"a\":{\"type\":\"string\"}}},\"output_schema\":{\"type\":\"object\",\"required\":"
        "[\"b\"]},\"constraints\":{\"gates\":{\"side_effect_class\":\"write\"}},\"metadata\":"
        "{\"labels\":{\"jarvis.pack\":\"first\"}}},"
        "{\"node_type_id\":\"t.bare\",\"version\":\"0.1.0\",\"kind\":\"atomic\","
        "\"input_schema\":{\"type\":\"object\"},\"output_schema\":{\"type\":\"object\"},"
        "\"constraints\":{\"gates\":{\"side_effect_class\":\"read\"}},\"metadata\":{\"labels\":"
        "{\"jarvis.pack\":\"first\"}}},"
        "{\"node_type_id\":\"t.final\",\"version\":\"2.0.0\",\"kind\":\"atomic\","
        "\"description\":\"Cannot be undone.\",\"input_schema\":{\"type\":\"object\"},"
        "\"output_schema\":{},\"constraints\":{\"gates\":{\"side_effect_class\":"
        "\"irreversible\"}},\"metadata\":{\"labels\":{\"jarvis.pack\":\"second\"}}}]");
    /* Pack order, then node order: the array is not a set. */
    CU_ASSERT_STRING_EQUAL(json_object_get_string(json_object_object_get(
                               json_object_array_get_idx(list, 2), "node_type_id")),
                           "t.final");
    json_object_put(list);
}

static void test_empty(void)
{
    const jarvis_pack *const none[] = {NULL};
    const jarvis_pack *const only_empty[] = {&empty, NULL};
    json_object *list;

    list = nt_list(NULL);
    TU_ASSERT_JSON(list, "[]");
    json_object_put(list);
    list = nt_list(none);
    TU_ASSERT_JSON(list, "[]");
    json_object_put(list);
    list = nt_list(only_empty);
    TU_ASSERT_JSON(list, "[]");
    json_object_put(list);
}

/* A schema text that is not JSON fails the listing (nothing half-made). */
static void test_bad_schema(void)
{
    static const jarvis_node *const in_nodes[] = {&full, &broken_in, NULL};
    static const jarvis_node *const out_nodes[] = {&broken_out, &bare, NULL};
    const jarvis_pack bad_in = {"bad_in", in_nodes}, bad_out = {"bad_out", out_nodes};
    const jarvis_pack *const packs_in[] = {&first, &bad_in, NULL};
    const jarvis_pack *const packs_out[] = {&bad_out, &second, NULL};

    CU_ASSERT_PTR_NULL(nt_list(packs_in));
    CU_ASSERT_PTR_NULL(nt_list(packs_out));
}

static CU_TestInfo tests[] = {
    {"every field, in pack order", test_listing},
    {"no packs, no nodes", test_empty},
    {"a schema that is not JSON", test_bad_schema},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"nodetypes", NULL, NULL, NULL, NULL, tests},
    CU_SUITE_INFO_NULL,
};

int main(void)
{
    return tu_main(suites);
}
