/* body.h - request body -> json_object, strictly (RFC 8259) and within bounds. */
#ifndef JARVIS_BODY_H
#define JARVIS_BODY_H

#include <stddef.h>

#include <json-c/json.h>

#include "request.h"
#include "response.h"

/* Deepest nesting of arrays/objects accepted in a request body. */
#define BODY_MAX_DEPTH 64
/* Longest number literal accepted (digits, sign, fraction, exponent). */
#define BODY_MAX_NUMBER_LEN 64

/*
 * The decoded tree may take at most BODY_TREE_FACTOR times the body limit.
 * json-c spends far more on a value than its text does (an empty object,
 * 2 bytes of text, takes 784 bytes of heap), so a body within the byte
 * limit could still decode to hundreds of MB: 1 MiB of [{},{},...] took a
 * worker to 280 MB. The lexer charges every token what json-c 0.16 was
 * measured to spend on it (malloc overhead included, rounded up) and
 * refuses the body before json-c builds the tree. 48: a body at the limit
 * made of small records ({"id":1,"name":"abcdefgh","tags":["x","y"]})
 * costs about 34 times its size by these charges, so honest bodies up to
 * the limit pass with room to spare, while [{},{},...] (~260 times) fails.
 */
#define BODY_TREE_FACTOR 48
#define BODY_COST_OBJECT 800 /* json_object + its 16-slot hash table */
#define BODY_COST_ARRAY 160  /* json_object + array_list; elements below */
#define BODY_COST_STRING 80  /* a string value or a member key, plus its raw bytes */
#define BODY_COST_SCALAR 96  /* a number, true, false or null (a double is 96) */

/*
 * Checks the framing headers, reads the body (at most max_bytes) and parses
 * it. Returns 0 with *out a new object (caller puts it), or -1 with *err set:
 * 411 no Content-Length, 413 over max_bytes, 415 a non-JSON Content-Type,
 * 400 an empty body, anything but one strict JSON value, or a value whose
 * tree would cost more than BODY_TREE_FACTOR * max_bytes.
 */
int body_read_json(const struct http_req *req, size_t max_bytes, json_object **out,
                   struct resp *err);

/*
 * Parses buf[0..len) as one strict JSON value. buf[len] must be readable and
 * NUL. max_bytes is the body limit the tree bound derives from (see
 * BODY_TREE_FACTOR). Returns 0 with *out set (caller puts it), or -1 with
 * *err a 400.
 */
int body_parse_json(const char *buf, size_t len, size_t max_bytes, json_object **out,
                    struct resp *err);

/* The most a body under a limit of max_bytes may cost decoded (saturating). */
size_t body_tree_budget(size_t max_bytes);

/* Returns 1 if a Content-Type header value names JSON (application/json or
 * application/<x>+json, any parameters, any case). */
int body_is_json_type(const char *content_type);

#endif
