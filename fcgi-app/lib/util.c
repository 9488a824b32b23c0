/*
 * util.c - owns the helpers of jarvis/util.h that are not UTF-8 (utf8.c
 * has those): hex digits, base64 decoding and the span clamp, shared by
 * the core (router, JWKS, deadlines) and the node packs.
 */
#include "jarvis/util.h"

int64_t jarvis_clamp_span_ms(double ms)
{
    return ms > (double)JARVIS_MAX_SPAN_MS ? JARVIS_MAX_SPAN_MS : (int64_t)ms;
}

int jarvis_hex_value(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* The 6-bit value of c in the variant's alphabet, or -1. */
static int b64_value(char c, enum jarvis_base64 variant)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == (variant == JARVIS_BASE64_URL ? '-' : '+'))
        return 62;
    if (c == (variant == JARVIS_BASE64_URL ? '_' : '/'))
        return 63;
    return -1;
}

static long b64_fail(const char **why, const char *reason)
{
    if (why != NULL)
        *why = reason;
    return -1;
}

long jarvis_base64_decode(const char *s, size_t n, enum jarvis_base64 variant, unsigned char *out,
                          size_t cap, const char **why)
{
    size_t pad = 0, i, o = 0;
    uint32_t acc = 0;
    int bits = 0;

    if (variant == JARVIS_BASE64_STRICT && n % 4 != 0)
        return b64_fail(why, "length is not a multiple of 4");
    while (pad < n && s[n - 1 - pad] == '=')
        pad++;
    if (variant == JARVIS_BASE64_STRICT && pad > 2)
        return b64_fail(why, "more than two '=' of padding");
    n -= pad;
    /* One character alone encodes no whole byte: no encoder writes that. */
    if (n % 4 == 1)
        return b64_fail(why, "length is not one an encoding has");
    for (i = 0; i < n; i++) {
        int v = b64_value(s[i], variant);
        if (v < 0)
            return b64_fail(why, s[i] == '=' ? "'=' before the end"
                                             : "a character outside the base64 alphabet");
        acc = (acc << 6 | (uint32_t)v) & 0xffffff;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (o == cap)
                return b64_fail(why, "the decoded bytes do not fit");
            out[o++] = (unsigned char)(acc >> bits);
        }
    }
    return (long)o;
}
