/*
 * fuzz_path.c - fuzz target for fcgi-app/router.c: method + raw path to an
 * endpoint (404 vs 405 vs 400), and the percent-decoding of the
 * {node_run_id} segment of a cancel.
 *
 * Input: byte 0 picks the method, the rest is the raw path.
 *
 * Invariants beyond "no crash":
 *  - every refusal is 400, 404 or 405 (with Allow) in valid UTF-8 JSON;
 *  - a decoded id is valid UTF-8 without NUL and at most ROUTE_MAX_PARAM
 *    bytes, and round-trips: percent-encoded again (in upper or lower case
 *    hex) and routed, it decodes to the same id;
 *  - any string that is a valid id (the input itself, read as one) survives
 *    encode -> route -> decode unchanged;
 *  - route_percent_decode never answers more than it was given room for.
 */
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "metrics.h"
#include "router.h"
#include "utf8.h"

#define CANCEL_PREFIX "/v1/atomic-node-runs/"
#define CANCEL_SUFFIX ":cancel"
/* A fully encoded id: 3 bytes per byte, plus the route around it. */
#define FZ_MAX_ENCODED (3 * ROUTE_MAX_PARAM + sizeof CANCEL_PREFIX + sizeof CANCEL_SUFFIX)

static const char *const methods[] = {"GET", "HEAD", "POST", "PUT", "DELETE", "", "get", "OPTIONS"};

/* The cancel path of id, every byte but unreserved ones percent-encoded. */
static void cancel_path(const char *id, int lower, char *out)
{
    const char *hex = lower ? "0123456789abcdef" : "0123456789ABCDEF";
    size_t o = strlen(CANCEL_PREFIX);

    memcpy(out, CANCEL_PREFIX, o);
    for (; *id != '\0'; id++) {
        unsigned char c = (unsigned char)*id;
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            strchr("-._~", c) != NULL) {
            out[o++] = (char)c;
        } else {
            out[o++] = '%';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
        }
    }
    memcpy(out + o, CANCEL_SUFFIX, sizeof CANCEL_SUFFIX);
}

/* id, encoded and routed, must come back as itself. */
static void check_round_trip(const char *id, int lower)
{
    char path[FZ_MAX_ENCODED];
    struct route_match m;
    struct resp r;

    cancel_path(id, lower, path);
    resp_init(&r);
    FZ_CHECK(route_lookup("POST", path, &m, &r) == 0);
    FZ_CHECK(m.ep == EP_CANCEL && strcmp(m.param, id) == 0);
    resp_cleanup(&r);
}

static int is_id(const char *s, size_t n)
{
    return n > 0 && n <= ROUTE_MAX_PARAM && strlen(s) == n && jarvis_utf8_valid(s, n);
}

static void check_route(const char *method, const char *path)
{
    struct route_match m;
    struct resp r;
    int rc;

    resp_init(&r);
    rc = route_lookup(method, path, &m, &r);
    if (rc == 0) {
        /* Every route is under /v1/ but the metrics' one, matched exactly. */
        FZ_CHECK(m.ep != EP_NONE && (strncmp(path, "/v1/", 4) == 0 ||
                                     (m.ep == EP_METRICS && strcmp(path, MX_PATH) == 0)));
        FZ_CHECK(m.head_only == (strcmp(method, "HEAD") == 0));
        if (m.ep == EP_CANCEL) {
            FZ_CHECK(is_id(m.param, strlen(m.param)));
            check_round_trip(m.param, 0);
            check_round_trip(m.param, 1);
        } else {
            FZ_CHECK(m.param[0] == '\0');
        }
    } else {
        FZ_CHECK(r.status == 400 || r.status == 404 || r.status == 405);
        FZ_CHECK((r.status == 405) == (r.n_headers == 1));
        fz_check_resp(&r);
    }
    resp_cleanup(&r);
}

static void check_decode(const char *s, size_t n)
{
    char small[8], big[ROUTE_MAX_PARAM + 1];
    int got;

    got = route_percent_decode(s, n, small, sizeof small);
    FZ_CHECK(got < (int)sizeof small);
    if (got >= 0)
        FZ_CHECK(is_id(small, (size_t)got) || got == 0);
    got = route_percent_decode(s, n, big, sizeof big);
    if (got > 0) {
        FZ_CHECK(is_id(big, (size_t)got));
        check_round_trip(big, 0);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *path;

    if (size < 1)
        return 0;
    path = fz_strndup(data + 1, size - 1);
    check_route(methods[data[0] & 7], path);
    check_decode(path, size - 1);
    if (is_id(path, size - 1)) {
        check_round_trip(path, data[0] & 8);
    }
    free(path);
    return 0;
}
