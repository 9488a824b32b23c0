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
#include <malloc.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
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
    atomic_int stopping;  /* no new accept; exit once busy and accepting are 0 */
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

/* Starts threads until WK_SPARE_MIN wait for a connection (or are about
 * to); 1 if that many are there. Call with p->lock held. */
static int keep_spares_locked(struct wk_pool *p)
{
    for (;;) {
        unsigned spare = p->threads - p->busy - p->accepting;
        if (spare >= WK_SPARE_MIN)
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
 * accepted. Call with p->lock held. */
static void exit_if_done_locked(struct wk_pool *p)
{
    if (atomic_load(&p->stopping) && p->busy == 0 && p->accepting == 0) {
        log_msg(JARVIS_LOG_INFO, "worker stopping");
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
    if (resp_emit(&s->x->resp, s->x->head_only, req_fcgi_write, s->fr->out) != 0)
        log_msg(JARVIS_LOG_WARN, "client went away before the answer was written");
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
 * the first idle one there takes every connection; registering again after
 * each request puts this thread last, so connections go round the idle
 * threads of every worker (runs spread, and a crash costs less). */
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
    FCGX_Request fr;

    if (runner == NULL || x == NULL || ep < 0 ||
        FCGX_InitRequest(&fr, 0, FCGI_FAIL_ACCEPT_ON_INTR) != 0) {
        log_msg(JARVIS_LOG_ERROR, "cannot set up a serving thread: %s", strerror(errno));
        pthread_mutex_lock(&p->lock);
        /* The last thread gone means no one serves: end, and be replaced. */
        if (p->threads == 1)
            stop_locked(p, 1);
        goto leave;
    }
    for (;;) {
        struct epoll_event ev;
        int rc, full, n;

        pthread_mutex_lock(&p->lock);
        if (atomic_load(&p->stopping))
            goto leave;
        p->idle++;
        pthread_mutex_unlock(&p->lock);

        n = epoll_wait(ep, &ev, 1, -1);

        pthread_mutex_lock(&p->lock);
        p->idle--;
        if (atomic_load(&p->stopping))
            goto leave;
        if (n <= 0) {
            pthread_mutex_unlock(&p->lock);
            continue;
        }
        p->accepting++;
        pthread_mutex_unlock(&p->lock);

        rc = FCGX_Accept_r(&fr);

        pthread_mutex_lock(&p->lock);
        p->accepting--;
        if (rc < 0) {
            int e = -rc;
            if (e == EAGAIN || e == EWOULDBLOCK || e == EINTR) {
                /* Another thread took it first. */
                exit_if_done_locked(p);
                pthread_mutex_unlock(&p->lock);
                continue;
            }
            if (e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM) {
                /* Out of fds or memory for a moment: others may free some. */
                pthread_mutex_unlock(&p->lock);
                log_msg(JARVIS_LOG_WARN, "accept failed: %s; retrying", strerror(e));
                usleep(WK_ACCEPT_RETRY_US);
                continue;
            }
            log_msg(JARVIS_LOG_ERROR, "accept failed: %d (%s); worker stops", rc, strerror(e));
            stop_locked(p, 1);
            exit_if_done_locked(p);
            goto leave;
        }
        p->busy++;
        /* Keep spare threads waiting for what comes next (a cancel); an
         * execute that would leave none, or that came while stopping,
         * answers 503 (retryable) instead of holding a thread. */
        full = !keep_spares_locked(p) || atomic_load(&p->stopping);
        pthread_mutex_unlock(&p->lock);

        serve_one(p, &fr, runner, full, x);

        pthread_mutex_lock(&p->lock);
        p->busy--;
        exit_if_done_locked(p);
        if (p->threads - p->busy - p->accepting > WK_SPARE_MAX)
            goto leave;
        pthread_mutex_unlock(&p->lock);
        if (listen_again(ep, 0) != 0) {
            log_msg(JARVIS_LOG_ERROR, "epoll: %s; serving thread ends", strerror(errno));
            pthread_mutex_lock(&p->lock);
            if (p->threads == 1)
                stop_locked(p, 1);
            goto leave;
        }
    }
leave:
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
