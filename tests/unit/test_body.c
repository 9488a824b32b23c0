/*
 * test_body.c - strict JSON decoding and request body framing: what json-c
 * alone would let through must be refused, with the reference's 400 shape.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "body.h"
#include "testutil.h"

/* The service's default body limit (config.h's CFG_DEFAULT_MAX_BODY). */
#define TEST_MAX_BODY (1024 * 1024)

/* Parses text; returns the 400's details.errors[0] as text, or NULL if OK. */
static int parse(const char *text, json_object **out, struct resp *r)
{
    size_t n = strlen(text);
    char *copy = malloc(n + 1);
    int rc;

    memcpy(copy, text, n + 1);
    resp_init(r);
    rc = body_parse_json(copy, n, TEST_MAX_BODY, out, r);
    free(copy);
    return rc;
}

static void accepts(const char *text)
{
    json_object *o = NULL;
    struct resp r;

    CU_ASSERT_EQUAL(parse(text, &o, &r), 0);
    CU_ASSERT_PTR_NOT_NULL(o);
    CU_ASSERT_PTR_NULL(r.body);
    json_object_put(o);
    resp_cleanup(&r);
}

/* Expects a 400 json_invalid at byte `pos` whose ctx.error is `why`. */
static void rejects(const char *text, long pos, const char *why)
{
    json_object *o = NULL;
    struct resp r;
    char want[512];

    CU_ASSERT_EQUAL(parse(text, &o, &r), -1);
    CU_ASSERT_PTR_NULL(o);
    CU_ASSERT_EQUAL(r.status, 400);
    snprintf(want, sizeof want,
             "{\"error\":{\"code\":\"invalid_request\",\"message\":\"Request validation failed\","
             "\"details\":{\"errors\":[{\"type\":\"json_invalid\",\"loc\":[\"body\",%ld],"
             "\"msg\":\"JSON decode error\",\"ctx\":{\"error\":\"%s\"}}]}}}",
             pos, why);
    if (!tu_json_equal(r.body, want))
        fprintf(stderr, "    for input: %s\n", text);
    CU_ASSERT_TRUE(tu_json_equal(r.body, want));
    resp_cleanup(&r);
}

static void test_accepts_rfc8259(void)
{
    accepts("{}");
    accepts(" \t\r\n{\"a\":[1,-0,0.5,1e5,1E+2,-1.5e-3,true,false,null,\"\\u00e9\\n\\/\"]} \n");
    accepts("[]");
    accepts("\"str\"");
    accepts("0");
    accepts("{\"k\":\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"}");
    accepts("9223372036854775807");
    accepts("-9223372036854775808");
    accepts("18446744073709551615");
    accepts("1.7976931348623157e308");
}

static void test_rejects_what_json_c_allows(void)
{
    rejects("NaN", 0, "Unexpected character");
    rejects("{\"a\":Infinity}", 5, "Unexpected character");
    rejects("{'a':1}", 1, "Unexpected character");
    rejects("[1.]", 1, "Invalid number");
    rejects("[.5]", 1, "Unexpected character");
    rejects("[01]", 2, "Unexpected character");
    rejects("[+1]", 1, "Unexpected character");
    rejects("[1e]", 1, "Invalid number");
    rejects("{\"a\":\"x\ty\"}", 7, "Invalid control character in string");
    /* the last control character; DEL is not one in JSON */
    rejects("[\"\x1f\"]", 2, "Invalid control character in string");
    accepts("\"\x7f\"");
    rejects("\"\\x41\"", 1, "Invalid escape in string");
    rejects("\"\\u12g4\"", 1, "Invalid \\\\uXXXX escape");
    rejects("[tru]", 1, "Expecting value");
    rejects("[nulll]", 5, "Unexpected character");
    rejects("99999999999999999999", 0, "Number out of range");
    rejects("-9223372036854775809", 0, "Number out of range");
    rejects("[1e400]", 1, "Number out of range");
    rejects("\"\xc3\x28\"", 1, "Invalid UTF-8 in string");
    rejects("\"\xed\xa0\x80\"", 1, "Invalid UTF-8 in string"); /* encoded surrogate */
    rejects("\"\xc0\xaf\"", 1, "Invalid UTF-8 in string");     /* overlong '/' */
    rejects("\"abc", 4, "Unterminated string");
}

/* json-c turns a lone surrogate into U+FFFD: "\ud800" and "\udbff" would be
 * one string, so they are refused wherever they are, keys included. */
static void test_lone_surrogates(void)
{
    accepts("\"\\ud83d\\ude00\"");
    accepts("\"\\uD83D\\uDE00 \\uDBFF\\uDFFF \\ud7ff \\ue000 \\ufffd\"");
    accepts("{\"\\ud83d\\ude00\":1}");
    /* a NUL escape is JSON; identifiers refuse it later (validate.c) */
    accepts("\"a\\u0000b\"");
    rejects("\"\\ud800\"", 1, "Lone surrogate in \\\\uXXXX escape");
    rejects("\"\\udbff\"", 1, "Lone surrogate in \\\\uXXXX escape");
    rejects("\"ab\\udc00\"", 3, "Lone surrogate in \\\\uXXXX escape");
    rejects("\"\\ud800\\u0041\"", 1, "Lone surrogate in \\\\uXXXX escape");
    rejects("\"\\ud800\\ud800\\udc00\"", 1, "Lone surrogate in \\\\uXXXX escape");
    rejects("\"\\ud800x\"", 1, "Lone surrogate in \\\\uXXXX escape");
    rejects("\"\\ud800\\\"", 1, "Lone surrogate in \\\\uXXXX escape");
    rejects("{\"k\\udfff\":1}", 3, "Lone surrogate in \\\\uXXXX escape");
    rejects("{\"node_run_id\":\"\\ud800\"}", 16, "Lone surrogate in \\\\uXXXX escape");
}

/* json-c 0.16 decodes some valid surrogate pairs to U+FFFD (found by
 * fuzz_pyjson): every pair must come out as its own 4 UTF-8 bytes, next to
 * other escapes and after an escaped backslash. */
static void test_surrogate_pairs_decoded(void)
{
    static const struct {
        const char *json, *want;
    } cases[] = {
        {"[\"\\uda76\\ude22\"]", "\xf2\xad\xa8\xa2"},
        {"[\"\\ud976\\udc00\"]", "\xf1\xad\xa0\x80"},
        {"[\"\\ud9c2\\ude22\\uda76\\ude22\"]", "\xf2\x80\xa8\xa2\xf2\xad\xa8\xa2"},
        {"[\"\\u00e9\\ud83d\\ude00\\n\\\\\\ud83d\\ude00\"]",
         "\xc3\xa9\xf0\x9f\x98\x80\n\\\xf0\x9f\x98\x80"},
        {"[\"\\\\ud83d\\ud83d\\ude00\"]", "\\ud83d\xf0\x9f\x98\x80"},
    };
    size_t i;

    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct resp r;
        json_object *v = NULL;
        resp_init(&r);
        CU_ASSERT_EQUAL_FATAL(body_parse_json(cases[i].json, strlen(cases[i].json), 4096, &v, &r),
                              0);
        CU_ASSERT_STRING_EQUAL(json_object_get_string(json_object_array_get_idx(v, 0)),
                               cases[i].want);
        json_object_put(v);
        resp_cleanup(&r);
    }
}

/* "0." then zeros then "1", n characters in all: a finite real. */
static char *long_number(size_t n)
{
    char *s = malloc(n + 1);

    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    memset(s, '0', n);
    s[1] = '.';
    s[n - 1] = '1';
    s[n] = '\0';
    return s;
}

/* BODY_MAX_NUMBER_LEN characters pass, one more is refused where it starts
 * (the lexer copies a number into a buffer of that size). */
static void test_number_length_bound(void)
{
    char *ok = long_number(BODY_MAX_NUMBER_LEN), *over = long_number(BODY_MAX_NUMBER_LEN + 1);
    char *shorter = long_number(BODY_MAX_NUMBER_LEN - 1), text[2 * BODY_MAX_NUMBER_LEN + 16];

    accepts(ok);
    snprintf(text, sizeof text, "[%s,-%s]", ok, shorter); /* a sign counts too */
    accepts(text);
    rejects(over, 0, "Number too long");
    snprintf(text, sizeof text, "{\"a\":%s}", over);
    rejects(text, 5, "Number too long");
    snprintf(text, sizeof text, "[-%s]", ok);
    rejects(text, 1, "Number too long");
    free(ok);
    free(over);
    free(shorter);
}

static void test_rejects_bad_structure(void)
{
    rejects("{\"a\":1", 6, "Unexpected end of data");
    rejects("[1,]", 3, "Unexpected character");
    rejects("{} x", 3, "Unexpected character");
    rejects("{}{}", 2, "Unexpected character");
    rejects("{\"a\" 1}", 5, "Object property name separator ':' expected");
    rejects("[truefalse]", 5, "Unexpected character");
    rejects("[1 2]", 3, "Array value separator ',' expected");
    /* the first problem wins, whichever check finds it */
    rejects("{\"a\" 1, \"b\": NaN}", 5, "Object property name separator ':' expected");
    rejects("[1 \"\x01\"]", 3, "Array value separator ',' expected");
}

static void test_nul_byte(void)
{
    char text[] = "{\"a\":\"x\"}\0";
    json_object *o = NULL;
    struct resp r;

    /* A raw NUL inside the body, before its declared end. */
    text[5] = '\0';
    resp_init(&r);
    CU_ASSERT_EQUAL(body_parse_json(text, 9, TEST_MAX_BODY, &o, &r), -1);
    CU_ASSERT_EQUAL(r.status, 400);
    resp_cleanup(&r);
}

static char *nested(int levels)
{
    char *s = malloc((size_t)levels * 8 + 16);
    int i, o = 0;

    for (i = 0; i < levels; i++)
        o += sprintf(s + o, i % 2 ? "[" : "{\"k\":");
    o += sprintf(s + o, "1");
    for (i = levels - 1; i >= 0; i--)
        s[o++] = i % 2 ? ']' : '}';
    s[o] = '\0';
    return s;
}

static void test_depth_bound(void)
{
    char *ok = nested(BODY_MAX_DEPTH), *deep = nested(BODY_MAX_DEPTH + 1);
    json_object *o = NULL;
    struct resp r;

    accepts(ok);
    CU_ASSERT_EQUAL(parse(deep, &o, &r), -1);
    CU_ASSERT_EQUAL(r.status, 400);
    CU_ASSERT_PTR_NOT_NULL(strstr(json_object_to_json_string(r.body), "Nesting too deep"));
    resp_cleanup(&r);
    free(ok);
    free(deep);
}

static long peak_rss_kb(void)
{
    struct rusage ru;

    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss;
}

/* "[" then `unit` repeated (comma-separated) up to n bytes, then "]". */
static char *repeated(const char *unit, size_t n, size_t *count)
{
    char *s = malloc(n + 1);
    size_t u = strlen(unit), o = 0;

    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    *count = 0;
    s[o++] = '[';
    while (o + u + 2 <= n) {
        if (*count > 0)
            s[o++] = ',';
        memcpy(s + o, unit, u);
        o += u;
        (*count)++;
    }
    s[o++] = ']';
    s[o] = '\0';
    return s;
}

/*
 * The finding: 1 MiB of [{},{},...] took a worker from 9 MB to 280 MB. It
 * is refused at the object that crosses the tree budget, and json-c only
 * ever sees the text before it. Runs first, so that the peak RSS before it
 * is the process's baseline.
 */
static void test_amplification_bounded(void)
{
    size_t count, budget = body_tree_budget(TEST_MAX_BODY);
    char *text = repeated("{}", TEST_MAX_BODY, &count);
    /* The first object whose charge crosses the budget, and its offset. */
    size_t k = (budget - BODY_COST_ARRAY) / BODY_COST_OBJECT, pos = 1 + 3 * k;
    json_object *o = NULL;
    struct resp r;
    char want[512];
    long before = peak_rss_kb(), after;

    CU_ASSERT_TRUE(strlen(text) <= TEST_MAX_BODY && strlen(text) + 3 > TEST_MAX_BODY);
    resp_init(&r);
    CU_ASSERT_EQUAL(body_parse_json(text, strlen(text), TEST_MAX_BODY, &o, &r), -1);
    after = peak_rss_kb();
    CU_ASSERT_PTR_NULL(o);
    CU_ASSERT_EQUAL(r.status, 400);
    snprintf(want, sizeof want,
             "{\"error\":{\"code\":\"invalid_request\",\"message\":\"Request validation failed\","
             "\"details\":{\"errors\":[{\"type\":\"json_invalid\",\"loc\":[\"body\",%zu],"
             "\"msg\":\"JSON decode error\",\"ctx\":{\"error\":\"JSON too large to decode\"}}]}}}",
             pos);
    TU_ASSERT_JSON(r.body, want);
    fprintf(stderr,
            "\n    [{},...] %zu objects in %zu bytes: refused at byte %zu; peak RSS %ld -> %ld kB "
            "(+%ld kB; tree budget %zu kB)\n",
            count, strlen(text), pos, before, after, after - before, budget / 1024);
    /* json-c built at most the budget's worth (unbounded it is ~280 MB,
     * more under the sanitizers); 3x leaves room for ASan's redzones. */
    CU_ASSERT_TRUE(after - before < (long)(3 * budget / 1024));
    resp_cleanup(&r);
    free(text);
}

/* Honest bodies up to the limit still pass: dense small records. */
static void test_realistic_body_at_limit(void)
{
    static const char record[] = "{\"id\":1234567,\"name\":\"abcdefgh\",\"tags\":[\"x\",\"y\"]}";
    size_t count;
    char *text = repeated(record, TEST_MAX_BODY, &count);
    long before = peak_rss_kb();

    accepts(text);
    fprintf(stderr, "\n    %zu records in %zu bytes accepted; peak RSS %ld -> %ld kB\n", count,
            strlen(text), before, peak_rss_kb());
    free(text);
    text = repeated("0.123456789", TEST_MAX_BODY, &count);
    accepts(text);
    free(text);
    text = repeated("\"a string of some length\"", TEST_MAX_BODY, &count);
    accepts(text);
    free(text);
}

static void test_empty_body(void)
{
    json_object *o = NULL;
    struct resp r;

    CU_ASSERT_EQUAL(parse(" \n", &o, &r), -1);
    TU_ASSERT_JSON(r.body, "{\"error\":{\"code\":\"invalid_request\",\"message\":\"Request "
                           "validation failed\",\"details\":{\"errors\":[{\"type\":\"missing\","
                           "\"loc\":[\"body\"],\"msg\":\"Field required\"}]}}}");
    resp_cleanup(&r);
}

/* Found by fuzz/fuzz_body (corpus file crash-null-body): json-c's null is
 * the NULL pointer, and a body of JSON null was answered as a decode error
 * whose message was "Success". FastAPI validates None as a missing body. */
static void test_null_body(void)
{
    json_object *o = NULL;
    struct resp r;

    CU_ASSERT_EQUAL(parse(" null\n", &o, &r), -1);
    CU_ASSERT_PTR_NULL(o);
    CU_ASSERT_EQUAL(r.status, 400);
    TU_ASSERT_JSON(r.body, "{\"error\":{\"code\":\"invalid_request\",\"message\":\"Request "
                           "validation failed\",\"details\":{\"errors\":[{\"type\":\"missing\","
                           "\"loc\":[\"body\"],\"msg\":\"Field required\"}]}}}");
    resp_cleanup(&r);
    /* After a null, the lexer's error is the one reported, not "Success". */
    rejects("null x", 5, "Unexpected character");
    accepts("[null]");
}

static void test_json_content_types(void)
{
    CU_ASSERT_TRUE(body_is_json_type("application/json"));
    CU_ASSERT_TRUE(body_is_json_type("Application/JSON; charset=utf-8"));
    CU_ASSERT_TRUE(body_is_json_type(" application/json ;charset=UTF-8"));
    CU_ASSERT_TRUE(body_is_json_type("application/merge-patch+json"));
    CU_ASSERT_FALSE(body_is_json_type("text/plain"));
    CU_ASSERT_FALSE(body_is_json_type("application/jsonx"));
    CU_ASSERT_FALSE(body_is_json_type("application/x-www-form-urlencoded"));
    CU_ASSERT_FALSE(body_is_json_type("text/json+json/x"));
    CU_ASSERT_FALSE(body_is_json_type("application/+json"));
    CU_ASSERT_FALSE(body_is_json_type(""));
}

/* A body reader over a string, delivering at most `chunk` bytes a call. */
struct fake_body {
    const char *data;
    size_t len, pos, chunk;
};

static long fake_read(void *arg, char *buf, size_t len)
{
    struct fake_body *f = arg;
    size_t n = f->len - f->pos;

    if (n > len)
        n = len;
    if (n > f->chunk)
        n = f->chunk;
    memcpy(buf, f->data + f->pos, n);
    f->pos += n;
    return (long)n;
}

static int read_json(const char *ct, long long cl, const char *data, json_object **out,
                     struct resp *r)
{
    static struct fake_body f;
    struct http_req req;

    memset(&req, 0, sizeof req);
    snprintf(req.content_type, sizeof req.content_type, "%s", ct);
    req.content_length = cl;
    f = (struct fake_body){data, strlen(data), 0, 3};
    req.read_body = fake_read;
    req.read_arg = &f;
    resp_init(r);
    return body_read_json(&req, 64, out, r);
}

static void test_framing(void)
{
    json_object *o = NULL;
    struct resp r;

    CU_ASSERT_EQUAL(read_json("application/json", 9, "{\"a\":[1]}", &o, &r), 0);
    TU_ASSERT_JSON(o, "{\"a\":[1]}");
    json_object_put(o);
    resp_cleanup(&r);
    /* A missing Content-Type is parsed as JSON, as the reference does. */
    CU_ASSERT_EQUAL(read_json("", 2, "{}", &o, &r), 0);
    json_object_put(o);
    resp_cleanup(&r);

    CU_ASSERT_EQUAL(read_json("text/plain", 2, "{}", &o, &r), -1);
    CU_ASSERT_EQUAL(r.status, 415);
    TU_ASSERT_JSON(r.body, "{\"error\":{\"code\":\"unsupported_media_type\",\"message\":"
                           "\"Content-Type must be application/json\"}}");
    resp_cleanup(&r);

    CU_ASSERT_EQUAL(read_json("application/json", -1, "{}", &o, &r), -1);
    CU_ASSERT_EQUAL(r.status, 411);
    TU_ASSERT_JSON(r.body, "{\"error\":{\"code\":\"length_required\",\"message\":"
                           "\"Content-Length required\"}}");
    resp_cleanup(&r);

    CU_ASSERT_EQUAL(read_json("application/json", 65, "{}", &o, &r), -1);
    CU_ASSERT_EQUAL(r.status, 413);
    TU_ASSERT_JSON(r.body, "{\"error\":{\"code\":\"payload_too_large\",\"message\":"
                           "\"Request body too large\",\"details\":{\"max_bytes\":64}}}");
    resp_cleanup(&r);

    /* A 64-byte limit allows 64 * BODY_TREE_FACTOR = 3072 bytes of tree:
     * an array (160) and 3 objects (800 each) fit, the 4th does not. */
    CU_ASSERT_EQUAL(read_json("application/json", 10, "[{},{},{}]", &o, &r), 0);
    json_object_put(o);
    resp_cleanup(&r);
    CU_ASSERT_EQUAL(read_json("application/json", 13, "[{},{},{},{}]", &o, &r), -1);
    CU_ASSERT_PTR_NULL(o);
    TU_ASSERT_JSON(r.body,
                   "{\"error\":{\"code\":\"invalid_request\",\"message\":\"Request validation "
                   "failed\",\"details\":{\"errors\":[{\"type\":\"json_invalid\",\"loc\":[\"body\","
                   "10],\"msg\":\"JSON decode error\",\"ctx\":{\"error\":\"JSON too large to "
                   "decode\"}}]}}}");
    resp_cleanup(&r);
    /* The first problem still wins: the missing ':' before the budget runs out. */
    CU_ASSERT_EQUAL(read_json("application/json", 22, "{\"a\" [{},{},{},{}]}   ", &o, &r), -1);
    TU_ASSERT_JSON(r.body,
                   "{\"error\":{\"code\":\"invalid_request\",\"message\":\"Request validation "
                   "failed\",\"details\":{\"errors\":[{\"type\":\"json_invalid\",\"loc\":[\"body\","
                   "5],\"msg\":\"JSON decode error\",\"ctx\":{\"error\":\"Object property name "
                   "separator ':' expected\"}}]}}}");
    resp_cleanup(&r);

    /* The stream ends before Content-Length bytes arrived. */
    CU_ASSERT_EQUAL(read_json("application/json", 10, "{}", &o, &r), -1);
    CU_ASSERT_EQUAL(r.status, 400);
    CU_ASSERT_PTR_NULL(o);
    TU_ASSERT_JSON(r.body, "{\"error\":{\"code\":\"invalid_request\",\"message\":"
                           "\"Request body shorter than Content-Length\"}}");
    CU_ASSERT_STRING_EQUAL(r.reason, "body ended after 2 of 10 bytes");
    resp_cleanup(&r);
}

static CU_TestInfo tests[] = {
    {"1 MiB of [{},...] is refused within the tree budget", test_amplification_bounded},
    {"realistic bodies at the limit pass", test_realistic_body_at_limit},
    {"accepts RFC 8259 JSON", test_accepts_rfc8259},
    {"rejects what json-c would allow", test_rejects_what_json_c_allows},
    {"rejects lone surrogates", test_lone_surrogates},
    {"decodes every surrogate pair (json-c 0.16 does not)", test_surrogate_pairs_decoded},
    {"64-character number bound", test_number_length_bound},
    {"rejects bad structure", test_rejects_bad_structure},
    {"rejects a NUL byte", test_nul_byte},
    {"depth bound", test_depth_bound},
    {"empty body", test_empty_body},
    {"a body of JSON null is a missing body", test_null_body},
    {"JSON content types", test_json_content_types},
    {"body framing 411/413/415", test_framing},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"body", NULL, NULL, NULL, NULL, tests},
    CU_SUITE_INFO_NULL,
};

int main(void)
{
    return tu_main(suites);
}
