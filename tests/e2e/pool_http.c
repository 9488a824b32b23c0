/*
 * pool_http.c - talking to the harness's pool (see pool.h): HTTP/1.1
 * exchanges with its nginx through libcurl, the assertions on what comes
 * back (status, Content-Type, exact JSON, timestamps, AtomicExecuteResult)
 * and the polling of its app.log for a line.
 */
#include "pool.h"

#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define LOG_WAIT_MS 5000

/* ---- one HTTP exchange ---- */

static size_t on_body(char *data, size_t size, size_t n, void *arg)
{
    struct pool_reply *r = arg;
    char *p = realloc(r->body, r->len + size * n + 1);

    if (p == NULL)
        return 0;
    memcpy(p + r->len, data, size * n);
    r->body = p;
    r->len += size * n;
    r->body[r->len] = '\0';
    return size * n;
}

static void header_value(const char *line, size_t n, const char *name, char *dst, size_t dlen)
{
    size_t k = strlen(name), end = n;

    if (n <= k || strncasecmp(line, name, k) != 0 || line[k] != ':')
        return;
    for (k++; k < n && line[k] == ' '; k++)
        ;
    while (end > k && (line[end - 1] == '\r' || line[end - 1] == '\n' || line[end - 1] == ' '))
        end--;
    snprintf(dst, dlen, "%.*s", (int)(end - k), line + k);
}

static size_t on_header(char *line, size_t size, size_t n, void *arg)
{
    struct pool_reply *r = arg;

    n *= size;
    if (n >= 5 && strncmp(line, "HTTP/", 5) == 0) /* a 100 Continue came first */
        r->ctype[0] = r->allow[0] = '\0';
    header_value(line, n, "Content-Type", r->ctype, sizeof r->ctype);
    header_value(line, n, "Allow", r->allow, sizeof r->allow);
    return n;
}

static int on_debug(CURL *h, curl_infotype type, char *data, size_t n, void *arg)
{
    struct pool_reply *r = arg;
    size_t used = strlen(r->sent);

    (void)h;
    if (type == CURLINFO_HEADER_OUT && used + n < sizeof r->sent) {
        memcpy(r->sent + used, data, n);
        r->sent[used + n] = '\0';
    }
    return 0;
}

/* The method, body and headers of q on h; the header list to free after. */
static struct curl_slist *set_request(CURL *h, const struct pool_req *q, const char *method)
{
    struct curl_slist *hdrs = NULL;
    char ct[160];

    if (strcmp(method, "HEAD") == 0) {
        curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    } else if (q->body != NULL) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, q->body);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(q->body));
        if (strcmp(method, "POST") != 0)
            curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    } else if (strcmp(method, "GET") != 0) {
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    }
    /* "Content-Type:" removes the form type libcurl adds to a POST. */
    snprintf(ct, sizeof ct, "Content-Type:%s%s", q->ctype ? " " : "", q->ctype ? q->ctype : "");
    hdrs = curl_slist_append(hdrs, ct);
    if (q->header != NULL)
        hdrs = curl_slist_append(hdrs, q->header);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    return hdrs;
}

CURLcode pool_http_do(const struct pool_req *q, struct pool_reply *r)
{
    const char *method = q->method ? q->method : "GET";
    struct curl_slist *hdrs;
    char url[1024];
    CURL *h = curl_easy_init();
    CURLcode rc;

    memset(r, 0, sizeof *r);
    if (h == NULL)
        return CURLE_FAILED_INIT;
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", pool_port(), q->path);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_PROXY, "");
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    curl_easy_setopt(h, CURLOPT_PATH_AS_IS, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, 30L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(h, CURLOPT_DEBUGFUNCTION, on_debug);
    curl_easy_setopt(h, CURLOPT_DEBUGDATA, r);
    curl_easy_setopt(h, CURLOPT_VERBOSE, 1L); /* feeds on_debug only */
    hdrs = set_request(h, q, method);
    rc = curl_easy_perform(h);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);
    if (r->len > 0)
        r->json = json_tokener_parse(r->body);
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(h);
    return rc;
}

void pool_http(const struct pool_req *q, struct pool_reply *r)
{
    CURLcode rc = pool_http_do(q, r);

    if (rc != CURLE_OK)
        fprintf(stderr, "\n  %s %s: %s\n", q->method ? q->method : "GET", q->path,
                curl_easy_strerror(rc));
    CU_ASSERT_EQUAL(rc, CURLE_OK);
}

void pool_post(const char *path, const char *ctype, const char *body, struct pool_reply *r)
{
    pool_http(&(struct pool_req){.method = "POST", .path = path, .ctype = ctype, .body = body}, r);
}

void pool_execute(const char *body, struct pool_reply *r)
{
    pool_post(POOL_EXECUTE, POOL_JSON_CT, body, r);
}

void pool_reply_free(struct pool_reply *r)
{
    json_object_put(r->json);
    free(r->body);
    memset(r, 0, sizeof *r);
}

int pool_sent_header(const struct pool_reply *r, const char *name)
{
    size_t k = strlen(name);
    const char *p;

    for (p = r->sent; (p = strchr(p, '\n')) != NULL;)
        if (strncasecmp(++p, name, k) == 0 && p[k] == ':')
            return 1;
    return 0;
}

/* ---- assertions on a reply ---- */

json_object *pool_json_reply(const struct pool_reply *r, long status)
{
    CU_ASSERT_EQUAL(r->status, status);
    CU_ASSERT_STRING_EQUAL(r->ctype, POOL_JSON_CT);
    CU_ASSERT_PTR_NOT_NULL(r->json);
    if (r->status != status)
        fprintf(stderr, "\n  status %ld, wanted %ld, body: %s\n", r->status, status,
                r->body ? r->body : "");
    return r->json;
}

void pool_expect(const struct pool_reply *r, long status, const char *want)
{
    TU_ASSERT_JSON(pool_json_reply(r, status), want);
}

void pool_expect_no_body(const struct pool_reply *r, long status)
{
    CU_ASSERT_EQUAL(r->status, status);
    CU_ASSERT_EQUAL(r->len, 0);
    if (r->status != status)
        fprintf(stderr, "\n  status %ld, wanted %ld, body: %s\n", r->status, status,
                r->body ? r->body : "");
}

int pool_is_timestamp(const char *s)
{
    static const char *const re =
        "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z$";
    regex_t rx;
    int ok;

    if (s == NULL || regcomp(&rx, re, REG_EXTENDED | REG_NOSUB) != 0)
        return 0;
    ok = regexec(&rx, s, 0, NULL, 0) == 0;
    regfree(&rx);
    return ok;
}

void pool_take_ts(json_object *obj, const char *key, char out[32])
{
    json_object *v = NULL;
    const char *s;

    out[0] = '\0';
    if (!json_object_object_get_ex(obj, key, &v)) {
        fprintf(stderr, "\n  no %s in the answer\n", key);
        CU_FAIL("timestamp missing");
        return;
    }
    s = json_object_get_string(v);
    if (!json_object_is_type(v, json_type_string) || !pool_is_timestamp(s))
        fprintf(stderr, "\n  %s is not a timestamp: %s\n", key, s ? s : "null");
    CU_ASSERT_TRUE(json_object_is_type(v, json_type_string) && pool_is_timestamp(s));
    snprintf(out, 32, "%s", s ? s : "");
    json_object_object_del(obj, key);
}

/* Takes outputs.pid (asserted a positive integer) out of a result; 0 if absent. */
static long take_output_pid(json_object *result)
{
    json_object *outputs = NULL, *pid = NULL;
    long v = 0;

    if (json_object_object_get_ex(result, "outputs", &outputs) &&
        json_object_object_get_ex(outputs, "pid", &pid)) {
        CU_ASSERT_TRUE(json_object_is_type(pid, json_type_int) && json_object_get_int64(pid) > 0);
        v = (long)json_object_get_int64(pid);
        json_object_object_del(outputs, "pid");
    }
    CU_ASSERT_TRUE(v > 0);
    return v;
}

void pool_expect_result_ex(const struct pool_reply *r, const char *want, char *started, char *ended,
                           long *pid)
{
    json_object *j = pool_json_reply(r, 200);
    char s[32] = "", e[32] = "";

    if (j != NULL) {
        pool_take_ts(j, "started_at", s);
        pool_take_ts(j, "ended_at", e);
        CU_ASSERT_TRUE(strcmp(s, e) <= 0);
        if (pid != NULL)
            *pid = take_output_pid(j);
        TU_ASSERT_JSON(j, want);
    }
    if (started != NULL)
        memcpy(started, s, sizeof s);
    if (ended != NULL)
        memcpy(ended, e, sizeof e);
}

void pool_expect_result(const struct pool_reply *r, const char *want)
{
    pool_expect_result_ex(r, want, NULL, NULL, NULL);
}

/* ---- the logs ---- */

int pool_has_token(const char *line, const char *tok)
{
    size_t k = strlen(tok);
    const char *p;

    for (p = line; (p = strstr(p, tok)) != NULL; p++)
        if (p > line && p[-1] == ' ' && (tok[k - 1] == '=' || p[k] == ' ' || p[k] == '\0'))
            return 1;
    return 0;
}

/* The last line of text (modified) holding every token, or NULL. */
static const char *last_line_with(char *text, const char *const *tokens)
{
    const char *found = NULL;
    char *line, *nl;

    for (line = text; line != NULL && *line; line = nl ? nl + 1 : NULL) {
        const char *const *t;
        nl = strchr(line, '\n');
        if (nl != NULL)
            *nl = '\0';
        for (t = tokens; *t != NULL && pool_has_token(line, *t); t++)
            ;
        if (*t == NULL)
            found = line;
    }
    return found;
}

int pool_find_log_line(const char *const *tokens, char *out, size_t outlen)
{
    int waited;

    for (waited = 0; waited <= LOG_WAIT_MS; waited += 20) {
        char *text = pool_read_log("app.log", NULL);
        const char *line = text ? last_line_with(text, tokens) : NULL;
        int found = line != NULL;

        if (found && out != NULL)
            snprintf(out, outlen, "%s", line);
        free(text);
        if (found)
            return 1;
        pool_sleep_ms(20);
    }
    fprintf(stderr, "\n  no app.log line with:");
    for (; *tokens != NULL; tokens++)
        fprintf(stderr, " %s", *tokens);
    fprintf(stderr, "\n");
    return 0;
}

int pool_health_runs(int *running, int *queued)
{
    struct pool_reply r;
    json_object *checks = NULL, *d = NULL, *v = NULL;
    int rc = -1;

    if (pool_http_do(&(struct pool_req){.path = "/v1/health"}, &r) == CURLE_OK && r.json &&
        json_object_object_get_ex(r.json, "checks", &checks) &&
        json_object_object_get_ex(json_object_array_get_idx(checks, 0), "details", &d)) {
        *running = json_object_object_get_ex(d, "running", &v) ? json_object_get_int(v) : -1;
        *queued = json_object_object_get_ex(d, "queued", &v) ? json_object_get_int(v) : -1;
        rc = 0;
    }
    pool_reply_free(&r);
    return rc;
}
