/*
 * jschema.h - JSON Schema text (as plugins declare it) compiled into the
 * validator's tables (validate.h), once per process.
 */
#ifndef JARVIS_JSCHEMA_H
#define JARVIS_JSCHEMA_H

#include <stddef.h>

#include "validate.h"

/* Deepest schema nesting compiled. */
#define JS_MAX_DEPTH 32

/*
 * The compiled form of `text` (the subset documented in jarvis/node.h).
 * Compiled on first use and kept for the life of the process, keyed by the
 * text's address (plugin schemas are static strings). NULL text means "any
 * JSON object". Returns NULL with a message in err when the text is not
 * JSON or uses what the validator cannot enforce.
 */
const struct jv_schema *js_compile_cached(const char *text, char *err, size_t errlen);

/*
 * The same compile without the cache, for text that is not a static plugin
 * string: a new handle (caller calls js_free), or NULL with err set.
 */
struct js_compiled;
struct js_compiled *js_compile(const char *text, char *err, size_t errlen);

/* The root table of c (valid until js_free(c)). */
const struct jv_schema *js_root(const struct js_compiled *c);

/* Frees c and every table of it (NULL is allowed). */
void js_free(struct js_compiled *c);

/* The schema text as a new json_object (for NodeType listings), or NULL. */
json_object *js_schema_json(const char *text);

#endif
