/* test_timefmt.c - RFC 3339 UTC with milliseconds, the only wire time format. */
#include <stdio.h>
#include <time.h>

#include "schemas.h"
#include "testutil.h"
#include "timefmt.h"

static void expect(int64_t ms, const char *want)
{
    char buf[TS_RFC3339_LEN];

    CU_ASSERT_EQUAL_FATAL(ts_format_rfc3339(ms, buf, sizeof buf), 0);
    CU_ASSERT_STRING_EQUAL(buf, want);
    CU_ASSERT_TRUE(jv_is_date_time(buf));
}

static void test_format(void)
{
    expect(0, "1970-01-01T00:00:00.000Z");
    expect(1, "1970-01-01T00:00:00.001Z");
    expect(1795007417123LL, "2026-11-18T13:10:17.123Z");
    expect(951782400000LL, "2000-02-29T00:00:00.000Z");
    expect(-1, "1969-12-31T23:59:59.999Z");
    expect(253402300799999LL, "9999-12-31T23:59:59.999Z");
}

static void test_bounds(void)
{
    char buf[TS_RFC3339_LEN];

    CU_ASSERT_EQUAL(ts_format_rfc3339(253402300800000LL, buf, sizeof buf), -1);
    CU_ASSERT_EQUAL(ts_format_rfc3339(0, buf, 10), -1);
}

/* The same text as libc's gmtime_r gives, from year 0 to 9999: every
 * 97 days and 12345.678 s apart, so every month, leap day and time of day
 * comes round. */
static void test_matches_gmtime(void)
{
    const int64_t first = -62167219200000LL, last = 253402300799999LL;
    const int64_t step = 97LL * 86400000 + 12345678;
    char want[64], got[TS_RFC3339_LEN];
    int64_t ms;
    int bad = 0;

    for (ms = first; ms <= last && bad < 5; ms += step) {
        time_t t = (time_t)(ms >= 0 ? ms / 1000 : -((-ms + 999) / 1000));
        struct tm tm;
        gmtime_r(&t, &tm);
        snprintf(want, sizeof want, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                 (int)(ms - (int64_t)t * 1000));
        if (ts_format_rfc3339(ms, got, sizeof got) != 0 || strcmp(got, want) != 0) {
            fprintf(stderr, "\n  %lld: got %s, want %s\n", (long long)ms, got, want);
            bad++;
        }
    }
    CU_ASSERT_EQUAL(bad, 0);
    expect(first, "0000-01-01T00:00:00.000Z");
    CU_ASSERT_EQUAL(ts_format_rfc3339(first - 1, got, sizeof got), -1);
}

static void test_clocks(void)
{
    int64_t a = ts_now_ms(), m1 = ts_mono_us(), m2 = ts_mono_us();

    CU_ASSERT_TRUE(a > 1700000000000LL);
    CU_ASSERT_TRUE(m2 >= m1);
}

static CU_TestInfo tests[] = {
    {"formats RFC 3339 UTC milliseconds", test_format},
    {"refuses what does not fit", test_bounds},
    {"agrees with gmtime_r from year 0 to 9999", test_matches_gmtime},
    {"clocks", test_clocks},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"timefmt", NULL, NULL, NULL, NULL, tests},
    CU_SUITE_INFO_NULL,
};

int main(void)
{
    return tu_main(suites);
}
