/*
 * web_fetch_policy.c - the address policy of jarvis.web.fetch (SSRF). It
 * owns the list of ranges denied by default, the reading of the operator's
 * re-allowed ranges (JARVIS_ATOMIC_HTTP_ALLOWED_CIDRS) and ports
 * (JARVIS_ATOMIC_HTTP_ALLOWED_PORTS), and the verdict on one address and
 * port. web_fetch_http.c asks for that verdict on every socket curl opens,
 * so it judges the address actually connected to, on every hop, whatever
 * name, spelling or redirect led there.
 *
 * Every address is handled in its IPv6 form, IPv4 as ::ffff:a.b.c.d, so
 * that one table and one CIDR match serve both families and an IPv4 rule
 * cannot be bypassed by an IPv4-mapped IPv6 spelling.
 *
 * Denied by default (a fetch is the caller's request made from inside our
 * network; only the public internet is fair game):
 *  IPv4  0.0.0.0/8 ("this network"; 0.0.0.0 reaches the host itself),
 *        10/8, 172.16/12, 192.168/16 (RFC 1918), 100.64/10 (CGNAT),
 *        127/8 (loopback), 169.254/16 (link-local: cloud metadata),
 *        192.0.0/24 (IETF protocol assignments), 192.0.2/24, 198.51.100/24,
 *        203.0.113/24 (documentation), 192.88.99/24 (6to4 relay anycast),
 *        198.18/15 (benchmarking), 224/4 (multicast), 240/4 (reserved,
 *        255.255.255.255 broadcast included);
 *  IPv6  everything outside 2000::/3 (global unicast), which takes in ::,
 *        ::1, fc00::/7 (unique local), fe80::/10 (link-local), fec0::/10
 *        (site-local) and ff00::/8 (multicast); inside it 2001::/32
 *        (Teredo: the client address it embeds is obfuscated, so it cannot
 *        be judged), 2001:db8::/32 (documentation), 64:ff9b:1::/48 (local
 *        NAT64) and 100::/64 (discard, outside 2000::/3 anyway).
 *  Embedded IPv4 is judged as that IPv4: ::ffff:0:0/96 (mapped),
 *  ::ffff:0:0:0/96 (SIIT), ::/96 (compatible), 64:ff9b::/96 (NAT64) and
 *  2002::/16 (6to4).
 */
#define _DEFAULT_SOURCE /* inet_aton */
#include "web_fetch_policy.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Ports open to public addresses when JARVIS_ATOMIC_HTTP_ALLOWED_PORTS is
 * not set: plain HTTP and HTTPS. */
static const unsigned short default_ports[] = {80, 443};
/* Longest list item considered (an IPv6 CIDR with a port is ~50 bytes). */
#define WF_ITEM_MAX 96
/* Longest numeric host spelling considered (an IPv6 literal with a zone). */
#define WF_HOST_MAX 96

struct v4_range {
    unsigned char a, b, c, d;
    int bits;
    const char *name;
};

static const struct v4_range v4_denied[] = {
    {0, 0, 0, 0, 8, "this network (0.0.0.0/8)"},
    {10, 0, 0, 0, 8, "private (10.0.0.0/8)"},
    {100, 64, 0, 0, 10, "shared CGNAT (100.64.0.0/10)"},
    {127, 0, 0, 0, 8, "loopback (127.0.0.0/8)"},
    {169, 254, 0, 0, 16, "link-local (169.254.0.0/16)"},
    {172, 16, 0, 0, 12, "private (172.16.0.0/12)"},
    {192, 0, 0, 0, 24, "IETF protocol assignments (192.0.0.0/24)"},
    {192, 0, 2, 0, 24, "documentation (192.0.2.0/24)"},
    {192, 88, 99, 0, 24, "6to4 relay anycast (192.88.99.0/24)"},
    {192, 168, 0, 0, 16, "private (192.168.0.0/16)"},
    {198, 18, 0, 0, 15, "benchmarking (198.18.0.0/15)"},
    {198, 51, 100, 0, 24, "documentation (198.51.100.0/24)"},
    {203, 0, 113, 0, 24, "documentation (203.0.113.0/24)"},
    {224, 0, 0, 0, 4, "multicast (224.0.0.0/4)"},
    {240, 0, 0, 0, 4, "reserved or broadcast (240.0.0.0/4)"},
};

/* 1 if the first `bits` bits of a and net are equal. */
static int prefix_match(const unsigned char *a, const unsigned char *net, int bits)
{
    int full = bits / 8, rest = bits % 8;

    if (memcmp(a, net, (size_t)full) != 0)
        return 0;
    if (rest == 0)
        return 1;
    return ((a[full] ^ net[full]) & (0xff << (8 - rest)) & 0xff) == 0;
}

static const char *v4_class(const unsigned char v4[4])
{
    size_t i;

    for (i = 0; i < sizeof v4_denied / sizeof v4_denied[0]; i++) {
        const struct v4_range *r = &v4_denied[i];
        const unsigned char net[4] = {r->a, r->b, r->c, r->d};
        if (prefix_match(v4, net, r->bits))
            return r->name;
    }
    return NULL;
}

static int all_zero(const unsigned char *p, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++)
        if (p[i] != 0)
            return 0;
    return 1;
}

const char *wf_addr_denied(const unsigned char a[16])
{
    static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    static const unsigned char siit[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0};
    static const unsigned char nat64[12] = {0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0};
    static const unsigned char nat64_local[6] = {0, 0x64, 0xff, 0x9b, 0, 1};
    static const unsigned char teredo[4] = {0x20, 0x01, 0, 0};
    static const unsigned char doc[4] = {0x20, 0x01, 0x0d, 0xb8};

    if (memcmp(a, mapped, 12) == 0 || memcmp(a, siit, 12) == 0 || memcmp(a, nat64, 12) == 0)
        return v4_class(a + 12);
    if (all_zero(a, 12)) {
        if (all_zero(a + 12, 3) && a[15] <= 1) /* not "compatible" forms */
            return a[15] == 0 ? "unspecified (::/128)" : "loopback (::1/128)";
        return v4_class(a + 12); /* IPv4-compatible ::a.b.c.d (deprecated) */
    }
    if (a[0] == 0x20 && a[1] == 0x02) /* 6to4: the IPv4 is bits 16..47 */
        return v4_class(a + 2);
    if (memcmp(a, nat64_local, 6) == 0)
        return "local NAT64 (64:ff9b:1::/48)";
    if ((a[0] & 0xfe) == 0xfc)
        return "unique local (fc00::/7)";
    if (a[0] == 0xfe && (a[1] & 0xc0) == 0x80)
        return "link-local (fe80::/10)";
    if (a[0] == 0xfe && (a[1] & 0xc0) == 0xc0)
        return "site-local (fec0::/10)";
    if (a[0] == 0xff)
        return "multicast (ff00::/8)";
    if ((a[0] & 0xe0) != 0x20)
        return "not global unicast (outside 2000::/3)";
    if (memcmp(a, teredo, 4) == 0)
        return "Teredo (2001::/32)";
    if (memcmp(a, doc, 4) == 0)
        return "documentation (2001:db8::/32)";
    return NULL;
}

int wf_addr_from_sockaddr(const struct sockaddr *sa, unsigned char out[16], int *port)
{
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)(const void *)sa;
        memset(out, 0, 10);
        out[10] = out[11] = 0xff;
        memcpy(out + 12, &in->sin_addr, 4);
        *port = ntohs(in->sin_port);
        return 0;
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)(const void *)sa;
        memcpy(out, &in6->sin6_addr, 16);
        *port = ntohs(in6->sin6_port);
        return 0;
    }
    return -1;
}

static void v4_to_v6(const struct in_addr *v4, unsigned char out[16])
{
    memset(out, 0, 10);
    out[10] = out[11] = 0xff;
    memcpy(out + 12, v4, 4);
}

int wf_addr_parse_host(const char *host, unsigned char out[16])
{
    char buf[WF_HOST_MAX], *pct;
    struct in_addr v4;
    size_t len = strlen(host), i;

    if (len == 0 || len >= sizeof buf)
        return -1;
    memcpy(buf, host, len + 1);
    if (strchr(buf, ':') != NULL) {
        pct = strchr(buf, '%'); /* a zone ("fe80::1%eth0") says nothing of the range */
        if (pct != NULL)
            *pct = '\0';
        return inet_pton(AF_INET6, buf, out) == 1 ? 0 : -1;
    }
    /* inet_aton stops at white space; a host with anything else is a name */
    for (i = 0; i < len; i++)
        if (!((buf[i] >= '0' && buf[i] <= '9') || (buf[i] >= 'a' && buf[i] <= 'f') ||
              (buf[i] >= 'A' && buf[i] <= 'F') || buf[i] == 'x' || buf[i] == 'X' || buf[i] == '.'))
            return -1;
    if (inet_aton(buf, &v4) == 0)
        return -1;
    v4_to_v6(&v4, out);
    return 0;
}

/* ---- the operator's lists ---- */

/* The next trimmed item of a comma list in item[0..WF_ITEM_MAX): 1 with
 * *p moved past it, 0 at the end, -1 when the item is too long. */
static int next_item(const char **p, char item[WF_ITEM_MAX])
{
    const char *s = *p, *end, *q;

    while (*s != '\0') {
        end = strchr(s, ',');
        if (end == NULL)
            end = s + strlen(s);
        q = end;
        while (s < q && (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r'))
            s++;
        while (q > s && (q[-1] == ' ' || q[-1] == '\t' || q[-1] == '\n' || q[-1] == '\r'))
            q--;
        *p = *end != '\0' ? end + 1 : end;
        if (q == s) {
            s = *p;
            continue; /* blank items are skipped, as in the host lists */
        }
        if ((size_t)(q - s) >= WF_ITEM_MAX)
            return -1;
        memcpy(item, s, (size_t)(q - s));
        item[q - s] = '\0';
        return 1;
    }
    *p = s;
    return 0;
}

/* A decimal 1..65535 filling all of s, or -1. */
static int parse_port(const char *s)
{
    long v = 0;
    size_t i;

    for (i = 0; s[i] != '\0'; i++) {
        if (s[i] < '0' || s[i] > '9' || i >= 5)
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return i > 0 && v >= 1 && v <= 65535 ? (int)v : -1;
}

/* Splits "addr[/len][:port]" in place: *len_s and *port_s point into item
 * (NULL when absent). An IPv6 address has colons of its own, so its port
 * comes only after "/len". */
static void split_cidr(char *item, char **len_s, char **port_s)
{
    char *slash = strchr(item, '/'), *colon;

    *len_s = *port_s = NULL;
    if (slash != NULL) {
        *slash = '\0';
        *len_s = slash + 1;
        colon = strchr(*len_s, ':');
    } else {
        colon = strchr(item, ':');
        if (colon != NULL && strchr(colon + 1, ':') != NULL)
            colon = NULL; /* IPv6 without a length: no port */
    }
    if (colon != NULL) {
        *colon = '\0';
        *port_s = colon + 1;
    }
}

static int parse_cidr(char *item, struct wf_cidr *c)
{
    char *len_s, *port_s;
    struct in_addr v4;
    int is_v4, max, bits;

    split_cidr(item, &len_s, &port_s);
    is_v4 = strchr(item, ':') == NULL;
    /* strict dotted quads only: a range is the operator's text, not an attacker's */
    if (is_v4 ? inet_pton(AF_INET, item, &v4) != 1 : inet_pton(AF_INET6, item, c->net) != 1)
        return -1;
    if (is_v4)
        v4_to_v6(&v4, c->net);
    max = is_v4 ? 32 : 128;
    bits = max;
    if (len_s != NULL) {
        size_t i;
        bits = 0;
        for (i = 0; len_s[i] != '\0'; i++) {
            if (len_s[i] < '0' || len_s[i] > '9' || i >= 3)
                return -1;
            bits = bits * 10 + (len_s[i] - '0');
        }
        if (i == 0 || bits > max)
            return -1;
    }
    c->bits = is_v4 ? 96 + bits : bits;
    c->port = WF_CIDR_PORTS_LIST;
    if (port_s != NULL) {
        c->port = strcmp(port_s, "*") == 0 ? WF_CIDR_ANY_PORT : parse_port(port_s);
        if (c->port == -1 && strcmp(port_s, "*") != 0)
            return -1;
    }
    return 0;
}

static int parse_cidrs(struct wf_policy *p, const char *list, char *err, size_t errlen)
{
    char item[WF_ITEM_MAX];
    int more;

    while ((more = next_item(&list, item)) != 0) {
        if (more < 0) {
            snprintf(err, errlen, "JARVIS_ATOMIC_HTTP_ALLOWED_CIDRS: an entry is too long");
            return -1;
        }
        if (p->ncidrs == WF_POLICY_MAX_CIDRS) {
            snprintf(err, errlen, "JARVIS_ATOMIC_HTTP_ALLOWED_CIDRS: more than %d entries",
                     WF_POLICY_MAX_CIDRS);
            return -1;
        }
        snprintf(err, errlen, "JARVIS_ATOMIC_HTTP_ALLOWED_CIDRS: bad entry \"%s\"", item);
        if (parse_cidr(item, &p->cidrs[p->ncidrs]) != 0)
            return -1;
        p->ncidrs++;
    }
    return 0;
}

static int parse_ports(struct wf_policy *p, const char *list, char *err, size_t errlen)
{
    char item[WF_ITEM_MAX];
    int more, port;

    while ((more = next_item(&list, item)) != 0) {
        if (more < 0 || p->nports == WF_POLICY_MAX_PORTS) {
            snprintf(err, errlen, "JARVIS_ATOMIC_HTTP_ALLOWED_PORTS: too long (at most %d)",
                     WF_POLICY_MAX_PORTS);
            return -1;
        }
        if (strcmp(item, "*") == 0) {
            p->any_port = 1;
            continue;
        }
        port = parse_port(item);
        if (port < 0) {
            snprintf(err, errlen, "JARVIS_ATOMIC_HTTP_ALLOWED_PORTS: bad port \"%s\"", item);
            return -1;
        }
        p->ports[p->nports++] = (unsigned short)port;
    }
    return 0;
}

int wf_policy_parse(struct wf_policy *p, const char *cidrs, const char *ports, char *err,
                    size_t errlen)
{
    size_t i;

    memset(p, 0, sizeof *p);
    if (parse_cidrs(p, cidrs != NULL ? cidrs : "", err, errlen) != 0 ||
        parse_ports(p, ports != NULL ? ports : "", err, errlen) != 0)
        return -1;
    if (p->nports == 0 && !p->any_port) /* unset or blank: the defaults */
        for (i = 0; i < sizeof default_ports / sizeof default_ports[0]; i++)
            p->ports[p->nports++] = default_ports[i];
    return 0;
}

int wf_policy_load(struct wf_policy *p, char *err, size_t errlen)
{
    return wf_policy_parse(p, getenv("JARVIS_ATOMIC_HTTP_ALLOWED_CIDRS"),
                           getenv("JARVIS_ATOMIC_HTTP_ALLOWED_PORTS"), err, errlen);
}

/* ---- the verdict ---- */

static int port_listed(const struct wf_policy *p, int port)
{
    size_t i;

    if (p->any_port)
        return 1;
    for (i = 0; i < p->nports; i++)
        if (p->ports[i] == port)
            return 1;
    return 0;
}

/* The address as text for a reason: IPv4 (mapped) as a dotted quad. */
static void addr_text(const unsigned char a[16], char *out, size_t len)
{
    static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

    if (memcmp(a, mapped, 12) == 0)
        inet_ntop(AF_INET, a + 12, out, (socklen_t)len);
    else
        inet_ntop(AF_INET6, a, out, (socklen_t)len);
}

int wf_policy_check(const struct wf_policy *p, const unsigned char a[16], int port, char *why,
                    size_t whylen)
{
    char text[INET6_ADDRSTRLEN];
    const char *denied;
    int in_range = 0;
    size_t i;

    for (i = 0; i < p->ncidrs; i++) {
        const struct wf_cidr *c = &p->cidrs[i];
        if (!prefix_match(a, c->net, c->bits))
            continue;
        in_range = 1;
        if (c->port == WF_CIDR_ANY_PORT || c->port == port ||
            (c->port == WF_CIDR_PORTS_LIST && port_listed(p, port)))
            return 0;
    }
    denied = wf_addr_denied(a);
    if (denied == NULL && port_listed(p, port))
        return 0;
    addr_text(a, text, sizeof text);
    if (denied == NULL || in_range)
        snprintf(why, whylen,
                 "address %s port %d: port not in JARVIS_ATOMIC_HTTP_ALLOWED_PORTS "
                 "or the range's entry",
                 text, port);
    else
        snprintf(why, whylen,
                 "address %s is %s, denied (JARVIS_ATOMIC_HTTP_ALLOWED_CIDRS re-allows ranges)",
                 text, denied);
    return -1;
}
