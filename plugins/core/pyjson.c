/*
 * pyjson.c - a serializer that matches CPython's json module (defaults plus
 * sort_keys=True). Keys sort by code point, which for UTF-8 is byte order;
 * strings are escaped to ASCII with \uXXXX (surrogate pairs above the BMP).
 */
#include "pyjson.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/printbuf.h>

#include "jarvis/util.h"

int pyjson_float_repr(double d, char *buf, size_t len)
{
    char tmp[40], digits[20];
    int prec, exp10 = 0, nd = 0, decpt, n;
    const char *p;
    size_t o = 0;

    if (!isfinite(d))
        return -1;
    /* Fewest significant digits that read back as the same double. */
    for (prec = 1; prec <= 17; prec++) {
        snprintf(tmp, sizeof tmp, "%.*e", prec - 1, d);
        if (strtod(tmp, NULL) == d)
            break;
    }
    for (p = tmp; *p && *p != 'e'; p++)
        if (*p >= '0' && *p <= '9')
            digits[nd++] = *p;
    exp10 = atoi(p + 1);
    while (nd > 1 && digits[nd - 1] == '0')
        nd--;
    digits[nd] = '\0';
    decpt = exp10 + 1;
    if (signbit(d))
        tmp[o++] = '-';
    if (decpt <= -4 || decpt > 16) {
        tmp[o++] = digits[0];
        if (nd > 1) {
            tmp[o++] = '.';
            memcpy(tmp + o, digits + 1, (size_t)nd - 1);
            o += (size_t)nd - 1;
        }
        n = snprintf(tmp + o, sizeof tmp - o, "e%c%02d", exp10 < 0 ? '-' : '+', abs(exp10));
        o += (size_t)n;
    } else if (decpt <= 0) {
        o += (size_t)snprintf(tmp + o, sizeof tmp - o, "0.%.*s%s", -decpt, "0000", digits);
    } else if (decpt >= nd) {
        o += (size_t)snprintf(tmp + o, sizeof tmp - o, "%s%.*s.0", digits, decpt - nd,
                              "0000000000000000");
    } else {
        o += (size_t)snprintf(tmp + o, sizeof tmp - o, "%.*s.%s", decpt, digits, digits + decpt);
    }
    if (o >= len)
        return -1;
    memcpy(buf, tmp, o);
    buf[o] = '\0';
    return 0;
}

/* Decodes one UTF-8 sequence at s[*i] and steps past it. json-c strings
 * from the body are valid UTF-8 (the lexer checks); a byte that is not
 * (a handler's own string) stands for itself, as U+0080..U+00FF. */
static uint32_t next_cp(const unsigned char *s, size_t n, size_t *i)
{
    uint32_t cp;
    size_t len = jarvis_utf8_next((const char *)s + *i, n - *i, &cp);

    if (len == 0) {
        cp = s[*i];
        len = 1;
    }
    *i += len;
    return cp;
}

static void put_string(struct printbuf *pb, const char *str, size_t n)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;

    printbuf_memappend(pb, "\"", 1);
    while (i < n) {
        uint32_t cp = next_cp(s, n, &i);
        switch (cp) {
        case '"': printbuf_memappend(pb, "\\\"", 2); continue;
        case '\\': printbuf_memappend(pb, "\\\\", 2); continue;
        case '\n': printbuf_memappend(pb, "\\n", 2); continue;
        case '\r': printbuf_memappend(pb, "\\r", 2); continue;
        case '\t': printbuf_memappend(pb, "\\t", 2); continue;
        case '\b': printbuf_memappend(pb, "\\b", 2); continue;
        case '\f': printbuf_memappend(pb, "\\f", 2); continue;
        default: break;
        }
        if (cp >= 0x20 && cp < 0x7F) {
            char c = (char)cp;
            printbuf_memappend(pb, &c, 1);
        } else if (cp < 0x10000) {
            sprintbuf(pb, "\\u%04" PRIx32, cp);
        } else {
            cp -= 0x10000;
            sprintbuf(pb, "\\u%04" PRIx32 "\\u%04" PRIx32, 0xD800 + (cp >> 10),
                      0xDC00 + (cp & 0x3FF));
        }
    }
    printbuf_memappend(pb, "\"", 1);
}

static int cmp_keys(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int put_value(struct printbuf *pb, json_object *v);

static int put_object(struct printbuf *pb, json_object *v)
{
    size_t n = (size_t)json_object_object_length(v), i = 0;
    const char **keys;
    int rc = 0;

    if (n == 0) {
        printbuf_memappend(pb, "{}", 2);
        return 0;
    }
    keys = malloc(n * sizeof *keys);
    if (keys == NULL)
        return -1;
    json_object_object_foreach(v, key, val)
    {
        (void)val;
        keys[i++] = key;
    }
    qsort(keys, n, sizeof *keys, cmp_keys);
    printbuf_memappend(pb, "{", 1);
    for (i = 0; i < n && rc == 0; i++) {
        if (i > 0)
            printbuf_memappend(pb, ", ", 2);
        put_string(pb, keys[i], strlen(keys[i]));
        printbuf_memappend(pb, ": ", 2);
        rc = put_value(pb, json_object_object_get(v, keys[i]));
    }
    printbuf_memappend(pb, "}", 1);
    free(keys);
    return rc;
}

static int put_value(struct printbuf *pb, json_object *v)
{
    char num[40];
    size_t i, n;
    int rc = 0;

    switch (json_object_get_type(v)) {
    case json_type_null: printbuf_memappend(pb, "null", 4); return 0;
    case json_type_boolean:
        if (json_object_get_boolean(v))
            printbuf_memappend(pb, "true", 4);
        else
            printbuf_memappend(pb, "false", 5);
        return 0;
    case json_type_int:
        if (json_object_get_int64(v) >= 0)
            snprintf(num, sizeof num, "%" PRIu64, json_object_get_uint64(v));
        else
            snprintf(num, sizeof num, "%" PRId64, json_object_get_int64(v));
        printbuf_memappend(pb, num, (int)strlen(num));
        return 0;
    case json_type_double:
        if (pyjson_float_repr(json_object_get_double(v), num, sizeof num) != 0)
            return -1;
        printbuf_memappend(pb, num, (int)strlen(num));
        return 0;
    case json_type_string:
        put_string(pb, json_object_get_string(v), (size_t)json_object_get_string_len(v));
        return 0;
    case json_type_array:
        n = json_object_array_length(v);
        printbuf_memappend(pb, "[", 1);
        for (i = 0; i < n && rc == 0; i++) {
            if (i > 0)
                printbuf_memappend(pb, ", ", 2);
            rc = put_value(pb, json_object_array_get_idx(v, i));
        }
        printbuf_memappend(pb, "]", 1);
        return rc;
    case json_type_object: return put_object(pb, v);
    }
    return -1;
}

char *pyjson_dumps_sorted(json_object *v)
{
    struct printbuf *pb = printbuf_new();
    char *out = NULL;

    if (pb == NULL)
        return NULL;
    if (put_value(pb, v) == 0)
        out = strdup(pb->buf);
    printbuf_free(pb);
    return out;
}
