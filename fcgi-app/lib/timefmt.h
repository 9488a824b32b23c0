/* timefmt.h - wall-clock milliseconds and their RFC 3339 UTC form. */
#ifndef JARVIS_TIMEFMT_H
#define JARVIS_TIMEFMT_H

#include <stddef.h>
#include <stdint.h>

/* "2026-11-25T13:10:17.123Z" plus NUL, with room for 5-digit years. */
#define TS_RFC3339_LEN 32

/* Milliseconds since the Unix epoch, from CLOCK_REALTIME. */
int64_t ts_now_ms(void);

/* Monotonic milliseconds, for durations only. */
int64_t ts_mono_us(void);

/*
 * Writes `ms` as RFC 3339 UTC with milliseconds ("...T..:..:...mmmZ") into
 * buf. Returns 0, or -1 if the buffer is too small or the time unrepresentable.
 * Async-signal-safe (no lock, no stdio), as ts_now_ms is.
 */
int ts_format_rfc3339(int64_t ms, char *buf, size_t len);

#endif
