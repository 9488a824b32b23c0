/*
 * web_fetch_text.c - the text helpers of jarvis.web.fetch: key/value lists,
 * the syntax check of the json input, base64 and UTF-8 for the outputs.
 */
#include <stdlib.h>
#include <string.h>

#include "web_fetch.h"

/* ---- pairs ---- */

int wf_pairs_add(struct wf_pairs *p, const char *key, size_t key_len, const char *value,
                 size_t value_len)
{
    struct wf_pair *e;

    if (p->n == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 16;
        struct wf_pair *v = realloc(p->v, cap * sizeof *v);
        if (v == NULL)
            return -1;
        p->v = v;
        p->cap = cap;
    }
    e = &p->v[p->n];
    memset(e, 0, sizeof *e);
    e->key = malloc(key_len + 1);
    e->value = malloc(value_len + 1);
    if (e->key == NULL || e->value == NULL) {
        free(e->key);
        free(e->value);
        return -1;
    }
    memcpy(e->key, key, key_len);
    e->key[key_len] = '\0';
    memcpy(e->value, value, value_len);
    e->value[value_len] = '\0';
    e->value_len = value_len;
    p->n++;
    return 0;
}

void wf_pairs_cleanup(struct wf_pairs *p)
{
    size_t i;

    for (i = 0; i < p->n; i++) {
        free(p->v[i].key);
        free(p->v[i].value);
    }
    free(p->v);
    memset(p, 0, sizeof *p);
}

size_t wf_pairs_index(const struct wf_pairs *p, const char *key)
{
    size_t i;

    for (i = 0; i < p->n; i++)
        if (strcmp(p->v[i].key, key) == 0)
            return i;
    return p->n;
}

int wf_pairs_put(struct wf_pairs *p, const char *key, size_t key_len, const char *value,
                 size_t value_len)
{
    size_t i = wf_pairs_index(p, key);
    struct wf_pair *have;
    char *copy;

    if (i == p->n)
        return wf_pairs_add(p, key, key_len, value, value_len);
    have = &p->v[i];
    copy = malloc(value_len + 1);
    if (copy == NULL)
        return -1;
    memcpy(copy, value, value_len);
    copy[value_len] = '\0';
    free(have->value);
    have->value = copy;
    have->value_len = value_len;
    return 0;
}

/* Deepest nesting accepted in the json input. */
#define WF_MAX_JSON_DEPTH 512

/* ---- JSON text, as Python's json.loads accepts it ---- */

struct jscan {
    const char *p, *end;
    int depth;
};

static void skip_ws(struct jscan *s)
{
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
        s->p++;
}

static int eat(struct jscan *s, const char *lit)
{
    size_t n = strlen(lit);

    if ((size_t)(s->end - s->p) < n || memcmp(s->p, lit, n) != 0)
        return -1;
    s->p += n;
    return 0;
}

static int digits(struct jscan *s)
{
    const char *start = s->p;

    while (s->p < s->end && *s->p >= '0' && *s->p <= '9')
        s->p++;
    return s->p > start ? 0 : -1;
}

static int scan_number(struct jscan *s)
{
    if (s->p < s->end && *s->p == '-')
        s->p++;
    if (s->p < s->end && *s->p == '0')
        s->p++;
    else if (digits(s) != 0)
        return -1;
    if (s->p < s->end && *s->p == '.') {
        s->p++;
        if (digits(s) != 0)
            return -1;
    }
    if (s->p < s->end && (*s->p == 'e' || *s->p == 'E')) {
        s->p++;
        if (s->p < s->end && (*s->p == '+' || *s->p == '-'))
            s->p++;
        return digits(s);
    }
    return 0;
}

static int scan_string(struct jscan *s)
{
    int i;

    s->p++; /* the opening quote */
    while (s->p < s->end) {
        unsigned char c = (unsigned char)*s->p++;
        if (c == '"')
            return 0;
        if (c < 0x20)
            return -1; /* json.loads(strict=True) */
        if (c != '\\')
            continue;
        if (s->p == s->end)
            return -1;
        c = (unsigned char)*s->p++;
        if (c == 'u') {
            for (i = 0; i < 4; i++, s->p++)
                if (s->p == s->end || strchr("0123456789abcdefABCDEF", *s->p) == NULL ||
                    *s->p == '\0')
                    return -1;
        } else if (c == '\0' || strchr("\"\\/bfnrt", c) == NULL) {
            return -1;
        }
    }
    return -1;
}

static int scan_value(struct jscan *s);

/* An object or array; close is '}' or ']'. */
static int scan_container(struct jscan *s, char close)
{
    s->p++;
    skip_ws(s);
    if (s->p < s->end && *s->p == close) {
        s->p++;
        return 0;
    }
    for (;;) {
        if (close == '}') {
            if (s->p == s->end || *s->p != '"' || scan_string(s) != 0)
                return -1;
            skip_ws(s);
            if (eat(s, ":") != 0)
                return -1;
        }
        if (scan_value(s) != 0)
            return -1;
        skip_ws(s);
        if (s->p < s->end && *s->p == close) {
            s->p++;
            return 0;
        }
        if (eat(s, ",") != 0)
            return -1;
        skip_ws(s);
    }
}

static int scan_value(struct jscan *s)
{
    int rc;

    skip_ws(s);
    if (s->p == s->end || ++s->depth > WF_MAX_JSON_DEPTH)
        return -1;
    switch (*s->p) {
    case '{': rc = scan_container(s, '}'); break;
    case '[': rc = scan_container(s, ']'); break;
    case '"': rc = scan_string(s); break;
    case 't': rc = eat(s, "true"); break;
    case 'f': rc = eat(s, "false"); break;
    case 'n': rc = eat(s, "null"); break;
    case 'N': rc = eat(s, "NaN"); break;
    case 'I': rc = eat(s, "Infinity"); break;
    default: rc = eat(s, "-Infinity") == 0 ? 0 : scan_number(s);
    }
    s->depth--;
    return rc;
}

int wf_json_check(const char *text, size_t len, int *is_null)
{
    struct jscan s = {text, text + len, 0};
    const char *start;

    skip_ws(&s);
    start = s.p;
    if (scan_value(&s) != 0)
        return -1;
    *is_null = s.p - start == 4 && memcmp(start, "null", 4) == 0;
    skip_ws(&s);
    return s.p == s.end ? 0 : -1;
}

/* ---- outputs ---- */

char *wf_base64(const unsigned char *p, size_t n)
{
    static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char *out = malloc((n + 2) / 3 * 4 + 1), *o = out;
    size_t i;

    if (out == NULL)
        return NULL;
    for (i = 0; i + 2 < n; i += 3) {
        unsigned long v = (unsigned long)p[i] << 16 | (unsigned long)p[i + 1] << 8 | p[i + 2];
        *o++ = abc[v >> 18];
        *o++ = abc[(v >> 12) & 63];
        *o++ = abc[(v >> 6) & 63];
        *o++ = abc[v & 63];
    }
    if (i < n) {
        unsigned long v =
            (unsigned long)p[i] << 16 | (i + 1 < n ? (unsigned long)p[i + 1] << 8 : 0);
        *o++ = abc[v >> 18];
        *o++ = abc[(v >> 12) & 63];
        *o++ = i + 1 < n ? abc[(v >> 6) & 63] : '=';
        *o++ = '=';
    }
    *o = '\0';
    return out;
}

char *wf_latin1_to_utf8(const char *s, size_t n, size_t *out_len)
{
    char *out = malloc(2 * n + 1);
    size_t i, o = 0;

    if (out == NULL)
        return NULL;
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x80) {
            out[o++] = (char)c;
        } else {
            out[o++] = (char)(0xc0 | c >> 6);
            out[o++] = (char)(0x80 | (c & 0x3f));
        }
    }
    out[o] = '\0';
    *out_len = o;
    return out;
}
