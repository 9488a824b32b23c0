/*
 * web_fetch_policy.h - where jarvis.web.fetch may connect: the default-deny
 * classifier of IP addresses and the operator's re-allowed ranges and ports
 * (web_fetch_policy.c). Pure functions on addresses and strings: nothing
 * here resolves a name or opens a socket.
 */
#ifndef JARVIS_CORE_WEB_FETCH_POLICY_H
#define JARVIS_CORE_WEB_FETCH_POLICY_H

/* What a client sees when the address policy refuses a fetch (the log
 * says which address and rule). */
#define WF_DENIED_CODE "fetch_denied"
#define WF_DENIED_MESSAGE "The URL's address or port is not allowed by the fetch policy"

#include <stddef.h>
#include <sys/socket.h>

/* Most entries read from JARVIS_ATOMIC_HTTP_ALLOWED_CIDRS / _ALLOWED_PORTS;
 * a longer list is refused (the fetch fails) rather than cut short. */
#define WF_POLICY_MAX_CIDRS 64
#define WF_POLICY_MAX_PORTS 64
/* Room for a refusal reason ("address 127.0.0.1 port 80: loopback ..."). */
#define WF_POLICY_WHY_LEN 192

/* WF_CIDR_PORTS_LIST: the range is re-allowed on the ports of the ports
 * list; WF_CIDR_ANY_PORT: on every port; otherwise the entry's one port. */
#define WF_CIDR_PORTS_LIST 0
#define WF_CIDR_ANY_PORT (-1)

struct wf_cidr {
    unsigned char net[16]; /* IPv6; an IPv4 range is kept as ::ffff:a.b.c.d/96+n */
    int bits;              /* 0..128 */
    int port;              /* WF_CIDR_PORTS_LIST, WF_CIDR_ANY_PORT or 1..65535 */
};

struct wf_policy {
    struct wf_cidr cidrs[WF_POLICY_MAX_CIDRS];
    size_t ncidrs;
    unsigned short ports[WF_POLICY_MAX_PORTS];
    size_t nports;
    int any_port; /* "*" in the ports list */
};

/*
 * Fills p from the comma lists `cidrs` (NULL or "": none re-allowed) and
 * `ports` (NULL or blank: 80 and 443). A CIDR entry is "addr[/len][:port]"
 * or "addr[/len]:*" (an IPv6 entry carries a port only after "/len", e.g.
 * "::1/128:8080"); a ports entry a number 1..65535 or "*". Returns 0, or -1
 * with the problem in err[0..errlen).
 */
int wf_policy_parse(struct wf_policy *p, const char *cidrs, const char *ports, char *err,
                    size_t errlen);

/* wf_policy_parse of JARVIS_ATOMIC_HTTP_ALLOWED_CIDRS and
 * JARVIS_ATOMIC_HTTP_ALLOWED_PORTS as they are now. */
int wf_policy_load(struct wf_policy *p, char *err, size_t errlen);

/*
 * a (IPv6 form; IPv4 as ::ffff:a.b.c.d): NULL when the default policy lets
 * it be fetched (a public unicast address), else a static name of the
 * denied range, e.g. "loopback (127.0.0.0/8)". Embedded IPv4 (mapped,
 * compatible, NAT64 64:ff9b::/96, 6to4 2002::/16) is judged as that IPv4.
 */
const char *wf_addr_denied(const unsigned char a[16]);

/* The IPv6 form of sa (AF_INET or AF_INET6) in out, its port in *port.
 * 0, or -1 for another family. */
int wf_addr_from_sockaddr(const struct sockaddr *sa, unsigned char out[16], int *port);

/*
 * When host (no brackets) is a numeric address in any spelling a resolver
 * or a browser reads as one (IPv4 as inet_aton reads it: "127.1",
 * "2130706433", "0x7f000001", "017700000001"; IPv6, with an optional
 * "%zone"), its IPv6 form in out and 0; -1 when host is a name.
 */
int wf_addr_parse_host(const char *host, unsigned char out[16]);

/*
 * 0 when p lets the fetch connect to a:port, else -1 with why[0..whylen)
 * saying which rule refused it. An address in a re-allowed range is
 * allowed on that entry's ports whatever its default class; any other
 * address must not be denied by default, and its port must be in the
 * ports list.
 */
int wf_policy_check(const struct wf_policy *p, const unsigned char a[16], int port, char *why,
                    size_t whylen);

#endif
