/*
 * worker.c - owns the worker's serving threads (worker.h): how many there
 * are, which accept, the end of the process, and one request from
 * FCGX_Accept_r to the log line.
 *
 * libfcgi 2.4 takes no accept lock on Linux (USE_LOCKING is not defined in
 * os_unix.c), so each thread calls FCGX_Accept_r on the shared socket with
 * its own FCGX_Request. The listening socket is made non-blocking and each
 * idle thread waits in its own epoll set (the socket with EPOLLEXCLUSIVE,
 * so one connection wakes one thread, plus the worker's stop eventfd);
 * FCGX_Accept_r is called only when a connection is there, and one taken
 * by another thread first is EAGAIN. So a thread is never blocked inside
 * accept: a stop wakes every idle thread, and the process can end the
 * moment no request is held, without dropping one accepted a moment ago.
 *
 * Every thread blocks the stop signals; the main thread takes them with
 * sigwaitinfo, so no libfcgi read or write is ever cut by EINTR.
 */
#define _GNU_SOURCE
#include "worker.h"

#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
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
#include <unistd.h>

#include <fcgiapp.h>

#include "log.h"
#include "request.h"
#include "runner.h"
#include "timefmt.h"

/* After a request whose body was at least this big, freed memory is given
 * back to the system: a large decoded body must not leave a worker large
 * (glibc keeps freed heap by default). */
#define WK_TRIM_AFTER_BYTES (256 * 1024)

/* A serving thread puts itself last in the listening socket's queue of
 * waiters once per this many requests (see listen_again): often enough to
 * spread runs over the workers, rarely enough that the two epoll_ctl calls
 * are not on every request. */
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

/* Pause before accepting again after running out of fds or memory. */
#define WK_ACCEPT_RETRY_US 100000
/* Fds a serving thread may hold: its connection, its runner's wake
 * eventfd and its epoll set; plus what one request may open (a JWKS or
 * web.fetch transfer). */
#define WK_FDS_PER_THREAD 8
/* Fds kept for everything else (logs, the run table, libcurl, spares). */
#define WK_FDS_RESERVED 64

struct wk_pool {
    struct app *app;
    pthread_mutex_t lock;
    unsigned max_threads; /* WK_MAX_THREADS, or less when fds are short */
    unsigned threads;     /* serving threads alive */
    unsigned idle;        /* of which waiting for a connection */
    unsigned accepting;   /* of which inside FCGX_Accept_r */
    unsigned busy;        /* of which holding a request */
    unsigned kept;        /* of which waiting on a kept connection */
    int trimmed;          /* malloc_trim ran since the last request began */
    atomic_int stopping;  /* no new accept; exit once busy and accepting are 0 */
    int unix_socket;      /* the listening socket is AF_UNIX (see answer) */
    int exit_code;
    int stop_fd; /* readable once stopping: wakes every idle thread */
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

/* Threads free to take a new connection: neither holding a request, nor
 * accepting one, nor waiting on a kept connection. Call with p->lock. */
static unsigned spare_locked(const struct wk_pool *p)
{
    return p->threads - p->busy - p->accepting - p->kept;
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
            log_msg(JARVIS_LOG_ERROR, "cannot wake the idle threads: %s", strerror(errno));
    }
}

/* Ends the process if a stop was asked and no request is held or being
 * accepted, and every kept connection has been looked at (a request that
 * came on one before the stop is served). Call with p->lock held. */
static void exit_if_done_locked(struct wk_pool *p)
{
    if (atomic_load(&p->stopping) && p->busy == 0 && p->accepting == 0 && p->kept == 0) {
        log_msg(JARVIS_LOG_INFO, "worker stopping");
        mx_worker_exit(&p->app->mx, p->exit_code != 0 && p->exit_code != 3); /* 3: abandoned */
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
    stop_locked(p, 3);
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

/* (Re)registers the listening socket in this thread's wait set. An
 * exclusive registration stays where it is in the socket's wait queue and
 * the first idle one there takes every connection; registering again every
 * WK_REQUEUE_EVERY requests puts this thread last, so connections go round
 * the idle threads of every worker (runs spread, and a crash costs less). */
static int listen_again(int ep, int first)
{
    struct epoll_event ev = {.events = EPOLLIN | EPOLLEXCLUSIVE, .data.u32 = 0};

    if (!first && epoll_ctl(ep, EPOLL_CTL_DEL, 0, NULL) != 0)
        return -1;
    return epoll_ctl(ep, EPOLL_CTL_ADD, 0, &ev);
}

/* This thread's wait set: the listening socket (one waiter woken per
 * connection) and the stop fd (every waiter). The fd, or -1. */
static int wait_set(const struct wk_pool *p)
{
    struct epoll_event stop_ev = {.events = EPOLLIN, .data.u32 = 1};
    int ep = epoll_create1(EPOLL_CLOEXEC);

    if (ep < 0)
        return -1;
    if (listen_again(ep, 1) != 0 || epoll_ctl(ep, EPOLL_CTL_ADD, p->stop_fd, &stop_ev) != 0) {
        close(ep);
        return -1;
    }
    return ep;
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
 * long, so the hot path pays nothing.
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

/* poll on a kept connection and the stop fd, forever; releasing the
 * thread's idle memory once it has waited a while. */
static int wait_kept(struct wk_pool *p, struct pollfd pf[2], char *stack_lo)
{
    int n = poll(pf, 2, WK_RELEASE_AFTER_MS);

    if (n != 0)
        return n;
    release_idle(p, stack_lo);
    return poll(pf, 2, -1);
}

/* epoll_wait on the listening socket and the stop fd, up to
 * WK_IDLE_EXIT_MS; releasing the thread's idle memory on the way. */
static int wait_listen(struct wk_pool *p, int ep, char *stack_lo)
{
    struct epoll_event ev;
    int n = epoll_wait(ep, &ev, 1, WK_RELEASE_AFTER_MS);

    if (n != 0)
        return n;
    release_idle(p, stack_lo);
    return epoll_wait(ep, &ev, 1, WK_IDLE_EXIT_MS - WK_RELEASE_AFTER_MS);
}

/* What a serving thread does next (wait_turn). */
enum turn { TURN_ACCEPT, TURN_AGAIN, TURN_LEAVE };

/*
 * Waits for this thread's next request: on its kept connection if it holds
 * one (FCGI_KEEP_CONN: the thread is then no spare), else on the listening
 * socket, unless accept_first says to try accept at once. Called and
 * returns with p->lock held; on TURN_ACCEPT the thread counts as accepting.
 */
static enum turn wait_turn(struct wk_pool *p, int ep, FCGX_Request *fr, int accept_first,
                           char *stack_lo)
{
    int n;

    if (atomic_load(&p->stopping))
        return TURN_LEAVE;
    if (fr->ipcFd >= 0) {
        struct pollfd pf[2] = {{fr->ipcFd, POLLIN, 0}, {p->stop_fd, POLLIN, 0}};
        p->kept++;
        pthread_mutex_unlock(&p->lock);
        n = wait_kept(p, pf, stack_lo);
        pthread_mutex_lock(&p->lock);
        p->kept--;
        /* A request that came before the stop is still served; a stopping
         * worker closes an idle kept connection (nginx drops it from its
         * cache when it sees the close). */
        if (atomic_load(&p->stopping) && (n <= 0 || pf[0].revents == 0))
            return TURN_LEAVE; /* serve_thread closes the connection */
        if (n <= 0)
            return TURN_AGAIN;
    } else if (!accept_first) {
        p->idle++;
        pthread_mutex_unlock(&p->lock);
        n = wait_listen(p, ep, stack_lo);
        pthread_mutex_lock(&p->lock);
        p->idle--;
        if (atomic_load(&p->stopping))
            return TURN_LEAVE;
        if (n == 0 && spare_locked(p) > WK_SPARE_MIN)
            return TURN_LEAVE; /* idle for long, and not needed as a spare */
        if (n <= 0)
            return TURN_AGAIN;
    }
    p->accepting++;
    return TURN_ACCEPT;
}

/* How an accept that failed with rc goes on: TURN_AGAIN or TURN_LEAVE.
 * Called and returns with p->lock held. */
static enum turn accept_failed(struct wk_pool *p, int rc)
{
    int e = -rc;

    if (e == EAGAIN || e == EWOULDBLOCK || e == EINTR) {
        /* Another thread took it first, or a kept connection was closed
         * by nginx and no new one is waiting. */
        exit_if_done_locked(p);
        return TURN_AGAIN;
    }
    if (e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM) {
        /* Out of fds or memory for a moment: others may free some. */
        pthread_mutex_unlock(&p->lock);
        log_msg(JARVIS_LOG_WARN, "accept failed: %s; retrying", strerror(e));
        usleep(WK_ACCEPT_RETRY_US);
        pthread_mutex_lock(&p->lock);
        return TURN_AGAIN;
    }
    log_msg(JARVIS_LOG_ERROR, "accept failed: %d (%s); worker stops", rc, strerror(e));
    stop_locked(p, 1);
    exit_if_done_locked(p);
    return TURN_LEAVE;
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
    int ep = wait_set(p);
    unsigned served = 0;
    int accept_first = 0;
    char *stack_lo = stack_low();
    FCGX_Request fr;

    fr.ipcFd = -1; /* read at leave, which a failed set-up reaches first */
    if (runner == NULL || x == NULL || ep < 0 ||
        FCGX_InitRequest(&fr, 0, FCGI_FAIL_ACCEPT_ON_INTR) != 0) {
        log_msg(JARVIS_LOG_ERROR, "cannot set up a serving thread: %s", strerror(errno));
        pthread_mutex_lock(&p->lock);
        /* The last thread gone means no one serves: end, and be replaced. */
        if (p->threads == 1)
            stop_locked(p, 1);
        goto leave;
    }
    pthread_mutex_lock(&p->lock);
    for (;;) {
        enum turn t = wait_turn(p, ep, &fr, accept_first, stack_lo);
        int rc, full;

        accept_first = 0;
        if (t == TURN_LEAVE)
            goto leave;
        if (t == TURN_AGAIN)
            continue;
        pthread_mutex_unlock(&p->lock);

        rc = FCGX_Accept_r(&fr);

        pthread_mutex_lock(&p->lock);
        p->accepting--;
        if (rc < 0) {
            if (accept_failed(p, rc) == TURN_LEAVE)
                goto leave;
            continue;
        }
        p->busy++;
        p->trimmed = 0;
        /* Keep spare threads waiting for what comes next (a cancel); an
         * execute that would leave none, or that came while stopping,
         * answers 503 (retryable) instead of holding a thread. */
        full = !keep_spares_locked(p) || atomic_load(&p->stopping);
        pthread_mutex_unlock(&p->lock);

        serve_one(p, &fr, runner, full, x);

        if (fr.ipcFd < 0 && ++served % WK_REQUEUE_EVERY == 0 && listen_again(ep, 0) != 0) {
            log_msg(JARVIS_LOG_ERROR, "epoll: %s; serving thread ends", strerror(errno));
            pthread_mutex_lock(&p->lock);
            p->busy--;
            if (p->threads == 1)
                stop_locked(p, 1);
            goto leave;
        }
        pthread_mutex_lock(&p->lock);
        p->busy--;
        exit_if_done_locked(p);
        /* Under load (other requests held), a connection is likely
         * waiting already: take it without sleeping in epoll_wait first,
         * as a one-request-at-a-time worker blocked in accept would. An
         * empty backlog costs one accept that says EAGAIN. */
        accept_first = p->busy > 0;
    }
leave:
    if (fr.ipcFd >= 0) /* a kept connection, idle */
        close(fr.ipcFd);
    p->threads--;
    exit_if_done_locked(p);
    pthread_mutex_unlock(&p->lock);
    if (ep >= 0)
        close(ep);
    rn_runner_free(runner);
    free(x);
    return NULL;
}

/* Raises the soft fd limit to the hard one and sizes the thread limit to
 * what the fds allow. */
static unsigned max_threads_for_fds(void)
{
    struct rlimit rl;
    unsigned long long n;

    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return WK_SPARE_MIN + 1;
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
            getrlimit(RLIMIT_NOFILE, &rl);
    }
    n = rl.rlim_cur == RLIM_INFINITY ? WK_MAX_THREADS : (unsigned long long)rl.rlim_cur;
    n = n > WK_FDS_RESERVED ? (n - WK_FDS_RESERVED) / WK_FDS_PER_THREAD : 0;
    if (n < WK_SPARE_MIN + 1)
        n = WK_SPARE_MIN + 1;
    return n > WK_MAX_THREADS ? WK_MAX_THREADS : (unsigned)n;
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
    sigset_t stop;
    int flags, sig;
    unsigned i;

    pool.app = app;
    pthread_mutex_init(&pool.lock, NULL);
    /* Blocked here, so in every thread started after: sigwaitinfo below
     * is the only taker. A client that went away is a failed write
     * (EPIPE), not a dead worker. */
    wk_block_stop_signals(&stop);
    signal(SIGPIPE, SIG_IGN);
    pool.max_threads = max_threads_for_fds();
    pool.unix_socket = listens_on_unix();
    pool.stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    /* Every worker of the pool shares this open socket, so all of them set
     * the same flag: accept never blocks (see the top of the file). */
    flags = fcntl(0, F_GETFL);
    if (pool.stop_fd < 0 || flags < 0 || fcntl(0, F_SETFL, flags | O_NONBLOCK) != 0) {
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
        stop_locked(&pool, 0);
        exit_if_done_locked(&pool);
        pthread_mutex_unlock(&pool.lock);
    }
}
