/*
 * timefmt.c - owns the service's notion of "now" and its wire format.
 * Every timestamp the service emits goes through ts_format_rfc3339 so that
 * health, results and logs agree: UTC, milliseconds, a literal 'Z'.
 */
#include "timefmt.h"

#include <stdio.h>
#include <time.h>

int64_t ts_now_ms(void)
{
    struct timespec t;

    clock_gettime(CLOCK_REALTIME, &t);
    return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

int64_t ts_mono_us(void)
{
    struct timespec t;

    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000 + t.tv_nsec / 1000;
}

int ts_format_rfc3339(int64_t ms, char *buf, size_t len)
{
    /* Floor division so that times before 1970 keep a positive millisecond. */
    int64_t sec = ms / 1000, frac = ms % 1000;
    struct tm tm;
    time_t t;
    int n;

    if (frac < 0) {
        frac += 1000;
        sec -= 1;
    }
    t = (time_t)sec;
    if (gmtime_r(&t, &tm) == NULL || tm.tm_year + 1900 < 0 || tm.tm_year + 1900 > 9999)
        return -1;
    n = snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)frac);
    return (n < 0 || (size_t)n >= len) ? -1 : 0;
}
