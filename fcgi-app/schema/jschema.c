/*
 * jschema.c - owns turning a plugin's JSON Schema text into jv_schema
 * tables, so inputs and outputs of every node are checked by the same
 * walker (and with the same error shapes) as the spec's own schemas.
 *
 * Anything outside the supported subset is refused at compile time, which
 * happens when a worker starts: a schema the service cannot enforce must
 * not look enforced. Compiled tables live until the process ends, in a
 * cache reachable from a static root (one per distinct schema text);
 * js_compile gives tables the caller frees, for text that is not a static
 * plugin string (fuzz/fuzz_jschema.c compiles a new text per input).
 */
#include "jschema.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct cache_entry {
    const char *text;
    struct jv_schema *schema;
    struct cache_entry *next;
};

static struct cache_entry *cache;

/* Every allocation of a compile, so a failed one frees what it made. */
struct arena {
    void **blocks;
    size_t n, cap;
    const char *path; /* of the keyword being compiled, for messages */
};

static void *arena_alloc(struct arena *a, size_t size)
{
    void *p = calloc(1, size);

    if (p == NULL)
        return NULL;
    if (a->n == a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 16;
        void **grown = realloc(a->blocks, cap * sizeof *grown);
        if (grown == NULL) {
            free(p);
            return NULL;
        }
        a->blocks = grown;
        a->cap = cap;
    }
    a->blocks[a->n++] = p;
    return p;
}

static char *arena_strdup(struct arena *a, const char *s)
{
    char *d = arena_alloc(a, strlen(s) + 1);

    if (d != NULL)
        memcpy(d, s, strlen(s) + 1);
    return d;
}

static int kind_from_name(const char *name, enum jv_kind *k)
{
    static const struct {
        const char *name;
        enum jv_kind kind;
    } names[] = {{"string", JV_STRING},   {"integer", JV_INTEGER}, {"number", JV_NUMBER},
                 {"boolean", JV_BOOLEAN}, {"object", JV_OBJECT},   {"array", JV_ARRAY},
                 {"null", JV_NULL}};
    size_t i;

    for (i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (strcmp(name, names[i].name) == 0) {
            *k = names[i].kind;
            return 0;
        }
    }
    return -1;
}

static int fail(char *err, size_t errlen, const char *path, const char *what)
{
    snprintf(err, errlen, "schema %s: %s", path[0] ? path : "/", what);
    return -1;
}

static int compile_type(struct jv_schema *s, json_object *t, char *err, size_t errlen,
                        const char *path)
{
    enum jv_kind k;
    size_t i, n;
    int first = 1;

    if (json_object_is_type(t, json_type_string)) {
        if (kind_from_name(json_object_get_string(t), &k) != 0)
            return fail(err, errlen, path, "unknown type");
        s->kind = k;
        return 0;
    }
    if (!json_object_is_type(t, json_type_array) || (n = json_object_array_length(t)) == 0)
        return fail(err, errlen, path, "type must be a name or a non-empty array of names");
    for (i = 0; i < n; i++) {
        json_object *e = json_object_array_get_idx(t, i);
        if (!json_object_is_type(e, json_type_string) ||
            kind_from_name(json_object_get_string(e), &k) != 0)
            return fail(err, errlen, path, "unknown type in type array");
        /* The first non-null type names the error message; the rest are "also". */
        if (first && k != JV_NULL) {
            s->kind = k;
            first = 0;
        } else {
            s->also |= JV_ALSO(k);
        }
    }
    if (first) {
        s->kind = JV_NULL;
        s->also &= ~JV_ALSO(JV_NULL);
    }
    return 0;
}

static int compile(struct arena *a, struct jv_schema *s, json_object *j, int depth, char *err,
                   size_t errlen, const char *path);

static int number_kw(json_object *v, double *out)
{
    if (!json_object_is_type(v, json_type_int) && !json_object_is_type(v, json_type_double))
        return -1;
    *out = json_object_get_double(v);
    return isfinite(*out) ? 0 : -1;
}

static int count_kw(json_object *v, size_t *out)
{
    if (!json_object_is_type(v, json_type_int) || json_object_get_int64(v) < 0)
        return -1;
    *out = (size_t)json_object_get_int64(v);
    return 0;
}

static int compile_properties(struct arena *a, struct jv_schema *s, json_object *props,
                              json_object *required, int depth, char *err, size_t errlen,
                              const char *path)
{
    size_t n = props ? (size_t)json_object_object_length(props) : 0, i = 0, r;
    size_t nreq = required ? json_object_array_length(required) : 0;
    struct jv_prop *list = arena_alloc(a, (n + nreq + 1) * sizeof *list);
    char sub[512];

    if (list == NULL)
        return fail(err, errlen, path, "out of memory");
    if (props != NULL) {
        json_object_object_foreach(props, key, val)
        {
            struct jv_schema *child = arena_alloc(a, sizeof *child);
            snprintf(sub, sizeof sub, "%s/properties/%s", path, key);
            if (child == NULL || (list[i].name = arena_strdup(a, key)) == NULL)
                return fail(err, errlen, path, "out of memory");
            if (compile(a, child, val, depth + 1, err, errlen, sub) != 0)
                return -1;
            list[i++].schema = child;
        }
    }
    for (r = 0; r < nreq; r++) {
        json_object *name = json_object_array_get_idx(required, r);
        size_t k;
        if (!json_object_is_type(name, json_type_string))
            return fail(err, errlen, path, "required must list strings");
        for (k = 0; k < i; k++)
            if (strcmp(list[k].name, json_object_get_string(name)) == 0)
                break;
        if (k == i) {
            /* Required but unconstrained: any value. */
            struct jv_schema *any = arena_alloc(a, sizeof *any);
            if (any == NULL ||
                (list[i].name = arena_strdup(a, json_object_get_string(name))) == NULL)
                return fail(err, errlen, path, "out of memory");
            any->additional = 1;
            list[i++].schema = any;
        }
        list[k].required = 1;
    }
    s->props = list;
    return 0;
}

static int compile_enum(struct arena *a, struct jv_schema *s, json_object *en, char *err,
                        size_t errlen, const char *path)
{
    size_t i, n;
    const char **values;

    if (!json_object_is_type(en, json_type_array) || (n = json_object_array_length(en)) == 0)
        return fail(err, errlen, path, "enum must be a non-empty array");
    values = arena_alloc(a, (n + 1) * sizeof *values);
    if (values == NULL)
        return fail(err, errlen, path, "out of memory");
    for (i = 0; i < n; i++) {
        json_object *e = json_object_array_get_idx(en, i);
        if (!json_object_is_type(e, json_type_string))
            return fail(err, errlen, path, "only enums of strings are supported");
        if ((values[i] = arena_strdup(a, json_object_get_string(e))) == NULL)
            return fail(err, errlen, path, "out of memory");
    }
    s->enum_values = (const char *const *)values;
    return 0;
}

static int compile_keyword(struct arena *a, struct jv_schema *s, const char *key, json_object *v,
                           int depth, char *err, size_t errlen, const char *path)
{
    static const char *const annotations[] = {"title",   "description", "default", "examples",
                                              "$schema", "$id",         "$comment"};
    char sub[512];
    size_t i;

    for (i = 0; i < sizeof annotations / sizeof annotations[0]; i++)
        if (strcmp(key, annotations[i]) == 0)
            return 0;
    snprintf(sub, sizeof sub, "%s/%s", path, key);
    if (strcmp(key, "type") == 0)
        return compile_type(s, v, err, errlen, sub);
    if (strcmp(key, "properties") == 0 || strcmp(key, "required") == 0)
        return 0; /* compiled together, below */
    if (strcmp(key, "additionalProperties") == 0) {
        if (json_object_is_type(v, json_type_boolean)) {
            s->additional = json_object_get_boolean(v);
            return 0;
        }
        struct jv_schema *child = arena_alloc(a, sizeof *child);
        if (child == NULL)
            return fail(err, errlen, sub, "out of memory");
        s->additional_schema = child;
        return compile(a, child, v, depth + 1, err, errlen, sub);
    }
    if (strcmp(key, "items") == 0) {
        struct jv_schema *child = arena_alloc(a, sizeof *child);
        if (child == NULL)
            return fail(err, errlen, sub, "out of memory");
        s->items = child;
        return compile(a, child, v, depth + 1, err, errlen, sub);
    }
    if (strcmp(key, "enum") == 0)
        return compile_enum(a, s, v, err, errlen, sub);
    if (strcmp(key, "format") == 0) {
        const char *f = json_object_get_string(v);
        if (!json_object_is_type(v, json_type_string))
            return fail(err, errlen, sub, "format must be a string");
        s->format = strcmp(f, "date-time") == 0 ? JV_FMT_DATE_TIME
                    : strcmp(f, "uri") == 0     ? JV_FMT_URI
                                                : JV_FMT_NONE;
        return 0;
    }
    if (strcmp(key, "minimum") == 0 || strcmp(key, "exclusiveMinimum") == 0) {
        s->has_minimum = 1;
        s->exclusive_minimum = key[0] == 'e';
        return number_kw(v, &s->minimum) ? fail(err, errlen, sub, "must be a number") : 0;
    }
    if (strcmp(key, "maximum") == 0 || strcmp(key, "exclusiveMaximum") == 0) {
        s->has_maximum = 1;
        s->exclusive_maximum = key[0] == 'e';
        return number_kw(v, &s->maximum) ? fail(err, errlen, sub, "must be a number") : 0;
    }
    if (strcmp(key, "minLength") == 0)
        return (s->has_min_length = 1, count_kw(v, &s->min_length))
                   ? fail(err, errlen, sub, "must be a non-negative integer")
                   : 0;
    if (strcmp(key, "maxLength") == 0)
        return (s->has_max_length = 1, count_kw(v, &s->max_length))
                   ? fail(err, errlen, sub, "must be a non-negative integer")
                   : 0;
    if (strcmp(key, "minItems") == 0)
        return count_kw(v, &s->min_items) ? fail(err, errlen, sub, "must be a non-negative integer")
                                          : 0;
    if (strcmp(key, "maxItems") == 0)
        return (s->has_max_items = 1, count_kw(v, &s->max_items))
                   ? fail(err, errlen, sub, "must be a non-negative integer")
                   : 0;
    return fail(err, errlen, sub, "unsupported keyword (see jarvis/node.h)");
}

static int compile(struct arena *a, struct jv_schema *s, json_object *j, int depth, char *err,
                   size_t errlen, const char *path)
{
    json_object *props = NULL, *required = NULL;

    if (depth > JS_MAX_DEPTH)
        return fail(err, errlen, path, "nested too deep");
    if (!json_object_is_type(j, json_type_object))
        return fail(err, errlen, path, "a schema must be a JSON object");
    s->kind = JV_ANY;
    s->additional = 1; /* JSON Schema's default */
    json_object_object_foreach(j, key, val)
    {
        if (compile_keyword(a, s, key, val, depth, err, errlen, path) != 0)
            return -1;
    }
    json_object_object_get_ex(j, "properties", &props);
    json_object_object_get_ex(j, "required", &required);
    if ((props != NULL && !json_object_is_type(props, json_type_object)) ||
        (required != NULL && !json_object_is_type(required, json_type_array)))
        return fail(err, errlen, path, "properties must be an object and required an array");
    if ((props != NULL || required != NULL) &&
        compile_properties(a, s, props, required, depth, err, errlen, path) != 0)
        return -1;
    return 0;
}

/* Frees every block of a compile (a failed one, or a js_free'd one). */
static void arena_free(struct arena *a)
{
    size_t i;

    for (i = 0; i < a->n; i++)
        free(a->blocks[i]);
    free(a->blocks);
    a->blocks = NULL;
    a->n = a->cap = 0;
}

/* Compiles text into tables allocated from a (the root first). NULL with
 * err set, after which the caller frees the arena. */
static struct jv_schema *compile_text(struct arena *a, const char *text, char *err, size_t errlen)
{
    json_object *j = json_tokener_parse(text);
    struct jv_schema *root = NULL;

    if (j == NULL) {
        snprintf(err, errlen, "schema is not JSON");
        return NULL;
    }
    root = arena_alloc(a, sizeof *root);
    if (root == NULL || compile(a, root, j, 0, err, errlen, "") != 0)
        root = NULL;
    json_object_put(j);
    return root;
}

const struct jv_schema *js_compile_cached(const char *text, char *err, size_t errlen)
{
    static struct jv_schema any_object = {.kind = JV_OBJECT, .additional = 1};
    struct arena a = {NULL, 0, 0, NULL};
    struct cache_entry *e;
    struct jv_schema *root;

    if (text == NULL)
        return &any_object;
    for (e = cache; e != NULL; e = e->next)
        if (e->text == text)
            return e->schema;
    e = arena_alloc(&a, sizeof *e);
    root = e != NULL ? compile_text(&a, text, err, errlen) : NULL;
    if (root == NULL) {
        if (e == NULL)
            snprintf(err, errlen, "out of memory");
        arena_free(&a);
        return NULL;
    }
    e->text = text;
    e->schema = root;
    e->next = cache;
    cache = e;
    /* The blocks stay reachable through the tables; only the index goes. */
    free(a.blocks);
    return root;
}

struct js_compiled {
    struct jv_schema *root;
    struct arena arena;
};

struct js_compiled *js_compile(const char *text, char *err, size_t errlen)
{
    struct js_compiled *c = calloc(1, sizeof *c);

    if (c == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    c->root = compile_text(&c->arena, text, err, errlen);
    if (c->root == NULL) {
        js_free(c);
        return NULL;
    }
    return c;
}

const struct jv_schema *js_root(const struct js_compiled *c)
{
    return c->root;
}

void js_free(struct js_compiled *c)
{
    if (c == NULL)
        return;
    arena_free(&c->arena);
    free(c);
}

json_object *js_schema_json(const char *text)
{
    return text ? json_tokener_parse(text) : NULL;
}
