/*
 * test_web_fetch.c - jarvis.web.fetch through dsp_execute against a small
 * HTTP/1.1 server on 127.0.0.1 started here (one thread per connection, one
 * request per connection): exact outputs, params, headers, bodies, HEAD,
 * redirects (not followed, followed, method changes, host lists, headers
 * dropped across origins, cookies, loops), max_bytes, gzip, the request
 * timeout, the run deadline, a cancel, every input the node refuses, and
 * an unreadable JARVIS_ATOMIC_HTTP_CA_FILE.
 * A second server on 127.0.0.2 (also the proxy of the proxy tests) checks
 * the address policy end to end: refusals on the first request and on a
 * redirect hop with no connection made, ports, the ambient proxy ignored,
 * a gzip bomb, and the ceilings of max_bytes and timeout_seconds. Every
 * connection made stays on 127.0.0.1 or 127.0.0.2.
 *
 * rn_init and curl_global_init run in the suite init, before any thread
 * exists: helpers inherit SIGUSR2 blocked, as in a worker.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "../../plugins/core/nodes.h"
#include "dispatch.h"
#include "runner.h"
#include "runtable.h"
#include "testutil.h"
#include "timefmt.h"

extern const jarvis_pack jarvis_pack_core;

/* ---- the loopback server ---- */

/* One listening socket and its accept thread. */
struct server {
    const char *addr;
    int fd, port;
    pthread_t tid;
    int started;
    int accepted; /* connections accepted, under conn_lock */
};

static struct server srv1 = {.addr = "127.0.0.1", .fd = -1}, srv2 = {.addr = "127.0.0.2", .fd = -1};
static int port, port2, stop_pipe[2] = {-1, -1};
static pthread_mutex_t conn_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t conn_cond = PTHREAD_COND_INITIALIZER;
static int active_conns;

/* A gzip body of WF_BOMB_BYTES zeros (made in suite_init) */
#define WF_BOMB_BYTES (10 * 1024 * 1024)
static unsigned char *bomb;
static size_t bomb_len;

struct request {
    char method[16];
    char target[2048];
    json_object *headers; /* lower-case name -> value */
    char *body;
    size_t body_len;
};

static void send_all(int fd, const void *p, size_t n)
{
    const char *c = p;

    while (n > 0) {
        ssize_t w = send(fd, c, n, MSG_NOSIGNAL);
        if (w <= 0)
            return; /* the client went away: fine */
        c += w;
        n -= (size_t)w;
    }
}

/* Writes a whole response; `extra` is header lines, each ending in CRLF. */
static void respond(int fd, const struct request *rq, int status, const char *extra,
                    const void *body, size_t len)
{
    char head[4096];
    int n = snprintf(head, sizeof head,
                     "HTTP/1.1 %d X\r\n%sContent-Length: %zu\r\nConnection: close\r\n\r\n", status,
                     extra, len);

    send_all(fd, head, (size_t)n);
    if (strcmp(rq->method, "HEAD") != 0)
        send_all(fd, body, len);
}

static int read_request(int fd, struct request *rq)
{
    static const size_t cap = 65536;
    char *buf = malloc(cap + 1), *end = NULL, *line, *save = NULL;
    size_t have = 0, need;
    json_object *cl = NULL;

    memset(rq, 0, sizeof *rq);
    rq->headers = json_object_new_object();
    while (end == NULL) {
        ssize_t r = recv(fd, buf + have, cap - have, 0);
        if (r <= 0)
            goto fail;
        have += (size_t)r;
        buf[have] = '\0';
        end = strstr(buf, "\r\n\r\n");
        if (end == NULL && have == cap)
            goto fail;
    }
    *end = '\0';
    line = strtok_r(buf, "\r\n", &save);
    if (line == NULL || sscanf(line, "%15s %2047s", rq->method, rq->target) != 2)
        goto fail;
    while ((line = strtok_r(NULL, "\r\n", &save)) != NULL) {
        char *colon = strchr(line, ':'), *v, *k;
        if (colon == NULL)
            continue;
        *colon = '\0';
        for (k = line; *k; k++)
            *k = (char)(*k >= 'A' && *k <= 'Z' ? *k + 32 : *k);
        for (v = colon + 1; *v == ' '; v++)
            ;
        json_object_object_add(rq->headers, line, json_object_new_string(v));
    }
    need = json_object_object_get_ex(rq->headers, "content-length", &cl)
               ? (size_t)atol(json_object_get_string(cl))
               : 0;
    rq->body = malloc(need + 1);
    have -= (size_t)(end + 4 - buf);
    memcpy(rq->body, end + 4, have < need ? have : need);
    rq->body_len = have < need ? have : need;
    while (rq->body_len < need) {
        ssize_t r = recv(fd, rq->body + rq->body_len, need - rq->body_len, 0);
        if (r <= 0)
            goto fail;
        rq->body_len += (size_t)r;
    }
    rq->body[rq->body_len] = '\0';
    free(buf);
    return 0;
fail:
    free(buf);
    return -1;
}

/* The value of query parameter `name` in target, %XX-decoded, or "". */
static void query_get(const char *target, const char *name, char *out, size_t len)
{
    const char *q = strchr(target, '?');
    size_t n = strlen(name), o = 0;

    out[0] = '\0';
    while (q != NULL) {
        q++;
        if (strncmp(q, name, n) == 0 && q[n] == '=') {
            for (q += n + 1; *q && *q != '&' && o + 1 < len; q++) {
                unsigned v;
                if (*q == '%' && sscanf(q + 1, "%2x", &v) == 1) {
                    out[o++] = (char)v;
                    q += 2;
                } else {
                    out[o++] = *q;
                }
            }
            out[o] = '\0';
            return;
        }
        q = strchr(q, '&');
    }
}

static void route_json(int fd, const struct request *rq)
{
    json_object *o = json_object_new_object();
    const char *text;

    json_object_object_add(o, "method", json_object_new_string(rq->method));
    json_object_object_add(o, "target", json_object_new_string(rq->target));
    json_object_object_add(o, "headers", json_object_get(rq->headers));
    json_object_object_add(o, "body", json_object_new_string_len(rq->body, (int)rq->body_len));
    text = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
    respond(fd, rq, 200, "Content-Type: application/json\r\n", text, strlen(text));
    json_object_put(o);
}

/* Waits up to ms for the client to go away or the server to stop. */
static void linger(int fd, int ms)
{
    struct pollfd p[2] = {{.fd = fd, .events = POLLIN}, {.fd = stop_pipe[0], .events = POLLIN}};

    poll(p, 2, ms);
}

static void route_big(int fd, const struct request *rq, int chunked)
{
    static char block[65536];
    size_t sent;

    memset(block, 'x', sizeof block);
    if (!chunked) {
        static const char head[] = "HTTP/1.1 200 OK\r\nContent-Length: 2097152\r\n\r\n";
        send_all(fd, head, sizeof head - 1);
        for (sent = 0; sent < 2097152; sent += sizeof block)
            send_all(fd, block, sizeof block);
        return;
    }
    (void)rq;
    send_all(fd, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", 47);
    for (sent = 0; sent < 2097152; sent += sizeof block) {
        send_all(fd, "10000\r\n", 7);
        send_all(fd, block, sizeof block);
        send_all(fd, "\r\n", 2);
    }
    send_all(fd, "0\r\n\r\n", 5);
}

static void route(int fd, const struct request *rq)
{
    static const unsigned char gz[] =
        "\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\x03\xcb\x48\xcd\xc9\xc9\x57\x48\xaf\xca\x2c\x50"
        "\xc8\x80\x33\x01\xac\x5f\xf1\x27\x15\x00\x00\x00";
    const char *path = rq->target;
    char to[1024], code[8], extra[1200];

    if (strcmp(path, "/ok") == 0) {
        respond(fd, rq, 200,
                "Content-Type: text/plain\r\nX-Multi: one\r\nX-Upper: Value\r\n"
                "x-multi: two\r\n",
                "hello", 5);
    } else if (strncmp(path, "/json", 5) == 0) {
        route_json(fd, rq);
    } else if (strncmp(path, "/redirect?", 10) == 0) {
        query_get(path, "to", to, sizeof to);
        query_get(path, "code", code, sizeof code);
        snprintf(extra, sizeof extra, to[0] ? "Location: %s\r\n" : "%s", to);
        respond(fd, rq, code[0] ? atoi(code) : 302, extra, "moved", 5);
    } else if (strcmp(path, "/setcookie") == 0) {
        respond(fd, rq, 302, "Set-Cookie: sid=abc; Path=/\r\nLocation: /json\r\n", "", 0);
    } else if (strcmp(path, "/loop") == 0) {
        respond(fd, rq, 302, "Location: /loop\r\n", "", 0);
    } else if (strcmp(path, "/big") == 0 || strcmp(path, "/big-chunked") == 0) {
        route_big(fd, rq, path[4] == '-');
    } else if (strcmp(path, "/slow") == 0) {
        linger(fd, 3000);
        respond(fd, rq, 200, "", "late", 4);
    } else if (strcmp(path, "/head-check") == 0) {
        snprintf(extra, sizeof extra, "X-Method: %s\r\n", rq->method);
        respond(fd, rq, 200, extra, "hello", 5);
    } else if (strcmp(path, "/gzip") == 0) {
        respond(fd, rq, 200, "Content-Encoding: gzip\r\n", gz, sizeof gz - 1);
    } else if (strcmp(path, "/bomb") == 0) {
        respond(fd, rq, 200, "Content-Encoding: gzip\r\nContent-Type: text/plain\r\n", bomb,
                bomb_len);
    } else if (strcmp(path, "/latin1") == 0) {
        respond(fd, rq, 200, "X-L: caf\xe9\r\nX-Edge: \x80\xff\r\n", "", 0);
    } else {
        respond(fd, rq, 404, "", "", 0);
    }
}

static void *conn_thread(void *arg)
{
    int fd = (int)(intptr_t)arg;
    struct request rq;

    if (read_request(fd, &rq) == 0)
        route(fd, &rq);
    json_object_put(rq.headers);
    free(rq.body);
    shutdown(fd, SHUT_WR);
    linger(fd, 1000); /* let the client read all before the close */
    close(fd);
    pthread_mutex_lock(&conn_lock);
    active_conns--;
    pthread_cond_broadcast(&conn_cond);
    pthread_mutex_unlock(&conn_lock);
    return NULL;
}

static void *accept_thread(void *arg)
{
    struct server *sv = arg;

    for (;;) {
        struct pollfd p[2] = {{.fd = sv->fd, .events = POLLIN},
                              {.fd = stop_pipe[0], .events = POLLIN}};
        pthread_t tid;
        int fd;

        if (poll(p, 2, -1) < 0 && errno != EINTR)
            return NULL;
        if (p[1].revents)
            return NULL;
        if (!(p[0].revents & POLLIN))
            continue;
        fd = accept(sv->fd, NULL, NULL);
        if (fd < 0)
            continue;
        pthread_mutex_lock(&conn_lock);
        active_conns++;
        sv->accepted++;
        pthread_mutex_unlock(&conn_lock);
        if (pthread_create(&tid, NULL, conn_thread, (void *)(intptr_t)fd) != 0) {
            close(fd);
            pthread_mutex_lock(&conn_lock);
            active_conns--;
            pthread_mutex_unlock(&conn_lock);
            continue;
        }
        pthread_detach(tid);
    }
}

static int server_start(struct server *sv)
{
    struct sockaddr_in a = {.sin_family = AF_INET};
    socklen_t len = sizeof a;

    if (inet_pton(AF_INET, sv->addr, &a.sin_addr) != 1)
        return -1;
    sv->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (sv->fd < 0 || bind(sv->fd, (struct sockaddr *)&a, sizeof a) != 0 ||
        listen(sv->fd, 64) != 0 || getsockname(sv->fd, (struct sockaddr *)&a, &len) != 0)
        return -1;
    sv->port = ntohs(a.sin_port);
    if (pthread_create(&sv->tid, NULL, accept_thread, sv) != 0)
        return -1;
    sv->started = 1;
    return 0;
}

/* Stops both servers (the stop pipe stays readable for every thread). */
static void server_stop(void)
{
    if (write(stop_pipe[1], "x", 1) != 1)
        return;
    if (srv1.started)
        pthread_join(srv1.tid, NULL);
    if (srv2.started)
        pthread_join(srv2.tid, NULL);
    pthread_mutex_lock(&conn_lock);
    while (active_conns > 0)
        pthread_cond_wait(&conn_cond, &conn_lock);
    pthread_mutex_unlock(&conn_lock);
    close(srv1.fd);
    close(srv2.fd);
    close(stop_pipe[0]);
    close(stop_pipe[1]);
}

static int accepted(const struct server *sv)
{
    int n;

    pthread_mutex_lock(&conn_lock);
    n = sv->accepted;
    pthread_mutex_unlock(&conn_lock);
    return n;
}

/* ---- the gzip bomb: deflate with fixed Huffman codes, by hand ---- */

struct bits {
    unsigned char *p;
    size_t at; /* in bits */
};

/* Appends the n low bits of v, least significant first (deflate's order
 * for numbers). */
static void put_bits(struct bits *b, unsigned v, int n)
{
    int i;

    for (i = 0; i < n; i++, b->at++)
        if (v >> i & 1)
            b->p[b->at / 8] |= (unsigned char)(1u << (b->at % 8));
}

/* Appends a Huffman code of n bits, most significant first. */
static void put_code(struct bits *b, unsigned code, int n)
{
    int i;

    for (i = n - 1; i >= 0; i--)
        put_bits(b, code >> i & 1, 1);
}

static uint32_t crc32_zeros(size_t n)
{
    uint32_t table[256], c = 0xffffffffu;
    unsigned i, k;

    for (i = 0; i < 256; i++) {
        uint32_t t = i;
        for (k = 0; k < 8; k++)
            t = t & 1 ? 0xedb88320u ^ (t >> 1) : t >> 1;
        table[i] = t;
    }
    while (n-- > 0)
        c = table[c & 0xff] ^ (c >> 8);
    return c ^ 0xffffffffu;
}

/* WF_BOMB_BYTES zeros: a literal 0, then matches of 258 at distance 1
 * (13 bits each, about 160:1), literals for the rest, in one gzip member. */
static int bomb_make(void)
{
    static const unsigned char head[10] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3};
    size_t left = WF_BOMB_BYTES - 1, cap = WF_BOMB_BYTES / 258 * 2 + 1024, end;
    struct bits b;
    uint32_t crc = crc32_zeros(WF_BOMB_BYTES), size = WF_BOMB_BYTES;
    int i;

    bomb = calloc(1, cap);
    if (bomb == NULL)
        return -1;
    memcpy(bomb, head, sizeof head);
    b.p = bomb + sizeof head;
    b.at = 0;
    put_bits(&b, 1, 1);    /* BFINAL */
    put_bits(&b, 1, 2);    /* BTYPE 01: fixed codes */
    put_code(&b, 0x30, 8); /* literal 0 */
    for (; left >= 258; left -= 258) {
        put_code(&b, 0xc5, 8); /* length code 285: 258 */
        put_code(&b, 0, 5);    /* distance code 0: 1 */
    }
    for (; left > 0; left--)
        put_code(&b, 0x30, 8);
    put_code(&b, 0, 7); /* end of block (256) */
    end = sizeof head + (b.at + 7) / 8;
    for (i = 0; i < 4; i++)
        bomb[end + (size_t)i] = (unsigned char)(crc >> (8 * i));
    for (i = 0; i < 4; i++)
        bomb[end + 4 + (size_t)i] = (unsigned char)(size >> (8 * i));
    bomb_len = end + 8;
    return 0;
}

/* ---- fixtures ---- */

static struct dsp_registry reg;
static char dir[64];
static struct rt_table *table;
/* jarvis.web.fetch without its input schema: what the handler checks alone */
static jarvis_node raw_node;
static const jarvis_node *const raw_nodes[] = {&raw_node, NULL};
static const jarvis_pack raw_pack = {.name = "raw", .nodes = raw_nodes};
/* the node type fetch() runs */
static const char *fetch_type = "jarvis.web.fetch";

static int suite_init(void)
{
    static const jarvis_pack *const packs[] = {&jarvis_pack_core, &raw_pack, NULL};
    char path[128], err[256];

    raw_node = core_node_web_fetch;
    raw_node.node_type_id = "test.web.fetch.raw";
    raw_node.input_schema = NULL;

    /* before any thread: SIGUSR2 stays blocked in all of them */
    if (rn_init() != 0 || curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK ||
        dsp_registry_init(&reg, packs, err, sizeof err) != 0)
        return -1;
    unsetenv("http_proxy");
    unsetenv("HTTP_PROXY");
    unsetenv("https_proxy");
    unsetenv("HTTPS_PROXY");
    unsetenv("ALL_PROXY");
    unsetenv("all_proxy");
    snprintf(dir, sizeof dir, "/tmp/jarvis-wf-XXXXXX");
    if (mkdtemp(dir) == NULL)
        return -1;
    snprintf(path, sizeof path, "%s/run.tbl", dir);
    table = rt_open(path, 8, err, sizeof err);
    if (table == NULL || bomb_make() != 0 || pipe(stop_pipe) != 0 || server_start(&srv1) != 0 ||
        server_start(&srv2) != 0)
        return -1;
    port = srv1.port;
    port2 = srv2.port;
    return 0;
}

static int suite_cleanup(void)
{
    server_stop();
    rt_close(table);
    tu_remove_tree(dir);
    free(bomb);
    curl_global_cleanup();
    return 0;
}

/* The baseline of every test: no lists, default limits, and the loopback
 * range re-allowed on every port, as the servers here live there (the
 * default policy refuses it; test_web_fetch_policy.c tests that). */
static void clear_env(void)
{
    unsetenv("JARVIS_ATOMIC_HTTP_ALLOWED_HOSTS");
    unsetenv("JARVIS_ATOMIC_HTTP_BLOCKED_HOSTS");
    unsetenv("JARVIS_ATOMIC_HTTP_TIMEOUT_SECONDS");
    unsetenv("JARVIS_ATOMIC_HTTP_MAX_TIMEOUT_SECONDS");
    unsetenv("JARVIS_ATOMIC_HTTP_MAX_BYTES");
    unsetenv("JARVIS_ATOMIC_HTTP_ALLOWED_PORTS");
    unsetenv("JARVIS_ATOMIC_HTTP_PROXY");
    unsetenv("JARVIS_ATOMIC_HTTP_CA_FILE");
    setenv("JARVIS_ATOMIC_HTTP_ALLOWED_CIDRS", "127.0.0.0/8:*", 1);
}

static int64_t mono_ms(void)
{
    return ts_mono_us() / 1000;
}

/* The traceparent of the HTTP request of the runs fetch_lim makes (NULL:
 * none); test_traceparent sets it and puts NULL back. */
static const char *run_traceparent;

/* Runs jarvis.web.fetch with the inputs printf(fmt, ...) under lim (NULL:
 * none). Every "PORT" in fmt is the 127.0.0.1 server's port, every "PORT2"
 * the 127.0.0.2 server's. */
static void fetch_lim(const struct dsp_limits *lim, const char *id, struct exec_result *res,
                      const char *fmt, ...)
{
    static const struct dsp_limits none = {NULL, 0, 0, 0};
    char text[8192], withport[8192], num[16], num2[16];
    const char *p, *hit;
    struct exec_req req;
    json_object *in;
    va_list ap;
    size_t o = 0;

    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    snprintf(num, sizeof num, "%d", port);
    snprintf(num2, sizeof num2, "%d", port2);
    for (p = text; (hit = strstr(p, "PORT")) != NULL; p = hit + (hit[4] == '2' ? 5 : 4)) {
        o += (size_t)snprintf(withport + o, sizeof withport - o, "%.*s%s", (int)(hit - p), p,
                              hit[4] == '2' ? num2 : num);
    }
    snprintf(withport + o, sizeof withport - o, "%s", p);
    in = tu_json(withport);
    CU_ASSERT_PTR_NOT_NULL_FATAL(in);
    memset(&req, 0, sizeof req);
    req.node_run_id = id;
    req.run_id = "r";
    req.node_type_id = fetch_type;
    req.inputs = in;
    req.traceparent = run_traceparent;
    CU_ASSERT_EQUAL(dsp_execute(&reg, lim != NULL ? lim : &none, &req, NULL, res), DSP_OK);
    json_object_put(in);
}

#define fetch(res, ...) fetch_lim(NULL, "nr", res, __VA_ARGS__)

static const char *out_str(const struct exec_result *res, const char *key)
{
    json_object *v = NULL;

    if (res->outputs == NULL || !json_object_object_get_ex(res->outputs, key, &v))
        return NULL;
    return json_object_get_string(v);
}

static long long out_int(const struct exec_result *res, const char *key)
{
    json_object *v = NULL;

    if (res->outputs == NULL || !json_object_object_get_ex(res->outputs, key, &v))
        return -1;
    return json_object_get_int64(v);
}

/* "http://127.0.0.1:<port><path>" in a static buffer. */
static const char *url(const char *path)
{
    static char buf[256];

    snprintf(buf, sizeof buf, "http://127.0.0.1:%d%s", port, path);
    return buf;
}

static void expect_failed(const struct exec_result *res, const char *reason_part)
{
    CU_ASSERT_EQUAL(res->state, RUN_FAILED);
    CU_ASSERT_PTR_NULL(res->outputs);
    CU_ASSERT_PTR_NOT_NULL_FATAL(res->error_code);
    /* The address policy's refusals are named for the client; everything
     * else (a list that cannot be read included) stays handler_error. */
    if (strstr(res->reason, "refused by the address policy") != NULL) {
        CU_ASSERT_STRING_EQUAL(res->error_code, "fetch_denied");
        CU_ASSERT_STRING_EQUAL(res->message,
                               "The URL's address or port is not allowed by the fetch policy");
    } else {
        CU_ASSERT_STRING_EQUAL(res->error_code, "handler_error");
    }
    if (strstr(res->reason, reason_part) == NULL)
        fprintf(stderr, "\n  reason \"%s\" lacks \"%s\"\n", res->reason, reason_part);
    CU_ASSERT_PTR_NOT_NULL(strstr(res->reason, reason_part));
}

/* The /json echo carried in the body of a successful fetch (caller puts). */
static json_object *echo_of(const struct exec_result *res)
{
    const char *b64 = out_str(res, "content_base64");
    static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char *text;
    size_t i, o = 0;
    unsigned long acc = 0;
    int bits = 0;
    json_object *j;

    CU_ASSERT_EQUAL_FATAL(res->state, RUN_SUCCEEDED);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b64);
    text = malloc(strlen(b64) + 1);
    for (i = 0; b64[i] != '\0' && b64[i] != '='; i++) {
        acc = acc << 6 | (unsigned long)(strchr(abc, b64[i]) - abc);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            text[o++] = (char)(acc >> bits & 0xff);
        }
    }
    text[o] = '\0';
    j = tu_json(text);
    free(text);
    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    return j;
}

/* echo[a][b] as a string, or NULL. */
static const char *echo_get(json_object *echo, const char *a, const char *b)
{
    json_object *v = NULL, *w = NULL;

    if (!json_object_object_get_ex(echo, a, &v))
        return NULL;
    if (b == NULL)
        return json_object_get_string(v);
    return json_object_object_get_ex(v, b, &w) ? json_object_get_string(w) : NULL;
}

#define ASSERT_ECHO(echo, a, b, want)                                                              \
    do {                                                                                           \
        const char *got_ = echo_get(echo, a, b);                                                   \
        if (got_ == NULL || strcmp(got_, want) != 0)                                               \
            fprintf(stderr, "\n  echo %s.%s: got %s want %s\n", a, b ? b : "",                     \
                    got_ ? got_ : "(none)", want);                                                 \
        CU_ASSERT_TRUE(got_ != NULL && strcmp(got_, want) == 0);                                   \
    } while (0)

/* ---- tests ---- */

static void test_get_ok(void)
{
    struct exec_result res;
    char want[1024];

    clear_env();
    fetch(&res, "{\"url\":\"http://127.0.0.1:PORT/ok\"}");
    CU_ASSERT_EQUAL_FATAL(res.state, RUN_SUCCEEDED);
    snprintf(want, sizeof want,
             "{\"status_code\":200,\"headers\":[{\"key\":\"connection\",\"value\":\"close\"},"
             "{\"key\":\"content-length\",\"value\":\"5\"},"
             "{\"key\":\"content-type\",\"value\":\"text/plain\"},"
             "{\"key\":\"x-multi\",\"value\":\"one, two\"},"
             "{\"key\":\"x-upper\",\"value\":\"Value\"}],"
             "\"content_type\":\"text/plain\",\"content_base64\":\"aGVsbG8=\","
             "\"final_url\":\"%s\",\"content_bytes\":5}",
             url("/ok"));
    TU_ASSERT_JSON(res.outputs, want);
    dsp_result_cleanup(&res);

    /* nulls are "not given"; the method is case-insensitive */
    fetch(&res, "{\"url\":\"http://127.0.0.1:PORT/ok\",\"method\":\"get\",\"headers\":null,"
                "\"params\":null,\"json\":null,\"body\":null,\"timeout_seconds\":null,"
                "\"max_bytes\":null,\"follow_redirects\":null}");
    CU_ASSERT_EQUAL(res.state, RUN_SUCCEEDED);
    CU_ASSERT_EQUAL(out_int(&res, "status_code"), 200);
    dsp_result_cleanup(&res);

    /* a 404 is an answer, not a failure */
    fetch(&res, "{\"url\":\"http://127.0.0.1:PORT/nope\"}");
    CU_ASSERT_EQUAL(res.state, RUN_SUCCEEDED);
    CU_ASSERT_EQUAL(out_int(&res, "status_code"), 404);
    CU_ASSERT_EQUAL(out_int(&res, "content_bytes"), 0);
    CU_ASSERT_STRING_EQUAL(out_str(&res, "content_base64"), "");
    CU_ASSERT_PTR_NULL(out_str(&res, "content_type"));
    dsp_result_cleanup(&res);
}

static void test_params_and_headers(void)
{
    struct exec_result res;
    json_object *echo;

    clear_env();
    fetch(&res, "{\"url\":\"http://127.0.0.1:PORT/json?a=1&keep=x%%20y&a=3&flag\","
                "\"params\":[{\"key\":\"a\",\"value\":\"two words\"},"
                "{\"key\":\"q\",\"value\":\"\xc3\xa9&=/~\"},{\"key\":\"q\",\"value\":\"last\"},"
                "{\"key\":\"new\",\"value\":\"\"}],"
                "\"headers\":[{\"key\":\"X-Token\",\"value\":\"t1\"},"
                "{\"key\":\"Accept\",\"value\":\"text/x\"},{\"key\":\"X-Empty\",\"value\":\"\"},"
                "{\"key\":\"X-Token\",\"value\":\"t2\"}]}");
    echo = echo_of(&res);
    ASSERT_ECHO(echo, "method", NULL, "GET");
    ASSERT_ECHO(echo, "target", NULL, "/json?a=two+words&keep=x+y&flag=&q=last&new=");
    ASSERT_ECHO(echo, "headers", "x-token", "t2");
    ASSERT_ECHO(echo, "headers", "accept", "text/x");
    ASSERT_ECHO(echo, "headers", "x-empty", "");
    ASSERT_ECHO(echo, "headers", "user-agent", "jarvis-atomic-nodes/0.3.8");
    CU_ASSERT_PTR_NULL(echo_get(echo, "headers", "content-type"));
    CU_ASSERT_STRING_EQUAL(out_str(&res, "final_url"),
                           url("/json?a=two+words&keep=x+y&flag=&q=last&new="));
    json_object_put(echo);
    dsp_result_cleanup(&res);

    fetch(&res, "{\"url\":\"http://127.0.0.1:PORT/json?z=1\",\"params\":"
                "[{\"key\":\"q\",\"value\":\"\xc3\xa9&=/~ +\"}]}");
    echo = echo_of(&res);
    ASSERT_ECHO(echo, "target", NULL, "/json?z=1&q=%C3%A9%26%3D%2F~+%2B");
    json_object_put(echo);
    dsp_result_cleanup(&res);

    /* without params the URL is sent as given */
    fetch(&res, "{\"url\":\"http://127.0.0.1:PORT/json?b=1&a=2&b=3&flag\"}");
    echo = echo_of(&res);
    ASSERT_ECHO(echo, "target", NULL, "/json?b=1&a=2&b=3&flag");
    json_object_put(echo);
    dsp_result_cleanup(&res);
}

static void test_post_json_and_body(void)
{
    struct exec_result res;
    json_object *echo;

    clear_env();
    fetch(&res, "{\"url\":\"http://127.0.0.1:PORT/json\",\"method\":\"POST\","
                "\"json\":\"{\\\"a\\\": [1, 2.5, NaN]}\"}");
    echo = echo_of(&res);
    ASSERT_ECHO(echo, "method", NULL, "POST");
    ASSERT_ECHO(echo, "headers", "content-type", "application/json");
    ASSERT_ECHO(echo, "headers", "content-length", "20");
    ASSERT_ECHO(echo, "body", NULL, "{\"a\": [1, 2.5, NaN]}");
    CU_ASSERT_PTR_NULL(echo_get(echo, "headers", "expect"));
    json_object_put(echo);
    dsp_result_cleanup(&res);

    /* a content-type given wins */
    fetch(&res, "{\"url\":\"http://127.0.0.1:PORT/json\",\"method\":\"put\",\"json\":\"[]\","
                "\"headers\":[{\"key\":\"content-TYPE\",\"value\":\"application/vnd.x+json\"}]}");
    echo = echo_of(&res);
    ASSERT_ECHO(echo, "method", NULL, "PUT");
    ASSERT_ECHO(echo, "headers", "content-type", "application/vnd.x+json");
    ASSERT_ECHO(echo, "body", NULL, "[]");
    json_object_put(echo);
    dsp_result_cleanup(&res);

    /* a raw body goes as is, with no content-type of curl's */
    fetch(&res, "{\"url\":\"http://127.0.0.1:PORT/json\",\"method\":\"POST\","
                "\"body\":\"raw \\u00e9 text\"}");
    echo = echo_of(&res);
    ASSERT_ECHO(echo, "method", NULL, "POST");
    ASSERT_ECHO(echo, "body", NULL, "raw \xc3\xa9 text");
    ASSERT_ECHO(echo, "headers", "content-length", "11");
    CU_ASSERT_PTR_NULL(echo_get(echo, "headers", "content-type"));
    json_object_put(echo);
    dsp_result_cleanup(&res);

    /* PATCH without a body sends Content-Length: 0, as httpx; DELETE with one sends it */
    fetch(&res, "{\"url\":\"http://127.0.0.1:PORT/json\",\"method\":\"PATCH\"}");
    echo = echo_of(&res);
    ASSERT_ECHO(echo, "method", NULL, "PATCH");
    ASSERT_ECHO(echo, "headers", "content-length", "0");
    json_object_put(echo);
    dsp_result_cleanup(&res);
    fetch(&res, "{\"url\":\"http://127.0.0.1:PORT/json\",\"method\":\"DELETE\",\"body\":\"x\"}");
    echo = echo_of(&res);
    ASSERT_ECHO(echo, "method", NULL, "DELETE");
    ASSERT_ECHO(echo, "body", NULL, "x");
    json_object_put(echo);
    dsp_result_cleanup(&res);
    fetch(&res, "{\"url\":\"http://127.0.0.1:PORT/json\",\"method\":\"OPTIONS\"}");
    echo = echo_of(&res);
    ASSERT_ECHO(echo, "method", NULL, "OPTIONS");
    CU_ASSERT_PTR_NULL(echo_get(echo, "headers", "content-length"));
    json_object_put(echo);
    dsp_result_cleanup(&res);

    /* json "null" is no body, as the reference */
    fetch(&res, "{\"url\":\"http://127.0.0.1:PORT/json\",\"method\":\"POST\",\"json\":\" null \"}");
    echo = echo_of(&res);
    ASSERT_ECHO(echo, "body", NULL, "");
    CU_ASSERT_PTR_NULL(echo_get(echo, "headers", "content-type"));
    json_object_put(echo);
    dsp_result_cleanup(&res);

    fetch(&res, "{\"url\":\"http://127.0.0.1:PORT/json\",\"method\":\"POST\",\"json\":\"{}\","
                "\"body\":\"x\"}");
    expect_failed(&res, "json and body");
    dsp_result_cleanup(&res);
}

static void test_invalid_json(void)
{
    static const char *const bad[] = {"{'a':1}",       "[1,]",  "{\\\"a\\\":1} x", "", "01", "tru",
                                      "\\\"\\\\x\\\"", "[1 2]", "{\\\"a\\\"}",     "-"};
    static const char *const good[] = {"5", "\\\"x\\\"", " [true, false, null, -0.5e+3] ",
                                       "-Infinity", "{\\\"a\\\":{\\\"b\\\":[]}}"};
    struct exec_result res;
    size_t i;

    clear_env();
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        fetch(&res, "{\"url\":\"http://127.0.0.1:PORT/json\",\"method\":\"POST\",\"json\":\"%s\"}",
              bad[i]);
        expect_failed(&res, "json is not valid JSON");
        dsp_result_cleanup(&res);
    }
    for (i = 0; i < sizeof good / sizeof good[0]; i++) {
        fetch(&res, "{\"url\":\"http://127.0.0.1:PORT/json\",\"method\":\"POST\",\"json\":\"%s\"}",
              good[i]);
        CU_ASSERT_EQUAL(res.state, RUN_SUCCEEDED);
        dsp_result_cleanup(&res);
    }
}

static void test_head(void)
{
    struct exec_result res;
    char want[1024];

    clear_env();
    fetch(&res, "{\"url\":\"http://127.0.0.1:PORT/head-check\",\"method\":\"Head\","
                "\"body\":\"never sent\"}");
    CU_ASSERT_EQUAL_FATAL(res.state, RUN_SUCCEEDED);
    snprintf(want, sizeof want,
             "{\"status_code\":200,\"headers\":[{\"key\":\"connection\",\"value\":\"close\"},"
             "{\"key\":\"content-length\",\"value\":\"5\"},"
             "{\"key\":\"x-method\",\"value\":\"HEAD\"}],"
             "\"content_type\":null,\"content_base64\":\"\","
             "\"final_url\":\"%s\",\"content_bytes\":0}",
             url("/head-check"));
    TU_ASSERT_JSON(res.outputs, want);
    dsp_result_cleanup(&res);
}

static void test_redirect_not_followed(void)
{
    struct exec_result res;

    clear_env();
    fetch(&res, "{\"url\":\"http://127.0.0.1:PORT/redirect?to=/ok\"}");
    CU_ASSERT_EQUAL_FATAL(res.state, RUN_SUCCEEDED);
    CU_ASSERT_EQUAL(out_int(&res, "status_code"), 302);
    CU_ASSERT_STRING_EQUAL(out_str(&res, "final_url"), url("/redirect?to=/ok"));
    CU_ASSERT_STRING_EQUAL(out_str(&res, "content_base64"), "bW92ZWQ="); /* "moved" */
    dsp_result_cleanup(&res);

    fetch(&res, "{\"url\":\"http://127.0.0.1:PORT/redirect?to=/ok\",\"follow_redirects\":false}");
    CU_ASSERT_EQUAL(out_int(&res, "status_code"), 302);
    dsp_result_cleanup(&res);
}

static void test_redirect_followed(void)
{
    struct exec_result res;

    clear_env();
    fetch(&res, "{\"url\":\"http://127.0.0.1:PORT/redirect?to=/ok\",\"follow_redirects\":true}");
    CU_ASSERT_EQUAL_FATAL(res.state, RUN_SUCCEEDED);
    CU_ASSERT_EQUAL(out_int(&res, "status_code"), 200);
    CU_ASSERT_STRING_EQUAL(out_str(&res, "final_url"), url("/ok"));
    CU_ASSERT_STRING_EQUAL(out_str(&res, "content_base64"), "aGVsbG8=");
    dsp_result_cleanup(&res);

    /* absolute, two hops */
    fetch(&res, "{\"url\":\"http://127.0.0.1:PORT/redirect?code=301&to="
                "http%%3A%%2F%%2F127.0.0.1%%3APORT%%2Fredirect%%3Fcode%%3D308%%26to%%3D%%2Fok\","
                "\"follow_redirects\":true}");
    CU_ASSERT_EQUAL_FATAL(res.state, RUN_SUCCEEDED);
    CU_ASSERT_EQUAL(out_int(&res, "status_code"), 200);
    CU_ASSERT_STRING_EQUAL(out_str(&res, "final_url"), url("/ok"));
    dsp_result_cleanup(&res);

    /* a redirect status without Location is the answer */
    fetch(&res, "{\"url\":\"http://127.0.0.1:PORT/redirect?code=307\",\"follow_redirects\":true}");
    CU_ASSERT_EQUAL(res.state, RUN_SUCCEEDED);
    CU_ASSERT_EQUAL(out_int(&res, "status_code"), 307);
    dsp_result_cleanup(&res);

    fetch(&res, "{\"url\":\"http://127.0.0.1:PORT/loop\",\"follow_redirects\":true}");
    expect_failed(&res, "more than 10 redirects");
    dsp_result_cleanup(&res);

    fetch(&res, "{\"url\":\"http://127.0.0.1:PORT/redirect?to=ftp://127.0.0.1/x\","
                "\"follow_redirects\":true}");
    expect_failed(&res, "redirect: scheme must be http or https");
    dsp_result_cleanup(&res);
}

/* method and body after a `code` redirect of a `method` request with body */
static void check_redirect_method(int code, const char *method, const char *want_method,
                                  int body_kept)
{
    struct exec_result res;
    json_object *echo;

    fetch(&res,
          "{\"url\":\"http://127.0.0.1:PORT/redirect?code=%d&to=/json\",\"method\":\"%s\","
          "\"json\":\"[1]\",\"follow_redirects\":true}",
          code, method);
    echo = echo_of(&res);
    ASSERT_ECHO(echo, "method", NULL, want_method);
    ASSERT_ECHO(echo, "body", NULL, body_kept ? "[1]" : "");
    if (body_kept)
        ASSERT_ECHO(echo, "headers", "content-type", "application/json");
    else
        CU_ASSERT_PTR_NULL(echo_get(echo, "headers", "content-type"));
    CU_ASSERT_STRING_EQUAL(out_str(&res, "final_url"), url("/json"));
    json_object_put(echo);
    dsp_result_cleanup(&res);
}

static void test_redirect_methods(void)
{
    clear_env();
    check_redirect_method(303, "POST", "GET", 0);
    check_redirect_method(303, "PUT", "GET", 0);
    check_redirect_method(302, "POST", "GET", 0);
    check_redirect_method(302, "DELETE", "GET", 0);
    check_redirect_method(301, "POST", "GET", 0);
    check_redirect_method(301, "PUT", "PUT", 1);
    check_redirect_method(307, "POST", "POST", 1);
    check_redirect_method(308, "PATCH", "PATCH", 1);
}

static void test_redirect_head(void)
{
    struct exec_result res;

    clear_env();
    fetch(&res, "{\"url\":\"http://127.0.0.1:PORT/redirect?code=303&to=/head-check\","
                "\"method\":\"HEAD\",\"follow_redirects\":true}");
    CU_ASSERT_EQUAL_FATAL(res.state, RUN_SUCCEEDED);
    CU_ASSERT_EQUAL(out_int(&res, "content_bytes"), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(json_object_to_json_string(res.outputs), "\"HEAD\""));
    dsp_result_cleanup(&res);
}

static void test_redirect_headers(void)
{
    struct exec_result res;
    json_object *echo;

    clear_env();
    /* same origin: Authorization stays, Cookie goes; the hop's cookie comes */
    fetch(&res, "{\"url\":\"http://127.0.0.1:PORT/setcookie\",\"follow_redirects\":true,"
                "\"headers\":[{\"key\":\"Authorization\",\"value\":\"Bearer t\"},"
                "{\"key\":\"Cookie\",\"value\":\"mine=1\"}]}");
    echo = echo_of(&res);
    ASSERT_ECHO(echo, "headers", "authorization", "Bearer t");
    ASSERT_ECHO(echo, "headers", "cookie", "sid=abc");
    json_object_put(echo);
    dsp_result_cleanup(&res);

    /* another origin (localhost): Authorization and Host go too */
    fetch(&res,
          "{\"url\":\"http://127.0.0.1:PORT/redirect?to=http://localhost:PORT/json\","
          "\"follow_redirects\":true,"
          "\"headers\":[{\"key\":\"Authorization\",\"value\":\"Bearer t\"},"
          "{\"key\":\"Host\",\"value\":\"example.com\"},{\"key\":\"X-Keep\",\"value\":\"k\"}]}");
    echo = echo_of(&res);
    CU_ASSERT_PTR_NULL(echo_get(echo, "headers", "authorization"));
    ASSERT_ECHO(echo, "headers", "x-keep", "k");
    {
        char want[64];
        snprintf(want, sizeof want, "localhost:%d", port);
        ASSERT_ECHO(echo, "headers", "host", want);
    }
    json_object_put(echo);
    dsp_result_cleanup(&res);
}

/* Fetches inputs (JSON, "PORT" as for fetch) from the /json echo and
 * checks the traceparent it got (want NULL: none). */
static void expect_traceparent(const char *inputs, const char *want)
{
    struct exec_result res;
    json_object *echo;

    fetch(&res, "%s", inputs);
    echo = echo_of(&res);
    if (want != NULL)
        ASSERT_ECHO(echo, "headers", "traceparent", want);
    else
        CU_ASSERT_PTR_NULL(echo_get(echo, "headers", "traceparent"));
    json_object_put(echo);
    dsp_result_cleanup(&res);
}

/* The run's traceparent goes on unchanged, across redirects too; one the
 * inputs give wins; with none, none is sent. */
static void test_traceparent(void)
{
    static const char tp[] = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    static const char given[] = "00-11111111111111111111111111111111-2222222222222222-00";

    clear_env();
    run_traceparent = tp;
    expect_traceparent("{\"url\":\"http://127.0.0.1:PORT/json\"}", tp);
    expect_traceparent("{\"url\":\"http://127.0.0.1:PORT/redirect?to=http://localhost:PORT/json\","
                       "\"follow_redirects\":true}",
                       tp);
    expect_traceparent("{\"url\":\"http://127.0.0.1:PORT/json\",\"headers\":[{\"key\":"
                       "\"TraceParent\",\"value\":\"00-11111111111111111111111111111111-"
                       "2222222222222222-00\"}]}",
                       given);
    run_traceparent = NULL;
    expect_traceparent("{\"url\":\"http://127.0.0.1:PORT/json\"}", NULL);
}

static void test_host_lists(void)
{
    struct exec_result res;

    clear_env();
    setenv("JARVIS_ATOMIC_HTTP_BLOCKED_HOSTS", "example.com, LOCALHOST", 1);
    fetch(&res, "{\"url\":\"http://127.0.0.1:PORT/redirect?to=http://localhost:PORT/ok\","
                "\"follow_redirects\":true}");
    expect_failed(&res, "redirect: host localhost is blocked");
    dsp_result_cleanup(&res);
    /* not followed: nothing goes to the blocked host */
    fetch(&res, "{\"url\":\"http://127.0.0.1:PORT/redirect?to=http://localhost:PORT/ok\"}");
    CU_ASSERT_EQUAL(out_int(&res, "status_code"), 302);
    dsp_result_cleanup(&res);
    fetch(&res, "{\"url\":\"http://LocalHost:PORT/ok\"}");
    expect_failed(&res, "url: host localhost is blocked");
    dsp_result_cleanup(&res);

    clear_env();
    setenv("JARVIS_ATOMIC_HTTP_ALLOWED_HOSTS", "example.com,localhost", 1);
    fetch(&res, "{\"url\":\"http://127.0.0.1:PORT/ok\"}");
    expect_failed(&res, "url: host 127.0.0.1 is not in JARVIS_ATOMIC_HTTP_ALLOWED_HOSTS");
    dsp_result_cleanup(&res);
    fetch(&res, "{\"url\":\"http://localhost:PORT/redirect?to=http://127.0.0.1:PORT/ok\","
                "\"follow_redirects\":true}");
    expect_failed(&res, "redirect: host 127.0.0.1 is not in");
    dsp_result_cleanup(&res);
    fetch(&res, "{\"url\":\"http://localhost:PORT/ok\"}");
    CU_ASSERT_EQUAL(res.state, RUN_SUCCEEDED);
    dsp_result_cleanup(&res);

    /* an IPv6 literal is listed without its brackets, in lower case (the
     * hostname Python's urlparse gives); only loopback addresses here */
    clear_env();
    setenv("JARVIS_ATOMIC_HTTP_BLOCKED_HOSTS", "example.com, ::ffff:7f00:1", 1);
    fetch(&res, "{\"url\":\"http://[::FFFF:7F00:1]:PORT/ok\"}");
    expect_failed(&res, "url: host ::ffff:7f00:1 is blocked");
    dsp_result_cleanup(&res);
    clear_env();
    setenv("JARVIS_ATOMIC_HTTP_ALLOWED_HOSTS", "::1", 1);
    fetch(&res, "{\"url\":\"http://[::1]:PORT/ok\"}");
    /* past the host list: the address policy is what refuses it */
    expect_failed(&res, "url: refused by the address policy: address ::1 is loopback");
    dsp_result_cleanup(&res);
    setenv("JARVIS_ATOMIC_HTTP_ALLOWED_HOSTS", "::2", 1);
    fetch(&res, "{\"url\":\"http://[::1]:PORT/ok\"}");
    expect_failed(&res, "url: host ::1 is not in JARVIS_ATOMIC_HTTP_ALLOWED_HOSTS");
    dsp_result_cleanup(&res);

    /* an allowed list of only blanks restricts nothing */
    clear_env();
    setenv("JARVIS_ATOMIC_HTTP_ALLOWED_HOSTS", " , ", 1);
    fetch(&res, "{\"url\":\"http://127.0.0.1:PORT/ok\"}");
    CU_ASSERT_EQUAL(res.state, RUN_SUCCEEDED);
    dsp_result_cleanup(&res);
    clear_env();
}

static void test_max_bytes(void)
{
    struct exec_result res;
    int64_t t0;

    clear_env();
    t0 = mono_ms();
    fetch(&res, "{\"url\":\"http://127.0.0.1:PORT/big\",\"max_bytes\":1000}");
    expect_failed(&res, "response body exceeds max_bytes (1000)");
    dsp_result_cleanup(&res);
    fetch(&res, "{\"url\":\"http://127.0.0.1:PORT/big-chunked\",\"max_bytes\":1000}");
    expect_failed(&res, "exceeds max_bytes");
    dsp_result_cleanup(&res);
    /* over the default 1 MiB */
    fetch(&res, "{\"url\":\"http://127.0.0.1:PORT/big\"}");
    expect_failed(&res, "exceeds max_bytes (1048576)");
    dsp_result_cleanup(&res);
    CU_ASSERT_TRUE(mono_ms() - t0 < 3000);

    fetch(&res, "{\"url\":\"http://127.0.0.1:PORT/ok\",\"max_bytes\":5}");
    CU_ASSERT_EQUAL(res.state, RUN_SUCCEEDED);
    dsp_result_cleanup(&res);
    fetch(&res, "{\"url\":\"http://127.0.0.1:PORT/ok\",\"max_bytes\":4}");
    expect_failed(&res, "exceeds max_bytes (4)");
    dsp_result_cleanup(&res);

    setenv("JARVIS_ATOMIC_HTTP_MAX_BYTES", "3", 1);
    fetch(&res, "{\"url\":\"http://127.0.0.1:PORT/ok\"}");
    expect_failed(&res, "exceeds max_bytes (3)");
    dsp_result_cleanup(&res);
    setenv("JARVIS_ATOMIC_HTTP_MAX_BYTES", "2097152", 1);
    fetch(&res, "{\"url\":\"http://127.0.0.1:PORT/big\"}");
    CU_ASSERT_EQUAL(res.state, RUN_SUCCEEDED);
    CU_ASSERT_EQUAL(out_int(&res, "content_bytes"), 2097152);
    dsp_result_cleanup(&res);
    setenv("JARVIS_ATOMIC_HTTP_MAX_BYTES", "junk", 1); /* ignored: the default */
    fetch(&res, "{\"url\":\"http://127.0.0.1:PORT/big\"}");
    expect_failed(&res, "exceeds max_bytes (1048576)");
    dsp_result_cleanup(&res);
    clear_env();
}

static void test_encodings(void)
{
    struct exec_result res;
    json_object *headers = NULL;

    clear_env();
    fetch(&res, "{\"url\":\"http://127.0.0.1:PORT/gzip\"}");
    CU_ASSERT_EQUAL_FATAL(res.state, RUN_SUCCEEDED);
    CU_ASSERT_STRING_EQUAL(out_str(&res, "content_base64"), "aGVsbG8gZ3ppcCBoZWxsbyBnemlw");
    CU_ASSERT_EQUAL(out_int(&res, "content_bytes"), 21);
    dsp_result_cleanup(&res);

    /* a header that is not UTF-8 is read as latin-1, as httpx */
    fetch(&res, "{\"url\":\"http://127.0.0.1:PORT/latin1\"}");
    CU_ASSERT_EQUAL_FATAL(res.state, RUN_SUCCEEDED);
    CU_ASSERT_TRUE(json_object_object_get_ex(res.outputs, "headers", &headers));
    CU_ASSERT_PTR_NOT_NULL(strstr(json_object_to_json_string_ext(headers, JSON_C_TO_STRING_PLAIN),
                                  "{\"key\":\"x-l\",\"value\":\"caf\xc3\xa9\"}"));
    /* the ends of the upper half: U+0080 and U+00FF, two bytes each */
    CU_ASSERT_PTR_NOT_NULL(strstr(json_object_to_json_string_ext(headers, JSON_C_TO_STRING_PLAIN),
                                  "{\"key\":\"x-edge\",\"value\":\"\xc2\x80\xc3\xbf\"}"));
    dsp_result_cleanup(&res);
}

static void test_request_timeout(void)
{
    struct exec_result res;
    int64_t t0, took;

    clear_env();
    t0 = mono_ms();
    fetch(&res, "{\"url\":\"http://127.0.0.1:PORT/slow\",\"timeout_seconds\":0.2}");
    took = mono_ms() - t0;
    expect_failed(&res, "timed out after 0.2 s");
    CU_ASSERT_TRUE(took >= 150 && took < 1000);
    dsp_result_cleanup(&res);

    setenv("JARVIS_ATOMIC_HTTP_TIMEOUT_SECONDS", "0.25", 1);
    t0 = mono_ms();
    fetch(&res, "{\"url\":\"http://127.0.0.1:PORT/slow\"}");
    took = mono_ms() - t0;
    expect_failed(&res, "timed out after 0.25 s");
    CU_ASSERT_TRUE(took >= 200 && took < 1000);
    dsp_result_cleanup(&res);
    clear_env();
}

static void test_run_deadline(void)
{
    static const struct dsp_limits lim = {NULL, 0.2, 0, 0};
    struct exec_result res;
    int64_t t0, took;

    clear_env();
    t0 = mono_ms();
    fetch_lim(&lim, "nr-deadline", &res, "{\"url\":\"http://127.0.0.1:PORT/slow\"}");
    took = mono_ms() - t0;
    CU_ASSERT_EQUAL(res.state, RUN_FAILED);
    CU_ASSERT_PTR_NOT_NULL_FATAL(res.error_code);
    CU_ASSERT_STRING_EQUAL(res.error_code, "timeout");
    CU_ASSERT_FALSE(res.abandoned);
    CU_ASSERT_TRUE(took < 1000);
    dsp_result_cleanup(&res);
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static void *cancel_later(void *arg)
{
    pid_t owner = 0;

    sleep_ms(100);
    rt_cancel(table, arg, SIGUSR2, &owner);
    return NULL;
}

static void test_cancel(void)
{
    const struct dsp_limits lim = {table, 0, 0, 0};
    struct exec_result res;
    pthread_t th;
    int64_t t0, took;

    clear_env();
    t0 = mono_ms();
    CU_ASSERT_EQUAL_FATAL(pthread_create(&th, NULL, cancel_later, "nr-cancel"), 0);
    fetch_lim(&lim, "nr-cancel", &res, "{\"url\":\"http://127.0.0.1:PORT/slow\"}");
    took = mono_ms() - t0;
    pthread_join(th, NULL);
    CU_ASSERT_EQUAL(res.state, RUN_CANCELED);
    CU_ASSERT_PTR_NOT_NULL_FATAL(res.error_code);
    CU_ASSERT_STRING_EQUAL(res.error_code, "canceled");
    CU_ASSERT_FALSE(res.abandoned);
    CU_ASSERT_TRUE(took >= 90 && took < 500);
    dsp_result_cleanup(&res);

    /* the same node runs normally afterwards (the wake fd was drained) */
    fetch_lim(&lim, "nr-after", &res, "{\"url\":\"http://127.0.0.1:PORT/ok\"}");
    CU_ASSERT_EQUAL(res.state, RUN_SUCCEEDED);
    dsp_result_cleanup(&res);
}

/* Inputs the node refuses: `schema` when its input schema does (the service
 * answers invalid_inputs before the handler runs), else the handler does;
 * the handler alone (test.web.fetch.raw) refuses them all with `reason`. */
static void test_bad_inputs(void)
{
    static const struct {
        int schema;
        const char *inputs, *reason;
    } cases[] = {
        {1, "{}", "url is required"},
        {1, "{\"url\":null}", "url is required"},
        {1, "{\"url\":5}", "url must be a string"},
        {0, "{\"url\":\"ftp://127.0.0.1/x\"}", "url: scheme must be http or https"},
        {0, "{\"url\":\"file:///etc/passwd\"}", "url: scheme must be http or https"},
        {0, "{\"url\":\"127.0.0.1:PORT/ok\"}", "url: scheme must be http or https"},
        {0, "{\"url\":\"http:///path\"}", "url: must include a host"},
        {0, "{\"url\":\"http:/x\"}", "url: must include a host"},
        {0, "{\"url\":\"https://\"}", "url: must include a host"},
        {0, "{\"url\":\"http://a b/\"}", "url: not a valid URL"},
        {0, "{\"url\":\"http://127.0.0.%31:PORT/ok\"}", "url: host must not be percent-encoded"},
        {0, "{\"url\":\"http://[::1%25lo]:PORT/ok\"}", "url: host must not be percent-encoded"},
        {1, "{\"url\":\"\"}", "url: scheme must be http or https"},
        {0, "{\"url\":\"http://127.0.0.1:PORT/ok\",\"method\":\"BREW\"}", "method must be one of"},
        {0, "{\"url\":\"http://127.0.0.1:PORT/ok\",\"method\":\"get \"}", "method must be one of"},
        {1, "{\"url\":\"http://127.0.0.1:PORT/ok\",\"method\":7}", "method must be a string"},
        {1, "{\"url\":\"http://127.0.0.1:PORT/ok\",\"headers\":{\"a\":\"b\"}}",
         "headers must be an array"},
        {1, "{\"url\":\"http://127.0.0.1:PORT/ok\",\"headers\":[{\"key\":\"a\"}]}",
         "headers[0] must be an object with string key and value"},
        {1, "{\"url\":\"http://127.0.0.1:PORT/ok\",\"headers\":[\"a: b\"]}",
         "headers[0] must be an object"},
        {1, "{\"url\":\"http://127.0.0.1:PORT/ok\",\"headers\":[{\"key\":\"a\",\"value\":1}]}",
         "headers[0] must be an object"},
        {1,
         "{\"url\":\"http://127.0.0.1:PORT/ok\",\"headers\":[{\"key\":\"a\",\"value\":\"b\","
         "\"x\":1}]}",
         "headers[0] has fields other than key and value"},
        {0,
         "{\"url\":\"http://127.0.0.1:PORT/ok\",\"headers\":[{\"key\":\"a b\",\"value\":\"c\"}]}",
         "headers[0].key is not a valid header name"},
        {0, "{\"url\":\"http://127.0.0.1:PORT/ok\",\"headers\":[{\"key\":\"\",\"value\":\"c\"}]}",
         "headers[0].key is not a valid header name"},
        {0,
         "{\"url\":\"http://127.0.0.1:PORT/ok\",\"headers\":[{\"key\":\"a\",\"value\":\"b\"},"
         "{\"key\":\"X\",\"value\":\"1\\r\\nInjected: yes\"}]}",
         "headers[1].value holds a control character"},
        {0,
         "{\"url\":\"http://127.0.0.1:PORT/ok\","
         "\"headers\":[{\"key\":\"X\",\"value\":\"a\\u007fb\"}]}",
         "headers[0].value holds a control character"},
        {0, "{\"url\":\"http://127.0.0.1:PORT/ok\\u0000x\"}", "url holds a NUL character"},
        {0,
         "{\"url\":\"http://127.0.0.1:PORT/ok\",\"headers\":[{\"key\":\"Content-Length\","
         "\"value\":\"3\"}]}",
         "headers[0]: Content-Length is set by the node"},
        {0,
         "{\"url\":\"http://127.0.0.1:PORT/ok\",\"headers\":[{\"key\":\"transfer-encoding\","
         "\"value\":\"chunked\"}]}",
         "is set by the node"},
        {1, "{\"url\":\"http://127.0.0.1:PORT/ok\",\"params\":5}", "params must be an array"},
        {1, "{\"url\":\"http://127.0.0.1:PORT/ok\",\"params\":[{\"key\":1,\"value\":\"b\"}]}",
         "params[0] must be an object"},
        {1, "{\"url\":\"http://127.0.0.1:PORT/ok\",\"json\":{}}", "json must be a string"},
        {0, "{\"url\":\"http://127.0.0.1:PORT/ok\",\"json\":\"{\"}", "json is not valid JSON"},
        {0, "{\"url\":\"http://127.0.0.1:PORT/ok\",\"json\":\"1\",\"body\":\"x\"}",
         "json and body exclude each other"},
        {1, "{\"url\":\"http://127.0.0.1:PORT/ok\",\"body\":[]}", "body must be a string"},
        {1, "{\"url\":\"http://127.0.0.1:PORT/ok\",\"max_bytes\":0}",
         "max_bytes must be an integer > 0"},
        {1, "{\"url\":\"http://127.0.0.1:PORT/ok\",\"max_bytes\":-5}",
         "max_bytes must be an integer"},
        {1, "{\"url\":\"http://127.0.0.1:PORT/ok\",\"max_bytes\":1.5}",
         "max_bytes must be an integer"},
        {1, "{\"url\":\"http://127.0.0.1:PORT/ok\",\"max_bytes\":\"10\"}", "max_bytes must be"},
        {1, "{\"url\":\"http://127.0.0.1:PORT/ok\",\"timeout_seconds\":-1}",
         "timeout_seconds must be a number > 0"},
        {1, "{\"url\":\"http://127.0.0.1:PORT/ok\",\"timeout_seconds\":0}",
         "timeout_seconds must be a number > 0"},
        {1, "{\"url\":\"http://127.0.0.1:PORT/ok\",\"timeout_seconds\":true}",
         "timeout_seconds must be a number > 0"},
        {1, "{\"url\":\"http://127.0.0.1:PORT/ok\",\"follow_redirects\":\"yes\"}",
         "follow_redirects must be a boolean"},
        {1, "{\"url\":\"http://127.0.0.1:PORT/ok\",\"data\":\"x\"}", "unknown input data"},
    };
    struct exec_result res;
    size_t i;

    clear_env();
    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        fetch_type = "jarvis.web.fetch";
        fetch(&res, "%s", cases[i].inputs);
        if (res.state != RUN_FAILED ||
            (res.error_code != NULL &&
             strcmp(res.error_code, cases[i].schema ? "invalid_inputs" : "handler_error") != 0))
            fprintf(stderr, "\n  case %zu (%s): %s\n", i, cases[i].inputs,
                    res.error_code ? res.error_code : "succeeded");
        if (cases[i].schema) {
            CU_ASSERT_EQUAL(res.state, RUN_FAILED);
            CU_ASSERT_PTR_NOT_NULL_FATAL(res.error_code);
            CU_ASSERT_STRING_EQUAL(res.error_code, "invalid_inputs");
        } else {
            expect_failed(&res, cases[i].reason);
        }
        dsp_result_cleanup(&res);

        fetch_type = "test.web.fetch.raw";
        fetch(&res, "%s", cases[i].inputs);
        expect_failed(&res, cases[i].reason);
        dsp_result_cleanup(&res);
    }
    fetch_type = "jarvis.web.fetch";

    /* and what the handler alone accepts, it runs */
    fetch_type = "test.web.fetch.raw";
    fetch(&res, "{\"url\":\"http://127.0.0.1:PORT/ok\"}");
    CU_ASSERT_EQUAL(res.state, RUN_SUCCEEDED);
    dsp_result_cleanup(&res);
    fetch_type = "jarvis.web.fetch";
}

static void test_unreachable(void)
{
    struct exec_result res;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    /* a port that was just free: nothing listens there */
    CU_ASSERT_EQUAL_FATAL(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    CU_ASSERT_EQUAL_FATAL(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    close(fd);
    clear_env();
    fetch(&res, "{\"url\":\"http://127.0.0.1:%d/\"}", ntohs(a.sin_port));
    expect_failed(&res, "request failed");
    dsp_result_cleanup(&res);
}

/* JARVIS_ATOMIC_HTTP_CA_FILE is the CA bundle of https: one that cannot be
 * read fails the fetch with curl's reason (before any TLS byte is sent; the
 * server here speaks plain HTTP). A fetch that trusts it is in
 * tests/e2e_tls, against a TLS server of its own. */
static void test_ca_file(void)
{
    struct exec_result res;

    clear_env();
    setenv("JARVIS_ATOMIC_HTTP_CA_FILE", "/nonexistent/ca.pem", 1);
    fetch(&res, "{\"url\":\"https://127.0.0.1:PORT/ok\"}");
    expect_failed(&res, "error setting certificate file: /nonexistent/ca.pem");
    dsp_result_cleanup(&res);
    /* plain http never reads it */
    fetch(&res, "{\"url\":\"http://127.0.0.1:PORT/ok\"}");
    CU_ASSERT_EQUAL(res.state, RUN_SUCCEEDED);
    dsp_result_cleanup(&res);
    clear_env();
}

/* ---- the address policy, end to end on loopback ---- */

/* With the default policy (nothing re-allowed) every spelling of the
 * server's address is refused before any connection. */
static void test_policy_default_deny(void)
{
    static const char *const hosts[] = {
        "127.0.0.1", "127.1", "2130706433",         "0x7f000001",    "017700000001",
        "0.0.0.0",   "[::1]", "[::ffff:127.0.0.1]", "[::127.0.0.1]", "[::ffff:7f00:1]",
    };
    struct exec_result res;
    int before = accepted(&srv1);
    size_t i;

    clear_env();
    unsetenv("JARVIS_ATOMIC_HTTP_ALLOWED_CIDRS");
    for (i = 0; i < sizeof hosts / sizeof hosts[0]; i++) {
        fetch(&res, "{\"url\":\"http://%s:PORT/ok\"}", hosts[i]);
        expect_failed(&res, "url: refused by the address policy: address ");
        dsp_result_cleanup(&res);
    }
    fetch(&res, "{\"url\":\"http://127.0.0.1:PORT/ok\"}");
    expect_failed(&res, "address 127.0.0.1 is loopback (127.0.0.0/8), denied");
    dsp_result_cleanup(&res);
    /* a name is judged by the address it resolves to, at connect time */
    fetch(&res, "{\"url\":\"http://localhost:PORT/ok\"}");
    expect_failed(&res, "url: connection refused by the address policy: address ");
    dsp_result_cleanup(&res);
    CU_ASSERT_EQUAL(accepted(&srv1), before);
    clear_env();
}

/* 127.0.0.1 re-allowed, 127.0.0.2 not: a redirect there is refused on the
 * hop, whether the Location is an address or a name. */
static void test_policy_redirect_hop(void)
{
    struct exec_result res;
    int before2 = accepted(&srv2);

    clear_env();
    setenv("JARVIS_ATOMIC_HTTP_ALLOWED_CIDRS", "127.0.0.1/32:*", 1);
    fetch(&res, "{\"url\":\"http://127.0.0.1:PORT/redirect?to=http://127.0.0.2:PORT2/ok\","
                "\"follow_redirects\":true}");
    expect_failed(&res, "redirect: refused by the address policy: address 127.0.0.2 is loopback");
    dsp_result_cleanup(&res);
    fetch(&res, "{\"url\":\"http://127.0.0.1:PORT/redirect?code=307&to=http://2130706434:PORT2/"
                "ok\",\"follow_redirects\":true}");
    expect_failed(&res, "redirect: refused by the address policy: address 127.0.0.2");
    dsp_result_cleanup(&res);
    CU_ASSERT_EQUAL(accepted(&srv2), before2);

    /* a name on a hop: localhost:PORT2 is 127.0.0.1 on a port not allowed */
    {
        char cidr[64];
        snprintf(cidr, sizeof cidr, "127.0.0.1/32:%d", port);
        setenv("JARVIS_ATOMIC_HTTP_ALLOWED_CIDRS", cidr, 1);
    }
    fetch(&res, "{\"url\":\"http://127.0.0.1:PORT/redirect?to=http://localhost:PORT2/ok\","
                "\"follow_redirects\":true}");
    expect_failed(&res, "redirect: connection refused by the address policy: address ");
    dsp_result_cleanup(&res);

    /* both re-allowed: the hop goes through */
    setenv("JARVIS_ATOMIC_HTTP_ALLOWED_CIDRS", "127.0.0.1/32:*, 127.0.0.2/32:*", 1);
    fetch(&res, "{\"url\":\"http://127.0.0.1:PORT/redirect?to=http://127.0.0.2:PORT2/ok\","
                "\"follow_redirects\":true}");
    CU_ASSERT_EQUAL(res.state, RUN_SUCCEEDED);
    CU_ASSERT_EQUAL(out_int(&res, "status_code"), 200);
    dsp_result_cleanup(&res);
    CU_ASSERT_EQUAL(accepted(&srv2), before2 + 1);
    clear_env();
}

static void test_policy_ports(void)
{
    struct exec_result res;
    char text[64];
    int before = accepted(&srv1);

    clear_env();
    /* a range without a port: 80 and 443 only */
    setenv("JARVIS_ATOMIC_HTTP_ALLOWED_CIDRS", "127.0.0.0/8", 1);
    fetch(&res, "{\"url\":\"http://127.0.0.1:PORT/ok\"}");
    expect_failed(&res, "port not in JARVIS_ATOMIC_HTTP_ALLOWED_PORTS");
    dsp_result_cleanup(&res);
    fetch(&res, "{\"url\":\"http://localhost:PORT/ok\"}");
    expect_failed(&res, "connection refused by the address policy");
    dsp_result_cleanup(&res);
    CU_ASSERT_EQUAL(accepted(&srv1), before);
    /* the ports list opens it */
    snprintf(text, sizeof text, "443, %d", port);
    setenv("JARVIS_ATOMIC_HTTP_ALLOWED_PORTS", text, 1);
    fetch(&res, "{\"url\":\"http://127.0.0.1:PORT/ok\"}");
    CU_ASSERT_EQUAL(res.state, RUN_SUCCEEDED);
    dsp_result_cleanup(&res);
    /* or a port on the range's entry, for that range only */
    unsetenv("JARVIS_ATOMIC_HTTP_ALLOWED_PORTS");
    snprintf(text, sizeof text, "127.0.0.1/32:%d", port);
    setenv("JARVIS_ATOMIC_HTTP_ALLOWED_CIDRS", text, 1);
    fetch(&res, "{\"url\":\"http://127.0.0.1:PORT/ok\"}");
    CU_ASSERT_EQUAL(res.state, RUN_SUCCEEDED);
    dsp_result_cleanup(&res);
    fetch(&res, "{\"url\":\"http://127.0.0.2:PORT2/ok\"}");
    expect_failed(&res, "address 127.0.0.2 is loopback");
    dsp_result_cleanup(&res);
    /* a list the node cannot read fails every fetch (closed, not open) */
    setenv("JARVIS_ATOMIC_HTTP_ALLOWED_CIDRS", "127.0.0.0/8:*, loopback", 1);
    fetch(&res, "{\"url\":\"http://127.0.0.1:PORT/ok\"}");
    expect_failed(&res, "JARVIS_ATOMIC_HTTP_ALLOWED_CIDRS: bad entry \"loopback\"");
    dsp_result_cleanup(&res);
    fetch(&res, "{\"url\":\"http://localhost:PORT/ok\"}");
    expect_failed(&res, "JARVIS_ATOMIC_HTTP_ALLOWED_CIDRS: bad entry");
    dsp_result_cleanup(&res);
    clear_env();
    setenv("JARVIS_ATOMIC_HTTP_ALLOWED_PORTS", "http", 1);
    fetch(&res, "{\"url\":\"http://localhost:PORT/ok\"}");
    expect_failed(&res, "JARVIS_ATOMIC_HTTP_ALLOWED_PORTS: bad port");
    dsp_result_cleanup(&res);
    clear_env();
}

/* The ambient proxy variables are ignored; JARVIS_ATOMIC_HTTP_PROXY is used,
 * and the policy judges the proxy's address. The 127.0.0.2 server plays the
 * proxy: it answers 404 to an absolute-form target. */
static void test_policy_proxy(void)
{
    static const char *const ambient[] = {"http_proxy",  "HTTP_PROXY", "https_proxy",
                                          "HTTPS_PROXY", "all_proxy",  "ALL_PROXY"};
    struct exec_result res;
    char proxy[64];
    int before2 = accepted(&srv2);
    size_t i;

    clear_env();
    snprintf(proxy, sizeof proxy, "http://127.0.0.2:%d", port2);
    for (i = 0; i < sizeof ambient / sizeof ambient[0]; i++)
        setenv(ambient[i], proxy, 1);
    setenv("no_proxy", "", 1);
    fetch(&res, "{\"url\":\"http://127.0.0.1:PORT/ok\"}");
    CU_ASSERT_EQUAL(res.state, RUN_SUCCEEDED);
    CU_ASSERT_EQUAL(out_int(&res, "status_code"), 200);
    dsp_result_cleanup(&res);
    CU_ASSERT_EQUAL(accepted(&srv2), before2);
    for (i = 0; i < sizeof ambient / sizeof ambient[0]; i++)
        unsetenv(ambient[i]);
    unsetenv("no_proxy");

    setenv("JARVIS_ATOMIC_HTTP_PROXY", proxy, 1);
    fetch(&res, "{\"url\":\"http://127.0.0.1:PORT/ok\"}");
    CU_ASSERT_EQUAL(res.state, RUN_SUCCEEDED);
    CU_ASSERT_EQUAL(out_int(&res, "status_code"), 404); /* the proxy answered */
    dsp_result_cleanup(&res);
    CU_ASSERT_EQUAL(accepted(&srv2), before2 + 1);
    /* the proxy's own address must pass the policy */
    setenv("JARVIS_ATOMIC_HTTP_ALLOWED_CIDRS", "127.0.0.1/32:*", 1);
    fetch(&res, "{\"url\":\"http://127.0.0.1:PORT/ok\"}");
    expect_failed(&res, "connection refused by the address policy: address 127.0.0.2");
    dsp_result_cleanup(&res);
    CU_ASSERT_EQUAL(accepted(&srv2), before2 + 1);
    clear_env();
}

/* A 10 MiB gzip bomb (about 66 KB on the wire) stops at max_bytes of
 * decoded bytes, or at the decode ratio when max_bytes is large. */
static void test_gzip_bomb(void)
{
    struct exec_result res;
    int64_t t0 = mono_ms();

    clear_env();
    CU_ASSERT_TRUE(bomb_len < WF_BOMB_BYTES / 100);
    fetch(&res, "{\"url\":\"http://127.0.0.1:PORT/bomb\"}");
    expect_failed(&res, "response body exceeds max_bytes (1048576)");
    dsp_result_cleanup(&res);
    setenv("JARVIS_ATOMIC_HTTP_MAX_BYTES", "67108864", 1);
    fetch(&res, "{\"url\":\"http://127.0.0.1:PORT/bomb\",\"max_bytes\":33554432}");
    expect_failed(&res, "response decodes to over 100 times its size");
    dsp_result_cleanup(&res);
    CU_ASSERT_TRUE(mono_ms() - t0 < 5000);
    clear_env();
}

/* JARVIS_ATOMIC_HTTP_MAX_BYTES is the ceiling of max_bytes, and
 * JARVIS_ATOMIC_HTTP_MAX_TIMEOUT_SECONDS of timeout_seconds: larger values
 * given are clamped. */
static void test_ceilings(void)
{
    struct exec_result res;
    int64_t t0, took;

    clear_env();
    setenv("JARVIS_ATOMIC_HTTP_MAX_BYTES", "1000", 1);
    fetch(&res, "{\"url\":\"http://127.0.0.1:PORT/big\",\"max_bytes\":5000000}");
    expect_failed(&res, "response body exceeds max_bytes (1000)");
    dsp_result_cleanup(&res);
    fetch(&res, "{\"url\":\"http://127.0.0.1:PORT/ok\",\"max_bytes\":9000000000000}");
    CU_ASSERT_EQUAL(res.state, RUN_SUCCEEDED);
    CU_ASSERT_EQUAL(out_int(&res, "content_bytes"), 5);
    dsp_result_cleanup(&res);
    clear_env();

    setenv("JARVIS_ATOMIC_HTTP_MAX_TIMEOUT_SECONDS", "0.3", 1);
    t0 = mono_ms();
    fetch(&res, "{\"url\":\"http://127.0.0.1:PORT/slow\",\"timeout_seconds\":100}");
    took = mono_ms() - t0;
    expect_failed(&res, "timed out after 0.3 s");
    CU_ASSERT_TRUE(took >= 250 && took < 1500);
    dsp_result_cleanup(&res);
    /* the operator's default is bound by the ceiling too */
    setenv("JARVIS_ATOMIC_HTTP_TIMEOUT_SECONDS", "100", 1);
    fetch(&res, "{\"url\":\"http://127.0.0.1:PORT/slow\"}");
    expect_failed(&res, "timed out after 0.3 s");
    dsp_result_cleanup(&res);
    /* without a ceiling set: 60 s, so a long timeout is still cut */
    clear_env();
    setenv("JARVIS_ATOMIC_HTTP_MAX_TIMEOUT_SECONDS", "junk", 1);
    fetch(&res, "{\"url\":\"http://127.0.0.1:PORT/ok\",\"timeout_seconds\":1e300}");
    CU_ASSERT_EQUAL(res.state, RUN_SUCCEEDED);
    dsp_result_cleanup(&res);
    clear_env();
}

static void test_descriptor(void)
{
    const jarvis_node *n = dsp_lookup(&reg, "jarvis.web.fetch");
    json_object *in, *out, *v = NULL;

    CU_ASSERT_PTR_NOT_NULL_FATAL(n);
    CU_ASSERT_STRING_EQUAL(n->version, "0.3.8");
    CU_ASSERT_EQUAL(n->side_effect, JARVIS_SIDE_EFFECT_WRITE);
    in = tu_json(n->input_schema);
    out = tu_json(n->output_schema);
    CU_ASSERT_PTR_NOT_NULL_FATAL(in);
    CU_ASSERT_PTR_NOT_NULL_FATAL(out);
    CU_ASSERT_TRUE(json_object_object_get_ex(in, "required", &v));
    CU_ASSERT_STRING_EQUAL(json_object_to_json_string(v), "[ \"url\" ]");
    CU_ASSERT_TRUE(json_object_object_get_ex(in, "properties", &v));
    CU_ASSERT_EQUAL(json_object_object_length(v), 9);
    CU_ASSERT_TRUE(json_object_object_get_ex(out, "properties", &v));
    CU_ASSERT_EQUAL(json_object_object_length(v), 6);
    json_object_put(in);
    json_object_put(out);
}

static CU_TestInfo tests[] = {
    {"descriptor and schemas", test_descriptor},
    {"GET: exact outputs", test_get_ok},
    {"params merged and encoded, headers sent", test_params_and_headers},
    {"json and body payloads", test_post_json_and_body},
    {"json must be JSON text", test_invalid_json},
    {"HEAD has no body", test_head},
    {"redirects are not followed by default", test_redirect_not_followed},
    {"redirects followed on request", test_redirect_followed},
    {"methods and bodies across redirects", test_redirect_methods},
    {"HEAD stays HEAD across a 303", test_redirect_head},
    {"headers and cookies across redirects", test_redirect_headers},
    {"traceparent forwarded", test_traceparent},
    {"allowed and blocked hosts", test_host_lists},
    {"max_bytes", test_max_bytes},
    {"gzip and latin-1 headers", test_encodings},
    {"request timeout", test_request_timeout},
    {"run deadline", test_run_deadline},
    {"cancel mid-transfer", test_cancel},
    {"bad inputs", test_bad_inputs},
    {"unreachable server", test_unreachable},
    {"JARVIS_ATOMIC_HTTP_CA_FILE", test_ca_file},
    {"policy: internal addresses denied by default", test_policy_default_deny},
    {"policy: checked on every redirect hop", test_policy_redirect_hop},
    {"policy: ports", test_policy_ports},
    {"policy: proxies", test_policy_proxy},
    {"gzip bomb", test_gzip_bomb},
    {"ceilings of max_bytes and timeout_seconds", test_ceilings},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"web_fetch", suite_init, suite_cleanup, NULL, NULL, tests},
    CU_SUITE_INFO_NULL,
};

int main(void)
{
    return tu_main(suites);
}
