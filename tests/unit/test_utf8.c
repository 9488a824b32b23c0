/* test_utf8.c - the UTF-8 checker and the one place that cuts strings
 * short: utf8_cut never splits a character, at any cut point. */
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

static CU_TestInfo tests[] = {
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
