/* test_trace.c - the traceparent and request id checks of trace.h. */
#include <stdio.h>
#include <string.h>

#include "testutil.h"
#include "trace.h"

#define GOOD_TP "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

static void test_traceparent_good(void)
{
    CU_ASSERT_TRUE(trace_traceparent_valid(GOOD_TP));
    /* flags may be anything hex, zero included */
    CU_ASSERT_TRUE(
        trace_traceparent_valid("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"));
    CU_ASSERT_TRUE(
        trace_traceparent_valid("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-ff"));
    /* one nonzero digit is enough */
    CU_ASSERT_TRUE(
        trace_traceparent_valid("00-00000000000000000000000000000001-0000000000000001-01"));
}

static void test_traceparent_bad(void)
{
    static const char *const bad[] = {
        "",
        "00",
        /* all-zero trace-id, then all-zero parent-id */
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
        /* upper case */
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0A",
        /* other versions: ff is invalid, 01 is not ours to vouch for */
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        /* field lengths and separators */
        "00-4bf92f3577b34da6a3ce929d0e0e473-600f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b-701",
        "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7_01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1",
        /* trailing or leading bytes, non-hex */
        GOOD_TP " ",
        " " GOOD_TP,
        GOOD_TP "-extra",
        "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0\n",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902\xc3\xa9-01",
    };
    size_t i;

    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (trace_traceparent_valid(bad[i]))
            fprintf(stderr, "accepted: \"%s\"\n", bad[i]);
        CU_ASSERT_FALSE(trace_traceparent_valid(bad[i]));
    }
    CU_ASSERT_FALSE(trace_traceparent_valid(NULL));
}

static void test_request_id(void)
{
    static const char *const good[] = {
        "0123456789abcdef0123456789abcdef", /* nginx's $request_id */
        "f81d4fae-7dec-11d0-a765-00a0c91e6bf6",
        "01ARZ3NDEKTSV4RRFFQ69G5FAV",
        "aGVsbG8+/w==",
        "svc:req_1.2@host",
        "x",
    };
    static const char *const bad[] = {
        "",      "two words", "a\"b", "a\\b",       "line\nbreak", "tab\t", "caf\xc3\xa9",
        "a=b c", "<x>",       "a,b",  "semi;colon",
    };
    char longest[TRACE_MAX_REQUEST_ID + 2];
    size_t i;

    for (i = 0; i < sizeof good / sizeof good[0]; i++)
        CU_ASSERT_TRUE(trace_request_id_valid(good[i]));
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CU_ASSERT_FALSE(trace_request_id_valid(bad[i]));
    CU_ASSERT_FALSE(trace_request_id_valid(NULL));
    memset(longest, 'a', TRACE_MAX_REQUEST_ID);
    longest[TRACE_MAX_REQUEST_ID] = '\0';
    CU_ASSERT_TRUE(trace_request_id_valid(longest));
    longest[TRACE_MAX_REQUEST_ID] = 'a';
    longest[TRACE_MAX_REQUEST_ID + 1] = '\0';
    CU_ASSERT_FALSE(trace_request_id_valid(longest));
}

static CU_TestInfo tests[] = {
    {"traceparent: valid version-00 values", test_traceparent_good},
    {"traceparent: everything else refused", test_traceparent_bad},
    {"request ids: bounded, a safe charset", test_request_id},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"trace", NULL, NULL, NULL, NULL, tests},
    CU_SUITE_INFO_NULL,
};

int main(void)
{
    return tu_main(suites);
}
