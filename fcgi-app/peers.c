/*
 * peers.c - owns the FastCGI peer allowlist (peers.h): parsing
 * FCGI_WEB_SERVER_ADDRS and judging a TCP peer against it.
 *
 * libfcgi checks the list only for IPv4 peers (os_unix.c, ClientAddrOK):
 * a worker listening on an IPv6 socket took every peer whatever the list
 * said. Here the list holds for both families, and an IPv4 client of a
 * dual-stack socket (::ffff:a.b.c.d) is judged by its IPv4 address.
 */
#include "peers.h"

#include <arpa/inet.h>
#include <string.h>

#include "utf8.h"

/* The longest entry read: an IPv6 address in its longest text form
 * (INET6_ADDRSTRLEN, IPv4 tail included) and its NUL. */
#define PEERS_ENTRY_MAX INET6_ADDRSTRLEN

static int blank(char c)
{
    return c == ' ' || c == '\t';
}

/* Adds the entry s[0..n) to p: 0, or -1 if it is not an address or p is full. */
static int add_entry(struct peers *p, const char *s, size_t n)
{
    char text[PEERS_ENTRY_MAX];

    if (n == 0 || n >= sizeof text)
        return -1;
    memcpy(text, s, n);
    text[n] = '\0';
    if (p->n_v4 < PEERS_MAX_ADDRS && inet_pton(AF_INET, text, &p->v4[p->n_v4]) == 1) {
        p->n_v4++;
        return 0;
    }
    if (p->n_v6 < PEERS_MAX_ADDRS && inet_pton(AF_INET6, text, &p->v6[p->n_v6]) == 1) {
        p->n_v6++;
        return 0;
    }
    return -1;
}

int peers_parse(const char *list, struct peers *p, char *bad, size_t bad_len)
{
    const char *s = list, *end;
    int n_bad = 0;
    size_t n;

    memset(p, 0, sizeof *p);
    if (bad_len > 0)
        bad[0] = '\0';
    p->any = list == NULL || *list == '\0';
    if (p->any)
        return 0;
    for (;;) {
        end = strchr(s, ',');
        n = end != NULL ? (size_t)(end - s) : strlen(s);
        while (n > 0 && blank(*s)) {
            s++;
            n--;
        }
        while (n > 0 && blank(s[n - 1]))
            n--;
        if (add_entry(p, s, n) != 0 && n_bad++ == 0 && bad_len > 0) {
            n = utf8_cut(s, n, bad_len - 1);
            memcpy(bad, s, n);
            bad[n] = '\0';
        }
        if (end == NULL)
            break;
        s = end + 1;
    }
    return n_bad;
}

int peers_allowed(const struct peers *p, const struct sockaddr *sa)
{
    const struct in6_addr *a6;
    struct in_addr a4;
    unsigned i;

    if (p->any)
        return 1;
    if (sa->sa_family == AF_INET) {
        a4 = ((const struct sockaddr_in *)(const void *)sa)->sin_addr;
    } else if (sa->sa_family == AF_INET6) {
        a6 = &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr;
        for (i = 0; i < p->n_v6; i++)
            if (memcmp(a6, &p->v6[i], sizeof *a6) == 0)
                return 1;
        if (!IN6_IS_ADDR_V4MAPPED(a6))
            return 0;
        memcpy(&a4, &a6->s6_addr[12], sizeof a4);
    } else {
        return 0;
    }
    for (i = 0; i < p->n_v4; i++)
        if (p->v4[i].s_addr == a4.s_addr)
            return 1;
    return 0;
}
