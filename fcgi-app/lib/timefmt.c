/*
 * timefmt.c - owns the service's notion of "now" and its wire format.
 * Every timestamp the service emits goes through ts_format_rfc3339 so that
 * health, results and logs agree: UTC, milliseconds, a literal 'Z'.
 * Both functions are async-signal-safe: the fatal-signal handler (crash.c)
 * stamps its line with them.
 */
#include "timefmt.h"

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

/* The proleptic Gregorian date of a day count since 1970-01-01 (Howard
 * Hinnant's civil_from_days): plain arithmetic, where gmtime_r takes
 * glibc's time zone lock. */
static void civil_from_days(int64_t days, int64_t *year, unsigned *month, unsigned *day)
{
    int64_t z = days + 719468, era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100), mp = (5 * doy + 2) / 153;

    *day = doy - (153 * mp + 2) / 5 + 1;
    *month = mp < 10 ? mp + 3 : mp - 9;
    *year = (int64_t)yoe + era * 400 + (*month <= 2);
}

/* Writes v as exactly `width` decimal digits at p; returns p + width. */
static char *put_digits(char *p, unsigned v, int width)
{
    int i;

    for (i = width - 1; i >= 0; i--) {
        p[i] = (char)('0' + v % 10);
        v /= 10;
    }
    return p + width;
}

int ts_format_rfc3339(int64_t ms, char *buf, size_t len)
{
    /* Floor division so that times before 1970 keep a positive millisecond
     * and second of the day. */
    int64_t sec = ms / 1000, frac = ms % 1000, days, sod, year;
    unsigned month, day;
    char *p = buf;

    if (frac < 0) {
        frac += 1000;
        sec -= 1;
    }
    days = sec / 86400;
    sod = sec % 86400;
    if (sod < 0) {
        sod += 86400;
        days -= 1;
    }
    civil_from_days(days, &year, &month, &day);
    if (year < 0 || year > 9999 || len < sizeof "YYYY-MM-DDTHH:MM:SS.mmmZ")
        return -1;
    p = put_digits(p, (unsigned)year, 4);
    *p++ = '-';
    p = put_digits(p, month, 2);
    *p++ = '-';
    p = put_digits(p, day, 2);
    *p++ = 'T';
    p = put_digits(p, (unsigned)(sod / 3600), 2);
    *p++ = ':';
    p = put_digits(p, (unsigned)(sod / 60 % 60), 2);
    *p++ = ':';
    p = put_digits(p, (unsigned)(sod % 60), 2);
    *p++ = '.';
    p = put_digits(p, (unsigned)frac, 3);
    *p++ = 'Z';
    *p = '\0';
    return 0;
}
