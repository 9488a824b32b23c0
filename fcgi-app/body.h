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
 * Checks the framing headers, reads the body (at most max_bytes) and parses
 * it. Returns 0 with *out a new object (caller puts it), or -1 with *err set:
 * 411 no Content-Length, 413 over max_bytes, 415 a non-JSON Content-Type,
 * 400 an empty body or anything but one strict JSON value.
 */
int body_read_json(const struct http_req *req, size_t max_bytes, json_object **out,
                   struct resp *err);

/*
 * Parses buf[0..len) as one strict JSON value. buf[len] must be readable and
 * NUL. Returns 0 with *out set (caller puts it), or -1 with *err a 400.
 */
int body_parse_json(const char *buf, size_t len, json_object **out, struct resp *err);

/* Returns 1 if a Content-Type header value names JSON (application/json or
 * application/<x>+json, any parameters, any case). */
int body_is_json_type(const char *content_type);

#endif
