/*
 * fuzz_body.c - fuzz target for fcgi-app/body.c: request framing (411, 413,
 * 415, a short body), the strict RFC 8259 lexer in front of json-c, and the
 * 400 answers it builds.
 *
 * Input: byte 0 picks the framing (body limit, Content-Length as sent,
 * missing, short or long), bytes up to the first '\n' within the next 64
 * are the Content-Type, the rest is the body.
 *
 * Invariants beyond "no crash":
 *  - accepted or not, the answer is valid UTF-8 JSON that re-parses equal;
 *  - the status is the one the framing calls for (415 before 411 before 413);
 *  - differential: with a limit far above the input, body_parse_json accepts
 *    exactly the texts an independent recognizer (below: RFC 8259 plus the
 *    service's documented extra rules) accepts, but a top-level null (a
 *    missing body, as the reference reads it);
 *  - an accepted value re-serializes and re-parses to an equal value.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "body.h"
#include "fuzz_util.h"
#include "utf8.h"

/* A body limit far above any input libFuzzer makes (-max_len). */
#define FZ_BIG_LIMIT (1024 * 1024)
/* Largest Content-Type taken from an input. */
#define FZ_MAX_CT 64

/* ---- the oracle: an independent strict JSON recognizer ---- */

struct rec {
    const unsigned char *s;
    size_t n, i;
};

static void rec_ws(struct rec *r)
{
    while (r->i < r->n && strchr(" \t\n\r", r->s[r->i]) != NULL && r->s[r->i] != '\0')
        r->i++;
}

static int rec_hex4(struct rec *r, unsigned *v)
{
    size_t k;

    *v = 0;
    if (r->i + 4 > r->n)
        return 0;
    for (k = 0; k < 4; k++) {
        unsigned char c = r->s[r->i + k];
        unsigned d;
        if (c >= '0' && c <= '9')
            d = c - '0';
        else if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f')
            d = (unsigned)((c | 0x20) - 'a' + 10);
        else
            return 0;
        *v = *v * 16 + d;
    }
    r->i += 4;
    return 1;
}

/* One UTF-8 scalar value (RFC 3629), decoded to check its range. */
static int rec_utf8(struct rec *r)
{
    unsigned char c = r->s[r->i];
    unsigned cp, min;
    size_t len, k;

    if (c >= 0xF0 && c <= 0xF7)
        len = 4, cp = c & 0x07u, min = 0x10000;
    else if (c >= 0xE0)
        len = 3, cp = c & 0x0Fu, min = 0x800;
    else if (c >= 0xC0)
        len = 2, cp = c & 0x1Fu, min = 0x80;
    else
        return 0;
    if (c > 0xF7 || r->i + len > r->n)
        return 0;
    for (k = 1; k < len; k++) {
        if ((r->s[r->i + k] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (r->s[r->i + k] & 0x3Fu);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    r->i += len;
    return 1;
}

static int rec_string(struct rec *r)
{
    unsigned v, low;

    r->i++; /* the quote */
    while (r->i < r->n) {
        unsigned char c = r->s[r->i];
        if (c == '"') {
            r->i++;
            return 1;
        }
        if (c < 0x20)
            return 0;
        if (c >= 0x80) {
            if (!rec_utf8(r))
                return 0;
            continue;
        }
        r->i++;
        if (c != '\\')
            continue;
        if (r->i >= r->n)
            return 0;
        c = r->s[r->i++];
        if (c == 'u') {
            if (!rec_hex4(r, &v))
                return 0;
            /* The service refuses lone surrogates (body.c's header). */
            if (v >= 0xDC00 && v <= 0xDFFF)
                return 0;
            if (v >= 0xD800 && v <= 0xDBFF) {
                if (r->i + 2 > r->n || r->s[r->i] != '\\' || r->s[r->i + 1] != 'u')
                    return 0;
                r->i += 2;
                if (!rec_hex4(r, &low) || low < 0xDC00 || low > 0xDFFF)
                    return 0;
            }
        } else if (c == '\0' || strchr("\"\\/bfnrt", c) == NULL) {
            return 0;
        }
    }
    return 0;
}

static int rec_digits(struct rec *r)
{
    size_t start = r->i;

    while (r->i < r->n && r->s[r->i] >= '0' && r->s[r->i] <= '9')
        r->i++;
    return r->i > start;
}

/* The grammar, then the service's limits: at most BODY_MAX_NUMBER_LEN
 * characters, integers within int64/uint64, reals finite. */
static int rec_number(struct rec *r)
{
    size_t start = r->i;
    int is_int = 1;
    char txt[BODY_MAX_NUMBER_LEN + 1];

    if (r->s[r->i] == '-')
        r->i++;
    if (r->i < r->n && r->s[r->i] == '0')
        r->i++;
    else if (r->i >= r->n || r->s[r->i] < '1' || r->s[r->i] > '9' || !rec_digits(r))
        return 0;
    if (r->i < r->n && r->s[r->i] == '.') {
        r->i++;
        is_int = 0;
        if (!rec_digits(r))
            return 0;
    }
    if (r->i < r->n && (r->s[r->i] == 'e' || r->s[r->i] == 'E')) {
        r->i++;
        is_int = 0;
        if (r->i < r->n && (r->s[r->i] == '+' || r->s[r->i] == '-'))
            r->i++;
        if (!rec_digits(r))
            return 0;
    }
    if (r->i - start > BODY_MAX_NUMBER_LEN)
        return 0;
    memcpy(txt, r->s + start, r->i - start);
    txt[r->i - start] = '\0';
    errno = 0;
    if (!is_int)
        return isfinite(strtod(txt, NULL));
    if (txt[0] == '-')
        (void)strtoll(txt, NULL, 10);
    else
        (void)strtoull(txt, NULL, 10);
    return errno != ERANGE;
}

static int rec_value(struct rec *r, int depth);

/* An object or array: its members, commas and closing bracket. */
static int rec_container(struct rec *r, int depth, int object)
{
    char close = object ? '}' : ']';

    if (depth > BODY_MAX_DEPTH)
        return 0;
    r->i++;
    rec_ws(r);
    if (r->i < r->n && r->s[r->i] == close) {
        r->i++;
        return 1;
    }
    for (;;) {
        rec_ws(r);
        if (object) {
            if (r->i >= r->n || r->s[r->i] != '"' || !rec_string(r))
                return 0;
            rec_ws(r);
            if (r->i >= r->n || r->s[r->i++] != ':')
                return 0;
        }
        if (!rec_value(r, depth))
            return 0;
        rec_ws(r);
        if (r->i >= r->n)
            return 0;
        if (r->s[r->i] == close) {
            r->i++;
            return 1;
        }
        if (r->s[r->i++] != ',')
            return 0;
    }
}

static int rec_literal(struct rec *r, const char *word)
{
    size_t n = strlen(word);

    if (r->n - r->i < n || memcmp(r->s + r->i, word, n) != 0)
        return 0;
    r->i += n;
    return 1;
}

static int rec_value(struct rec *r, int depth)
{
    rec_ws(r);
    if (r->i >= r->n)
        return 0;
    switch (r->s[r->i]) {
    case '{': return rec_container(r, depth + 1, 1);
    case '[': return rec_container(r, depth + 1, 0);
    case '"': return rec_string(r);
    case 't': return rec_literal(r, "true");
    case 'f': return rec_literal(r, "false");
    case 'n': return rec_literal(r, "null");
    default:
        return (r->s[r->i] == '-' || (r->s[r->i] >= '0' && r->s[r->i] <= '9')) && rec_number(r);
    }
}

static int rec_accepts(const char *s, size_t n)
{
    struct rec r = {(const unsigned char *)s, n, 0};

    if (!rec_value(&r, 0))
        return 0;
    rec_ws(&r);
    return r.i == n;
}

/* 1 if s[0..n) is the literal null with white space around: JSON, but
 * answered as a missing body (body.c, as FastAPI reads None). */
static int is_null_text(const char *s, size_t n)
{
    struct rec r = {(const unsigned char *)s, n, 0};

    rec_ws(&r);
    if (!rec_literal(&r, "null"))
        return 0;
    rec_ws(&r);
    return r.i == n;
}

/* What body_parse_json must accept. */
static int want_accepted(const char *s, size_t n)
{
    return rec_accepts(s, n) && !is_null_text(s, n);
}

/* ---- the framing ---- */

static void check_framing(uint8_t mode, const char *ct, const char *body, size_t len)
{
    static const size_t limits[] = {16, 256, 4096, FZ_BIG_LIMIT};
    static struct http_req req;
    struct fz_body f = {(const uint8_t *)body, len, 0};
    size_t max = limits[mode & 3];
    json_object *out = NULL;
    struct resp r;
    int rc, want;

    memset(&req, 0, sizeof req);
    snprintf(req.content_type, sizeof req.content_type, "%s", ct);
    switch ((mode >> 2) & 3) {
    case 0: req.content_length = (long long)len; break;
    case 1: req.content_length = -1; break;
    case 2: req.content_length = (long long)len + 1; break; /* the body ends early */
    default: req.content_length = len > 0 ? (long long)len - 1 : 0; break;
    }
    req.read_body = fz_body_read;
    req.read_arg = &f;
    resp_init(&r);
    rc = body_read_json(&req, max, &out, &r);
    if (ct[0] != '\0' && !body_is_json_type(ct))
        want = 415;
    else if (req.content_length < 0)
        want = 411;
    else if ((size_t)req.content_length > max)
        want = 413;
    else if ((size_t)req.content_length > len)
        want = 400;
    else
        want = 0;
    if (want != 0) {
        FZ_CHECK(rc == -1 && out == NULL && r.status == want);
    } else if (rc == 0) {
        FZ_CHECK(want_accepted(body, (size_t)req.content_length));
    } else {
        /* Below FZ_BIG_LIMIT the tree budget may refuse what parses. */
        FZ_CHECK(out == NULL && r.status == 400);
        FZ_CHECK(max < FZ_BIG_LIMIT || !want_accepted(body, (size_t)req.content_length));
    }
    if (rc != 0)
        fz_check_resp(&r);
    json_object_put(out);
    resp_cleanup(&r);
}

/* Differential and round trip at a limit the input can never reach. */
static void check_parse(const char *body, size_t len)
{
    json_object *out = NULL;
    struct resp r;
    int rc;

    resp_init(&r);
    rc = body_parse_json(body, len, FZ_BIG_LIMIT, &out, &r);
    FZ_CHECK((rc == 0) == want_accepted(body, len));
    if (rc == 0) {
        FZ_CHECK(out != NULL && jarvis_utf8_valid(body, len));
        fz_check_json(out);
    } else {
        FZ_CHECK(out == NULL && r.status == 400);
        fz_check_resp(&r);
    }
    json_object_put(out);
    resp_cleanup(&r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char ct[FZ_MAX_CT + 1] = "";
    const uint8_t *nl;
    char *body;
    size_t skip = 0;

    if (size < 1)
        return 0;
    nl = memchr(data + 1, '\n', size - 1 < FZ_MAX_CT ? size - 1 : FZ_MAX_CT);
    if (nl != NULL) {
        skip = (size_t)(nl - (data + 1));
        memcpy(ct, data + 1, skip);
        ct[skip] = '\0';
        skip++;
    }
    body = fz_strndup(data + 1 + skip, size - 1 - skip);
    check_parse(body, size - 1 - skip);
    check_framing(data[0], ct, body, size - 1 - skip);
    free(body);
    return 0;
}
