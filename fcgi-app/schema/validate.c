/*
 * validate.c - the walker behind every schema table.
 *
 * Errors mirror what the reference (FastAPI + pydantic) lists, so that a
 * client already parsing its details.errors keeps working: pydantic's type
 * names and messages, and `loc` as the path from "body" to the field.
 * Problems are collected, not stopped at, up to JV_MAX_ERRORS.
 */
#include "validate.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "utf8.h"

struct loc_item {
    const char *key; /* NULL for an array index */
    size_t index;
};

struct walk {
    const char *root;    /* first element of every loc */
    json_object *errors; /* NULL: count only */
    int count;
    size_t depth;
    struct loc_item loc[JV_MAX_LOC];
};

json_object *jv_error_entry(const char *type, json_object *loc, const char *msg)
{
    json_object *e = json_object_new_object();

    json_object_object_add(e, "type", json_object_new_string(type));
    json_object_object_add(e, "loc", loc);
    json_object_object_add(e, "msg", json_object_new_string(msg));
    return e;
}

json_object *jv_errors_one(const char *field, const char *type, const char *msg)
{
    json_object *loc = json_object_new_array(), *errors = json_object_new_array();

    json_object_array_add(loc, json_object_new_string("body"));
    if (field != NULL)
        json_object_array_add(loc, json_object_new_string(field));
    json_object_array_add(errors, jv_error_entry(type, loc, msg));
    return errors;
}

static void add_error(struct walk *w, const char *type, const char *msg)
{
    json_object *loc;
    size_t i;

    w->count++;
    if (w->errors == NULL || json_object_array_length(w->errors) >= JV_MAX_ERRORS)
        return;
    loc = json_object_new_array();
    json_object_array_add(loc, json_object_new_string(w->root));
    for (i = 0; i < w->depth && i < JV_MAX_LOC; i++)
        json_object_array_add(loc, w->loc[i].key ? json_object_new_string(w->loc[i].key)
                                                 : json_object_new_int64((int64_t)w->loc[i].index));
    json_object_array_add(w->errors, jv_error_entry(type, loc, msg));
}

static void push_key(struct walk *w, const char *key)
{
    if (w->depth < JV_MAX_LOC)
        w->loc[w->depth] = (struct loc_item){key, 0};
    w->depth++;
}

static void push_index(struct walk *w, size_t index)
{
    if (w->depth < JV_MAX_LOC)
        w->loc[w->depth] = (struct loc_item){NULL, index};
    w->depth++;
}

int jv_extension_key_ok(const char *key)
{
    size_t i, n = strlen(key);

    if (n < 3 || !isalnum((unsigned char)key[0]))
        return 0;
    for (i = 1; i < n; i++)
        if (!isalnum((unsigned char)key[i]) && !strchr("_.-", key[i]))
            return 0;
    /* A dot somewhere after the first character with something after it. */
    for (i = 1; i + 1 < n; i++)
        if (key[i] == '.')
            return 1;
    return 0;
}

static int digits(const char *s, int n, int *out)
{
    int v = 0, i;

    for (i = 0; i < n; i++) {
        if (!isdigit((unsigned char)s[i]))
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 0;
}

int jv_is_date_time(const char *s)
{
    static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int y, mo, d, h, mi, se, oh, om, leap;

    if (strlen(s) < 20 || digits(s, 4, &y) || s[4] != '-' || digits(s + 5, 2, &mo) || s[7] != '-' ||
        digits(s + 8, 2, &d) || (s[10] != 'T' && s[10] != 't') || digits(s + 11, 2, &h) ||
        s[13] != ':' || digits(s + 14, 2, &mi) || s[16] != ':' || digits(s + 17, 2, &se))
        return 0;
    leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || (mo == 2 && d == 29 && !leap) ||
        h > 23 || mi > 59 || se > 60)
        return 0;
    s += 19;
    if (*s == '.') {
        if (!isdigit((unsigned char)*++s))
            return 0;
        while (isdigit((unsigned char)*s))
            s++;
    }
    if ((*s == 'Z' || *s == 'z') && s[1] == '\0')
        return 1;
    if ((*s != '+' && *s != '-') || strlen(s) != 6 || digits(s + 1, 2, &oh) || s[3] != ':' ||
        digits(s + 4, 2, &om))
        return 0;
    return oh <= 23 && om <= 59;
}

int jv_is_uri(const char *s)
{
    const char *p = s;

    if (!isalpha((unsigned char)*p))
        return 0;
    while (isalnum((unsigned char)*p) || *p == '+' || *p == '-' || *p == '.')
        p++;
    if (*p != ':')
        return 0;
    for (; *p; p++)
        if ((unsigned char)*p <= ' ' || *p == '"' || *p == '<' || *p == '>' || *p == '\\')
            return 0;
    return 1;
}

static void walk_value(struct walk *w, const struct jv_schema *s, json_object *v);

static const struct jv_prop *find_prop(const struct jv_prop *props, const char *key)
{
    for (; props != NULL && props->name != NULL; props++)
        if (strcmp(props->name, key) == 0)
            return props;
    return NULL;
}

static void walk_object(struct walk *w, const struct jv_schema *s, json_object *v)
{
    const struct jv_prop *p;

    for (p = s->props; p != NULL && p->name != NULL; p++) {
        json_object *child;
        push_key(w, p->name);
        if (json_object_object_get_ex(v, p->name, &child))
            walk_value(w, p->schema, child);
        else if (p->required)
            add_error(w, "missing", "Field required");
        w->depth--;
    }
    json_object_object_foreach(v, key, val)
    {
        if (find_prop(s->props, key) != NULL || (s->additional && s->additional_schema == NULL))
            continue;
        push_key(w, key);
        if (s->additional_schema != NULL)
            walk_value(w, s->additional_schema, val);
        else if (s->key_ok == NULL)
            add_error(w, "extra_forbidden", "Extra inputs are not permitted");
        else if (!s->key_ok(key))
            add_error(w, "extension_key_invalid",
                      "Extension keys must be namespaced as <namespace>.<key>");
        w->depth--;
    }
}

static void walk_array(struct walk *w, const struct jv_schema *s, json_object *v)
{
    size_t i, n = json_object_array_length(v);
    char msg[96];

    if (n < s->min_items) {
        snprintf(msg, sizeof msg, "List should have at least %zu item%s after validation, not %zu",
                 s->min_items, s->min_items == 1 ? "" : "s", n);
        add_error(w, "too_short", msg);
    }
    if (s->has_max_items && n > s->max_items) {
        snprintf(msg, sizeof msg, "List should have at most %zu item%s after validation, not %zu",
                 s->max_items, s->max_items == 1 ? "" : "s", n);
        add_error(w, "too_long", msg);
    }
    if (s->items == NULL)
        return;
    for (i = 0; i < n; i++) {
        push_index(w, i);
        walk_value(w, s->items, json_object_array_get_idx(v, i));
        w->depth--;
    }
}

static void walk_string(struct walk *w, const struct jv_schema *s, json_object *v)
{
    const char *str = json_object_get_string(v);
    char msg[256];
    size_t i, n = 0;

    if (s->no_nul && strlen(str) != (size_t)json_object_get_string_len(v))
        add_error(w, "value_error", "Value error, String must not contain NUL characters");
    if (s->enum_values != NULL) {
        for (i = 0; s->enum_values[i] != NULL; i++)
            if (strcmp(str, s->enum_values[i]) == 0)
                return;
        /* pydantic's wording: "Input should be 'a', 'b' or 'c'" */
        n = (size_t)snprintf(msg, sizeof msg, "Input should be ");
        for (i = 0; s->enum_values[i] != NULL && n < sizeof msg; i++)
            n += (size_t)snprintf(msg + n, sizeof msg - n, "%s'%s'",
                                  i == 0                  ? ""
                                  : s->enum_values[i + 1] ? ", "
                                                          : " or ",
                                  s->enum_values[i]);
        /* A long list is cut at sizeof msg: never inside a character. */
        add_error(w, "enum", utf8_drop_partial(msg));
    }
    if (s->has_min_length || s->has_max_length) {
        size_t cps = 0, i2;
        for (i2 = 0; str[i2]; i2++)
            cps += ((unsigned char)str[i2] & 0xC0) != 0x80; /* count UTF-8 lead bytes */
        if (s->has_min_length && cps < s->min_length) {
            snprintf(msg, sizeof msg, "String should have at least %zu character%s", s->min_length,
                     s->min_length == 1 ? "" : "s");
            add_error(w, "string_too_short", msg);
        }
        if (s->has_max_length && cps > s->max_length) {
            snprintf(msg, sizeof msg, "String should have at most %zu character%s", s->max_length,
                     s->max_length == 1 ? "" : "s");
            add_error(w, "string_too_long", msg);
        }
    }
    if (s->format == JV_FMT_DATE_TIME && !jv_is_date_time(str))
        add_error(w, "datetime_parsing", "Input should be a valid RFC 3339 date-time");
    if (s->format == JV_FMT_URI && !jv_is_uri(str))
        add_error(w, "url_parsing", "Input should be a valid URI");
}

/* JSON Schema "integer": any number with a zero fractional part. */
static int is_integer(json_object *v)
{
    double d;

    if (json_object_is_type(v, json_type_int))
        return 1;
    if (!json_object_is_type(v, json_type_double))
        return 0;
    d = json_object_get_double(v);
    return isfinite(d) && floor(d) == d;
}

static void walk_number(struct walk *w, const struct jv_schema *s, json_object *v)
{
    char msg[96];
    double d = json_object_get_double(v);

    if (s->has_minimum && (s->exclusive_minimum ? d <= s->minimum : d < s->minimum)) {
        snprintf(msg, sizeof msg, "Input should be greater than %s%g",
                 s->exclusive_minimum ? "" : "or equal to ", s->minimum);
        add_error(w, s->exclusive_minimum ? "greater_than" : "greater_than_equal", msg);
    }
    if (s->has_maximum && (s->exclusive_maximum ? d >= s->maximum : d > s->maximum)) {
        snprintf(msg, sizeof msg, "Input should be less than %s%g",
                 s->exclusive_maximum ? "" : "or equal to ", s->maximum);
        add_error(w, s->exclusive_maximum ? "less_than" : "less_than_equal", msg);
    }
}

/* The kind a JSON value is checked as ("integer" when a number is integral). */
static enum jv_kind kind_of(json_object *v)
{
    switch (json_object_get_type(v)) {
    case json_type_null: return JV_NULL;
    case json_type_boolean: return JV_BOOLEAN;
    case json_type_int: return JV_INTEGER;
    case json_type_double: return is_integer(v) ? JV_INTEGER : JV_NUMBER;
    case json_type_string: return JV_STRING;
    case json_type_object: return JV_OBJECT;
    case json_type_array: return JV_ARRAY;
    }
    return JV_ANY;
}

static int type_ok(const struct jv_schema *s, enum jv_kind actual)
{
    unsigned allowed = JV_ALSO(s->kind) | s->also;

    if (s->kind == JV_ANY)
        return 1;
    /* Every integer is a number. */
    if (actual == JV_INTEGER && (allowed & JV_ALSO(JV_NUMBER)))
        return 1;
    return (allowed & JV_ALSO(actual)) != 0;
}

static void type_error(struct walk *w, const struct jv_schema *s)
{
    static const struct {
        const char *type, *msg;
    } errs[] = {
        [JV_STRING] = {"string_type", "Input should be a valid string"},
        [JV_INTEGER] = {"int_type", "Input should be a valid integer"},
        [JV_NUMBER] = {"float_type", "Input should be a valid number"},
        [JV_BOOLEAN] = {"bool_type", "Input should be a valid boolean"},
        [JV_OBJECT] = {"dict_type", "Input should be a valid dictionary"},
        [JV_ARRAY] = {"list_type", "Input should be a valid list"},
        [JV_NULL] = {"none_required", "Input should be None"},
    };

    /* pydantic names the top-level model case differently */
    if (s->kind == JV_OBJECT && w->depth == 0)
        add_error(w, "model_attributes_type",
                  "Input should be a valid dictionary or object to extract fields from");
    else
        add_error(w, errs[s->kind].type, errs[s->kind].msg);
}

static void walk_value(struct walk *w, const struct jv_schema *s, json_object *v)
{
    enum jv_kind actual = kind_of(v);

    if (!type_ok(s, actual)) {
        type_error(w, s);
        return;
    }
    /* Each constraint applies to the JSON type it is about. */
    switch (actual) {
    case JV_STRING: walk_string(w, s, v); break;
    case JV_INTEGER:
    case JV_NUMBER: walk_number(w, s, v); break;
    case JV_OBJECT: walk_object(w, s, v); break;
    case JV_ARRAY: walk_array(w, s, v); break;
    default: break;
    }
}

int jv_validate(const struct jv_schema *schema, json_object *value, json_object **errors)
{
    return jv_validate_at(schema, value, "body", errors);
}

int jv_validate_at(const struct jv_schema *schema, json_object *value, const char *root,
                   json_object **errors)
{
    struct walk w;

    memset(&w, 0, sizeof w);
    w.root = root;
    if (errors != NULL)
        w.errors = json_object_new_array();
    walk_value(&w, schema, value);
    if (errors != NULL) {
        if (w.count == 0) {
            json_object_put(w.errors);
            w.errors = NULL;
        }
        *errors = w.errors;
    }
    return w.count;
}
