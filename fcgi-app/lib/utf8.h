/* utf8.h - UTF-8 well-formedness (RFC 3629: no overlongs, no surrogates). */
#ifndef JARVIS_UTF8_H
#define JARVIS_UTF8_H

#include <stdarg.h>
#include <stddef.h>

#include "jarvis/util.h"

/* Returns the length of the well-formed sequence at s (at most n bytes
 * available), or 0 if it is malformed. s[0] must be >= 0x80. */
size_t utf8_seq_len(const unsigned char *s, size_t n);

/* jarvis_utf8_valid and jarvis_utf8_next (jarvis/util.h) are here too. */

/*
 * The longest prefix of s[0..n) of at most max bytes that ends on a code
 * point boundary: every place that shortens bytes from the network cuts
 * here, so a cut never splits a character (a malformed byte counts as one
 * unit of its own). Returns its length.
 */
size_t utf8_cut(const char *s, size_t n, size_t max);

/*
 * After a bounded write (snprintf, vsnprintf) may have cut s short: drops
 * a last character left incomplete, so s ends on a code point boundary.
 * Returns s.
 */
char *utf8_drop_partial(char *s);

/* vsnprintf into buf (len bytes), then utf8_drop_partial: the one bounded
 * formatted write for text that may hold client bytes. Returns buf. */
char *utf8_vformat(char *buf, size_t len, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

#endif
