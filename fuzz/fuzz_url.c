/*
 * fuzz_url.c - fuzz target for jarvis.web.fetch's URL checks and address
 * policy (plugins/core/web_fetch_url.c, web_fetch_policy.c). Only the
 * parsers and the classifier run: nothing is resolved, nothing connects.
 *
 * Input: byte 0 picks the part, the rest is its text:
 *  - url: a URL as a client gives it, checked under the default policy (no
 *    JARVIS_ATOMIC_HTTP_* variable is set in this process);
 *  - policy: "<cidrs>\n<ports>" as the two variables, then each range's own
 *    address checked against the policy it made;
 *  - address: 16 raw bytes, IPv6 form, for the classifier alone.
 *
 * Invariants beyond "no crash":
 *  - an accepted URL is http(s) with a host; curl's re-serialization of it
 *    is accepted too, and re-serializes to itself (a fixed point), with the
 *    same origin (scheme, host, port), or none only for a host longer than
 *    a DNS name can be;
 *  - under the default policy an accepted URL whose host is a numeric
 *    address in any spelling names a public address on port 80 or 443;
 *  - the classifier judges an IPv4 address alike in every IPv6 form that
 *    embeds it (mapped, SIIT, NAT64, compatible, 6to4) and as text;
 *  - a parsed policy lets each of its ranges' own address through on that
 *    entry's ports, and with no range refuses exactly what the default
 *    classifier denies or a port off the list.
 */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ctx.h"
#include "fuzz_util.h"
#include "utf8.h"
#include "web_fetch.h"
#include "web_fetch_policy.h"

enum { PART_URL = 0, PART_POLICY, PART_ADDRESS };

/* The accepted URL re-serialized by curl (caller curl_free's), checked. */
static char *accepted_url(CURLU *u)
{
    char *s = NULL;

    FZ_CHECK(curl_url_get(u, CURLUPART_URL, &s, 0) == CURLUE_OK && s != NULL);
    FZ_CHECK(strncasecmp(s, "http://", 7) == 0 || strncasecmp(s, "https://", 8) == 0);
    return s;
}

/* Under the default policy a numeric host must be public, on 80 or 443. */
static void check_default_policy(CURLU *u)
{
    unsigned char a[16];
    char *host = NULL, *port = NULL;
    size_t len;

    FZ_CHECK(curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK);
    len = strlen(host);
    if (len >= 2 && host[0] == '[') {
        memmove(host, host + 1, len - 2);
        host[len - 2] = '\0';
    }
    if (wf_addr_parse_host(host, a) == 0) {
        FZ_CHECK(wf_addr_denied(a) == NULL);
        FZ_CHECK(curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) == CURLUE_OK);
        FZ_CHECK(strcmp(port, "80") == 0 || strcmp(port, "443") == 0);
    }
    curl_free(port);
    curl_free(host);
}

static size_t host_len(CURLU *u)
{
    char *host = NULL;
    size_t n;

    FZ_CHECK(curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK);
    n = strlen(host);
    curl_free(host);
    return n;
}

static void check_url(const char *url)
{
    struct jarvis_ctx ctx;
    struct wf_origin o1, o2;
    CURLU *u = NULL, *u2 = NULL;
    char *s, *s2;

    memset(&ctx, 0, sizeof ctx);
    if (wf_url_check(&ctx, "url", url, &u) != JARVIS_OK) {
        FZ_CHECK(u == NULL && ctx.fail_reason[0] != '\0');
        FZ_CHECK(jarvis_utf8_valid(ctx.fail_reason, strlen(ctx.fail_reason)) ||
                 !jarvis_utf8_valid(url, strlen(url)));
        return;
    }
    FZ_CHECK(u != NULL);
    check_default_policy(u);
    s = accepted_url(u);
    memset(&ctx, 0, sizeof ctx);
    FZ_CHECK(wf_url_check(&ctx, "url", s, &u2) == JARVIS_OK);
    s2 = accepted_url(u2);
    FZ_CHECK(strcmp(s, s2) == 0);
    /* A host longer than wf_origin holds (no DNS name is) has no origin,
     * and a redirect from or to it fails closed (web_fetch_http.c). */
    if (wf_url_origin(s, &o1) == 0) {
        FZ_CHECK(wf_url_origin(s2, &o2) == 0);
        FZ_CHECK(strcmp(o1.scheme, o2.scheme) == 0 && strcmp(o1.host, o2.host) == 0 &&
                 strcmp(o1.port, o2.port) == 0);
    } else {
        FZ_CHECK(host_len(u) >= sizeof o1.host);
    }
    curl_free(s2);
    curl_free(s);
    curl_url_cleanup(u2);
    curl_url_cleanup(u);
}

/* Every IPv6 form that embeds v4, judged as v4 itself. */
static void check_embedded(const unsigned char v4[4])
{
    unsigned char forms[5][16] = {
        {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff},    /* mapped */
        {0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0},    /* SIIT */
        {0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0}, /* NAT64 */
        {0},                                           /* compatible */
        {0x20, 0x02},                                  /* 6to4 */
    };
    char text[INET_ADDRSTRLEN];
    unsigned char parsed[16];
    const char *verdict;
    size_t i;

    for (i = 0; i < 4; i++)
        memcpy(forms[i] + 12, v4, 4);
    memcpy(forms[4] + 2, v4, 4);
    verdict = wf_addr_denied(forms[0]);
    for (i = 1; i < 5; i++) {
        /* ::/128 and ::1/128 are not "compatible" forms: they are denied. */
        if (i == 3 && v4[0] == 0 && v4[1] == 0 && v4[2] == 0 && v4[3] <= 1) {
            FZ_CHECK(wf_addr_denied(forms[i]) != NULL);
            continue;
        }
        FZ_CHECK(wf_addr_denied(forms[i]) == verdict);
    }
    FZ_CHECK(inet_ntop(AF_INET, v4, text, sizeof text) != NULL);
    FZ_CHECK(wf_addr_parse_host(text, parsed) == 0 && memcmp(parsed, forms[0], 16) == 0);
}

static void check_address(const uint8_t *data, size_t size)
{
    unsigned char a[16] = {0}, parsed[16];
    char text[INET6_ADDRSTRLEN], why[WF_POLICY_WHY_LEN];
    struct wf_policy none;
    int port = size > 17 ? (data[16] << 8 | data[17]) : 80;

    memcpy(a, data, size < 16 ? size : 16);
    check_embedded(a + 12);
    check_embedded(a);
    FZ_CHECK(inet_ntop(AF_INET6, a, text, sizeof text) != NULL);
    FZ_CHECK(wf_addr_parse_host(text, parsed) == 0 && memcmp(parsed, a, 16) == 0);
    FZ_CHECK(wf_policy_parse(&none, NULL, NULL, why, sizeof why) == 0);
    FZ_CHECK((wf_policy_check(&none, a, port, why, sizeof why) == 0) ==
             (wf_addr_denied(a) == NULL && (port == 80 || port == 443)));
}

static void check_policy(const char *text)
{
    struct wf_policy p;
    char err[256], why[WF_POLICY_WHY_LEN], *cidrs = strdup(text), *ports;
    size_t i;

    FZ_CHECK(cidrs != NULL);
    ports = strchr(cidrs, '\n');
    if (ports != NULL)
        *ports++ = '\0';
    err[0] = '\0';
    if (wf_policy_parse(&p, cidrs, ports, err, sizeof err) != 0) {
        FZ_CHECK(err[0] != '\0');
        free(cidrs);
        return;
    }
    FZ_CHECK(p.ncidrs <= WF_POLICY_MAX_CIDRS && p.nports <= WF_POLICY_MAX_PORTS);
    FZ_CHECK(p.nports > 0 || p.any_port);
    for (i = 0; i < p.ncidrs; i++) {
        const struct wf_cidr *c = &p.cidrs[i];
        int port = c->port > 0 ? c->port : c->port == WF_CIDR_ANY_PORT ? 1 : 0;
        FZ_CHECK(c->bits >= 0 && c->bits <= 128);
        if (port == 0 && p.any_port)
            port = 65535;
        else if (port == 0)
            port = p.ports[0];
        FZ_CHECK(wf_policy_check(&p, c->net, port, why, sizeof why) == 0);
    }
    free(cidrs);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int ready;
    char *text;

    if (!ready) {
        /* The default policy and no host lists, whatever the caller's shell has. */
        unsetenv("JARVIS_ATOMIC_HTTP_ALLOWED_CIDRS");
        unsetenv("JARVIS_ATOMIC_HTTP_ALLOWED_PORTS");
        unsetenv("JARVIS_ATOMIC_HTTP_ALLOWED_HOSTS");
        unsetenv("JARVIS_ATOMIC_HTTP_BLOCKED_HOSTS");
        ready = 1;
    }
    if (size < 1)
        return 0;
    switch (data[0] % 3) {
    case PART_ADDRESS: check_address(data + 1, size - 1); return 0;
    case PART_POLICY:
        text = fz_strndup(data + 1, size - 1);
        check_policy(text);
        free(text);
        return 0;
    default:
        text = fz_strndup(data + 1, size - 1);
        check_url(text);
        free(text);
        return 0;
    }
}
