/*
 * fuzz_jschema.c - fuzz target for fcgi-app/schema/jschema.c and validate.c: a
 * plugin's JSON Schema text compiled into validator tables, then an
 * instance (decoded as a request body is) validated against them.
 *
 * Input: "<schema text>\0<instance>"; without a NUL the whole input is the
 * schema and the instance is {}.
 *
 * Invariants beyond "no crash":
 *  - a refused schema always says why;
 *  - the problem count is the same with and without an error list, the
 *    list holds min(count, JV_MAX_ERRORS) entries {type, loc, msg} whose
 *    loc starts with "inputs", and no list at all when valid;
 *  - when the schema text is valid UTF-8, the error list (what a client
 *    gets in details.errors) is valid UTF-8 JSON that re-parses equal;
 *  - compiling the same text twice gives tables that judge alike.
 */
#include <stdlib.h>
#include <string.h>

#include "body.h"
#include "fuzz_util.h"
#include "jschema.h"
#include "utf8.h"

/* The instance's body limit: above anything libFuzzer makes. */
#define FZ_MAX_BODY (1024 * 1024)

static void check_errors(json_object *list, int count, int schema_utf8)
{
    size_t i, n;

    FZ_CHECK((count == 0) == (list == NULL));
    if (list == NULL)
        return;
    n = json_object_array_length(list);
    FZ_CHECK(n == (size_t)(count < JV_MAX_ERRORS ? count : JV_MAX_ERRORS));
    for (i = 0; i < n; i++) {
        json_object *e = json_object_array_get_idx(list, i), *v = NULL;
        FZ_CHECK(json_object_object_get_ex(e, "type", &v) &&
                 json_object_is_type(v, json_type_string));
        FZ_CHECK(json_object_object_get_ex(e, "msg", &v) &&
                 json_object_is_type(v, json_type_string));
        FZ_CHECK(json_object_object_get_ex(e, "loc", &v) &&
                 json_object_is_type(v, json_type_array));
        FZ_CHECK(strcmp(json_object_get_string(json_object_array_get_idx(v, 0)), "inputs") == 0);
    }
    if (schema_utf8)
        fz_check_json(list);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nul = memchr(data, '\0', size);
    size_t slen = nul != NULL ? (size_t)(nul - data) : size;
    char *schema = fz_strndup(data, slen), *instance;
    struct js_compiled *a, *b;
    json_object *v = NULL, *list = NULL, *list2 = NULL;
    char err[256] = "";
    struct resp r;
    int count;

    if (nul != NULL)
        instance = fz_strndup(nul + 1, size - slen - 1);
    else
        instance = strdup("{}");
    FZ_CHECK(instance != NULL);
    a = js_compile(schema, err, sizeof err);
    if (a == NULL) {
        FZ_CHECK(err[0] != '\0');
        goto out;
    }
    b = js_compile(schema, err, sizeof err);
    FZ_CHECK(b != NULL);
    resp_init(&r);
    if (body_parse_json(instance, strlen(instance), FZ_MAX_BODY, &v, &r) == 0) {
        count = jv_validate_at(js_root(a), v, "inputs", &list);
        FZ_CHECK(count >= 0 && jv_validate_at(js_root(a), v, "inputs", NULL) == count);
        FZ_CHECK(jv_validate_at(js_root(b), v, "inputs", &list2) == count);
        FZ_CHECK(json_object_equal(list, list2));
        check_errors(list, count, jarvis_utf8_valid(schema, slen));
        json_object_put(list);
        json_object_put(list2);
        json_object_put(v);
    }
    resp_cleanup(&r);
    js_free(b);
    js_free(a);
out:
    free(instance);
    free(schema);
    return 0;
}
