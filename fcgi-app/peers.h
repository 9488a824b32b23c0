/*
 * peers.h - which web servers may open a FastCGI connection over TCP:
 * FCGI_WEB_SERVER_ADDRS, the allowlist libfcgi's own accept reads, judged
 * by the worker's accept (worker.c) for IPv4 and IPv6 peers alike.
 */
#ifndef JARVIS_PEERS_H
#define JARVIS_PEERS_H

#include <netinet/in.h>
#include <stddef.h>
#include <sys/socket.h>

/* Addresses an allowlist holds at most; entries beyond count as bad. */
#define PEERS_MAX_ADDRS 64

struct peers {
    int any;       /* no list: every peer may connect */
    unsigned n_v4; /* of v4 */
    unsigned n_v6; /* of v6 */
    struct in_addr v4[PEERS_MAX_ADDRS];
    struct in6_addr v6[PEERS_MAX_ADDRS];
};

/*
 * Reads list (FCGI_WEB_SERVER_ADDRS: comma-separated IPv4 or IPv6
 * addresses, blanks around each ignored; NULL or empty allows every peer)
 * into *p. An entry that is not an address, or one past PEERS_MAX_ADDRS of
 * its family, is left out, and matches no peer. Returns how many entries
 * were left out (config.c refuses to start on any); the first one's text,
 * cut to fit on a character boundary, goes to bad (bad_len bytes,
 * NUL-terminated).
 */
int peers_parse(const char *list, struct peers *p, char *bad, size_t bad_len);

/* 1 if the peer at sa (AF_INET or AF_INET6; an IPv4-mapped IPv6 address
 * is judged as its IPv4 address) may connect, else 0. */
int peers_allowed(const struct peers *p, const struct sockaddr *sa);

#endif
