/*
 * response.h - what the service answers: status, a few headers, a JSON body.
 * Endpoints fill a struct resp; only response.c turns it into bytes.
 */
#ifndef JARVIS_RESPONSE_H
#define JARVIS_RESPONSE_H

#include <stdbool.h>
#include <stddef.h>

#include <json-c/json.h>

#define RESP_MAX_HEADERS 4
#define RESP_MAX_HEADER_VALUE 512

struct resp_header {
    const char *name; /* a static string, e.g. "Allow" */
    char value[RESP_MAX_HEADER_VALUE];
};

struct resp {
    int status;
    json_object *body; /* owned; NULL means no body (204, HEAD) */
    /* A body that is not JSON (GET /metrics): owned, sent instead of body
     * with text_type as its Content-Type; NULL: none. */
    char *text;
    size_t text_len;
    const char *text_type; /* static */
    struct resp_header headers[RESP_MAX_HEADERS];
    size_t n_headers;
    const char *error_code; /* static; the ErrorEnvelope code, for the log */
    char reason[256];       /* why it failed, for the log only */
};

/* Byte sink for resp_emit: returns 0, or -1 when the client is gone. */
typedef int (*resp_write_fn)(void *arg, const char *data, size_t len);

void resp_init(struct resp *r);

/* Drops the body; r can be reused after resp_init. */
void resp_cleanup(struct resp *r);

/* Sets status and body; takes ownership of body (may be NULL). */
void resp_set_json(struct resp *r, int status, json_object *body);

/* Sets status and a body of text_len bytes of content_type (a static
 * string); takes ownership of text (malloc'd, may be NULL). Drops any JSON
 * body. */
void resp_set_text(struct resp *r, int status, const char *content_type, char *text,
                   size_t text_len);

/*
 * Sets an ErrorEnvelope {"error":{"code","message"[,"details"]}} answer.
 * Takes ownership of details (may be NULL). `code` must be a static string.
 */
void resp_set_error(struct resp *r, int status, const char *code, const char *message,
                    json_object *details);

/* The reference's 400 for a request that fails validation:
 * invalid_request / "Request validation failed" / details.errors (the
 * validator's list: jv_validate, jv_errors_one). Takes ownership of errors. */
void resp_set_invalid(struct resp *r, json_object *errors);

/* The one 500 answer: internal_error / "Internal server error". What went
 * wrong goes to the log (resp_set_reason), never to the client. */
void resp_set_internal(struct resp *r);

/* Like resp_set_error, with "retryable": true in the error. */
void resp_set_retryable_error(struct resp *r, int status, const char *code, const char *message);

/* Adds a header (name must be static). Returns 0, or -1 when full. */
int resp_add_header(struct resp *r, const char *name, const char *value);

/* Records the operator-only reason of a failure (printf-style). */
void resp_set_reason(struct resp *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/*
 * Writes the FastCGI/CGI response (Status line, headers, blank line, body)
 * through `w`. With head_only the headers still announce the body's length
 * but the body is not sent. Returns 0, or -1 if a write failed.
 */
int resp_emit(const struct resp *r, bool head_only, resp_write_fn w, void *arg);

/* The JSON text of a body exactly as resp_emit sends it. */
const char *resp_json_text(json_object *body, size_t *len);

/* The reason phrase of an HTTP status ("Not Found"), "Unknown" for one the
 * service never writes. */
const char *resp_status_text(int status);

/* The statuses the service writes, as one list: a status's place in it
 * (RESP_N_STATUSES for any other), and a place's label ("404"; "other"
 * for RESP_N_STATUSES). The metrics count responses by it. */
#define RESP_N_STATUSES 14
unsigned resp_status_index(int status);
const char *resp_status_label(unsigned index);

#endif
