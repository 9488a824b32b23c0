/*
 * web_fetch_http.c - runs a jarvis.web.fetch request with libcurl. Each
 * call has a multi handle of its own (connections kept between hops) and a
 * share handle (cookies kept between hops); each hop an easy handle, driven
 * through the multi so that curl_multi_poll also watches the run's wake fd:
 * a cancel or the run's deadline ends the transfer at once, and the
 * request's own timeout bounds the whole call (every hop together).
 *
 * Redirects are followed here, never by curl (CURLOPT_FOLLOWLOCATION stays
 * off), so every hop's URL passes the scheme and host checks of the first.
 * Method, body and headers change between hops as httpx changes them: 303
 * and 302 turn anything but HEAD into a body-less GET, 301 turns POST into
 * one, 307/308 keep both; a Cookie header given is never carried over (the
 * cookie engine, on for the call, sends what the hops set instead),
 * Authorization and Host only to the same origin (Authorization also to its
 * https upgrade).
 *
 * Where it connects is judged by the address policy (web_fetch_policy.c) in
 * curl's open-socket callback: the address and port curl is about to
 * connect to, after its own name resolution, for every connection of every
 * hop, so no spelling of a host, /etc/hosts alias or redirect gets around
 * it, and no socket exists for a refused address. A proxy is used only when
 * JARVIS_ATOMIC_HTTP_PROXY names one, never from the ambient http_proxy,
 * https_proxy, all_proxy or no_proxy; with a proxy the socket goes to the
 * proxy, so the policy can judge only the proxy's address (and the literal
 * addresses of URLs, which wf_url_check judges): the proxy must enforce its
 * own rules for names.
 *
 * https is verified against libcurl's CA bundle (Debian's ca-certificates),
 * or only against the PEM file JARVIS_ATOMIC_HTTP_CA_FILE names (a private
 * CA; the e2e tests' own). An unreadable file fails every https hop with
 * curl's "error setting certificate file".
 *
 * Bodies are counted decoded (gzip, deflate, br, zstd), as curl hands them
 * over in bounded pieces: max_bytes bounds what is held, and a response that
 * inflates more than WF_MAX_DECODE_RATIO times is stopped early.
 */
#include "web_fetch.h"
#include "web_fetch_policy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

/* Most bytes of header lines kept for one response. */
#define WF_MAX_HEADER_BYTES (256 * 1024)
/* Longest single wait in the transfer loop; the loop re-checks the time. */
#define WF_MAX_POLL_MS 1000
#define WF_USER_AGENT "jarvis-atomic-nodes/0.3.8"
/* Most decoded bytes per byte received once WF_DECODE_RATIO_SLACK decoded
 * bytes are in: text rarely inflates 20 times, a compression bomb
 * (gzip of zeros) about 1000 times. max_bytes bounds memory anyway; this
 * stops the CPU spent inflating a bomb well before it. */
#define WF_MAX_DECODE_RATIO 100
#define WF_DECODE_RATIO_SLACK (1024 * 1024)

struct fetch {
    jarvis_ctx *ctx;
    struct wf_request *req;
    struct wf_response *res;
    CURLM *multi;  /* keeps the connections between hops */
    CURLSH *share; /* keeps the cookies between hops */
    CURL *easy;    /* the current hop's */
    int attached;  /* easy is in multi */
    struct curl_slist *hdrs;
    long long deadline_ms; /* CLOCK_MONOTONIC: end of the request's timeout */
    /* the current hop */
    const char *method;
    const char *body;
    size_t body_len;
    int body_is_json;
    /* what the callbacks saw of the current response */
    size_t header_bytes, body_cap;
    int headers_done, too_large, headers_too_large, oom, bomb;
    char errbuf[CURL_ERROR_SIZE];
    /* where the call may connect, and why a connection was refused */
    struct wf_policy policy;
    const char *proxy;   /* JARVIS_ATOMIC_HTTP_PROXY, or NULL */
    const char *ca_file; /* JARVIS_ATOMIC_HTTP_CA_FILE, or NULL: curl's bundle */
    int refused;
    char why[WF_POLICY_WHY_LEN];
};

static long long mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int is_ows(char c)
{
    return c == ' ' || c == '\t';
}

void wf_response_cleanup(struct wf_response *res)
{
    free(res->final_url);
    free(res->body);
    wf_pairs_cleanup(&res->headers);
    memset(res, 0, sizeof *res);
}

/* ---- curl callbacks ---- */

static size_t on_body(char *data, size_t size, size_t nmemb, void *arg)
{
    struct fetch *f = arg;
    struct wf_response *res = f->res;
    size_t len = size * nmemb, max = (size_t)f->req->max_bytes;

    if (len > max - res->body_len) {
        f->too_large = 1;
        return 0; /* aborts the transfer: nothing past max_bytes is read */
    }
    if (res->body_len + len > WF_DECODE_RATIO_SLACK) {
        curl_off_t raw = 0; /* body bytes as received, before decoding */
        if (curl_easy_getinfo(f->easy, CURLINFO_SIZE_DOWNLOAD_T, &raw) == CURLE_OK &&
            (curl_off_t)(res->body_len + len) / WF_MAX_DECODE_RATIO > raw) {
            f->bomb = 1;
            return 0;
        }
    }
    if (res->body_len + len > f->body_cap) {
        size_t cap = f->body_cap ? f->body_cap * 2 : 16384;
        unsigned char *b;
        if (cap < res->body_len + len)
            cap = res->body_len + len;
        if (cap > max)
            cap = max;
        b = realloc(res->body, cap);
        if (b == NULL) {
            f->oom = 1;
            return 0;
        }
        res->body = b;
        f->body_cap = cap;
    }
    memcpy(res->body + res->body_len, data, len);
    res->body_len += len;
    return len;
}

/* Appends " " and text to the last header's value (an obs-fold line). */
static int fold_into_last(struct wf_pairs *h, const char *text, size_t len)
{
    struct wf_pair *last = &h->v[h->n - 1];
    char *v = realloc(last->value, last->value_len + len + 2);

    if (v == NULL)
        return -1;
    v[last->value_len] = ' ';
    memcpy(v + last->value_len + 1, text, len);
    last->value_len += len + 1;
    v[last->value_len] = '\0';
    last->value = v;
    return 0;
}

/* Keeps the header lines of the latest response (a status line starts a new
 * one: 1xx answers come before the final one); trailers are left out. */
static size_t on_header(char *line, size_t size, size_t nmemb, void *arg)
{
    struct fetch *f = arg;
    struct wf_pairs *h = &f->res->headers;
    size_t all = size * nmemb, len = all, klen;
    const char *colon, *v, *end;

    while (len > 0 && (line[len - 1] == '\r' || line[len - 1] == '\n'))
        len--;
    if (len >= 5 && memcmp(line, "HTTP/", 5) == 0) {
        wf_pairs_cleanup(h);
        f->header_bytes = all;
        f->headers_done = 0;
        return all;
    }
    f->header_bytes += all;
    if (f->header_bytes > WF_MAX_HEADER_BYTES) {
        f->headers_too_large = 1;
        return 0;
    }
    if (len == 0) {
        f->headers_done = 1;
        return all;
    }
    if (f->headers_done)
        return all;
    end = line + len;
    if (is_ows(line[0])) {
        for (v = line; v < end && is_ows(*v); v++)
            ;
        if (h->n > 0 && fold_into_last(h, v, (size_t)(end - v)) != 0)
            goto oom;
        return all;
    }
    colon = memchr(line, ':', len);
    if (colon == NULL)
        return all;
    klen = (size_t)(colon - line);
    for (v = colon + 1; v < end && is_ows(*v); v++)
        ;
    while (end > v && is_ows(end[-1]))
        end--;
    if (wf_pairs_add(h, line, klen, v, (size_t)(end - v)) != 0)
        goto oom;
    return all;
oom:
    f->oom = 1;
    return 0;
}

/* Opens the socket of each connection curl makes, if the policy lets the
 * call connect to that address and port; a refusal leaves curl nothing to
 * connect with (it tries the next address, then fails the hop). */
static curl_socket_t on_open_socket(void *arg, curlsocktype purpose, struct curl_sockaddr *addr)
{
    struct fetch *f = arg;
    unsigned char a[16];
    int port, fd;

    if (purpose != CURLSOCKTYPE_IPCXN || wf_addr_from_sockaddr(&addr->addr, a, &port) != 0) {
        f->refused = 1;
        snprintf(f->why, sizeof f->why, "not an IPv4 or IPv6 connection");
        return CURL_SOCKET_BAD;
    }
    if (wf_policy_check(&f->policy, a, port, f->why, sizeof f->why) != 0) {
        f->refused = 1;
        jarvis_ctx_log(f->ctx, JARVIS_LOG_WARN, "web.fetch refused a connection: %s", f->why);
        return CURL_SOCKET_BAD;
    }
    fd = socket(addr->family, addr->socktype | SOCK_CLOEXEC, addr->protocol);
    return fd >= 0 ? fd : CURL_SOCKET_BAD;
}

/* ---- one hop ---- */

static int header_given(const struct wf_pairs *p, const char *name)
{
    size_t i;

    for (i = 0; i < p->n; i++)
        if (!p->v[i].dropped && strcasecmp(p->v[i].key, name) == 0)
            return 1;
    return 0;
}

static int slist_add(struct curl_slist **l, const char *line)
{
    struct curl_slist *n = curl_slist_append(*l, line);

    if (n == NULL)
        return -1;
    *l = n;
    return 0;
}

/* The request headers of this hop, as curl takes them. */
static int build_headers(struct fetch *f)
{
    const struct wf_pairs *p = &f->req->headers;
    size_t i;

    curl_slist_free_all(f->hdrs);
    f->hdrs = NULL;
    for (i = 0; i < p->n; i++) {
        size_t n = strlen(p->v[i].key) + p->v[i].value_len + 3;
        char *line;
        int rc;
        if (p->v[i].dropped)
            continue;
        line = malloc(n);
        if (line == NULL)
            return -1;
        /* "Key;" is how curl sends a header with an empty value */
        if (p->v[i].value_len == 0)
            snprintf(line, n, "%s;", p->v[i].key);
        else
            snprintf(line, n, "%s: %s", p->v[i].key, p->v[i].value);
        rc = slist_add(&f->hdrs, line);
        free(line);
        if (rc != 0)
            return -1;
    }
    if (!header_given(p, "Content-Type") &&
        slist_add(&f->hdrs, f->body != NULL && f->body_is_json
                                ? "Content-Type: application/json"
                                : "Content-Type:") != 0) /* no form type on a raw body */
        return -1;
    return slist_add(&f->hdrs, "Expect:"); /* httpx never waits for 100-continue */
}

#define SET(opt, val)                                                                              \
    do {                                                                                           \
        if (c == CURLE_OK)                                                                         \
            c = curl_easy_setopt(e, opt, val);                                                     \
    } while (0)

/* How this hop asks: HEAD has no body; POST, PUT and PATCH always send one
 * (maybe empty, with Content-Length: 0, as httpx); others only if given. */
static CURLcode set_method(struct fetch *f)
{
    CURL *e = f->easy;
    CURLcode c = CURLE_OK;
    int payload = f->body != NULL || strcmp(f->method, "POST") == 0 ||
                  strcmp(f->method, "PUT") == 0 || strcmp(f->method, "PATCH") == 0;

    if (strcmp(f->method, "HEAD") == 0) {
        SET(CURLOPT_NOBODY, 1L);
        return c;
    }
    if (!payload && strcmp(f->method, "GET") == 0) {
        SET(CURLOPT_HTTPGET, 1L);
        return c;
    }
    if (payload) {
        SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(f->body != NULL ? f->body_len : 0));
        SET(CURLOPT_POSTFIELDS, f->body != NULL ? f->body : "");
    }
    if (strcmp(f->method, "POST") != 0)
        SET(CURLOPT_CUSTOMREQUEST, f->method);
    return c;
}

static int setup_hop(struct fetch *f)
{
    CURL *e;
    CURLcode c = CURLE_OK;
    long long left = f->deadline_ms - mono_ms();

    /* a new handle per hop: curl_easy_reset would leak the cookie file list */
    curl_easy_cleanup(f->easy);
    e = f->easy = curl_easy_init();
    if (e == NULL)
        return jarvis_ctx_fail(f->ctx, "out of memory");
    f->header_bytes = f->body_cap = 0;
    f->headers_done = f->too_large = f->headers_too_large = f->oom = f->bomb = 0;
    f->refused = 0;
    f->errbuf[0] = '\0';
    free(f->res->body);
    f->res->body = NULL;
    f->res->body_len = 0;
    wf_pairs_cleanup(&f->res->headers);
    if (build_headers(f) != 0)
        return jarvis_ctx_fail(f->ctx, "out of memory");
    SET(CURLOPT_URL, f->res->final_url);
    SET(CURLOPT_PROTOCOLS_STR, "http,https");
    SET(CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    SET(CURLOPT_FOLLOWLOCATION, 0L);
    SET(CURLOPT_OPENSOCKETFUNCTION, on_open_socket);
    SET(CURLOPT_OPENSOCKETDATA, f);
    /* "" turns off the ambient *_proxy variables; NOPROXY "" the no_proxy one */
    SET(CURLOPT_PROXY, f->proxy != NULL ? f->proxy : "");
    SET(CURLOPT_NOPROXY, "");
    if (f->ca_file != NULL) {
        /* this file alone: not the default CA folder beside it */
        SET(CURLOPT_CAINFO, f->ca_file);
        SET(CURLOPT_CAPATH, NULL);
    }
    SET(CURLOPT_NOSIGNAL, 1L);
#if LIBCURL_VERSION_NUM >= 0x075700
    SET(CURLOPT_QUICK_EXIT, 1L); /* a cancel during DNS must not wait for the resolver */
#endif
    SET(CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    SET(CURLOPT_ACCEPT_ENCODING, ""); /* decoded, as httpx: max_bytes counts decoded bytes */
    SET(CURLOPT_SHARE, f->share);
    SET(CURLOPT_COOKIEFILE, ""); /* the cookie engine, on an empty jar */
    SET(CURLOPT_SUPPRESS_CONNECT_HEADERS, 1L);
    SET(CURLOPT_USERAGENT, WF_USER_AGENT);
    SET(CURLOPT_HTTPHEADER, f->hdrs);
    SET(CURLOPT_WRITEFUNCTION, on_body);
    SET(CURLOPT_WRITEDATA, f);
    SET(CURLOPT_HEADERFUNCTION, on_header);
    SET(CURLOPT_HEADERDATA, f);
    SET(CURLOPT_ERRORBUFFER, f->errbuf);
    SET(CURLOPT_TIMEOUT_MS, left > 1 ? (long)left : 1L); /* a backstop: the loop checks too */
    /* a small max_bytes reads little past it from the socket */
    SET(CURLOPT_BUFFERSIZE, f->req->max_bytes >= CURL_MAX_WRITE_SIZE ? (long)CURL_MAX_WRITE_SIZE
                            : f->req->max_bytes < 1023               ? 1024L
                                                                     : (long)f->req->max_bytes + 1);
    if (c == CURLE_OK)
        c = set_method(f);
    if (c != CURLE_OK)
        return jarvis_ctx_fail(f->ctx, "curl setup: %s", curl_easy_strerror(c));
    return JARVIS_OK;
}

static int timed_out(struct fetch *f)
{
    return jarvis_ctx_fail(f->ctx, "timed out after %g s", f->req->timeout_secs);
}

/* Drives the hop until curl is done with it; *result is curl's verdict. */
static int transfer(struct fetch *f, CURLcode *result)
{
    struct curl_waitfd wake = {jarvis_ctx_wake_fd(f->ctx), CURL_WAIT_POLLIN, 0};
    int running = 1;

    if (curl_multi_add_handle(f->multi, f->easy) != CURLM_OK)
        return jarvis_ctx_fail(f->ctx, "curl_multi_add_handle failed");
    f->attached = 1;
    for (;;) {
        long long now, wait, left;
        CURLMsg *msg;
        CURLMcode mc;
        int rc = jarvis_ctx_stop_reason(f->ctx), queued;

        if (rc != JARVIS_OK)
            return rc;
        now = mono_ms();
        if (now >= f->deadline_ms)
            return timed_out(f);
        mc = curl_multi_perform(f->multi, &running);
        if (mc != CURLM_OK)
            return jarvis_ctx_fail(f->ctx, "curl_multi_perform: %s", curl_multi_strerror(mc));
        while ((msg = curl_multi_info_read(f->multi, &queued)) != NULL) {
            if (msg->msg == CURLMSG_DONE && msg->easy_handle == f->easy) {
                *result = msg->data.result;
                return JARVIS_OK;
            }
        }
        wait = f->deadline_ms - now;
        left = jarvis_ctx_remaining_ms(f->ctx);
        if (left >= 0 && left < wait)
            wait = left;
        if (wait > WF_MAX_POLL_MS)
            wait = WF_MAX_POLL_MS;
        wake.revents = 0;
        mc = curl_multi_poll(f->multi, &wake, wake.fd >= 0 ? 1 : 0, (int)wait, NULL);
        if (mc != CURLM_OK)
            return jarvis_ctx_fail(f->ctx, "curl_multi_poll: %s", curl_multi_strerror(mc));
        /* A raised wake fd is read by jarvis_ctx_stop_reason next round. */
    }
}

/* Turns curl's verdict on the hop into a status. */
static int hop_result(struct fetch *f, CURLcode c, int hops)
{
    /* a refused address fails the connect (unless another address of the
     * name was allowed and answered); other failures keep curl's reason */
    if (f->refused && c == CURLE_COULDNT_CONNECT)
        return jarvis_ctx_fail_code(f->ctx, WF_DENIED_CODE, WF_DENIED_MESSAGE,
                                    "%s: connection refused by the address policy: %s",
                                    hops == 0 ? "url" : "redirect", f->why);
    if (f->bomb)
        return jarvis_ctx_fail(f->ctx, "response decodes to over %d times its size",
                               WF_MAX_DECODE_RATIO);
    if (f->too_large)
        return jarvis_ctx_fail(f->ctx, "response body exceeds max_bytes (%lld)", f->req->max_bytes);
    if (f->headers_too_large)
        return jarvis_ctx_fail(f->ctx, "response headers exceed %d bytes", WF_MAX_HEADER_BYTES);
    if (f->oom)
        return jarvis_ctx_fail(f->ctx, "out of memory");
    if (c == CURLE_OPERATION_TIMEDOUT)
        return timed_out(f);
    if (c != CURLE_OK)
        return jarvis_ctx_fail(f->ctx, "request failed: %s",
                               f->errbuf[0] ? f->errbuf : curl_easy_strerror(c));
    if (curl_easy_getinfo(f->easy, CURLINFO_RESPONSE_CODE, &f->res->status) != CURLE_OK)
        return jarvis_ctx_fail(f->ctx, "no status code");
    return JARVIS_OK;
}

/* ---- redirects ---- */

static void drop_header(struct wf_pairs *p, const char *name)
{
    size_t i;

    for (i = 0; i < p->n; i++)
        if (strcasecmp(p->v[i].key, name) == 0)
            p->v[i].dropped = 1;
}

/* Moves f to the hop at `next` (absolute, checked), after a `status`. */
static int redirect_to(struct fetch *f, const char *next, long status)
{
    struct wf_origin from, to;
    const char *method = f->method;
    char *url;

    if (wf_url_origin(f->res->final_url, &from) != 0 || wf_url_origin(next, &to) != 0)
        return jarvis_ctx_fail(f->ctx, "redirect: not a valid URL");
    if (strcmp(from.scheme, to.scheme) != 0 || strcmp(from.host, to.host) != 0 ||
        strcmp(from.port, to.port) != 0) {
        int upgrade = strcmp(from.host, to.host) == 0 && strcmp(from.scheme, "http") == 0 &&
                      strcmp(from.port, "80") == 0 && strcmp(to.scheme, "https") == 0 &&
                      strcmp(to.port, "443") == 0;
        drop_header(&f->req->headers, "Host");
        if (!upgrade)
            drop_header(&f->req->headers, "Authorization");
    }
    drop_header(&f->req->headers, "Cookie");
    if ((status == 303 || status == 302) && strcmp(method, "HEAD") != 0)
        method = "GET";
    else if (status == 301 && strcmp(method, "POST") == 0)
        method = "GET";
    if (strcmp(method, f->method) != 0) { /* only ever to GET: the body goes */
        f->method = method;
        f->body = NULL;
        f->body_len = 0;
        f->body_is_json = 0;
    }
    url = strdup(next);
    if (url == NULL)
        return jarvis_ctx_fail(f->ctx, "out of memory");
    free(f->res->final_url);
    f->res->final_url = url;
    return JARVIS_OK;
}

/* JARVIS_OK with *next set when the hop's answer is a redirect to follow
 * (*next NULL when it is the final answer). */
static int next_hop(struct fetch *f, int hops, char **next)
{
    long s = f->res->status;
    char *loc = NULL;
    int rc;

    *next = NULL;
    if (!f->req->follow_redirects || !(s == 301 || s == 302 || s == 303 || s == 307 || s == 308))
        return JARVIS_OK;
    if (curl_easy_getinfo(f->easy, CURLINFO_REDIRECT_URL, &loc) != CURLE_OK || loc == NULL)
        return JARVIS_OK; /* no Location: this is the answer, as httpx has it */
    if (hops == WF_MAX_REDIRECTS)
        return jarvis_ctx_fail(f->ctx, "more than %d redirects", WF_MAX_REDIRECTS);
    rc = wf_url_check(f->ctx, "redirect", loc, NULL);
    if (rc != JARVIS_OK)
        return rc;
    *next = strdup(loc); /* loc belongs to this hop's easy handle */
    return *next != NULL ? JARVIS_OK : jarvis_ctx_fail(f->ctx, "out of memory");
}

/* The variable's value, or NULL when it is unset or empty. */
static const char *env_value(const char *name)
{
    const char *v = getenv(name);

    return v != NULL && v[0] != '\0' ? v : NULL;
}

int wf_http_fetch(jarvis_ctx *ctx, struct wf_request *req, struct wf_response *res)
{
    struct fetch f;
    int rc, hops;

    memset(res, 0, sizeof *res);
    memset(&f, 0, sizeof f);
    f.ctx = ctx;
    f.req = req;
    f.res = res;
    f.deadline_ms = mono_ms() + req->timeout_ms;
    f.method = req->method;
    f.body = strcmp(req->method, "HEAD") == 0 ? NULL : req->body;
    f.body_len = f.body != NULL ? req->body_len : 0;
    f.body_is_json = req->body_is_json;
    f.proxy = env_value("JARVIS_ATOMIC_HTTP_PROXY");
    f.ca_file = env_value("JARVIS_ATOMIC_HTTP_CA_FILE");
    /* read once per call: every hop of it is judged by the same rules */
    if (wf_policy_load(&f.policy, f.why, sizeof f.why) != 0) {
        rc = jarvis_ctx_fail(ctx, "%s", f.why);
        goto out;
    }
    res->final_url = strdup(req->url);
    f.multi = curl_multi_init();
    f.share = curl_share_init();
    if (res->final_url == NULL || f.multi == NULL || f.share == NULL ||
        curl_share_setopt(f.share, CURLSHOPT_SHARE, CURL_LOCK_DATA_COOKIE) != CURLSHE_OK) {
        rc = jarvis_ctx_fail(ctx, "out of memory");
        goto out;
    }
    for (hops = 0;; hops++) {
        CURLcode c = CURLE_OK;
        char *next = NULL;

        rc = setup_hop(&f);
        if (rc == JARVIS_OK)
            rc = transfer(&f, &c);
        if (f.attached) {
            curl_multi_remove_handle(f.multi, f.easy);
            f.attached = 0;
        }
        if (rc == JARVIS_OK)
            rc = hop_result(&f, c, hops);
        if (rc == JARVIS_OK)
            rc = next_hop(&f, hops, &next);
        if (rc != JARVIS_OK || next == NULL)
            break;
        rc = redirect_to(&f, next, res->status);
        free(next);
        if (rc != JARVIS_OK)
            break;
    }
out:
    if (f.attached)
        curl_multi_remove_handle(f.multi, f.easy);
    curl_easy_cleanup(f.easy);
    curl_multi_cleanup(f.multi);
    curl_share_cleanup(f.share);
    curl_slist_free_all(f.hdrs);
    return rc;
}
