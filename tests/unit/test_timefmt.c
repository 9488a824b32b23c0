/* test_timefmt.c - RFC 3339 UTC with milliseconds, the only wire time format. */
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

static void test_clocks(void)
{
    int64_t a = ts_now_ms(), m1 = ts_mono_us(), m2 = ts_mono_us();

    CU_ASSERT_TRUE(a > 1700000000000LL);
    CU_ASSERT_TRUE(m2 >= m1);
}

static CU_TestInfo tests[] = {
    {"formats RFC 3339 UTC milliseconds", test_format},
    {"refuses what does not fit", test_bounds},
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
