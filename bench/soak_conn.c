/*
 * soak_conn.c - owns one keep-alive HTTP/1.1 client connection of the soak's
 * load client (see soak_conn.h): its socket, the request being written and
 * the response being read and framed.
 *
 * The socket is non-blocking and registered once, edge-triggered, for input
 * and output: so every write is tried at once when a request is queued, and
 * each event then reads and writes until the kernel says EAGAIN.
 */
#define _GNU_SOURCE
#include "soak_conn.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* Room for the request line and headers beside the body. */
#define SC_HEAD_MAX 512

/* How the response is framed, once its head is whole. */
struct frame {
    size_t head_len;          /* up to and including the blank line */
    long long content_length; /* -1: none */
    int chunked;
    int close_after;
};

int64_t sc_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void sc_init(struct sc_conn *c, int port, void *owner)
{
    memset(c, 0, sizeof *c);
    c->fd = -1;
    c->port = port;
    c->owner = owner;
}

void sc_close(struct sc_conn *c, int epfd)
{
    if (c->fd >= 0) {
        epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
        close(c->fd);
    }
    c->fd = -1;
    c->state = SC_CLOSED;
    c->answered = 0;
}

void sc_cleanup(struct sc_conn *c, int epfd)
{
    sc_close(c, epfd);
    free(c->out);
    c->out = NULL;
    c->out_cap = 0;
}

static int fail(struct sc_conn *c, const char *what, int err)
{
    snprintf(c->error, sizeof c->error, "%s: %s", what, strerror(err));
    return -1;
}

/* Opens the socket and starts connecting: 0, or -1 with c->error set. */
static int open_socket(struct sc_conn *c, int epfd)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)c->port)};
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET};
    int one = 1;

    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0)
        return fail(c, "socket", errno);
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    ev.data.ptr = c;
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &ev) != 0) {
        int err = errno;
        close(c->fd);
        c->fd = -1;
        return fail(c, "epoll_ctl", err);
    }
    c->answered = 0;
    if (connect(c->fd, (struct sockaddr *)&sa, sizeof sa) == 0) {
        c->state = SC_BUSY;
        return 0;
    }
    if (errno != EINPROGRESS) {
        int err = errno;
        sc_close(c, epfd);
        return fail(c, "connect", err);
    }
    c->state = SC_CONNECTING;
    return 0;
}

/* Writes what the kernel takes. 0; -1 when the peer is gone (EPIPE, reset). */
static int pump_out(struct sc_conn *c)
{
    while (c->out_off < c->out_len) {
        ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
        if (n > 0)
            c->out_off += (size_t)n;
        else if (n < 0 && errno == EINTR)
            continue;
        else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return 0;
        else
            return -1;
    }
    return 0;
}

/* Starts writing c->out on the connection, opening it when closed. */
static int start(struct sc_conn *c, int epfd)
{
    c->in_len = 0;
    c->out_off = 0;
    c->status = 0;
    c->body = NULL;
    c->body_len = 0;
    if (c->fd < 0 && open_socket(c, epfd) != 0)
        return -1;
    if (c->state == SC_IDLE)
        c->state = SC_BUSY;
    /* A write error here shows again as a read error or end of file, which
     * sc_progress tells apart (a kept connection closed under us: retry). */
    if (c->state == SC_BUSY)
        pump_out(c);
    return 0;
}

int sc_send(struct sc_conn *c, int epfd, const char *method, const char *path, const char *body,
            size_t body_len, int64_t now_ms, int64_t max_idle_ms)
{
    size_t need = SC_HEAD_MAX + strlen(path) + body_len;
    int n;

    if (c->state == SC_IDLE && now_ms - c->used_ms > max_idle_ms)
        sc_close(c, epfd);
    if (need > c->out_cap) {
        char *p = realloc(c->out, need);
        if (p == NULL)
            return fail(c, "realloc", ENOMEM);
        c->out = p;
        c->out_cap = need;
    }
    if (body != NULL)
        n = snprintf(c->out, c->out_cap,
                     "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                     "Content-Length: %zu\r\n\r\n",
                     method, path, body_len);
    else
        n = snprintf(c->out, c->out_cap, "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", method, path);
    if (n < 0 || (size_t)n + body_len > c->out_cap)
        return fail(c, "request head", EOVERFLOW);
    if (body != NULL)
        memcpy(c->out + n, body, body_len);
    c->out_len = (size_t)n + body_len;
    return start(c, epfd);
}

int sc_resend(struct sc_conn *c, int epfd)
{
    sc_close(c, epfd);
    return start(c, epfd);
}

/* The value of header `name` in the head (head_len bytes), or NULL; its
 * length into *len. */
static const char *header(const char *head, size_t head_len, const char *name, size_t *len)
{
    size_t nlen = strlen(name);
    const char *p = memchr(head, '\n', head_len), *end = head + head_len;

    while (p != NULL && ++p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        if (eol == NULL)
            break;
        if ((size_t)(eol - p) > nlen && strncasecmp(p, name, nlen) == 0 && p[nlen] == ':') {
            const char *v = p + nlen + 1;
            while (v < eol && (*v == ' ' || *v == '\t'))
                v++;
            *len = (size_t)(eol - v);
            while (*len > 0 && (v[*len - 1] == '\r' || v[*len - 1] == ' '))
                (*len)--;
            return v;
        }
        p = eol;
    }
    return NULL;
}

/* Parses the status line and framing headers: 1 when the head is whole,
 * 0 when more is needed, -1 when it is not HTTP/1.x. */
static int parse_head(struct sc_conn *c, struct frame *f)
{
    const char *end = memmem(c->in, c->in_len, "\r\n\r\n", 4), *v;
    size_t len;

    if (end == NULL)
        return 0;
    f->head_len = (size_t)(end - c->in) + 4;
    if (c->in_len < 12 || strncmp(c->in, "HTTP/1.", 7) != 0 || c->in[8] != ' ')
        return -1;
    c->status = atoi(c->in + 9);
    f->content_length = -1;
    v = header(c->in, f->head_len, "content-length", &len);
    if (v != NULL)
        f->content_length = strtoll(v, NULL, 10);
    v = header(c->in, f->head_len, "transfer-encoding", &len);
    f->chunked = v != NULL && len == 7 && strncasecmp(v, "chunked", 7) == 0;
    v = header(c->in, f->head_len, "connection", &len);
    f->close_after = v != NULL && len == 5 && strncasecmp(v, "close", 5) == 0;
    if (c->status == 204 || c->status == 304 || c->status < 200)
        f->content_length = 0;
    return 1;
}

/* 1 when the chunked body from `from` has ended (a zero-size chunk and the
 * blank line; trailers are not expected), else 0. The body stays as sent:
 * callers look for substrings in it, which a chunk boundary could split,
 * but the executor frames every answer by Content-Length. */
static int chunked_done(const struct sc_conn *c, size_t from)
{
    size_t p = from;

    for (;;) {
        char *line_end = memmem(c->in + p, c->in_len - p, "\r\n", 2);
        unsigned long size;

        if (line_end == NULL)
            return 0;
        size = strtoul(c->in + p, NULL, 16);
        p = (size_t)(line_end - c->in) + 2;
        if (size == 0)
            return c->in_len >= p + 2;
        p += size + 2;
        if (p > c->in_len)
            return 0;
    }
}

/* 1 when the response is whole (body and body_len set), 0 when more is
 * needed, -1 when it is malformed. eof: the server closed its side. */
static int response_done(struct sc_conn *c, int eof, int *close_after)
{
    struct frame f;
    int rc = parse_head(c, &f);

    if (rc <= 0)
        return rc;
    *close_after = f.close_after;
    c->body = c->in + f.head_len;
    c->body_len = c->in_len - f.head_len;
    if (f.content_length >= 0) {
        if (c->body_len < (size_t)f.content_length)
            return 0;
        if (c->body_len > (size_t)f.content_length)
            return -1; /* nothing may follow: one request at a time */
        return 1;
    }
    if (f.chunked)
        return chunked_done(c, f.head_len);
    *close_after = 1;
    return eof;
}

/* Reads what is there. 1 on end of file or a read error, else 0. */
static int pump_in(struct sc_conn *c)
{
    for (;;) {
        ssize_t n = recv(c->fd, c->in + c->in_len, SC_IN_MAX - c->in_len, 0);
        if (n > 0) {
            c->in_len += (size_t)n;
            if (c->in_len == SC_IN_MAX)
                return 1;
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            return 0;
        } else {
            return 1;
        }
    }
}

/* The idle connection had an event: the server closed it (or sent what it
 * should not have); either way it is closed. */
static void idle_event(struct sc_conn *c, int epfd)
{
    char b[256];
    ssize_t n = recv(c->fd, b, sizeof b, 0);

    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        return;
    sc_close(c, epfd);
}

enum sc_result sc_progress(struct sc_conn *c, int epfd, uint32_t events, int64_t now_ms)
{
    int eof, done, close_after = 0, err = 0;
    socklen_t elen = sizeof err;

    if (c->state == SC_CLOSED)
        return SC_MORE;
    if (c->state == SC_IDLE) {
        if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
            idle_event(c, epfd);
        return SC_MORE;
    }
    if (c->state == SC_CONNECTING) {
        if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
            return SC_MORE;
        if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &elen) != 0 || err != 0) {
            fail(c, "connect", err ? err : errno);
            sc_close(c, epfd);
            return SC_FAILED;
        }
        c->state = SC_BUSY;
    }
    pump_out(c);
    eof = pump_in(c);
    done = response_done(c, eof, &close_after);
    if (done == 1) {
        c->answered++;
        c->used_ms = now_ms;
        c->state = SC_IDLE;
        if (close_after || eof)
            sc_close(c, epfd);
        return SC_DONE;
    }
    if (done < 0 || c->in_len == SC_IN_MAX) {
        snprintf(c->error, sizeof c->error, "malformed or oversized response (%zu bytes)",
                 c->in_len);
        sc_close(c, epfd);
        return SC_FAILED;
    }
    if (!eof)
        return SC_MORE;
    if (c->in_len == 0 && c->answered > 0) {
        sc_close(c, epfd);
        return SC_RETRY;
    }
    snprintf(c->error, sizeof c->error, "connection closed after %zu bytes of the response",
             c->in_len);
    sc_close(c, epfd);
    return SC_FAILED;
}
