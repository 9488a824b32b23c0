/*
 * utf8.c - the one UTF-8 checker, shared by the JSON lexer and the router, so
 * that every string that reaches a handler or the log is well-formed, and
 * the one place that cuts such strings short (on a code point boundary).
 */
#include "utf8.h"

#include <stdio.h>
#include <string.h>

size_t utf8_seq_len(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    size_t len, i;
    unsigned lo = 0x80, hi = 0xBF; /* allowed range of the second byte */

    if (c >= 0xC2 && c <= 0xDF)
        len = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        if (c == 0xE0)
            lo = 0xA0; /* overlong */
        else if (c == 0xED)
            hi = 0x9F; /* UTF-16 surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        if (c == 0xF0)
            lo = 0x90; /* overlong */
        else if (c == 0xF4)
            hi = 0x8F; /* above U+10FFFF */
    } else
        return 0;
    if (n < len || s[1] < lo || s[1] > hi)
        return 0;
    for (i = 2; i < len; i++)
        if (s[i] < 0x80 || s[i] > 0xBF)
            return 0;
    return len;
}

size_t jarvis_utf8_next(const char *s, size_t n, uint32_t *cp)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t len, i;

    if (u[0] < 0x80) {
        *cp = u[0];
        return 1;
    }
    len = utf8_seq_len(u, n);
    if (len == 0)
        return 0;
    /* The lead byte keeps 7 - len bits (5, 4 or 3), each next byte 6. */
    *cp = u[0] & (0x7fu >> len);
    for (i = 1; i < len; i++)
        *cp = (*cp << 6) | (u[i] & 0x3fu);
    return len;
}

int jarvis_utf8_valid(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0, l;

    while (i < n) {
        if (p[i] < 0x80) {
            i++;
            continue;
        }
        l = utf8_seq_len(p + i, n - i);
        if (l == 0)
            return 0;
        i += l;
    }
    return 1;
}

size_t utf8_cut(const char *s, size_t n, size_t max)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0, step;

    while (i < n) {
        step = p[i] < 0x80 ? 1 : utf8_seq_len(p + i, n - i);
        if (step == 0)
            step = 1;
        if (i + step > max)
            break;
        i += step;
    }
    return i;
}

char *utf8_drop_partial(char *s)
{
    size_t n = strlen(s), back;

    /* A lead byte within the last 3 whose sequence would run past the end. */
    for (back = 1; back <= 3 && back <= n; back++) {
        unsigned char c = (unsigned char)s[n - back];
        size_t want = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 0;
        if (c >= 0x80 && c < 0xC0)
            continue; /* a continuation byte: look further back */
        if (want > back)
            s[n - back] = '\0';
        break;
    }
    return s;
}

char *utf8_vformat(char *buf, size_t len, const char *fmt, va_list ap)
{
    vsnprintf(buf, len, fmt, ap);
    return utf8_drop_partial(buf);
}
