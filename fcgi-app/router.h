/* router.h - request method + raw path -> endpoint (404 vs 405 vs match). */
#ifndef JARVIS_ROUTER_H
#define JARVIS_ROUTER_H

#include "response.h"
#include "dispatch.h"

/* Longest node_run_id accepted in a path, after percent-decoding. */
#define ROUTE_MAX_PARAM DSP_MAX_ID

enum route_ep { EP_NONE = 0, EP_HEALTH, EP_VERSION, EP_EXECUTE, EP_CANCEL, EP_METRICS };

struct route_match {
    enum route_ep ep;
    int head_only;                   /* HEAD on a GET route */
    char param[ROUTE_MAX_PARAM + 1]; /* percent-decoded {node_run_id} */
};

/*
 * Matches `method` and `path` (the raw request path, percent-encoded, without
 * the query string). Returns 0 with *m filled, or -1 with *err set to the
 * answer: 404 unknown path, 405 known path and wrong method (with Allow),
 * 400 a path parameter that does not decode.
 */
int route_lookup(const char *method, const char *path, struct route_match *m, struct resp *err);

/* Percent-decodes src[0..len) into dst (size dstlen, NUL-terminated).
 * Returns the decoded length, or -1 on a bad escape, a NUL byte, invalid
 * UTF-8, or when it does not fit. */
int route_percent_decode(const char *src, size_t len, char *dst, size_t dstlen);

#endif
