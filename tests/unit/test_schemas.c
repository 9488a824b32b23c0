/*
 * test_schemas.c - every validator table in schemas.c against the spec file
 * it transcribes: same types, property names in the same order, required
 * sets, additionalProperties, enums, formats, minimums and items, following
 * $ref across files. A spec update that changes a schema fails here.
 */
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "schemas.h"
#include "testutil.h"

static json_object *load_schema(const char *path)
{
    char *text = tu_read_file(path, NULL);
    json_object *o = text ? tu_json(text) : NULL;

    if (o == NULL)
        fprintf(stderr, "\n  cannot load %s\n", path);
    free(text);
    return o;
}

static json_object *member(json_object *o, const char *key)
{
    json_object *v = NULL;

    return json_object_object_get_ex(o, key, &v) ? v : NULL;
}

static enum jv_kind kind_of(json_object *schema)
{
    const char *t = json_object_get_string(member(schema, "type"));

    if (t == NULL)
        return JV_ANY;
    if (strcmp(t, "object") == 0)
        return JV_OBJECT;
    if (strcmp(t, "string") == 0)
        return JV_STRING;
    if (strcmp(t, "integer") == 0)
        return JV_INTEGER;
    if (strcmp(t, "number") == 0)
        return JV_NUMBER;
    if (strcmp(t, "boolean") == 0)
        return JV_BOOLEAN;
    if (strcmp(t, "array") == 0)
        return JV_ARRAY;
    return (enum jv_kind) - 1;
}

/* What the comparison found since the last reset_failures(): the drift test
 * checks that it fails for the reason it means to provoke. */
static const char *first_failure;
static int n_failures;

static void reset_failures(void)
{
    first_failure = NULL;
    n_failures = 0;
}

static int fail(const char *where, const char *what)
{
    fprintf(stderr, "\n  %s: %s\n", where, what);
    if (n_failures++ == 0)
        first_failure = what;
    return 1;
}

static int compare(const struct jv_schema *t, json_object *s, const char *dir, const char *where);

static int compare_ref(const struct jv_schema *t, const char *ref, const char *dir,
                       const char *where)
{
    char path[4096], dcopy[4096];
    json_object *s;
    int bad;

    snprintf(path, sizeof path, "%s/%s", dir, ref);
    s = load_schema(path);
    if (s == NULL)
        return fail(where, "unresolvable $ref");
    snprintf(dcopy, sizeof dcopy, "%s", path);
    bad = compare(t, s, dirname(dcopy), ref);
    json_object_put(s);
    return bad;
}

static int in_required(json_object *req, const char *name)
{
    size_t i;

    for (i = 0; req != NULL && i < json_object_array_length(req); i++)
        if (strcmp(json_object_get_string(json_object_array_get_idx(req, i)), name) == 0)
            return 1;
    return 0;
}

static int compare_object(const struct jv_schema *t, json_object *s, const char *dir,
                          const char *where)
{
    json_object *props = member(s, "properties"), *req = member(s, "required");
    json_object *addl = member(s, "additionalProperties");
    const struct jv_prop *p = t->props;
    int bad = 0;
    size_t nreq = req ? json_object_array_length(req) : 0, tabreq = 0;

    if (props != NULL) {
        json_object_object_foreach(props, key, sub)
        {
            char w[512];
            snprintf(w, sizeof w, "%s.%s", where, key);
            if (p == NULL || p->name == NULL || strcmp(p->name, key) != 0) {
                bad |= fail(w, "property missing from the table or out of order");
                break;
            }
            if (p->required != in_required(req, key))
                bad |= fail(w, "required differs");
            tabreq += (size_t)p->required;
            bad |= compare(p->schema, sub, dir, w);
            p++;
        }
    }
    if (p != NULL && p->name != NULL)
        bad |= fail(where, "table has properties the schema lacks");
    if (tabreq != nreq)
        bad |= fail(where, "required list differs");
    /* JSON Schema's default for additionalProperties is true. */
    if ((addl == NULL || json_object_get_boolean(addl)) != (t->additional != 0))
        bad |= fail(where, "additionalProperties differs");
    if ((member(s, "patternProperties") != NULL) != (t->key_ok != NULL))
        bad |= fail(where, "patternProperties differs");
    return bad;
}

static int compare(const struct jv_schema *t, json_object *s, const char *dir, const char *where)
{
    json_object *ref = member(s, "$ref"), *en = member(s, "enum"), *min = member(s, "minimum");
    const char *fmt = json_object_get_string(member(s, "format"));
    int bad = 0;

    if (ref != NULL)
        return compare_ref(t, json_object_get_string(ref), dir, where);
    if (t->kind != kind_of(s))
        return fail(where, "type differs");
    if (t->kind == JV_OBJECT)
        bad |= compare_object(t, s, dir, where);
    if (t->kind == JV_ARRAY) {
        json_object *items = member(s, "items"), *mi = member(s, "minItems");
        if ((items == NULL) != (t->items == NULL))
            bad |= fail(where, "items differ");
        else if (items != NULL)
            bad |= compare(t->items, items, dir, where);
        if ((size_t)(mi ? json_object_get_int(mi) : 0) != t->min_items)
            bad |= fail(where, "minItems differs");
    }
    if (en != NULL) {
        size_t i, n = json_object_array_length(en);
        for (i = 0; t->enum_values != NULL && i < n && t->enum_values[i]; i++)
            if (strcmp(t->enum_values[i], json_object_get_string(json_object_array_get_idx(en, i))))
                break;
        if (t->enum_values == NULL || i != n || t->enum_values[n] != NULL)
            bad |= fail(where, "enum differs");
    } else if (t->enum_values != NULL) {
        bad |= fail(where, "table has an enum the schema lacks");
    }
    if ((fmt && strcmp(fmt, "date-time") == 0) != (t->format == JV_FMT_DATE_TIME) ||
        (fmt && strcmp(fmt, "uri") == 0) != (t->format == JV_FMT_URI))
        bad |= fail(where, "format differs");
    if ((min != NULL) != (t->has_minimum != 0) ||
        (min != NULL && json_object_get_double(min) != t->minimum))
        bad |= fail(where, "minimum differs");
    return bad;
}

static const struct {
    const struct jv_schema *table;
    const char *file;
} cases[] = {
    {&sch_extensions, "schemas/common/extensions.schema.json"},
    {&sch_resource_ref, "schemas/common/resource_ref.schema.json"},
    {&sch_error_detail, "schemas/common/error_detail.schema.json"},
    {&sch_error_envelope, "schemas/common/error.schema.json"},
    {&sch_health, "schemas/common/health.schema.json"},
    {&sch_version_info, "schemas/common/version_info.schema.json"},
    {&sch_node_type_ref, "schemas/core/node_type_ref.schema.json"},
    {&sch_run_context, "schemas/core/run_context.schema.json"},
    {&sch_constraint_envelope, "schemas/core/constraint_envelope.schema.json"},
    {&sch_atomic_execute_request,
     "schemas/atomic_executor/node_runs/atomic_execute_request.schema.json"},
    {&sch_atomic_execute_result,
     "schemas/atomic_executor/node_runs/atomic_execute_result.schema.json"},
};

static void test_tables_match_spec_files(void)
{
    size_t i;

    for (i = 0; i < sizeof cases / sizeof cases[0]; i++)
        CU_ASSERT_EQUAL(compare_ref(cases[i].table, cases[i].file, ARP_SPEC_DIR, "/"), 0);
}

/* The table of a property of an object table (NULL when it has none). */
static const struct jv_schema *prop_schema(const struct jv_schema *t, const char *name)
{
    const struct jv_prop *p;

    for (p = t->props; p != NULL && p->name != NULL; p++)
        if (strcmp(p->name, name) == 0)
            return p->schema;
    return NULL;
}

/* Compares table t with the schema text: no failure when want is NULL, else
 * exactly one, for the reason want names. */
static void expect_drift(const struct jv_schema *t, const char *schema, const char *want)
{
    json_object *s = tu_json(schema);

    reset_failures();
    CU_ASSERT_EQUAL(compare(t, s, ARP_SPEC_DIR, "drift") != 0, want != NULL);
    CU_ASSERT_EQUAL(n_failures, want != NULL);
    if (want != NULL)
        CU_ASSERT_STRING_EQUAL(first_failure ? first_failure : "", want);
    json_object_put(s);
}

/* The comparison itself must notice drift, or the test above proves nothing:
 * each case fails for the difference it was made with, not another. */
static void test_comparison_detects_drift(void)
{
    const struct jv_schema *status = prop_schema(&sch_health, "status");
    json_object *s = tu_json("{\"type\":\"object\",\"additionalProperties\":false,"
                             "\"required\":[\"type\",\"id\"],\"properties\":{"
                             "\"type\":{\"type\":\"string\"},\"id\":{\"type\":\"string\"},"
                             "\"uri\":{\"type\":\"string\"}}}");

    /* sch_resource_ref has uri as format uri and an extensions property. */
    reset_failures();
    CU_ASSERT_NOT_EQUAL(compare(&sch_resource_ref, s, ARP_SPEC_DIR, "drift"), 0);
    CU_ASSERT_EQUAL(n_failures, 2);
    CU_ASSERT_STRING_EQUAL(first_failure, "format differs");
    json_object_put(s);

    /* Health's status enum (common/status), as the spec has it: the control. */
    CU_ASSERT_PTR_NOT_NULL_FATAL(status);
    expect_drift(status, "{\"type\":\"string\",\"enum\":[\"ok\",\"degraded\",\"down\"]}", NULL);
    /* A value gone, renamed, added; the enum dropped. */
    expect_drift(status, "{\"type\":\"string\",\"enum\":[\"ok\",\"degraded\"]}", "enum differs");
    expect_drift(status, "{\"type\":\"string\",\"enum\":[\"ok\",\"degraded\",\"gone\"]}",
                 "enum differs");
    expect_drift(status, "{\"type\":\"string\",\"enum\":[\"ok\",\"degraded\",\"down\",\"x\"]}",
                 "enum differs");
    expect_drift(status, "{\"type\":\"string\"}", "table has an enum the schema lacks");
}

static CU_TestInfo tests[] = {
    {"tables match the spec files", test_tables_match_spec_files},
    {"comparison detects drift", test_comparison_detects_drift},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"schemas", NULL, NULL, NULL, NULL, tests},
    CU_SUITE_INFO_NULL,
};

int main(void)
{
    return tu_main(suites);
}
