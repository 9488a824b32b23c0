/*
 * test_request.c - the FastCGI adapter (request.c) against real libfcgi: a
 * test plays the web server on a unix socket, writing FastCGI records
 * (FCGI_BEGIN_REQUEST, FCGI_PARAMS, FCGI_STDIN) before the request is
 * accepted, so one thread does both sides. Every parameter req_from_fcgi
 * copies, each of its bounds, the body reader, the drain of a kept
 * connection and the output writer; and the "body shorter than
 * Content-Length" answer of body.c over a stream that really ends early.
 */
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <fcgiapp.h>

#include "body.h"
#include "request.h"
#include "testutil.h"

/* FastCGI 1.0 record types and roles (the specification's numbers). */
#define FCGI_VERSION_1 1
#define FCGI_BEGIN_REQUEST 1
#define FCGI_PARAMS 4
#define FCGI_STDIN 5
#define FCGI_STDOUT 6
#define FCGI_RESPONDER 1
#define FCGI_HEADER_LEN 8
#define FCGI_MAX_CONTENT 65535
#define REQUEST_ID 1

/* The records of one request, as the web server would send them. */
#define WIRE_MAX (256 * 1024)
#define MAX_PARAMS 8

struct wire {
    unsigned char buf[WIRE_MAX];
    size_t len;
};

struct param {
    const char *name;
    const char *value;
};

static char sock_dir[64];
static char sock_path[sizeof(struct sockaddr_un){0}.sun_path];
static int listen_fd = -1;

static int suite_init(void)
{
    /* A write to a client end that is gone must fail, not kill the test. */
    signal(SIGPIPE, SIG_IGN);
    snprintf(sock_dir, sizeof sock_dir, "/tmp/test_request.XXXXXX");
    if (mkdtemp(sock_dir) == NULL || FCGX_Init() != 0)
        return -1;
    snprintf(sock_path, sizeof sock_path, "%s/fcgi.sock", sock_dir);
    listen_fd = FCGX_OpenSocket(sock_path, 4);
    return listen_fd < 0 ? -1 : 0;
}

static int suite_cleanup(void)
{
    if (listen_fd >= 0)
        close(listen_fd);
    return tu_remove_tree(sock_dir);
}

static void put_record(struct wire *w, int type, const void *data, size_t len)
{
    unsigned char *h = w->buf + w->len;

    CU_ASSERT_FATAL(len <= FCGI_MAX_CONTENT && w->len + FCGI_HEADER_LEN + len <= WIRE_MAX);
    h[0] = FCGI_VERSION_1;
    h[1] = (unsigned char)type;
    h[2] = 0;
    h[3] = REQUEST_ID;
    h[4] = (unsigned char)(len >> 8);
    h[5] = (unsigned char)(len & 0xff);
    h[6] = 0; /* no padding */
    h[7] = 0;
    if (len > 0)
        memcpy(h + FCGI_HEADER_LEN, data, len);
    w->len += FCGI_HEADER_LEN + len;
}

/* A name-value pair length: one byte below 128, else four with the top bit. */
static size_t put_nv_len(unsigned char *p, size_t n)
{
    if (n < 128) {
        p[0] = (unsigned char)n;
        return 1;
    }
    p[0] = (unsigned char)((n >> 24) | 0x80);
    p[1] = (unsigned char)(n >> 16);
    p[2] = (unsigned char)(n >> 8);
    p[3] = (unsigned char)n;
    return 4;
}

/* BEGIN_REQUEST, the params, and body bytes on stdin;
 * `ended`: the empty STDIN record that ends the body follows. */
static void build(struct wire *w, const struct param *params, const char *body, size_t body_len,
                  int ended)
{
    static unsigned char pairs[FCGI_MAX_CONTENT];
    /* Not FCGI_KEEP_CONN: FCGX_Finish_r then closes the application's end. */
    const unsigned char begin[8] = {0, FCGI_RESPONDER, 0, 0, 0, 0, 0, 0};
    size_t n = 0, i;

    w->len = 0;
    put_record(w, FCGI_BEGIN_REQUEST, begin, sizeof begin);
    for (i = 0; params[i].name != NULL; i++) {
        size_t nl = strlen(params[i].name), vl = strlen(params[i].value);
        CU_ASSERT_FATAL(n + 8 + nl + vl <= sizeof pairs);
        n += put_nv_len(pairs + n, nl);
        n += put_nv_len(pairs + n, vl);
        memcpy(pairs + n, params[i].name, nl);
        memcpy(pairs + n + nl, params[i].value, vl);
        n += nl + vl;
    }
    put_record(w, FCGI_PARAMS, pairs, n);
    put_record(w, FCGI_PARAMS, NULL, 0);
    if (body_len > 0)
        put_record(w, FCGI_STDIN, body, body_len);
    if (ended)
        put_record(w, FCGI_STDIN, NULL, 0);
}

/* Connects, sends the records (they wait in the socket buffer), shuts the
 * sending side and accepts the request into fr. Returns the client's end,
 * or -1. */
static int send_and_accept(const struct wire *w, FCGX_Request *fr)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);

    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", sock_path);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0 ||
        write(fd, w->buf, w->len) != (ssize_t)w->len) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    /* All is sent: libfcgi's close at FCGX_Finish_r waits (up to 2 s) for
     * the web server's end to close, so say so now. */
    shutdown(fd, SHUT_WR);
    if (FCGX_InitRequest(fr, listen_fd, 0) != 0 || FCGX_Accept_r(fr) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* What the application wrote on stdout, collected from the client's end
 * after FCGX_Finish_r (NUL-terminated into out). */
static size_t read_stdout(int fd, char *out, size_t cap)
{
    static unsigned char buf[WIRE_MAX];
    size_t have = 0, pos = 0, got = 0;
    ssize_t n;

    while (have < sizeof buf && (n = read(fd, buf + have, sizeof buf - have)) > 0)
        have += (size_t)n;
    while (pos + FCGI_HEADER_LEN <= have) {
        size_t len = ((size_t)buf[pos + 4] << 8) | buf[pos + 5], pad = buf[pos + 6];
        if (buf[pos + 1] == FCGI_STDOUT && got + len < cap) {
            memcpy(out + got, buf + pos + FCGI_HEADER_LEN, len);
            got += len;
        }
        pos += FCGI_HEADER_LEN + len + pad;
    }
    out[got] = '\0';
    return got;
}

/* Sends a request (see build), accepts it into fr and fills req from it.
 * Returns the client's end (for finish). */
static int open_request(const struct param *p, const char *body, size_t len, int ended,
                        FCGX_Request *fr, struct http_req *req)
{
    static struct wire w;
    int fd;

    build(&w, p, body, len, ended);
    fd = send_and_accept(&w, fr);
    CU_ASSERT_FATAL(fd >= 0);
    req_from_fcgi(fr, req);
    return fd;
}

/* Ends a request: FCGX_Finish_r, then closes the client's end. */
static void finish(FCGX_Request *fr, int fd)
{
    FCGX_Finish_r(fr);
    close(fd);
}

static void test_params_copied(void)
{
    static const struct param p[] = {{"REQUEST_METHOD", "POST"},
                                     {"REQUEST_URI", "/v1/node-runs/a%2Fb:cancel?x=1"},
                                     {"DOCUMENT_URI", "/v1/node-runs/a/b:cancel"},
                                     {"CONTENT_TYPE", "application/json"},
                                     {"CONTENT_LENGTH", "5"},
                                     {"HTTP_AUTHORIZATION", "Bearer abc"},
                                     {NULL, NULL}};
    FCGX_Request fr;
    struct http_req req;
    char buf[16];
    int fd;

    fd = open_request(p, "hello", 5, 1, &fr, &req);
    CU_ASSERT_STRING_EQUAL(req.method, "POST");
    /* REQUEST_URI wins (it keeps %2F), its query dropped. */
    CU_ASSERT_STRING_EQUAL(req.path, "/v1/node-runs/a%2Fb:cancel");
    CU_ASSERT_STRING_EQUAL(req.content_type, "application/json");
    CU_ASSERT_EQUAL(req.content_length, 5);
    CU_ASSERT_STRING_EQUAL(req.authorization, "Bearer abc");
    CU_ASSERT_EQUAL(req.too_long, 0);
    CU_ASSERT_EQUAL(req.read_body(req.read_arg, buf, sizeof buf), 5);
    CU_ASSERT_EQUAL(memcmp(buf, "hello", 5), 0);
    CU_ASSERT_EQUAL(req.read_body(req.read_arg, buf, sizeof buf), 0);
    finish(&fr, fd);
}

static void test_params_absent(void)
{
    static const struct param p[] = {{"DOCUMENT_URI", "/v1/health#frag"}, {NULL, NULL}};
    FCGX_Request fr;
    struct http_req req;
    int fd;

    fd = open_request(p, NULL, 0, 1, &fr, &req);
    CU_ASSERT_STRING_EQUAL(req.method, "-");
    CU_ASSERT_STRING_EQUAL(req.path, "/v1/health"); /* DOCUMENT_URI, fragment dropped */
    CU_ASSERT_STRING_EQUAL(req.content_type, "");
    CU_ASSERT_EQUAL(req.content_length, -1);
    CU_ASSERT_STRING_EQUAL(req.authorization, "");
    CU_ASSERT_EQUAL(req.too_long, 0);
    finish(&fr, fd);
}

/* Content-Length: only a plain decimal that fits a long long is a length. */
static void test_content_length(void)
{
    static const struct {
        const char *text;
        long long want;
    } cases[] = {{"0", 0},
                 {"1048576", 1048576},
                 {"-5", -1},
                 {"+5", -1},
                 {" 5", -1},
                 {"5 ", -1},
                 {"12x", -1},
                 {"", -1},
                 {"99999999999999999999", -1},
                 {"9223372036854775807", 9223372036854775807LL}};
    size_t i;

    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const struct param p[] = {{"REQUEST_METHOD", "GET"},
                                  {"REQUEST_URI", "/v1/health"},
                                  {"CONTENT_LENGTH", cases[i].text},
                                  {NULL, NULL}};
        FCGX_Request fr;
        struct http_req req;
        int fd;

        fd = open_request(p, NULL, 0, 1, &fr, &req);
        if (req.content_length != cases[i].want)
            fprintf(stderr, "\n  CONTENT_LENGTH \"%s\": %lld\n", cases[i].text, req.content_length);
        CU_ASSERT_EQUAL(req.content_length, cases[i].want);
        finish(&fr, fd);
    }
}

/* A value of n bytes (caller frees). */
static char *filled(size_t n, char c)
{
    char *s = malloc(n + 1);

    CU_ASSERT_FATAL(s != NULL);
    memset(s, c, n);
    s[n] = '\0';
    return s;
}

/* Each bound: a value one byte too long for its field. */
static void test_bounds(void)
{
    char *method = filled(REQ_MAX_METHOD, 'G'), *path = filled(REQ_MAX_PATH, '/');
    char *ct = filled(REQ_MAX_CONTENT_TYPE, 'x'), *auth = filled(REQ_MAX_AUTHORIZATION, 'a');
    char *fits = filled(REQ_MAX_PATH - 1, '/');
    FCGX_Request fr;
    struct http_req req;
    int fd;

    {
        const struct param p[] = {{"REQUEST_METHOD", method}, {"REQUEST_URI", path},
                                  {"CONTENT_TYPE", ct},       {"HTTP_AUTHORIZATION", auth},
                                  {"DOCUMENT_URI", "/v1/ok"}, {NULL, NULL}};
        fd = open_request(p, NULL, 0, 1, &fr, &req);
    }
    CU_ASSERT_STRING_EQUAL(req.method, "-");
    CU_ASSERT_EQUAL(req.too_long, 1); /* answered 414, not read from DOCUMENT_URI */
    CU_ASSERT_STRING_EQUAL(req.path, "");
    CU_ASSERT_STRING_EQUAL(req.content_type, "invalid/too-long");
    CU_ASSERT_STRING_EQUAL(req.authorization, "");
    finish(&fr, fd);

    /* One byte less fits. */
    {
        const struct param p[] = {{"REQUEST_URI", fits}, {NULL, NULL}};
        fd = open_request(p, NULL, 0, 1, &fr, &req);
    }
    CU_ASSERT_EQUAL(req.too_long, 0);
    CU_ASSERT_EQUAL(strlen(req.path), REQ_MAX_PATH - 1);
    finish(&fr, fd);
    free(method);
    free(path);
    free(ct);
    free(auth);
    free(fits);
}

/* body.c over a stream that ends before Content-Length bytes came: at the
 * end of stdin, or cut (the web server went away mid-body). */
static void test_short_body(void)
{
    static const struct param p[] = {{"REQUEST_METHOD", "POST"},
                                     {"REQUEST_URI", "/v1/atomic-node-runs:execute"},
                                     {"CONTENT_TYPE", "application/json"},
                                     {"CONTENT_LENGTH", "10"},
                                     {NULL, NULL}};
    FCGX_Request fr;
    struct http_req req;
    json_object *o = NULL;
    struct resp r;
    int ended, fd;

    for (ended = 1; ended >= 0; ended--) {
        fd = open_request(p, "{}", 2, ended, &fr, &req);
        resp_init(&r);
        CU_ASSERT_EQUAL(body_read_json(&req, 64, &o, &r), -1);
        CU_ASSERT_PTR_NULL(o);
        CU_ASSERT_EQUAL(r.status, 400);
        TU_ASSERT_JSON(r.body, "{\"error\":{\"code\":\"invalid_request\",\"message\":"
                               "\"Request body shorter than Content-Length\"}}");
        CU_ASSERT_STRING_EQUAL(r.reason, "body ended after 2 of 10 bytes");
        resp_cleanup(&r);
        finish(&fr, fd);
    }
}

/* The rest of stdin is read and dropped (a kept connection), bounded. */
static void test_drain(void)
{
    static const struct param p[] = {{"REQUEST_METHOD", "POST"}, {NULL, NULL}};
    static char body[20000];
    FCGX_Request fr;
    struct http_req req;
    char buf[4];
    int fd;

    memset(body, 'b', sizeof body);
    fd = open_request(p, body, sizeof body, 1, &fr, &req);
    CU_ASSERT_EQUAL(req.read_body(req.read_arg, buf, sizeof buf), 4);
    /* Room for what is left (the end of stdin is seen by one more read). */
    CU_ASSERT_EQUAL(req_fcgi_drain(&fr, sizeof body), 0);
    CU_ASSERT_EQUAL(req_fcgi_drain(&fr, 0), 0); /* nothing left: at the end already */
    finish(&fr, fd);

    /* Exactly max left: drained (the end is seen by one read more). */
    fd = open_request(p, body, sizeof body, 1, &fr, &req);
    CU_ASSERT_EQUAL(req_fcgi_drain(&fr, sizeof body), 0);
    finish(&fr, fd);

    /* More left than max: the connection must not be kept. */
    fd = open_request(p, body, sizeof body, 1, &fr, &req);
    CU_ASSERT_EQUAL(req_fcgi_drain(&fr, sizeof body - 1), -1);
    finish(&fr, fd);
    fd = open_request(p, body, sizeof body, 1, &fr, &req);
    CU_ASSERT_EQUAL(req_fcgi_drain(&fr, 0), -1);
    finish(&fr, fd);

    /* The web server goes away before the end of stdin: an error, not an end. */
    fd = open_request(p, body, 100, 0, &fr, &req);
    CU_ASSERT_EQUAL(req_fcgi_drain(&fr, sizeof body), -1);
    finish(&fr, fd);
}

static void test_write(void)
{
    static const struct param p[] = {{"REQUEST_METHOD", "GET"}, {NULL, NULL}};
    static char out[WIRE_MAX];
    const char head[] = "Status: 200 OK\r\n\r\n", body[] = "{\"ok\":true}";
    FCGX_Request fr;
    struct http_req req;
    int fd;

    fd = open_request(p, NULL, 0, 1, &fr, &req);
    CU_ASSERT_EQUAL(req_fcgi_write(fr.out, head, strlen(head)), 0);
    CU_ASSERT_EQUAL(req_fcgi_write(fr.out, body, strlen(body)), 0);
    CU_ASSERT_EQUAL(req_fcgi_write(fr.out, body, 0), 0);
    FCGX_Finish_r(&fr);
    CU_ASSERT_EQUAL(read_stdout(fd, out, sizeof out), strlen(head) + strlen(body));
    CU_ASSERT_STRING_EQUAL(out, "Status: 200 OK\r\n\r\n{\"ok\":true}");
    close(fd);
}

/* libfcgi's end of stdin (docs/pitfalls.md): after exactly Content-Length
 * bytes the stream has not seen its end; one more read, of the empty
 * FCGI_STDIN record, returns 0 and sees it. */
static void test_end_of_stdin(void)
{
    static const struct param p[] = {{"REQUEST_METHOD", "POST"}, {NULL, NULL}};
    FCGX_Request fr;
    struct http_req req;
    char buf[8];
    int fd;

    fd = open_request(p, "abc", 3, 1, &fr, &req);
    CU_ASSERT_EQUAL(FCGX_GetStr(buf, 3, fr.in), 3);
    CU_ASSERT_NOT_EQUAL(FCGX_HasSeenEOF(fr.in), EOF);
    CU_ASSERT_EQUAL(FCGX_GetStr(buf, sizeof buf, fr.in), 0);
    CU_ASSERT_EQUAL(FCGX_HasSeenEOF(fr.in), EOF);
    CU_ASSERT_EQUAL(FCGX_GetError(fr.in), 0);
    finish(&fr, fd);
}

/* The web server is gone: output fails once libfcgi flushes its buffer. */
static void test_write_error(void)
{
    static const struct param p[] = {{"REQUEST_METHOD", "GET"}, {NULL, NULL}};
    static char big[WIRE_MAX];
    FCGX_Request fr;
    struct http_req req;
    int fd;

    memset(big, 'x', sizeof big);
    fd = open_request(p, NULL, 0, 1, &fr, &req);
    close(fd);
    CU_ASSERT_EQUAL(req_fcgi_write(fr.out, big, sizeof big), -1);
    FCGX_Finish_r(&fr);
}

static CU_TestInfo tests[] = {
    {"parameters copied from the FastCGI environment", test_params_copied},
    {"absent parameters", test_params_absent},
    {"Content-Length parsing", test_content_length},
    {"every field's bound", test_bounds},
    {"body shorter than Content-Length", test_short_body},
    {"drain of what is left of stdin", test_drain},
    {"end of stdin", test_end_of_stdin},
    {"output through the FastCGI stream", test_write},
    {"output to a failed stream", test_write_error},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"request", suite_init, suite_cleanup, NULL, NULL, tests},
    CU_SUITE_INFO_NULL,
};

int main(void)
{
    return tu_main(suites);
}
