/*
 * web_fetch_url.c - the URLs of jarvis.web.fetch: the scheme and host checks
 * every hop passes (JARVIS_ATOMIC_HTTP_ALLOWED_HOSTS / _BLOCKED_HOSTS, read
 * from the environment at each check), the merge of params into a query as
 * httpx merges them, and the origin of a URL for redirects.
 *
 * A host that is a numeric address, in any spelling ("127.1", "0x7f000001",
 * "[::ffff:127.0.0.1]"), is also judged here by the address policy
 * (web_fetch_policy.c) with the URL's port: an early, clear refusal, and the
 * only check of the destination when a proxy is configured. The binding
 * check is the one on the socket itself (web_fetch_http.c), which also
 * covers names.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "jarvis/util.h"
#include "web_fetch.h"
#include "web_fetch_policy.h"

static char ascii_lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

static int is_ows(char c)
{
    return c == ' ' || c == '\t';
}

/* ---- URL and host checks ---- */

/* 1 if the comma list holds host (compared case-insensitively, items
 * trimmed); *any set when the list has a non-empty item. */
static int host_listed(const char *list, const char *host, int *any)
{
    size_t hlen = strlen(host);
    const char *p = list;

    *any = 0;
    while (p != NULL && *p != '\0') {
        const char *end = strchr(p, ','), *q;
        if (end == NULL)
            end = p + strlen(p);
        q = end;
        while (p < q && (is_ows(*p) || *p == '\n' || *p == '\r'))
            p++;
        while (q > p && (is_ows(q[-1]) || q[-1] == '\n' || q[-1] == '\r'))
            q--;
        if (q > p)
            *any = 1;
        if ((size_t)(q - p) == hlen && strncasecmp(p, host, hlen) == 0)
            return 1;
        p = *end != '\0' ? end + 1 : end;
    }
    return 0;
}

static int host_permitted(jarvis_ctx *ctx, const char *what, const char *host)
{
    const char *allowed = getenv("JARVIS_ATOMIC_HTTP_ALLOWED_HOSTS");
    const char *blocked = getenv("JARVIS_ATOMIC_HTTP_BLOCKED_HOSTS");
    int any;

    if (!host_listed(allowed, host, &any) && any)
        return jarvis_ctx_fail(ctx, "%s: host %s is not in JARVIS_ATOMIC_HTTP_ALLOWED_HOSTS", what,
                               host);
    if (host_listed(blocked, host, &any))
        return jarvis_ctx_fail(ctx, "%s: host %s is blocked by JARVIS_ATOMIC_HTTP_BLOCKED_HOSTS",
                               what, host);
    return JARVIS_OK;
}

/* Length of url's scheme when "scheme://" starts it and is followed by an
 * authority (curl would read "http:///x" or "http:/x" as host "x"), else 0. */
static size_t scheme_len(const char *url, int *has_authority)
{
    size_t n = 0;
    char c;

    *has_authority = 0;
    while ((c = url[n]) != '\0' &&
           ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
            (n > 0 && ((c >= '0' && c <= '9') || c == '+' || c == '-' || c == '.'))))
        n++;
    if (n == 0 || url[n] != ':')
        return 0;
    if (url[n + 1] == '/' && url[n + 2] == '/')
        *has_authority = strchr("/?#", url[n + 3]) == NULL; /* "" is in it too */
    return n;
}

/* 1 if the host (or port) in authority, the URL after "scheme://", holds
 * a '%'. curl decodes a percent-encoded host and only then reads it:
 * "93.184.26%326" comes out as "93.184.2626", which it does not rewrite to
 * the address it connects to (93.184.10.66) as it would the plain
 * spelling, so the host lists would judge another name than the one used
 * (found by fuzz_url: the accepted URL did not parse back the same). An
 * IPv6 zone ("[fe80::1%25eth0]") is refused with them. */
static int host_percent_encoded(const char *authority)
{
    size_t end = strcspn(authority, "/?#");
    const char *at = NULL, *p;

    for (p = authority; p < authority + end; p++)
        if (*p == '@')
            at = p; /* the host starts after the last '@' */
    p = at != NULL ? at + 1 : authority;
    return memchr(p, '%', (size_t)(authority + end - p)) != NULL;
}

/* The policy's verdict on host when it is a numeric address; names pass
 * (their addresses are judged at connect time). */
static int literal_permitted(jarvis_ctx *ctx, const char *what, CURLU *u, const char *host)
{
    struct wf_policy policy;
    unsigned char a[16];
    char why[WF_POLICY_WHY_LEN], *port_s = NULL;
    int port, rc = JARVIS_OK;

    if (wf_addr_parse_host(host, a) != 0)
        return JARVIS_OK;
    if (curl_url_get(u, CURLUPART_PORT, &port_s, CURLU_DEFAULT_PORT) != CURLUE_OK)
        return jarvis_ctx_fail(ctx, "%s: no port", what);
    port = atoi(port_s);
    if (wf_policy_load(&policy, why, sizeof why) != 0)
        rc = jarvis_ctx_fail(ctx, "%s", why);
    else if (wf_policy_check(&policy, a, port, why, sizeof why) != 0)
        rc = jarvis_ctx_fail_code(ctx, WF_DENIED_CODE, WF_DENIED_MESSAGE,
                                  "%s: refused by the address policy: %s", what, why);
    curl_free(port_s);
    return rc;
}

int wf_url_check(jarvis_ctx *ctx, const char *what, const char *url, CURLU **out)
{
    CURLU *u = NULL;
    CURLUcode uc;
    char *host = NULL, *h;
    size_t n, len;
    int has_authority, rc;

    n = scheme_len(url, &has_authority);
    if (!((n == 4 && strncasecmp(url, "http", 4) == 0) ||
          (n == 5 && strncasecmp(url, "https", 5) == 0)))
        return jarvis_ctx_fail(ctx, "%s: scheme must be http or https", what);
    if (!has_authority)
        return jarvis_ctx_fail(ctx, "%s: must include a host", what);
    if (host_percent_encoded(url + n + 3))
        return jarvis_ctx_fail(ctx, "%s: host must not be percent-encoded", what);
    u = curl_url();
    if (u == NULL)
        return jarvis_ctx_fail(ctx, "out of memory");
    uc = curl_url_set(u, CURLUPART_URL, url, CURLU_ALLOW_SPACE | CURLU_URLENCODE);
    if (uc == CURLUE_OK)
        uc = curl_url_get(u, CURLUPART_HOST, &host, 0);
    if (uc != CURLUE_OK || host == NULL || host[0] == '\0') {
        rc = jarvis_ctx_fail(ctx, "%s: not a valid URL (%s)", what,
                             uc != CURLUE_OK ? curl_url_strerror(uc) : "no host");
        goto out;
    }
    /* compare as Python's urlparse(...).hostname: lower case, no brackets */
    h = host;
    len = strlen(h);
    if (len >= 2 && h[0] == '[' && h[len - 1] == ']') {
        h[len - 1] = '\0';
        h++;
    }
    for (n = 0; h[n] != '\0'; n++)
        h[n] = ascii_lower(h[n]);
    rc = host_permitted(ctx, what, h);
    if (rc == JARVIS_OK)
        rc = literal_permitted(ctx, what, u, h);
out:
    curl_free(host);
    if (rc == JARVIS_OK && out != NULL)
        *out = u;
    else
        curl_url_cleanup(u);
    return rc;
}

int wf_url_origin(const char *url, struct wf_origin *o)
{
    CURLU *u = curl_url();
    char *s = NULL, *h = NULL, *p = NULL;
    int rc = -1;

    if (u != NULL && curl_url_set(u, CURLUPART_URL, url, CURLU_ALLOW_SPACE) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_SCHEME, &s, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_HOST, &h, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_PORT, &p, CURLU_DEFAULT_PORT) == CURLUE_OK &&
        strlen(s) < sizeof o->scheme && strlen(h) < sizeof o->host && strlen(p) < sizeof o->port) {
        size_t i;
        strcpy(o->scheme, s);
        strcpy(o->port, p);
        for (i = 0; h[i] != '\0'; i++)
            o->host[i] = ascii_lower(h[i]);
        o->host[i] = '\0';
        rc = 0;
    }
    curl_free(s);
    curl_free(h);
    curl_free(p);
    curl_url_cleanup(u);
    return rc;
}

/* ---- query strings ---- */

/* Appends src[0..len) encoded as Python's quote_plus. */
static void quote_plus(char *dst, size_t *at, const char *src, size_t len)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t i;

    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char)src[i];
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            c == '_' || c == '.' || c == '-' || c == '~') {
            dst[(*at)++] = (char)c;
        } else if (c == ' ') {
            dst[(*at)++] = '+';
        } else {
            dst[(*at)++] = '%';
            dst[(*at)++] = hex[c >> 4];
            dst[(*at)++] = hex[c & 15];
        }
    }
}

/* Decodes s[0..len) in place as unquote_plus; returns the new length. */
static size_t unquote_plus(char *s, size_t len)
{
    size_t i, o = 0;

    for (i = 0; i < len; i++) {
        if (s[i] == '+') {
            s[o++] = ' ';
        } else if (s[i] == '%' && i + 2 < len && jarvis_hex_value(s[i + 1]) >= 0 &&
                   jarvis_hex_value(s[i + 2]) >= 0) {
            s[o++] = (char)(jarvis_hex_value(s[i + 1]) * 16 + jarvis_hex_value(s[i + 2]));
            i += 2;
        } else {
            s[o++] = s[i];
        }
    }
    return o;
}

/* Splits a raw query into decoded pairs, as parse_qsl(keep_blank_values). */
static int query_pairs(const char *query, struct wf_pairs *out)
{
    const char *p = query;

    while (p != NULL && *p != '\0') {
        const char *end = strchr(p, '&'), *eq;
        char *buf;
        size_t len, klen;
        int rc;
        if (end == NULL)
            end = p + strlen(p);
        len = (size_t)(end - p);
        if (len > 0) {
            buf = malloc(len + 1);
            if (buf == NULL)
                return -1;
            memcpy(buf, p, len);
            buf[len] = '\0';
            eq = memchr(buf, '=', len);
            klen = eq != NULL ? (size_t)(eq - buf) : len;
            len = eq != NULL ? unquote_plus(buf + klen + 1, len - klen - 1) : 0;
            klen = unquote_plus(buf, klen);
            rc = wf_pairs_add(out, buf, klen, eq != NULL ? eq + 1 : "", len);
            free(buf);
            if (rc != 0)
                return -1;
        }
        p = *end != '\0' ? end + 1 : end;
    }
    return 0;
}

static void emit_pair(char *q, size_t *at, const struct wf_pair *e)
{
    if (*at > 0)
        q[(*at)++] = '&';
    quote_plus(q, at, e->key, strlen(e->key));
    q[(*at)++] = '=';
    quote_plus(q, at, e->value, e->value_len);
}

/* The query of `have` merged with params as httpx's QueryParams.merge: keys
 * in first-seen order, a param's value replacing all of its key's values. */
static char *merge_pairs(const struct wf_pairs *have, const struct wf_pairs *params)
{
    size_t i, j, at = 0, size = 1;
    char *q;

    for (i = 0; i < have->n; i++)
        size += 3 * (strlen(have->v[i].key) + have->v[i].value_len) + 2;
    for (i = 0; i < params->n; i++)
        size += 3 * (strlen(params->v[i].key) + params->v[i].value_len) + 2;
    q = malloc(size);
    if (q == NULL)
        return NULL;
    for (i = 0; i < have->n; i++) {
        size_t k = wf_pairs_index(params, have->v[i].key);
        if (wf_pairs_index(have, have->v[i].key) != i)
            continue; /* its key was written with its first value */
        if (k < params->n) {
            emit_pair(q, &at, &params->v[k]);
            continue;
        }
        for (j = i; j < have->n; j++)
            if (strcmp(have->v[j].key, have->v[i].key) == 0)
                emit_pair(q, &at, &have->v[j]);
    }
    for (i = 0; i < params->n; i++)
        if (wf_pairs_index(have, params->v[i].key) == have->n)
            emit_pair(q, &at, &params->v[i]);
    q[at] = '\0';
    return q;
}

char *wf_query_merge(const char *query, const struct wf_pairs *params)
{
    struct wf_pairs have = {0};
    char *merged = NULL;

    if (query_pairs(query, &have) == 0)
        merged = merge_pairs(&have, params);
    wf_pairs_cleanup(&have);
    return merged;
}
