/* utf8.h - UTF-8 well-formedness (RFC 3629: no overlongs, no surrogates). */
#ifndef JARVIS_UTF8_H
#define JARVIS_UTF8_H

#include <stddef.h>

/* Returns the length of the well-formed sequence at s (at most n bytes
 * available), or 0 if it is malformed. s[0] must be >= 0x80. */
size_t utf8_seq_len(const unsigned char *s, size_t n);

/* Returns 1 if s[0..n) is entirely well-formed UTF-8. */
int utf8_valid(const char *s, size_t n);

#endif
