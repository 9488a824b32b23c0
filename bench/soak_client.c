/*
 * soak_client.c - the load client of bench/soak: drives a mix of requests
 * (soak_mix.c) through nginx on 127.0.0.1 over keep-alive connections
 * (soak_conn.c), checks each answer against what its type expects, serves
 * the loopback HTTP that jarvis.web.fetch runs reach, and prints figures.
 *
 * It runs --connections lanes; a lane runs one scenario at a time (one
 * request, or a main request and a side request its side_delay_ms later on the
 * lane's second connection) and starts the next as soon as it ends. New
 * scenarios stop once --requests requests were started or --max-secs passed;
 * those in flight then get SK_DRAIN_MS to end. Types that leave a cancel
 * tombstone (60 s in the run table, 1024 slots by default) start at most
 * --cancel-rate times a second, so tombstones never fill the table.
 *
 * Output, on stdout: "SAMPLE <answered> <seconds>" each --sample-every
 * answers (bench/soak reads the workers' memory then), "UNEXPECTED ..." for
 * the first SK_SHOWN unexpected answers, and at the end a Markdown table per
 * type and part, the status classes and one line
 * "TOTAL requests=N secs=S rps=R unexpected=U errors=E retries=T".
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <sys/time.h>
#include <unistd.h>

#include "soak_conn.h"
#include "soak_mix.h"

#define SK_MAX_LANES 256
#define SK_MAX_TYPES 64
#define SK_MAX_STATUS 600
#define SK_REQUEST_MS 60000  /* one exchange, at most */
#define SK_DRAIN_MS 30000    /* for the scenarios in flight at the end */
#define SK_MAX_IDLE_MS 20000 /* a kept connection idle longer is replaced (nginx: 75 s) */
#define SK_EVENTS 256
#define SK_SHOWN 20 /* unexpected answers printed */
#define SK_FETCH_THREADS 2
#define SK_FETCH_IO_SECS 5
#define SK_ID_MAX 64

struct opts {
    int port, fetch_fd, fetch_port, lanes;
    unsigned long long requests, sample_every;
    double max_secs, cancel_rate;
    long max_body;
    unsigned long long seed;
};

struct part_stats {
    unsigned long long count, unexpected, errors, retries;
    unsigned long long status[SK_MAX_STATUS];
    unsigned long long needle[SM_MAX_NEEDLES];
};

struct lane {
    struct sc_conn conn[2]; /* main, side */
    const struct sm_type *type;
    int pending; /* parts sent and not answered */
    int busy[2]; /* part k awaits its answer */
    int64_t sent_ms[2];
    int64_t side_due; /* when the side part goes; 0: gone or none */
    int status[2];
    char id[SK_ID_MAX];
};

static struct opts opt = {.lanes = 32,
                          .requests = 1000000,
                          .sample_every = 100000,
                          .max_secs = 3600,
                          .cancel_rate = 8,
                          .max_body = 65536,
                          .seed = 1};
static struct part_stats stats[SK_MAX_TYPES][2];
static struct lane lanes[SK_MAX_LANES];
static unsigned long long started, answered, shown, pairs_409, pairs_apart;
static unsigned long long serial;
static int epfd = -1;
static int stopping;
static double tokens;
static int64_t tokens_ms, t0_ms;
static unsigned weight_total;
static char *pad; /* the padded bodies: '{' and then spaces */
static size_t pad_len;
static atomic_ullong fetch_served;

static unsigned long long rng(void)
{
    /* xorshift64*: the mix is the same for a given --seed. */
    opt.seed ^= opt.seed >> 12;
    opt.seed ^= opt.seed << 25;
    opt.seed ^= opt.seed >> 27;
    return opt.seed * 2685821657736338717ULL;
}

/* ---- the loopback server jarvis.web.fetch reaches ---- */

static void *fetch_serve(void *arg)
{
    static const char reply[] = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                                "Content-Length: 13\r\nConnection: close\r\n\r\nsoak payload\n";
    struct timeval tv = {.tv_sec = SK_FETCH_IO_SECS};
    char buf[8192];

    (void)arg;
    for (;;) {
        size_t got = 0;
        ssize_t n;
        int fd = accept4(opt.fetch_fd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            return NULL;
        }
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
        while (got < sizeof buf - 1 && (n = recv(fd, buf + got, sizeof buf - 1 - got, 0)) > 0) {
            got += (size_t)n;
            buf[got] = '\0';
            if (strstr(buf, "\r\n\r\n") != NULL)
                break;
        }
        if (send(fd, reply, sizeof reply - 1, MSG_NOSIGNAL) == (ssize_t)sizeof reply - 1)
            atomic_fetch_add(&fetch_served, 1);
        close(fd);
    }
}

static int fetch_start(void)
{
    struct sockaddr_in sa;
    socklen_t len = sizeof sa;
    pthread_t t;
    int i;

    if (getsockname(opt.fetch_fd, (struct sockaddr *)&sa, &len) != 0)
        return -1;
    opt.fetch_port = ntohs(sa.sin_port);
    for (i = 0; i < SK_FETCH_THREADS; i++)
        if (pthread_create(&t, NULL, fetch_serve, NULL) != 0 || pthread_detach(t) != 0)
            return -1;
    return 0;
}

/* ---- answers ---- */

static struct part_stats *stats_of(const struct lane *l, int k)
{
    return &stats[l->type - sm_types][k];
}

static void show(const struct lane *l, int k, int status, const char *what, size_t len)
{
    if (shown++ >= SK_SHOWN)
        return;
    printf("UNEXPECTED %s %s id=%s status=%d: %.*s\n", l->type->name, k ? "side" : "main", l->id,
           status, (int)(len > 300 ? 300 : len), what);
}

/* Counts part k's answer, or its failure (status 0, why in `why`). */
static void record(struct lane *l, int k, int status, const char *body, size_t len)
{
    const struct sm_part *part = k ? &l->type->side : &l->type->main;
    struct part_stats *s = stats_of(l, k);
    int found;

    s->count++;
    l->status[k] = status;
    if (status == 0) {
        s->errors++;
        show(l, k, 0, body, len);
    } else {
        s->status[status < SK_MAX_STATUS ? status : 0]++;
        found = sm_needle_found(part, body, len);
        if (found >= 0 && found < SM_MAX_NEEDLES)
            s->needle[found]++;
        if (!sm_status_expected(part, status) || found < 0) {
            s->unexpected++;
            show(l, k, status, body, len);
        }
    }
    if (++answered % opt.sample_every == 0) {
        printf("SAMPLE %llu %.3f\n", answered, (double)(sc_now_ms() - t0_ms) / 1000);
        fflush(stdout);
    }
}

/* ---- scenarios ---- */

/* Sends part k of the lane's scenario. */
static void send_part(struct lane *l, int k, int64_t now)
{
    const struct sm_part *part = k ? &l->type->side : &l->type->main;
    char path[SM_PATH_MAX], body[SM_BODY_MAX];
    const char *b = NULL;
    size_t blen = 0;

    if (sm_expand(part->path, l->id, opt.fetch_port, path, sizeof path) < 0)
        abort(); /* the table's own paths always fit */
    if (k == 0 && l->type->pad != SM_PAD_NONE) {
        blen = (size_t)opt.max_body * (l->type->pad == SM_PAD_NGINX ? 2 : 1) + 1 + rng() % 1024;
        b = pad;
    } else if (part->body != NULL) {
        int n = sm_expand(part->body, l->id, opt.fetch_port, body, sizeof body);
        if (n < 0)
            abort();
        b = body;
        blen = (size_t)n;
    }
    started++;
    l->pending++;
    l->sent_ms[k] = now;
    if (sc_send(&l->conn[k], epfd, part->method, path, b, blen, now, SK_MAX_IDLE_MS) != 0) {
        record(l, k, 0, l->conn[k].error, strlen(l->conn[k].error));
        l->pending--;
        return;
    }
    l->busy[k] = 1;
}

/* The scenario's last answer came: the pair check; the lane is free. */
static void end_scenario(struct lane *l)
{
    if (l->type->pair_409 && l->status[0] && l->status[1]) {
        int n409 = (l->status[0] == 409) + (l->status[1] == 409);
        if (n409 == 1)
            pairs_409++;
        else if (n409 == 0)
            pairs_apart++;
        else {
            stats_of(l, 1)->unexpected++;
            show(l, 1, 409, "both requests of the duplicate pair answered 409", 48);
        }
    }
    l->type = NULL; /* on_tick starts the next one */
}

/* A weighted pick; a paced type takes a token of the cancel rate or gives
 * its turn to another pick. */
static const struct sm_type *pick(int64_t now)
{
    tokens += opt.cancel_rate * (double)(now - tokens_ms) / 1000;
    if (tokens > opt.cancel_rate)
        tokens = opt.cancel_rate;
    tokens_ms = now;
    for (;;) {
        unsigned r = (unsigned)(rng() % weight_total);
        size_t i;
        for (i = 0; i < sm_ntypes && r >= sm_types[i].weight; i++)
            r -= sm_types[i].weight;
        if (!sm_types[i].paced)
            return &sm_types[i];
        if (tokens >= 1) {
            tokens -= 1;
            return &sm_types[i];
        }
    }
}

static void start_scenario(struct lane *l, int64_t now)
{
    if (stopping || started >= opt.requests || (double)(now - t0_ms) >= opt.max_secs * 1000) {
        stopping = 1;
        return;
    }
    l->type = pick(now);
    l->status[0] = l->status[1] = 0;
    snprintf(l->id, sizeof l->id, "soak-%ld-%llu", (long)getpid(), ++serial);
    l->side_due = l->type->side.method ? now + l->type->side_delay_ms : 0;
    send_part(l, 0, now);
    if (l->pending == 0 && l->side_due == 0)
        end_scenario(l);
}

/* Part k is answered (or failed): the scenario ends with its last part. */
static void part_done(struct lane *l, int k)
{
    l->busy[k] = 0;
    if (--l->pending == 0 && l->side_due == 0)
        end_scenario(l);
}

static void on_event(struct sc_conn *c, uint32_t events, int64_t now)
{
    struct lane *l = c->owner;
    int k = (int)(c - l->conn);
    enum sc_result r = sc_progress(c, epfd, events, now);

    if (r == SC_MORE || !l->busy[k])
        return;
    if (r == SC_RETRY) {
        stats_of(l, k)->retries++;
        if (sc_resend(c, epfd) == 0)
            return;
        r = SC_FAILED;
    }
    if (r == SC_DONE)
        record(l, k, c->status, c->body, c->body_len);
    else
        record(l, k, 0, c->error, strlen(c->error));
    part_done(l, k);
}

/* New scenarios on free lanes, side parts that are due, and exchanges past
 * SK_REQUEST_MS. */
static void on_tick(int64_t now)
{
    int i, k;

    for (i = 0; i < opt.lanes; i++) {
        struct lane *l = &lanes[i];
        if (l->type == NULL) {
            start_scenario(l, now);
            continue;
        }
        if (l->side_due != 0 && now >= l->side_due) {
            l->side_due = 0;
            send_part(l, 1, now);
            if (l->pending == 0)
                end_scenario(l);
            continue;
        }
        for (k = 0; k < 2; k++) {
            if (l->busy[k] && now - l->sent_ms[k] > SK_REQUEST_MS) {
                sc_close(&l->conn[k], epfd);
                record(l, k, 0, "no answer in time", 17);
                part_done(l, k);
                break;
            }
        }
    }
}

static int lanes_busy(void)
{
    int i;

    for (i = 0; i < opt.lanes; i++)
        if (lanes[i].type != NULL)
            return 1;
    return 0;
}

static void run(void)
{
    struct epoll_event ev[SK_EVENTS];
    int64_t now = sc_now_ms(), stop_ms = 0;
    int i, n;

    t0_ms = tokens_ms = now;
    on_tick(now);
    while (!stopping || lanes_busy()) {
        n = epoll_wait(epfd, ev, SK_EVENTS, 1);
        now = sc_now_ms();
        for (i = 0; i < n; i++)
            on_event(ev[i].data.ptr, ev[i].events, now);
        on_tick(now);
        if (stopping && stop_ms == 0)
            stop_ms = now;
        if (stop_ms != 0 && now - stop_ms > SK_DRAIN_MS)
            break;
    }
}

/* ---- the report ---- */

/* The statuses of s as "200: n, 409: m" into out; their total by class. */
static void statuses_text(const struct part_stats *s, char *out, size_t outlen,
                          unsigned long long classes[6])
{
    size_t n = 0;
    int st;

    out[0] = '\0';
    for (st = 0; st < SK_MAX_STATUS; st++) {
        if (s->status[st] == 0)
            continue;
        classes[st / 100] += s->status[st];
        n += (size_t)snprintf(out + n, n < outlen ? outlen - n : 0, "%s%d: %llu", n ? ", " : "", st,
                              s->status[st]);
    }
    classes[0] += s->errors;
}

/* The needle counts of a part with several accepted bodies ("state:canceled 9, ..."). */
static void needles_text(const struct sm_part *part, const struct part_stats *s, char *out,
                         size_t outlen)
{
    size_t n = 0;
    int i;

    out[0] = '\0';
    for (i = 0; i < SM_MAX_NEEDLES && part->needles[1] != NULL && part->needles[i] != NULL; i++) {
        const char *p;
        n += (size_t)snprintf(out + n, n < outlen ? outlen - n : 0, "%s", i ? "; " : "");
        for (p = part->needles[i]; *p != '\0' && n + 1 < outlen; p++)
            if (*p != '"')
                out[n++] = *p;
        n += (size_t)snprintf(out + n, n < outlen ? outlen - n : 0, " %llu", s->needle[i]);
    }
}

static void report(double secs)
{
    unsigned long long classes[6] = {0}, unexpected = 0, errors = 0, retries = 0;
    char st[256], nd[256];
    size_t i;
    int k;

    printf("\n| type | part | count | statuses | unexpected | errors | answers |\n"
           "|---|---|---|---|---|---|---|\n");
    for (i = 0; i < sm_ntypes; i++) {
        for (k = 0; k < 2; k++) {
            const struct sm_part *part = k ? &sm_types[i].side : &sm_types[i].main;
            const struct part_stats *s = &stats[i][k];
            if (part->method == NULL)
                continue;
            statuses_text(s, st, sizeof st, classes);
            needles_text(part, s, nd, sizeof nd);
            printf("| %s | %s | %llu | %s | %llu | %llu | %s |\n", sm_types[i].name,
                   k ? "side" : "main", s->count, st, s->unexpected, s->errors, nd);
            unexpected += s->unexpected;
            errors += s->errors;
            retries += s->retries;
        }
    }
    printf("\nstatus classes: 2xx %llu, 3xx %llu, 4xx %llu, 5xx %llu, transport errors %llu\n",
           classes[2], classes[3], classes[4], classes[5], classes[0]);
    printf("duplicate pairs: %llu with one 409, %llu apart (the second came after the first "
           "ended)\nfetch server: %llu requests served\n",
           pairs_409, pairs_apart, (unsigned long long)atomic_load(&fetch_served));
    printf("TOTAL requests=%llu secs=%.1f rps=%.0f unexpected=%llu errors=%llu retries=%llu\n",
           answered, secs, secs > 0 ? (double)answered / secs : 0.0, unexpected, errors, retries);
}

/* ---- options and main ---- */

static const char usage[] =
    "usage: jarvis-soak-client --port N --fetch-fd FD [--requests N] [--max-secs S]\n"
    "         [--connections N] [--max-body-bytes N] [--sample-every N] [--cancel-rate R]\n"
    "         [--seed N]\n"
    "  --port: nginx on 127.0.0.1; --fetch-fd: a listening socket on 127.0.0.1 that\n"
    "  jarvis.web.fetch runs may reach (JARVIS_ATOMIC_HTTP_ALLOWED_CIDRS); --max-body-bytes:\n"
    "  the pool's JARVIS_MAX_BODY_BYTES. Run by bench/soak.\n";

static int parse_opts(int argc, char **argv)
{
    static const struct option longs[] = {
        {"port", 1, NULL, 'p'},         {"fetch-fd", 1, NULL, 'f'},
        {"requests", 1, NULL, 'n'},     {"max-secs", 1, NULL, 't'},
        {"connections", 1, NULL, 'c'},  {"max-body-bytes", 1, NULL, 'b'},
        {"sample-every", 1, NULL, 's'}, {"cancel-rate", 1, NULL, 'r'},
        {"seed", 1, NULL, 'S'},         {NULL, 0, NULL, 0}};
    int ch;

    opt.port = opt.fetch_fd = -1;
    while ((ch = getopt_long(argc, argv, "", longs, NULL)) != -1) {
        switch (ch) {
        case 'p': opt.port = atoi(optarg); break;
        case 'f': opt.fetch_fd = atoi(optarg); break;
        case 'n': opt.requests = strtoull(optarg, NULL, 10); break;
        case 't': opt.max_secs = atof(optarg); break;
        case 'c': opt.lanes = atoi(optarg); break;
        case 'b': opt.max_body = atol(optarg); break;
        case 's': opt.sample_every = strtoull(optarg, NULL, 10); break;
        case 'r': opt.cancel_rate = atof(optarg); break;
        case 'S': opt.seed = strtoull(optarg, NULL, 10); break;
        default: return -1;
        }
    }
    if (opt.port < 1 || opt.port > 65535 || opt.fetch_fd < 0 || opt.requests < 1 ||
        opt.max_secs <= 0 || opt.lanes < 1 || opt.lanes > SK_MAX_LANES || opt.max_body < 1024 ||
        opt.max_body > 64L * 1024 * 1024 || opt.sample_every < 1 || opt.cancel_rate < 0 ||
        sm_ntypes > SK_MAX_TYPES)
        return -1;
    if (opt.seed == 0)
        opt.seed = 1; /* xorshift stays at 0 */
    return 0;
}

int main(int argc, char **argv)
{
    int64_t t_end;
    size_t i;
    int rc = 1;

    if (parse_opts(argc, argv) != 0) {
        fputs(usage, stderr);
        return 2;
    }
    for (i = 0; i < sm_ntypes; i++)
        weight_total += sm_types[i].weight;
    for (i = 0; i < (size_t)opt.lanes; i++) {
        sc_init(&lanes[i].conn[0], opt.port, &lanes[i]);
        sc_init(&lanes[i].conn[1], opt.port, &lanes[i]);
    }
    /* The largest padded body: twice the limit and up to 1 KiB more. */
    pad_len = (size_t)opt.max_body * 2 + 1024;
    pad = malloc(pad_len);
    epfd = epoll_create1(EPOLL_CLOEXEC);
    if (pad == NULL || epfd < 0 || fetch_start() != 0) {
        perror("jarvis-soak-client: setup");
        goto out;
    }
    memset(pad, ' ', pad_len);
    pad[0] = '{';
    printf("soak: %llu requests at most, %.0f s at most, %d connections (x2 for side "
           "requests), %zu types, fetch server on 127.0.0.1:%d\n",
           opt.requests, opt.max_secs, opt.lanes, sm_ntypes, opt.fetch_port);
    fflush(stdout);
    run();
    t_end = sc_now_ms();
    report((double)(t_end - t0_ms) / 1000);
    rc = 0;
out:
    for (i = 0; i < (size_t)opt.lanes; i++) {
        sc_cleanup(&lanes[i].conn[0], epfd);
        sc_cleanup(&lanes[i].conn[1], epfd);
    }
    if (epfd >= 0)
        close(epfd);
    free(pad);
    return rc;
}
