/*
 * response.c - the only place that turns an answer into bytes.
 *
 * JSON goes out compact and with '/' unescaped, the way the reference's
 * JSONResponse writes it. Every answer carries an explicit Content-Length so
 * nginx never has to buffer or chunk, and Cache-Control: no-store because
 * these are per-call results.
 */
#include "response.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "utf8.h"

#define JSON_FLAGS (JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)

void resp_init(struct resp *r)
{
    memset(r, 0, sizeof *r);
    r->status = 500;
}

static void drop_text(struct resp *r)
{
    free(r->text);
    r->text = NULL;
    r->text_len = 0;
    r->text_type = NULL;
}

void resp_cleanup(struct resp *r)
{
    json_object_put(r->body);
    r->body = NULL;
    drop_text(r);
}

void resp_set_json(struct resp *r, int status, json_object *body)
{
    json_object_put(r->body);
    drop_text(r);
    r->status = status;
    r->body = body;
}

void resp_set_text(struct resp *r, int status, const char *content_type, char *text,
                   size_t text_len)
{
    resp_set_json(r, status, NULL);
    r->text = text;
    r->text_len = text != NULL ? text_len : 0;
    r->text_type = content_type;
}

static json_object *error_envelope(const char *code, const char *message, json_object *details,
                                   int retryable)
{
    json_object *env = json_object_new_object();
    json_object *err = json_object_new_object();

    json_object_object_add(err, "code", json_object_new_string(code));
    json_object_object_add(err, "message", json_object_new_string(message));
    if (details != NULL)
        json_object_object_add(err, "details", details);
    if (retryable)
        json_object_object_add(err, "retryable", json_object_new_boolean(1));
    json_object_object_add(env, "error", err);
    return env;
}

void resp_set_error(struct resp *r, int status, const char *code, const char *message,
                    json_object *details)
{
    resp_set_json(r, status, error_envelope(code, message, details, 0));
    r->error_code = code;
}

void resp_set_invalid(struct resp *r, json_object *errors)
{
    json_object *details = json_object_new_object();

    json_object_object_add(details, "errors", errors);
    resp_set_error(r, 400, "invalid_request", "Request validation failed", details);
}

void resp_set_internal(struct resp *r)
{
    resp_set_error(r, 500, "internal_error", "Internal server error", NULL);
}

void resp_set_retryable_error(struct resp *r, int status, const char *code, const char *message)
{
    resp_set_json(r, status, error_envelope(code, message, NULL, 1));
    r->error_code = code;
}

int resp_add_header(struct resp *r, const char *name, const char *value)
{
    struct resp_header *h;

    if (r->n_headers == RESP_MAX_HEADERS)
        return -1;
    h = &r->headers[r->n_headers++];
    h->name = name;
    snprintf(h->value, sizeof h->value, "%s", value);
    /* A value that could end the header block would let a caller split it. */
    for (char *p = h->value; *p; p++)
        if ((unsigned char)*p < ' ' || *p == 0x7f)
            *p = ' ';
    return 0;
}

void resp_set_reason(struct resp *r, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    utf8_vformat(r->reason, sizeof r->reason, fmt, ap);
    va_end(ap);
}

/* Every status the service writes: the one list, which the metrics count
 * by (one counter each, in this order, then one for any other). */
static const struct {
    int code;
    const char *label; /* the code as text, for the metrics */
    const char *text;  /* the reason phrase */
} statuses[RESP_N_STATUSES] = {
    {200, "200", "OK"},
    {204, "204", "No Content"},
    {400, "400", "Bad Request"},
    {401, "401", "Unauthorized"},
    {403, "403", "Forbidden"},
    {404, "404", "Not Found"},
    {405, "405", "Method Not Allowed"},
    {409, "409", "Conflict"},
    {411, "411", "Length Required"},
    {413, "413", "Content Too Large"},
    {414, "414", "URI Too Long"},
    {415, "415", "Unsupported Media Type"},
    {500, "500", "Internal Server Error"},
    {503, "503", "Service Unavailable"},
};

unsigned resp_status_index(int status)
{
    unsigned i;

    for (i = 0; i < RESP_N_STATUSES && statuses[i].code != status; i++)
        ;
    return i;
}

const char *resp_status_label(unsigned index)
{
    return index < RESP_N_STATUSES ? statuses[index].label : "other";
}

const char *resp_status_text(int status)
{
    unsigned i = resp_status_index(status);

    return i < RESP_N_STATUSES ? statuses[i].text : "Unknown";
}

const char *resp_json_text(json_object *body, size_t *len)
{
    return json_object_to_json_string_length(body, JSON_FLAGS, len);
}

int resp_emit(const struct resp *r, bool head_only, resp_write_fn w, void *arg)
{
    char head[1024 + RESP_MAX_HEADERS * (RESP_MAX_HEADER_VALUE + 64)];
    const char *body = NULL, *type = "application/json";
    size_t body_len = 0, i;
    int n;

    if (r->body != NULL) {
        body = resp_json_text(r->body, &body_len);
    } else if (r->text != NULL) {
        body = r->text;
        body_len = r->text_len;
        type = r->text_type;
    }
#ifdef JARVIS_CHECK_UTF8
    /* Test builds: an answer that is not valid UTF-8 is a bug wherever it
     * came from, so the whole suite fails on it. */
    if (body != NULL && !jarvis_utf8_valid(body, body_len)) {
        fprintf(stderr, "response body is not valid UTF-8: %.*s\n", (int)body_len, body);
        abort();
    }
#endif
    n = snprintf(head, sizeof head, "Status: %d %s\r\n", r->status, resp_status_text(r->status));
    if (body != NULL)
        n += snprintf(head + n, sizeof head - (size_t)n,
                      "Content-Type: %s\r\nContent-Length: %zu\r\n", type, body_len);
    else if (r->status != 204) /* RFC 9110: 204 carries no Content-Length */
        n += snprintf(head + n, sizeof head - (size_t)n, "Content-Length: 0\r\n");
    n += snprintf(head + n, sizeof head - (size_t)n, "Cache-Control: no-store\r\n");
    for (i = 0; i < r->n_headers; i++)
        n += snprintf(head + n, sizeof head - (size_t)n, "%s: %s\r\n", r->headers[i].name,
                      r->headers[i].value);
    n += snprintf(head + n, sizeof head - (size_t)n, "\r\n");
    if (w(arg, head, (size_t)n) != 0)
        return -1;
    if (body != NULL && !head_only && w(arg, body, body_len) != 0)
        return -1;
    return 0;
}
