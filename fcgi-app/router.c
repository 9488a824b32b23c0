/*
 * router.c - owns the URL space of the service.
 *
 * Matching is done on the raw path nginx passes in REQUEST_URI, not on the
 * decoded DOCUMENT_URI: a node_run_id may contain an encoded '/' (%2F) that
 * must stay inside its segment. As in kore, a path that matches with the
 * wrong method is a 405 with Allow, and only a path matching nothing is 404.
 */
#include "router.h"

#include <string.h>

#include "metrics.h"
#include "utf8.h"

#define M_GET 0x1
#define M_POST 0x2

struct route {
    const char *prefix; /* whole path, or the part before {node_run_id} */
    const char *suffix; /* NULL for an exact path */
    unsigned methods;
    const char *allow;
    enum route_ep ep;
};

static const struct route routes[] = {
    {"/v1/health", NULL, M_GET, "GET, HEAD", EP_HEALTH},
    {"/v1/version", NULL, M_GET, "GET, HEAD", EP_VERSION},
    {"/v1/atomic-node-runs:execute", NULL, M_POST, "POST", EP_EXECUTE},
    {"/v1/atomic-node-runs/", ":cancel", M_POST, "POST", EP_CANCEL},
    /* Not in the spec: the pool's Prometheus metrics (metrics.h). */
    {MX_PATH, NULL, M_GET, "GET, HEAD", EP_METRICS},
};

int route_percent_decode(const char *src, size_t len, char *dst, size_t dstlen)
{
    size_t i, o = 0;

    for (i = 0; i < len; i++) {
        int c = (unsigned char)src[i];
        if (c == '%') {
            int h, l;
            if (i + 2 >= len)
                return -1;
            h = jarvis_hex_value(src[i + 1]);
            l = jarvis_hex_value(src[i + 2]);
            if (h < 0 || l < 0)
                return -1;
            c = h * 16 + l;
            i += 2;
        }
        if (c == 0 || o + 1 >= dstlen)
            return -1;
        dst[o++] = (char)c;
    }
    dst[o] = '\0';
    return jarvis_utf8_valid(dst, o) ? (int)o : -1;
}

/* Returns 1 if path matches rt, extracting the {param} segment if any. */
static int path_matches(const struct route *rt, const char *path, const char **seg, size_t *seglen)
{
    size_t plen = strlen(rt->prefix), len = strlen(path), slen;

    if (rt->suffix == NULL)
        return strcmp(path, rt->prefix) == 0;
    slen = strlen(rt->suffix);
    if (len <= plen + slen || strncmp(path, rt->prefix, plen) != 0 ||
        strcmp(path + len - slen, rt->suffix) != 0)
        return 0;
    *seg = path + plen;
    *seglen = len - plen - slen;
    return memchr(*seg, '/', *seglen) == NULL;
}

int route_lookup(const char *method, const char *path, struct route_match *m, struct resp *err)
{
    unsigned want = 0;
    size_t i;

    memset(m, 0, sizeof *m);
    if (strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0)
        want = M_GET;
    else if (strcmp(method, "POST") == 0)
        want = M_POST;
    for (i = 0; i < sizeof routes / sizeof routes[0]; i++) {
        const struct route *rt = &routes[i];
        const char *seg = NULL;
        size_t seglen = 0;

        if (!path_matches(rt, path, &seg, &seglen))
            continue;
        if (!(rt->methods & want)) {
            resp_set_error(err, 405, "method_not_allowed", "Method Not Allowed", NULL);
            resp_add_header(err, "Allow", rt->allow);
            resp_set_reason(err, "%s not allowed here", method);
            return -1;
        }
        if (seg != NULL && route_percent_decode(seg, seglen, m->param, sizeof m->param) < 0) {
            resp_set_error(err, 400, "invalid_request", "Invalid node_run_id in path", NULL);
            resp_set_reason(err, "path parameter is not percent-encoded UTF-8 or too long");
            return -1;
        }
        m->ep = rt->ep;
        m->head_only = strcmp(method, "HEAD") == 0;
        return 0;
    }
    resp_set_error(err, 404, "not_found", "Not Found", NULL);
    return -1;
}
