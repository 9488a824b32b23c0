/*
 * worker.c - owns the worker's serving threads (worker.h): how many there
 * are, which one watches the connections, the end of the process, and one
 * request from FCGX_Accept_r to the log line.
 *
 * Leader and followers. The worker has one wait set (epoll): the shared
 * listening socket (EPOLLEXCLUSIVE: one worker woken per connection), the
 * stop and wake eventfds, every idle kept FastCGI connection and every new
 * one that has not sent its first request yet (EPOLLONESHOT: one taker per
 * request; the new ones wait for a bounded time, fresh_add_locked). One
 * thread at a time, the leader, waits on it; the others wait on a
 * condition variable. The leader serves the request it
 * takes itself and keeps the lead while it does: back in epoll_wait it
 * finds the next connection already ready under load, so a stream of short
 * requests is served without a context switch or a thread hand-off, in
 * the order they came (epoll's ready list). A thread per kept connection,
 * the model before, left 30 and more threads runnable under 64 connections
 * and the scheduler's round robin among them made the tail (p99 20 to 40
 * ms where the bare responder had 8).
 *
 * The lead passes on when its holder may block: a handler's wait on the
 * ctx, an execute's wait for a permit (rn_yield), so a cancel or a health
 * check never waits behind a run. For what blocks without saying so (a
 * handler's own syscall, a JWKS fetch, a slow write), the first follower
 * is the standby: while the leader serves, it looks every WK_TAKEOVER_MS
 * and takes the lead from a leader still inside the same request.
 *
 * libfcgi 2.4 takes no accept lock on Linux (USE_LOCKING is not defined in
 * os_unix.c), and its FCGX_Request holds a connection only as an fd
 * (ipcFd): any thread's request can serve the next request of a kept
 * connection. The listening socket is non-blocking, so a connection taken
 * by another worker first is EAGAIN, and no thread is ever blocked inside
 * accept: a stop wakes the leader at once, and the process can end the
 * moment no request is held. The leader accepts itself (accept_one), one
 * connection at a time, and while accepts succeed takes the next every
 * other turn, before what waits in the set; libfcgi never accepts.
 *
 * Every thread blocks the stop signals; the main thread takes them with
 * sigwaitinfo, so no libfcgi read or write is ever cut by EINTR.
 */
#define _GNU_SOURCE
#include "worker.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <malloc.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <fcgiapp.h>

#include "log.h"
#include "request.h"
#include "runner.h"
#include "timefmt.h"
#include "utf8.h"

/* After a request whose body was at least this big, freed memory is given
 * back to the system: a large decoded body must not leave a worker large
 * (glibc keeps freed heap by default). */
#define WK_TRIM_AFTER_BYTES (256 * 1024)

/* A worker puts itself last in the listening socket's queue of waiters
 * at every new connection nginx keeps (a long stream of requests), and
 * once per this many others (see listen_again): often enough to spread
 * runs over the workers, rarely enough that the two epoll_ctl calls are
 * not on every request of connections nginx does not keep. */
#define WK_REQUEUE_EVERY 16

/* Body bytes left unread (an answer given before the body was read, as
 * 413) that are read and dropped after the answer, so the connection can
 * close at once or carry the next request. nginx has the whole body
 * already (it buffers it) and sends it all, at most its
 * client_max_body_size (2 x JARVIS_MAX_BODY_BYTES as shipped). A kept
 * connection closed instead would be taken from nginx's cache for the
 * next request before nginx sees the close, failing that request (a 502
 * for a POST, which nginx does not resend; seen in bench/soak). */
#define WK_DRAIN_MAX (64 * 1024 * 1024)

/* A serving thread that has waited this long gives back its idle memory
 * (release_idle). */
#define WK_RELEASE_AFTER_MS 1000

/* The standby's look at a leader inside one request (see the top of the
 * file): the most a request on another connection waits behind a handler
 * that blocks without rn_yield. Each look is a wake-up while the worker
 * serves, so not much less. */
#define WK_TAKEOVER_MS 2

/* The standby keeps looking this long after the leader last took a
 * request, even while the leader waits: else the next request would wake
 * it first (a futex wake and a context switch before the request is
 * served, 0.1-0.2 ms of a cancel's latency on an idle pool). */
#define WK_TICK_LINGER_MS 100

/* A read on a FastCGI connection that waits longer fails (SO_RCVTIMEO),
 * and the request with it: nginx sends a request's records at once (it
 * buffers the body first: fastcgi_request_buffering, on by default and in
 * the shipped sites; turned off, an upload slower than this would fail),
 * so only a peer that stalls mid-record waits this long, and it must not
 * hold a thread, or a stopping worker, for ever. Under the service's
 * TimeoutStopSec (60 s). It bounds each read, not a request: a peer that
 * sends a byte every few seconds keeps its thread (as nginx's own read
 * timeouts would), which is why the socket is for the web server alone. */
#define WK_READ_TIMEOUT_S 10

/* Idle kept connections one worker holds at most (fewer when fds are
 * short); a connection beyond is closed after its answer. nginx keeps
 * `keepalive` per nginx worker process. */
#define WK_MAX_KEPT 1024

/* New connections that have sent nothing yet wait in the wait set at most
 * this many at once (a quarter of the kept connections' room when fds are
 * short), the oldest closed for a new one, and at most this long: nginx
 * sends its request as it connects, so only a peer that will never send
 * waits, and it must hold neither fds nor the room of nginx's kept
 * connections. At most 2^EV_SLOT_BITS. */
#define WK_MAX_FRESH 256
#define WK_FRESH_TTL_MS (WK_READ_TIMEOUT_S * 1000)

/* What the worker counts rather than logs one by one (a flood of them must
 * not flood the log): a line at the first, then at most one every this
 * long, with the count since the line before (tally_locked). */
#define WK_TALLY_LOG_MS 1000

/* malloc arenas a worker uses (unless MALLOC_ARENA_MAX says otherwise).
 * glibc gives threads up to 8 per core, each keeping its own free memory;
 * requests are mostly served by one thread at a time (the leader), so
 * more arenas buy little contention and cost about 1 MB per worker under
 * a mixed load (bench/soak, 16 execute slots: 5.9-6.4 MB -> 4.6-5.0 MB
 * private per worker at 100,000-200,000 requests). */
#define WK_MALLOC_ARENAS 2

/* The worker's exit status: stopped as asked, failed (accept, set-up), or
 * ended after abandoning a handler (worker.h). Only a failure counts as a
 * death in the metrics. */
enum { WK_EXIT_ASKED = 0, WK_EXIT_FAILED = 1, WK_EXIT_ABANDONED = 3 };

/* epoll data of the wait set's own fds; a kept connection's is its fd. */
#define EV_LISTEN UINT64_MAX
#define EV_STOP (UINT64_MAX - 1)
#define EV_WAKE (UINT64_MAX - 2)
/* ... with this bit: a connection accepted but not served yet (fds are
 * below 2^31, so the three above, which have it too and are told apart
 * first, are never taken for one), and above it its slot in p->fresh and
 * the slot's generation: an event taken after its connection was closed
 * as too old (and its fd number maybe reused) is known by a generation
 * that no longer matches. */
#define EV_FRESH (UINT64_C(1) << 32)
#define EV_FD_MASK UINT64_C(0x7fffffff)
#define EV_SLOT_SHIFT 33
#define EV_SLOT_BITS 9
#define EV_GEN_SHIFT (EV_SLOT_SHIFT + EV_SLOT_BITS)
#define EV_GEN_MASK ((UINT64_C(1) << (64 - EV_GEN_SHIFT)) - 1)
_Static_assert(WK_MAX_FRESH <= (1 << EV_SLOT_BITS), "a fresh slot fits its event bits");

/* How long a stopping worker waits for the first request on connections
 * it accepted (accept_one) before it ends: nginx sends one right after
 * connecting, and such a connection is not in the socket's backlog any
 * more, for another worker to take. Bounded for a peer that never sends. */
#define WK_FRESH_WAIT_MS 1000

/* How long new connections wait in the socket's backlog after an accept
 * ran out of fds or memory, while the kept ones are served (nginx pauses
 * its accepts the same way). */
#define WK_ACCEPT_RETRY_MS 100
#define WK_STR_(x) #x
#define WK_STR(x) WK_STR_(x) /* a constant's digits, in a log line */

/* take_connection's answer for a TCP peer FCGI_WEB_SERVER_ADDRS leaves
 * out (-1 is a failed accept). */
#define WK_REFUSED (-2)

/* A connection waiting for its first request (accept_one): its fd (-1: the
 * slot is free), the slot's generation, when it was accepted, and its
 * neighbours in age order (older, newer; the free list uses newer). */
struct wk_fresh {
    int fd;
    uint64_t gen;
    int64_t since_ms;
    int older, newer; /* slots, -1: none */
};

/* Events counted between log lines (WK_TALLY_LOG_MS). */
struct wk_tally {
    const char *what;  /* the log line's text */
    unsigned n;        /* since the last line */
    int64_t logged_ms; /* when it was written (monotonic; 0: never) */
    char last[64];     /* the last event's detail */
};

enum { TALLY_REFUSED, TALLY_SILENT, TALLY_ACCEPT, WK_N_TALLIES };
/* Fds a serving thread may hold: its connection and its runner's wake
 * eventfd; plus what one request may open (a JWKS or web.fetch transfer). */
#define WK_FDS_PER_THREAD 8
/* Fds kept for everything else (logs, the run table, libcurl, spares). */
#define WK_FDS_RESERVED 64

struct wk_pool {
    struct app *app;
    pthread_mutex_t lock;
    pthread_cond_t follow;               /* followers but the standby wait here */
    pthread_cond_t standby_cv;           /* the standby waits here */
    unsigned max_threads;                /* WK_MAX_THREADS, or less when fds are short */
    int max_kept;                        /* WK_MAX_KEPT, or less when fds are short */
    unsigned threads;                    /* serving threads alive */
    unsigned followers;                  /* of which waiting for the lead */
    unsigned accepting;                  /* of which taking a request (accept_one, FCGX_Accept_r) */
    unsigned busy;                       /* of which holding a request */
    int kept;                            /* idle connections in the wait set, kept or
                                          * fresh, these in the age list (may dip
                                          * below 0 for a moment: see put_back) */
    int backlog;                         /* the last accept took one: more may wait */
    int backlog_turn;                    /* ... and the socket's turn is next */
    int lead;                            /* a thread holds the lead */
    int lead_serving;                    /* ... and is inside a request: none waits on ep */
    int lead_reading;                    /* ... reading it (FCGX_Accept_r) */
    uint64_t lead_epoch;                 /* bumped whenever the lead changes hands */
    uint64_t lead_seq;                   /* bumped whenever the leader takes a request */
    int64_t lead_taken_ms;               /* when it last did (monotonic) */
    int standby;                         /* a follower waits on standby_cv */
    int standby_ticking;                 /* ... looking every WK_TAKEOVER_MS */
    unsigned accepted;                   /* new connections (listen_again) */
    int sealed;                          /* stopping: the listening socket and stop fd
                                          * are out of the wait set */
    int drained;                         /* stopping: the kept connections were looked at */
    int trimmed;                         /* malloc_trim ran since the last request began */
    atomic_int stopping;                 /* no new accept; exit once busy and accepting are 0 */
    int unix_socket;                     /* the listening socket is AF_UNIX (see answer) */
    struct wk_fresh fresh[WK_MAX_FRESH]; /* slots: waiting connections and free ones */
    unsigned max_fresh;                  /* its size: WK_MAX_FRESH, or less when fds are short */
    int fresh_oldest, fresh_newest;      /* the age list's ends (-1: none waits) */
    int fresh_free;                      /* the free slots' list (-1: all in use) */
    uint64_t fresh_gen;                  /* the last generation given */
    int64_t listen_paused_ms;            /* accepts wait until then (monotonic; 0: they do not) */
    struct wk_tally tally[WK_N_TALLIES];
    int exit_code;
    int stop_fd; /* readable once stopping: wakes the leader */
    int wake_fd; /* readable when a leader taken over gave the lead timed work */
    int ep;      /* the wait set */
};

static void *serve_thread(void *arg);

/* Starts one more serving thread. Call with p->lock held. 0 or -1. */
static int spawn_locked(struct wk_pool *p)
{
    pthread_attr_t attr;
    pthread_t tid;
    int rc;

    if (p->threads >= p->max_threads || pthread_attr_init(&attr) != 0)
        return -1;
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, WK_STACK_BYTES);
    rc = pthread_create(&tid, &attr, serve_thread, p);
    pthread_attr_destroy(&attr);
    if (rc != 0) {
        log_msg(JARVIS_LOG_ERROR, "cannot start a serving thread: %s", strerror(rc));
        return -1;
    }
    p->threads++;
    return 0;
}

/* Threads free for the next request: neither holding a request nor
 * accepting one. Call with p->lock. */
static unsigned spare_locked(const struct wk_pool *p)
{
    return p->threads - p->busy - p->accepting;
}

/* Starts threads until WK_SPARE_MIN wait for a connection (or are about
 * to); 1 if that many are there. Call with p->lock held. */
static int keep_spares_locked(struct wk_pool *p)
{
    for (;;) {
        if (spare_locked(p) >= WK_SPARE_MIN)
            return 1;
        if (atomic_load(&p->stopping) || spawn_locked(p) != 0)
            return 0;
    }
}

/* Asks the worker to stop with code (the first code asked wins). Call with
 * p->lock held. */
static void stop_locked(struct wk_pool *p, int code)
{
    const uint64_t one = 1;

    if (!atomic_load(&p->stopping)) {
        p->exit_code = code;
        atomic_store(&p->stopping, 1);
        if (write(p->stop_fd, &one, sizeof one) != sizeof one)
            log_msg(JARVIS_LOG_ERROR, "cannot wake the leader: %s", strerror(errno));
        pthread_cond_broadcast(&p->follow);
        pthread_cond_broadcast(&p->standby_cv);
    }
}

/* Writes tally t's line: how many since the last, and the last one's
 * detail. Call with p->lock held. */
static void tally_log_locked(struct wk_tally *t, int64_t now_ms)
{
    log_msg(JARVIS_LOG_WARN, "%s: %u since the last line, the last: %s", t->what, t->n, t->last);
    t->n = 0;
    t->logged_ms = now_ms;
}

/* Counts one event of tally t, with its detail (cut to fit, on a
 * character boundary), and writes the line now unless one was written
 * less than WK_TALLY_LOG_MS ago. Call with p->lock held. */
static void tally_locked(struct wk_tally *t, const char *detail)
{
    int64_t now_ms = ts_mono_us() / 1000;

    t->n++;
    utf8_drop_partial(strncpy(t->last, detail, sizeof t->last - 1));
    if (t->logged_ms == 0 || now_ms - t->logged_ms >= WK_TALLY_LOG_MS)
        tally_log_locked(t, now_ms);
}

/* 1 if nothing waits for a time: no connection for its first request, no
 * paused accepts (lead). Call with p->lock held. */
static int untimed_locked(const struct wk_pool *p)
{
    return p->fresh_oldest < 0 && p->listen_paused_ms == 0;
}

/* 1 if a tally counts events not logged yet. Call with p->lock held. */
static int tallies_counting(const struct wk_pool *p)
{
    int i;

    for (i = 0; i < WK_N_TALLIES; i++)
        if (p->tally[i].n > 0)
            return 1;
    return 0;
}

/* Writes the lines owed: counts older than WK_TALLY_LOG_MS since their
 * last line, or every count (all). Call with p->lock held. */
static void tallies_owed_locked(struct wk_pool *p, int all)
{
    int64_t now_ms = ts_mono_us() / 1000;
    int i;

    for (i = 0; i < WK_N_TALLIES; i++)
        if (p->tally[i].n > 0 && (all || now_ms - p->tally[i].logged_ms >= WK_TALLY_LOG_MS))
            tally_log_locked(&p->tally[i], now_ms);
}

/* Ends the process if a stop was asked and no request is held or being
 * accepted, and the kept connections have been looked at once more (a
 * request that came on one before the stop is served), or no thread is
 * left to look. Call with p->lock held. */
static void exit_if_done_locked(struct wk_pool *p)
{
    if (atomic_load(&p->stopping) && p->busy == 0 && p->accepting == 0 &&
        (p->drained || p->threads == 0)) {
        tallies_owed_locked(p, 1);
        log_msg(JARVIS_LOG_INFO, "worker stopping");
        mx_worker_exit(&p->app->mx, p->exit_code == WK_EXIT_FAILED);
        _exit(p->exit_code);
    }
}

/* One request being served: what its abandon path needs. */
struct serving {
    struct wk_pool *p;
    FCGX_Request *fr;
    struct exchange *x;
    int64_t t0;
};

/* Writes the exchange's answer, finishes the request, logs it. */
static void answer(struct serving *s)
{
    int drained;

    if (resp_emit(&s->x->resp, s->x->head_only, req_fcgi_write, s->fr->out) != 0)
        log_msg(JARVIS_LOG_WARN, "client went away before the answer was written");
    drained = req_fcgi_drain(s->fr, WK_DRAIN_MAX) == 0;
    /* libfcgi closes a connection by shutting down its write side and
     * waiting (poll, up to 2 s) until the peer has closed too: closing a
     * socket with unread bytes makes the peer's read fail (a reset, on
     * TCP and on a Unix socket alike), which would lose the answer. With
     * stdin read to its end there is nothing unread, and on a Unix socket
     * that wait, a sleep and a wake-up on every request, buys nothing: a
     * detached request is closed at once. */
    if (drained && s->p->unix_socket)
        FCGX_Detach(s->fr);
    else
        s->fr->detached = 0; /* libfcgi clears it only when it closes */
    /* nginx asked to keep the connection (fastcgi_keep_conn on): it
     * carries the next request only if this one's stdin was read to its
     * end, and a stopping worker keeps none. */
    if (!drained || atomic_load(&s->p->stopping))
        s->fr->keepConnection = 0;
    FCGX_Finish_r(s->fr);
    s->x->log.dur_us = ts_mono_us() - s->t0;
    log_request(&s->x->log);
}

/*
 * dsp_conn's abandon callback, on the runner's watcher thread: the handler
 * of this request would not stop, and its serving thread is still inside
 * it (and never returns). Answers the request, then stops the worker with
 * status 3: it exits once its other requests are answered. The exchange
 * is never cleaned: the handler still reads the request.
 */
static void answer_abandoned(void *arg, const struct exec_result *res)
{
    struct serving *s = arg;
    struct wk_pool *p = s->p;

    app_answer_abandoned(s->x, res);
    answer(s);
    log_msg(JARVIS_LOG_ERROR, "abandoning a handler that would not stop; worker exits "
                              "once its other requests are answered");
    pthread_mutex_lock(&p->lock);
    p->busy--;
    stop_locked(p, WK_EXIT_ABANDONED);
    exit_if_done_locked(p);
    pthread_mutex_unlock(&p->lock);
}

/* One request, accepted, to its log line. (If its handler is abandoned,
 * this never returns: see answer_abandoned.) */
static void serve_one(struct wk_pool *p, FCGX_Request *fr, struct rn_runner *runner, int full,
                      struct exchange *x)
{
    struct serving s = {p, fr, x, ts_mono_us()};
    struct dsp_conn conn = {runner, fr->ipcFd, full, &p->stopping, answer_abandoned, &s};
    struct http_req req;

    req_from_fcgi(fr, &req);
    app_handle(p->app, &req, &conn, x);
    answer(&s);
    app_exchange_cleanup(x);
    if (req.content_length >= WK_TRIM_AFTER_BYTES)
        malloc_trim(0);
}

/* (Re)registers the listening socket in the wait set. An exclusive
 * registration stays where it is in the socket's wait queue, and the first
 * worker there takes every connection; registering again at each kept
 * connection, every WK_REQUEUE_EVERY others, and whenever a run blocks
 * (yield_lead), puts this worker last, so connections go round the
 * workers (runs spread, and a crash costs less). A stopping worker took
 * the socket out for good (lead), and one out of fds out for a moment
 * (accept_failed). Call with p->lock held (a takeover may put two threads
 * here). */
static int listen_again(struct wk_pool *p, int first)
{
    struct epoll_event ev = {.events = EPOLLIN | EPOLLEXCLUSIVE, .data.u64 = EV_LISTEN};

    if (p->sealed || p->listen_paused_ms != 0)
        return 0;
    if (!first && epoll_ctl(p->ep, EPOLL_CTL_DEL, 0, NULL) != 0 && errno != ENOENT)
        return -1;
    return epoll_ctl(p->ep, EPOLL_CTL_ADD, 0, &ev) == 0 || errno == EEXIST ? 0 : -1;
}

/* listen_again failed: the listening socket may be out of the wait set,
 * and the worker deaf to new connections. It stops and is replaced. Call
 * with p->lock held. */
static void requeue_failed_locked(struct wk_pool *p)
{
    log_msg(JARVIS_LOG_ERROR, "epoll: %s; cannot requeue the listening socket; worker stops",
            strerror(errno));
    stop_locked(p, WK_EXIT_FAILED);
}

/* The worker's wait set: the listening socket (one worker woken per
 * connection), the stop and wake fds, and later the idle kept connections.
 * 0 or -1. */
static int wait_set(struct wk_pool *p)
{
    struct epoll_event stop_ev = {.events = EPOLLIN, .data.u64 = EV_STOP};
    struct epoll_event wake_ev = {.events = EPOLLIN, .data.u64 = EV_WAKE};

    p->ep = epoll_create1(EPOLL_CLOEXEC);
    if (p->ep < 0)
        return -1;
    if (listen_again(p, 1) != 0 || epoll_ctl(p->ep, EPOLL_CTL_ADD, p->stop_fd, &stop_ev) != 0 ||
        epoll_ctl(p->ep, EPOLL_CTL_ADD, p->wake_fd, &wake_ev) != 0)
        return -1;
    return 0;
}

/* Arms connection fd in the wait set for one event (EPOLLONESHOT), so
 * exactly one leader takes its next request. tag EV_FRESH: a connection
 * just accepted, added. 0: a kept connection idle again, modified, or
 * added if it is new to the set (a closed fd leaves the set by itself,
 * and its number may come back as a new connection). 0 or -1. */
static int arm(const struct wk_pool *p, int fd, uint64_t tag)
{
    struct epoll_event ev = {.events = EPOLLIN | EPOLLONESHOT, .data.u64 = (uint64_t)fd | tag};

    if (tag == 0 && epoll_ctl(p->ep, EPOLL_CTL_MOD, fd, &ev) == 0)
        return 0;
    return (tag != 0 || errno == ENOENT) && epoll_ctl(p->ep, EPOLL_CTL_ADD, fd, &ev) == 0 ? 0 : -1;
}

/* The lowest address of the calling thread's stack, or NULL. */
static char *stack_low(void)
{
    pthread_attr_t attr;
    void *addr = NULL;
    size_t size = 0;

    if (pthread_getattr_np(pthread_self(), &attr) != 0)
        return NULL;
    if (pthread_attr_getstack(&attr, &addr, &size) != 0)
        addr = NULL;
    pthread_attr_destroy(&attr);
    return addr;
}

/*
 * A thread that has waited WK_RELEASE_AFTER_MS gives back what its last
 * requests left resident: the pages of its stack below the frame it waits
 * in (a request touches tens of KiB of stack, and a thread keeps them for
 * its life), and, the first to find its worker with no request at all,
 * the free memory of every malloc arena. Under load no thread waits that
 * long, so the hot path pays nothing. Call without p->lock.
 */
static void release_idle(struct wk_pool *p, char *stack_lo)
{
    long page = sysconf(_SC_PAGESIZE);
    char here, *top;
    int trim;

    if (stack_lo != NULL && page > 0) {
        /* Two pages of margin below this frame: the wait's own calls. */
        top = (char *)(((uintptr_t)&here & ~((uintptr_t)page - 1)) - 2 * (uintptr_t)page);
        if (top > stack_lo)
            madvise(stack_lo, (size_t)(top - stack_lo), MADV_DONTNEED);
    }
    pthread_mutex_lock(&p->lock);
    trim = p->busy == 0 && !p->trimmed;
    if (trim)
        p->trimmed = 1;
    pthread_mutex_unlock(&p->lock);
    if (trim)
        malloc_trim(0);
}

/* One serving thread: its request state and its claim on the lead. */
struct wk_thread {
    struct wk_pool *p;
    uint64_t epoch; /* p->lead_epoch when this thread took the lead */
    char *stack_lo;
    int fresh; /* the lead took a new connection for fr, not a kept one */
    FCGX_Request fr;
};

/* 1 if t holds the lead. Call with p->lock. */
static int leads_locked(const struct wk_thread *t)
{
    return t->p->lead && t->p->lead_epoch == t->epoch;
}

static void take_lead_locked(struct wk_thread *t)
{
    struct wk_pool *p = t->p;

    p->lead = 1;
    p->lead_serving = 0;
    p->lead_reading = 0;
    t->epoch = ++p->lead_epoch;
}

/* The lead holder gives the lead up and wakes a thread to take it: the
 * standby, else a follower, else a new thread. Call with p->lock. */
static void pass_lead_locked(struct wk_pool *p)
{
    p->lead = 0;
    p->lead_serving = 0;
    p->lead_epoch++;
    if (p->standby)
        pthread_cond_signal(&p->standby_cv);
    else if (p->followers > 0)
        pthread_cond_signal(&p->follow);
    else if (spawn_locked(p) != 0)
        log_msg(JARVIS_LOG_WARN, "no thread to take the lead: connections wait for one");
}

/* rn_yield's callback: the thread serving t's request may block for a
 * while (a handler's wait, a permit wait). If it leads, the lead goes to
 * another thread now, so the worker's other connections are not left
 * unwatched until the standby's WK_TAKEOVER_MS. */
static void yield_lead(void *arg)
{
    struct wk_thread *t = arg;
    struct wk_pool *p = t->p;

    pthread_mutex_lock(&p->lock);
    if (leads_locked(t)) {
        pass_lead_locked(p);
        /* A worker with a run in progress steps back in the socket's
         * queue: the next connection goes to another worker if one
         * waits, so runs spread (a crash then costs fewer of them). */
        if (listen_again(p, 0) != 0)
            requeue_failed_locked(p);
    }
    pthread_mutex_unlock(&p->lock);
}

/* What a serving thread does next. */
enum turn { TURN_LEAD, TURN_SERVE, TURN_AGAIN, TURN_LEAVE };

/* pthread_cond_timedwait for ms on the monotonic clock; 1 when it timed out. */
static int wait_ms(struct wk_pool *p, pthread_cond_t *cv, int64_t ms)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += (time_t)(ms / 1000);
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    return pthread_cond_timedwait(cv, &p->lock, &ts) == ETIMEDOUT;
}

/*
 * A thread without the lead waits until it takes it (TURN_LEAD) or is no
 * longer needed (TURN_LEAVE). The first follower to wait is the standby:
 * while the leader serves a request it looks every WK_TAKEOVER_MS, and if
 * the leader is still inside the same request (a handler or a write that
 * blocks without saying so through rn_yield), it takes the lead. Called
 * and returns with p->lock held.
 */
static enum turn follow(struct wk_thread *t)
{
    struct wk_pool *p = t->p;
    int64_t idle_since = ts_mono_us() / 1000;
    int released = 0;

    for (;;) {
        uint64_t seq = p->lead_seq, epoch = p->lead_epoch;
        int standby, ticking, timed_out, serving = p->lead && p->lead_serving;

        if (atomic_load(&p->stopping)) {
            /* Someone must look at the kept connections once more (see
             * serve_thread): the leader, unless it is inside a request,
             * where it may stay. Else this thread. */
            if (p->drained || (p->lead && !p->lead_serving))
                return TURN_LEAVE;
            take_lead_locked(t);
            return TURN_LEAD;
        }
        if (!p->lead) {
            take_lead_locked(t);
            return TURN_LEAD;
        }
        standby = !p->standby;
        ticking =
            standby && (serving || ts_mono_us() / 1000 - p->lead_taken_ms < WK_TICK_LINGER_MS);
        if (standby) {
            p->standby = 1;
            p->standby_ticking = ticking;
        }
        p->followers++;
        if (ticking)
            timed_out = wait_ms(p, &p->standby_cv, WK_TAKEOVER_MS);
        else
            timed_out = wait_ms(p, standby ? &p->standby_cv : &p->follow,
                                released ? WK_IDLE_EXIT_MS : WK_RELEASE_AFTER_MS);
        p->followers--;
        if (standby)
            p->standby = p->standby_ticking = 0;
        /* The lead was passed on, or the leader has been inside one
         * request for a whole tick. */
        if (!p->lead || (ticking && timed_out && p->lead_serving && p->lead_seq == seq &&
                         p->lead_epoch == epoch)) {
            int stalled = p->lead && p->lead_reading;

            take_lead_locked(t);
            /* This thread was the standby, maybe: a follower takes that
             * part now, not when its own wait ends (up to 10 s). */
            if (standby && p->followers > 0)
                pthread_cond_signal(&p->follow);
            /* A leader left behind inside the read of a request (a peer
             * that stalls mid-record, up to WK_READ_TIMEOUT_S) keeps its
             * thread: spares are started now, not only once a request is
             * read, so a few stalled peers cannot take every thread. Not
             * for a leader inside its handler (preempted, say): spares are
             * seen to after each read anyway, and threads started at every
             * takeover under load cost the tail (p99 at 64 connections
             * 6.4 -> 10 ms). */
            if (stalled)
                keep_spares_locked(p);
            return TURN_LEAD;
        }
        if (!timed_out || ticking) {
            idle_since = ts_mono_us() / 1000;
            continue;
        }
        if (!released) {
            pthread_mutex_unlock(&p->lock);
            release_idle(p, t->stack_lo);
            pthread_mutex_lock(&p->lock);
            released = 1;
            continue;
        }
        if (ts_mono_us() / 1000 - idle_since >= WK_IDLE_EXIT_MS && spare_locked(p) > WK_SPARE_MIN)
            return TURN_LEAVE; /* idle for long, and not needed as a spare */
    }
}

/* Bounds every read on the new connection fd (WK_READ_TIMEOUT_S). */
static void bound_reads(int fd)
{
    struct timeval tv = {.tv_sec = WK_READ_TIMEOUT_S, .tv_usec = 0};

    if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) != 0)
        log_msg(JARVIS_LOG_WARN, "cannot bound reads on a connection: %s", strerror(errno));
}

/* Makes the leader look again at what has a time (lead). */
static void wake_leader(const struct wk_pool *p)
{
    const uint64_t one = 1;

    if (write(p->wake_fd, &one, sizeof one) != sizeof one && errno != EAGAIN)
        log_msg(JARVIS_LOG_ERROR, "cannot wake the leader: %s", strerror(errno));
}

/* How an accept that failed with rc goes on: TURN_AGAIN or TURN_LEAVE.
 * Called and returns with p->lock held. */
static enum turn accept_failed(struct wk_pool *p, int rc)
{
    int e = -rc;

    if (e == EAGAIN || e == EWOULDBLOCK || e == EINTR) {
        /* Another worker took it first, or a kept connection was closed
         * by nginx and no new one is waiting. */
        exit_if_done_locked(p);
        return TURN_AGAIN;
    }
    if (e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM) {
        /* Out of fds or memory for a moment: others may free some. The
         * socket leaves the wait set until then (lead puts it back), so
         * the leader serves the kept connections meanwhile instead of
         * sleeping, or spinning on a socket that stays readable. The
         * connection that waits is not handed to another worker (the
         * socket's exclusive wake-up went to this one): another takes it
         * only when a newer one wakes it, as before. */
        tally_locked(&p->tally[TALLY_ACCEPT], strerror(e));
        if (epoll_ctl(p->ep, EPOLL_CTL_DEL, 0, NULL) != 0 && errno != ENOENT) {
            requeue_failed_locked(p);
            exit_if_done_locked(p);
            return TURN_LEAVE;
        }
        p->listen_paused_ms = ts_mono_us() / 1000 + WK_ACCEPT_RETRY_MS;
        p->backlog = 0;
        wake_leader(p); /* this thread may lead no more: the leader times the pause */
        return TURN_AGAIN;
    }
    log_msg(JARVIS_LOG_ERROR, "accept failed: %d (%s); worker stops", rc, strerror(e));
    stop_locked(p, WK_EXIT_FAILED);
    exit_if_done_locked(p);
    return TURN_LEAVE;
}

/*
 * A new connection from the listening socket: its fd, with reads bounded
 * and, on TCP, Nagle off (each answer is written whole; nothing is sent
 * back for it to wait on: libfcgi's accept did the same). -1 with errno
 * set (EAGAIN: none waits), or WK_REFUSED for a TCP peer that
 * FCGI_WEB_SERVER_ADDRS leaves out, closed, its address in peer (plen bytes).
 */
static int take_connection(const struct wk_pool *p, char *peer, size_t plen)
{
    struct sockaddr_storage sa;
    socklen_t len;
    const void *addr;
    const int one = 1;
    int fd;

    do {
        len = sizeof sa;
        fd = accept4(0, (struct sockaddr *)&sa, &len, SOCK_CLOEXEC);
    }
    /* The peer gave up before it was taken: the next one. */
    while (fd < 0 &&
           (errno == EINTR || errno == ECONNABORTED || errno == EPROTO || errno == ECONNRESET));
    if (fd < 0)
        return -1;
    if (sa.ss_family == AF_INET || sa.ss_family == AF_INET6) {
        if (!peers_allowed(&p->app->cfg->web_servers, (const struct sockaddr *)&sa)) {
            addr = sa.ss_family == AF_INET
                       ? (const void *)&((const struct sockaddr_in *)&sa)->sin_addr
                       : (const void *)&((const struct sockaddr_in6 *)&sa)->sin6_addr;
            if (inet_ntop(sa.ss_family, addr, peer, (socklen_t)plen) == NULL)
                snprintf(peer, plen, "?");
            close(fd);
            return WK_REFUSED;
        }
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    bound_reads(fd);
    return fd;
}

/* Takes slot i out of the age list and frees it. Call with p->lock held. */
static void fresh_free_locked(struct wk_pool *p, int i)
{
    struct wk_fresh *f = &p->fresh[i];

    if (f->older >= 0)
        p->fresh[f->older].newer = f->newer;
    else
        p->fresh_oldest = f->newer;
    if (f->newer >= 0)
        p->fresh[f->newer].older = f->older;
    else
        p->fresh_newest = f->older;
    f->fd = -1;
    f->older = -1;
    f->newer = p->fresh_free;
    p->fresh_free = i;
    p->kept--;
}

/* Closes the oldest waiting connection, which takes it out of the wait
 * set too, and counts it: too old (expired), or room for a newer one.
 * Call with p->lock held. */
static void fresh_close_oldest_locked(struct wk_pool *p, int expired)
{
    char why[64];

    if (expired)
        snprintf(why, sizeof why, "no request within %d s", WK_FRESH_TTL_MS / 1000);
    else
        snprintf(why, sizeof why, "%u others waiting", p->max_fresh);
    close(p->fresh[p->fresh_oldest].fd);
    fresh_free_locked(p, p->fresh_oldest);
    tally_locked(&p->tally[TALLY_SILENT], why);
}

/* Closes the waiting connections older than WK_FRESH_TTL_MS; the ms until
 * the next one is, or -1 if none waits. Call with p->lock held. */
static int fresh_expire_locked(struct wk_pool *p, int64_t now_ms)
{
    while (p->fresh_oldest >= 0 && now_ms - p->fresh[p->fresh_oldest].since_ms >= WK_FRESH_TTL_MS)
        fresh_close_oldest_locked(p, 1);
    if (p->fresh_oldest < 0)
        return -1;
    return (int)(p->fresh[p->fresh_oldest].since_ms + WK_FRESH_TTL_MS - now_ms);
}

/* Puts new connection fd, silent so far, in the wait set for its first
 * request and last in the age list; when p->max_fresh wait already, the
 * oldest is closed for it, once the new one is in the set (a failure
 * loses neither). 0, or -1 (errno set) with fd left open. Call with
 * p->lock held (one epoll_ctl under it, on the path of silent peers only). */
static int fresh_add_locked(struct wk_pool *p, int fd)
{
    int i = p->fresh_free >= 0 ? p->fresh_free : p->fresh_oldest;
    uint64_t gen = (p->fresh_gen + 1) & EV_GEN_MASK;
    struct wk_fresh *f = &p->fresh[i];

    if (arm(p, fd, EV_FRESH | (uint64_t)i << EV_SLOT_SHIFT | gen << EV_GEN_SHIFT) != 0)
        return -1;
    p->fresh_gen = gen;
    if (p->fresh_free < 0)
        fresh_close_oldest_locked(p, 0); /* frees slot i, the oldest's */
    p->fresh_free = f->newer;
    f->fd = fd;
    f->gen = gen;
    f->since_ms = ts_mono_us() / 1000;
    f->older = p->fresh_newest;
    f->newer = -1;
    if (p->fresh_newest >= 0)
        p->fresh[p->fresh_newest].newer = i;
    else
        p->fresh_oldest = i;
    p->fresh_newest = i;
    p->kept++;
    return 0;
}

/* The waiting connection an EV_FRESH event names, taken out of the lists:
 * its fd, or -1 if it was closed since (a stale event). Call with p->lock
 * held. */
static int fresh_take_locked(struct wk_pool *p, uint64_t data)
{
    unsigned slot = (unsigned)(data >> EV_SLOT_SHIFT) & ((1u << EV_SLOT_BITS) - 1);
    int fd = (int)(data & EV_FD_MASK);

    if (slot >= p->max_fresh || p->fresh[slot].fd != fd ||
        p->fresh[slot].gen != data >> EV_GEN_SHIFT)
        return -1;
    fresh_free_locked(p, (int)slot);
    return fd;
}

/*
 * The leader's take from the listening socket: one connection. Its
 * request is served now if it is there (t->fr holds the connection, as a
 * kept connection would be); if the peer has sent nothing yet, the
 * connection joins the wait set (EV_FRESH) like an idle kept one, so a
 * silent peer holds no thread, and for WK_FRESH_TTL_MS at most, among
 * p->max_fresh at most (fresh_add_locked). While accepts succeed,
 * p->backlog makes the leader take the next connection every other turn
 * (lead): a burst of new
 * connections (whose requests are older than most on the kept ones) is
 * taken one per two requests served, not one per round of every kept
 * connection, and one at a time, so an idle worker woken by the same burst
 * takes its share. (libfcgi's own accept polls a new Unix connection
 * until it is readable, its "keeper" check, then reads it blocking; a TCP
 * one it reads blocking at once.) TURN_SERVE, TURN_AGAIN, or
 * accept_failed's turn. Called and returns with p->lock held; accepts
 * without it.
 */
static enum turn accept_one(struct wk_thread *t)
{
    struct wk_pool *p = t->p;
    struct pollfd pf = {.fd = -1, .events = POLLIN};
    char peer[INET6_ADDRSTRLEN];
    int fd, e = 0, serve = 0;

    pthread_mutex_unlock(&p->lock);
    fd = take_connection(p, peer, sizeof peer);
    if (fd == -1) {
        e = errno;
    } else if (fd >= 0) {
        pf.fd = fd;
        serve = poll(&pf, 1, 0) == 1;
    }
    pthread_mutex_lock(&p->lock);
    /* Taken over meanwhile (a takeover while this thread was unlocked
     * above): what follows may give the new leader something timed (a
     * connection's deadline, paused accepts, a line owed) after it chose
     * how long to wait. */
    if (!(fd >= 0 && serve) && !leads_locked(t))
        wake_leader(p);
    p->backlog = fd != -1;
    if (fd >= 0 && !serve) {
        if (fresh_add_locked(p, fd) == 0) {
            /* A stop may have sealed and drained the set while the lock
             * was free here (another thread took the lead): it did not
             * know of this one, so the set must be drained again, with
             * the wait. */
            p->drained = 0;
        } else {
            log_msg(JARVIS_LOG_ERROR, "epoll: %s; closing a new connection", strerror(errno));
            close(fd);
        }
    }
    if (fd == -1) {
        p->accepting--;
        return accept_failed(p, -e);
    }
    if (fd == WK_REFUSED)
        tally_locked(&p->tally[TALLY_REFUSED], peer);
    if (!serve) {
        p->accepting--;
        return TURN_AGAIN;
    }
    /* keepConnection: FCGX_Accept_r first finishes the previous request,
     * which would close a connection not marked kept. */
    t->fr.keepConnection = 1;
    t->fr.detached = 0;
    t->fr.ipcFd = fd;
    return TURN_SERVE;
}

/*
 * The leader waits on the wait set for the worker's next request: a new
 * connection, a request on an idle kept connection, or the stop. On
 * TURN_SERVE the thread still leads, counts as accepting, and t->fr holds
 * the kept connection if the request came on one. A stopping worker first
 * takes the listening socket and the stop fd out of the set, then serves
 * what already came on kept connections (nginx sent it before it saw the
 * close) and, for up to WK_FRESH_WAIT_MS, the first request of connections
 * it accepted, then leaves with p->drained set. Called and returns with p->lock.
 */
static enum turn lead(struct wk_thread *t)
{
    struct wk_pool *p = t->p;
    struct epoll_event ev;
    int n, sealing = atomic_load(&p->stopping), wait, next = -1, idle, fd = -1;
    int64_t now_ms = 0;
    uint64_t gen = p->fresh_gen;

    if (sealing && !p->sealed) {
        epoll_ctl(p->ep, EPOLL_CTL_DEL, 0, NULL);
        epoll_ctl(p->ep, EPOLL_CTL_DEL, p->stop_fd, NULL);
        p->sealed = 1;
    }
    p->lead_serving = 0;
    /* What has a time: accepts paused for want of fds (accept_failed) go
     * on, connections silent too long close, and owed log lines are
     * written. The clock is read here only then (a stream of requests on
     * kept connections has nothing timed). */
    if (!untimed_locked(p) || tallies_counting(p)) {
        now_ms = ts_mono_us() / 1000;
        if (p->listen_paused_ms != 0 && (now_ms >= p->listen_paused_ms || sealing)) {
            p->listen_paused_ms = 0;
            if (!sealing && listen_again(p, 1) != 0)
                requeue_failed_locked(p);
        }
        next = fresh_expire_locked(p, now_ms);
        tallies_owed_locked(p, 0);
    }
    /* While connections wait in the socket, every other turn takes the
     * next of them; the turns between take what the wait set has first
     * (kept connections, the stop), so neither starves the other. */
    p->backlog_turn = p->backlog && !p->backlog_turn;
    if (p->backlog_turn && !sealing) {
        ev.data.u64 = EV_LISTEN;
        n = 1;
    } else {
        wait = !sealing ? WK_RELEASE_AFTER_MS : p->fresh_oldest >= 0 ? WK_FRESH_WAIT_MS : 0;
        /* Woken for the oldest waiting connection's deadline and for
         * paused accepts; with neither, an idle worker gives back its
         * memory after the first wait, then sleeps until something comes
         * (what a leader taken over inside accept_one adds meanwhile
         * comes with a wake: wake_leader). */
        if (!sealing && next >= 0 && next < wait)
            wait = next;
        if (!sealing && p->listen_paused_ms != 0 && p->listen_paused_ms - now_ms < wait)
            wait = (int)(p->listen_paused_ms - now_ms);
        idle = !sealing && untimed_locked(p);
        pthread_mutex_unlock(&p->lock);
        n = epoll_wait(p->ep, &ev, 1, wait);
        if (n == 0 && idle) {
            pthread_mutex_lock(&p->lock);
            tallies_owed_locked(p, 1);
            idle = untimed_locked(p);
            pthread_mutex_unlock(&p->lock);
            if (idle) {
                release_idle(p, t->stack_lo);
                n = epoll_wait(p->ep, &ev, 1, -1);
            }
        }
        pthread_mutex_lock(&p->lock);
    }
    /* Drained, unless a leader taken over inside accept_one added a
     * connection while this one waited: its first request is waited for
     * too (WK_FRESH_WAIT_MS). */
    if (n == 0 && sealing && p->fresh_gen == gen) {
        p->drained = 1;
        return TURN_LEAVE;
    }
    if (n == 1 && ev.data.u64 == EV_WAKE) {
        uint64_t count;

        if (read(p->wake_fd, &count, sizeof count) < 0 && errno != EAGAIN)
            log_msg(JARVIS_LOG_ERROR, "cannot read the wake fd: %s", strerror(errno));
        return TURN_AGAIN;
    }
    if (n <= 0 || ev.data.u64 == EV_STOP || (sealing && ev.data.u64 == EV_LISTEN))
        return TURN_AGAIN;
    if (ev.data.u64 != EV_LISTEN && (ev.data.u64 & EV_FRESH)) {
        fd = fresh_take_locked(p, ev.data.u64);
        if (fd < 0)
            return TURN_AGAIN; /* closed since, as too old */
        t->fresh = 1;
    } else if (ev.data.u64 != EV_LISTEN) {
        fd = (int)ev.data.u64;
        p->kept--;
    }
    p->lead_serving = 1;
    p->lead_seq++;
    p->lead_taken_ms = ts_mono_us() / 1000;
    if (p->standby && !p->standby_ticking)
        pthread_cond_signal(&p->standby_cv); /* start ticking */
    p->accepting++;
    if (ev.data.u64 == EV_LISTEN) {
        enum turn turn = accept_one(t);
        t->fresh = turn == TURN_SERVE;
        return turn;
    }
    /* keepConnection first: the accept below finishes the previous
     * request, which would close a connection not marked kept. */
    t->fr.keepConnection = 1;
    t->fr.detached = 0;
    t->fr.ipcFd = fd;
    return TURN_SERVE;
}

/* After a request: its connection, if nginx keeps it, goes back to the
 * wait set for any leader to take its next request, unless the worker
 * stops or holds as many idle ones as it may. Call without p->lock. */
static void put_back(struct wk_pool *p, FCGX_Request *fr)
{
    int fd = fr->ipcFd, keep;

    if (fd < 0)
        return;
    fr->ipcFd = -1;
    pthread_mutex_lock(&p->lock);
    keep = !atomic_load(&p->stopping) && p->kept < (int)p->max_kept;
    if (keep)
        p->kept++;
    pthread_mutex_unlock(&p->lock);
    if (keep && arm(p, fd, 0) == 0)
        return;
    if (keep) {
        log_msg(JARVIS_LOG_ERROR, "epoll: %s; closing a kept connection", strerror(errno));
        pthread_mutex_lock(&p->lock);
        p->kept--;
        pthread_mutex_unlock(&p->lock);
    }
    close(fd);
}

static void *serve_thread(void *arg)
{
    struct wk_pool *p = arg;
    /* volatile: kept on this thread's stack, not only in a register. The
     * process ends by _exit with this thread alive (blocked on p->lock, say);
     * valgrind's leak check then scans dead threads' stacks but not their
     * registers, and a runner held in one showed as definitely lost
     * (tests/valgrind). */
    struct rn_runner *volatile runner = rn_runner_new();
    struct exchange *volatile x = calloc(1, sizeof *x);
    struct wk_thread t = {.p = p, .stack_lo = stack_low()};

    t.fr.ipcFd = -1; /* read at leave, which a failed set-up reaches first */
    /* accept_one does every accept: libfcgi gets no listening socket, so a
     * request that fails to read its preset fd cannot fall back to
     * libfcgi's own accept (an unbounded read, even in a stopping worker);
     * it answers -EBADF instead (accept_failed). */
    if (runner == NULL || x == NULL || FCGX_InitRequest(&t.fr, -1, FCGI_FAIL_ACCEPT_ON_INTR) != 0) {
        log_msg(JARVIS_LOG_ERROR, "cannot set up a serving thread: %s", strerror(errno));
        pthread_mutex_lock(&p->lock);
        /* The last thread gone means no one serves: end, and be replaced. */
        if (p->threads == 1)
            stop_locked(p, WK_EXIT_FAILED);
        goto leave;
    }
    rn_runner_set_yield(runner, yield_lead, &t);
    pthread_mutex_lock(&p->lock);
    for (;;) {
        enum turn turn = leads_locked(&t) ? lead(&t) : follow(&t);
        int rc, full, fresh;

        if (turn == TURN_LEAVE)
            goto leave;
        if (turn != TURN_SERVE)
            continue;
        fresh = t.fresh;
        t.fresh = 0;
        if (leads_locked(&t))
            p->lead_reading = 1;
        pthread_mutex_unlock(&p->lock);

        rc = FCGX_Accept_r(&t.fr);

        pthread_mutex_lock(&p->lock);
        if (leads_locked(&t))
            p->lead_reading = 0;
        p->accepting--;
        /* The preset connection was closed or failed (libfcgi then has no
         * listening socket to accept from: see above). */
        if (rc == -EBADF)
            rc = -EAGAIN;
        if (rc < 0) {
            if (accept_failed(p, rc) == TURN_LEAVE)
                goto leave;
            continue;
        }
        /* Kept connections go round the workers: a quiet pool would
         * otherwise have its first worker accept all of nginx's and serve
         * every request while the others idle. */
        if (fresh && (t.fr.keepConnection || ++p->accepted % WK_REQUEUE_EVERY == 0) &&
            listen_again(p, 0) != 0)
            requeue_failed_locked(p);
        p->busy++;
        p->trimmed = 0;
        /* Keep spare threads waiting for what comes next (a cancel); an
         * execute that would leave none, or that came while stopping,
         * answers 503 (retryable) instead of holding a thread. */
        full = !keep_spares_locked(p) || atomic_load(&p->stopping);
        pthread_mutex_unlock(&p->lock);

        serve_one(p, &t.fr, runner, full, x);
        put_back(p, &t.fr);

        pthread_mutex_lock(&p->lock);
        p->busy--;
        exit_if_done_locked(p);
    }
leave:
    if (t.fr.ipcFd >= 0)
        close(t.fr.ipcFd);
    if (leads_locked(&t))
        p->lead = 0;
    p->threads--;
    exit_if_done_locked(p);
    pthread_mutex_unlock(&p->lock);
    rn_runner_free(runner);
    free(x);
    return NULL;
}

/* Raises the soft fd limit to the hard one and sizes the thread and kept
 * connection limits to what the fds allow: half for each. */
static void size_for_fds(struct wk_pool *p)
{
    struct rlimit rl;
    unsigned long long n = 0, threads, kept;

    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        if (rl.rlim_cur < rl.rlim_max) {
            rl.rlim_cur = rl.rlim_max;
            if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
                getrlimit(RLIMIT_NOFILE, &rl);
        }
        n = rl.rlim_cur == RLIM_INFINITY ? ULLONG_MAX / 2 : (unsigned long long)rl.rlim_cur;
    }
    n = n > WK_FDS_RESERVED ? (n - WK_FDS_RESERVED) / 2 : 0;
    threads = n / WK_FDS_PER_THREAD;
    if (threads < WK_SPARE_MIN + 1)
        threads = WK_SPARE_MIN + 1;
    p->max_threads = threads > WK_MAX_THREADS ? WK_MAX_THREADS : (unsigned)threads;
    kept = n > WK_MAX_KEPT ? WK_MAX_KEPT : n;
    p->max_kept = (int)kept;
    p->max_fresh = kept / 4 > WK_MAX_FRESH ? WK_MAX_FRESH : kept / 4 > 0 ? (unsigned)(kept / 4) : 1;
}

/* 1 if fd 0 is a Unix socket (spawn-fcgi -s, a systemd ListenStream
 * path), 0 for TCP or anything else. */
static int listens_on_unix(void)
{
    struct sockaddr_storage sa;
    socklen_t len = sizeof sa;

    return getsockname(0, (struct sockaddr *)&sa, &len) == 0 && sa.ss_family == AF_UNIX;
}

void wk_block_stop_signals(sigset_t *set)
{
    sigemptyset(set);
    sigaddset(set, SIGTERM);
    sigaddset(set, SIGINT);
    sigaddset(set, SIGHUP);
    sigaddset(set, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, set, NULL);
}

void wk_serve(struct app *app)
{
    static struct wk_pool pool;
    pthread_condattr_t cattr;
    sigset_t stop;
    int flags, sig;
    unsigned i;

    pool.app = app;
    pthread_mutex_init(&pool.lock, NULL);
    /* Monotonic: the standby's ticks must not stretch with a clock step. */
    pthread_condattr_init(&cattr);
    pthread_condattr_setclock(&cattr, CLOCK_MONOTONIC);
    pthread_cond_init(&pool.follow, &cattr);
    pthread_cond_init(&pool.standby_cv, &cattr);
    pthread_condattr_destroy(&cattr);
    /* Blocked here, so in every thread started after: sigwaitinfo below
     * is the only taker. A client that went away is a failed write
     * (EPIPE), not a dead worker. */
    wk_block_stop_signals(&stop);
    signal(SIGPIPE, SIG_IGN);
    size_for_fds(&pool);
    pool.fresh_oldest = pool.fresh_newest = -1;
    pool.fresh_free = 0;
    for (i = 0; i < pool.max_fresh; i++)
        pool.fresh[i] = (struct wk_fresh){
            .fd = -1, .older = -1, .newer = i + 1 < pool.max_fresh ? (int)i + 1 : -1};
    pool.tally[TALLY_REFUSED].what = "peers refused (not in FCGI_WEB_SERVER_ADDRS)";
    pool.tally[TALLY_SILENT].what = "new connections closed before their first request";
    pool.tally[TALLY_ACCEPT].what =
        "accepts failed (new connections wait " WK_STR(WK_ACCEPT_RETRY_MS) " ms)";
    if (getenv("MALLOC_ARENA_MAX") == NULL)
        mallopt(M_ARENA_MAX, WK_MALLOC_ARENAS);
    pool.unix_socket = listens_on_unix();
    pool.stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    pool.wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    /* Every worker of the pool shares this open socket, so all of them set
     * the same flag: accept never blocks (see the top of the file). */
    flags = fcntl(0, F_GETFL);
    if (pool.stop_fd < 0 || pool.wake_fd < 0 || flags < 0 ||
        fcntl(0, F_SETFL, flags | O_NONBLOCK) != 0 || wait_set(&pool) != 0) {
        log_msg(JARVIS_LOG_ERROR, "cannot set up the listening socket: %s", strerror(errno));
        _exit(1);
    }
    pthread_mutex_lock(&pool.lock);
    for (i = 0; i < WK_SPARE_MIN + 1; i++)
        if (spawn_locked(&pool) != 0)
            break;
    if (pool.threads == 0) {
        log_msg(JARVIS_LOG_ERROR, "no serving thread could start");
        _exit(1);
    }
    pthread_mutex_unlock(&pool.lock);
    for (;;) {
        sig = sigwaitinfo(&stop, NULL);
        if (sig < 0)
            continue;
        pthread_mutex_lock(&pool.lock);
        if (!atomic_load(&pool.stopping))
            log_msg(JARVIS_LOG_INFO, "signal %d: stopping once %u request(s) are answered", sig,
                    pool.busy);
        stop_locked(&pool, WK_EXIT_ASKED);
        exit_if_done_locked(&pool);
        pthread_mutex_unlock(&pool.lock);
    }
}
