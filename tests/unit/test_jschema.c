/*
 * test_jschema.c - plugin JSON Schemas compiled into validator tables: each
 * supported keyword enforced, unsupported ones refused at compile time, and
 * the NodeType listing built from them.
 */
#include <string.h>

#include "jschema.h"
#include "nodetypes.h"
#include "testutil.h"

extern const jarvis_pack jarvis_pack_core;

/* Validates instance against schema text; returns the errors array text. */
static int check(const char *schema, const char *instance, const char *want_errors)
{
    char err[256];
    const struct jv_schema *s = js_compile_cached(schema, err, sizeof err);
    json_object *v = tu_json(instance), *errors = NULL;
    int n, ok;

    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    /* json-c's null is the NULL pointer */
    if (strcmp(instance, "null") != 0)
        CU_ASSERT_PTR_NOT_NULL_FATAL(v);
    n = jv_validate_at(s, v, "inputs", &errors);
    if (want_errors == NULL)
        ok = n == 0;
    else
        ok = n > 0 && tu_json_equal(errors, want_errors);
    if (!ok)
        fprintf(stderr, "\n  schema %s\n  instance %s\n", schema, instance);
    json_object_put(errors);
    json_object_put(v);
    return ok;
}

static const char sleep_schema[] =
    "{\"type\":\"object\",\"properties\":{\"seconds\":{\"type\":[\"number\",\"null\"],"
    "\"minimum\":0},\"name\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":3},"
    "\"mode\":{\"enum\":[\"a\",\"b\"]},\"list\":{\"type\":\"array\",\"items\":{\"type\":"
    "\"integer\",\"exclusiveMaximum\":10},\"minItems\":1,\"maxItems\":2},\"map\":{\"type\":"
    "\"object\",\"additionalProperties\":{\"type\":\"boolean\"}}},\"required\":[\"seconds\","
    "\"must\"],\"additionalProperties\":false,\"title\":\"t\",\"description\":\"d\"}";

static void test_keywords(void)
{
    CU_ASSERT_TRUE(check(sleep_schema, "{\"seconds\":1.5,\"must\":[]}", NULL));
    CU_ASSERT_TRUE(check(sleep_schema,
                         "{\"seconds\":null,\"must\":0,\"name\":\"\xc3\xa9\xc3\xa9\xc3\xa9\","
                         "\"mode\":\"b\",\"list\":[9],\"map\":{\"x\":true}}",
                         NULL));
    CU_ASSERT_TRUE(check(sleep_schema, "{}",
                         "[{\"type\":\"missing\",\"loc\":[\"inputs\",\"seconds\"],\"msg\":"
                         "\"Field required\"},{\"type\":\"missing\",\"loc\":[\"inputs\",\"must\"],"
                         "\"msg\":\"Field required\"}]"));
    CU_ASSERT_TRUE(check(sleep_schema, "{\"seconds\":-1,\"must\":1,\"x\":2}",
                         "[{\"type\":\"greater_than_equal\",\"loc\":[\"inputs\",\"seconds\"],"
                         "\"msg\":\"Input should be greater than or equal to 0\"},"
                         "{\"type\":\"extra_forbidden\",\"loc\":[\"inputs\",\"x\"],\"msg\":"
                         "\"Extra inputs are not permitted\"}]"));
    CU_ASSERT_TRUE(
        check(sleep_schema,
              "{\"seconds\":\"1\",\"must\":1,\"name\":\"abcd\","
              "\"mode\":\"c\",\"list\":[10,1.5,3],\"map\":{\"y\":1}}",
              "[{\"type\":\"float_type\",\"loc\":[\"inputs\",\"seconds\"],\"msg\":"
              "\"Input should be a valid number\"},{\"type\":\"string_too_long\","
              "\"loc\":[\"inputs\",\"name\"],\"msg\":\"String should have at most 3 "
              "characters\"},{\"type\":\"enum\",\"loc\":[\"inputs\",\"mode\"],\"msg\":"
              "\"Input should be 'a' or 'b'\"},{\"type\":\"too_long\",\"loc\":[\"inputs\","
              "\"list\"],\"msg\":\"List should have at most 2 items after validation, "
              "not 3\"},{\"type\":\"less_than\",\"loc\":[\"inputs\",\"list\",0],\"msg\":"
              "\"Input should be less than 10\"},{\"type\":\"int_type\",\"loc\":"
              "[\"inputs\",\"list\",1],\"msg\":\"Input should be a valid integer\"},"
              "{\"type\":\"bool_type\",\"loc\":[\"inputs\",\"map\",\"y\"],\"msg\":"
              "\"Input should be a valid boolean\"}]"));
    CU_ASSERT_TRUE(check(sleep_schema, "{\"seconds\":0,\"must\":1,\"name\":\"\",\"list\":[]}",
                         "[{\"type\":\"string_too_short\",\"loc\":[\"inputs\",\"name\"],\"msg\":"
                         "\"String should have at least 1 character\"},{\"type\":\"too_short\","
                         "\"loc\":[\"inputs\",\"list\"],\"msg\":\"List should have at least 1 item "
                         "after validation, not 0\"}]"));
}

static void test_defaults_and_unions(void)
{
    /* No type: anything; additionalProperties defaults to true. */
    CU_ASSERT_TRUE(check("{}", "[1]", NULL));
    CU_ASSERT_TRUE(
        check("{\"properties\":{\"a\":{\"type\":\"string\"}}}", "{\"a\":\"x\",\"b\":1}", NULL));
    CU_ASSERT_TRUE(check("{\"properties\":{\"a\":{\"type\":\"string\"}}}", "5", NULL));
    CU_ASSERT_TRUE(check("{\"type\":[\"string\",\"integer\"]}", "7", NULL));
    CU_ASSERT_TRUE(
        check("{\"type\":[\"string\",\"integer\"]}", "7.5",
              "[{\"type\":\"string_type\",\"loc\":[\"inputs\"],\"msg\":\"Input should be "
              "a valid string\"}]"));
    CU_ASSERT_TRUE(check("{\"type\":\"null\"}", "null", NULL));
    CU_ASSERT_TRUE(
        check("{\"type\":\"number\",\"exclusiveMinimum\":0}", "0",
              "[{\"type\":\"greater_than\",\"loc\":[\"inputs\"],\"msg\":\"Input should be "
              "greater than 0\"}]"));
    CU_ASSERT_TRUE(check("{\"type\":\"string\",\"format\":\"date-time\"}", "\"yesterday\"",
                         "[{\"type\":\"datetime_parsing\",\"loc\":[\"inputs\"],\"msg\":\"Input "
                         "should be a valid RFC 3339 date-time\"}]"));
    CU_ASSERT_TRUE(check("{\"type\":\"string\",\"format\":\"email\"}", "\"x\"", NULL));
}

static void refused(const char *schema, const char *want)
{
    char err[256] = "";

    CU_ASSERT_PTR_NULL(js_compile_cached(schema, err, sizeof err));
    if (strcmp(err, want) != 0)
        fprintf(stderr, "\n  got: %s\n  want: %s\n", err, want);
    CU_ASSERT_STRING_EQUAL(err, want);
}

static void test_refusals(void)
{
    refused("{\"oneOf\":[]}", "schema /oneOf: unsupported keyword (see jarvis/node.h)");
    refused("{\"properties\":{\"a\":{\"pattern\":\"x\"}}}",
            "schema /properties/a/pattern: unsupported keyword (see jarvis/node.h)");
    refused("{\"type\":\"float\"}", "schema /type: unknown type");
    refused("{\"enum\":[1]}", "schema /enum: only enums of strings are supported");
    refused("{\"minimum\":\"0\"}", "schema /minimum: must be a number");
    refused("[]", "schema /: a schema must be a JSON object");
    refused("{", "schema is not JSON");
}

static void test_cache_and_null(void)
{
    static const char text[] = "{\"type\":\"object\"}";
    char err[64];
    const struct jv_schema *a = js_compile_cached(text, err, sizeof err);

    CU_ASSERT_PTR_EQUAL(a, js_compile_cached(text, err, sizeof err));
    CU_ASSERT_PTR_NOT_NULL(js_compile_cached(NULL, err, sizeof err));
    CU_ASSERT_TRUE(check(NULL, "{\"any\":1}", NULL));
    CU_ASSERT_TRUE(check(NULL, "[]",
                         "[{\"type\":\"model_attributes_type\",\"loc\":[\"inputs\"],"
                         "\"msg\":\"Input should be a valid dictionary or object to "
                         "extract fields from\"}]"));
}

static void test_node_type_listing(void)
{
    const jarvis_pack *const packs[] = {&jarvis_pack_core, NULL};
    json_object *list = nt_list(packs), *echo = NULL, *v = NULL;
    size_t i;

    CU_ASSERT_PTR_NOT_NULL_FATAL(list);
    for (i = 0; i < json_object_array_length(list); i++) {
        json_object *t = json_object_array_get_idx(list, i), *id = NULL;
        json_object_object_get_ex(t, "node_type_id", &id);
        if (strcmp(json_object_get_string(id), "jarvis.core.echo") == 0)
            echo = t;
    }
    CU_ASSERT_PTR_NOT_NULL_FATAL(echo);
    CU_ASSERT_TRUE(json_object_object_get_ex(echo, "kind", &v));
    CU_ASSERT_STRING_EQUAL(json_object_get_string(v), "atomic");
    json_object_object_del(echo, "input_schema");
    json_object_object_del(echo, "output_schema");
    json_object_object_del(echo, "description");
    TU_ASSERT_JSON(echo, "{\"node_type_id\":\"jarvis.core.echo\",\"version\":\"0.3.8\",\"kind\":"
                         "\"atomic\",\"constraints\":{\"gates\":{\"side_effect_class\":\"read\"}},"
                         "\"metadata\":{\"labels\":{\"jarvis.pack\":\"core\"}}}");
    json_object_put(list);
}

static CU_TestInfo tests[] = {
    {"keywords are enforced", test_keywords},
    {"defaults and type unions", test_defaults_and_unions},
    {"unsupported schemas are refused", test_refusals},
    {"cache and NULL schema", test_cache_and_null},
    {"NodeType listing", test_node_type_listing},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"jschema", NULL, NULL, NULL, NULL, tests},
    CU_SUITE_INFO_NULL,
};

int main(void)
{
    return tu_main(suites);
}
