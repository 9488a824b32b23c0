/*
 * trace.c - owns the rules of trace.h: which traceparent and request id
 * values the service takes from a request. The checks are strict on
 * purpose: a value that passes goes into every log line of its request and,
 * for traceparent, into the requests jarvis.web.fetch sends, so it must
 * not be able to carry anything but an id.
 */
#include "trace.h"

#include <string.h>

/* The fields of a version-00 traceparent: offset and length. */
#define TP_TRACE_ID_AT 3
#define TP_TRACE_ID_LEN 32
#define TP_PARENT_ID_AT 36
#define TP_PARENT_ID_LEN 16
#define TP_FLAGS_AT 53
#define TP_FLAGS_LEN 2

static int lower_hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

/* 1 if s[0..n) are lower-case hex digits, not all of them '0' unless
 * zeros_ok. */
static int hex_field(const char *s, size_t n, int zeros_ok)
{
    int nonzero = 0;
    size_t i;

    for (i = 0; i < n; i++) {
        if (!lower_hex(s[i]))
            return 0;
        nonzero |= s[i] != '0';
    }
    return nonzero || zeros_ok;
}

int trace_traceparent_valid(const char *s)
{
    if (s == NULL || strlen(s) != TRACE_TRACEPARENT_LEN)
        return 0;
    /* Version 00 only: a later version may add fields this check cannot
     * vouch for (and version ff is invalid in any case). */
    if (strncmp(s, "00-", 3) != 0 || s[TP_PARENT_ID_AT - 1] != '-' || s[TP_FLAGS_AT - 1] != '-')
        return 0;
    return hex_field(s + TP_TRACE_ID_AT, TP_TRACE_ID_LEN, 0) &&
           hex_field(s + TP_PARENT_ID_AT, TP_PARENT_ID_LEN, 0) &&
           hex_field(s + TP_FLAGS_AT, TP_FLAGS_LEN, 1);
}

int trace_request_id_valid(const char *s)
{
    size_t n;

    if (s == NULL)
        return 0;
    n = strlen(s);
    if (n == 0 || n > TRACE_MAX_REQUEST_ID)
        return 0;
    for (; *s; s++) {
        char c = *s;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              strchr("-_.:+/=@", c) != NULL))
            return 0;
    }
    return 1;
}
