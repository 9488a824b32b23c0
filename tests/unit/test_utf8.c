/* test_utf8.c - the UTF-8 checker (every way a sequence is malformed) and
 * the one place that cuts strings short: utf8_cut never splits a character,
 * at any cut point, and neither does a bounded formatted write. */
#include <stdarg.h>
#include <string.h>

#include "testutil.h"
#include "utf8.h"

/* "aé€😀" is 1 + 2 + 3 + 4 bytes: every byte position is a cut point. */
static void test_cut_every_point(void)
{
    static const char s[] = "a\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80";
    static const size_t want[] = {0, 1, 1, 3, 3, 3, 6, 6, 6, 6, 10, 10};
    size_t max;

    for (max = 0; max < sizeof want / sizeof want[0]; max++) {
        size_t got = utf8_cut(s, strlen(s), max);
        CU_ASSERT_EQUAL(got, want[max]);
        CU_ASSERT_TRUE(jarvis_utf8_valid(s, got));
    }
}

/* A malformed byte is a unit of its own; a truncated sequence too. */
static void test_cut_malformed(void)
{
    CU_ASSERT_EQUAL(utf8_cut("a\xff"
                             "b",
                             3, 2),
                    2);
    /* a truncated sequence: each of its bytes is malformed on its own */
    CU_ASSERT_EQUAL(utf8_cut("a\xe2\x82", 3, 3), 3);
    CU_ASSERT_EQUAL(utf8_cut("a\xe2\x82", 3, 2), 2);
    CU_ASSERT_EQUAL(utf8_cut("", 0, 5), 0);
    CU_ASSERT_EQUAL(utf8_cut("abc", 3, 100), 3);
}

static void test_valid(void)
{
    CU_ASSERT_TRUE(jarvis_utf8_valid("caf\xc3\xa9", 5));
    CU_ASSERT_FALSE(jarvis_utf8_valid("caf\xc3", 4));
    CU_ASSERT_FALSE(jarvis_utf8_valid("\xed\xa0\x80", 3)); /* a surrogate */
    CU_ASSERT_FALSE(jarvis_utf8_valid("\xc0\xaf", 2));     /* overlong */
}

/* After a bounded write: an incomplete last character is dropped. */
static void test_drop_partial(void)
{
    char a[] = "ab\xc3", b[] = "ab\xe2\x82", c[] = "ab\xf0\x9f\x98", d[] = "caf\xc3\xa9",
         e[] = "x\x82", f[] = "";

    CU_ASSERT_STRING_EQUAL(utf8_drop_partial(a), "ab");
    CU_ASSERT_STRING_EQUAL(utf8_drop_partial(b), "ab");
    CU_ASSERT_STRING_EQUAL(utf8_drop_partial(c), "ab");
    CU_ASSERT_STRING_EQUAL(utf8_drop_partial(d), "caf\xc3\xa9");
    CU_ASSERT_STRING_EQUAL(utf8_drop_partial(e), "x\x82"); /* a lone tail: left as is */
    CU_ASSERT_STRING_EQUAL(utf8_drop_partial(f), "");
}

/* utf8_seq_len, one malformation at a time (RFC 3629's table). */
static void test_seq_len(void)
{
    static const struct {
        const char *s;
        size_t n, want;
    } cases[] = {
        {"\xc3\xa9", 2, 2},
        {"\xe2\x82\xac", 3, 3},
        {"\xf0\x9f\x98\x80", 4, 4},
        {"\xf4\x8f\xbf\xbf", 4, 4}, /* U+10FFFF */
        {"\xed\x9f\xbf", 3, 3},     /* U+D7FF, just below the surrogates */
        {"\x80", 1, 0},             /* a continuation byte cannot lead */
        {"\xbf\x80", 2, 0},
        {"\xc0\x80", 2, 0}, /* overlong lead bytes */
        {"\xc1\xbf", 2, 0},
        {"\xf5\x80\x80\x80", 4, 0}, /* past U+10FFFF */
        {"\xff", 1, 0},
        {"\xc3", 1, 0}, /* truncated: n too short */
        {"\xe2\x82", 2, 0},
        {"\xf0\x9f\x98", 3, 0},
        {"\xc3\x41", 2, 0}, /* second byte not a continuation */
        {"\xc3\xc3", 2, 0},
        {"\xe0\x9f\xbf", 3, 0},     /* overlong 3-byte */
        {"\xed\xa0\x80", 3, 0},     /* a surrogate */
        {"\xf0\x8f\xbf\xbf", 4, 0}, /* overlong 4-byte */
        {"\xf4\x90\x80\x80", 4, 0}, /* above U+10FFFF */
        {"\xe2\x82\x41", 3, 0},     /* third byte not a continuation */
        {"\xe2\x82\xc0", 3, 0},
        {"\xf0\x9f\x98\x41", 4, 0}, /* fourth byte */
        {"\xf0\x9f\x41\x80", 4, 0},
    };
    size_t i;

    for (i = 0; i < sizeof cases / sizeof cases[0]; i++)
        CU_ASSERT_EQUAL(utf8_seq_len((const unsigned char *)cases[i].s, cases[i].n), cases[i].want);
}

static void test_valid_more(void)
{
    CU_ASSERT_TRUE(jarvis_utf8_valid("", 0));
    CU_ASSERT_TRUE(jarvis_utf8_valid("plain ascii\x7f", 12));
    CU_ASSERT_TRUE(jarvis_utf8_valid("a\xf0\x9f\x98\x80z", 6));
    CU_ASSERT_FALSE(jarvis_utf8_valid("ok\x80", 3));                /* a lone continuation byte */
    CU_ASSERT_FALSE(jarvis_utf8_valid("a\xf0\x9f\x98\x80\xff", 6)); /* bad after a good one */
    /* n bounds the check: a cut inside a character is malformed. */
    CU_ASSERT_FALSE(jarvis_utf8_valid("\xe2\x82\xac", 2));
}

static char *format(char *buf, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static char *format(char *buf, size_t len, const char *fmt, ...)
{
    va_list ap;
    char *r;

    va_start(ap, fmt);
    r = utf8_vformat(buf, len, fmt, ap);
    va_end(ap);
    return r;
}

/* A bounded write that would cut a character drops it whole. */
static void test_vformat(void)
{
    char buf[5];

    CU_ASSERT_PTR_EQUAL(format(buf, sizeof buf, "%s", "ab"), buf);
    CU_ASSERT_STRING_EQUAL(buf, "ab");
    CU_ASSERT_STRING_EQUAL(format(buf, sizeof buf, "%s%s", "ab", "\xe2\x82\xac"), "ab");
    CU_ASSERT_STRING_EQUAL(format(buf, sizeof buf, "%s", "abc\xc3\xa9"), "abc");
    CU_ASSERT_STRING_EQUAL(format(buf, sizeof buf, "%d", 123456), "1234");
    CU_ASSERT_STRING_EQUAL(format(buf, sizeof buf, "%s", "\xc3\xa9\xc3\xa9"), "\xc3\xa9\xc3\xa9");
}

static CU_TestInfo tests[] = {
    {"sequence length: each malformation", test_seq_len},
    {"well-formedness: more cases", test_valid_more},
    {"bounded formatted write", test_vformat},
    {"drop an incomplete last character", test_drop_partial},
    {"cut at every point", test_cut_every_point},
    {"cut through malformed bytes", test_cut_malformed},
    {"well-formedness", test_valid},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"utf8", NULL, NULL, NULL, NULL, tests},
    CU_SUITE_INFO_NULL,
};

int main(void)
{
    return tu_main(suites);
}
