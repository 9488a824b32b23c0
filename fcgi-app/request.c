/*
 * request.c - the FastCGI adapter: the only file that reads libfcgi's
 * parameters and streams. It copies what the service needs out of the
 * environment, bounded, so that everything after it is plain C.
 *
 * Only parameters of nginx's stock fastcgi_params are required.
 */
#include "request.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <fcgiapp.h>

static int copy_param(FCGX_Request *fr, const char *name, char *dst, size_t len)
{
    const char *v = FCGX_GetParam(name, fr->envp);

    dst[0] = '\0';
    if (v == NULL)
        return 0;
    if (strlen(v) >= len)
        return -1;
    memcpy(dst, v, strlen(v) + 1);
    return 1;
}

/* As copy_param, keeping only a value that passes `valid`. */
static void copy_valid(FCGX_Request *fr, const char *name, char *dst, size_t len,
                       int (*valid)(const char *))
{
    if (copy_param(fr, name, dst, len) <= 0 || !valid(dst))
        dst[0] = '\0';
}

static long long parse_length(const char *v)
{
    char *end;
    long long n;

    if (v == NULL || *v < '0' || *v > '9')
        return -1;
    errno = 0;
    n = strtoll(v, &end, 10);
    return (errno != 0 || *end != '\0') ? -1 : n;
}

static long read_fcgi(void *arg, char *buf, size_t len)
{
    FCGX_Stream *in = arg;
    int chunk = len > (1 << 30) ? (1 << 30) : (int)len;

    return FCGX_GetStr(buf, chunk, in);
}

void req_from_fcgi(FCGX_Request *fr, struct http_req *req)
{
    int got;

    /* Every field is set below: no memset of the struct's 24 KiB of
     * buffers (it was a sixth of an echo execute's instructions). */
    req->too_long = 0;
    if (copy_param(fr, "REQUEST_METHOD", req->method, sizeof req->method) <= 0)
        strcpy(req->method, "-");
    /* REQUEST_URI keeps a %2F inside a node_run_id; DOCUMENT_URI has it decoded. */
    got = copy_param(fr, "REQUEST_URI", req->path, sizeof req->path);
    if (got == 0)
        got = copy_param(fr, "DOCUMENT_URI", req->path, sizeof req->path);
    if (got < 0)
        req->too_long = 1;
    req->path[strcspn(req->path, "?#")] = '\0';
    if (copy_param(fr, "CONTENT_TYPE", req->content_type, sizeof req->content_type) < 0)
        strcpy(req->content_type, "invalid/too-long");
    req->content_length = parse_length(FCGX_GetParam("CONTENT_LENGTH", fr->envp));
    /* An oversized header cannot be a valid token: keep it empty. */
    if (copy_param(fr, "HTTP_AUTHORIZATION", req->authorization, sizeof req->authorization) < 0)
        req->authorization[0] = '\0';
    copy_valid(fr, "REQUEST_ID", req->request_id, sizeof req->request_id, trace_request_id_valid);
    copy_valid(fr, "HTTP_X_REQUEST_ID", req->client_request_id, sizeof req->client_request_id,
               trace_request_id_valid);
    copy_valid(fr, "HTTP_TRACEPARENT", req->traceparent, sizeof req->traceparent,
               trace_traceparent_valid);
    req->read_body = read_fcgi;
    req->read_arg = fr->in;
}

int req_fcgi_drain(struct FCGX_Request *fr, size_t max)
{
    char buf[4096];
    size_t left = max;

    while (FCGX_HasSeenEOF(fr->in) != EOF) {
        /* Room for one byte past max: only a read shows where stdin
         * ends, so exactly max bytes left must still drain. */
        size_t room = left < sizeof buf ? left + 1 : sizeof buf;
        int got = FCGX_GetStr(buf, (int)room, fr->in);
        if (got <= 0)
            /* 0 at the end of stdin; an error leaves the stream unusable. */
            return FCGX_HasSeenEOF(fr->in) == EOF && FCGX_GetError(fr->in) == 0 ? 0 : -1;
        if ((size_t)got > left)
            return -1; /* more than max */
        left -= (size_t)got;
    }
    return FCGX_GetError(fr->in) == 0 ? 0 : -1;
}

int req_fcgi_write(void *arg, const char *data, size_t len)
{
    FCGX_Stream *out = arg;

    while (len > 0) {
        int chunk = len > (1 << 30) ? (1 << 30) : (int)len;
        if (FCGX_PutStr(data, chunk, out) != chunk)
            return -1;
        data += chunk;
        len -= (size_t)chunk;
    }
    return 0;
}
