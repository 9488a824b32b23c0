/* test_util.c - the helpers of the plugin contract (include/jarvis/util.h):
 * code points, hex digits, both base64 variants with their reasons, and
 * the span clamp. The packs' own tests (hash.sha256, web.fetch) and the
 * JWKS tests check the same functions through their callers. */
#include <string.h>

#include "jarvis/util.h"
#include "testutil.h"

static void test_utf8_next(void)
{
    /* one sequence of each length, and the first and last code points */
    static const struct {
        const char *s;
        size_t len;
        uint32_t cp;
    } ok[] = {
        {"A", 1, 0x41},
        {"\x7f", 1, 0x7f},
        {"\xc2\x80", 2, 0x80},
        {"\xc3\xa9", 2, 0xe9},
        {"\xdf\xbf", 2, 0x7ff},
        {"\xe0\xa0\x80", 3, 0x800},
        {"\xe2\x82\xac", 3, 0x20ac},
        {"\xef\xbf\xbf", 3, 0xffff},
        {"\xf0\x90\x80\x80", 4, 0x10000},
        {"\xf0\x9f\x98\x80", 4, 0x1f600},
        {"\xf4\x8f\xbf\xbf", 4, 0x10ffff},
    };
    /* overlong forms, surrogates, above U+10FFFF, stray and cut bytes */
    static const char *const bad[] = {"\xc0\x80",
                                      "\xc1\xbf",
                                      "\xe0\x9f\xbf",
                                      "\xed\xa0\x80",
                                      "\xed\xbf\xbf",
                                      "\xf0\x8f\xbf\xbf",
                                      "\xf4\x90\x80\x80",
                                      "\xf5\x80\x80\x80",
                                      "\x80",
                                      "\xbf",
                                      "\xff",
                                      "\xc3",
                                      "\xe2\x82",
                                      "\xf0\x9f\x98",
                                      "\xc3\x41"};
    size_t i;
    uint32_t cp;

    for (i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        cp = 0;
        CU_ASSERT_EQUAL(jarvis_utf8_next(ok[i].s, strlen(ok[i].s), &cp), ok[i].len);
        CU_ASSERT_EQUAL(cp, ok[i].cp);
        /* n shorter than the sequence: cut short, so malformed */
        if (ok[i].len > 1)
            CU_ASSERT_EQUAL(jarvis_utf8_next(ok[i].s, ok[i].len - 1, &cp), 0);
    }
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CU_ASSERT_EQUAL(jarvis_utf8_next(bad[i], strlen(bad[i]), &cp), 0);
    /* NUL is a code point like any other */
    CU_ASSERT_EQUAL(jarvis_utf8_next("\0x", 2, &cp), 1);
    CU_ASSERT_EQUAL(cp, 0);
}

static void test_hex_value(void)
{
    static const char digits[] = "0123456789abcdefABCDEF";
    int c, i;

    for (i = 0; digits[i] != '\0'; i++)
        CU_ASSERT_EQUAL(jarvis_hex_value(digits[i]), i < 16 ? i : i - 6);
    for (c = -1; c < 256; c++)
        if (c < 0 || strchr(digits, c) == NULL || c == 0)
            CU_ASSERT_EQUAL(jarvis_hex_value(c), -1);
}

static long strict(const char *s, unsigned char *out, size_t cap, const char **why)
{
    *why = NULL;
    return jarvis_base64_decode(s, strlen(s), JARVIS_BASE64_STRICT, out, cap, why);
}

static void test_base64_strict(void)
{
    unsigned char out[16];
    const char *why;

    CU_ASSERT_EQUAL(strict("", out, sizeof out, &why), 0);
    CU_ASSERT_EQUAL(strict("aGk=", out, sizeof out, &why), 2);
    CU_ASSERT_EQUAL(memcmp(out, "hi", 2), 0);
    CU_ASSERT_EQUAL(strict("aA==", out, sizeof out, &why), 1);
    CU_ASSERT_EQUAL(out[0], 'h');
    CU_ASSERT_EQUAL(strict("+/+/", out, sizeof out, &why), 3); /* the standard alphabet */
    CU_ASSERT_EQUAL(memcmp(out, "\xfb\xff\xbf", 3), 0);
    /* leftover bits are dropped, as CPython does: "aB==" is "h" too */
    CU_ASSERT_EQUAL(strict("aB==", out, sizeof out, &why), 1);
    CU_ASSERT_EQUAL(out[0], 'h');
    CU_ASSERT_EQUAL(strict("aGk", out, sizeof out, &why), -1);
    CU_ASSERT_STRING_EQUAL(why, "length is not a multiple of 4");
    CU_ASSERT_EQUAL(strict("a===", out, sizeof out, &why), -1);
    CU_ASSERT_STRING_EQUAL(why, "more than two '=' of padding");
    CU_ASSERT_EQUAL(strict("a=k=", out, sizeof out, &why), -1);
    CU_ASSERT_STRING_EQUAL(why, "'=' before the end");
    CU_ASSERT_EQUAL(strict("-_k=", out, sizeof out, &why), -1); /* base64url's characters */
    CU_ASSERT_STRING_EQUAL(why, "a character outside the base64 alphabet");
    CU_ASSERT_EQUAL(strict("aGk=", out, 1, &why), -1);
    CU_ASSERT_STRING_EQUAL(why, "the decoded bytes do not fit");
    /* why may be NULL */
    CU_ASSERT_EQUAL(jarvis_base64_decode("a", 1, JARVIS_BASE64_STRICT, out, sizeof out, NULL), -1);
}

static void test_base64_url(void)
{
    unsigned char out[16];
    const char *why = NULL;

    CU_ASSERT_EQUAL(jarvis_base64_decode("-_-_", 4, JARVIS_BASE64_URL, out, sizeof out, &why), 3);
    CU_ASSERT_EQUAL(memcmp(out, "\xfb\xff\xbf", 3), 0);
    /* padding optional, and any trailing '=' ignored */
    CU_ASSERT_EQUAL(jarvis_base64_decode("aGk", 3, JARVIS_BASE64_URL, out, sizeof out, &why), 2);
    CU_ASSERT_EQUAL(jarvis_base64_decode("aGk===", 6, JARVIS_BASE64_URL, out, sizeof out, &why), 2);
    CU_ASSERT_EQUAL(memcmp(out, "hi", 2), 0);
    CU_ASSERT_EQUAL(jarvis_base64_decode("aGkab", 5, JARVIS_BASE64_URL, out, sizeof out, &why), -1);
    CU_ASSERT_STRING_EQUAL(why, "length is not one an encoding has");
    CU_ASSERT_EQUAL(jarvis_base64_decode("+/+/", 4, JARVIS_BASE64_URL, out, sizeof out, &why), -1);
    CU_ASSERT_STRING_EQUAL(why, "a character outside the base64 alphabet");
    CU_ASSERT_EQUAL(jarvis_base64_decode("a=Gk", 4, JARVIS_BASE64_URL, out, sizeof out, &why), -1);
    CU_ASSERT_STRING_EQUAL(why, "'=' before the end");
}

static void test_clamp_span(void)
{
    CU_ASSERT_EQUAL(jarvis_clamp_span_ms(0), 0);
    CU_ASSERT_EQUAL(jarvis_clamp_span_ms(5.9), 5);
    CU_ASSERT_EQUAL(jarvis_clamp_span_ms((double)JARVIS_MAX_SPAN_MS), JARVIS_MAX_SPAN_MS);
    CU_ASSERT_EQUAL(jarvis_clamp_span_ms(1e300), JARVIS_MAX_SPAN_MS);
    /* "now + the longest span" stays far inside int64_t */
    CU_ASSERT_TRUE(JARVIS_MAX_SPAN_MS < INT64_MAX / 4);
}

static CU_TestInfo tests[] = {
    {"UTF-8 code points, and every malformed form", test_utf8_next},
    {"hex digits", test_hex_value},
    {"base64, strict (Python's validate=True), with reasons", test_base64_strict},
    {"base64url, padding optional", test_base64_url},
    {"the span clamp", test_clamp_span},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"util", NULL, NULL, NULL, NULL, tests},
    CU_SUITE_INFO_NULL,
};

int main(void)
{
    return tu_main(suites);
}
