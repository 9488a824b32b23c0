/*
 * web_fetch.c - jarvis.web.fetch: one HTTP(S) request (GET POST PUT PATCH
 * DELETE HEAD OPTIONS), answered with the status, the response headers and
 * the body in base64, as the reference pack (arp-jarvis-atomic-nodes 0.3.8,
 * httpx) answers. This file owns the node's descriptor, the checks of its
 * inputs (the service validates them against input_schema too; these hold
 * without it) and the outputs; web_fetch_http.c runs the request.
 *
 * Where the reference leaves room, this node decides so:
 *  - timeout_seconds bounds the whole call, redirects included (httpx
 *    applies it to each connect/read/write), and the run's deadline and a
 *    cancel stop it as well;
 *  - the response is read up to max_bytes (decoded) and the call fails
 *    beyond, rather than after reading it all; the same holds on each hop;
 *  - redirects (follow_redirects) are checked hop by hop against the host
 *    lists, at most WF_MAX_REDIRECTS of them;
 *  - params are merged into the URL's query as httpx merges them (a param
 *    replaces the query's values of its key; the query is re-encoded as
 *    urlencode does), but only when params are given;
 *  - json and body together are refused (httpx sent the body); json "null"
 *    means no body, as in the reference; HEAD never sends a body;
 *  - Content-Length and Transfer-Encoding headers are refused (the node
 *    frames the body); header values must be free of control characters;
 *  - the run's W3C traceparent (jarvis_ctx_traceparent: the executor's
 *    caller sent a valid one) is sent on unchanged, on every hop, so the
 *    fetched service joins the caller's trace; a traceparent among the
 *    inputs' headers is sent instead (the agent asked for that one);
 *  - where it may connect is decided by address, on every hop: private,
 *    loopback, link-local and other internal ranges are refused unless
 *    JARVIS_ATOMIC_HTTP_ALLOWED_CIDRS re-allows them, and only the ports of
 *    JARVIS_ATOMIC_HTTP_ALLOWED_PORTS (80, 443) are open (web_fetch_policy.c);
 *  - JARVIS_ATOMIC_HTTP_MAX_BYTES is the default max_bytes and its ceiling,
 *    JARVIS_ATOMIC_HTTP_MAX_TIMEOUT_SECONDS (60) the ceiling of
 *    timeout_seconds: a caller's larger value is clamped to the ceiling
 *    (and logged), so an agent cannot make one fetch hold more memory or a
 *    serving thread longer than the operator allows;
 *  - the host lists (JARVIS_ATOMIC_HTTP_ALLOWED_HOSTS / _BLOCKED_HOSTS), the
 *    address policy and the limits are read from the environment at each
 *    call, so a change needs no restart.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "nodes.h"
#include "web_fetch.h"

#define WF_DEFAULT_TIMEOUT_SECS 10.0
#define WF_DEFAULT_MAX_BYTES (1024LL * 1024)
/* Default ceiling of timeout_seconds (JARVIS_ATOMIC_HTTP_MAX_TIMEOUT_SECONDS). */
#define WF_DEFAULT_MAX_TIMEOUT_SECS 60.0
/* Largest ceilings the environment may set: the body is held whole and
 * sent back in base64 inside one JSON answer, and a day is longer than any
 * sensible fetch (it also keeps milliseconds in range). */
#define WF_HARD_MAX_BYTES (256LL * 1024 * 1024)
#define WF_HARD_MAX_TIMEOUT_SECS 86400.0

static const char *const methods[] = {"GET",    "POST", "PUT",     "PATCH",
                                      "DELETE", "HEAD", "OPTIONS", NULL};

static const char *const input_keys[] = {
    "url",  "method",          "headers",   "params",           "json",
    "body", "timeout_seconds", "max_bytes", "follow_redirects", NULL};

void wf_request_cleanup(struct wf_request *req)
{
    free(req->url);
    wf_pairs_cleanup(&req->headers);
    memset(req, 0, sizeof *req);
}

/* inputs[key], or NULL when absent or null (the reference reads both as
 * "not given"). */
static json_object *opt(json_object *inputs, const char *key)
{
    json_object *v = NULL;

    if (!json_object_object_get_ex(inputs, key, &v) || json_object_is_type(v, json_type_null))
        return NULL;
    return v;
}

/* req->url: the URL of u with params merged into its query. The merged
 * query is spliced into the URL text: curl_url_set would rewrite its
 * %XX escapes in lower case, where urlencode writes upper case. */
static int build_url(jarvis_ctx *ctx, CURLU *u, const struct wf_pairs *params,
                     struct wf_request *req)
{
    char *text = NULL, *query = NULL, *merged = NULL;
    const char *q, *frag;
    CURLUcode uc = curl_url_get(u, CURLUPART_URL, &text, 0);
    size_t head, len;
    int rc = JARVIS_OK;

    if (uc == CURLUE_OK && params->n > 0) {
        uc = curl_url_get(u, CURLUPART_QUERY, &query, 0);
        if (uc == CURLUE_NO_QUERY)
            uc = CURLUE_OK;
    }
    if (uc != CURLUE_OK) {
        rc = jarvis_ctx_fail(ctx, "url: %s", curl_url_strerror(uc));
        goto out;
    }
    if (params->n > 0)
        merged = wf_query_merge(query, params);
    /* in curl's normalized text the first '?' starts the query, '#' the fragment */
    frag = strchr(text, '#');
    q = strchr(text, '?');
    head = q != NULL && (frag == NULL || q < frag) ? (size_t)(q - text)
           : frag != NULL                          ? (size_t)(frag - text)
                                                   : strlen(text);
    frag = frag != NULL ? frag : "";
    len = merged != NULL ? head + strlen(merged) + strlen(frag) + 2 : strlen(text) + 1;
    req->url = malloc(len);
    if (req->url == NULL || (params->n > 0 && merged == NULL)) {
        rc = jarvis_ctx_fail(ctx, "out of memory");
        goto out;
    }
    if (merged != NULL)
        snprintf(req->url, len, "%.*s?%s%s", (int)head, text, merged, frag);
    else
        snprintf(req->url, len, "%s", text);
out:
    curl_free(text);
    curl_free(query);
    free(merged);
    return rc;
}

/* ---- headers and params ---- */

static int is_tchar(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static int header_ok(jarvis_ctx *ctx, size_t i, const char *key, size_t klen, const char *value,
                     size_t vlen)
{
    size_t k;

    for (k = 0; k < klen; k++)
        if (!is_tchar((unsigned char)key[k]))
            break;
    if (klen == 0 || k < klen)
        return jarvis_ctx_fail(ctx, "headers[%zu].key is not a valid header name", i);
    for (k = 0; k < vlen; k++) {
        unsigned char c = (unsigned char)value[k];
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return jarvis_ctx_fail(ctx, "headers[%zu].value holds a control character", i);
    }
    if (strcasecmp(key, "Content-Length") == 0 || strcasecmp(key, "Transfer-Encoding") == 0)
        return jarvis_ctx_fail(ctx, "headers[%zu]: %s is set by the node", i, key);
    return JARVIS_OK;
}

/* Adds the run's traceparent to the request headers unless they hold one. */
static int forward_traceparent(jarvis_ctx *ctx, struct wf_request *req)
{
    const char *tp = jarvis_ctx_traceparent(ctx);
    size_t i;

    if (tp == NULL)
        return JARVIS_OK;
    for (i = 0; i < req->headers.n; i++)
        if (strcasecmp(req->headers.v[i].key, "traceparent") == 0)
            return JARVIS_OK;
    if (wf_pairs_add(&req->headers, "traceparent", strlen("traceparent"), tp, strlen(tp)) != 0)
        return jarvis_ctx_fail(ctx, "out of memory");
    return JARVIS_OK;
}

/* headers or params: an array of {"key": string, "value": string}; a key
 * given twice keeps its first place and its last value (a Python dict). */
static int parse_pairs(jarvis_ctx *ctx, json_object *inputs, const char *field,
                       struct wf_pairs *out)
{
    json_object *arr = opt(inputs, field);
    size_t i, n;

    if (arr == NULL)
        return JARVIS_OK;
    if (!json_object_is_type(arr, json_type_array))
        return jarvis_ctx_fail(ctx, "%s must be an array of {key, value} objects", field);
    n = json_object_array_length(arr);
    for (i = 0; i < n; i++) {
        json_object *item = json_object_array_get_idx(arr, i), *k = NULL, *v = NULL;
        const char *key, *value;
        size_t klen, vlen;
        if (!json_object_is_type(item, json_type_object) ||
            !json_object_object_get_ex(item, "key", &k) ||
            !json_object_object_get_ex(item, "value", &v) ||
            !json_object_is_type(k, json_type_string) || !json_object_is_type(v, json_type_string))
            return jarvis_ctx_fail(ctx, "%s[%zu] must be an object with string key and value",
                                   field, i);
        if (json_object_object_length(item) != 2)
            return jarvis_ctx_fail(ctx, "%s[%zu] has fields other than key and value", field, i);
        key = json_object_get_string(k);
        klen = (size_t)json_object_get_string_len(k);
        value = json_object_get_string(v);
        vlen = (size_t)json_object_get_string_len(v);
        if (strcmp(field, "headers") == 0 && header_ok(ctx, i, key, klen, value, vlen) != 0)
            return JARVIS_ERR_HANDLER;
        if (strlen(key) != klen)
            return jarvis_ctx_fail(ctx, "%s[%zu].key holds a NUL character", field, i);
        if (wf_pairs_put(out, key, klen, value, vlen) != 0)
            return jarvis_ctx_fail(ctx, "out of memory");
    }
    return JARVIS_OK;
}

/* ---- the other inputs ---- */

/* A positive number from the environment variable `name`, at most `hard`;
 * `dflt` when unset or not a positive number. */
static double env_number(const char *name, double dflt, double hard)
{
    const char *s = getenv(name);
    char *end;
    double d;

    if (s == NULL)
        return dflt;
    d = strtod(s, &end);
    while (*end == ' ' || *end == '\t')
        end++;
    if (end == s || *end != '\0' || !isfinite(d) || !(d > 0))
        return dflt;
    return d > hard ? hard : d;
}

static long long env_max_bytes(void)
{
    const char *s = getenv("JARVIS_ATOMIC_HTTP_MAX_BYTES");
    char *end;
    long long n;

    if (s == NULL)
        return WF_DEFAULT_MAX_BYTES;
    n = strtoll(s, &end, 10);
    while (*end == ' ' || *end == '\t')
        end++;
    if (end == s || *end != '\0' || n <= 0)
        return WF_DEFAULT_MAX_BYTES;
    return n > WF_HARD_MAX_BYTES ? WF_HARD_MAX_BYTES : n;
}

static int parse_method(jarvis_ctx *ctx, json_object *inputs, struct wf_request *req)
{
    json_object *m = opt(inputs, "method");
    const char *s;
    size_t i;

    req->method = "GET";
    if (m == NULL)
        return JARVIS_OK;
    if (!json_object_is_type(m, json_type_string))
        return jarvis_ctx_fail(ctx, "method must be a string");
    s = json_object_get_string(m);
    if (s[0] == '\0')
        return JARVIS_OK; /* the reference's `or "GET"` */
    for (i = 0; methods[i] != NULL; i++) {
        if (strcasecmp(s, methods[i]) == 0 && strlen(s) == (size_t)json_object_get_string_len(m)) {
            req->method = methods[i];
            return JARVIS_OK;
        }
    }
    return jarvis_ctx_fail(ctx, "method must be one of GET, POST, PUT, PATCH, DELETE, HEAD, "
                                "OPTIONS");
}

/* json (checked JSON text) or body, sent as is. */
static int parse_payload(jarvis_ctx *ctx, json_object *inputs, struct wf_request *req)
{
    json_object *json = opt(inputs, "json"), *body = opt(inputs, "body");

    if (json != NULL && body != NULL)
        return jarvis_ctx_fail(ctx, "json and body exclude each other: give one");
    if (json != NULL) {
        int is_null = 0;
        if (!json_object_is_type(json, json_type_string))
            return jarvis_ctx_fail(ctx, "json must be a string of JSON text");
        req->body = json_object_get_string(json);
        req->body_len = (size_t)json_object_get_string_len(json);
        if (wf_json_check(req->body, req->body_len, &is_null) != 0)
            return jarvis_ctx_fail(ctx, "json is not valid JSON");
        if (is_null) { /* json.loads gives None: no body, as the reference */
            req->body = NULL;
            req->body_len = 0;
            return JARVIS_OK;
        }
        req->body_is_json = 1;
    } else if (body != NULL) {
        if (!json_object_is_type(body, json_type_string))
            return jarvis_ctx_fail(ctx, "body must be a string");
        req->body = json_object_get_string(body);
        req->body_len = (size_t)json_object_get_string_len(body);
    }
    return JARVIS_OK;
}

static int parse_timeout(jarvis_ctx *ctx, json_object *t, struct wf_request *req)
{
    double ceiling = env_number("JARVIS_ATOMIC_HTTP_MAX_TIMEOUT_SECONDS",
                                WF_DEFAULT_MAX_TIMEOUT_SECS, WF_HARD_MAX_TIMEOUT_SECS);
    double secs = env_number("JARVIS_ATOMIC_HTTP_TIMEOUT_SECONDS", WF_DEFAULT_TIMEOUT_SECS,
                             WF_HARD_MAX_TIMEOUT_SECS);

    if (t != NULL) {
        if (!json_object_is_type(t, json_type_int) && !json_object_is_type(t, json_type_double))
            return jarvis_ctx_fail(ctx, "timeout_seconds must be a number > 0");
        secs = json_object_get_double(t);
        if (!(secs > 0) || !isfinite(secs))
            return jarvis_ctx_fail(ctx, "timeout_seconds must be a number > 0");
        if (secs > ceiling)
            jarvis_ctx_log(ctx, JARVIS_LOG_INFO,
                           "web.fetch: timeout_seconds %g clamped to "
                           "JARVIS_ATOMIC_HTTP_MAX_TIMEOUT_SECONDS %g",
                           secs, ceiling);
    }
    if (secs > ceiling) /* the operator's default is bound by the ceiling too */
        secs = ceiling;
    req->timeout_secs = secs;
    secs = ceil(secs * 1000.0);
    req->timeout_ms = secs < 1 ? 1 : (long long)secs;
    return JARVIS_OK;
}

static int parse_limits(jarvis_ctx *ctx, json_object *inputs, struct wf_request *req)
{
    json_object *m = opt(inputs, "max_bytes"), *f = opt(inputs, "follow_redirects");
    long long ceiling = env_max_bytes();
    int rc = parse_timeout(ctx, opt(inputs, "timeout_seconds"), req);

    if (rc != JARVIS_OK)
        return rc;
    req->max_bytes = ceiling;
    if (m != NULL) {
        if (!json_object_is_type(m, json_type_int) || json_object_get_int64(m) <= 0)
            return jarvis_ctx_fail(ctx, "max_bytes must be an integer > 0");
        req->max_bytes = json_object_get_int64(m);
        if (req->max_bytes > ceiling) {
            jarvis_ctx_log(ctx, JARVIS_LOG_INFO,
                           "web.fetch: max_bytes %lld clamped to JARVIS_ATOMIC_HTTP_MAX_BYTES %lld",
                           req->max_bytes, ceiling);
            req->max_bytes = ceiling;
        }
    }
    if (f != NULL) {
        if (!json_object_is_type(f, json_type_boolean))
            return jarvis_ctx_fail(ctx, "follow_redirects must be a boolean");
        req->follow_redirects = json_object_get_boolean(f);
    }
    return JARVIS_OK;
}

/* Fills req from inputs, in the reference's order of checks. */
static int parse_inputs(jarvis_ctx *ctx, json_object *inputs, struct wf_request *req)
{
    struct wf_pairs params = {0};
    json_object *url = opt(inputs, "url");
    CURLU *u = NULL;
    int rc;

    json_object_object_foreach(inputs, key, val)
    {
        size_t i;
        (void)val;
        for (i = 0; input_keys[i] != NULL && strcmp(input_keys[i], key) != 0; i++)
            ;
        if (input_keys[i] == NULL)
            return jarvis_ctx_fail(ctx, "unknown input %s", key);
    }
    if (url == NULL)
        return jarvis_ctx_fail(ctx, "url is required");
    if (!json_object_is_type(url, json_type_string))
        return jarvis_ctx_fail(ctx, "url must be a string");
    if (strlen(json_object_get_string(url)) != (size_t)json_object_get_string_len(url))
        return jarvis_ctx_fail(ctx, "url holds a NUL character");
    rc = wf_url_check(ctx, "url", json_object_get_string(url), &u);
    if (rc == JARVIS_OK)
        rc = parse_method(ctx, inputs, req);
    if (rc == JARVIS_OK)
        rc = parse_pairs(ctx, inputs, "headers", &req->headers);
    if (rc == JARVIS_OK)
        rc = forward_traceparent(ctx, req);
    if (rc == JARVIS_OK)
        rc = parse_pairs(ctx, inputs, "params", &params);
    if (rc == JARVIS_OK)
        rc = parse_payload(ctx, inputs, req);
    if (rc == JARVIS_OK)
        rc = parse_limits(ctx, inputs, req);
    if (rc == JARVIS_OK)
        rc = build_url(ctx, u, &params, req);
    wf_pairs_cleanup(&params);
    curl_url_cleanup(u);
    return rc;
}

/* ---- outputs ---- */

static int cmp_pair(const void *a, const void *b)
{
    const struct wf_pair *x = a, *y = b;
    int c = strcmp(x->key, y->key);

    return c != 0 ? c : strcmp(x->value, y->value);
}

/* The response headers as httpx's Headers.items(): names in lower case, the
 * values of a name joined with ", " in arrival order; sorted as Python's
 * sorted() sorts the (key, value) tuples. */
static int merge_headers(const struct wf_pairs *raw, struct wf_pairs *out)
{
    size_t i, k;

    for (i = 0; i < raw->n; i++) {
        size_t klen = strlen(raw->v[i].key), at;
        struct wf_pair *have;
        char *v;
        if (wf_pairs_add(out, raw->v[i].key, klen, raw->v[i].value, raw->v[i].value_len) != 0)
            return -1;
        for (k = 0; k < klen; k++)
            if (out->v[out->n - 1].key[k] >= 'A' && out->v[out->n - 1].key[k] <= 'Z')
                out->v[out->n - 1].key[k] += 'a' - 'A';
        at = wf_pairs_index(out, out->v[out->n - 1].key);
        if (at == out->n - 1)
            continue;
        have = &out->v[at];
        v = realloc(have->value, have->value_len + raw->v[i].value_len + 3);
        if (v == NULL)
            return -1;
        memcpy(v + have->value_len, ", ", 2);
        memcpy(v + have->value_len + 2, raw->v[i].value, raw->v[i].value_len + 1);
        have->value = v;
        have->value_len += raw->v[i].value_len + 2;
        out->n--;
        free(out->v[out->n].key);
        free(out->v[out->n].value);
    }
    qsort(out->v, out->n, sizeof out->v[0], cmp_pair);
    return 0;
}

/* A JSON string of s[0..n): as is when UTF-8, else read as ISO-8859-1 (the
 * last of httpx's header decodings); latin1 forces the second. */
static json_object *text_new(const char *s, size_t n, int latin1)
{
    json_object *o;
    size_t len;
    char *u;

    if (!latin1 && jarvis_utf8_valid(s, n))
        return json_object_new_string_len(s, (int)n);
    u = wf_latin1_to_utf8(s, n, &len);
    if (u == NULL)
        return NULL;
    o = json_object_new_string_len(u, (int)len);
    free(u);
    return o;
}

static int add(json_object *obj, const char *key, json_object *v)
{
    if (v == NULL)
        return -1;
    json_object_object_add(obj, key, v);
    return 0;
}

static int add_headers(json_object *out, const struct wf_pairs *h)
{
    json_object *arr = json_object_new_array(), *ct = NULL;
    int latin1 = 0, rc = 0;
    size_t i;

    if (add(out, "headers", arr) != 0)
        return -1;
    /* httpx decodes all the headers one way: UTF-8 if it can, else latin-1 */
    for (i = 0; i < h->n; i++)
        if (!jarvis_utf8_valid(h->v[i].key, strlen(h->v[i].key)) ||
            !jarvis_utf8_valid(h->v[i].value, h->v[i].value_len))
            latin1 = 1;
    for (i = 0; i < h->n && rc == 0; i++) {
        json_object *e = json_object_new_object();
        rc = json_object_array_add(arr, e) != 0 ? (json_object_put(e), -1) : 0;
        if (rc == 0)
            rc = add(e, "key", text_new(h->v[i].key, strlen(h->v[i].key), latin1));
        if (rc == 0)
            rc = add(e, "value", text_new(h->v[i].value, h->v[i].value_len, latin1));
        if (rc == 0 && strcmp(h->v[i].key, "content-type") == 0)
            ct = text_new(h->v[i].value, h->v[i].value_len, latin1);
    }
    if (rc != 0) {
        json_object_put(ct);
        return -1;
    }
    json_object_object_add(out, "content_type", ct); /* NULL: JSON null */
    return 0;
}

static int build_outputs(jarvis_ctx *ctx, const struct wf_response *res, json_object **outputs)
{
    struct wf_pairs headers = {0};
    json_object *out = json_object_new_object();
    char *b64 = wf_base64(res->body, res->body_len);
    int rc = out != NULL && b64 != NULL ? 0 : -1;

    if (rc == 0)
        rc = add(out, "status_code", json_object_new_int((int)res->status));
    if (rc == 0)
        rc = merge_headers(&res->headers, &headers);
    if (rc == 0)
        rc = add_headers(out, &headers);
    if (rc == 0)
        rc = add(out, "content_base64", json_object_new_string(b64));
    if (rc == 0)
        rc = add(out, "final_url", text_new(res->final_url, strlen(res->final_url), 0));
    if (rc == 0)
        rc = add(out, "content_bytes", json_object_new_int64((int64_t)res->body_len));
    wf_pairs_cleanup(&headers);
    free(b64);
    if (rc != 0) {
        json_object_put(out);
        return jarvis_ctx_fail(ctx, "out of memory");
    }
    *outputs = out;
    return JARVIS_OK;
}

/* ---- the node ---- */

static int web_fetch_handler(jarvis_ctx *ctx, json_object *inputs, json_object **outputs)
{
    struct wf_request req;
    struct wf_response res;
    int rc;

    memset(&req, 0, sizeof req);
    memset(&res, 0, sizeof res);
    rc = parse_inputs(ctx, inputs, &req);
    if (rc == JARVIS_OK)
        rc = wf_http_fetch(ctx, &req, &res);
    if (rc == JARVIS_OK)
        rc = build_outputs(ctx, &res, outputs);
    wf_response_cleanup(&res);
    wf_request_cleanup(&req);
    return rc;
}

#define WF_KV_SCHEMA                                                                               \
    "{\"type\":\"object\",\"properties\":{\"key\":{\"type\":\"string\"},\"value\":{\"type\":"      \
    "\"string\"}},\"required\":[\"key\",\"value\"],\"additionalProperties\":false}"

const jarvis_node core_node_web_fetch = {
    .node_type_id = "jarvis.web.fetch",
    .version = "0.3.8",
    .description = "Fetch a URL over HTTP(S) and return response bytes (base64).",
    .input_schema =
        "{\"type\":\"object\",\"properties\":{"
        "\"url\":{\"type\":\"string\",\"minLength\":1,"
        "\"description\":\"Absolute http or https URL with a host.\"},"
        "\"method\":{\"type\":[\"string\",\"null\"],\"description\":"
        "\"GET (default), POST, PUT, PATCH, DELETE, HEAD or OPTIONS, in any case.\"},"
        "\"headers\":{\"type\":[\"array\",\"null\"],\"items\":" WF_KV_SCHEMA ","
        "\"description\":\"Request headers.\"},"
        "\"params\":{\"type\":[\"array\",\"null\"],\"items\":" WF_KV_SCHEMA ","
        "\"description\":\"Query parameters merged into the URL.\"},"
        "\"json\":{\"type\":[\"string\",\"null\"],\"description\":"
        "\"JSON text sent as the body, as application/json; not with body.\"},"
        "\"body\":{\"type\":[\"string\",\"null\"],\"description\":"
        "\"Body sent as is (UTF-8); not with json.\"},"
        "\"timeout_seconds\":{\"type\":[\"number\",\"null\"],\"exclusiveMinimum\":0,"
        "\"description\":\"Whole-request timeout; default JARVIS_ATOMIC_HTTP_TIMEOUT_SECONDS "
        "or 10, at most JARVIS_ATOMIC_HTTP_MAX_TIMEOUT_SECONDS or 60.\"},"
        "\"max_bytes\":{\"type\":[\"integer\",\"null\"],\"minimum\":1,\"description\":"
        "\"Largest response body accepted (decoded); default and ceiling "
        "JARVIS_ATOMIC_HTTP_MAX_BYTES or 1048576.\"},"
        "\"follow_redirects\":{\"type\":[\"boolean\",\"null\"],\"description\":"
        "\"Follow up to 10 redirects; default false.\"}},"
        "\"required\":[\"url\"],\"additionalProperties\":false}",
    .output_schema =
        "{\"type\":\"object\",\"properties\":{"
        "\"status_code\":{\"type\":\"integer\"},"
        "\"headers\":{\"type\":\"array\",\"items\":" WF_KV_SCHEMA "},"
        "\"content_type\":{\"type\":[\"string\",\"null\"]},"
        "\"content_base64\":{\"type\":\"string\"},"
        "\"final_url\":{\"type\":\"string\"},"
        "\"content_bytes\":{\"type\":\"integer\",\"minimum\":0}},"
        "\"required\":[\"status_code\",\"headers\",\"content_type\",\"content_base64\","
        "\"final_url\",\"content_bytes\"],\"additionalProperties\":false}",
    .side_effect = JARVIS_SIDE_EFFECT_WRITE,
    .handler = web_fetch_handler,
};
