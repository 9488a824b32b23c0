/*
 * jarvis/util.h - small helpers of the core that node packs may use: UTF-8
 * and base64 decoding, hex digits, and the longest span the core honours.
 *
 * Part of the plugin contract (include/ is all a pack sees): each helper
 * has one implementation, in the core (fcgi-app/lib/util.c, fcgi-app/lib/utf8.c),
 * so a pack never carries a copy of its own. All are pure functions of
 * their arguments: thread-safe, no allocation.
 */
#ifndef JARVIS_UTIL_H
#define JARVIS_UTIL_H

#include <stddef.h>
#include <stdint.h>

/* The longest span the core honours, for budgets, waits and sleeps (about
 * 31 years): "now + span" in milliseconds stays far inside int64_t. */
#define JARVIS_MAX_SPAN_MS 1000000000000LL

/* ms as a whole number of milliseconds, at most JARVIS_MAX_SPAN_MS (a
 * double: budgets may be written 5.0, and JSON numbers may be huge). */
int64_t jarvis_clamp_span_ms(double ms);

/*
 * The UTF-8 sequence at s (n >= 1 bytes available): its length (1 to 4)
 * with its code point in *cp, or 0 when it is not well-formed (RFC 3629:
 * an overlong form, a surrogate, above U+10FFFF, or cut short by n).
 */
size_t jarvis_utf8_next(const char *s, size_t n, uint32_t *cp);

/* 1 if s[0..n) is entirely well-formed UTF-8, else 0. */
int jarvis_utf8_valid(const char *s, size_t n);

/* The value of hex digit c (0-9, a-f, A-F): 0 to 15, or -1. */
int jarvis_hex_value(int c);

enum jarvis_base64 {
    /* RFC 4648 section 4, as Python's base64.b64decode(s, validate=True):
     * standard alphabet, length a multiple of 4, at most two '=' and only
     * at the end; bits left over in the last group are dropped. */
    JARVIS_BASE64_STRICT,
    /* RFC 4648 section 5 as JOSE writes it (RFC 7515): URL-safe alphabet,
     * padding optional (trailing '=' are ignored). */
    JARVIS_BASE64_URL,
};

/*
 * Decodes s[0..n) into out (cap bytes; n / 4 * 3 + 2 always suffices).
 * Returns the decoded length, or -1 with *why (if why is not NULL) set to
 * a static English reason: bad length, padding, a character outside the
 * alphabet, or out too small.
 */
long jarvis_base64_decode(const char *s, size_t n, enum jarvis_base64 variant, unsigned char *out,
                          size_t cap, const char **why);

#endif /* JARVIS_UTIL_H */
