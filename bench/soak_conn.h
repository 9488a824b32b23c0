/*
 * soak_conn.h - one keep-alive HTTP/1.1 client connection to 127.0.0.1,
 * driven by an edge-triggered epoll loop: the load client of bench/soak
 * (soak_client.c) holds many of them.
 *
 * A connection carries one exchange at a time: sc_send queues a request and
 * starts it (connecting first when the connection is closed), sc_progress
 * moves it on at each epoll event until the response is whole. The response
 * is framed by Content-Length, by chunked transfer coding, or by the close
 * of the connection; 204 and 304 have no body. A connection the server
 * marked `Connection: close` (nginx does after its own 400 and 413 pages, and
 * after keepalive_requests) is closed after its response and reconnected by
 * the next sc_send.
 */
#ifndef JARVIS_SOAK_CONN_H
#define JARVIS_SOAK_CONN_H

#include <stddef.h>
#include <stdint.h>

/* The largest response kept: the soak's answers are a few kB at most. */
#define SC_IN_MAX 65536

enum sc_state { SC_CLOSED = 0, SC_CONNECTING, SC_BUSY, SC_IDLE };

/* What sc_progress says of the exchange in flight. */
enum sc_result {
    SC_MORE = 0, /* not done: wait for the next event */
    SC_DONE,     /* the response is whole: status, body, body_len */
    SC_RETRY,    /* a kept connection was closed before any byte of the response
                  * came: the server never took the request; send it again */
    SC_FAILED    /* a transport error (why: error) */
};

struct sc_conn {
    int fd; /* -1 when closed */
    enum sc_state state;
    int port;
    void *owner;     /* the caller's; epoll events carry the connection */
    int answered;    /* exchanges answered on this socket (0: fresh) */
    int64_t used_ms; /* when the last exchange ended */
    char *out;       /* the request, head and body */
    size_t out_len, out_off, out_cap;
    char in[SC_IN_MAX + 1];
    size_t in_len;
    /* The last response, valid after SC_DONE until the next sc_send. */
    int status;
    const char *body;
    size_t body_len;
    char error[96];
};

/* A closed connection to 127.0.0.1:port, owned by owner. */
void sc_init(struct sc_conn *c, int port, void *owner);

/* Frees the request buffer and closes the socket. */
void sc_cleanup(struct sc_conn *c, int epfd);

/* Sends `method path` with body (body_len bytes, NULL for none; a POST
 * always carries Content-Length). Connects first when closed, and reconnects
 * a kept connection idle for more than max_idle_ms (nginx may be closing
 * it). 0, or -1 with c->error set (the exchange failed at once). */
int sc_send(struct sc_conn *c, int epfd, const char *method, const char *path, const char *body,
            size_t body_len, int64_t now_ms, int64_t max_idle_ms);

/* Sends the last request again, on a new connection: after SC_RETRY. 0,
 * or -1 with c->error set. */
int sc_resend(struct sc_conn *c, int epfd);

/* Moves the connection on after an epoll event on it (events as epoll gave
 * them). An idle connection that the server closes is closed here (SC_MORE). */
enum sc_result sc_progress(struct sc_conn *c, int epfd, uint32_t events, int64_t now_ms);

/* Closes the socket (a timed-out exchange, the end of the run). */
void sc_close(struct sc_conn *c, int epfd);

/* Monotonic clock, in ms. */
int64_t sc_now_ms(void);

#endif
