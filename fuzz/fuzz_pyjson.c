/*
 * fuzz_pyjson.c - fuzz target for plugins/core/pyjson.c, the writer behind
 * jarvis.core.echo that must match Python's json.dumps(v, sort_keys=True).
 *
 * Input: a JSON text, decoded as a request body is (the echo node's inputs
 * come that way); its first 8 bytes are also read as a raw double.
 *
 * Invariants beyond "no crash":
 *  - every decoded value (all numbers finite) is written, in ASCII only;
 *  - the text re-parses (strictly) to an equal value, and writing that
 *    value again gives the same bytes (a fixed point);
 *  - object keys come out in sorted (byte) order;
 *  - a finite double's repr reads back as the same double, and looks as
 *    Python's repr does (digits, one '.' or an exponent, "e+XX"/"e-XX").
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "body.h"
#include "fuzz_util.h"
#include "pyjson.h"

/* A body limit above anything libFuzzer makes (-max_len). */
#define FZ_MAX_BODY (1024 * 1024)

static void check_repr(double d)
{
    char buf[40];
    const char *e;

    if (!isfinite(d)) {
        FZ_CHECK(pyjson_float_repr(d, buf, sizeof buf) == -1);
        return;
    }
    FZ_CHECK(pyjson_float_repr(d, buf, sizeof buf) == 0);
    FZ_CHECK(strtod(buf, NULL) == d && (signbit(strtod(buf, NULL)) == signbit(d)));
    FZ_CHECK(strspn(buf, "-0123456789.e+") == strlen(buf));
    e = strchr(buf, 'e');
    if (e == NULL) {
        FZ_CHECK(strchr(buf, '.') != NULL); /* "1.0", never "1" */
    } else {
        FZ_CHECK((e[1] == '+' || e[1] == '-') && strlen(e + 2) >= 2);
        /* A mantissa with a fraction ends in a nonzero digit: "1.5e+16". */
        FZ_CHECK(memchr(buf, '.', (size_t)(e - buf)) == NULL || (e[-1] != '.' && e[-1] != '0'));
    }
}

/* json-c keeps an object's keys in the order the text gave them, so the
 * writer's output read back shows its order: strictly increasing bytes. */
static void check_sorted(json_object *v)
{
    const char *prev = NULL;
    size_t i;

    if (json_object_is_type(v, json_type_array)) {
        for (i = 0; i < json_object_array_length(v); i++)
            check_sorted(json_object_array_get_idx(v, i));
        return;
    }
    if (!json_object_is_type(v, json_type_object))
        return;
    json_object_object_foreach(v, key, val)
    {
        FZ_CHECK(prev == NULL || strcmp(prev, key) < 0);
        prev = key;
        check_sorted(val);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_object *v = NULL, *back = NULL;
    struct resp r;
    char *text, *out, *again;
    size_t i, n;
    double d;

    if (size >= sizeof d) {
        memcpy(&d, data, sizeof d);
        check_repr(d);
    }
    text = fz_strndup(data, size);
    resp_init(&r);
    if (body_parse_json(text, size, FZ_MAX_BODY, &v, &r) != 0)
        goto out;
    out = pyjson_dumps_sorted(v);
    FZ_CHECK(out != NULL);
    n = strlen(out);
    for (i = 0; i < n; i++)
        FZ_CHECK((unsigned char)out[i] < 0x80);
    FZ_CHECK(body_parse_json(out, n, n + FZ_REPARSE_SLACK, &back, &r) == 0);
    FZ_CHECK(json_object_equal(v, back));
    again = pyjson_dumps_sorted(back);
    FZ_CHECK(again != NULL && strcmp(out, again) == 0);
    check_sorted(back);
    free(again);
    free(out);
    json_object_put(back);
out:
    json_object_put(v);
    resp_cleanup(&r);
    free(text);
    return 0;
}
