/*
 * web_fetch.h - the parts of jarvis.web.fetch: web_fetch.c turns inputs into
 * a wf_request and a wf_response into outputs; web_fetch_http.c runs the
 * request with libcurl (multi interface, cancel-aware, redirects by hand);
 * web_fetch_policy.h says where it may connect.
 */
#ifndef JARVIS_CORE_WEB_FETCH_H
#define JARVIS_CORE_WEB_FETCH_H

#include <stddef.h>

#include <curl/curl.h>

#include "jarvis/node.h"
#include "jarvis/util.h"

/* Most redirects followed for one call. */
#define WF_MAX_REDIRECTS 10

/* A header or query parameter; both strings owned by the list. `dropped`
 * marks a request header left out of later redirect hops. */
struct wf_pair {
    char *key;
    char *value;
    size_t value_len;
    int dropped;
};

struct wf_pairs {
    struct wf_pair *v;
    size_t n, cap;
};

/* ---- web_fetch_text.c ---- */

/* Appends a copy of key[0..key_len) and value[0..value_len). 0, or -1 when
 * out of memory. */
int wf_pairs_add(struct wf_pairs *p, const char *key, size_t key_len, const char *value,
                 size_t value_len);
/* As wf_pairs_add, but a key already there (same bytes) gets the new value
 * in its old place, as a Python dict. */
int wf_pairs_put(struct wf_pairs *p, const char *key, size_t key_len, const char *value,
                 size_t value_len);
/* The index of the first pair with exactly this key, or p->n. */
size_t wf_pairs_index(const struct wf_pairs *p, const char *key);
void wf_pairs_cleanup(struct wf_pairs *p);

/* 0 if text[0..len) is one JSON value as Python's json.loads accepts it
 * (NaN and Infinity included), *is_null set when that value is null; -1 if
 * it is not. */
int wf_json_check(const char *text, size_t len, int *is_null);

/* Standard base64 (padded) of p[0..n): a new string (caller frees) or NULL. */
char *wf_base64(const unsigned char *p, size_t n);

/* s[0..n) read as ISO-8859-1, in UTF-8: a new string of *out_len bytes
 * (caller frees), or NULL. */
char *wf_latin1_to_utf8(const char *s, size_t n, size_t *out_len);

/* A validated request. Strings not owned here are borrowed from the inputs. */
struct wf_request {
    char *url;               /* absolute http(s) URL with params merged; malloc'd */
    const char *method;      /* static, upper case */
    struct wf_pairs headers; /* as given, same keys merged (last value wins) */
    const char *body;        /* borrowed; NULL when none */
    size_t body_len;
    int body_is_json;     /* send Content-Type: application/json unless given */
    double timeout_secs;  /* > 0, for messages */
    long long timeout_ms; /* the whole call, every hop included */
    long long max_bytes;  /* > 0: largest body accepted */
    int follow_redirects;
};

/* The last response received. */
struct wf_response {
    long status;
    char *final_url;         /* malloc'd */
    struct wf_pairs headers; /* raw names, in arrival order */
    unsigned char *body;     /* malloc'd, body_len bytes (NULL when empty) */
    size_t body_len;
};

void wf_request_cleanup(struct wf_request *req);   /* web_fetch.c */
void wf_response_cleanup(struct wf_response *res); /* web_fetch_http.c */

/* ---- web_fetch_url.c ---- */

/*
 * Parses url and checks that it is absolute http or https with a host that
 * the JARVIS_ATOMIC_HTTP_ALLOWED_HOSTS / _BLOCKED_HOSTS lists (read from
 * the environment at each call) permit and, when the host is a numeric
 * address in any spelling, that the address policy (web_fetch_policy.h)
 * lets the fetch connect to it and the URL's port; a name's addresses are
 * judged when curl connects (web_fetch_http.c). `what` names the URL in the reason
 * ("url", "redirect"). Returns JARVIS_OK with *out a new handle (caller
 * calls curl_url_cleanup; out may be NULL), or jarvis_ctx_fail's code.
 */
int wf_url_check(jarvis_ctx *ctx, const char *what, const char *url, CURLU **out);

/* The raw query (NULL: none) with params merged as httpx merges them: keys
 * in first-seen order, a param replacing every value of its key, new keys
 * last, all encoded as Python's urlencode. A new string (caller frees) or
 * NULL when out of memory. */
char *wf_query_merge(const char *query, const struct wf_pairs *params);

struct wf_origin {
    char scheme[8];
    char host[512]; /* lower case */
    char port[8];   /* explicit: "80" when the URL gives none */
};

/* Fills o from url; 0, or -1 if url cannot be parsed or is too long. */
int wf_url_origin(const char *url, struct wf_origin *o);

/* ---- web_fetch_http.c ---- */

/*
 * Runs req: the request, then its redirects when req->follow_redirects.
 * Fills res (caller calls wf_response_cleanup, even on failure). Returns
 * JARVIS_OK, JARVIS_ERR_CANCELED / JARVIS_ERR_TIMEOUT when the run is
 * stopped, or jarvis_ctx_fail's code (request timeout, body over
 * max_bytes or inflating too much, a refused redirect, a connection the
 * address policy refused, a transfer error).
 */
int wf_http_fetch(jarvis_ctx *ctx, struct wf_request *req, struct wf_response *res);

#endif
