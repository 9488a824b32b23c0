/*
 * request.h - one HTTP request as the rest of the service sees it: a plain
 * struct filled from the FastCGI environment, plus a reader for the body.
 * Nothing past request.c knows about libfcgi.
 */
#ifndef JARVIS_REQUEST_H
#define JARVIS_REQUEST_H

#include <stddef.h>

#include "trace.h"

#define REQ_MAX_METHOD 16
#define REQ_MAX_PATH 8192
#define REQ_MAX_CONTENT_TYPE 256
#define REQ_MAX_AUTHORIZATION 16384
#define REQ_MAX_REQUEST_ID (TRACE_MAX_REQUEST_ID + 1)

struct http_req {
    char method[REQ_MAX_METHOD];
    char path[REQ_MAX_PATH];                 /* raw (percent-encoded) path, query removed */
    char content_type[REQ_MAX_CONTENT_TYPE]; /* "" when absent */
    long long content_length;                /* -1 when absent or not a number */
    char authorization[REQ_MAX_AUTHORIZATION];
    /* Trace context, each "" when absent or not valid (trace.h). */
    char request_id[REQ_MAX_REQUEST_ID];        /* REQUEST_ID: nginx's $request_id */
    char client_request_id[REQ_MAX_REQUEST_ID]; /* the client's X-Request-Id */
    char traceparent[TRACE_TRACEPARENT_LEN + 1];
    int too_long; /* the path or a header did not fit: answered 414/431 */
    /* Reads up to len body bytes; returns the count, 0 at the end, -1 on error. */
    long (*read_body)(void *arg, char *buf, size_t len);
    void *read_arg;
};

struct FCGX_Request;

/*
 * Fills req from an accepted FastCGI request: the method, the raw path from
 * REQUEST_URI (else DOCUMENT_URI), Content-Type/-Length and Authorization as
 * nginx's stock fastcgi_params pass them, the trace context (REQUEST_ID,
 * which the shipped nginx snippet adds, and the X-Request-Id and
 * traceparent headers) when it passes trace.h's checks, and a body reader
 * on its stdin.
 */
void req_from_fcgi(struct FCGX_Request *fr, struct http_req *req);

/* resp_write_fn over a FastCGI output stream (arg is its FCGX_Stream). */
int req_fcgi_write(void *arg, const char *data, size_t len);

/*
 * Reads and drops what is left of the request's stdin, at most max bytes:
 * a kept connection (FCGI_KEEP_CONN) carries the next request after it. 0
 * once the end of stdin was read, -1 if more than max bytes were left or
 * the stream failed (the connection must then be closed, not kept).
 */
int req_fcgi_drain(struct FCGX_Request *fr, size_t max);

#endif
