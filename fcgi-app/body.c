/*
 * body.c - owns the step from request bytes to a JSON tree.
 *
 * json-c alone is too lenient for a wire contract (it takes NaN, 'single'
 * quotes, raw control characters, "1.", and clamps integers that overflow;
 * docs/pitfalls.md),
 * so a lexer here checks every token against RFC 8259 and bounds the
 * nesting, while json-c checks the grammar and builds the tree; the first
 * problem either finds is the one reported. Errors are reported the way the
 * reference reports them: 400 invalid_request with a pydantic-style entry.
 *
 * Hostile input is bounded before json-c allocates: the lexer charges each
 * token what json-c will spend on it and stops at BODY_TREE_FACTOR times the
 * body limit; json-c then only ever sees the text the lexer accepted. It
 * also refuses \u escapes of lone surrogates, which json-c would turn into
 * U+FFFD, so that "\ud800" and "\udbff" cannot silently become one string.
 */
#include "body.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "utf8.h"
#include "validate.h"

struct lex {
    const char *s;
    size_t len;
    size_t pos;
    const char *why;
    size_t budget; /* what the decoded tree may cost (body_tree_budget) */
    size_t spent;  /* what the tokens so far will cost */
    int pairs;     /* the text holds a surrogate-pair escape */
};

/* The JSON text of a \uXXXX escape: backslash, 'u', 4 hex digits. */
#define ESCAPE_U_LEN 6

static int is_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static int lex_fail(struct lex *l, const char *why)
{
    l->why = why;
    return -1;
}

/* 1 if s[pos..) starts with \uXXXX; its value in *cp. */
static int escape_u(const struct lex *l, size_t pos, unsigned *cp)
{
    size_t n;

    if (pos + ESCAPE_U_LEN > l->len || l->s[pos] != '\\' || l->s[pos + 1] != 'u')
        return 0;
    *cp = 0;
    for (n = 2; n < ESCAPE_U_LEN; n++) {
        int v = jarvis_hex_value(l->s[pos + n]);
        if (v < 0)
            return 0;
        *cp = *cp * 16 + (unsigned)v;
    }
    return 1;
}

static int is_high_surrogate(unsigned cp)
{
    return cp >= 0xD800 && cp <= 0xDBFF;
}

static int is_low_surrogate(unsigned cp)
{
    return cp >= 0xDC00 && cp <= 0xDFFF;
}

/* Adds a token's cost; refuses it (at its start) once over the budget. */
static int lex_charge(struct lex *l, size_t start, size_t cost)
{
    l->spent += cost;
    if (l->spent <= l->budget)
        return 0;
    l->pos = start;
    return lex_fail(l, "JSON too large to decode");
}

static int lex_string(struct lex *l)
{
    const unsigned char *s = (const unsigned char *)l->s;
    size_t n;
    unsigned cp, low;

    for (l->pos++; l->pos < l->len;) {
        unsigned char c = s[l->pos];
        if (c == '"') {
            l->pos++;
            return 0;
        }
        if (c < 0x20)
            return lex_fail(l, "Invalid control character in string");
        if (c == '\\') {
            char e = l->pos + 1 < l->len ? (char)s[l->pos + 1] : '\0';
            if (e == 'u') {
                if (!escape_u(l, l->pos, &cp))
                    return lex_fail(l, "Invalid \\uXXXX escape");
                /* json-c would decode a lone surrogate to U+FFFD: refuse
                 * it rather than hand on a string that is not the one sent. */
                if (is_low_surrogate(cp) ||
                    (is_high_surrogate(cp) &&
                     !(escape_u(l, l->pos + ESCAPE_U_LEN, &low) && is_low_surrogate(low))))
                    return lex_fail(l, "Lone surrogate in \\uXXXX escape");
                l->pairs |= is_high_surrogate(cp);
                l->pos += is_high_surrogate(cp) ? 2 * ESCAPE_U_LEN : ESCAPE_U_LEN;
            } else if (e && strchr("\"\\/bfnrt", e)) {
                l->pos += 2;
            } else {
                return lex_fail(l, "Invalid escape in string");
            }
            continue;
        }
        if (c < 0x80) {
            l->pos++;
            continue;
        }
        n = utf8_seq_len(s + l->pos, l->len - l->pos);
        if (n == 0)
            return lex_fail(l, "Invalid UTF-8 in string");
        l->pos += n;
    }
    return lex_fail(l, "Unterminated string");
}

/* Integers must survive json-c's int64/uint64 storage; reals must be finite. */
static int number_in_range(const char *txt, int is_int)
{
    char *end;

    errno = 0;
    if (is_int) {
        if (txt[0] == '-')
            (void)strtoll(txt, &end, 10);
        else
            (void)strtoull(txt, &end, 10);
        return errno != ERANGE;
    }
    return isfinite(strtod(txt, &end));
}

static int lex_number(struct lex *l)
{
    const char *s = l->s;
    size_t start = l->pos, p = l->pos;
    char txt[BODY_MAX_NUMBER_LEN + 1];
    int is_int = 1;

    if (s[p] == '-')
        p++;
    if (p < l->len && s[p] == '0')
        p++;
    else if (p < l->len && s[p] >= '1' && s[p] <= '9')
        while (p < l->len && is_digit(s[p]))
            p++;
    else
        return lex_fail(l, "Invalid number");
    if (p < l->len && s[p] == '.') {
        is_int = 0;
        if (++p >= l->len || !is_digit(s[p]))
            return lex_fail(l, "Invalid number");
        while (p < l->len && is_digit(s[p]))
            p++;
    }
    if (p < l->len && (s[p] == 'e' || s[p] == 'E')) {
        is_int = 0;
        if (++p < l->len && (s[p] == '+' || s[p] == '-'))
            p++;
        if (p >= l->len || !is_digit(s[p]))
            return lex_fail(l, "Invalid number");
        while (p < l->len && is_digit(s[p]))
            p++;
    }
    if (p - start > BODY_MAX_NUMBER_LEN)
        return lex_fail(l, "Number too long");
    memcpy(txt, s + start, p - start);
    txt[p - start] = '\0';
    if (!number_in_range(txt, is_int))
        return lex_fail(l, "Number out of range");
    l->pos = p;
    return 0;
}

static int lex_literal(struct lex *l)
{
    static const char *const words[] = {"true", "false", "null"};
    size_t i, n;

    for (i = 0; i < 3; i++) {
        n = strlen(words[i]);
        if (l->len - l->pos >= n && memcmp(l->s + l->pos, words[i], n) == 0) {
            l->pos += n;
            return 0;
        }
    }
    return lex_fail(l, "Expecting value");
}

/* A number or literal must end at a delimiter: "01" is not "0" then "1". */
static int lex_token_end(struct lex *l)
{
    char c = l->pos < l->len ? l->s[l->pos] : ' ';

    if (is_ws(c) || c == ',' || c == ']' || c == '}' || c == ':')
        return 0;
    return lex_fail(l, "Unexpected character");
}

/* Checks and charges every token; the grammar between tokens is left to json-c. */
static int lex_all(struct lex *l)
{
    int depth = 0;
    size_t start;

    while (l->pos < l->len) {
        char c = l->s[l->pos];
        start = l->pos;
        if (is_ws(c) || c == ',' || c == ':') {
            l->pos++;
        } else if (c == '{' || c == '[') {
            if (++depth > BODY_MAX_DEPTH)
                return lex_fail(l, "Nesting too deep");
            if (lex_charge(l, start, c == '{' ? BODY_COST_OBJECT : BODY_COST_ARRAY) != 0)
                return -1;
            l->pos++;
        } else if (c == '}' || c == ']') {
            depth--;
            l->pos++;
        } else if (c == '"') {
            /* Keys cost about what string values do (a copy and a slot). */
            if (lex_string(l) != 0 || lex_charge(l, start, BODY_COST_STRING + l->pos - start) != 0)
                return -1;
        } else if (c == '-' || is_digit(c)) {
            if (lex_number(l) != 0 || lex_token_end(l) != 0 ||
                lex_charge(l, start, BODY_COST_SCALAR) != 0)
                return -1;
        } else if (c == 't' || c == 'f' || c == 'n') {
            if (lex_literal(l) != 0 || lex_token_end(l) != 0 ||
                lex_charge(l, start, BODY_COST_SCALAR) != 0)
                return -1;
        } else {
            return lex_fail(l, "Unexpected character");
        }
    }
    return 0;
}

static void json_invalid(struct resp *err, size_t pos, const char *why)
{
    char msg[128];
    json_object *loc = json_object_new_array();
    json_object *entry, *ctx = json_object_new_object();
    json_object *errors = json_object_new_array();

    json_object_array_add(loc, json_object_new_string("body"));
    json_object_array_add(loc, json_object_new_int64((int64_t)pos));
    entry = jv_error_entry("json_invalid", loc, "JSON decode error");
    /* json-c's descriptions start lower-case, the lexer's upper-case. */
    snprintf(msg, sizeof msg, "%s", why);
    if (msg[0] >= 'a' && msg[0] <= 'z')
        msg[0] = (char)(msg[0] - 'a' + 'A');
    json_object_object_add(ctx, "error", json_object_new_string(msg));
    json_object_object_add(entry, "ctx", ctx);
    json_object_array_add(errors, entry);
    resp_set_invalid(err, errors);
    resp_set_reason(err, "body is not JSON: %s at byte %zu", msg, pos);
}

size_t body_tree_budget(size_t max_bytes)
{
    return max_bytes > SIZE_MAX / BODY_TREE_FACTOR ? SIZE_MAX : max_bytes * BODY_TREE_FACTOR;
}

/*
 * json-c 0.16 decodes some valid surrogate-pair escapes to U+FFFD instead
 * of their character ("\uda76\ude22", U+ADA22, or "\ud976\udc00"; found
 * by fuzz_pyjson), so an echo would not give back what was sent. For a
 * text the lexer accepted that holds any pair, this makes a copy with every
 * surrogate-pair escape written as its 4 UTF-8 bytes, which json-c reads
 * right; every other byte is kept. The copy (the caller frees it;
 * NUL-terminated, *out_len without the NUL), or NULL.
 */
static char *decode_pairs(const struct lex *l, size_t *out_len)
{
    char *out = malloc(l->len + 1);
    size_t i = 0, o = 0;
    unsigned hi, lo;

    if (out == NULL)
        return NULL;
    while (i < l->len) {
        if (l->s[i] != '\\') {
            out[o++] = l->s[i++];
            continue;
        }
        if (escape_u(l, i, &hi) && is_high_surrogate(hi) && escape_u(l, i + ESCAPE_U_LEN, &lo) &&
            is_low_surrogate(lo)) {
            unsigned cp = 0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00);
            out[o++] = (char)(0xF0 | (cp >> 18));
            out[o++] = (char)(0x80 | ((cp >> 12) & 0x3F));
            out[o++] = (char)(0x80 | ((cp >> 6) & 0x3F));
            out[o++] = (char)(0x80 | (cp & 0x3F));
            i += 2 * ESCAPE_U_LEN;
            continue;
        }
        /* Any other escape: the backslash and the byte it escapes, so that
         * an escaped backslash is never read as the start of an escape. */
        out[o++] = l->s[i++];
        if (i < l->len)
            out[o++] = l->s[i++];
    }
    out[o] = '\0';
    *out_len = o;
    return out;
}

int body_parse_json(const char *buf, size_t len, size_t max_bytes, json_object **out,
                    struct resp *err)
{
    struct lex l = {buf, len, 0, NULL, body_tree_budget(max_bytes), 0, 0};
    char *decoded = NULL;
    struct json_tokener *tok;
    json_object *obj;
    enum json_tokener_error jerr;
    size_t i, jpos, jlen;
    int lex_rc;

    *out = NULL;
    for (i = 0; i < len && is_ws(buf[i]); i++)
        ;
    if (i == len) {
        resp_set_invalid(err, jv_errors_one(NULL, "missing", "Field required"));
        resp_set_reason(err, "empty body");
        return -1;
    }
    lex_rc = lex_all(&l);
    /* +1: the depth json-c counts includes the value itself. */
    tok = json_tokener_new_ex(BODY_MAX_DEPTH + 1);
    if (tok == NULL) {
        resp_set_internal(err);
        resp_set_reason(err, "out of memory");
        return -1;
    }
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
    /* Including the NUL terminator tells json-c the input ends there. After
     * a lexer error json-c gets only the text before it: enough to find an
     * earlier grammar error, and never more tree than the budget allows. */
    jlen = lex_rc == 0 ? len + 1 : l.pos;
    if (lex_rc == 0 && l.pairs && (decoded = decode_pairs(&l, &jlen)) != NULL)
        jlen++; /* its NUL; json-c's error positions are then the copy's */
    obj = jlen > 0 ? json_tokener_parse_ex(tok, decoded != NULL ? decoded : buf, (int)jlen) : NULL;
    jpos = json_tokener_get_parse_end(tok);
    jerr = json_tokener_get_error(tok);
    json_tokener_free(tok);
    free(decoded);
    /* json-c's null is the NULL pointer: success with no object is `null`. */
    if (lex_rc != 0 &&
        (jerr == json_tokener_success || jerr == json_tokener_continue || jlen == 0)) {
        /* json-c saw nothing wrong before the lexer's error. */
        json_invalid(err, l.pos, l.why);
        json_object_put(obj);
        return -1;
    }
    if (jerr != json_tokener_success) {
        /* The first problem in the text: json-c's, before any lexer error. */
        json_invalid(err, jpos, json_tokener_error_desc(jerr));
        json_object_put(obj);
        return -1;
    }
    if (obj == NULL) {
        /* A body of JSON null is no body to the reference (FastAPI
         * validates None as a missing body), and no tree to the callers. */
        resp_set_invalid(err, jv_errors_one(NULL, "missing", "Field required"));
        resp_set_reason(err, "body is JSON null");
        return -1;
    }
    *out = obj;
    return 0;
}

int body_is_json_type(const char *ct)
{
    const char *end = ct + strcspn(ct, ";");
    size_t n;

    while (*ct == ' ' || *ct == '\t')
        ct++;
    while (end > ct && (end[-1] == ' ' || end[-1] == '\t'))
        end--;
    n = (size_t)(end - ct);
    if (n == 16 && strncasecmp(ct, "application/json", 16) == 0)
        return 1;
    /* Structured-syntax suffix (RFC 6839), e.g. application/merge-patch+json. */
    return n > 17 && strncasecmp(ct, "application/", 12) == 0 &&
           strncasecmp(end - 5, "+json", 5) == 0 && memchr(ct + 12, '/', n - 12) == NULL;
}

int body_read_json(const struct http_req *req, size_t max_bytes, json_object **out,
                   struct resp *err)
{
    char *buf = NULL;
    size_t want, got = 0;
    long n;
    int rc = -1;

    *out = NULL;
    /* A missing Content-Type is parsed as JSON, as the reference does. */
    if (req->content_type[0] != '\0' && !body_is_json_type(req->content_type)) {
        resp_set_error(err, 415, "unsupported_media_type", "Content-Type must be application/json",
                       NULL);
        resp_set_reason(err, "content type %.*s",
                        (int)utf8_cut(req->content_type, strlen(req->content_type), 64),
                        req->content_type);
        goto out;
    }
    if (req->content_length < 0) {
        resp_set_error(err, 411, "length_required", "Content-Length required", NULL);
        goto out;
    }
    if ((unsigned long long)req->content_length > max_bytes) {
        json_object *details = json_object_new_object();
        json_object_object_add(details, "max_bytes", json_object_new_int64((int64_t)max_bytes));
        /* Same code and message as nginx's own 413 page, plus the limit. */
        resp_set_error(err, 413, "payload_too_large", "Request body too large", details);
        resp_set_reason(err, "content length %lld", req->content_length);
        goto out;
    }
    want = (size_t)req->content_length;
    buf = malloc(want + 1);
    if (buf == NULL) {
        resp_set_internal(err);
        resp_set_reason(err, "out of memory for a %zu byte body", want);
        goto out;
    }
    while (got < want && (n = req->read_body(req->read_arg, buf + got, want - got)) > 0)
        got += (size_t)n;
    if (got < want) {
        resp_set_error(err, 400, "invalid_request", "Request body shorter than Content-Length",
                       NULL);
        resp_set_reason(err, "body ended after %zu of %zu bytes", got, want);
        goto out;
    }
    buf[want] = '\0';
    rc = body_parse_json(buf, want, max_bytes, out, err);
out:
    free(buf);
    return rc;
}
