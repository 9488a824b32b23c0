/*
 * validate.h - JSON Schema subset validator driven by const tables.
 *
 * The ARP spec/v1 schemas use a small subset of JSON Schema: type, required,
 * properties, additionalProperties, patternProperties (extension keys), enum,
 * minimum, minItems, items and the date-time/uri formats. Each spec schema is
 * one `const struct jv_schema` (see schemas.c); jv_validate walks the table.
 */
#ifndef JARVIS_VALIDATE_H
#define JARVIS_VALIDATE_H

#include <stddef.h>

#include <json-c/json.h>

/* At most this many problems are listed in details.errors. */
#define JV_MAX_ERRORS 32
/* Deepest location path reported (the body nesting bound is smaller). */
#define JV_MAX_LOC 80

enum jv_kind {
    JV_ANY = 0,
    JV_STRING,
    JV_INTEGER,
    JV_NUMBER,
    JV_BOOLEAN,
    JV_OBJECT,
    JV_ARRAY,
    JV_NULL
};

/* jv_schema.also: further JSON types accepted besides kind ("type" arrays). */
#define JV_ALSO(kind) (1u << (kind))

enum jv_format { JV_FMT_NONE = 0, JV_FMT_DATE_TIME, JV_FMT_URI };

struct jv_schema;

struct jv_prop {
    const char *name;
    const struct jv_schema *schema;
    int required;
};

struct jv_schema {
    const char *title;
    enum jv_kind kind;
    /* objects */
    const struct jv_prop *props;    /* terminated by a NULL name; NULL: none */
    int additional;                 /* additionalProperties: true */
    int (*key_ok)(const char *key); /* patternProperties: keys it accepts */
    /* arrays */
    const struct jv_schema *items;
    size_t min_items;
    /* strings */
    const char *const *enum_values; /* NULL-terminated */
    enum jv_format format;
    /* numbers */
    int has_minimum;
    double minimum;
    /* what compiled plugin schemas need beyond the spec's (jschema.c) */
    unsigned also;                             /* JV_ALSO() bits */
    const struct jv_schema *additional_schema; /* additionalProperties: {schema} */
    int has_maximum;
    double maximum;
    int exclusive_minimum; /* minimum itself is refused */
    int exclusive_maximum;
    int has_min_length, has_max_length;
    size_t min_length, max_length; /* in code points */
    int has_max_items;
    size_t max_items;
    /* Identifiers: refuse an embedded NUL (a "\u0000" escape). C code
     * reads strings up to their first NUL, so "a\u0000b" would act as "a"
     * for dispatch, the run table and the log, while not being "a". */
    int no_nul;
};

/*
 * Validates `value` against `schema`. Returns 0 if valid; otherwise the
 * number of problems, and *errors (if not NULL) a new array of entries
 * {"type","loc":["body",...],"msg"} that the caller puts.
 */
int jv_validate(const struct jv_schema *schema, json_object *value, json_object **errors);

/* jv_validate with another first element of every loc ("inputs", ...). */
int jv_validate_at(const struct jv_schema *schema, json_object *value, const char *root,
                   json_object **errors);

/* A new {"type","loc","msg"} entry; takes ownership of loc. */
json_object *jv_error_entry(const char *type, json_object *loc, const char *msg);

/* A new list of one problem at ["body"] or ["body", field] (the caller
 * owns it; resp_set_invalid takes it). */
json_object *jv_errors_one(const char *field, const char *type, const char *msg);

/* The Extensions key rule: ^[A-Za-z0-9][A-Za-z0-9_.-]*\.[A-Za-z0-9_.-]+$ */
int jv_extension_key_ok(const char *key);

/* RFC 3339 date-time ("2026-01-02T03:04:05.123Z", offsets allowed). */
int jv_is_date_time(const char *s);

/* An absolute URI: a scheme (RFC 3986 section 3.1) then ':' and no spaces. */
int jv_is_uri(const char *s);

#endif
