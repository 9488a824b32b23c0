/*
 * time_now.h - UTC timestamps as Python's datetime.isoformat() writes them,
 * for jarvis.core.time.now (and its tests).
 */
#ifndef JARVIS_CORE_TIME_NOW_H
#define JARVIS_CORE_TIME_NOW_H

#include <stddef.h>
#include <time.h>

/* "YYYY-MM-DDTHH:MM:SS.ffffff+00:00" plus NUL */
#define CORE_ISOFORMAT_LEN 33

/*
 * Writes ts (since the Unix epoch, UTC) as datetime.isoformat() writes an
 * aware UTC datetime: "2026-11-25T13:40:29.123456+00:00", microseconds
 * truncated, and no fraction at all when they are 0. Returns 0, or -1 when
 * buf is too small or the year is outside Python's 1..9999.
 */
int core_format_isoformat(const struct timespec *ts, char *buf, size_t len);

#endif
